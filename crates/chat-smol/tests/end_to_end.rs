//! chat-smol against the in-process emulator, over long polling and the WebSocket: a chat
//! with the simulated agent, tokens from the provider (the first, after a 401, ahead of
//! expiry), a stream outage and a hung poll followed by recovery, and TLS.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use chat_emulator::AgentMode;
use chat_smol::{
    ChatError, EndReason, Error, Event, ParticipantType, StreamFailureReason, StreamTransport,
    TransportError,
};
use support::*;

const HOUR: Duration = Duration::from_secs(3600);

fn unauthorized(e: &Event) -> bool {
    matches!(e, Event::EventStreamFailed(f) if f.reason == StreamFailureReason::Unauthorized)
}

fn connected(e: &Event) -> bool {
    matches!(e, Event::EventStreamConnected)
}

async fn chat_with_the_agent(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent);
    let (provider, minted) = provider(emu.control(), "alice", HOUR);
    let (client, mut events) = builder(&emu, transport).connect(provider).await.unwrap();
    // No token was given: the first came from the provider.
    assert_eq!(calls(&minted), 1);
    assert_eq!(events.recv().await.unwrap().name(), "INITIALIZED");

    let chat = client.create_engagement().await.unwrap();
    expect_event(&mut events, is_active).await;
    let sent = client
        .send_message(&chat.engagement_id, "Hello from smol")
        .await
        .unwrap();
    assert_eq!(sent.text(), Some("Hello from smol"));
    expect_event(&mut events, from_agent_with("Hello from smol")).await;
    let transcript = client.transcript(&chat.engagement_id).await.unwrap();
    assert!(
        transcript
            .iter()
            .any(|m| m.text() == Some("Hello from smol")),
        "{transcript:?}"
    );
    let listed = client.list_engagements().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].engagement_id, chat.engagement_id);

    client.shutdown(None).await.unwrap();
    expect_event(&mut events, |e| matches!(e, Event::Shutdown { .. })).await;
    assert!(events.recv().await.is_none(), "the stream ends");
    assert_eq!(client.closed().await, Some(EndReason::Shutdown(None)));
    let e = client.create_engagement().await.unwrap_err();
    assert_eq!(e.code(), "ACS-310");
    assert!(emu.control().sessions().is_empty(), "deleted on the server");
}

both!(chat, super::chat_with_the_agent);

async fn refresh_after_401(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent);
    let (provider, minted) = provider(emu.control(), "bob", HOUR);
    let (client, mut events) = builder(&emu, transport).connect(provider).await.unwrap();
    let chat = client.create_engagement().await.unwrap();
    expect_event(&mut events, from_agent_with("")).await;

    // The stream is refused: the provider gives a new token, and the stream comes back.
    emu.control().expire_tokens();
    expect_event(&mut events, unauthorized).await;
    expect_event(&mut events, connected).await;
    assert_eq!(calls(&minted), 2);
    client
        .send_message(&chat.engagement_id, "after the refresh")
        .await
        .unwrap();
    expect_event(&mut events, from_agent_with("after the refresh")).await;

    // A command refused with 401 is sent again, once, after a refresh.
    emu.control().expire_tokens();
    let sent = client
        .send_message(&chat.engagement_id, "replayed")
        .await
        .unwrap();
    assert_eq!(sent.text(), Some("replayed"));
    expect_event(&mut events, from_agent_with("replayed")).await;
    assert!((3..=4).contains(&calls(&minted)), "{}", calls(&minted));
    client.shutdown(None).await.unwrap();
}

both!(token_after_401, super::refresh_after_401);

async fn refresh_ahead_of_expiry(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent);
    // Four-second tokens: each is replaced at half its life, before the server refuses it.
    let (provider, minted) = provider(emu.control(), "carol", Duration::from_secs(4));
    let (client, mut events) = builder(&emu, transport).connect(provider).await.unwrap();
    let chat = client.create_engagement().await.unwrap();
    let (_, mut seen) = expect_event(&mut events, from_agent_with("")).await;
    let (_, more) = expect_event(&mut events, |_| calls(&minted) >= 4).await;
    seen.extend(more);
    client
        .send_message(&chat.engagement_id, "still here")
        .await
        .unwrap();
    let (_, more) = expect_event(&mut events, from_agent_with("still here")).await;
    seen.extend(more);
    assert!(!seen.iter().any(unauthorized), "{:?}", names(&seen));
    client.shutdown(None).await.unwrap();
}

both!(token_ahead_of_expiry, super::refresh_ahead_of_expiry);

async fn outage_then_recovery(transport: StreamTransport) {
    let emu = emulator(AgentMode::Off);
    let control = emu.control();
    let (provider, _) = provider(emu.control(), "dave", HOUR);
    let (client, mut events) = builder(&emu, transport).connect(provider).await.unwrap();
    let chat = client.create_engagement().await.unwrap();
    let id = chat.engagement_id.clone();
    expect_event(&mut events, is_active).await;
    let post = |text: &str| {
        control
            .post_message(&id, ParticipantType::Agent, text)
            .unwrap();
    };
    post("m1");
    let (_, mut seen) = expect_event(&mut events, from_agent_with("m1")).await;

    // 1. An outage: every connection cut, and every request answered 503 for two seconds.
    //    What the agent says meanwhile arrives afterwards, once, in order.
    control.outage(Duration::from_secs(2), 503);
    emu.proxy.cut();
    post("m2");
    post("m3");
    let (_, failed) = expect_event(&mut events, connected).await;
    assert!(
        names(&failed).contains(&"EVENT_STREAM_FAILED"),
        "{:?}",
        names(&failed)
    );
    seen.extend(failed);
    post("m4");
    let (_, more) = expect_event(&mut events, from_agent_with("m4")).await;
    seen.extend(more);

    // 2. A hung poll, past the 3 s poll timeout: the core aborts it, the glue drops it,
    //    and the stream reconnects.
    control.hang_next_polls(1, Duration::from_secs(5));
    emu.proxy.cut();
    post("m5");
    let started = std::time::Instant::now();
    let (_, more) = expect_event(&mut events, from_agent_with("m5")).await;
    assert!(control.faults().armed.is_empty(), "a poll was held");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "m5 came after the poll timeout: {:?} {:?}",
        started.elapsed(),
        names(&more)
    );
    seen.extend(more);

    let texts: Vec<String> = texts(&seen)
        .into_iter()
        .chain(["m4".to_owned(), "m5".to_owned()])
        .filter(|t| t.starts_with('m'))
        .collect();
    assert_eq!(texts, ["m2", "m3", "m4", "m5"], "{:?}", names(&seen));
    client.shutdown(None).await.unwrap();
}

both!(outage, super::outage_then_recovery);

async fn over_tls(transport: StreamTransport) {
    let emu = start(emulator_builder(AgentMode::Agent).tls(true));
    let base = emu.base_url();
    assert!(base.starts_with("https://"), "{base}");
    let c = emu.credentials();
    let roots = chat_smol::tls_config_with_roots(emu.ca_cert_pem().unwrap().as_bytes()).unwrap();

    // The emulator's self-signed certificate is no default root's.
    let (first, _) = provider(emu.control(), "erin", HOUR);
    let untrusted = chat_smol::Client::builder(&base, &c.integration_id, &c.appkey)
        .stream_transport(transport)
        .config(config())
        .connect(first)
        .await
        .unwrap_err();
    assert_eq!(
        untrusted,
        Error::Chat(ChatError::Unreachable(TransportError::Certificate))
    );

    // With its root: REST calls over https://, the stream over https:// or wss://.
    let (provider, _) = provider(emu.control(), "erin", HOUR);
    let (client, mut events) = chat_smol::Client::builder(&base, &c.integration_id, &c.appkey)
        .stream_transport(transport)
        .config(config())
        .tls_config(roots)
        .connect(provider)
        .await
        .unwrap();
    let chat = client.create_engagement().await.unwrap();
    expect_event(&mut events, is_active).await;
    client
        .send_message(&chat.engagement_id, "over TLS")
        .await
        .unwrap();
    expect_event(&mut events, from_agent_with("over TLS")).await;
    client.shutdown(None).await.unwrap();
}

both!(tls, super::over_tls);

/// The handles may be used from any thread and any executor while the client's own thread
/// carries the I/O; without an event stream the client goes on, and discards its events.
#[test]
fn handles_work_from_other_threads() {
    let emu = emulator(AgentMode::Agent);
    let (provider, _) = provider(emu.control(), "frank", HOUR);
    let (client, mut events) =
        smol::block_on(builder(&emu, StreamTransport::LongPoll).connect(provider)).unwrap();
    let other = client.clone();
    let chat = std::thread::spawn(move || smol::block_on(other.create_engagement()))
        .join()
        .unwrap()
        .unwrap();
    smol::block_on(expect_event(&mut events, is_active));
    drop(events);
    let sent = smol::block_on(client.send_message(&chat.engagement_id, "nobody reads"));
    assert_eq!(sent.unwrap().text(), Some("nobody reads"));
    smol::block_on(client.shutdown(None)).unwrap();
    assert!(emu.control().sessions().is_empty());
}
