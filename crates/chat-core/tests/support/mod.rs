//! A deterministic harness: one `Session`, a hand-driven clock, and a record of everything
//! the core asked for. Tests play the server by answering the requests it sent.
#![allow(dead_code, unreachable_pub, missing_docs)]
// One base instant is read from the clock; from then on all time is advanced by hand.
#![allow(clippy::disallowed_methods)]

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use chat_core::{
    AppKey, Config, EngagementId, Event, InitParams, Output, Reply, ReplyValue, Request, RequestId,
    RequestKind, Session, Token, TransportError,
};
use serde_json::{Value, json};

pub const HOST: &str = "https://axp.test";
pub const INTEGRATION: &str = "123e4567-e89b-12d3-a456-426614174000";
pub const SESSION: &str = "5e55e55e-0000-4000-8000-000000000001";
pub const ENGAGEMENT: &str = "e0000000-0000-4000-8000-000000000001";
pub const DIALOG: &str = "d0000000-0000-4000-8000-000000000001";
pub const CUSTOMER: &str = "c0000000-0000-4000-8000-000000000001";
pub const AGENT: &str = "a0000000-0000-4000-8000-000000000001";
pub const APPKEY: &str = "appkey-secret-123";
/// Wall-clock time at the harness's start.
pub const WALL0_UNIX: u64 = 1_800_000_000;

pub fn base() -> String {
    format!("{HOST}/sdk/digital/chat/v1/integrations/{INTEGRATION}")
}

/// A chat token whose `exp` is `exp_unix`, with a recognisable signature part.
pub fn token(exp_unix: u64) -> Token {
    let payload =
        base64::engine::general_purpose::STANDARD.encode(format!("{{\"exp\":{exp_unix}}}"));
    Token::parse(&format!(
        "jwt.eyJhbGciOiJIUzI1NiJ9.{payload}.sig-{exp_unix}"
    ))
    .expect("token")
}

pub struct Harness {
    pub session: Session,
    pub t0: Instant,
    pub now: Instant,
    /// Requests sent and not yet answered or aborted, oldest first.
    pub sent: VecDeque<Request>,
    pub events: Vec<Event>,
    pub replies: Vec<Reply>,
    pub aborted: Vec<RequestId>,
    /// Token provider calls asked for and not yet answered.
    pub fetches: Vec<RequestId>,
}

impl Harness {
    /// A session with a 15-minute token.
    pub fn new(config: Config) -> Self {
        Self::with_token(config, token(WALL0_UNIX + 900))
    }

    pub fn with_token(mut config: Config, token: Token) -> Self {
        // Reproducible schedules: the harness fixes the jitter's seed unless a test does.
        config.jitter_seed.get_or_insert(0x5eed);
        let params =
            InitParams::new(HOST, INTEGRATION, token, AppKey::new(APPKEY)).expect("params");
        Self::with_params(params, config)
    }

    /// A session as `Session::new` makes it from these, the jitter seed left as given.
    pub fn with_params(params: InitParams, config: Config) -> Self {
        let session = Session::new(params, config).expect("session");
        let t0 = Instant::now();
        Self {
            session,
            t0,
            now: t0,
            sent: VecDeque::new(),
            events: Vec::new(),
            replies: Vec::new(),
            aborted: Vec::new(),
            fetches: Vec::new(),
        }
    }

    pub fn wall(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(WALL0_UNIX) + (self.now - self.t0)
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Collects every output until the core waits; returns the deadline it waits for.
    pub fn drain(&mut self) -> Option<Instant> {
        loop {
            match self.session.poll_output() {
                Output::Transmit(r) => self.sent.push_back(r),
                Output::Abort(id) => {
                    self.sent.retain(|r| r.id != id);
                    self.aborted.push(id);
                }
                Output::Reply(r) => self.replies.push(r),
                Output::Event(e) => self.events.push(e),
                Output::FetchToken(id) => self.fetches.push(id),
                Output::Wait(deadline) => {
                    if let Some(d) = deadline {
                        assert!(d >= self.now, "deadline in the past");
                    }
                    return deadline;
                }
            }
        }
    }

    /// Moves the clock forward and lets timers fire.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.session.handle_timeout(self.now);
        self.drain();
    }

    /// Moves the clock to the next deadline (if any) and fires it.
    pub fn advance_to_deadline(&mut self) -> Option<Duration> {
        let deadline = self.drain()?;
        let by = deadline - self.now;
        self.advance(by);
        Some(by)
    }

    /// Names of the events collected since the last call.
    pub fn take_event_names(&mut self) -> Vec<&'static str> {
        self.drain();
        std::mem::take(&mut self.events)
            .iter()
            .map(Event::name)
            .collect()
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        self.drain();
        std::mem::take(&mut self.events)
    }

    pub fn take_reply(&mut self, id: RequestId) -> Result<ReplyValue, chat_core::ChatError> {
        self.drain();
        let at = self
            .replies
            .iter()
            .position(|r| r.id == id)
            .unwrap_or_else(|| panic!("no reply for {id}; replies: {:?}", self.replies));
        self.replies.remove(at).result
    }

    /// Takes the oldest outstanding request that matches.
    pub fn take_request(&mut self, what: impl Fn(&Request) -> bool) -> Request {
        self.drain();
        let at = self
            .sent
            .iter()
            .position(what)
            .unwrap_or_else(|| panic!("no such request among {:#?}", self.sent));
        self.sent.remove(at).expect("present")
    }

    pub fn take_poll(&mut self) -> Request {
        self.take_request(|r| matches!(r.kind, RequestKind::Poll { .. }))
    }

    pub fn take_probe(&mut self) -> Request {
        self.take_request(|r| r.kind == RequestKind::Probe)
    }

    pub fn take_rest(&mut self, method: &str, url_part: &str) -> Request {
        self.take_request(|r| {
            r.kind == RequestKind::Rest && r.method.as_str() == method && r.url.contains(url_part)
        })
    }

    pub fn polls_in_flight(&mut self) -> usize {
        self.drain();
        self.sent
            .iter()
            .filter(|r| r.kind != RequestKind::Rest)
            .count()
    }

    pub fn respond(&mut self, request: &Request, status: u16, body: Value) {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        self.session
            .handle_response(self.now, request.id, status, &bytes);
        self.drain();
    }

    pub fn respond_raw(&mut self, request: &Request, status: u16, body: &[u8]) {
        self.session
            .handle_response(self.now, request.id, status, body);
        self.drain();
    }

    /// Answers the oldest token provider call with `token`.
    pub fn give_token(&mut self, token: &Token) -> Result<(), chat_core::ChatError> {
        self.drain();
        assert!(!self.fetches.is_empty(), "nobody asked for a token");
        let id = self.fetches.remove(0);
        let wall = self.wall();
        let r = self
            .session
            .handle_token(self.now, wall, id, token.expose());
        self.drain();
        r
    }

    /// The oldest token provider call fails.
    pub fn fail_token(&mut self) {
        self.drain();
        assert!(!self.fetches.is_empty(), "nobody asked for a token");
        let id = self.fetches.remove(0);
        self.session.handle_token_failure(self.now, id);
        self.drain();
    }

    pub fn poll_outcome(&mut self, request: &Request, outcome: chat_core::PollOutcome) {
        self.session.handle_poll(self.now, request.id, &outcome);
        self.drain();
    }

    pub fn fail(&mut self, request: &Request, error: TransportError) {
        self.session.handle_failure(self.now, request.id, error);
        self.drain();
    }

    // -------------------------------------------------------------------------------------
    // Common openings
    // -------------------------------------------------------------------------------------

    /// `init` answered with a session holding `engagements`.
    pub fn init_with(&mut self, engagements: Value) -> chat_core::UserContext {
        let id = self.session.init(self.now, self.wall()).expect("init");
        let req = self.take_rest("POST", "/sessions");
        assert_eq!(req.id, id);
        self.respond(&req, 201, session_json(engagements));
        match self.take_reply(id) {
            Ok(ReplyValue::Initialized(ctx)) => ctx,
            other => panic!("init failed: {other:?}"),
        }
    }

    pub fn init(&mut self) -> chat_core::UserContext {
        self.init_with(json!([]))
    }

    /// Creates the engagement and runs the stream until it is ACTIVE.
    pub fn active_engagement(&mut self) -> EngagementId {
        let id = self
            .session
            .create_engagement(self.now, Default::default())
            .expect("create");
        let req = self.take_rest("POST", "/engagements");
        self.respond(&req, 201, engagement_json(ENGAGEMENT, "PENDING", json!([])));
        self.take_reply(id).expect("created");
        let poll = self.take_poll();
        self.respond(
            &poll,
            200,
            json!([
                {"eventId": "ev-1", "eventType": "ENGAGEMENT_CREATED", "engagementId": ENGAGEMENT, "sessionId": SESSION},
                participant_event("ev-2", "PARTICIPANT_ADDED", CUSTOMER, "CUSTOMER"),
            ]),
        );
        EngagementId::new(ENGAGEMENT)
    }
}

pub fn session_json(engagements: Value) -> Value {
    json!({"sessionId": SESSION, "displayName": "Ada", "engagements": engagements})
}

pub fn engagement_json(id: &str, status: &str, participants: Value) -> Value {
    json!({"engagementId": id, "dialogs": [{"dialogId": DIALOG, "dialogStatus": status,
        "participants": participants, "createdAt": "2026-11-23T10:00:00Z",
        "lastUpdatedAt": "2026-11-23T10:00:00Z"}]})
}

pub fn participant_event(event_id: &str, kind: &str, who: &str, participant_type: &str) -> Value {
    json!({"eventId": event_id, "eventType": kind, "engagementId": ENGAGEMENT, "dialogId": DIALOG,
        "eventDate": "2026-11-23T10:00:01Z",
        "participant": {"participantId": who, "participantType": participant_type, "displayName": "Someone"}})
}

pub fn message_id(index: u64) -> String {
    format!("00000000-0000-4000-8000-{index:012}")
}

pub fn message_event(event_id: &str, index: u64, from_type: &str, text: &str) -> Value {
    let who = if from_type == "CUSTOMER" {
        CUSTOMER
    } else {
        AGENT
    };
    json!({"eventId": event_id, "eventType": "MESSAGE", "engagementId": ENGAGEMENT, "dialogId": DIALOG,
        "eventDate": "2026-11-23T10:00:02Z",
        "message": {"messageId": message_id(index), "messageIndex": index,
            "receivedAt": "2026-11-23T10:00:02Z",
            "body": {"elementType": "TEXT", "elementText": {"text": text, "textFormat": "PLAINTEXT"}}},
        "participant": {"participantId": who, "participantType": from_type}})
}

pub fn rest_message(index: u64, from_type: &str, text: &str) -> Value {
    let who = if from_type == "CUSTOMER" {
        CUSTOMER
    } else {
        AGENT
    };
    json!({"messageId": message_id(index), "dialogId": DIALOG, "engagementId": ENGAGEMENT,
        "body": {"elementType": "TEXT", "elementText": {"text": text, "textFormat": "PLAINTEXT"}},
        "messageIndex": index, "senderParticipantId": who, "participantType": from_type,
        "displayName": "Someone", "receivedAt": "2026-11-23T10:00:02Z"})
}

/// A history page of customer messages `(index, text)`, newest first, without a next page.
pub fn customer_page(messages: &[(u64, &str)]) -> Value {
    let messages: Vec<Value> = messages
        .iter()
        .map(|(i, t)| rest_message(*i, "CUSTOMER", t))
        .collect();
    json!({"messages": messages, "pagination": {"pageNumber": 1}, "links": {"next": ""}})
}

/// The text a `sendMessage` request carries.
pub fn sent_text(r: &Request) -> String {
    let body: Value = serde_json::from_str(r.body.as_deref().unwrap_or("null")).expect("json");
    body["body"]["elementText"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A history page holding `indexes` (give them newest first) and a `links.next`.
pub fn history_page(indexes: &[u64], next: &str) -> Value {
    let messages: Vec<Value> = indexes
        .iter()
        .map(|i| rest_message(*i, "AGENT", &format!("m{i}")))
        .collect();
    json!({"messages": messages, "pagination": {"pageNumber": 1}, "links": {"next": next}})
}

pub fn messages_of(events: &[Event]) -> Vec<(u64, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::MessageArrived(m) | Event::MessageDelivered(m) => {
                Some((m.message_index, m.text().unwrap_or_default().to_owned()))
            }
            _ => None,
        })
        .collect()
}
