//! Sessions that survive the process: the snapshot, write-ahead of held sends, restore from a
//! snapshot (held sends checked against history, never sent twice), the recovery of a session
//! the server forgot, and a process that gives its session up.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod support;

use std::time::Duration;

use chat_core::{
    ChatError, Config, EndReason, EngagementId, ReplyValue, Request, Session, Snapshot,
};
use serde_json::json;
use support::*;

fn durable() -> Config {
    Config {
        outbox: Some(Duration::from_secs(600)),
        write_ahead: true,
        ..Config::default()
    }
}

/// Answers every read of history, as they come, with no message: how many there were.
fn answer_reads(h: &mut Harness) -> usize {
    let mut n = 0;
    loop {
        h.drain();
        let Some(at) = h
            .sent
            .iter()
            .position(|r| r.method.as_str() == "GET" && r.url.contains("/messages"))
        else {
            return n;
        };
        let read = h.sent.remove(at).expect("present");
        h.respond(&read, 200, customer_page(&[]));
        n += 1;
    }
}

fn posts(h: &mut Harness) -> usize {
    h.drain();
    h.sent
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.contains("/messages"))
        .count()
}

/// A durable session with an active chat, everything saved so far.
fn saved_session() -> (Harness, EngagementId) {
    let mut h = Harness::new(durable());
    h.init();
    let e = h.active_engagement();
    h.take_events();
    let v = h.session.snapshot_version();
    h.session.handle_saved(h.now, v);
    (h, e)
}

#[test]
fn a_send_goes_out_only_once_a_snapshot_holding_it_is_saved() {
    let (mut h, e) = saved_session();
    let before = h.session.snapshot_version();
    let id = h.session.send_message(h.now, &e, "hello", None).unwrap();
    assert!(
        h.session.snapshot_version() > before,
        "a held send changes it"
    );
    assert_eq!(posts(&mut h), 0, "not before the store has it");
    let snapshot = h.session.snapshot();
    assert_eq!(snapshot.sends.len(), 1);
    assert_eq!(snapshot.sends[0].text, "hello");

    // An older save does not let it go.
    h.session.handle_saved(h.now, before);
    assert_eq!(posts(&mut h), 0);
    h.session.handle_saved(h.now, h.session.snapshot_version());
    let post = h.take_rest("POST", "/messages");
    assert_eq!(sent_text(&post), "hello");
    h.respond(&post, 200, rest_message(1, "CUSTOMER", "hello"));
    assert!(matches!(h.take_reply(id), Ok(ReplyValue::MessageSent(_))));
    assert!(
        h.session.snapshot().sends.is_empty(),
        "settled: no longer kept"
    );

    // Without write-ahead the same send goes at once.
    let mut h = Harness::new(Config {
        outbox: Some(Duration::from_secs(600)),
        ..Config::default()
    });
    h.init();
    let e = h.active_engagement();
    h.session.send_message(h.now, &e, "hello", None).unwrap();
    assert_eq!(posts(&mut h), 1);
}

#[test]
fn write_ahead_needs_the_outbox() {
    let config = Config {
        write_ahead: true,
        ..Config::default()
    };
    assert!(matches!(
        config.validate(),
        Err(ChatError::InvalidConfig(m)) if m.contains("outbox")
    ));
}

#[test]
fn the_snapshot_holds_the_session_the_chat_and_no_secret() {
    let (mut h, e) = saved_session();
    h.session.send_message(h.now, &e, "hi", None).unwrap();
    let snapshot = h.session.snapshot();
    let r = snapshot.resumption.as_ref().expect("a session");
    assert_eq!(r.session_id.as_str(), SESSION);
    assert_eq!(r.active_engagements, std::slice::from_ref(&e));
    let json = snapshot.to_json();
    assert!(!json.contains(APPKEY) && !json.contains("jwt."), "{json}");
    assert_eq!(Snapshot::from_json(&json).unwrap(), snapshot);
}

/// A snapshot as a process that crashed mid-send left it: one chat, one held send.
fn crashed_snapshot() -> Snapshot {
    let (mut h, e) = saved_session();
    h.session.send_message(h.now, &e, "hello", None).unwrap();
    h.session.snapshot()
}

/// A new process restores `snapshot`: `GET` of the session answered with the chat active.
fn restored(snapshot: Snapshot) -> Harness {
    let mut h = Harness::new(durable());
    h.session
        .restore(h.now, h.wall(), snapshot)
        .expect("restore");
    let get = h.take_rest("GET", &format!("/sessions/{SESSION}"));
    h.respond(
        &get,
        200,
        session_json(json!([engagement_json(
            ENGAGEMENT,
            "ACTIVE",
            json!([{"participantId": CUSTOMER, "participantType": "CUSTOMER"}])
        )])),
    );
    h
}

#[test]
fn a_restored_send_that_arrived_before_the_crash_is_not_sent_again() {
    let mut h = restored(crashed_snapshot());
    assert!(h.take_event_names().contains(&"INITIALIZED"));
    // The chat is caught up from what the application had taken (nothing: from the start);
    // the held send looks at history first.
    let reads: Vec<Request> = {
        h.drain();
        h.sent
            .iter()
            .filter(|r| r.method.as_str() == "GET" && r.url.contains("/messages"))
            .cloned()
            .collect()
    };
    assert_eq!(
        reads.len(),
        2,
        "a catch-up and the send's check: {reads:#?}"
    );
    assert_eq!(posts(&mut h), 0, "no send before the look at history");
    for read in reads {
        h.sent.retain(|r| r.id != read.id);
        h.respond(&read, 200, customer_page(&[(1, "hello")]));
    }
    assert_eq!(posts(&mut h), 0, "it arrived: not sent again");
    assert!(h.session.snapshot().sends.is_empty(), "and settled");
}

#[test]
fn a_restored_send_that_never_arrived_is_sent_once() {
    let mut h = restored(crashed_snapshot());
    h.drain();
    let reads: Vec<Request> = h
        .sent
        .iter()
        .filter(|r| r.method.as_str() == "GET" && r.url.contains("/messages"))
        .cloned()
        .collect();
    for read in reads {
        h.sent.retain(|r| r.id != read.id);
        h.respond(&read, 200, customer_page(&[]));
    }
    let post = h.take_rest("POST", "/messages");
    assert_eq!(sent_text(&post), "hello");
    assert_eq!(posts(&mut h), 0, "once");
}

#[test]
fn a_session_the_server_forgot_is_replaced_and_its_chat_joined_again() {
    let mut h = Harness::new(durable());
    let init = h
        .session
        .restore(h.now, h.wall(), crashed_snapshot())
        .expect("restore");
    let get = h.take_rest("GET", &format!("/sessions/{SESSION}"));
    h.respond(
        &get,
        404,
        json!({"code": "404", "message": "Session not found"}),
    );
    // A new session, under the same call.
    let create = h.take_rest("POST", "/sessions");
    assert_eq!(create.id, init);
    h.respond(
        &create,
        201,
        session_json(json!([engagement_json(ENGAGEMENT, "ACTIVE", json!([]))])),
    );
    assert!(matches!(h.take_reply(init), Ok(ReplyValue::Initialized(_))));
    assert_eq!(posts(&mut h), 0, "not before the chat is joined again");
    let join = h.take_rest("POST", &format!("/engagements/{ENGAGEMENT}:join"));
    h.respond(&join, 200, engagement_json(ENGAGEMENT, "ACTIVE", json!([])));
    let poll = h.take_poll();
    h.respond(
        &poll,
        200,
        json!([participant_event(
            "ev-9",
            "PARTICIPANT_ADDED",
            CUSTOMER,
            "CUSTOMER"
        )]),
    );
    assert!(h.take_event_names().contains(&"ENGAGEMENT_ACTIVE"));
    // Caught up from history, and the held send checked, then sent: nothing lost.
    let reads = answer_reads(&mut h);
    assert!(
        reads >= 2,
        "the gap filled and the send checked: {reads}, {:#?}",
        h.sent
    );
    let post = h.take_rest("POST", "/messages");
    assert_eq!(sent_text(&post), "hello");
    assert!(h.session.is_ready());
}

#[test]
fn a_plain_resume_of_a_forgotten_session_still_fails_with_acs_320() {
    let mut h = Harness::new(durable());
    let r = crashed_snapshot().resumption.unwrap();
    let id = h.session.resume(h.now, h.wall(), r).unwrap();
    let get = h.take_rest("GET", "/sessions/");
    h.respond(&get, 404, json!({"message": "Session not found"}));
    assert_eq!(h.take_reply(id), Err(ChatError::SessionNotFound));
}

#[test]
fn a_session_given_up_sends_nothing_more() {
    let (mut h, e) = saved_session();
    let id = h.session.send_message(h.now, &e, "hello", None).unwrap();
    h.session.abandon(h.now);
    assert_eq!(h.session.end_reason(), Some(EndReason::Abandoned));
    assert_eq!(h.take_reply(id), Err(ChatError::NotInitialized));
    h.session.handle_saved(h.now, h.session.snapshot_version());
    h.advance(Duration::from_secs(60));
    assert_eq!(posts(&mut h), 0);
    assert!(h.session.snapshot().resumption.is_none());
}

#[test]
fn an_empty_snapshot_starts_a_fresh_session() {
    let mut h = Harness::new(durable());
    let id = h.session.restore(h.now, h.wall(), Snapshot::new()).unwrap();
    let create = h.take_rest("POST", "/sessions");
    assert_eq!(create.id, id);
}

#[test]
fn held_sends_need_the_outbox_to_be_restored() {
    let mut s = Session::new(
        chat_core::InitParams::new(
            HOST,
            INTEGRATION,
            token(WALL0_UNIX + 900),
            chat_core::AppKey::new(APPKEY),
        )
        .unwrap(),
        Config::default(),
    )
    .unwrap();
    let now = std::time::Instant::now();
    let wall = std::time::UNIX_EPOCH + Duration::from_secs(WALL0_UNIX);
    assert!(matches!(
        s.restore(now, wall, crashed_snapshot()),
        Err(ChatError::InvalidConfig(_))
    ));
}

#[test]
fn wait_saved_completes_once_the_store_holds_every_send_accepted() {
    let (mut h, e) = saved_session();
    let at_once = h.session.wait_saved(h.now).unwrap();
    assert_eq!(
        h.take_reply(at_once),
        Ok(ReplyValue::Saved),
        "nothing unsaved"
    );
    h.session.send_message(h.now, &e, "one", None).unwrap();
    let barrier = h.session.wait_saved(h.now).unwrap();
    h.drain();
    assert!(h.replies.iter().all(|r| r.id != barrier), "not yet");
    h.session.handle_saved(h.now, h.session.snapshot_version());
    assert_eq!(h.take_reply(barrier), Ok(ReplyValue::Saved));
    // One still waiting when the process gives the session up fails.
    h.session.send_message(h.now, &e, "two", None).unwrap();
    let barrier = h.session.wait_saved(h.now).unwrap();
    h.session.abandon(h.now);
    assert_eq!(h.take_reply(barrier), Err(ChatError::NotInitialized));
}

#[test]
fn a_session_kept_in_a_store_that_the_server_forgets_mid_chat_is_replaced_in_place() {
    let (mut h, e) = saved_session();
    let id = h
        .session
        .send_message(h.now, &e, "in flight", None)
        .unwrap();
    h.session.handle_saved(h.now, h.session.snapshot_version());
    let post = h.take_rest("POST", "/messages");
    // The server forgot the session: the poll says so. The send in flight is abandoned,
    // not failed.
    let poll = h.take_poll();
    h.respond(&poll, 404, json!({"detail": "Session not found"}));
    assert!(h.aborted.contains(&post.id));
    let names = h.take_event_names();
    assert!(names.contains(&"EVENT_STREAM_CLOSED"), "{names:?}");
    assert!(
        !names.contains(&"EVENT_STREAM_FAILED"),
        "not ended: {names:?}"
    );
    assert!(
        h.replies.iter().all(|r| r.id != id),
        "the send is still held"
    );
    assert!(!h.session.is_ended());

    // The replacement is refused once (an outage), and tried again after a backoff.
    let create = h.take_rest("POST", "/sessions");
    h.respond(&create, 503, json!({}));
    assert!(h.session.end_reason().is_none());
    h.advance_to_deadline().expect("a retry");
    let create = h.take_rest("POST", "/sessions");
    h.respond(
        &create,
        201,
        json!({"sessionId": "5e55e55e-0000-4000-8000-000000000002", "engagements": [
            engagement_json(ENGAGEMENT, "ACTIVE", json!([]))]}),
    );
    assert!(h.take_event_names().contains(&"INITIALIZED"));
    let join = h.take_rest("POST", &format!("/engagements/{ENGAGEMENT}:join"));
    assert!(join.body.as_deref().unwrap_or("").contains("000000000002"));
    h.respond(&join, 200, engagement_json(ENGAGEMENT, "ACTIVE", json!([])));
    let poll = h.take_poll();
    assert!(poll.url.contains("000000000002"));
    h.respond(
        &poll,
        200,
        json!([participant_event(
            "ev-7",
            "PARTICIPANT_ADDED",
            CUSTOMER,
            "CUSTOMER"
        )]),
    );
    // Gap filled, the send checked (it may have arrived before the loss), then sent once.
    answer_reads(&mut h);
    let post = h.take_rest("POST", "/messages");
    assert_eq!(sent_text(&post), "in flight");
    h.respond(&post, 200, rest_message(3, "CUSTOMER", "in flight"));
    assert!(matches!(h.take_reply(id), Ok(ReplyValue::MessageSent(_))));
    let r = h.session.snapshot().resumption.unwrap();
    assert_eq!(
        r.session_id.as_str(),
        "5e55e55e-0000-4000-8000-000000000002"
    );
}
