//! Reference 7.5, token refresh: by the provider (ahead of expiry, after a 401, replaying a
//! refused command) and by `set_token`; expiry with a short-lived token.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chat_emulator::{AgentMode, Emulator};
use chat_tokio::{Client, ClientBuilder, Event, StreamFailureReason, StreamTransport};
use common::*;

fn with_provider(
    emu: &Emulator,
    transport: StreamTransport,
    ttl: Duration,
) -> (ClientBuilder, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let control = emu.control();
    let counter = Arc::clone(&calls);
    let provider = move || {
        counter.fetch_add(1, Ordering::SeqCst);
        let token = control.mint_token("frank", true, ttl);
        async move { Ok(token) }
    };
    let c = emu.credentials();
    let builder = Client::builder(emu.base_url(), &c.integration_id, &c.appkey)
        .token_provider(provider)
        .stream_transport(transport)
        .config(config());
    (builder, calls)
}

fn unauthorized(e: &Event) -> bool {
    matches!(e, Event::EventStreamFailed(f) if f.reason == StreamFailureReason::Unauthorized)
}

async fn provider_refreshes_ahead_of_expiry(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent).await;
    let (builder, calls) = with_provider(&emu, transport, Duration::from_secs(6));
    let (client, mut events) = builder.connect().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let chat = client.create_engagement().await.unwrap();
    expect_event(&mut events, |e| matches!(e, Event::MessageArrived(_))).await;
    // Less than 180 s left: the reminder comes at once, and is still delivered.
    // Past the first token's expiry, with no 401 on the way.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    while calls.load(Ordering::SeqCst) < 3 {
        assert!(tokio::time::Instant::now() < deadline, "no refresh");
        if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
            seen.push(e.event);
        }
    }
    chat.send_message("still here").await.unwrap();
    let (_, more) = expect_event_seen(&mut events, arrived_with("still here")).await;
    seen.extend(more);
    assert!(names(&seen).contains(&"TOKEN_EXPIRY_REMINDER") || calls.load(Ordering::SeqCst) >= 3);
    assert!(!seen.iter().any(unauthorized), "{:?}", names(&seen));
    client.shutdown(None).await.unwrap();
}

both!(
    provider_ahead_of_expiry,
    super::provider_refreshes_ahead_of_expiry
);

async fn provider_after_401(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent).await;
    let (builder, calls) = with_provider(&emu, transport, Duration::from_secs(3600));
    let (client, mut events) = builder.connect().await.unwrap();
    let chat = client.create_engagement().await.unwrap();
    expect_event(&mut events, |e| matches!(e, Event::MessageArrived(_))).await;

    emu.control().expire_tokens();
    expect_event(&mut events, unauthorized).await;
    expect_event(&mut events, |e| matches!(e, Event::EventStreamConnected)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    chat.send_message("after the refresh").await.unwrap();
    expect_event(&mut events, arrived_with("after the refresh")).await;

    // A command refused with 401 is sent again once, after a refresh.
    emu.control().expire_tokens();
    let sent = chat.send_message("replayed").await.unwrap();
    assert_eq!(sent.text(), Some("replayed"));
    expect_event(&mut events, arrived_with("replayed")).await;
    assert!(calls.load(Ordering::SeqCst) <= 4, "{calls:?}");
    client.shutdown(None).await.unwrap();
}

both!(provider_on_401, super::provider_after_401);

async fn set_token_push_style(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent).await;
    let short = emu
        .control()
        .mint_token("gina", true, Duration::from_secs(20));
    let (client, mut events) = builder(&emu, transport, "gina")
        .token(short)
        .connect()
        .await
        .unwrap();
    // Less than 180 s left: the reminder comes at once.
    let reminder = expect_event(&mut events, |e| {
        matches!(e, Event::TokenExpiryReminder { .. })
    })
    .await;
    let Event::TokenExpiryReminder { expires_in, .. } = reminder.event else {
        unreachable!()
    };
    assert!(expires_in <= Duration::from_secs(20));
    client.set_token(&token(&emu, "gina")).unwrap();
    let chat = client.create_engagement().await.unwrap();
    expect_event(&mut events, |e| matches!(e, Event::MessageArrived(_))).await;
    chat.send_message("new token").await.unwrap();
    let (_, seen) = expect_event_seen(&mut events, arrived_with("new token")).await;
    assert!(!names(&seen).contains(&"TOKEN_EXPIRY_REMINDER"));
    assert_eq!(
        client.set_token("not a token").unwrap_err().code(),
        "ACS-322"
    );
    client.shutdown(None).await.unwrap();
}

both!(set_token_push, super::set_token_push_style);

async fn expiry_with_short_token(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent).await;
    let short = emu
        .control()
        .mint_token("hank", true, Duration::from_secs(3));
    let (client, mut events) = builder(&emu, transport, "hank")
        .token(short)
        .connect()
        .await
        .unwrap();
    let chat = client.create_engagement().await.unwrap();
    expect_event(&mut events, |e| matches!(e, Event::TokenExpired { .. })).await;
    // The server refuses the expired token: the stream pauses.
    expect_event(&mut events, unauthorized).await;
    assert_eq!(client.stream_state(), chat_tokio::StreamState::Paused);
    emu.control()
        .post_message(
            chat.id(),
            chat_tokio::ParticipantType::Agent,
            "while paused",
        )
        .unwrap();
    client.set_token(&token(&emu, "hank")).unwrap();
    let (_, seen) = expect_event_seen(&mut events, arrived_with("while paused")).await;
    assert!(names(&seen).contains(&"EVENT_STREAM_CONNECTED"), "{seen:?}");
    client.shutdown(None).await.unwrap();
}

both!(short_token_expiry, super::expiry_with_short_token);
