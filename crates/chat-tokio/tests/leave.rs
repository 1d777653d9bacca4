//! Reference 7.4, leave: disconnect, termination events, shutdown; and no task left behind.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use chat_emulator::AgentMode;
use chat_tokio::{
    DisconnectReason, EngagementStatus, Event, HttpTransport, ReqwestTransport, Response,
    ShutdownReason, StreamTransport, TransportError,
};
use common::*;

async fn leave_then_shutdown(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent).await;
    let (client, mut events) = connect(&emu, transport, "carol").await;
    let chat = client.create_engagement().await.unwrap();
    expect_event(&mut events, is_active).await;
    expect_event(&mut events, |e| matches!(e, Event::MessageArrived(_))).await;

    chat.disconnect(Some(DisconnectReason::UserClosed))
        .await
        .unwrap();
    let (_, seen) =
        expect_event_seen(&mut events, |e| matches!(e, Event::EngagementTerminated(_))).await;
    assert!(
        names(&seen).contains(&"PARTICIPANT_DISCONNECTED"),
        "{seen:?}"
    );
    assert_eq!(chat.status(), EngagementStatus::Terminated);
    assert_eq!(
        chat.send_message("hello?").await.unwrap_err().code(),
        "ACS-314"
    );
    assert_eq!(chat.participants().unwrap_err().code(), "ACS-314");

    client
        .shutdown(Some(ShutdownReason::UserClosed))
        .await
        .unwrap();
    // Every remaining event, then the end of the stream.
    let mut rest = Vec::new();
    while let Some(e) = events.recv().await {
        rest.push(e.event);
    }
    assert!(rest.contains(&Event::EventStreamClosed), "{rest:?}");
    assert_eq!(
        rest.last(),
        Some(&Event::Shutdown {
            reason: Some(ShutdownReason::UserClosed)
        })
    );
    assert!(client.is_closed());
    assert_eq!(
        client.create_engagement().await.unwrap_err().code(),
        "ACS-310"
    );
    assert_eq!(emu.control().stats().sessions, 0);
    // The engagement itself was ended by the disconnect, not by the shutdown.
    assert_eq!(emu.control().stats().ongoing_engagements, 0);
    emu.shutdown().await;
}

both!(leave_sequence, super::leave_then_shutdown);

#[tokio::test]
async fn shutdown_keeps_engagements_going() {
    let emu = emulator(AgentMode::Agent).await;
    let (client, mut events) = connect(&emu, StreamTransport::LongPoll, "dave").await;
    client.create_engagement().await.unwrap();
    expect_event(&mut events, is_active).await;
    client.shutdown(None).await.unwrap();
    assert_eq!(emu.control().stats().ongoing_engagements, 1);
    assert_eq!(client.shutdown(None).await.unwrap_err().code(), "ACS-310");
}

/// Counts the transport's users: the driver and its tasks hold it.
struct Tracked(ReqwestTransport);

#[async_trait]
impl HttpTransport for Tracked {
    async fn send(&self, request: chat_tokio::Request) -> Result<Response, TransportError> {
        self.0.send(request).await
    }
}

async fn dropped_client_leaves_no_task(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent).await;
    let http = Arc::new(Tracked(ReqwestTransport::new()));
    let weak: Weak<Tracked> = Arc::downgrade(&http);
    let (client, mut events) = builder(&emu, transport, "erin")
        .http_transport(http)
        .connect()
        .await
        .unwrap();
    client.create_engagement().await.unwrap();
    // A poll is held by the server right now.
    expect_event(&mut events, |e| matches!(e, Event::MessageArrived(_))).await;
    let clone = client.clone();
    drop(client);
    drop(events);
    assert!(weak.upgrade().is_some(), "a handle is still alive");
    drop(clone);
    // The driver ends and aborts its I/O: the transport is released.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while weak.upgrade().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the driver outlived its handles"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // The session was not deleted: it can be resumed.
    assert_eq!(emu.control().stats().sessions, 1);
}

both!(drop_sequence, super::dropped_client_leaves_no_task);
