//! Token refresh: by a blocking provider (ahead of expiry, after a 401, replaying a refused
//! command) and by `set_token`; expiry with a short-lived token.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use chat_blocking::{
    BoxError, Client, ClientBuilder, Event, StreamFailureReason, StreamState, StreamTransport,
};
use chat_emulator::{AgentMode, Emulator};
use support::*;

fn with_provider(
    emu: &Emulator,
    transport: StreamTransport,
    ttl: Duration,
) -> (ClientBuilder, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let control = emu.control();
    let counter = Arc::clone(&calls);
    let provider = move || -> Result<String, BoxError> {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(control.mint_token("frank", true, ttl))
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

fn provider_refreshes_ahead_of_expiry(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent);
    let (builder, calls) = with_provider(&emu, transport, Duration::from_secs(6));
    let (client, events) = builder.connect().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let chat = client.create_engagement().unwrap();
    expect_event(&events, |e| matches!(e, Event::MessageArrived(_)));
    // Refreshed at half the remaining life, twice, past the first token's expiry, with no
    // 401 on the way.
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    while calls.load(Ordering::SeqCst) < 3 {
        assert!(Instant::now() < deadline, "no refresh");
        if let Ok(e) = events.recv_timeout(Duration::from_millis(200)) {
            seen.push(e.event);
        }
    }
    chat.send_message("still here").unwrap();
    let (_, more) = expect_event_seen(&events, arrived_with("still here"));
    seen.extend(more);
    assert!(!seen.iter().any(unauthorized), "{:?}", names(&seen));
    client.shutdown(None).unwrap();
}

both!(
    provider_ahead_of_expiry,
    super::provider_refreshes_ahead_of_expiry
);

fn provider_after_401(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent);
    let (builder, calls) = with_provider(&emu, transport, Duration::from_secs(3600));
    let (client, events) = builder.connect().unwrap();
    let chat = client.create_engagement().unwrap();
    expect_event(&events, |e| matches!(e, Event::MessageArrived(_)));

    emu.control().expire_tokens();
    expect_event(&events, unauthorized);
    expect_event(&events, |e| matches!(e, Event::EventStreamConnected));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    chat.send_message("after the refresh").unwrap();
    expect_event(&events, arrived_with("after the refresh"));

    // A command refused with 401 is sent again once, after a refresh.
    emu.control().expire_tokens();
    let sent = chat.send_message("replayed").unwrap();
    assert_eq!(sent.text(), Some("replayed"));
    expect_event(&events, arrived_with("replayed"));
    assert!(calls.load(Ordering::SeqCst) <= 4, "{calls:?}");
    client.refresh_token().unwrap();
    client.shutdown(None).unwrap();
}

both!(provider_on_401, super::provider_after_401);

fn set_token_push_style(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent);
    let short = emu
        .control()
        .mint_token("gina", true, Duration::from_secs(20));
    let (client, events) = builder(&emu, transport, "gina")
        .token(short)
        .connect()
        .unwrap();
    // Less than 180 s left: the reminder comes at once.
    let reminder = expect_event(&events, |e| matches!(e, Event::TokenExpiryReminder { .. }));
    let Event::TokenExpiryReminder { expires_in, .. } = reminder.event else {
        unreachable!()
    };
    assert!(expires_in <= Duration::from_secs(20));
    client.set_token(&token(&emu, "gina")).unwrap();
    let chat = client.create_engagement().unwrap();
    expect_event(&events, |e| matches!(e, Event::MessageArrived(_)));
    chat.send_message("new token").unwrap();
    let (_, seen) = expect_event_seen(&events, arrived_with("new token"));
    assert!(!names(&seen).contains(&"TOKEN_EXPIRY_REMINDER"));
    assert_eq!(
        client.set_token("not a token").unwrap_err().code(),
        "ACS-322"
    );
    // No provider to refresh from: a misuse (ACS-322), not a bad token.
    assert_eq!(client.refresh_token().unwrap_err().code(), "ACS-322");
    client.shutdown(None).unwrap();
}

both!(set_token_push, super::set_token_push_style);

fn expiry_with_short_token(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent);
    let short = emu
        .control()
        .mint_token("hank", true, Duration::from_secs(3));
    let (client, events) = builder(&emu, transport, "hank")
        .token(short)
        .connect()
        .unwrap();
    let chat = client.create_engagement().unwrap();
    expect_event(&events, |e| matches!(e, Event::TokenExpired { .. }));
    // The server refuses the expired token: the stream pauses.
    expect_event(&events, unauthorized);
    assert_eq!(client.stream_state(), StreamState::Paused);
    emu.control()
        .post_message(
            chat.id(),
            chat_blocking::ParticipantType::Agent,
            "while paused",
        )
        .unwrap();
    client.set_token(&token(&emu, "hank")).unwrap();
    let (_, seen) = expect_event_seen(&events, arrived_with("while paused"));
    assert!(names(&seen).contains(&"EVENT_STREAM_CONNECTED"), "{seen:?}");
    client.shutdown(None).unwrap();
}

both!(short_token_expiry, super::expiry_with_short_token);
