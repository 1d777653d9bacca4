//! The outbox (`Config::outbox`): sends tried again across failures, never twice, each ending
//! with one reply under the caller's id.
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::Duration;

use chat_core::{ChatError, Config, EngagementId, ReplyValue, Request, TransportError};
use serde_json::{Value, json};
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

/// A history page of customer messages `(index, text)`, newest first.
fn customer_page(messages: &[(u64, &str)]) -> Value {
    let messages: Vec<Value> = messages
        .iter()
        .map(|(i, t)| rest_message(*i, "CUSTOMER", t))
        .collect();
    json!({"messages": messages, "pagination": {"pageNumber": 1}, "links": {"next": ""}})
}

fn rest_requests(h: &mut Harness) -> Vec<(String, String)> {
    h.drain();
    h.sent
        .iter()
        .filter(|r| r.kind == chat_core::RequestKind::Rest)
        .map(|r| (r.method.as_str().to_owned(), r.url.clone()))
        .collect()
}

fn sent_text(r: &Request) -> String {
    let body: Value = serde_json::from_str(r.body.as_deref().unwrap_or("null")).expect("json");
    body["body"]["elementText"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
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
    let id = h.session.send_message(&e, "hello", None, h.now).unwrap();
    let post = h.take_rest("POST", "/messages");
    h.fail(&post, TransportError::Disconnected);
    assert!(h.replies.is_empty(), "held, not failed");
    assert!(rest_requests(&mut h).is_empty(), "nothing at once");
    h.advance(secs(1));
    let check = h.take_rest("GET", "/messages?");
    assert!(
        rest_requests(&mut h).is_empty(),
        "a read, not a second send"
    );
    h.respond(&check, 200, customer_page(&[(1, "hello")]));
    assert_eq!(delivered_index(h.take_reply(id)), 1);
    assert!(rest_requests(&mut h).is_empty());
    // The next deadline is the token reminder (720 s): no outbox timer is left.
    assert_eq!(h.session.poll_timeout(), Some(h.t0 + secs(720)));
}

#[test]
fn a_lost_request_is_sent_again_with_the_same_text_and_parent() {
    let (mut h, e) = with_outbox(120);
    let parent = chat_core::MessageId::new(message_id(7));
    let id = h
        .session
        .send_message(&e, "hello", Some(&parent), h.now)
        .unwrap();
    let first = h.take_rest("POST", "/messages");
    h.fail(&first, TransportError::Timeout);
    h.advance(secs(1));
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
    let id = h.session.send_message(&e, "one", None, h.now).unwrap();
    let post = h.take_rest("POST", "/messages");
    h.respond(&post, 503, json!({"detail": "busy"}));
    h.advance(secs(1));
    let post = h.take_rest("POST", "/messages");
    h.respond(&post, 429, json!({}));
    assert!(rest_requests(&mut h).is_empty());
    h.advance(Duration::from_millis(1999));
    assert!(rest_requests(&mut h).is_empty(), "the second wait is 2 s");
    h.advance(Duration::from_millis(1));
    let post = h.take_rest("POST", "/messages");
    h.respond(&post, 200, rest_message(1, "CUSTOMER", "one"));
    assert_eq!(delivered_index(h.take_reply(id)), 1);
}

#[test]
fn a_send_during_an_outage_waits_for_the_stream_to_come_back() {
    let (mut h, e) = with_outbox(300);
    let poll = h.take_poll();
    h.fail(&poll, TransportError::Connect);
    let id = h
        .session
        .send_message(&e, "are you there?", None, h.now)
        .unwrap();
    let post = h.take_rest("POST", "/messages");
    h.fail(&post, TransportError::Connect);
    // Reconnection attempts fail for a while; the send is not tried while the stream is down.
    for _ in 0..3 {
        h.advance_to_deadline();
        assert!(rest_requests(&mut h).is_empty(), "no send while down");
        let attempt = h.take_poll();
        h.fail(&attempt, TransportError::Connect);
    }
    h.advance_to_deadline();
    let attempt = h.take_poll();
    h.respond(&attempt, 200, json!([]));
    // Back: the send goes at once, and as a send (a refused connection delivered nothing).
    let post = h.take_rest("POST", "/messages");
    assert_eq!(sent_text(&post), "are you there?");
    h.respond(&post, 200, rest_message(1, "CUSTOMER", "are you there?"));
    assert_eq!(delivered_index(h.take_reply(id)), 1);
}

#[test]
fn the_limit_ends_a_send_with_its_last_error() {
    let (mut h, e) = with_outbox(10);
    let id = h.session.send_message(&e, "hi", None, h.now).unwrap();
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
    assert_eq!(attempts, [0, 1, 3, 6], "then 11 s would be past the limit");
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
    let id = h.session.send_message(&e, "bye", None, h.now).unwrap();
    let post = h.take_rest("POST", "/messages");
    h.fail(&post, TransportError::Disconnected);
    h.session.shutdown(None, h.now).unwrap();
    assert_eq!(
        h.take_reply(id),
        Err(ChatError::Unreachable(TransportError::Disconnected))
    );
}

#[test]
fn an_ended_engagement_ends_its_waiting_sends() {
    let (mut h, e) = with_outbox(120);
    let id = h.session.send_message(&e, "hi", None, h.now).unwrap();
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
    let first = h.session.send_message(&e, "ok", None, h.now).unwrap();
    let second = h.session.send_message(&e, "ok", None, h.now).unwrap();
    let a = h.take_rest("POST", "/messages");
    let b = h.take_rest("POST", "/messages");
    h.fail(&a, TransportError::Disconnected);
    h.fail(&b, TransportError::Disconnected);
    h.advance(secs(1));
    let check_a = h.take_rest("GET", "/messages?");
    let check_b = h.take_rest("GET", "/messages?");
    // Only one of the two arrived.
    h.respond(&check_a, 200, customer_page(&[(1, "ok")]));
    assert_eq!(delivered_index(h.take_reply(first)), 1);
    h.respond(&check_b, 200, customer_page(&[(1, "ok")]));
    let again = h.take_rest("POST", "/messages");
    h.respond(&again, 200, rest_message(2, "CUSTOMER", "ok"));
    assert_eq!(delivered_index(h.take_reply(second)), 2);
}

#[test]
fn an_unauthorized_send_goes_back_to_the_application() {
    let (mut h, e) = with_outbox(120);
    let id = h.session.send_message(&e, "hi", None, h.now).unwrap();
    let post = h.take_rest("POST", "/messages");
    h.respond(&post, 401, json!({}));
    assert_eq!(h.take_reply(id), Err(ChatError::InvalidToken));
}

#[test]
fn without_the_outbox_the_first_failure_is_the_reply() {
    let mut h = Harness::new(Config::default());
    h.init();
    let e = h.active_engagement();
    let id = h.session.send_message(&e, "hi", None, h.now).unwrap();
    let post = h.take_rest("POST", "/messages");
    h.fail(&post, TransportError::Disconnected);
    assert_eq!(
        h.take_reply(id),
        Err(ChatError::Unreachable(TransportError::Disconnected))
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
