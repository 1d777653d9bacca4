//! Faults the chaos soak does not inject, at the core's depth (issue #12): clients that must
//! not retry in lockstep, a poll that keeps failing while its probes answer, requests that
//! never get an answer, a server that floods events for engagements the session never had,
//! a resume that must catch up at once, and typed stream outcomes.

mod support;

use std::time::Duration;

use chat_core::{
    AppKey, ChatError, Config, Event, InitParams, Output, PollOutcome, RequestKind,
    StreamFailureReason, StreamState, TransportError,
};
use serde_json::{Value, json};
use support::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The backoff deadlines of a session whose stream keeps failing, as offsets from t0.
fn backoff_schedule(config: Config) -> Vec<Duration> {
    let params = InitParams::new(
        HOST,
        INTEGRATION,
        token(WALL0_UNIX + 900),
        AppKey::new(APPKEY),
    )
    .expect("params");
    let mut h = Harness::with_params(params, config);
    h.init();
    h.active_engagement();
    let mut schedule = Vec::new();
    for _ in 0..5 {
        let poll = h.take_poll();
        h.fail(&poll, TransportError::Connect);
        let waited = h.advance_to_deadline().expect("an attempt is scheduled");
        schedule.push(waited);
    }
    schedule
}

#[test]
fn default_sessions_draw_different_backoff_schedules() {
    // Regression (issue #12 item 4): `Config::default().jitter_seed` was a constant, so every
    // client retried at the same instants.
    let a = backoff_schedule(Config::default());
    let b = backoff_schedule(Config::default());
    assert_ne!(a, b, "two default sessions, one schedule");
    // A fixed seed still gives a reproducible one.
    let seeded = Config {
        jitter_seed: Some(42),
        ..Config::default()
    };
    assert_eq!(backoff_schedule(seeded.clone()), backoff_schedule(seeded));
}

#[test]
fn a_crowd_that_lost_the_server_together_comes_back_spread_out() {
    // 1,000 sessions fail at the same instant; their attempts after 20 s of outage are spread
    // so that no 100 ms window holds more than 10 % of them.
    let mut first_after: Vec<Duration> = Vec::new();
    for _ in 0..1000 {
        let params = InitParams::new(
            HOST,
            INTEGRATION,
            token(WALL0_UNIX + 900),
            AppKey::new(APPKEY),
        )
        .expect("params");
        let mut h = Harness::with_params(params, Config::default());
        h.init();
        h.active_engagement();
        let start = h.now;
        loop {
            let poll = h.take_poll();
            if h.now - start >= secs(20) {
                first_after.push(h.now - start);
                break;
            }
            h.fail(&poll, TransportError::Connect);
            h.advance_to_deadline();
        }
    }
    let mut windows = std::collections::BTreeMap::<u128, usize>::new();
    for t in &first_after {
        *windows.entry(t.as_millis() / 100).or_default() += 1;
    }
    let busiest = windows.values().max().copied().unwrap_or(0);
    assert!(
        busiest <= 100,
        "{busiest} of 1000 attempts in one 100 ms window"
    );
}

#[test]
fn a_poll_that_keeps_failing_while_probes_answer_backs_off() {
    // Regression (issue #12 item 2): polls answered 5xx with probes answered 200 made the
    // client poll and probe as fast as the server answered, with no event.
    let mut h = Harness::new(Config::default());
    h.init();
    h.active_engagement();
    h.take_events();
    let mut requests = 0;
    loop {
        h.drain();
        if h.session.stream_state() == StreamState::Retry {
            break;
        }
        assert!(requests < 20, "no backoff after {requests} requests");
        let r = h.take_request(|r| r.kind != RequestKind::Rest);
        requests += 1;
        match r.kind {
            RequestKind::Probe => h.respond(&r, 200, json!([])),
            _ => h.respond(&r, 503, Value::Null),
        }
    }
    let failures: Vec<_> = h
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::EventStreamFailed(f) => Some((f.reason, f.retry_after)),
            _ => None,
        })
        .collect();
    assert_eq!(
        failures,
        [(StreamFailureReason::UnexpectedError, Some(secs(1)))]
    );
    assert!(requests <= 7, "{requests} requests before backing off");
    // The attempts then follow the backoff, and give up at the reconnection timeout.
    let start = h.now;
    while h.session.stream_state() == StreamState::Retry {
        h.advance_to_deadline();
        h.drain();
        if let Some(at) = h.sent.iter().position(|r| r.kind != RequestKind::Rest) {
            let r = h.sent.remove(at).expect("present");
            h.respond(&r, 503, Value::Null);
        }
    }
    assert_eq!(h.session.stream_state(), StreamState::Failed);
    assert!(h.now - start >= secs(300));
}

#[test]
fn a_rest_call_without_an_answer_is_timed_out_by_the_core() {
    let mut h = Harness::new(Config::default());
    h.init();
    let id = h.session.list_engagements(h.now).unwrap();
    let req = h.take_rest("GET", "/sessions/");
    assert_eq!(h.session.poll_timeout(), Some(h.now + secs(30)));
    h.advance(secs(30));
    assert_eq!(h.aborted, [req.id], "the core aborts it");
    assert_eq!(
        h.take_reply(id),
        Err(ChatError::Unreachable(TransportError::Timeout))
    );
    // A late answer is ignored.
    h.respond(&req, 200, session_json(json!([])));
    assert!(h.replies.is_empty());
}

#[test]
fn a_poll_without_an_answer_is_timed_out_and_the_stream_retries() {
    let mut h = Harness::new(Config::default());
    h.init();
    h.active_engagement();
    h.take_events();
    let poll = h.take_poll();
    h.advance(secs(40));
    assert!(h.aborted.contains(&poll.id));
    assert_eq!(h.session.stream_state(), StreamState::Retry);
}

#[test]
fn events_for_engagements_the_session_never_had_are_neither_delivered_nor_kept() {
    // Regression (issue #12 item 10): each unknown engagement got state of its own, never
    // freed, and its messages were delivered.
    let mut h = Harness::new(Config::default());
    h.init();
    h.active_engagement();
    h.take_events();
    for batch in 0..100 {
        let events: Vec<Value> = (0..100)
            .map(|n| {
                let mut e = message_event(&format!("x-{batch}-{n}"), 1, "AGENT", "spam");
                e["engagementId"] =
                    json!(format!("f0000000-0000-4000-8000-{:012}", batch * 100 + n));
                e
            })
            .collect();
        let poll = h.take_poll();
        h.respond(&poll, 200, Value::Array(events));
    }
    assert!(messages_of(&h.take_events()).is_empty());
    let positions = h.session.resumption().expect("alive").last_message_indexes;
    assert!(positions.is_empty(), "{} positions kept", positions.len());
    // The session's own chat still works.
    let poll = h.take_poll();
    h.respond(
        &poll,
        200,
        json!([message_event("ok-1", 1, "AGENT", "hello")]),
    );
    assert_eq!(messages_of(&h.take_events()), [(1, "hello".to_owned())]);
}

#[test]
fn resume_catches_up_at_once() {
    // Regression (issue #12 item 7): after a resume, missed messages came only when the first
    // poll was answered, up to the server's hold time later.
    let mut h = Harness::new(Config::default());
    let resumption = chat_core::Resumption {
        session_id: chat_core::SessionId::new(SESSION),
        active_engagements: vec![chat_core::EngagementId::new(ENGAGEMENT)],
        last_message_indexes: vec![(chat_core::EngagementId::new(ENGAGEMENT), 3)],
    };
    let id = h.session.resume(h.now, h.wall(), resumption).unwrap();
    let req = h.take_rest("GET", "/sessions/");
    h.respond(
        &req,
        200,
        session_json(json!([engagement_json(ENGAGEMENT, "ACTIVE", json!([]))])),
    );
    h.take_reply(id).unwrap();
    // The history read goes out with the first poll, not after its answer.
    let read = h.take_rest("GET", "/messages?");
    h.respond(&read, 200, history_page(&[5, 4, 3], ""));
    assert_eq!(
        messages_of(&h.take_events()),
        [(4, "m4".to_owned()), (5, "m5".to_owned())]
    );
    assert_eq!(h.polls_in_flight(), 1, "the poll still waits");
}

#[test]
fn stream_outcomes_come_in_typed() {
    for (outcome, state) in [
        (PollOutcome::Unauthorized, StreamState::Paused),
        (PollOutcome::Forbidden, StreamState::Paused),
        (PollOutcome::SessionGone, StreamState::Closed),
        (
            PollOutcome::Failed(TransportError::Disconnected),
            StreamState::Retry,
        ),
        (PollOutcome::Events(b"[]".to_vec()), StreamState::Connected),
    ] {
        let mut h = Harness::new(Config::default());
        h.init();
        h.active_engagement();
        let poll = h.take_poll();
        h.poll_outcome(&poll, outcome.clone());
        assert_eq!(h.session.stream_state(), state, "{outcome:?}");
    }
    // Any other status is probed, as a long poll's is.
    let mut h = Harness::new(Config::default());
    h.init();
    h.active_engagement();
    let poll = h.take_poll();
    h.poll_outcome(
        &poll,
        PollOutcome::Status {
            status: 502,
            body: Vec::new(),
        },
    );
    h.take_probe();
    assert_eq!(
        PollOutcome::from_http(404, br#"{"detail":"Session not found"}"#.to_vec()),
        PollOutcome::SessionGone
    );
}

#[test]
fn a_redirect_is_an_unexpected_answer_never_followed() {
    let mut h = Harness::new(Config::default());
    h.init();
    let id = h
        .session
        .create_engagement(h.now, Default::default())
        .unwrap();
    let req = h.take_rest("POST", "/engagements");
    h.respond(&req, 307, json!({}));
    assert_eq!(
        h.take_reply(id),
        Err(ChatError::ServerUnexpected {
            status: Some(307),
            detail: None
        })
    );
    h.drain();
    assert!(h.sent.is_empty(), "nothing is sent anywhere else");
}

#[test]
fn an_invalidated_session_fails_what_waits_and_ends() {
    let mut h = Harness::new(Config::default());
    h.init();
    h.active_engagement();
    h.take_events();
    let list = h.session.list_engagements(h.now).unwrap();
    let poll = h.take_poll();
    h.respond(&poll, 404, json!({"detail": "Session not found"}));
    assert_eq!(h.take_reply(list), Err(ChatError::SessionNotFound));
    assert!(h.session.is_ended());
    loop {
        match h.session.poll_output() {
            Output::Wait(deadline) => {
                assert_eq!(deadline, None);
                break;
            }
            Output::Abort(_) => {}
            other => panic!("after the end: {other:?}"),
        }
    }
}

#[test]
fn a_stream_flooding_during_a_slow_catch_up_is_held_back_not_piled_up() {
    // Found by the hostile-server suite's review (issue #12): during a catch-up every live
    // message is held until the history comes; a server that answers polls at once with new
    // messages while the history is slow made the session hold them without bound.
    let mut h = Harness::new(Config::default());
    h.init();
    h.active_engagement();
    let poll = h.take_poll();
    h.respond(
        &poll,
        200,
        json!([message_event("m-1", 1, "AGENT", "first")]),
    );
    // The stream breaks and comes back: a catch-up starts.
    let poll = h.take_poll();
    h.fail(&poll, TransportError::Disconnected);
    h.advance_to_deadline();
    h.take_events();
    let mut index = 1;
    let mut batch = |n: usize| -> Value {
        let events: Vec<Value> = (0..n)
            .map(|_| {
                index += 1;
                message_event(&format!("m-{index}"), index, "AGENT", &format!("m{index}"))
            })
            .collect();
        Value::Array(events)
    };
    let poll = h.take_poll();
    h.respond(&poll, 200, batch(600));
    let history = h.take_rest("GET", "/messages?");
    // The history is slow; the stream floods.
    let poll = h.take_poll();
    h.respond(&poll, 200, batch(600));
    let held = h.session.footprint().held_messages;
    assert_eq!(held, 1200);
    assert!(held >= chat_core::MAX_HELD_MESSAGES);
    assert_eq!(
        h.polls_in_flight(),
        0,
        "no poll while the catch-up holds that many"
    );
    assert!(messages_of(&h.take_events()).is_empty());
    // The history comes: everything held is delivered, in order, and polling goes on.
    h.respond(&history, 200, history_page(&[1], ""));
    let delivered = messages_of(&h.take_events());
    assert_eq!(delivered.len(), 1200);
    assert!(delivered.windows(2).all(|w| w[0].0 + 1 == w[1].0));
    assert_eq!(h.session.footprint().held_messages, 0);
    assert_eq!(h.polls_in_flight(), 1, "the held poll went out");
}
