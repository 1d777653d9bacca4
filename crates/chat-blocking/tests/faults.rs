//! Faults on the event stream (error statuses, hung and dropped polls), the reconnection
//! timeout and the manual retry, inactivity, "Session not found"; each over both transports.
//! Long protocol waits pass at once through `Client::advance_clock`.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use chat_blocking::{
    Client, Config, Event, EventStream, ParticipantType, ShutdownReason, StreamFailureReason,
    StreamState, StreamTransport,
};
use chat_emulator::{AgentMode, Route};
use support::*;

fn reconnected(e: &Event) -> bool {
    matches!(e, Event::EventStreamConnected)
}

fn failed(reason: StreamFailureReason) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::EventStreamFailed(f) if f.reason == reason)
}

fn texts(seen: &[Event], last: &Event, got: &mut Vec<String>) {
    for e in seen.iter().chain([last]) {
        if let Event::MessageArrived(m) = e {
            got.push(m.text().unwrap_or_default().to_owned());
        }
    }
}

fn faults_lose_nothing(transport: StreamTransport) {
    let emu = emulator(AgentMode::Off);
    let control = emu.control();
    let (builder, cut) = cuttable(&emu, transport, "ivan");
    let (client, events) = builder.connect().unwrap();
    let chat = client.create_engagement().unwrap();
    expect_event(&events, is_active);
    let mut next = 1;
    let mut post = |n: usize| {
        for _ in 0..n {
            control
                .post_message(chat.id(), ParticipantType::Agent, &format!("m{next}"))
                .unwrap();
            next += 1;
        }
    };
    post(2);
    let mut got = Vec::new();

    // 1. Error statuses: the poll and its three probes fail (500); over the WebSocket the
    //    socket's next upgrade does (the stream is reopened after a dropped socket).
    if transport == StreamTransport::WebSocket {
        emu.control().fail_next(Route::Events, 500, 1);
        cut();
    } else {
        emu.control().fail_next(Route::Events, 500, 4);
    }
    post(2);
    let (e, seen) = expect_event_seen(&events, reconnected);
    assert!(
        names(&seen).contains(&"EVENT_STREAM_FAILED"),
        "{:?}",
        names(&seen)
    );
    texts(&seen, &e.event, &mut got);
    post(1);

    // 2. A hung request, past the 3 s poll timeout.
    emu.control().hang_next_polls(1, Duration::from_secs(30));
    if transport == StreamTransport::WebSocket {
        cut();
    }
    post(2);
    let (e, seen) = expect_event_seen(&events, reconnected);
    assert!(
        names(&seen).contains(&"EVENT_STREAM_FAILED"),
        "{:?}",
        names(&seen)
    );
    texts(&seen, &e.event, &mut got);

    // 3. A dropped connection. The WebSocket reconnects. A held long poll's connection,
    //    kept from the poll before, ends before a byte of answer: the poll goes again at once
    //    on a new connection (`chat_net::http1::may_resend`), without a stream failure.
    cut();
    post(2);
    if transport == StreamTransport::WebSocket {
        let (e, seen) = expect_event_seen(&events, reconnected);
        texts(&seen, &e.event, &mut got);
    }
    post(1);
    let last = format!("m{}", next - 1);
    let (e, seen) = expect_event_seen(&events, arrived_with(&last));
    if transport == StreamTransport::LongPoll {
        assert!(
            !names(&seen).contains(&"EVENT_STREAM_FAILED"),
            "{:?}",
            names(&seen)
        );
    }
    texts(&seen, &e.event, &mut got);

    let want: Vec<String> = (1..next).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want, "every message once, in order");
    client.shutdown(None).unwrap();
}

both!(faults, super::faults_lose_nothing);

/// Advances the client's clock by `step` until an event matches, collecting the others.
fn advance_until(
    client: &Client,
    events: &EventStream,
    step: Duration,
    pred: impl Fn(&Event) -> bool,
) -> (Event, Vec<Event>) {
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        assert!(start.elapsed() < PATIENCE, "seen: {:?}", names(&seen));
        client.advance_clock(step);
        while let Ok(e) = events.recv_timeout(Duration::from_millis(20)) {
            if pred(&e.event) {
                return (e.event, seen);
            }
            seen.push(e.event);
        }
    }
}

fn reconnection_timeout_then_retry(transport: StreamTransport) {
    let emu = emulator(AgentMode::Off);
    let (builder, cut) = cuttable(&emu, transport, "nina");
    let (client, events) = builder
        .config(Config {
            reconnection_timeout: Duration::from_secs(120),
            ..config()
        })
        .connect()
        .unwrap();
    let chat = client.create_engagement().unwrap();
    expect_event(&events, is_active);
    assert_eq!(client.retry_connection().unwrap_err().code(), "ACS-318");

    // The service goes away for good: every attempt fails.
    emu.control().fail_next(Route::Events, 503, 100_000);
    cut();
    let (_, seen) = advance_until(
        &client,
        &events,
        Duration::from_secs(2),
        failed(StreamFailureReason::ReconnectionTimeout),
    );
    let retries = seen
        .iter()
        .filter(|e| matches!(e, Event::EventStreamConnecting))
        .count();
    assert!(retries >= 3, "{:?}", names(&seen));
    assert_eq!(client.stream_state(), StreamState::Failed);

    // Back: nothing happens by itself; the app's retry reconnects, and nothing is lost.
    emu.control().clear_faults();
    emu.control()
        .post_message(chat.id(), ParticipantType::Agent, "during the outage")
        .unwrap();
    client.retry_connection().unwrap();
    let (_, seen) = expect_event_seen(&events, arrived_with("during the outage"));
    assert!(names(&seen).contains(&"EVENT_STREAM_CONNECTED"), "{seen:?}");
    client.shutdown(None).unwrap();
}

both!(reconnection_timeout, super::reconnection_timeout_then_retry);

fn inactivity_shutdown(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent);
    let (client, events) = builder(&emu, transport, "oscar")
        .config(Config {
            idle_timeout: Some(Duration::from_secs(300)),
            idle_shutdown_grace_timeout: Duration::from_secs(30),
            ..config()
        })
        .connect()
        .unwrap();
    client.create_engagement().unwrap();
    expect_event(&events, |e| matches!(e, Event::MessageArrived(_)));

    let idle = |e: &Event| matches!(e, Event::IdleTimeoutExpired { .. });
    let (event, _) = advance_until(&client, &events, Duration::from_secs(50), idle);
    assert_eq!(
        event,
        Event::IdleTimeoutExpired {
            grace_period: Duration::from_secs(30)
        }
    );
    // Activity during the grace period cancels it.
    client.reset_idle_timeout().unwrap();
    client.advance_clock(Duration::from_secs(60));
    let (_, seen) = advance_until(&client, &events, Duration::from_secs(50), idle);
    assert!(!names(&seen).contains(&"SHUTDOWN"), "{seen:?}");
    let (event, _) = advance_until(&client, &events, Duration::from_secs(10), |e| {
        matches!(e, Event::Shutdown { .. })
    });
    assert_eq!(
        event,
        Event::Shutdown {
            reason: Some(ShutdownReason::UserInactive)
        }
    );
    assert!(events.recv().is_none());
    assert!(client.is_closed());
    assert_eq!(client.thread_count(), 0);
    assert_eq!(client.reset_idle_timeout().unwrap_err().code(), "ACS-310");
    assert_eq!(emu.control().stats().ongoing_engagements, 1);
}

both!(inactivity, super::inactivity_shutdown);

fn session_not_found(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent);
    let (client, events) = connect(&emu, transport, "pia");
    let chat = client.create_engagement().unwrap();
    expect_event(&events, is_active);
    assert!(emu.control().invalidate_session(client.session_id()));
    let (_, seen) = expect_event_seen(
        &events,
        failed(StreamFailureReason::ClientSessionInvalidated),
    );
    assert!(names(&seen).contains(&"EVENT_STREAM_CLOSED"), "{seen:?}");
    let e = client.create_engagement().unwrap_err();
    assert_eq!(e.code(), "ACS-320");
    assert_eq!(chat.send_message("x").unwrap_err().code(), "ACS-320");
    // The client ends, and says why (issue #12 item 8: it looked alive).
    assert_eq!(
        client.closed(),
        chat_blocking::EndReason::SessionInvalidated
    );
    assert!(client.is_closed());
    assert!(client.resumption().is_err());
    for e in &events {
        assert!(!matches!(e.event, Event::EventStreamConnecting), "{e:?}");
    }
    assert_eq!(client.thread_count(), 0);
    assert_eq!(client.shutdown(None).unwrap_err().code(), "ACS-320");
}

both!(invalidated, super::session_not_found);

/// A REST call that hangs does not hold up the events, and fails at its timeout.
#[test]
fn a_hung_command_does_not_stall_events() {
    let emu = emulator(AgentMode::Off);
    let (client, events) = builder(&emu, StreamTransport::LongPoll, "quentin")
        .config(Config {
            request_timeout: Duration::from_secs(1),
            ..config()
        })
        .connect()
        .unwrap();
    let chat = client.create_engagement().unwrap();
    expect_event(&events, is_active);
    emu.control()
        .hang_next(Route::Messages, 1, Duration::from_secs(3));
    let sender = std::thread::spawn({
        let chat = chat.clone();
        move || chat.send_message("stuck")
    });
    emu.control()
        .post_message(chat.id(), ParticipantType::Agent, "meanwhile")
        .unwrap();
    let start = Instant::now();
    expect_event(&events, arrived_with("meanwhile"));
    let err = sender.join().unwrap().unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(err.as_chat().is_some(), "{err}");
    client.shutdown(None).unwrap();
    assert_eq!(client.thread_count(), 0);
}
