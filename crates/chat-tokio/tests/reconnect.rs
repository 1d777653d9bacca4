//! Reference 7.6, network loss: the emulator's faults (error statuses, hung and dropped
//! connections) on the event stream; every message arrives once, in order.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chat_emulator::{AgentMode, Route};
use chat_tokio::{Event, ParticipantType, StreamTransport, WebSocketTransport};
use common::*;
use tokio::sync::Notify;

fn reconnected(e: &Event) -> bool {
    matches!(e, Event::EventStreamConnected)
}

async fn faults_lose_nothing(transport: StreamTransport) {
    let emu = emulator(AgentMode::Off).await;
    let control = emu.control();
    let cut = Arc::new(Notify::new());
    let mut builder = builder(&emu, transport, "ivan");
    if transport == StreamTransport::WebSocket {
        builder = builder.event_transport(Box::new(Cuttable {
            inner: WebSocketTransport::new(),
            cut: Arc::clone(&cut),
        }));
    }
    let (client, mut events) = builder.connect().await.unwrap();
    let chat = client.create_engagement().await.unwrap();
    expect_event(&mut events, is_active).await;
    let ws = transport == StreamTransport::WebSocket;

    let mut texts = Vec::new();
    let mut next = 1;
    let mut post = |n: usize| {
        for _ in 0..n {
            let text = format!("m{next}");
            control
                .post_message(chat.id(), ParticipantType::Agent, &text)
                .unwrap();
            next += 1;
        }
    };
    post(2);
    let mut got = Vec::new();
    let collect = |seen: &[Event], last: &Event, got: &mut Vec<String>| {
        for e in seen.iter().chain([last]) {
            if let Event::MessageArrived(m) = e {
                got.push(m.text().unwrap_or_default().to_owned());
            }
        }
    };

    // 1. Error statuses: the poll and its three probes fail (500), or the WebSocket breaks
    //    and its next upgrade gets a 500.
    if ws {
        emu.control().fail_next(Route::Events, 500, 1);
        cut.notify_one();
    } else {
        emu.control().fail_next(Route::Events, 500, 4);
    }
    post(2);
    let (e, seen) = expect_event_seen(&mut events, reconnected).await;
    assert!(
        names(&seen).contains(&"EVENT_STREAM_FAILED"),
        "{:?}",
        names(&seen)
    );
    collect(&seen, &e.event, &mut got);
    post(1);

    // 2. A hung request, past the 3 s poll timeout.
    emu.control().hang_next_polls(1, Duration::from_secs(5));
    if ws {
        cut.notify_one();
    }
    post(2);
    let (e, seen) = expect_event_seen(&mut events, reconnected).await;
    assert!(
        names(&seen).contains(&"EVENT_STREAM_FAILED"),
        "{:?}",
        names(&seen)
    );
    collect(&seen, &e.event, &mut got);

    // 3. A dropped connection. The WebSocket reconnects. The dropped poll went out on the
    //    connection kept from the poll before and got no byte of answer: it goes again at
    //    once on a new connection (`chat_net::http1::may_resend`), without a stream failure.
    if ws {
        cut.notify_one();
    } else {
        emu.control().drop_next_polls(1);
    }
    post(2);
    if ws {
        let (e, seen) = expect_event_seen(&mut events, reconnected).await;
        collect(&seen, &e.event, &mut got);
    }
    post(1);
    let last = format!("m{}", next - 1);
    let (e, seen) = expect_event_seen(&mut events, arrived_with(&last)).await;
    if !ws {
        assert!(
            !names(&seen).contains(&"EVENT_STREAM_FAILED"),
            "{:?}",
            names(&seen)
        );
    }
    collect(&seen, &e.event, &mut got);

    texts.extend((1..next).map(|i| format!("m{i}")));
    assert_eq!(got, texts, "every message once, in order");
    client.shutdown(None).await.unwrap();
}

both!(faults, super::faults_lose_nothing);
