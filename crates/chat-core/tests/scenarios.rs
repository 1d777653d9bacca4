//! The typical sequences of the reference (section 7), played against the harness.
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::Duration;

use chat_core::wire::{DisconnectReason, EngagementStatus, ShutdownReason};
use chat_core::{
    ChatError, Config, EngagementId, Event, MessageId, ReplyValue, RequestKind, Resumption,
    StreamFailureReason, StreamState, TransportError,
};
use serde_json::{Value, json};
use support::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn body_json(r: &chat_core::Request) -> Value {
    serde_json::from_str(r.body.as_deref().expect("a body")).expect("json body")
}

fn failure(e: &Event) -> Option<(StreamFailureReason, Option<Duration>)> {
    match e {
        Event::EventStreamFailed(f) => Some((f.reason, f.retry_after)),
        _ => None,
    }
}

#[test]
fn new_chat_from_init_to_messages_both_ways() {
    let mut h = Harness::new(Config::default());
    let id = h.session.init(h.now, h.wall()).unwrap();
    let req = h.take_rest("POST", "/sessions");
    assert_eq!(req.id, id);
    assert_eq!(req.url, format!("{}/sessions", base()));
    assert_eq!(body_json(&req), json!({"clientType": "web"}));
    let headers: Vec<(&str, &str)> = req.headers().collect();
    assert_eq!(
        headers,
        [
            (
                "Authorization",
                &*format!("Bearer {}", h.session.token().unwrap().expose())
            ),
            ("appkey", APPKEY),
            ("Content-Type", "application/json"),
            ("User-Agent", chat_core::USER_AGENT),
        ]
    );
    assert!(chat_core::USER_AGENT.starts_with("axp-chat-rs/0."));
    h.respond(&req, 201, session_json(json!([])));
    assert_eq!(h.take_event_names(), ["INITIALIZED"]);
    assert!(
        matches!(h.take_reply(id), Ok(ReplyValue::Initialized(c)) if c.session_id.as_str() == SESSION)
    );

    // Nothing to stream yet.
    assert_eq!(h.polls_in_flight(), 0);
    let create = h
        .session
        .create_engagement(h.now, Default::default())
        .unwrap();
    let req = h.take_rest("POST", "/engagements");
    assert_eq!(
        body_json(&req),
        json!({"sessionId": SESSION, "engagementParameters": {}})
    );
    h.respond(&req, 201, engagement_json(ENGAGEMENT, "PENDING", json!([])));
    match h.take_reply(create) {
        Ok(ReplyValue::Engagement(e)) => assert_eq!(e.status, EngagementStatus::Pending),
        other => panic!("{other:?}"),
    }
    let e = EngagementId::new(ENGAGEMENT);
    // PENDING: sending is refused until the server reports the customer in.
    assert_eq!(
        h.session.send_message(h.now, &e, "hi", None).unwrap_err(),
        ChatError::EngagementNotActive
    );
    assert_eq!(h.take_event_names(), ["EVENT_STREAM_CONNECTING"]);
    let poll = h.take_poll();
    assert_eq!(poll.url, format!("{}/sessions/{SESSION}/events", base()));
    assert_eq!(poll.timeout, secs(40));
    assert!(
        poll.headers()
            .all(|(k, _)| k != "Content-Type" && k != "x-route-request")
    );
    h.respond(
        &poll,
        200,
        json!([
            {"eventId": "ev-1", "eventType": "ENGAGEMENT_CREATED", "engagementId": ENGAGEMENT},
            participant_event("ev-2", "PARTICIPANT_ADDED", CUSTOMER, "CUSTOMER"),
        ]),
    );
    assert_eq!(
        h.take_event_names(),
        [
            "EVENT_STREAM_CONNECTED",
            "ENGAGEMENT_ACTIVE",
            "PARTICIPANT_ADDED"
        ]
    );
    assert_eq!(
        h.session.engagement(&e).unwrap().status,
        EngagementStatus::Active
    );

    // The next poll acknowledges what was processed.
    let poll = h.take_poll();
    assert!(
        poll.url.ends_with("/events?lastEventId=ev-2"),
        "{}",
        poll.url
    );
    assert_eq!(
        poll.kind,
        RequestKind::Poll {
            last_event_id: Some("ev-2".into())
        }
    );
    h.respond(
        &poll,
        200,
        json!([
            participant_event("ev-3", "PARTICIPANT_ADDED", AGENT, "AGENT"),
            message_event("ev-4", 1, "AGENT", "Hello, how can I help?"),
        ]),
    );
    let events = h.take_events();
    assert_eq!(
        events.iter().map(Event::name).collect::<Vec<_>>(),
        ["PARTICIPANT_ADDED", "MESSAGE_ARRIVED"]
    );
    assert_eq!(
        messages_of(&events),
        [(1, "Hello, how can I help?".to_owned())]
    );

    let parent = MessageId::new(message_id(1));
    let send = h
        .session
        .send_message(h.now, &e, "My order is late", Some(&parent))
        .unwrap();
    let req = h.take_rest("POST", "/messages");
    assert_eq!(
        req.url,
        format!("{}/engagements/{ENGAGEMENT}/messages", base())
    );
    assert_eq!(
        body_json(&req),
        json!({"dialogId": DIALOG, "sessionId": SESSION, "parentMessageId": message_id(1),
               "body": {"elementType": "TEXT", "elementText": {"text": "My order is late", "textFormat": "PLAINTEXT"}}})
    );
    h.respond(&req, 200, rest_message(2, "CUSTOMER", "My order is late"));
    match h.take_reply(send) {
        Ok(ReplyValue::MessageSent(m)) => {
            assert_eq!(m.message_index, 2);
            assert_eq!(m.sender.participant_id.as_str(), CUSTOMER);
        }
        other => panic!("{other:?}"),
    }
    let poll = h.take_poll();
    h.respond(
        &poll,
        200,
        json!([message_event("ev-5", 2, "CUSTOMER", "My order is late")]),
    );
    assert_eq!(h.take_event_names(), ["MESSAGE_DELIVERED"]);
}

#[test]
fn resume_restores_active_chats_and_fetches_what_was_missed() {
    let mut h = Harness::new(Config::default());
    let e = EngagementId::new(ENGAGEMENT);
    let resumption = Resumption {
        session_id: chat_core::SessionId::new(SESSION),
        active_engagements: vec![e.clone()],
        last_message_indexes: vec![(e.clone(), 2)],
    };
    let id = h.session.resume(h.now, h.wall(), resumption).unwrap();
    let req = h.take_rest("GET", "/sessions/");
    assert_eq!(req.url, format!("{}/sessions/{SESSION}", base()));
    assert!(req.body.is_none());
    assert!(req.headers().all(|(k, _)| k != "Content-Type"));
    h.respond(
        &req,
        200,
        session_json(json!([engagement_json(ENGAGEMENT, "ACTIVE", json!([]))])),
    );
    assert!(h.take_reply(id).is_ok());
    // Unlike the official SDK, the first CONNECTING of a resume is not lost.
    assert_eq!(
        h.take_event_names(),
        ["INITIALIZED", "EVENT_STREAM_CONNECTING"]
    );
    assert_eq!(
        h.session.engagement(&e).unwrap().status,
        EngagementStatus::Active
    );

    let poll = h.take_poll();
    h.respond(
        &poll,
        200,
        json!([message_event("ev-9", 5, "AGENT", "live five")]),
    );
    // Connected; history is fetched for what came after index 2, and the live message waits.
    assert_eq!(h.take_event_names(), ["EVENT_STREAM_CONNECTED"]);
    let history = h.take_rest("GET", "/messages?");
    assert!(
        history.url.contains("pageSize=50&pageNumber=1&orderBy=DSC"),
        "{}",
        history.url
    );
    h.respond(&history, 200, history_page(&[5, 4, 3, 2, 1], ""));
    let events = h.take_events();
    assert_eq!(
        messages_of(&events)
            .iter()
            .map(|(i, _)| *i)
            .collect::<Vec<_>>(),
        [3, 4, 5],
        "each missed message once, in order"
    );
    assert_eq!(
        messages_of(&events)[2].1,
        "m5",
        "history's copy of 5 came first"
    );
}

#[test]
fn resume_of_a_session_the_server_forgot_is_acs_320() {
    let mut h = Harness::new(Config::default());
    let r = Resumption {
        session_id: chat_core::SessionId::new(SESSION),
        active_engagements: vec![],
        last_message_indexes: vec![],
    };
    let id = h.session.resume(h.now, h.wall(), r).unwrap();
    let req = h.take_rest("GET", "/sessions/");
    h.respond(&req, 404, json!({"detail": "Session not found"}));
    assert_eq!(h.take_reply(id).unwrap_err().code(), "ACS-320");
    // A failed init may be tried again.
    assert!(h.session.init(h.now, h.wall()).is_ok());
}

#[test]
fn join_a_chat_started_in_another_session() {
    let mut h = Harness::new(Config::default());
    let ctx = h.init_with(json!([engagement_json(
        ENGAGEMENT,
        "ACTIVE",
        json!([{"participantId": AGENT, "participantType": "AGENT"}])
    )]));
    h.take_events();
    let e = EngagementId::new(ENGAGEMENT);
    assert_eq!(ctx.engagements.len(), 1);
    assert_eq!(ctx.engagements[0].status, EngagementStatus::Pending);
    assert_eq!(
        h.polls_in_flight(),
        0,
        "listed engagements do not start the stream"
    );

    // History may be previewed before joining.
    let page = h.session.fetch_history(h.now, &e, None).unwrap();
    let req = h.take_rest("GET", "/messages?");
    assert_eq!(
        req.url,
        format!(
            "{}/engagements/{ENGAGEMENT}/messages?sessionId={SESSION}&dialogId={DIALOG}&pageSize=50&pageNumber=1&orderBy=DSC",
            base()
        )
    );
    let next = format!("{}/engagements/{ENGAGEMENT}/messages?pageNumber=2", base());
    h.respond(&req, 200, history_page(&[3, 2], &next));
    let link = match h.take_reply(page) {
        Ok(ReplyValue::History(p)) => {
            assert_eq!(p.messages.len(), 2);
            p.next.expect("a next page")
        }
        other => panic!("{other:?}"),
    };
    let older = h.session.fetch_history(h.now, &e, Some(&link)).unwrap();
    let req = h.take_rest("GET", "pageNumber=2");
    assert_eq!(req.url, next, "links.next is used verbatim");
    h.respond(&req, 500, Value::Null);
    assert_eq!(h.take_reply(older).unwrap_err().code(), "ACS-317");

    let join = h.session.join(h.now, &e).unwrap();
    let req = h.take_rest("POST", ":join");
    assert_eq!(req.url, format!("{}/engagements/{ENGAGEMENT}:join", base()));
    assert_eq!(
        body_json(&req),
        json!({"dialogId": DIALOG, "sessionId": SESSION})
    );
    h.respond(&req, 200, engagement_json(ENGAGEMENT, "ACTIVE", json!([])));
    match h.take_reply(join) {
        Ok(ReplyValue::Engagement(info)) => assert_eq!(info.status, EngagementStatus::Pending),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.take_event_names(), ["EVENT_STREAM_CONNECTING"]);
    let poll = h.take_poll();
    h.respond(
        &poll,
        200,
        json!([participant_event(
            "ev-1",
            "PARTICIPANT_ADDED",
            CUSTOMER,
            "CUSTOMER"
        )]),
    );
    assert_eq!(
        h.take_event_names(),
        [
            "EVENT_STREAM_CONNECTED",
            "ENGAGEMENT_ACTIVE",
            "PARTICIPANT_ADDED"
        ]
    );
    assert_eq!(
        h.session.join(h.now, &e).unwrap_err(),
        ChatError::EngagementAlreadyActive
    );
}

#[test]
fn leave_then_shut_down() {
    let mut h = Harness::new(Config::default());
    h.init();
    let e = h.active_engagement();
    h.take_events();
    let d = h
        .session
        .disconnect(h.now, &e, Some(DisconnectReason::UserClosed))
        .unwrap();
    let req = h.take_rest("POST", ":disconnect");
    assert_eq!(
        body_json(&req),
        json!({"dialogId": DIALOG, "sessionId": SESSION, "reason": "USER_CLOSED"})
    );
    h.respond(&req, 204, Value::Null);
    assert_eq!(h.take_reply(d), Ok(ReplyValue::Disconnected));
    assert_eq!(
        h.session.engagement(&e).unwrap().status,
        EngagementStatus::Terminating
    );
    assert_eq!(
        h.session
            .send_message(h.now, &e, "x", None)
            .unwrap_err()
            .code(),
        "ACS-314"
    );

    let poll = h.take_poll();
    h.respond(
        &poll,
        200,
        json!([participant_event(
            "ev-7",
            "PARTICIPANT_DISCONNECTED",
            CUSTOMER,
            "CUSTOMER"
        )]),
    );
    assert_eq!(
        h.take_event_names(),
        [
            "PARTICIPANT_DISCONNECTED",
            "ENGAGEMENT_TERMINATED",
            "EVENT_STREAM_CLOSED"
        ]
    );
    assert!(h.session.engagement(&e).is_none());
    assert_eq!(h.polls_in_flight(), 0);

    let s = h
        .session
        .shutdown(h.now, Some(ShutdownReason::UserClosed))
        .unwrap();
    let req = h.take_rest("DELETE", "/sessions/");
    assert_eq!(
        req.url,
        format!("{}/sessions/{SESSION}?reason=USER_CLOSED", base())
    );
    h.respond(&req, 204, Value::Null);
    assert_eq!(h.take_event_names(), ["SHUTDOWN"]);
    assert_eq!(h.take_reply(s), Ok(ReplyValue::Shutdown));
    assert!(h.session.is_ended());
    assert_eq!(
        h.session
            .create_engagement(h.now, Default::default())
            .unwrap_err()
            .code(),
        "ACS-310"
    );
    assert_eq!(h.drain(), None, "no timer outlives the session");
}

#[test]
fn shutdown_waits_for_requests_in_flight_and_closes_the_stream() {
    let mut h = Harness::new(Config::default());
    h.init();
    let e = h.active_engagement();
    h.take_events();
    let send = h
        .session
        .send_message(h.now, &e, "last words", None)
        .unwrap();
    let s = h.session.shutdown(h.now, None).unwrap();
    let delete = h.take_rest("DELETE", "/sessions/");
    assert_eq!(
        delete.url,
        format!("{}/sessions/{SESSION}", base()),
        "no reason, no query"
    );
    h.respond(&delete, 500, Value::Null);
    assert_eq!(
        h.take_event_names(),
        ["EVENT_STREAM_CLOSED"],
        "not SHUTDOWN yet: a send is in flight"
    );
    let req = h.take_rest("POST", "/messages");
    h.respond(&req, 200, rest_message(2, "CUSTOMER", "last words"));
    assert!(matches!(h.take_reply(send), Ok(ReplyValue::MessageSent(_))));
    assert_eq!(h.take_event_names(), ["SHUTDOWN"]);
    assert_eq!(
        h.take_reply(s),
        Ok(ReplyValue::Shutdown),
        "a failed delete still shuts down"
    );
}

#[test]
fn token_reminder_exactly_180_s_before_exp_then_expiry() {
    let mut h = Harness::new(Config {
        idle_timeout: None,
        ..Config::default()
    });
    h.init();
    h.take_events();
    // 900 s token: reminder at 720 s, expiry at 900 s.
    h.advance_to_deadline();
    assert_eq!(h.elapsed(), secs(720));
    match h.take_events().as_slice() {
        [Event::TokenExpiryReminder { expires_in, .. }] => assert_eq!(*expires_in, secs(180)),
        other => panic!("{other:?}"),
    }
    h.advance_to_deadline();
    assert_eq!(h.elapsed(), secs(900));
    assert_eq!(h.take_event_names(), ["TOKEN_EXPIRED"]);
    assert_eq!(h.drain(), None);
}

#[test]
fn set_token_rearms_the_reminder_and_a_short_token_reminds_at_once() {
    let mut h = Harness::new(Config {
        idle_timeout: None,
        ..Config::default()
    });
    h.init();
    h.take_events();
    h.advance(secs(600));
    let fresh = token(WALL0_UNIX + 600 + 1800);
    h.session.set_token(h.now, h.wall(), fresh.clone()).unwrap();
    assert!(h.take_events().is_empty());
    h.advance_to_deadline();
    assert_eq!(h.elapsed(), secs(600 + 1800 - 180));
    assert_eq!(h.take_event_names(), ["TOKEN_EXPIRY_REMINDER"]);

    // Less than 180 s left: the reminder comes at once, the expiry at exp.
    let short = token(WALL0_UNIX + 600 + 1800 - 180 + 60);
    let at = h.elapsed();
    h.session.set_token(h.now, h.wall(), short).unwrap();
    match h.take_events().as_slice() {
        [Event::TokenExpiryReminder { expires_in, .. }] => assert_eq!(*expires_in, secs(60)),
        other => panic!("{other:?}"),
    }
    h.advance_to_deadline();
    assert_eq!(h.elapsed() - at, secs(60));
    assert_eq!(h.take_event_names(), ["TOKEN_EXPIRED"]);

    // A dead token is refused.
    let dead = token(WALL0_UNIX);
    assert_eq!(
        h.session
            .set_token(h.now, h.wall(), dead)
            .unwrap_err()
            .code(),
        "ACS-322"
    );
}

#[test]
fn unauthorized_pauses_the_stream_until_a_new_token() {
    let mut h = Harness::new(Config::default());
    h.init();
    h.active_engagement();
    h.take_events();
    let poll = h.take_poll();
    h.respond(&poll, 401, Value::Null);
    let events = h.take_events();
    assert_eq!(
        events.iter().filter_map(failure).collect::<Vec<_>>(),
        [(StreamFailureReason::Unauthorized, None)]
    );
    assert_eq!(h.session.stream_state(), StreamState::Paused);
    assert_eq!(h.polls_in_flight(), 0);
    assert_eq!(
        h.session.retry_connection(h.now).unwrap_err().code(),
        "ACS-318"
    );

    let fresh = token(WALL0_UNIX + 3600);
    h.session.set_token(h.now, h.wall(), fresh.clone()).unwrap();
    let poll = h.take_poll();
    let auth = poll
        .headers()
        .find(|(k, _)| *k == "Authorization")
        .unwrap()
        .1
        .to_owned();
    assert_eq!(auth, format!("Bearer {}", fresh.expose()));
    assert!(
        h.take_events().is_empty(),
        "no CONNECTING when resuming from Paused"
    );
    h.respond(&poll, 200, json!([]));
    assert_eq!(h.take_event_names(), ["EVENT_STREAM_CONNECTED"]);
}

#[test]
fn network_loss_backs_off_times_out_and_retries_by_hand() {
    let config = Config {
        reconnection_timeout: secs(120),
        ..Config::default()
    };
    let mut h = Harness::new(config);
    h.init();
    h.active_engagement();
    h.take_events();
    let poll = h.take_poll();
    h.fail(&poll, TransportError::Connect);
    let events = h.take_events();
    assert_eq!(
        events.iter().filter_map(failure).collect::<Vec<_>>(),
        [(StreamFailureReason::ServerUnreachable, Some(secs(1)))]
    );
    assert_eq!(h.session.stream_state(), StreamState::Retry);

    let mut bases = vec![1];
    let mut waited = Vec::new();
    loop {
        let slept = h.advance_to_deadline().unwrap();
        let names = h.take_event_names();
        if names.is_empty() {
            continue;
        }
        if names == ["EVENT_STREAM_FAILED"] {
            break; // the reconnection timeout
        }
        assert_eq!(names, ["EVENT_STREAM_CONNECTING"]);
        waited.push(slept);
        let attempt = h.take_poll();
        h.fail(&attempt, TransportError::Timeout);
        let (reason, after) = h.take_events().iter().find_map(failure).unwrap();
        assert_eq!(reason, StreamFailureReason::ServerUnreachable);
        bases.push(after.unwrap().as_secs());
    }
    // Sleeps are base + [0, max(1 s, base / 2)) on the Fibonacci sequence.
    for (slept, base) in waited.iter().zip(&bases) {
        let spread = (secs(*base) / 2).max(secs(1));
        assert!(
            *slept >= secs(*base) && *slept < secs(*base) + spread,
            "{slept:?} for base {base}"
        );
    }
    assert_eq!(&bases[..6], [1, 2, 3, 5, 8, 13]);
    assert!(h.elapsed() >= secs(120));
    assert_eq!(h.session.stream_state(), StreamState::Failed);
    assert_eq!(h.polls_in_flight(), 0);

    // The app offers a button: one immediate attempt.
    h.session.retry_connection(h.now).unwrap();
    let attempt = h.take_poll();
    h.respond(&attempt, 503, Value::Null);
    assert_eq!(
        h.take_events()
            .iter()
            .filter_map(failure)
            .collect::<Vec<_>>(),
        [(StreamFailureReason::ServerUnreachable, None)]
    );
    h.session.retry_connection(h.now).unwrap();
    let attempt = h.take_poll();
    h.respond(&attempt, 200, json!([]));
    assert_eq!(h.take_event_names(), ["EVENT_STREAM_CONNECTED"]);
    assert_eq!(h.session.stream_state(), StreamState::Connected);
}

#[test]
fn server_errors_are_probed_three_times_before_retry() {
    let mut h = Harness::new(Config::default());
    h.init();
    h.active_engagement();
    h.take_events();
    let poll = h.take_poll();
    h.respond(&poll, 500, Value::Null);
    for _ in 0..3 {
        let probe = h.take_probe();
        assert_eq!(
            probe.headers().find(|(k, _)| *k == "x-route-request"),
            Some(("x-route-request", SESSION))
        );
        assert!(h.take_events().is_empty());
        h.respond(&probe, 502, Value::Null);
    }
    assert_eq!(
        h.take_events()
            .iter()
            .filter_map(failure)
            .collect::<Vec<_>>(),
        [(StreamFailureReason::ServerError, Some(secs(1)))]
    );

    // A probe that gets through means the poll just goes on, silently.
    let mut h = Harness::new(Config::default());
    h.init();
    h.active_engagement();
    h.take_events();
    let poll = h.take_poll();
    h.respond(&poll, 501, Value::Null);
    let probe = h.take_probe();
    h.respond(
        &probe,
        200,
        json!([message_event("ev-x", 1, "AGENT", "ignored body")]),
    );
    assert!(h.take_events().is_empty(), "a probe's body is not read");
    let poll = h.take_poll();
    assert!(poll.url.ends_with("lastEventId=ev-2"));
}

#[test]
fn no_reconnection_timeout_after_the_stream_stopped() {
    let config = Config {
        reconnection_timeout: secs(120),
        idle_timeout: Some(secs(300)),
        ..Config::default()
    };
    let mut h = Harness::new(config);
    h.init();
    let e = h.active_engagement();
    h.take_events();
    let poll = h.take_poll();
    h.fail(&poll, TransportError::Disconnected);
    assert_eq!(h.session.stream_state(), StreamState::Retry);
    // The engagement ends by other means (an agent ended it; the list shows it terminated).
    let list = h.session.list_engagements(h.now).unwrap();
    let req = h.take_rest("GET", "/sessions/");
    h.respond(
        &req,
        200,
        session_json(json!([engagement_json(
            ENGAGEMENT,
            "TERMINATED",
            json!([])
        )])),
    );
    assert!(matches!(h.take_reply(list), Ok(ReplyValue::Engagements(v)) if v.is_empty()));
    assert!(h.session.engagement(&e).is_none());
    assert!(h.take_event_names().contains(&"EVENT_STREAM_CLOSED"));
    // Run far past the reconnection timeout: no RECONNECTION_TIMEOUT, and the idle timer runs.
    h.advance(secs(200));
    let names = h.take_event_names();
    assert!(!names.contains(&"EVENT_STREAM_FAILED"), "{names:?}");
    h.advance_to_deadline();
    assert_eq!(h.take_event_names(), ["IDLE_TIMEOUT_EXPIRED"]);
}

#[test]
fn inactivity_ends_the_session_after_the_grace_period() {
    let config = Config {
        idle_timeout: Some(secs(300)),
        idle_shutdown_grace_timeout: secs(30),
        ..Config::default()
    };
    let mut h = Harness::new(config);
    h.init();
    h.take_events();
    h.advance(secs(299));
    assert!(h.take_events().is_empty());
    h.advance(secs(1));
    assert_eq!(
        h.take_events(),
        [Event::IdleTimeoutExpired {
            grace_period: secs(30)
        }]
    );
    // Activity during grace starts the idle timer over.
    h.advance(secs(10));
    h.session.reset_idle_timeout(h.now);
    h.advance(secs(299));
    assert!(h.take_events().is_empty());
    h.advance(secs(1));
    assert_eq!(h.take_event_names(), ["IDLE_TIMEOUT_EXPIRED"]);
    h.advance(secs(30));
    let delete = h.take_rest("DELETE", "/sessions/");
    assert_eq!(
        delete.url,
        format!("{}/sessions/{SESSION}?reason=USER_INACTIVE", base())
    );
    h.respond(&delete, 204, Value::Null);
    assert_eq!(
        h.take_events(),
        [Event::Shutdown {
            reason: Some(ShutdownReason::UserInactive)
        }]
    );
    assert!(h.replies.is_empty(), "nobody asked: no reply");
}

#[test]
fn session_not_found_closes_the_stream_for_good() {
    let mut h = Harness::new(Config::default());
    h.init();
    let e = h.active_engagement();
    h.take_events();
    let poll = h.take_poll();
    h.respond(
        &poll,
        404,
        json!({"status": 404, "detail": "Session not found"}),
    );
    assert_eq!(
        h.take_event_names(),
        ["EVENT_STREAM_CLOSED", "EVENT_STREAM_FAILED"]
    );
    assert_eq!(
        h.session
            .send_message(h.now, &e, "hello?", None)
            .unwrap_err()
            .code(),
        "ACS-320"
    );
    assert_eq!(h.polls_in_flight(), 0);
    // A 404 without that detail is just an unexpected status: probed.
    let mut h = Harness::new(Config::default());
    h.init();
    h.active_engagement();
    let poll = h.take_poll();
    h.respond(&poll, 404, json!({"detail": "Not here"}));
    h.take_probe();
}

#[test]
fn a_command_told_session_not_found_invalidates_the_session() {
    // Found by the chaos soak: the session is invalidated while the poll hangs, and the next
    // send is the first to hear of it. It must not pass for "engagement gone" (ACS-314).
    for outbox in [None, Some(secs(60))] {
        let mut h = Harness::new(Config {
            outbox,
            ..Config::default()
        });
        h.init();
        let e = h.active_engagement();
        h.take_events();
        let id = h
            .session
            .send_message(h.now, &e, "still there?", None)
            .unwrap();
        let post = h.take_rest("POST", "/messages");
        h.respond(
            &post,
            404,
            json!({"status": 404, "detail": "Session not found"}),
        );
        assert_eq!(h.take_reply(id).unwrap_err().code(), "ACS-320");
        let events = h.take_events();
        assert_eq!(
            events.iter().map(Event::name).collect::<Vec<_>>(),
            ["EVENT_STREAM_CLOSED", "EVENT_STREAM_FAILED"]
        );
        assert_eq!(
            failure(&events[1]),
            Some((StreamFailureReason::ClientSessionInvalidated, None))
        );
        assert_eq!(h.polls_in_flight(), 0);
        // The session is over (issue #12 item 8): it says why, and nothing looks alive.
        assert!(h.session.is_ended());
        assert_eq!(
            h.session.end_reason(),
            Some(chat_core::EndReason::SessionInvalidated)
        );
        assert_eq!(h.session.resumption(), None);
        assert_eq!(h.session.poll_timeout(), None, "no timer runs");
        let again = h.session.list_engagements(h.now).unwrap_err();
        assert_eq!(again.code(), "ACS-320");
    }
}

#[test]
fn duplicate_batches_and_messages_are_delivered_once() {
    let mut h = Harness::new(Config::default());
    h.init();
    h.active_engagement();
    h.take_events();
    let poll = h.take_poll();
    let batch = json!([
        message_event("ev-3", 1, "AGENT", "one"),
        message_event("ev-4", 2, "AGENT", "two")
    ]);
    h.respond(&poll, 200, batch.clone());
    // The response was "lost" from the server's view: the same batch plus one more.
    let poll = h.take_poll();
    let mut again = batch.as_array().unwrap().clone();
    again.push(message_event("ev-5", 3, "AGENT", "three"));
    h.respond(&poll, 200, Value::Array(again));
    // And the same message under a new event id.
    let poll = h.take_poll();
    h.respond(
        &poll,
        200,
        json!([message_event("ev-6", 3, "AGENT", "three")]),
    );
    let got: Vec<u64> = messages_of(&h.take_events())
        .iter()
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(got, [1, 2, 3]);
}

#[test]
fn reconnection_fills_the_gap_from_history() {
    let mut h = Harness::new(Config::default());
    h.init();
    h.active_engagement();
    let poll = h.take_poll();
    h.respond(
        &poll,
        200,
        json!([message_event("ev-3", 1, "AGENT", "one")]),
    );
    let poll = h.take_poll();
    h.fail(&poll, TransportError::Disconnected);
    h.advance_to_deadline();
    h.take_events();
    let attempt = h.take_poll();
    // Back, but the server's queue lost 2 and 3 (say, it was trimmed): only 4 comes live.
    h.respond(
        &attempt,
        200,
        json!([message_event("ev-9", 4, "AGENT", "four")]),
    );
    let history = h.take_rest("GET", "/messages?");
    let next = format!("{}/engagements/{ENGAGEMENT}/messages?pageNumber=2", base());
    h.respond(&history, 200, history_page(&[4, 3], &next));
    let page2 = h.take_rest("GET", "pageNumber=2");
    h.respond(&page2, 200, history_page(&[2, 1], ""));
    let events = h.take_events();
    assert_eq!(
        events.first().map(Event::name),
        Some("EVENT_STREAM_CONNECTED")
    );
    let got: Vec<u64> = messages_of(&events).iter().map(|(i, _)| *i).collect();
    assert_eq!(got, [2, 3, 4]);
}

#[test]
fn a_history_link_to_another_host_is_not_followed() {
    let mut h = Harness::new(Config::default());
    h.init_with(json!([engagement_json(ENGAGEMENT, "ACTIVE", json!([]))]));
    let e = EngagementId::new(ENGAGEMENT);
    let page = h.session.fetch_history(h.now, &e, None).unwrap();
    let req = h.take_rest("GET", "/messages?");
    h.respond(
        &req,
        200,
        history_page(&[1], "https://attacker.example/collect"),
    );
    match h.take_reply(page) {
        Ok(ReplyValue::History(p)) => assert!(p.next.is_none()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn events_for_an_engagement_whose_reply_is_late_are_not_lost() {
    let mut h = Harness::new(Config::default());
    h.init();
    h.active_engagement();
    h.take_events();
    // A second chat: the stream (running for the first) brings its customer-added event
    // before the create reply arrives.
    let second = "e0000000-0000-4000-8000-000000000002";
    let create = h
        .session
        .create_engagement(h.now, Default::default())
        .unwrap();
    let req = h.take_rest("POST", "/engagements");
    let poll = h.take_poll();
    let mut added = participant_event("ev-8", "PARTICIPANT_ADDED", CUSTOMER, "CUSTOMER");
    added["engagementId"] = json!(second);
    h.respond(&poll, 200, json!([added]));
    assert!(h.take_events().is_empty());
    h.respond(&req, 201, engagement_json(second, "PENDING", json!([])));
    assert_eq!(
        h.take_event_names(),
        ["ENGAGEMENT_ACTIVE", "PARTICIPANT_ADDED"]
    );
    match h.take_reply(create) {
        Ok(ReplyValue::Engagement(e)) => assert_eq!(e.status, EngagementStatus::Active),
        other => panic!("{other:?}"),
    }
}

#[test]
fn commands_are_checked_synchronously() {
    let mut h = Harness::new(Config::default());
    let e = EngagementId::new(ENGAGEMENT);
    assert_eq!(
        h.session
            .create_engagement(h.now, Default::default())
            .unwrap_err()
            .code(),
        "ACS-310"
    );
    assert_eq!(
        h.session.retry_connection(h.now).unwrap_err().code(),
        "ACS-310"
    );
    assert_eq!(
        h.session.shutdown(h.now, None).unwrap_err().code(),
        "ACS-310"
    );
    h.session.init(h.now, h.wall()).unwrap();
    assert_eq!(
        h.session.init(h.now, h.wall()).unwrap_err().code(),
        "ACS-321"
    );
    assert_eq!(
        h.session.shutdown(h.now, None).unwrap_err().code(),
        "ACS-321"
    );
    let req = h.take_rest("POST", "/sessions");
    h.respond(&req, 201, session_json(json!([])));
    assert_eq!(
        h.session.init(h.now, h.wall()).unwrap_err().code(),
        "ACS-204"
    );
    assert_eq!(h.session.join(h.now, &e).unwrap_err().code(), "ACS-314");
    let too_many: std::collections::BTreeMap<String, String> =
        (0..21).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    assert_eq!(
        h.session
            .create_engagement(h.now, too_many)
            .unwrap_err()
            .code(),
        "ACS-322"
    );
    let e = h.active_engagement();
    assert_eq!(
        h.session
            .send_message(h.now, &e, "", None)
            .unwrap_err()
            .code(),
        "ACS-322"
    );
    assert_eq!(
        h.session
            .send_message(h.now, &e, &"x".repeat(4097), None)
            .unwrap_err()
            .code(),
        "ACS-322"
    );
    let bad_parent = MessageId::new("not-a-uuid");
    assert_eq!(
        h.session
            .send_message(h.now, &e, "x", Some(&bad_parent))
            .unwrap_err()
            .code(),
        "ACS-322"
    );
    assert_eq!(
        h.session.retry_connection(h.now).unwrap_err().code(),
        "ACS-318"
    );
}

#[test]
fn rest_statuses_map_to_official_codes() {
    let cases: [(u16, &str); 4] = [
        (401, "ACS-305"),
        (403, "ACS-304"),
        (404, "ACS-314"),
        (500, "ACS-304"),
    ];
    for (status, code) in cases {
        let mut h = Harness::new(Config::default());
        h.init();
        let e = h.active_engagement();
        let send = h.session.send_message(h.now, &e, "x", None).unwrap();
        let req = h.take_rest("POST", "/messages");
        h.respond(
            &req,
            status,
            json!({"title": "nope", "detail": "server says no"}),
        );
        let err = h.take_reply(send).unwrap_err();
        assert_eq!(err.code(), code, "status {status}");
        if status == 404 {
            assert!(
                h.session.engagement(&e).is_none(),
                "a 404 forgets the engagement"
            );
        }
        if status == 403 {
            assert!(err.to_string().contains("server says no"));
        }
    }
    let mut h = Harness::new(Config::default());
    h.init();
    let e = h.active_engagement();
    let send = h.session.send_message(h.now, &e, "x", None).unwrap();
    let req = h.take_rest("POST", "/messages");
    h.fail(&req, TransportError::Timeout);
    assert_eq!(h.take_reply(send).unwrap_err().code(), "ACS-306");
    let send = h.session.send_message(h.now, &e, "x", None).unwrap();
    let req = h.take_rest("POST", "/messages");
    h.respond_raw(&req, 200, b"{not json");
    // Accepted, but the answer is unreadable: the message may well be stored.
    assert_eq!(
        h.take_reply(send),
        Err(ChatError::MaybeDelivered(TransportError::Protocol))
    );
}

#[test]
fn secrets_never_show_in_debug_output() {
    let mut h = Harness::new(Config::default());
    h.init();
    h.active_engagement();
    let token_text = h.session.token().unwrap().expose().to_owned();
    let poll = h.take_poll();
    let shown = format!("{:?} {:?} {:#?}", h.session, poll, h.session.token());
    assert!(!shown.contains(&token_text));
    assert!(!shown.contains("sig-"));
    assert!(!shown.contains(APPKEY));
}
