//! Fuzzing twin for the session state machine: arbitrary sequences of commands, server
//! answers (plausible, any status, problem bodies, raw bytes), event batches as a WebSocket
//! pushes them, transport failures and time steps, built with `arbitrary` from the input
//! bytes. The driver [`run`] is shared with the cargo-fuzz target `session`
//! (fuzz/fuzz_targets/session.rs includes this file and `support/`); the proptest below
//! feeds it bounded random bytes in CI.
//!
//! `model.rs` checks timing rules (backoff, reminder, reconnection) on structured
//! interleavings; this driver checks what must hold for any input at all:
//! - `poll_output` always ends with `Wait`, and never with a deadline in the past;
//! - at most one poll or probe in flight; request ids are never reused; only requests in
//!   flight are aborted;
//! - replies only to accepted commands, at most once each, and once the session is shut
//!   down and every request settled, every accepted command has had exactly one reply;
//! - nothing after `SHUTDOWN`; no message delivered twice; the resumption snapshot
//!   round-trips.
//!
//! The first input byte also turns the outbox on or off, so held sends, their retries and
//! history checks meet the same invariants.
#![allow(clippy::disallowed_methods, dead_code, unreachable_pub, missing_docs)]

#[cfg(test)]
mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use chat_core::{
    Config, EngagementId, Event, Output, Request, RequestId, RequestKind, TransportError,
};
use serde_json::{Value, json};

use crate::support::{AGENT, CUSTOMER, DIALOG, Harness, WALL0_UNIX, session_json, token};

/// The engagements the fuzzer talks about (server answers and events use the same ones).
pub const POOL: [&str; 3] = [
    "e0000000-0000-4000-8000-00000000000a",
    "e0000000-0000-4000-8000-00000000000b",
    "e0000000-0000-4000-8000-00000000000c",
];

/// One step of a fuzzed run.
#[derive(Debug, Arbitrary)]
pub enum Step {
    Create,
    List,
    Join(u8),
    Send(u8, bool),
    History(u8),
    Disconnect(u8),
    /// A new token living this many seconds.
    SetToken(u16),
    Retry,
    ResetIdle,
    /// Shuts down when the byte is 0: rarely, so that most runs get far.
    Shutdown(u8),
    /// Answers the `pick`-th request in flight.
    Respond(u8, Answer),
    /// Answers the poll in flight, if any, with a batch: a WebSocket frame or a poll's body.
    Batch(Batch),
    Fail(u8, u8),
    /// Moves the clock by this many tenths of a second (over deadlines, like a late adapter).
    Advance(u8),
    ToDeadline,
}

/// A server answer.
#[derive(Debug, Arbitrary)]
pub enum Answer {
    Plausible,
    Status(u16),
    Problem(u16, Option<Text>),
    SessionNotFound,
    Raw(u16, Bytes),
}

/// Up to 48 bytes: a plain `Vec<u8>` would take most of the input and leave one step.
#[derive(Debug)]
pub struct Bytes(pub Vec<u8>);

impl<'a> Arbitrary<'a> for Bytes {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let n = u.int_in_range(0..=48usize)?.min(u.len());
        Ok(Self(u.bytes(n)?.to_vec()))
    }
}

/// Up to 48 bytes of text, for the same reason.
#[derive(Debug)]
pub struct Text(pub String);

impl<'a> Arbitrary<'a> for Text {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self(
            String::from_utf8_lossy(&Bytes::arbitrary(u)?.0).into_owned(),
        ))
    }
}

/// Up to 6 events.
#[derive(Debug)]
pub struct Batch(pub Vec<Ev>);

impl<'a> Arbitrary<'a> for Batch {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let n = u.int_in_range(0..=6usize)?;
        (0..n)
            .map(|_| Ev::arbitrary(u))
            .collect::<arbitrary::Result<_>>()
            .map(Self)
    }
}

/// One event of a batch.
#[derive(Debug, Arbitrary)]
pub struct Ev {
    pub kind: EvKind,
    pub engagement: u8,
    /// Reuse the previous event's id (a redelivery).
    pub repeat: bool,
}

#[derive(Debug, Arbitrary)]
pub enum EvKind {
    CustomerAdded,
    CustomerLeft,
    AgentAdded,
    AgentLeft,
    Message { index: u8, from_customer: bool },
    Error,
    Created,
    Unknown(Text),
}

/// Runs the steps that `data` decodes to, checking the invariants after each.
///
/// Byte 0 chooses the start: even, the session is already initialized (most runs, so that
/// the steps reach chats and the stream); odd, the init answer is left to the steps.
pub fn run(data: &[u8]) {
    let Some((&start, rest)) = data.split_first() else {
        return;
    };
    // The first byte picks the opening: initialized or not, outbox on or off.
    run_steps(start % 2 == 0, start & 2 != 0, &steps(rest));
}

/// Decodes steps until the input runs out (`Vec::arbitrary` would stop at the first even
/// "continue" byte: two steps on average from random bytes).
pub fn steps(data: &[u8]) -> Vec<Step> {
    let mut u = Unstructured::new(data);
    let mut steps = Vec::new();
    while !u.is_empty() && steps.len() < MAX_STEPS {
        match Step::arbitrary(&mut u) {
            Ok(step) => steps.push(step),
            Err(_) => break,
        }
    }
    steps
}

/// Steps run per input, at most: enough for a conversation, bounded for the fuzzer's speed.
pub const MAX_STEPS: usize = 200;

/// Runs `steps` (the fuzz input, decoded), then shuts down and settles everything.
pub fn run_steps(initialized: bool, outbox: bool, steps: &[Step]) {
    let mut f = Fuzzed::new(outbox);
    if initialized {
        f.step(&Step::Respond(0, Answer::Plausible));
    }
    for step in steps {
        f.step(step);
    }
    f.finish();
}

struct Fuzzed {
    h: Harness,
    in_flight: HashSet<RequestId>,
    ever_sent: HashSet<RequestId>,
    accepted: HashSet<RequestId>,
    shutdowns: HashSet<RequestId>,
    replied: HashMap<RequestId, usize>,
    delivered: HashSet<String>,
    next_event: u64,
    last_event_id: Option<String>,
    shut_down: bool,
}

impl Fuzzed {
    fn new(outbox: bool) -> Self {
        let config = Config {
            reconnection_timeout: Duration::from_secs(120),
            idle_timeout: Some(Duration::from_secs(300)),
            idle_shutdown_grace_timeout: Duration::from_secs(30),
            outbox: outbox.then_some(Duration::from_secs(200)),
            ..Config::default()
        };
        let mut f = Self {
            h: Harness::new(config),
            in_flight: HashSet::new(),
            ever_sent: HashSet::new(),
            accepted: HashSet::new(),
            shutdowns: HashSet::new(),
            replied: HashMap::new(),
            delivered: HashSet::new(),
            next_event: 0,
            last_event_id: None,
            shut_down: false,
        };
        let now = f.h.now;
        let wall = f.h.wall();
        let init = f.h.session.init(now, wall);
        f.accept(init);
        f.settle_outputs();
        f
    }

    fn accept(&mut self, result: Result<RequestId, chat_core::ChatError>) {
        if let Ok(id) = result {
            assert!(self.accepted.insert(id), "command id {id} reused");
        }
    }

    /// Drains the outputs (bounded) and checks each.
    fn settle_outputs(&mut self) {
        for _ in 0..10_000 {
            match self.h.session.poll_output() {
                Output::Wait(deadline) => {
                    assert!(
                        deadline.is_none_or(|d| d >= self.h.now),
                        "deadline in the past"
                    );
                    let streams = self
                        .h
                        .sent
                        .iter()
                        .filter(|r| r.kind != RequestKind::Rest)
                        .count();
                    assert!(streams <= 1, "{streams} polls or probes in flight");
                    if let Some(r) = self.h.session.resumption() {
                        let json = serde_json::to_string(&r).expect("serializable");
                        let back: chat_core::Resumption =
                            serde_json::from_str(&json).expect("round trip");
                        assert_eq!(back, r);
                    }
                    return;
                }
                Output::Transmit(r) => {
                    assert!(!self.shut_down, "request after SHUTDOWN: {r:?}");
                    assert!(self.ever_sent.insert(r.id), "request id {} reused", r.id);
                    self.in_flight.insert(r.id);
                    self.h.sent.push_back(r);
                }
                Output::FetchToken(id) => self.h.fetches.push(id),
                Output::Abort(id) => {
                    assert!(self.in_flight.remove(&id), "abort of {id}, not in flight");
                    self.h.sent.retain(|r| r.id != id);
                }
                Output::Reply(r) => {
                    // The shutdown command itself is answered right after the event.
                    assert!(
                        !self.shut_down || self.shutdowns.contains(&r.id),
                        "reply after SHUTDOWN: {r:?}"
                    );
                    assert!(self.accepted.contains(&r.id), "reply to no command: {r:?}");
                    let n = self.replied.entry(r.id).or_default();
                    *n += 1;
                    assert_eq!(*n, 1, "second reply to {}", r.id);
                }
                Output::Event(e) => {
                    assert!(!self.shut_down, "event after SHUTDOWN: {e:?}");
                    match &e {
                        Event::Shutdown { .. } => self.shut_down = true,
                        Event::MessageArrived(m) | Event::MessageDelivered(m) => assert!(
                            self.delivered.insert(m.message_id.to_string()),
                            "message delivered twice: {m:?}"
                        ),
                        _ => {}
                    }
                }
            }
        }
        panic!("poll_output never returned Wait");
    }

    fn take(&mut self, pick: u8) -> Option<Request> {
        if self.h.sent.is_empty() {
            return None;
        }
        let r = self.h.sent.remove(pick as usize % self.h.sent.len())?;
        self.in_flight.remove(&r.id);
        Some(r)
    }

    fn step(&mut self, step: &Step) {
        let now = self.h.now;
        let eng = |i: &u8| EngagementId::new(POOL[*i as usize % POOL.len()]);
        match step {
            Step::Create => {
                let r = self.h.session.create_engagement(now, Default::default());
                self.accept(r);
            }
            Step::List => {
                let r = self.h.session.list_engagements(now);
                self.accept(r);
            }
            Step::Join(i) => {
                let r = self.h.session.join(now, &eng(i));
                self.accept(r);
            }
            Step::Send(i, long) => {
                let text = if *long {
                    "x".repeat(5000)
                } else {
                    "hello".into()
                };
                let r = self.h.session.send_message(now, &eng(i), &text, None);
                self.accept(r);
            }
            Step::History(i) => {
                let r = self.h.session.fetch_history(now, &eng(i), None);
                self.accept(r);
            }
            Step::Disconnect(i) => {
                let r = self.h.session.disconnect(now, &eng(i), None);
                self.accept(r);
            }
            Step::SetToken(ttl) => {
                let wall_now = WALL0_UNIX + (now - self.h.t0).as_secs();
                let wall = self.h.wall();
                let _ = self
                    .h
                    .session
                    .set_token(now, wall, token(wall_now + u64::from(*ttl)));
            }
            Step::Retry => drop(self.h.session.retry_connection(now)),
            Step::ResetIdle => self.h.session.reset_idle_timeout(now),
            Step::Shutdown(0) => {
                let r = self.h.session.shutdown(now, None);
                self.shutdowns.extend(r.as_ref().ok());
                self.accept(r);
            }
            Step::Shutdown(_) => {}
            Step::Respond(pick, answer) => {
                if let Some(r) = self.take(*pick) {
                    let (status, body) = match answer {
                        Answer::Plausible => self.plausible(&r),
                        Answer::Status(s) => (*s, Vec::new()),
                        Answer::Problem(s, detail) => (
                            *s,
                            json!({"type": "about:blank", "status": s, "detail": detail.as_ref().map(|t| &t.0)})
                                .to_string()
                                .into_bytes(),
                        ),
                        Answer::SessionNotFound => (
                            404,
                            json!({"detail": "Session not found"})
                                .to_string()
                                .into_bytes(),
                        ),
                        Answer::Raw(s, bytes) => (*s, bytes.0.clone()),
                    };
                    self.h.session.handle_response(now, r.id, status, &body);
                }
            }
            Step::Batch(Batch(events)) => {
                let poll = self
                    .h
                    .sent
                    .iter()
                    .position(|r| matches!(r.kind, RequestKind::Poll { .. }));
                if let Some(at) = poll {
                    let r = self.h.sent.remove(at).expect("present");
                    self.in_flight.remove(&r.id);
                    let batch: Vec<Value> = events.iter().map(|e| self.event(e)).collect();
                    let body = Value::Array(batch).to_string();
                    self.h
                        .session
                        .handle_response(now, r.id, 200, body.as_bytes());
                }
            }
            Step::Fail(pick, error) => {
                if let Some(r) = self.take(*pick) {
                    self.h.session.handle_failure(now, r.id, failure(*error));
                }
            }
            Step::Advance(tenths) => {
                self.h.now += Duration::from_millis(u64::from(*tenths) * 100);
                self.h.session.handle_timeout(self.h.now);
            }
            Step::ToDeadline => {
                if let Some(d) = self.h.session.poll_timeout() {
                    self.h.now = self.h.now.max(d);
                    self.h.session.handle_timeout(self.h.now);
                }
            }
        }
        self.settle_outputs();
    }

    /// Shuts down, then fails every request and fires every timer until the core is idle:
    /// by then every accepted command has been answered exactly once.
    fn finish(&mut self) {
        let now = self.h.now;
        let r = self.h.session.shutdown(now, None);
        self.shutdowns.extend(r.as_ref().ok());
        self.accept(r);
        self.settle_outputs();
        for _ in 0..1000 {
            if let Some(r) = self.take(0) {
                self.h
                    .session
                    .handle_failure(self.h.now, r.id, TransportError::Disconnected);
            } else if let Some(d) = self.h.session.poll_timeout() {
                self.h.now = self.h.now.max(d);
                self.h.session.handle_timeout(self.h.now);
            } else {
                break;
            }
            self.settle_outputs();
        }
        assert!(self.h.sent.is_empty(), "still in flight: {:?}", self.h.sent);
        let unanswered: Vec<_> = self
            .accepted
            .iter()
            .filter(|id| !self.replied.contains_key(id))
            .collect();
        assert!(unanswered.is_empty(), "never answered: {unanswered:?}");
    }

    fn event(&mut self, e: &Ev) -> Value {
        let id = match (&self.last_event_id, e.repeat) {
            (Some(id), true) => id.clone(),
            _ => {
                self.next_event += 1;
                format!("ev-{}", self.next_event)
            }
        };
        self.last_event_id = Some(id.clone());
        let engagement = POOL[e.engagement as usize % POOL.len()];
        let mut v = json!({"eventId": id, "engagementId": engagement, "dialogId": DIALOG,
            "eventDate": "2026-11-23T10:00:00Z"});
        let who = |id: &str, t: &str| json!({"participantId": id, "participantType": t});
        let (kind, extra) = match &e.kind {
            EvKind::CustomerAdded => (
                "PARTICIPANT_ADDED",
                Some(("participant", who(CUSTOMER, "CUSTOMER"))),
            ),
            EvKind::CustomerLeft => (
                "PARTICIPANT_DISCONNECTED",
                Some(("participant", who(CUSTOMER, "CUSTOMER"))),
            ),
            EvKind::AgentAdded => (
                "PARTICIPANT_ADDED",
                Some(("participant", who(AGENT, "AGENT"))),
            ),
            EvKind::AgentLeft => (
                "PARTICIPANT_DISCONNECTED",
                Some(("participant", who(AGENT, "AGENT"))),
            ),
            EvKind::Message {
                index,
                from_customer,
            } => {
                // A real server gives one message id per (engagement, index).
                v["message"] = json!({"messageId": format!("{engagement}-{index}"),
                    "messageIndex": index, "body": {"elementType": "TEXT",
                    "elementText": {"text": "t", "textFormat": "PLAINTEXT"}}});
                let p = if *from_customer {
                    who(CUSTOMER, "CUSTOMER")
                } else {
                    who(AGENT, "AGENT")
                };
                ("MESSAGE", Some(("participant", p)))
            }
            EvKind::Error => (
                "ENGAGEMENT_ERROR",
                Some(("error", json!({"type": "t", "title": "x", "detail": "y"}))),
            ),
            EvKind::Created => ("ENGAGEMENT_CREATED", None),
            EvKind::Unknown(name) => {
                v["eventType"] = json!(name.0);
                return v;
            }
        };
        v["eventType"] = json!(kind);
        if let Some((key, value)) = extra {
            v[key] = value;
        }
        v
    }

    /// A well-formed answer for `r`, as the emulator would give.
    fn plausible(&mut self, r: &Request) -> (u16, Vec<u8>) {
        let url = r.url.as_str();
        let which = POOL.iter().position(|p| url.contains(p)).unwrap_or(0);
        let engagement = |status: &str, e: usize| {
            json!({"engagementId": POOL[e], "dialogs": [{"dialogId": DIALOG,
                "dialogStatus": status, "participants": [who_customer()]}]})
        };
        let (status, body) = match (&r.kind, r.method.as_str()) {
            (RequestKind::Poll { .. }, _) | (RequestKind::Probe, _) => (200, json!([])),
            (_, "DELETE") => (204, Value::Null),
            (_, "POST") if url.contains(":disconnect") => (204, Value::Null),
            (_, "POST") if url.ends_with("/sessions") => (201, session_json(json!([]))),
            (_, "GET") if url.contains("/sessions/") => (
                200,
                session_json(json!([engagement("ACTIVE", 0), engagement("PENDING", 2)])),
            ),
            (_, "POST") if url.ends_with("/engagements") => {
                (201, engagement("PENDING", (self.next_event % 3) as usize))
            }
            (_, "POST") if url.contains(":join") => (200, engagement("ACTIVE", which)),
            (_, "POST") => {
                self.next_event += 1;
                let index = 100 + self.next_event;
                (
                    200,
                    json!({"messageId": format!("{}-{index}", POOL[which]), "dialogId": DIALOG,
                    "engagementId": POOL[which], "messageIndex": index,
                    "body": {"elementType": "TEXT", "elementText": {"text": "hello", "textFormat": "PLAINTEXT"}},
                    "senderParticipantId": CUSTOMER, "participantType": "CUSTOMER"}),
                )
            }
            _ => (
                200,
                json!({"messages": [], "pagination": {"pageNumber": 1}, "links": {"next": ""}}),
            ),
        };
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        (status, bytes)
    }
}

fn who_customer() -> Value {
    json!({"participantId": CUSTOMER, "participantType": "CUSTOMER"})
}

fn failure(byte: u8) -> TransportError {
    match byte % 4 {
        0 => TransportError::Timeout,
        1 => TransportError::Connect,
        2 => TransportError::Disconnected,
        _ => TransportError::Protocol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn any_sequence_keeps_the_invariants(data in prop::collection::vec(any::<u8>(), 0..2048)) {
            run(&data);
        }
    }

    #[test]
    fn a_plausible_conversation_answers_every_command() {
        let steps = [
            Step::Respond(0, Answer::Plausible),
            Step::Create,
            Step::Respond(1, Answer::Plausible),
            Step::Batch(Batch(vec![Ev {
                kind: EvKind::AgentAdded,
                engagement: 0,
                repeat: false,
            }])),
            Step::Send(0, false),
            Step::Batch(Batch(vec![Ev {
                kind: EvKind::Message {
                    index: 1,
                    from_customer: false,
                },
                engagement: 0,
                repeat: false,
            }])),
            Step::Advance(50),
        ];
        run_steps(false, false, &steps);
        run_steps(false, true, &steps);
    }
}
