//! Reference 7.1, new chat: init, create, stream, activation, agent, messages both ways.
#![allow(clippy::unwrap_used)]

mod common;

use chat_emulator::AgentMode;
use chat_tokio::{EngagementStatus, Event, ParticipantType, StreamTransport};
use common::*;

async fn new_chat(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent).await;
    let (client, mut events) = connect(&emu, transport, "alice").await;
    let first = events.recv().await.expect("first event");
    assert!(matches!(first.event, Event::Initialized(ref ctx) if ctx.engagements.is_empty()));

    let chat = client.create_engagement().await.unwrap();
    assert_eq!(chat.info().status, EngagementStatus::Pending);
    let (_, before) = expect_event_seen(&mut events, is_active).await;
    assert_eq!(
        names(&before),
        ["EVENT_STREAM_CONNECTING", "EVENT_STREAM_CONNECTED"]
    );
    let added = expect_event(&mut events, |e| matches!(e, Event::ParticipantAdded(_))).await;
    let Event::ParticipantAdded(p) = added.event else {
        unreachable!()
    };
    assert_eq!(p.participant.participant_type, ParticipantType::Customer);
    assert_eq!(chat.status(), EngagementStatus::Active);

    // The agent joins and greets.
    expect_event(&mut events, |e| matches!(e, Event::MessageArrived(_))).await;
    let participants = chat.participants().unwrap();
    assert!(
        participants
            .iter()
            .any(|p| p.participant_type == ParticipantType::Agent)
    );

    let sent = chat.send_message("Where is my parcel?").await.unwrap();
    assert_eq!(sent.text(), Some("Where is my parcel?"));
    let echo = expect_event(&mut events, |e| matches!(e, Event::MessageDelivered(_))).await;
    let Event::MessageDelivered(echo) = echo.event else {
        unreachable!()
    };
    assert_eq!(echo.message_id, sent.message_id);
    expect_event(&mut events, arrived_with("Where is my parcel?")).await;

    // A reply to a message, and the official validation errors.
    let reply = chat.send_reply(&sent.message_id, "Thanks").await.unwrap();
    assert_eq!(reply.parent_message_id.as_ref(), Some(&sent.message_id));
    let empty = chat.send_message("").await.unwrap_err();
    assert_eq!(empty.code(), "ACS-322");
    let long = chat.send_message(&"x".repeat(4097)).await.unwrap_err();
    assert_eq!(long.code(), "ACS-322");
    assert_eq!(chat.join().await.unwrap_err().code(), "ACS-315");

    client.shutdown(None).await.unwrap();
    emu.shutdown().await;
}

both!(new_chat_sequence, super::new_chat);

#[tokio::test]
async fn send_before_activation_is_acs_313() {
    let emu = emulator(AgentMode::Off).await;
    // Hold the customer's activation back: the stream's answers are delayed.
    emu.control().delay_responses(
        chat_emulator::Route::Events,
        Some(std::time::Duration::from_millis(500)),
    );
    let (client, _events) = connect(&emu, StreamTransport::LongPoll, "bob").await;
    let chat = client.create_engagement().await.unwrap();
    let e = chat.send_message("too early").await.unwrap_err();
    assert_eq!(e.code(), "ACS-313");
    assert_eq!(chat.disconnect(None).await.unwrap_err().code(), "ACS-313");
    client.shutdown(None).await.unwrap();
}

async fn engagement_error(transport: StreamTransport) {
    let emu = emulator(AgentMode::Off).await;
    let (client, mut events) = connect(&emu, transport, "zoe").await;
    let chat = client.create_engagement().await.unwrap();
    expect_event(&mut events, is_active).await;
    emu.control()
        .raise_engagement_error(chat.id(), "Routing failed", "No agent available")
        .unwrap();
    let e = expect_event(&mut events, |e| matches!(e, Event::EngagementError { .. })).await;
    let Event::EngagementError {
        engagement, error, ..
    } = e.event
    else {
        unreachable!()
    };
    assert_eq!(&engagement.engagement_id, chat.id());
    assert_eq!(error.title.as_deref(), Some("Routing failed"));
    assert_eq!(error.detail.as_deref(), Some("No agent available"));
    assert_eq!(chat.status(), EngagementStatus::Terminated);
    assert_eq!(chat.send_message("x").await.unwrap_err().code(), "ACS-314");
    client.shutdown(None).await.unwrap();
}

both!(engagement_error_sequence, super::engagement_error);
