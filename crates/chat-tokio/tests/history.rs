//! Message history: the pager (the official `PageIterator`) and the stream of pages.
#![allow(clippy::unwrap_used)]

mod common;

use chat_emulator::AgentMode;
use chat_tokio::{Event, ParticipantType, StreamTransport};
use common::*;
use futures::TryStreamExt;

#[tokio::test]
async fn pager_and_page_stream_cover_everything_once() {
    let emu = emulator(AgentMode::Off).await;
    let (client, mut events) = connect(&emu, StreamTransport::LongPoll, "mia").await;
    let chat = client.create_engagement().await.unwrap();
    expect_event(&mut events, is_active).await;
    // More than one server page (50).
    for i in 1..=73 {
        emu.control()
            .post_message(chat.id(), ParticipantType::Agent, &format!("h{i}"))
            .unwrap();
    }
    expect_event(
        &mut events,
        |e| matches!(e, Event::MessageArrived(m) if m.text() == Some("h73")),
    )
    .await;

    let mut pager = chat.history(20).await.unwrap();
    assert_eq!(pager.page_size(), 20);
    assert!(!pager.has_newer());
    let mut seen = Vec::new();
    loop {
        seen.extend(pager.items().iter().map(|m| m.message_index));
        if !pager.older().await.unwrap() {
            break;
        }
    }
    assert!(!pager.has_older());
    let want: Vec<u64> = (1..=73).rev().collect();
    assert_eq!(seen, want);
    assert!(pager.newer());
    assert_eq!(pager.items().len(), 20);

    let pages: Vec<Vec<chat_tokio::Message>> = chat.history_pages(30).try_collect().await.unwrap();
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [30, 30, 13]);
    let all: Vec<u64> = pages.iter().flatten().map(|m| m.message_index).collect();
    assert_eq!(all, want);

    // The transcript: oldest first, each message once.
    let transcript = chat.transcript().await.unwrap();
    let indexes: Vec<u64> = transcript.iter().map(|m| m.message_index).collect();
    assert_eq!(indexes, (1..=73).collect::<Vec<_>>());

    // Out-of-range page sizes are refused (issue #12 item 10: they silently paged by 10).
    for bad in [0, 51] {
        assert_eq!(chat.history(bad).await.unwrap_err().code(), "ACS-322");
    }
    client.shutdown(None).await.unwrap();
}
