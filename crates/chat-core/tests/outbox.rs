//! The outbox (`Config::outbox`): sends tried again across failures, never twice, each ending
//! with one reply under the caller's id.
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::Duration;

use chat_core::{ChatError, Config, EngagementId, ReplyValue, TransportError};
use serde_json::json;
use support::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn with_outbox(limit: u64) -> (Harness, EngagementId) {
    let mut h = Harness::new(Config {
        outbox: Some(secs(limit)),
        ..Config::default()
    });
    h.init();
    let e = h.active_engagement();
    h.take_events();
    (h, e)
}

fn rest_requests(h: &mut Harness) -> Vec<(String, String)> {
    h.drain();
    h.sent
        .iter()
        .filter(|r| r.kind == chat_core::RequestKind::Rest)
        .map(|r| (r.method.as_str().to_owned(), r.url.clone()))
        .collect()
}

fn delivered_index(result: Result<ReplyValue, ChatError>) -> u64 {
    match result {
        Ok(ReplyValue::MessageSent(m)) => m.message_index,
        other => panic!("not delivered: {other:?}"),
    }
}

#[test]
fn a_lost_answer_is_found_in_history_and_not_sent_again() {
    let (mut h, e) = with_outbox(120);
    let id = h.session.send_message(h.now, &e, "hello", None).unwrap();
    let post = h.take_rest("POST", "/messages");
    h.fail(&post, TransportError::Disconnected);
    assert!(h.replies.is_empty(), "held, not failed");
    assert!(rest_requests(&mut h).is_empty(), "nothing at once");
    let waited = h.advance_to_deadline().expect("the outbox's timer");
    assert!(
        waited >= secs(1) && waited < Duration::from_millis(1500),
        "{waited:?}"
    );
    let check = h.take_rest("GET", "/messages?");
    assert!(
        rest_requests(&mut h).is_empty(),
        "a read, not a second send"
    );
    h.respond(&check, 200, customer_page(&[(1, "hello")]));
    assert_eq!(delivered_index(h.take_reply(id)), 1);
    assert!(rest_requests(&mut h).is_empty());
    // No outbox timer is left: the next deadline is the poll's own timeout (40 s).
    assert!(h.session.poll_timeout() >= Some(h.now + secs(35)));
}

#[test]
fn a_lost_request_is_sent_again_with_the_same_text_and_parent() {
    let (mut h, e) = with_outbox(120);
    let parent = chat_core::MessageId::new(message_id(7));
    let id = h
        .session
        .send_message(h.now, &e, "hello", Some(&parent))
        .unwrap();
    let first = h.take_rest("POST", "/messages");
    h.fail(&first, TransportError::Timeout);
    h.advance_to_deadline();
    let check = h.take_rest("GET", "/messages?");
    // History has another customer message with the same text, but another parent.
    h.respond(&check, 200, customer_page(&[(1, "hello")]));
    let again = h.take_rest("POST", "/messages");
    assert_eq!(again.body, first.body, "the same message");
    assert_ne!(again.id, first.id);
    h.respond(&again, 200, rest_message(2, "CUSTOMER", "hello"));
    assert_eq!(delivered_index(h.take_reply(id)), 2);
}

#[test]
fn refusals_that_did_nothing_are_retried_without_reading_history() {
    let (mut h, e) = with_outbox(120);
    let id = h.session.send_message(h.now, &e, "one", None).unwrap();
    let post = h.take_rest("POST", "/messages");
    h.respond(&post, 503, json!({"detail": "busy"}));
    let first = h.advance_to_deadline().expect("retry");
    let post = h.take_rest("POST", "/messages");
    h.respond(&post, 429, json!({}));
    assert!(rest_requests(&mut h).is_empty());
    let second = h.advance_to_deadline().expect("retry");
    // Fibonacci waits, each with up to half again of jitter.
    assert!(
        first >= secs(1) && first < Duration::from_millis(1500),
        "{first:?}"
    );
    assert!(second >= secs(2) && second < secs(3), "{second:?}");
    let post = h.take_rest("POST", "/messages");
    h.respond(&post, 200, rest_message(1, "CUSTOMER", "one"));
    assert_eq!(delivered_index(h.take_reply(id)), 1);
}

#[test]
fn a_send_during_an_outage_goes_the_moment_the_stream_is_back() {
    let (mut h, e) = with_outbox(300);
    let poll = h.take_poll();
    h.fail(&poll, TransportError::Connect);
    let id = h
        .session
        .send_message(h.now, &e, "are you there?", None)
        .unwrap();
    let post = h.take_rest("POST", "/messages");
    h.fail(&post, TransportError::Connect);
    // While the stream is down the send is tried now and then (one request at a time,
    // at most 4.5 s apart), each time refused.
    let mut posts = 0;
    while h.elapsed() < secs(20) {
        h.advance_to_deadline();
        h.drain();
        assert!(
            h.sent.len() <= 2,
            "one poll and one send at most: {:?}",
            h.sent
        );
        if let Some(at) = h.sent.iter().position(|r| r.url.ends_with("/messages")) {
            let post = h.sent.remove(at).expect("present");
            h.fail(&post, TransportError::Connect);
            posts += 1;
        }
        if let Some(at) = h
            .sent
            .iter()
            .position(|r| r.kind != chat_core::RequestKind::Rest)
        {
            let attempt = h.sent.remove(at).expect("present");
            h.fail(&attempt, TransportError::Connect);
        }
    }
    assert!((4..=20).contains(&posts), "{posts} sends tried in 20 s");
    // The stream's next attempt is answered: the send goes at once, as a send (a refused
    // connection delivered nothing).
    let attempt = loop {
        h.advance_to_deadline();
        h.drain();
        if let Some(at) = h.sent.iter().position(|r| r.url.ends_with("/messages")) {
            let post = h.sent.remove(at).expect("present");
            h.fail(&post, TransportError::Connect);
        }
        if let Some(at) = h
            .sent
            .iter()
            .position(|r| r.kind != chat_core::RequestKind::Rest)
        {
            break h.sent.remove(at).expect("present");
        }
    };
    h.respond(&attempt, 200, json!([]));
    let post = h.take_rest("POST", "/messages");
    assert_eq!(sent_text(&post), "are you there?");
    h.respond(&post, 200, rest_message(1, "CUSTOMER", "are you there?"));
    assert_eq!(delivered_index(h.take_reply(id)), 1);
}

#[test]
fn held_sends_go_within_seconds_of_recovery_on_a_quiet_stream() {
    // Regression (issue #12 item 5): held sends waited for the first poll after an outage
    // to be answered, which a quiet chat's server holds for 25 s.
    let (mut h, e) = with_outbox(300);
    let poll = h.take_poll();
    h.fail(&poll, TransportError::Connect);
    let ids: Vec<_> = ["one", "two", "three"]
        .iter()
        .map(|t| h.session.send_message(h.now, &e, t, None).unwrap())
        .collect();
    let recovery = h.now + secs(10);
    let mut attempt_in_flight = None;
    // Down for 10 s: everything is refused.
    while h.now < recovery {
        h.advance_to_deadline();
        h.drain();
        if h.now >= recovery {
            break;
        }
        while let Some(at) = h.sent.iter().position(|r| r.url.ends_with("/messages")) {
            let post = h.sent.remove(at).expect("present");
            h.fail(&post, TransportError::Connect);
        }
        if let Some(at) = h
            .sent
            .iter()
            .position(|r| r.kind != chat_core::RequestKind::Rest)
        {
            let attempt = h.sent.remove(at).expect("present");
            if h.now < recovery {
                h.fail(&attempt, TransportError::Connect);
            } else {
                attempt_in_flight = Some(attempt);
            }
        }
    }
    // Back. The stream's attempt (if one went out) is held by the server: no answer yet.
    let mut delivered = Vec::new();
    let mut index = 0;
    while delivered.len() < 3 {
        h.drain();
        if let Some(at) = h.sent.iter().position(|r| r.url.ends_with("/messages")) {
            let post = h.sent.remove(at).expect("present");
            index += 1;
            h.respond(
                &post,
                200,
                rest_message(index, "CUSTOMER", &sent_text(&post)),
            );
            delivered.push(h.now);
            continue;
        }
        if let Some(at) = h
            .sent
            .iter()
            .position(|r| r.kind != chat_core::RequestKind::Rest)
        {
            attempt_in_flight.get_or_insert(h.sent.remove(at).expect("present"));
        }
        h.advance_to_deadline();
    }
    let after = delivered[2] - recovery;
    assert!(
        after <= Duration::from_millis(4500),
        "delivered {after:?} after recovery"
    );
    for (n, id) in ids.into_iter().enumerate() {
        assert_eq!(delivered_index(h.take_reply(id)), n as u64 + 1, "in order");
    }
    drop(attempt_in_flight);
}

#[test]
fn the_limit_ends_a_send_with_its_last_error() {
    let (mut h, e) = with_outbox(10);
    let id = h.session.send_message(h.now, &e, "hi", None).unwrap();
    let start = h.now;
    let mut attempts = Vec::new();
    loop {
        h.drain();
        if h.replies.iter().any(|r| r.id == id) {
            break;
        }
        if let Some(at) = h
            .sent
            .iter()
            .position(|r| r.url.ends_with("/messages") && r.method.as_str() == "POST")
        {
            let post = h.sent.remove(at).expect("present");
            attempts.push((h.now - start).as_secs());
            h.respond(&post, 503, json!({"detail": "busy"}));
        } else {
            h.advance_to_deadline();
        }
    }
    // 0, then after 1, 2 and 3 s (each with up to half again of jitter); the next would
    // come after the limit.
    assert_eq!(attempts.len(), 4, "{attempts:?}");
    assert!(attempts.windows(2).all(|w| w[0] < w[1]), "{attempts:?}");
    assert_eq!(h.now - start, secs(10));
    assert_eq!(
        h.take_reply(id),
        Err(ChatError::ServerUnexpected {
            status: Some(503),
            detail: Some("busy".into())
        })
    );
}

#[test]
fn shutdown_ends_waiting_sends_at_once() {
    let (mut h, e) = with_outbox(120);
    let id = h.session.send_message(h.now, &e, "bye", None).unwrap();
    let post = h.take_rest("POST", "/messages");
    h.fail(&post, TransportError::Disconnected);
    h.session.shutdown(h.now, None).unwrap();
    // The lost answer may have been a stored message: the error says so.
    assert_eq!(
        h.take_reply(id),
        Err(ChatError::MaybeDelivered(TransportError::Disconnected))
    );
}

#[test]
fn an_ended_engagement_ends_its_waiting_sends() {
    let (mut h, e) = with_outbox(120);
    let id = h.session.send_message(h.now, &e, "hi", None).unwrap();
    let post = h.take_rest("POST", "/messages");
    h.respond(&post, 500, json!({}));
    let poll = h.take_poll();
    h.respond(
        &poll,
        200,
        json!([participant_event(
            "ev-3",
            "PARTICIPANT_DISCONNECTED",
            CUSTOMER,
            "CUSTOMER"
        )]),
    );
    assert_eq!(h.take_reply(id), Err(ChatError::EngagementNotFound));
}

#[test]
fn identical_texts_count_one_each() {
    let (mut h, e) = with_outbox(120);
    let first = h.session.send_message(h.now, &e, "ok", None).unwrap();
    let second = h.session.send_message(h.now, &e, "ok", None).unwrap();
    // One at a time: the second waits for the first.
    let a = h.take_rest("POST", "/messages");
    assert_eq!(
        rest_requests(&mut h).len(),
        0,
        "the second send waits its turn"
    );
    h.respond(&a, 200, rest_message(1, "CUSTOMER", "ok"));
    assert_eq!(delivered_index(h.take_reply(first)), 1);
    let b = h.take_rest("POST", "/messages");
    h.fail(&b, TransportError::Disconnected);
    h.advance_to_deadline();
    let check = h.take_rest("GET", "/messages?");
    // History shows the first "ok" only: it is the first send's, not the second's.
    h.respond(&check, 200, customer_page(&[(1, "ok")]));
    let again = h.take_rest("POST", "/messages");
    h.respond(&again, 200, rest_message(2, "CUSTOMER", "ok"));
    assert_eq!(delivered_index(h.take_reply(second)), 2);
}

#[test]
fn sends_of_an_engagement_are_stored_in_the_order_they_were_made() {
    let (mut h, e) = with_outbox(120);
    let one = h.session.send_message(h.now, &e, "one", None).unwrap();
    let two = h.session.send_message(h.now, &e, "two", None).unwrap();
    let post = h.take_rest("POST", "/messages");
    assert_eq!(sent_text(&post), "one");
    h.respond(&post, 503, json!({}));
    h.advance_to_deadline();
    let post = h.take_rest("POST", "/messages");
    assert_eq!(
        sent_text(&post),
        "one",
        "the first goes again before the second"
    );
    assert!(rest_requests(&mut h).is_empty());
    h.respond(&post, 200, rest_message(1, "CUSTOMER", "one"));
    let post = h.take_rest("POST", "/messages");
    assert_eq!(sent_text(&post), "two");
    h.respond(&post, 200, rest_message(2, "CUSTOMER", "two"));
    assert_eq!(delivered_index(h.take_reply(one)), 1);
    assert_eq!(delivered_index(h.take_reply(two)), 2);
}

#[test]
fn too_much_history_to_check_fails_as_maybe_delivered() {
    // Regression (issue #12 item 6): past 20 pages the outbox failed with a plain ACS-306,
    // though the message may well have been stored.
    let (mut h, e) = with_outbox(600);
    let id = h.session.send_message(h.now, &e, "needle", None).unwrap();
    let post = h.take_rest("POST", "/messages");
    h.fail(&post, TransportError::Timeout);
    h.advance_to_deadline();
    let mut pages = 0;
    let reply = loop {
        h.drain();
        if let Some(r) = h.replies.iter().position(|r| r.id == id) {
            break h.replies.remove(r).result;
        }
        let check = h.take_rest("GET", "/messages");
        pages += 1;
        let first = 100_000 - pages * 50;
        let indexes: Vec<u64> = (first..first + 50).rev().collect();
        let next = format!(
            "{}/engagements/{ENGAGEMENT}/messages?page={}",
            base(),
            pages + 1
        );
        h.respond(&check, 200, history_page(&indexes, &next));
    };
    assert!(pages >= 100, "looks far: {pages} pages");
    assert_eq!(
        reply,
        Err(ChatError::MaybeDelivered(TransportError::Timeout))
    );
    assert_eq!(reply.unwrap_err().code(), "ACS-306");
}

#[test]
fn an_unauthorized_send_goes_back_to_the_application() {
    let (mut h, e) = with_outbox(120);
    let id = h.session.send_message(h.now, &e, "hi", None).unwrap();
    let post = h.take_rest("POST", "/messages");
    h.respond(&post, 401, json!({"detail": "Token expired"}));
    assert_eq!(
        h.take_reply(id),
        Err(ChatError::InvalidToken {
            detail: Some("Token expired".into())
        })
    );
}

#[test]
fn without_the_outbox_the_first_failure_is_the_reply() {
    let mut h = Harness::new(Config::default());
    h.init();
    let e = h.active_engagement();
    let id = h.session.send_message(h.now, &e, "hi", None).unwrap();
    let post = h.take_rest("POST", "/messages");
    h.fail(&post, TransportError::Disconnected);
    // The request went out and its answer was lost: it may have been stored (issue #12
    // item 6, it was a plain "unreachable").
    assert_eq!(
        h.take_reply(id),
        Err(ChatError::MaybeDelivered(TransportError::Disconnected))
    );
    // A connection that was never made delivered nothing.
    let id = h.session.send_message(h.now, &e, "again", None).unwrap();
    let post = h.take_rest("POST", "/messages");
    h.fail(&post, TransportError::Connect);
    assert_eq!(
        h.take_reply(id),
        Err(ChatError::Unreachable(TransportError::Connect))
    );
}

#[test]
fn the_outbox_limit_is_checked() {
    for bad in [Duration::ZERO, secs(3601)] {
        let config = Config {
            outbox: Some(bad),
            ..Config::default()
        };
        assert_eq!(config.validate().map_err(|e| e.code()), Err("ACS-303"));
    }
}
