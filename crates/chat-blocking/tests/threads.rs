//! No thread is left behind: after `shutdown`, and after every handle and the connection
//! are dropped, the process has exactly the threads it had before the client. Alone in its
//! test binary, so that no other test's threads are counted.
#![allow(clippy::unwrap_used)]

mod support;

use chat_blocking::{Event, StreamTransport};
use chat_emulator::AgentMode;
use support::*;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
#[cfg(target_os = "linux")]
fn no_thread_is_left_behind() {
    let emu = emulator(AgentMode::Agent);
    // Warm up the emulator's runtime (its threads are not the client's).
    for transport in [StreamTransport::LongPoll, StreamTransport::WebSocket] {
        let (client, events) = connect(&emu, transport, "warm");
        client.create_engagement().unwrap();
        expect_event(&events, arrived_with("Hello"));
        client.shutdown(None).unwrap();
    }
    let before = threads();
    for transport in [
        StreamTransport::LongPoll,
        StreamTransport::WebSocket,
        StreamTransport::Auto,
    ] {
        // Shut down with a poll held by the server, a command issued from another thread.
        let (client, events) = connect(&emu, transport, "tess");
        let chat = client.create_engagement().unwrap();
        expect_event(&events, arrived_with("Hello"));
        assert!(threads() > before, "the client runs threads of its own");
        let other = std::thread::spawn({
            let chat = chat.clone();
            move || chat.send_message("bye").unwrap()
        });
        other.join().unwrap();
        client.shutdown(None).unwrap();
        assert_eq!(client.thread_count(), 0);
        assert_eq!(threads(), before, "{transport:?}: after shutdown");
        drop((client, chat, events));

        // Dropped without a shutdown: the last handle joins every thread, and the session
        // stays on the server (it can be resumed).
        let (client, events) = connect(&emu, transport, "ugo");
        client.create_engagement().unwrap();
        expect_event(&events, |e| matches!(e, Event::MessageArrived(_)));
        let clone = client.clone();
        drop(client);
        drop(events);
        assert!(threads() > before, "a handle is still alive");
        drop(clone);
        assert_eq!(threads(), before, "{transport:?}: after the last handle");
    }
    assert_eq!(emu.control().stats().sessions, 3);

    // Clients built with default settings share one HTTP client, hence one reqwest thread;
    // the last of them to stop joins it.
    let (a, _a_events) = connect(&emu, StreamTransport::LongPoll, "vic");
    let (b, _b_events) = connect(&emu, StreamTransport::WebSocket, "wen");
    assert_eq!(reqwest_threads(), 1, "one shared HTTP client");
    a.shutdown(None).unwrap();
    assert_eq!(reqwest_threads(), 1, "still used by the other client");
    b.shutdown(None).unwrap();
    assert_eq!(reqwest_threads(), 0, "joined with the last client");
    assert_eq!(threads(), before, "after both");
}

/// Threads of reqwest's blocking clients (`reqwest-internal-sync-runtime`).
fn reqwest_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
        .filter(|name| name.starts_with("reqwest"))
        .count()
}
