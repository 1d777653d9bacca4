//! Property test of the outbox against a model server that stores messages: under any
//! interleaving of sends, lost requests, lost answers, refusals, stream failures and time,
//! every send gets exactly one reply, a delivered reply names a message the server stored
//! with that text and that no other send claims, and the server never holds more copies of
//! a text than the sends that were delivered or failed with it.
//!
//! Left out on purpose: an attempt that the server stores *after* the client gave up on it
//! (a timeout) and after the history check. Without an idempotency key nobody can rule that
//! out; `docs/protocol.md` says so.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chat_core::{
    ChatError, Config, EngagementId, ReplyValue, Request, RequestId, RequestKind, TransportError,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::*;

const TEXTS: [&str; 3] = ["a", "b", "a"];
/// History pages are small here so that a check has to follow links.
const PAGE: usize = 2;

#[derive(Debug, Clone)]
enum Post {
    Stored,
    /// Stored, then the connection broke: the client cannot tell.
    LostAnswer(TransportError),
    /// Never reached the server.
    LostRequest(TransportError),
    Refused(u16),
    /// Stored, then an error status anyway.
    StoredThenError(u16),
}

#[derive(Debug, Clone)]
enum Op {
    Send(usize),
    Post(usize, Post),
    History(usize, bool),
    Poll(bool),
    Advance(u64),
    ToDeadline,
}

fn op() -> impl Strategy<Value = Op> {
    let post = prop_oneof![
        3 => Just(Post::Stored),
        2 => prop::sample::select(vec![TransportError::Disconnected, TransportError::Timeout, TransportError::Protocol])
            .prop_map(Post::LostAnswer),
        1 => prop::sample::select(vec![TransportError::Connect, TransportError::Disconnected])
            .prop_map(Post::LostRequest),
        2 => prop::sample::select(vec![429u16, 500, 502, 503]).prop_map(Post::Refused),
        1 => prop::sample::select(vec![500u16, 504]).prop_map(Post::StoredThenError),
    ];
    prop_oneof![
        3 => (0..TEXTS.len()).prop_map(Op::Send),
        5 => (0..4usize, post).prop_map(|(i, p)| Op::Post(i, p)),
        3 => (0..4usize, prop::bool::weighted(0.9)).prop_map(|(i, ok)| Op::History(i, ok)),
        2 => prop::bool::weighted(0.8).prop_map(Op::Poll),
        2 => (0..10_000u64).prop_map(Op::Advance),
        2 => Just(Op::ToDeadline),
    ]
}

struct World {
    h: Harness,
    /// The server's messages: (index, text), oldest first.
    stored: Vec<(u64, &'static str)>,
    /// Stored messages the stream has carried so far.
    evented: usize,
    next_event: u64,
    sends: HashMap<RequestId, &'static str>,
    ok: HashMap<RequestId, u64>,
    failed: HashMap<RequestId, ChatError>,
}

impl World {
    fn new() -> Self {
        let mut h = Harness::new(Config {
            outbox: Some(Duration::from_secs(60)),
            idle_timeout: None,
            ..Config::default()
        });
        h.init();
        h.active_engagement();
        h.take_events();
        Self {
            h,
            stored: Vec::new(),
            evented: 0,
            next_event: 100,
            sends: HashMap::new(),
            ok: HashMap::new(),
            failed: HashMap::new(),
        }
    }

    fn store(&mut self, r: &Request) -> u64 {
        let body: Value = serde_json::from_str(r.body.as_deref().unwrap_or("null")).expect("json");
        let text = body["body"]["elementText"]["text"].as_str().unwrap_or("");
        let text = TEXTS
            .iter()
            .find(|t| **t == text)
            .copied()
            .expect("a known text");
        let index = self.stored.len() as u64 + 1;
        self.stored.push((index, text));
        index
    }

    fn take(&mut self, pick: usize, what: impl Fn(&Request) -> bool) -> Option<Request> {
        self.h.drain();
        let matching: Vec<usize> = (0..self.h.sent.len())
            .filter(|i| what(&self.h.sent[*i]))
            .collect();
        let at = *matching.get(pick % matching.len().max(1))?;
        self.h.sent.remove(at)
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Send(t) => {
                let e = EngagementId::new(ENGAGEMENT);
                if let Ok(id) = self.h.session.send_message(self.h.now, &e, TEXTS[*t], None) {
                    self.sends.insert(id, TEXTS[*t]);
                }
            }
            Op::Post(pick, how) => {
                let Some(r) = self.take(*pick, is_post) else {
                    return;
                };
                match how {
                    Post::Stored => {
                        let index = self.store(&r);
                        let text = self.stored[index as usize - 1].1;
                        self.h
                            .respond(&r, 200, rest_message(index, "CUSTOMER", text));
                    }
                    Post::LostAnswer(e) => {
                        self.store(&r);
                        self.h.fail(&r, *e);
                    }
                    Post::LostRequest(e) => self.h.fail(&r, *e),
                    Post::Refused(s) => self.h.respond(&r, *s, json!({})),
                    Post::StoredThenError(s) => {
                        self.store(&r);
                        self.h.respond(&r, *s, json!({}));
                    }
                }
            }
            Op::History(pick, ok) => {
                let Some(r) = self.take(*pick, is_history) else {
                    return;
                };
                if !ok {
                    return self.h.fail(&r, TransportError::Disconnected);
                }
                let page: usize = r
                    .url
                    .split("pageNumber=")
                    .nth(1)
                    .and_then(|s| s.split('&').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                let newest_first: Vec<_> = self.stored.iter().rev().collect();
                let messages: Vec<Value> = newest_first
                    .iter()
                    .skip((page - 1) * PAGE)
                    .take(PAGE)
                    .map(|(i, t)| rest_message(*i, "CUSTOMER", t))
                    .collect();
                let next = if newest_first.len() > page * PAGE {
                    format!(
                        "{}/engagements/{ENGAGEMENT}/messages?pageNumber={}",
                        base(),
                        page + 1
                    )
                } else {
                    String::new()
                };
                self.h.respond(
                    &r,
                    200,
                    json!({"messages": messages, "pagination": {"pageNumber": page}, "links": {"next": next}}),
                );
            }
            Op::Poll(ok) => {
                let Some(r) = self.take(0, |r| !matches!(r.kind, RequestKind::Rest)) else {
                    return;
                };
                if !ok {
                    return self.h.fail(&r, TransportError::Disconnected);
                }
                let batch: Vec<Value> = self.stored[self.evented..]
                    .iter()
                    .map(|(i, t)| {
                        self.next_event += 1;
                        message_event(&format!("ev-{}", self.next_event), *i, "CUSTOMER", t)
                    })
                    .collect();
                self.evented = self.stored.len();
                self.h.respond(&r, 200, Value::Array(batch));
            }
            Op::Advance(ms) => {
                let by = Duration::from_millis(*ms);
                let by = match self.h.drain() {
                    Some(d) => by.min(d - self.h.now),
                    None => by,
                };
                self.h.advance(by);
            }
            Op::ToDeadline => drop(self.h.advance_to_deadline()),
        }
        self.check();
    }

    fn check(&mut self) {
        self.h.drain();
        for reply in std::mem::take(&mut self.h.replies) {
            let Some(text) = self.sends.get(&reply.id).copied() else {
                continue;
            };
            assert!(
                !self.ok.contains_key(&reply.id) && !self.failed.contains_key(&reply.id),
                "two replies to one send"
            );
            match reply.result {
                Ok(ReplyValue::MessageSent(m)) => {
                    let i = m.message_index;
                    assert_eq!(
                        self.stored.get(i as usize - 1).map(|s| s.1),
                        Some(text),
                        "delivered as a message the server does not hold with that text"
                    );
                    assert!(
                        !self.ok.values().any(|claimed| *claimed == i),
                        "two sends claim message {i}"
                    );
                    self.ok.insert(reply.id, i);
                }
                Ok(other) => panic!("a send replied {other:?}"),
                Err(e) => {
                    self.failed.insert(reply.id, e);
                }
            }
        }
        self.h.events.clear();
    }

    /// Shuts down, answering what is left as a healthy server would.
    fn finish(&mut self) {
        drop(self.h.session.shutdown(self.h.now, None));
        for _ in 0..200 {
            self.check();
            if self.h.session.is_ended() {
                break;
            }
            match self.h.sent.pop_front() {
                Some(r) if is_post(&r) => {
                    let index = self.store(&r);
                    let text = self.stored[index as usize - 1].1;
                    self.h
                        .respond(&r, 200, rest_message(index, "CUSTOMER", text));
                }
                Some(r) if r.method.as_str() == "DELETE" => self.h.respond(&r, 204, Value::Null),
                Some(r) => self.h.fail(&r, TransportError::Disconnected),
                None => {
                    if self.h.advance_to_deadline().is_none() {
                        break;
                    }
                }
            }
        }
        assert!(self.h.session.is_ended(), "no SHUTDOWN");
        let unanswered = self
            .sends
            .keys()
            .filter(|id| !self.ok.contains_key(id) && !self.failed.contains_key(id))
            .count();
        assert_eq!(unanswered, 0, "sends without a reply");
        let texts: HashSet<&str> = TEXTS.into_iter().collect();
        for text in texts {
            let stored = self.stored.iter().filter(|s| s.1 == text).count();
            let of = |ids: Vec<&RequestId>| ids.iter().filter(|id| self.sends[id] == text).count();
            let ok = of(self.ok.keys().collect());
            let failed = of(self.failed.keys().collect());
            assert!(
                stored <= ok + failed,
                "{stored} copies of {text:?} for {ok} delivered and {failed} failed sends"
            );
        }
    }
}

fn is_post(r: &Request) -> bool {
    r.method.as_str() == "POST" && r.url.ends_with("/messages")
}

fn is_history(r: &Request) -> bool {
    r.method.as_str() == "GET" && r.url.contains("/messages?")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn sends_end_once_and_are_never_stored_twice(ops in prop::collection::vec(op(), 1..120)) {
        let mut world = World::new();
        for op in &ops {
            world.step(op);
        }
        world.finish();
    }
}
