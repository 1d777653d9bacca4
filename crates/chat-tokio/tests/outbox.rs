//! The outbox (`Config::outbox`) against the emulator: a lost answer, refusals and a dropped
//! request each end with the message delivered, and stored once.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chat_emulator::{AgentMode, Route};
use chat_tokio::{Config, Event, ParticipantType, StreamTransport};
use common::*;

async fn each_send_is_stored_once(transport: StreamTransport) {
    let emu = emulator(AgentMode::Off).await;
    let control = emu.control();
    let (client, mut events) = builder(&emu, transport, "olga")
        .config(Config {
            outbox: Some(Duration::from_secs(60)),
            ..config()
        })
        .connect()
        .await
        .unwrap();
    let chat = client.create_engagement().await.unwrap();
    expect_event(&mut events, is_active).await;

    // Stored, but the answer is lost: found in history, not sent again.
    control.lose_next_answers(Route::Messages, 1);
    let first = chat.send_message("first").await.unwrap();
    // Refused twice, then sent.
    control.fail_next(Route::Messages, 503, 2);
    let second = chat.send_message("second").await.unwrap();
    // Lost before the server saw it: sent again.
    control.drop_next(Route::Messages, 1);
    let third = chat.send_message("third").await.unwrap();
    assert!(first.message_index < second.message_index);
    assert!(second.message_index < third.message_index);

    let pager = chat.history(50).await.unwrap();
    let mut stored: Vec<&str> = pager
        .items()
        .iter()
        .filter(|m| m.sender.participant_type == ParticipantType::Customer)
        .filter_map(|m| m.text())
        .collect();
    stored.reverse();
    assert_eq!(stored, ["first", "second", "third"]);
    // And each came back on the stream once.
    let mut delivered = Vec::new();
    while delivered.len() < 3 {
        let e = expect_event(&mut events, |e| matches!(e, Event::MessageDelivered(_))).await;
        if let Event::MessageDelivered(m) = e.event {
            delivered.push(m.message_id);
        }
    }
    assert_eq!(
        delivered,
        [first.message_id, second.message_id, third.message_id]
    );
    client.shutdown(None).await.unwrap();
}

both!(
    lost_answers_refusals_and_drops,
    super::each_send_is_stored_once
);
