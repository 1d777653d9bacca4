//! Reference 7.3, join from a second session of the same customer; and several chats at once.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use chat_emulator::AgentMode;
use chat_tokio::{EngagementStatus, Event, ParticipantType, StreamTransport};
use common::*;

async fn join_from_second_session(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent).await;
    let (first, mut first_events) = connect(&emu, transport, "kate").await;
    let chat = first.create_engagement().await.unwrap();
    expect_event(&mut first_events, arrived_with("Hello")).await;
    chat.send_message("from the laptop").await.unwrap();

    // The phone: same customer, another session.
    let (second, mut second_events) = connect(&emu, transport, "kate").await;
    let init = second_events.recv().await.unwrap();
    let Event::Initialized(ctx) = init.event else {
        panic!("{init:?}")
    };
    assert_eq!(ctx.engagements.len(), 1);
    let listed = second.list_engagements().await.unwrap();
    assert_eq!(listed.len(), 1);
    let there = &listed[0];
    assert_eq!(there.id(), chat.id());
    assert_eq!(there.info().status, EngagementStatus::Pending);
    // Preview before joining; sending is not allowed yet.
    let preview = there.history(10).await.unwrap();
    assert!(
        preview
            .items()
            .iter()
            .any(|m| m.text() == Some("from the laptop"))
    );
    assert_eq!(there.send_message("x").await.unwrap_err().code(), "ACS-313");

    there.join().await.unwrap();
    expect_event(&mut second_events, is_active).await;
    // A message from the laptop reaches the phone as delivered (the customer's own).
    chat.send_message("typed on the laptop").await.unwrap();
    expect_event(
        &mut second_events,
        |e| matches!(e, Event::MessageDelivered(m) if m.text() == Some("typed on the laptop")),
    )
    .await;
    // And the agent's answer reaches both.
    expect_event(&mut second_events, arrived_with("typed on the laptop")).await;
    expect_event(&mut first_events, arrived_with("typed on the laptop")).await;
    first.shutdown(None).await.unwrap();
    second.shutdown(None).await.unwrap();
}

both!(join, super::join_from_second_session);

async fn several_chats(transport: StreamTransport) {
    let emu = emulator(AgentMode::Off).await;
    let (client, mut events) = connect(&emu, transport, "leo").await;
    let mut chats = Vec::new();
    for _ in 0..3 {
        chats.push(client.create_engagement().await.unwrap());
    }
    for _ in 0..3 {
        expect_event(&mut events, is_active).await;
    }
    for (i, chat) in chats.iter().enumerate() {
        for j in 0..3 {
            emu.control()
                .post_message(
                    chat.id(),
                    ParticipantType::Agent,
                    &format!("chat{i} msg{j}"),
                )
                .unwrap();
        }
    }
    let mut per_chat: HashMap<_, Vec<String>> = HashMap::new();
    while per_chat.values().map(Vec::len).sum::<usize>() < 9 {
        let e = expect_event(&mut events, |e| matches!(e, Event::MessageArrived(_))).await;
        if let Event::MessageArrived(m) = e.event {
            per_chat
                .entry(m.engagement_id.clone())
                .or_default()
                .push(m.text().unwrap().to_owned());
        }
    }
    for (i, chat) in chats.iter().enumerate() {
        let want: Vec<String> = (0..3).map(|j| format!("chat{i} msg{j}")).collect();
        assert_eq!(per_chat[chat.id()], want);
    }
    // Leaving one leaves the others (and the stream) running.
    chats[0].disconnect(None).await.unwrap();
    expect_event(&mut events, |e| matches!(e, Event::EngagementTerminated(_))).await;
    chats[1].send_message("still on").await.unwrap();
    let (_, seen) = expect_event_seen(
        &mut events,
        |e| matches!(e, Event::MessageDelivered(m) if m.text() == Some("still on")),
    )
    .await;
    assert!(!names(&seen).contains(&"EVENT_STREAM_CLOSED"));
    assert_eq!(client.engagements().len(), 2);
    client.shutdown(None).await.unwrap();
}

both!(several, super::several_chats);
