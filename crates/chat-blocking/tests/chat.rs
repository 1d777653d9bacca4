//! The typical sequences of a chat: a new chat with the agent, join from a second session,
//! several chats at once, an engagement error, commands checked before activation, leave and
//! shut down, history pages, resume, the outbox; each over both transports.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use chat_blocking::{
    Config, DisconnectReason, EngagementStatus, Event, ParticipantType, ShutdownReason,
    StreamTransport,
};
use chat_emulator::{AgentMode, Route};
use support::*;

fn new_chat(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent);
    let (client, events) = connect(&emu, transport, "alice");
    let first = events.recv().expect("first event");
    assert!(matches!(first.event, Event::Initialized(ref ctx) if ctx.engagements.is_empty()));

    let chat = client.create_engagement().unwrap();
    assert_eq!(chat.info().status, EngagementStatus::Pending);
    let (_, before) = expect_event_seen(&events, is_active);
    assert_eq!(
        names(&before),
        ["EVENT_STREAM_CONNECTING", "EVENT_STREAM_CONNECTED"]
    );
    let added = expect_event(&events, |e| matches!(e, Event::ParticipantAdded(_)));
    let Event::ParticipantAdded(p) = added.event else {
        unreachable!()
    };
    assert_eq!(p.participant.participant_type, ParticipantType::Customer);
    assert_eq!(chat.status(), EngagementStatus::Active);
    // The agent joins and greets.
    expect_event(&events, |e| matches!(e, Event::MessageArrived(_)));
    let participants = chat.participants().unwrap();
    assert!(
        participants
            .iter()
            .any(|p| p.participant_type == ParticipantType::Agent)
    );

    let sent = chat.send_message("Where is my parcel?").unwrap();
    assert_eq!(sent.text(), Some("Where is my parcel?"));
    let echo = expect_event(&events, |e| matches!(e, Event::MessageDelivered(_)));
    let Event::MessageDelivered(echo) = echo.event else {
        unreachable!()
    };
    assert_eq!(echo.message_id, sent.message_id);
    expect_event(&events, arrived_with("Where is my parcel?"));

    let reply = chat.send_reply(&sent.message_id, "Thanks").unwrap();
    assert_eq!(reply.parent_message_id.as_ref(), Some(&sent.message_id));
    assert_eq!(chat.send_message("").unwrap_err().code(), "ACS-322");
    let long = chat.send_message(&"x".repeat(4097)).unwrap_err();
    assert_eq!(long.code(), "ACS-322");
    assert_eq!(chat.join().unwrap_err().code(), "ACS-315");
    client.shutdown(None).unwrap();
}

both!(new_chat_sequence, super::new_chat);

/// Commands chat-core checks synchronously, before the customer's activation.
#[test]
fn send_before_activation_is_acs_313() {
    let emu = emulator(AgentMode::Off);
    // Hold the customer's activation back: the stream's answers are delayed.
    emu.control()
        .delay_responses(Route::Events, Some(Duration::from_millis(500)));
    let (client, _events) = connect(&emu, StreamTransport::LongPoll, "bob");
    let chat = client.create_engagement().unwrap();
    assert_eq!(chat.status(), EngagementStatus::Pending);
    let e = chat.send_message("too early").unwrap_err();
    assert_eq!(e.code(), "ACS-313");
    assert_eq!(chat.disconnect(None).unwrap_err().code(), "ACS-313");
    // An engagement this session does not know.
    let unknown = client.engagement_handle(chat_blocking::EngagementInfo {
        engagement_id: chat_blocking::EngagementId::new("e0000000-0000-4000-8000-00000000ffff"),
        ..chat.info().clone()
    });
    assert_eq!(unknown.send_message("x").unwrap_err().code(), "ACS-314");
    assert_eq!(unknown.join().unwrap_err().code(), "ACS-314");
    client.shutdown(None).unwrap();
}

fn engagement_error(transport: StreamTransport) {
    let emu = emulator(AgentMode::Off);
    let (client, events) = connect(&emu, transport, "zoe");
    let chat = client.create_engagement().unwrap();
    expect_event(&events, is_active);
    emu.control()
        .raise_engagement_error(chat.id(), "Routing failed", "No agent available")
        .unwrap();
    let e = expect_event(&events, |e| matches!(e, Event::EngagementError { .. }));
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
    assert_eq!(chat.send_message("x").unwrap_err().code(), "ACS-314");
    client.shutdown(None).unwrap();
}

both!(engagement_error_sequence, super::engagement_error);

fn several_chats(transport: StreamTransport) {
    let emu = emulator(AgentMode::Off);
    let (client, events) = connect(&emu, transport, "leo");
    let chats: Vec<_> = (0..3)
        .map(|_| client.create_engagement().unwrap())
        .collect();
    for _ in 0..3 {
        expect_event(&events, is_active);
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
        let e = expect_event(&events, |e| matches!(e, Event::MessageArrived(_)));
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
    chats[0].disconnect(None).unwrap();
    expect_event(&events, |e| matches!(e, Event::EngagementTerminated(_)));
    chats[1].send_message("still on").unwrap();
    let (_, seen) = expect_event_seen(
        &events,
        |e| matches!(e, Event::MessageDelivered(m) if m.text() == Some("still on")),
    );
    assert!(!names(&seen).contains(&"EVENT_STREAM_CLOSED"));
    assert_eq!(client.engagements().len(), 2);
    client.shutdown(None).unwrap();
}

both!(several, super::several_chats);

/// Commands from another thread while this one reads events: nothing deadlocks, and the
/// reading thread drives the replies.
#[test]
fn commands_from_another_thread_while_iterating() {
    let emu = emulator(AgentMode::Agent);
    let (client, events) = connect(&emu, StreamTransport::LongPoll, "amy");
    let chat = client.create_engagement().unwrap();
    expect_event(&events, arrived_with("Hello"));
    let sender = std::thread::spawn({
        let chat = chat.clone();
        move || {
            for i in 0..3 {
                chat.send_message(&format!("from a thread {i}")).unwrap();
            }
        }
    });
    // The agent answers each on its own timer: the answers may come in any order.
    let mut answered = std::collections::BTreeSet::new();
    while answered.len() < 3 {
        let e = expect_event(&events, arrived_with("from a thread"));
        let Event::MessageArrived(m) = e.event else {
            unreachable!()
        };
        let text = m.text().unwrap_or_default();
        answered.insert((0..3).find(|i| text.contains(&format!("from a thread {i}"))));
    }
    assert!(!answered.contains(&None), "{answered:?}");
    sender.join().unwrap();
    client.shutdown(None).unwrap();
}

fn join_from_second_session(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent);
    let (first, first_events) = connect(&emu, transport, "kate");
    let chat = first.create_engagement().unwrap();
    expect_event(&first_events, arrived_with("Hello"));
    chat.send_message("from the laptop").unwrap();

    let (second, second_events) = connect(&emu, transport, "kate");
    let init = second_events.recv().unwrap();
    let Event::Initialized(ctx) = init.event else {
        panic!("{init:?}")
    };
    assert_eq!(ctx.engagements.len(), 1);
    let listed = second.list_engagements().unwrap();
    assert_eq!(listed.len(), 1);
    let there = &listed[0];
    assert_eq!(there.id(), chat.id());
    assert_eq!(there.info().status, EngagementStatus::Pending);
    let preview = there.history(10).unwrap();
    assert!(
        preview
            .items()
            .iter()
            .any(|m| m.text() == Some("from the laptop"))
    );
    assert_eq!(there.send_message("x").unwrap_err().code(), "ACS-313");

    there.join().unwrap();
    expect_event(&second_events, is_active);
    chat.send_message("typed on the laptop").unwrap();
    expect_event(
        &second_events,
        |e| matches!(e, Event::MessageDelivered(m) if m.text() == Some("typed on the laptop")),
    );
    expect_event(&second_events, arrived_with("typed on the laptop"));
    expect_event(&first_events, arrived_with("typed on the laptop"));
    first.shutdown(None).unwrap();
    second.shutdown(None).unwrap();
}

both!(join, super::join_from_second_session);

fn leave_then_shutdown(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent);
    let (client, events) = connect(&emu, transport, "carol");
    let chat = client.create_engagement().unwrap();
    expect_event(&events, is_active);
    expect_event(&events, |e| matches!(e, Event::MessageArrived(_)));

    chat.disconnect(Some(DisconnectReason::UserClosed)).unwrap();
    let (_, seen) = expect_event_seen(&events, |e| matches!(e, Event::EngagementTerminated(_)));
    assert!(
        names(&seen).contains(&"PARTICIPANT_DISCONNECTED"),
        "{seen:?}"
    );
    assert_eq!(chat.status(), EngagementStatus::Terminated);
    assert_eq!(chat.send_message("hello?").unwrap_err().code(), "ACS-314");
    assert_eq!(chat.participants().unwrap_err().code(), "ACS-314");

    client.shutdown(Some(ShutdownReason::UserClosed)).unwrap();
    assert_eq!(client.thread_count(), 0);
    // Every remaining event, then the end of the iteration.
    let rest: Vec<Event> = events.map(|e| e.event).collect();
    assert!(rest.contains(&Event::EventStreamClosed), "{rest:?}");
    assert_eq!(
        rest.last(),
        Some(&Event::Shutdown {
            reason: Some(ShutdownReason::UserClosed)
        })
    );
    assert!(client.is_closed());
    let e = client.create_engagement().unwrap_err();
    assert_eq!(e.code(), "ACS-310");
    assert_eq!(client.shutdown(None).unwrap_err().code(), "ACS-310");
    assert_eq!(emu.control().stats().sessions, 0);
    assert_eq!(emu.control().stats().ongoing_engagements, 0);
}

both!(leave_sequence, super::leave_then_shutdown);

#[test]
fn shutdown_keeps_engagements_going() {
    let emu = emulator(AgentMode::Agent);
    let (client, events) = connect(&emu, StreamTransport::LongPoll, "dave");
    client.create_engagement().unwrap();
    expect_event(&events, is_active);
    client.shutdown(None).unwrap();
    assert_eq!(emu.control().stats().ongoing_engagements, 1);
    assert_eq!(client.shutdown(None).unwrap_err().code(), "ACS-310");
}

#[test]
fn history_pager_and_page_iterator_cover_everything_once() {
    let emu = emulator(AgentMode::Off);
    let (client, events) = connect(&emu, StreamTransport::LongPoll, "mia");
    let chat = client.create_engagement().unwrap();
    expect_event(&events, is_active);
    // More than one server page (50).
    for i in 1..=73 {
        emu.control()
            .post_message(chat.id(), ParticipantType::Agent, &format!("h{i}"))
            .unwrap();
    }
    expect_event(
        &events,
        |e| matches!(e, Event::MessageArrived(m) if m.text() == Some("h73")),
    );

    let mut pager = chat.history(20).unwrap();
    assert_eq!(pager.page_size(), 20);
    assert!(!pager.has_newer());
    let mut seen = Vec::new();
    loop {
        seen.extend(pager.items().iter().map(|m| m.message_index));
        if !pager.older().unwrap() {
            break;
        }
    }
    assert!(!pager.has_older());
    let want: Vec<u64> = (1..=73).rev().collect();
    assert_eq!(seen, want);
    assert!(pager.newer());
    assert_eq!(pager.items().len(), 20);

    let pages: Vec<Vec<chat_blocking::Message>> =
        chat.history_pages(30).collect::<Result<_, _>>().unwrap();
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [30, 30, 13]);
    let all: Vec<u64> = pages.iter().flatten().map(|m| m.message_index).collect();
    assert_eq!(all, want);
    let transcript = chat.transcript().unwrap();
    let indexes: Vec<u64> = transcript.iter().map(|m| m.message_index).collect();
    assert_eq!(indexes, (1..=73).collect::<Vec<_>>());
    for bad in [0, 51] {
        assert_eq!(chat.history(bad).unwrap_err().code(), "ACS-322");
    }
    client.shutdown(None).unwrap();
}

fn resume_session(transport: StreamTransport) {
    let emu = emulator(AgentMode::Agent);
    let (client, events) = connect(&emu, transport, "judy");
    let chat = client.create_engagement().unwrap();
    expect_event(&events, |e| matches!(e, Event::MessageArrived(_)));
    chat.send_message("before the reload").unwrap();
    expect_event(&events, arrived_with("before the reload"));
    let resumption = client.resumption().unwrap();
    assert_eq!(resumption.active_engagements, [chat.id().clone()]);
    // The "reload": everything dropped, nothing deleted.
    drop((client, events, chat));

    let eid = resumption.active_engagements[0].clone();
    emu.control()
        .post_message(&eid, ParticipantType::Agent, "while you were away")
        .unwrap();
    let (client, events) = builder(&emu, transport, "judy")
        .resume(resumption.clone())
        .connect()
        .unwrap();
    assert_eq!(client.session_id(), &resumption.session_id);
    let init = events.recv().unwrap();
    let Event::Initialized(ctx) = init.event else {
        panic!("{init:?}")
    };
    assert_eq!(ctx.engagements[0].status, EngagementStatus::Active);
    // What came while away arrives (from history, or the stream: whichever is first), and
    // the stream connects.
    let (_, seen) = expect_event_seen(&events, arrived_with("while you were away"));
    if !names(&seen).contains(&"EVENT_STREAM_CONNECTED") {
        expect_event(&events, |e| matches!(e, Event::EventStreamConnected));
    }
    let chat = client.engagement(&eid).unwrap();
    chat.send_message("back again").unwrap();
    expect_event(&events, arrived_with("back again"));
    client.shutdown(None).unwrap();

    let err = builder(&emu, transport, "judy")
        .resume(resumption)
        .connect()
        .unwrap_err();
    assert_eq!(err.code(), "ACS-320");
}

both!(resume, super::resume_session);

/// The outbox (`Config::outbox`): a lost answer, refusals and a dropped request each end with
/// the message delivered, and stored once.
fn each_send_is_stored_once(transport: StreamTransport) {
    let emu = emulator(AgentMode::Off);
    let control = emu.control();
    let (client, events) = builder(&emu, transport, "olga")
        .config(Config {
            outbox: Some(Duration::from_secs(60)),
            ..config()
        })
        .connect()
        .unwrap();
    let chat = client.create_engagement().unwrap();
    expect_event(&events, is_active);

    // Stored, but the answer is lost: found in history, not sent again.
    control.lose_next_answers(Route::Messages, 1);
    let first = chat.send_message("first").unwrap();
    // Refused twice, then sent.
    control.fail_next(Route::Messages, 503, 2);
    let second = chat.send_message("second").unwrap();
    // Lost before the server saw it: sent again.
    control.drop_next(Route::Messages, 1);
    let third = chat.send_message("third").unwrap();
    assert!(first.message_index < second.message_index);
    assert!(second.message_index < third.message_index);

    let pager = chat.history(50).unwrap();
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
        let e = expect_event(&events, |e| matches!(e, Event::MessageDelivered(_)));
        if let Event::MessageDelivered(m) = e.event {
            delivered.push(m.message_id);
        }
    }
    assert_eq!(
        delivered,
        [first.message_id, second.message_id, third.message_id]
    );
    client.shutdown(None).unwrap();
}

both!(outbox, super::each_send_is_stored_once);
