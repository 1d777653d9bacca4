//! Model-based property test: random interleavings of commands, server answers (plausible,
//! random statuses, garbage), transport failures and the passing of time, with the core's
//! invariants checked after every step.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chat_core::{
    Config, EngagementId, Event, Request, RequestId, RequestKind, StreamFailureReason,
    TransportError,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::*;

const POOL: [&str; 3] = [
    "e0000000-0000-4000-8000-00000000000a",
    "e0000000-0000-4000-8000-00000000000b",
    "e0000000-0000-4000-8000-00000000000c",
];
const RECONNECTION: Duration = Duration::from_secs(120);
const FIB: [u64; 12] = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233];

#[derive(Debug, Clone)]
enum Answer {
    Plausible,
    Status(u16),
    Garbage(Vec<u8>),
    SessionNotFound,
    Events(Vec<Gen>),
}

#[derive(Debug, Clone)]
enum Gen {
    CustomerAdded(usize),
    CustomerLeft(usize),
    AgentAdded(usize),
    Message(usize, u64, bool),
    Error(usize),
    Unknown,
    Repeat,
}

#[derive(Debug, Clone)]
enum Op {
    Create,
    List,
    Join(usize),
    /// A join answered at once: an active engagement to send in.
    Activate(usize),
    Send(usize),
    History(usize),
    Disconnect(usize),
    SetToken(u64),
    Retry,
    ResetIdle,
    Shutdown,
    Respond(usize, Answer),
    Fail(usize, TransportError),
    Advance(u64),
    ToDeadline,
}

fn gen_event() -> impl Strategy<Value = Gen> {
    prop_oneof![
        (0..3usize).prop_map(Gen::CustomerAdded),
        (0..3usize).prop_map(Gen::CustomerLeft),
        (0..3usize).prop_map(Gen::AgentAdded),
        (0..3usize, 1..8u64, any::<bool>()).prop_map(|(e, i, c)| Gen::Message(e, i, c)),
        (0..3usize).prop_map(Gen::Error),
        Just(Gen::Unknown),
        Just(Gen::Repeat),
    ]
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        6 => Just(Answer::Plausible),
        4 => prop::collection::vec(gen_event(), 0..5).prop_map(Answer::Events),
        2 => prop::sample::select(vec![200u16, 201, 204, 400, 401, 403, 404, 409, 429, 500, 501, 502, 503])
            .prop_map(Answer::Status),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Answer::Garbage),
        1 => Just(Answer::SessionNotFound),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Create),
        1 => Just(Op::List),
        1 => (0..3usize).prop_map(Op::Join),
        2 => (0..3usize).prop_map(Op::Activate),
        4 => (0..3usize).prop_map(Op::Send),
        1 => (0..3usize).prop_map(Op::History),
        1 => (0..3usize).prop_map(Op::Disconnect),
        1 => (0..3600u64).prop_map(Op::SetToken),
        1 => Just(Op::Retry),
        1 => Just(Op::ResetIdle),
        1 => Just(Op::Shutdown),
        12 => (0..4usize, answer()).prop_map(|(i, a)| Op::Respond(i, a)),
        3 => (0..4usize, prop::sample::select(vec![
            TransportError::Timeout, TransportError::Connect, TransportError::Disconnected, TransportError::Protocol,
        ])).prop_map(|(i, e)| Op::Fail(i, e)),
        3 => (0..60_000u64).prop_map(Op::Advance),
        3 => Just(Op::ToDeadline),
    ]
}

/// What the invariants remember between steps.
struct Model {
    h: Harness,
    next_event: u64,
    last_event_id: Option<String>,
    delivered: HashSet<String>,
    shut_down: bool,
    /// exp of the current token, and whether its reminder has fired.
    token_exp: Instant,
    token_set_at: Instant,
    reminded: bool,
    retry_since: Option<Instant>,
    last_failed: Option<(Instant, u64)>,
    /// Sends accepted, and those that got their reply: each gets exactly one.
    sends: HashSet<RequestId>,
    replied: HashSet<RequestId>,
}

impl Model {
    fn new(outbox: bool) -> Self {
        let config = Config {
            reconnection_timeout: RECONNECTION,
            idle_timeout: Some(Duration::from_secs(300)),
            idle_shutdown_grace_timeout: Duration::from_secs(30),
            outbox: outbox.then_some(Duration::from_secs(200)),
            ..Config::default()
        };
        let mut h = Harness::new(config);
        h.init();
        let now = h.now;
        let mut m = Self {
            h,
            next_event: 0,
            last_event_id: None,
            delivered: HashSet::new(),
            shut_down: false,
            token_exp: now + Duration::from_secs(900),
            token_set_at: now,
            reminded: false,
            retry_since: None,
            last_failed: None,
            sends: HashSet::new(),
            replied: HashSet::new(),
        };
        m.check(false);
        m
    }

    fn event_json(&mut self, g: &Gen) -> Value {
        if let (Gen::Repeat, Some(id)) = (g, &self.last_event_id) {
            return json!({"eventId": id, "eventType": "ENGAGEMENT_CREATED"});
        }
        self.next_event += 1;
        let id = format!("ev-{}", self.next_event);
        self.last_event_id = Some(id.clone());
        let base = |e: usize, kind: &str| {
            json!({"eventId": id, "eventType": kind, "engagementId": POOL[e], "dialogId": DIALOG,
                   "eventDate": "2026-11-23T10:00:00Z"})
        };
        let participant = |who: &str, t: &str| json!({"participantId": who, "participantType": t});
        match g {
            Gen::CustomerAdded(e) => {
                let mut v = base(*e, "PARTICIPANT_ADDED");
                v["participant"] = participant(CUSTOMER, "CUSTOMER");
                v
            }
            Gen::CustomerLeft(e) => {
                let mut v = base(*e, "PARTICIPANT_DISCONNECTED");
                v["participant"] = participant(CUSTOMER, "CUSTOMER");
                v
            }
            Gen::AgentAdded(e) => {
                let mut v = base(*e, "PARTICIPANT_ADDED");
                v["participant"] = participant(AGENT, "AGENT");
                v
            }
            Gen::Message(e, index, customer) => {
                let mut v = base(*e, "MESSAGE");
                // A real server gives one id per (dialog, index).
                v["message"] = json!({"messageId": format!("{}-{index}", POOL[*e]), "messageIndex": index,
                    "body": {"elementType": "TEXT", "elementText": {"text": "t", "textFormat": "PLAINTEXT"}}});
                v["participant"] = if *customer {
                    participant(CUSTOMER, "CUSTOMER")
                } else {
                    participant(AGENT, "AGENT")
                };
                v
            }
            Gen::Error(e) => {
                let mut v = base(*e, "ENGAGEMENT_ERROR");
                v["error"] = json!({"type": "x", "title": "t", "detail": "d"});
                v
            }
            Gen::Unknown | Gen::Repeat => json!({"eventId": id, "eventType": "SOMETHING_NEW"}),
        }
    }

    fn plausible(&mut self, r: &Request) -> (u16, Value) {
        let url = r.url.as_str();
        let pool_engagement = |status: &str, e: usize| json!({"engagementId": POOL[e], "dialogs": [{"dialogId": DIALOG, "dialogStatus": status, "participants": []}]});
        let which = POOL.iter().position(|p| url.contains(p)).unwrap_or(0);
        match (&r.kind, r.method.as_str()) {
            (RequestKind::Poll { .. }, _) => {
                let n = self.next_event % 3;
                let batch: Vec<Value> = (0..n)
                    .map(|i| {
                        self.event_json(&Gen::Message(
                            i as usize % 3,
                            self.next_event % 7 + 1,
                            false,
                        ))
                    })
                    .collect();
                (200, Value::Array(batch))
            }
            (RequestKind::Probe, _) => (200, json!([])),
            (_, "DELETE") | (_, _)
                if url.contains(":disconnect") || r.method.as_str() == "DELETE" =>
            {
                (204, Value::Null)
            }
            (_, "POST") if url.ends_with("/sessions") => (201, session_json(json!([]))),
            (_, "GET") if url.contains("/sessions/") => (
                200,
                session_json(json!([
                    pool_engagement("ACTIVE", 0),
                    pool_engagement("TERMINATED", 1),
                    pool_engagement("PENDING", 2)
                ])),
            ),
            (_, "POST") if url.ends_with("/engagements") => (
                201,
                pool_engagement("PENDING", (self.next_event % 3) as usize),
            ),
            (_, "POST") if url.contains(":join") => (200, pool_engagement("ACTIVE", which)),
            (_, "POST") => (
                200,
                rest_message(self.next_event % 7 + 1, "CUSTOMER", "sent"),
            ),
            (_, _) => {
                let mut page = history_page(&[3, 2, 1], "");
                for m in page["messages"].as_array_mut().into_iter().flatten() {
                    m["engagementId"] = json!(POOL[which]);
                    let i = m["messageIndex"].as_u64().unwrap_or(0);
                    m["messageId"] = json!(format!("{}-{i}", POOL[which]));
                }
                (200, page)
            }
        }
    }

    fn step(&mut self, op: &Op) {
        let now = self.h.now;
        let eng = |i: usize| EngagementId::new(POOL[i]);
        let mut timer_driven = false;
        match op {
            Op::Create => drop(self.h.session.create_engagement(now, Default::default())),
            Op::List => drop(self.h.session.list_engagements(now)),
            Op::Join(i) => drop(self.h.session.join(now, &eng(*i))),
            Op::Activate(i) => {
                // Known (listed), joined, and the customer added on the stream: ACTIVE.
                if self.h.session.engagement(&eng(*i)).is_none() {
                    if let Ok(id) = self.h.session.list_engagements(now) {
                        self.answer_plausibly(id);
                    }
                }
                if let Ok(id) = self.h.session.join(now, &eng(*i)) {
                    self.answer_plausibly(id);
                }
                self.h.drain();
                if let Some(at) = self
                    .h
                    .sent
                    .iter()
                    .position(|r| matches!(r.kind, RequestKind::Poll { .. }))
                {
                    let r = self.h.sent.remove(at).expect("present");
                    let added = self.event_json(&Gen::CustomerAdded(*i));
                    self.h.respond(&r, 200, Value::Array(vec![added]));
                }
            }
            Op::Send(i) => {
                // Mostly into an active engagement, when there is one.
                let active: Vec<EngagementId> = self
                    .h
                    .session
                    .engagements()
                    .filter(|e| e.status == chat_core::wire::EngagementStatus::Active)
                    .map(|e| e.engagement_id.clone())
                    .collect();
                let target = active.get(*i).cloned().unwrap_or_else(|| eng(*i));
                if let Ok(id) = self.h.session.send_message(now, &target, "hello", None) {
                    self.sends.insert(id);
                }
            }
            Op::History(i) => drop(self.h.session.fetch_history(now, &eng(*i), None)),
            Op::Disconnect(i) => drop(self.h.session.disconnect(now, &eng(*i), None)),
            Op::SetToken(ttl) => {
                let wall_now = WALL0_UNIX + (now - self.h.t0).as_secs();
                let t = token(wall_now + ttl);
                let wall = self.h.wall();
                if self.h.session.set_token(now, wall, t.clone()).is_ok() {
                    self.token_exp = now + t.remaining(wall);
                    self.token_set_at = now;
                    self.reminded = false;
                }
            }
            Op::Retry => {
                if self.h.session.retry_connection(now).is_ok() {
                    self.last_failed = None;
                }
            }
            Op::ResetIdle => self.h.session.reset_idle_timeout(now),
            Op::Shutdown => drop(self.h.session.shutdown(now, None)),
            Op::Respond(pick, answer) => {
                self.h.drain();
                if self.h.sent.is_empty() {
                    return self.check(false);
                }
                let r = self
                    .h
                    .sent
                    .remove(pick % self.h.sent.len())
                    .expect("picked");
                let (status, body) = match answer {
                    Answer::Plausible => self.plausible(&r),
                    Answer::Status(s) => (*s, json!({"detail": "x"})),
                    Answer::SessionNotFound => (404, json!({"detail": "Session not found"})),
                    Answer::Events(gens) => (
                        200,
                        Value::Array(gens.iter().map(|g| self.event_json(g)).collect()),
                    ),
                    Answer::Garbage(bytes) => {
                        self.h.respond_raw(&r, 200, bytes);
                        return self.check(false);
                    }
                };
                self.h.respond(&r, status, body);
            }
            Op::Fail(pick, error) => {
                self.h.drain();
                if self.h.sent.is_empty() {
                    return self.check(false);
                }
                let r = self
                    .h
                    .sent
                    .remove(pick % self.h.sent.len())
                    .expect("picked");
                self.h.fail(&r, *error);
            }
            Op::Advance(ms) => {
                // Never jump over a deadline: timers fire exactly on time.
                let by = Duration::from_millis(*ms);
                let by = match self.h.drain() {
                    Some(d) => by.min(d - self.h.now),
                    None => by,
                };
                self.h.advance(by);
                timer_driven = true;
            }
            Op::ToDeadline => {
                self.h.advance_to_deadline();
                timer_driven = true;
            }
        }
        self.check(timer_driven);
    }

    fn check(&mut self, timer_driven: bool) {
        let now = self.h.now;
        let deadline = self.h.drain();
        assert!(deadline.is_none_or(|d| d >= now), "deadline before now");
        assert!(
            self.h.polls_in_flight() <= 1,
            "more than one poll in flight: {:#?}",
            self.h.sent
        );
        let events = std::mem::take(&mut self.h.events);
        let replies = std::mem::take(&mut self.h.replies);
        for reply in &replies {
            if self.sends.contains(&reply.id) {
                assert!(self.replied.insert(reply.id), "two replies to one send");
            }
        }
        if self.shut_down {
            assert!(
                events.is_empty() && replies.is_empty() && self.h.sent.is_empty(),
                "output after SHUTDOWN"
            );
        }
        for event in &events {
            assert!(!self.shut_down, "event after SHUTDOWN: {event:?}");
            match event {
                Event::Shutdown { .. } => self.shut_down = true,
                Event::MessageArrived(m) | Event::MessageDelivered(m) => {
                    assert!(
                        self.delivered.insert(m.message_id.to_string()),
                        "message delivered twice: {m:?}"
                    );
                }
                Event::TokenExpiryReminder { .. } => {
                    assert!(!self.reminded, "two reminders for one token");
                    self.reminded = true;
                    let expected = self
                        .token_exp
                        .checked_sub(Duration::from_secs(180))
                        .map_or(self.token_set_at, |t| t.max(self.token_set_at));
                    assert_eq!(now, expected, "reminder not at exp - 180 s");
                }
                Event::EventStreamFailed(f) => {
                    if let Some(after) = f.retry_after {
                        assert!(
                            FIB.contains(&after.as_secs()) && after.subsec_nanos() == 0,
                            "backoff base {after:?}"
                        );
                        self.retry_since.get_or_insert(now);
                        self.last_failed = Some((now, after.as_secs()));
                    } else if f.reason == StreamFailureReason::ReconnectionTimeout {
                        let since = self.retry_since.take().expect("Failed without Retry first");
                        assert_eq!(
                            now - since,
                            RECONNECTION,
                            "Failed before the reconnection timeout"
                        );
                        self.last_failed = None;
                    } else if matches!(
                        f.reason,
                        StreamFailureReason::Unauthorized
                            | StreamFailureReason::Forbidden
                            | StreamFailureReason::ClientSessionInvalidated
                    ) {
                        self.retry_since = None;
                        self.last_failed = None;
                    }
                }
                Event::EventStreamConnecting if timer_driven => {
                    let (at, base) = self.last_failed.take().expect("attempt without a failure");
                    let slept = now - at;
                    // Jitter grows with the delay: [0, max(1 s, base / 2)).
                    let base = Duration::from_secs(base);
                    let spread = (base / 2).max(Duration::from_secs(1));
                    assert!(
                        slept >= base && slept < base + spread,
                        "slept {slept:?} for base {base:?}"
                    );
                }
                Event::EventStreamConnected | Event::EventStreamClosed => {
                    self.retry_since = None;
                    self.last_failed = None;
                }
                _ => {}
            }
        }
        // Session state is never torn: a snapshot round-trips.
        if let Some(r) = self.h.session.resumption() {
            let json = serde_json::to_string(&r).expect("serializable");
            assert_eq!(
                serde_json::from_str::<chat_core::Resumption>(&json).expect("round trip"),
                r
            );
        }
    }
}

impl Model {
    /// Answers request `id`, if it is out, as a real server would.
    fn answer_plausibly(&mut self, id: RequestId) {
        self.h.drain();
        if let Some(at) = self.h.sent.iter().position(|r| r.id == id) {
            let r = self.h.sent.remove(at).expect("present");
            let (status, body) = self.plausible(&r);
            self.h.respond(&r, status, body);
        }
    }

    /// Shuts down and answers everything plausibly until SHUTDOWN: by then every send has
    /// had its one reply, delivered or failed, whatever happened before.
    fn finish(&mut self) {
        drop(self.h.session.shutdown(self.h.now, None));
        for _ in 0..500 {
            self.check(false);
            if self.shut_down || self.h.session.is_ended() {
                break;
            }
            if let Some(r) = self.h.sent.pop_front() {
                let (status, body) = self.plausible(&r);
                self.h.respond(&r, status, body);
            } else if self.h.advance_to_deadline().is_none() {
                break;
            }
        }
        // Over either way: shut down, or invalidated by the server (no SHUTDOWN then).
        assert!(
            self.shut_down
                || self.h.session.end_reason() == Some(chat_core::EndReason::SessionInvalidated),
            "no SHUTDOWN: {:#?}",
            self.h.session
        );
        let unanswered: Vec<_> = self.sends.difference(&self.replied).collect();
        assert!(
            unanswered.is_empty(),
            "sends without a reply: {unanswered:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_under_any_interleaving(
        outbox in any::<bool>(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut model = Model::new(outbox);
        for op in &ops {
            model.step(op);
        }
        model.finish();
    }
}
