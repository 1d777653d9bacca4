//! Reference 7.6's end (reconnection timeout, then a manual retry) and 7.7 (inactivity), with
//! tokio's clock paused so that minutes pass at once; and "Session not found".
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chat_emulator::{AgentMode, Route};
use chat_tokio::{
    Config, Event, ParticipantType, ShutdownReason, StreamFailureReason, StreamState,
    StreamTransport, WebSocketTransport,
};
use common::*;
use tokio::sync::Notify;

/// Patience by the paused clock.
const VIRTUAL: Duration = Duration::from_secs(3600);

fn failed(reason: StreamFailureReason) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::EventStreamFailed(f) if f.reason == reason)
}

async fn reconnection_timeout_then_retry(transport: StreamTransport) {
    let emu = emulator(AgentMode::Off).await;
    let cut = Arc::new(Notify::new());
    let mut builder = builder(&emu, transport, "nina").config(Config {
        reconnection_timeout: Duration::from_secs(120),
        ..config()
    });
    if transport == StreamTransport::WebSocket {
        builder = builder.event_transport(Box::new(Cuttable {
            inner: WebSocketTransport::new(),
            cut: Arc::clone(&cut),
        }));
    }
    let (client, mut events) = builder.connect().await.unwrap();
    let chat = client.create_engagement().await.unwrap();
    expect_event(&mut events, is_active).await;
    assert_eq!(client.retry_connection().unwrap_err().code(), "ACS-318");

    // The service goes away for good: every attempt fails.
    emu.control().fail_next(Route::Events, 503, 100_000);
    cut.notify_one();
    tokio::time::pause();
    let (_, seen) = expect_event_within(
        &mut events,
        VIRTUAL,
        failed(StreamFailureReason::ReconnectionTimeout),
    )
    .await;
    let retries = seen
        .iter()
        .filter(|e| matches!(e, Event::EventStreamConnecting))
        .count();
    assert!(retries >= 5, "{:?}", names(&seen));
    assert_eq!(client.stream_state(), StreamState::Failed);

    // Back: nothing happens by itself; the app's retry reconnects, and nothing is lost.
    emu.control().clear_faults();
    emu.control()
        .post_message(chat.id(), ParticipantType::Agent, "during the outage")
        .unwrap();
    tokio::time::resume();
    client.retry_connection().unwrap();
    let (_, seen) = expect_event_seen(&mut events, arrived_with("during the outage")).await;
    assert!(names(&seen).contains(&"EVENT_STREAM_CONNECTED"), "{seen:?}");
    client.shutdown(None).await.unwrap();
}

both!(reconnection_timeout, super::reconnection_timeout_then_retry);

async fn inactivity_shutdown(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent).await;
    let (client, mut events) = builder(&emu, transport, "oscar")
        .config(Config {
            idle_timeout: Some(Duration::from_secs(300)),
            idle_shutdown_grace_timeout: Duration::from_secs(30),
            ..config()
        })
        .connect()
        .await
        .unwrap();
    client.create_engagement().await.unwrap();
    expect_event(&mut events, |e| matches!(e, Event::MessageArrived(_))).await;

    tokio::time::pause();
    let start = tokio::time::Instant::now();
    let (idle, _) = expect_event_within(&mut events, VIRTUAL, |e| {
        matches!(e, Event::IdleTimeoutExpired { .. })
    })
    .await;
    assert_eq!(
        idle.event,
        Event::IdleTimeoutExpired {
            grace_period: Duration::from_secs(30)
        }
    );
    assert!(
        start.elapsed() >= Duration::from_secs(299),
        "{:?}",
        start.elapsed()
    );
    // Activity during the grace period cancels it.
    client.reset_idle_timeout().unwrap();
    let again = tokio::time::Instant::now();
    expect_event_within(&mut events, VIRTUAL, |e| {
        matches!(e, Event::IdleTimeoutExpired { .. })
    })
    .await;
    assert!(again.elapsed() >= Duration::from_secs(299));
    let (shutdown, _) = expect_event_within(&mut events, VIRTUAL, |e| {
        matches!(e, Event::Shutdown { .. })
    })
    .await;
    tokio::time::resume();
    assert_eq!(
        shutdown.event,
        Event::Shutdown {
            reason: Some(ShutdownReason::UserInactive)
        }
    );
    assert!(events.recv().await.is_none());
    client.closed().await;
    assert_eq!(client.reset_idle_timeout().unwrap_err().code(), "ACS-310");
    // The engagement goes on without the session.
    assert_eq!(emu.control().stats().ongoing_engagements, 1);
}

both!(inactivity, super::inactivity_shutdown);

async fn session_not_found(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent).await;
    let (client, mut events) = connect(&emu, transport, "pia").await;
    let chat = client.create_engagement().await.unwrap();
    expect_event(&mut events, is_active).await;
    assert!(emu.control().invalidate_session(client.session_id()));
    let (_, seen) = expect_event_seen(
        &mut events,
        failed(StreamFailureReason::ClientSessionInvalidated),
    )
    .await;
    assert!(names(&seen).contains(&"EVENT_STREAM_CLOSED"), "{seen:?}");
    let e = client.create_engagement().await.unwrap_err();
    assert_eq!(e.code(), "ACS-320");
    assert_eq!(chat.send_message("x").await.unwrap_err().code(), "ACS-320");
    // The client ends, and says why (issue #12 item 8: it looked alive).
    assert_eq!(
        client.closed().await,
        chat_tokio::EndReason::SessionInvalidated
    );
    assert!(client.is_closed());
    assert!(
        client.resumption().is_err(),
        "no resumption of a dead session"
    );
    while let Some(e) = events.recv().await {
        assert!(!matches!(e.event, Event::EventStreamConnecting), "{e:?}");
    }
    assert_eq!(client.shutdown(None).await.unwrap_err().code(), "ACS-320");
}

both!(invalidated, super::session_not_found);
