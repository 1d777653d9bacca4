//! The cases: what the server does, to which request, and what the client must make of it.

use std::time::Duration;

use chat_core::{
    ChatError, Config, Event, Footprint, MAX_ORPHANS, StreamFailureReason, TransportError,
};

use crate::script::{self, ENGAGEMENT_ID};
use crate::server::{HostileServer, Log};

/// The clients' request and poll timeouts in every case ([`config`]).
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// The event queue the clients are built with (`event_capacity`).
pub const EVENT_CAPACITY: usize = 256;

/// The client configuration every case runs with: requests and polls time out after
/// [`TIMEOUT`] (the least whole second chat-core allows is 1 s), a fixed jitter seed.
pub fn config() -> Config {
    Config {
        poll_timeout: TIMEOUT,
        request_timeout: TIMEOUT,
        jitter_seed: Some(12),
        ..Config::default()
    }
}

/// Which request meets the hostile answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// The first REST call, the session's creation (`connect`), over the REST transport.
    Connect,
    /// The event stream: every long poll and probe, over the long-poll transport.
    Poll,
}

/// What the server does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hostility {
    /// `Content-Length` one byte past the cap, and no body: held open.
    DeclaredPastCap,
    /// A chunked body of the cap plus 64 KiB.
    ChunkedPastCap,
    /// A chunked body that never ends.
    EndlessChunked,
    /// A small answer, one byte per second.
    OneBytePerSecond,
    /// A body cut in the middle of its JSON.
    InvalidJson,
    /// 100,000 `[`.
    DeepJson,
    /// 10,000 new events in one batch.
    BigBatch,
    /// Event ids going down, one twice in a batch, a batch delivered again.
    DuplicateIds,
    /// A `messageIndex` going backwards: a late message, and repeats with new event ids.
    IndexBackwards,
    /// 10,000 events for engagements the session does not know, then one for its own.
    UnknownEngagements,
    /// The stream breaks after a first message; once it is back, the history the session
    /// reads to catch up never answers, while every poll brings 600 new messages (five
    /// times).
    FloodDuringCatchUp,
    /// `307` to another host.
    RedirectElsewhere,
    /// 1 MiB of headers.
    HugeHeaders,
    /// Every answer in HTTP/1.0: no `Content-Length`, the connection closed at its end.
    Http10,
    /// TLS with a self-signed certificate the client does not trust.
    UntrustedTls,
    /// The connection kept alive after the first poll is closed, without a byte of answer,
    /// when the next poll arrives on it (the server's close crossed the request).
    ClosedAsNextPollGoesOut,
}

/// How `connect` must fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// ACS-306, with this transport error.
    Unreachable(TransportError),
    /// ACS-304, with this status.
    Status(u16),
    /// ACS-304: a success whose body is not what it should be.
    UnusableBody,
}

impl Refusal {
    /// Whether `error` is this refusal.
    pub fn matches(self, error: &ChatError) -> bool {
        match self {
            Self::Unreachable(t) => *error == ChatError::Unreachable(t),
            Self::Status(s) => {
                matches!(error, ChatError::ServerUnexpected { status: Some(x), .. } if *x == s)
            }
            Self::UnusableBody => {
                matches!(error, ChatError::ServerUnexpected { status: None, .. })
            }
        }
    }
}

/// What the client shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `connect` fails so.
    ConnectFails(Refusal),
    /// The first `EVENT_STREAM_FAILED` has this reason.
    StreamFails(StreamFailureReason),
    /// Exactly the case's messages arrive, in order, and no `EVENT_STREAM_FAILED`.
    Delivered,
    /// The stream fails with this reason (the hostility breaks it), then recovers, and
    /// exactly the case's messages arrive, in order.
    DeliveredAfter(StreamFailureReason),
}

/// One hostile case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    /// What it is, for the report.
    pub name: &'static str,
    /// What the server does.
    pub hostility: Hostility,
    /// To which request.
    pub on: On,
    /// What the adapter's own transport for that request (REST or long poll) makes of the
    /// exchange: an answer of this status, or this failure.
    pub exchange: Result<u16, TransportError>,
    /// What the client makes of it.
    pub outcome: Outcome,
}

use Hostility as H;
use On::{Connect, Poll};
use Outcome::{ConnectFails, Delivered, DeliveredAfter, StreamFails};
use StreamFailureReason::{ServerUnreachable, UnexpectedError};
use TransportError::{Certificate, Protocol, Timeout};

const fn case(
    name: &'static str,
    hostility: Hostility,
    on: On,
    exchange: Result<u16, TransportError>,
    outcome: Outcome,
) -> Case {
    Case {
        name,
        hostility,
        on,
        exchange,
        outcome,
    }
}

/// Every case, each run by both adapters (`crates/chat-tokio/tests/hostile.rs`,
/// `crates/chat-blocking/tests/hostile.rs`).
#[rustfmt::skip]
pub const CASES: &[Case] = &[
    case("declared length past the cap (connect)", H::DeclaredPastCap, Connect, Err(Protocol), ConnectFails(Refusal::Unreachable(Protocol))),
    case("declared length past the cap (poll)", H::DeclaredPastCap, Poll, Err(Protocol), StreamFails(ServerUnreachable)),
    case("chunked body past the cap (connect)", H::ChunkedPastCap, Connect, Err(Protocol), ConnectFails(Refusal::Unreachable(Protocol))),
    case("chunked body past the cap (poll)", H::ChunkedPastCap, Poll, Err(Protocol), StreamFails(ServerUnreachable)),
    case("endless chunked body (connect)", H::EndlessChunked, Connect, Err(Protocol), ConnectFails(Refusal::Unreachable(Protocol))),
    case("endless chunked body (poll)", H::EndlessChunked, Poll, Err(Protocol), StreamFails(ServerUnreachable)),
    case("one byte per second (connect)", H::OneBytePerSecond, Connect, Err(Timeout), ConnectFails(Refusal::Unreachable(Timeout))),
    case("one byte per second (poll)", H::OneBytePerSecond, Poll, Err(Timeout), StreamFails(ServerUnreachable)),
    case("invalid JSON (connect)", H::InvalidJson, Connect, Ok(201), ConnectFails(Refusal::UnusableBody)),
    case("invalid JSON (poll)", H::InvalidJson, Poll, Ok(200), StreamFails(ServerUnreachable)),
    case("100,000 nested arrays (connect)", H::DeepJson, Connect, Ok(201), ConnectFails(Refusal::UnusableBody)),
    case("100,000 nested arrays (poll)", H::DeepJson, Poll, Ok(200), StreamFails(ServerUnreachable)),
    case("10,000 events in one batch", H::BigBatch, Poll, Ok(200), Delivered),
    case("duplicate and decreasing event ids", H::DuplicateIds, Poll, Ok(200), Delivered),
    case("messageIndex going backwards", H::IndexBackwards, Poll, Ok(200), Delivered),
    case("10,000 events of unknown engagements", H::UnknownEngagements, Poll, Ok(200), Delivered),
    case("a flood of messages during a slow catch-up", H::FloodDuringCatchUp, Poll, Ok(200), DeliveredAfter(ServerUnreachable)),
    case("307 to another host (connect)", H::RedirectElsewhere, Connect, Ok(307), ConnectFails(Refusal::Status(307))),
    case("307 to another host (poll)", H::RedirectElsewhere, Poll, Ok(307), StreamFails(UnexpectedError)),
    case("1 MiB of headers (connect)", H::HugeHeaders, Connect, Err(Protocol), ConnectFails(Refusal::Unreachable(Protocol))),
    case("1 MiB of headers (poll)", H::HugeHeaders, Poll, Err(Protocol), StreamFails(ServerUnreachable)),
    case("HTTP/1.0, no length, connection closed", H::Http10, Poll, Ok(200), Delivered),
    case("untrusted TLS certificate (connect)", H::UntrustedTls, Connect, Err(Certificate), ConnectFails(Refusal::Unreachable(Certificate))),
    case("untrusted TLS certificate (poll)", H::UntrustedTls, Poll, Err(Certificate), ConnectFails(Refusal::Unreachable(Certificate))),
    case("kept-alive connection closed as the next poll goes out", H::ClosedAsNextPollGoesOut, Poll, Ok(200), Delivered),
];

/// What a client run showed: what the adapter's test collects, for [`Case::check_run`].
#[derive(Debug)]
pub struct Run {
    /// `Err` when `connect` failed: its chat error (`None` for another kind of error).
    pub connect: Result<(), Option<ChatError>>,
    /// The events the application received, in order.
    pub events: Vec<Event>,
    /// From the start of the request that meets the hostility (`connect`, or, for the
    /// stream, the first poll: the return of `create_engagement`) to the outcome.
    pub elapsed: Duration,
    /// The most events the client's queue held at once, sampled at each event taken.
    pub max_queued: usize,
    /// The session's footprint at the end (before shutdown), when it connected.
    pub footprint: Option<Footprint>,
    /// `MESSAGE_ARRIVED` events among `events`.
    arrived: usize,
    /// An `EVENT_STREAM_FAILED` is among `events`.
    failed: bool,
}

impl Run {
    /// Adds an event the application received.
    pub fn push(&mut self, event: Event) {
        self.arrived += usize::from(matches!(event, Event::MessageArrived(_)));
        self.failed |= matches!(event, Event::EventStreamFailed(_));
        self.events.push(event);
    }
}

impl Default for Run {
    fn default() -> Self {
        Self {
            connect: Ok(()),
            events: Vec::new(),
            elapsed: Duration::ZERO,
            max_queued: 0,
            footprint: None,
            arrived: 0,
            failed: false,
        }
    }
}

impl Case {
    /// How long the outcome may take: three times the timeout of the request that meets
    /// the hostility, and the first reconnection delay (at most 2 s) when the stream is
    /// to recover.
    pub fn budget(&self) -> Duration {
        match self.outcome {
            DeliveredAfter(_) => 3 * TIMEOUT + Duration::from_secs(2),
            _ => 3 * TIMEOUT,
        }
    }

    /// Exchanges the transport-level run makes on one transport: two when the hostility is
    /// in how a kept-alive connection carries the next request.
    pub fn exchanges(&self) -> usize {
        match self.hostility {
            H::ClosedAsNextPollGoesOut => 2,
            _ => 1,
        }
    }

    /// Whether a client run has seen enough: its outcome, or a stream failure.
    pub fn done(&self, run: &Run) -> bool {
        match self.outcome {
            ConnectFails(_) => true,
            StreamFails(_) => run.failed,
            Delivered => run.failed || run.arrived >= script::expected_count(self.hostility),
            DeliveredAfter(_) => run.arrived >= script::expected_count(self.hostility),
        }
    }

    /// The texts the application must see, for [`Outcome::Delivered`].
    pub fn expected_texts(&self) -> Vec<String> {
        script::expected_texts(self.hostility)
    }

    /// Checks one exchange over the adapter's own transport: the typed result, within the
    /// budget.
    pub fn check_exchange(
        &self,
        got: Result<u16, TransportError>,
        elapsed: Duration,
    ) -> Result<(), String> {
        let mut problems = Vec::new();
        if got != self.exchange {
            problems.push(format!("got {got:?}, expected {:?}", self.exchange));
        }
        self.within_budget(elapsed, &mut problems);
        report(problems)
    }

    /// Checks a client run: the outcome, within the budget, and nothing grown without
    /// bound (the event queue, the session's footprint).
    pub fn check_run(&self, run: &Run) -> Result<(), String> {
        let mut problems = Vec::new();
        self.within_budget(run.elapsed, &mut problems);
        let failures: Vec<StreamFailureReason> = run
            .events
            .iter()
            .filter_map(|e| match e {
                Event::EventStreamFailed(f) => Some(f.reason),
                _ => None,
            })
            .collect();
        match self.outcome {
            ConnectFails(refusal) => match &run.connect {
                Err(Some(e)) if refusal.matches(e) => {}
                other => problems.push(format!("connect gave {other:?}, expected {refusal:?}")),
            },
            StreamFails(reason) => {
                if let Err(e) = &run.connect {
                    problems.push(format!("connect failed: {e:?}"));
                }
                if failures.first() != Some(&reason) {
                    problems.push(format!(
                        "stream failures {failures:?}, expected {reason:?} first"
                    ));
                }
            }
            Delivered | DeliveredAfter(_) => {
                if let Err(e) = &run.connect {
                    problems.push(format!("connect failed: {e:?}"));
                }
                let want: &[StreamFailureReason] = match &self.outcome {
                    DeliveredAfter(reason) => std::slice::from_ref(reason),
                    _ => &[],
                };
                if failures != want {
                    problems.push(format!("stream failures {failures:?}, expected {want:?}"));
                }
                let got = arrived(&run.events);
                let want = self.expected_texts();
                if got != want {
                    let at = got.iter().zip(&want).position(|(g, w)| g != w);
                    problems.push(format!(
                        "{} messages arrived, expected {}; first difference at {at:?}: {:?}",
                        got.len(),
                        want.len(),
                        at.map(|i| (&got[i], &want[i]))
                    ));
                }
                let strangers: Vec<_> = run
                    .events
                    .iter()
                    .filter_map(Event::engagement_id)
                    .filter(|id| id.as_str() != ENGAGEMENT_ID)
                    .take(3)
                    .collect();
                if !strangers.is_empty() {
                    problems.push(format!("events of unknown engagements: {strangers:?}"));
                }
            }
        }
        let largest = script::largest_batch(self.hostility);
        // A catch-up releases what it held at once: at most the cap and one batch more.
        let released = match self.hostility {
            H::FloodDuringCatchUp => chat_core::MAX_HELD_MESSAGES + largest,
            _ => 0,
        };
        if run.max_queued > largest + EVENT_CAPACITY + released {
            problems.push(format!(
                "{} events queued at once (a batch is at most {largest}, the queue {EVENT_CAPACITY}, a catch-up's release {released})",
                run.max_queued
            ));
        }
        if let Some(f) = run.footprint {
            if f.orphans > MAX_ORPHANS {
                problems.push(format!("{} orphan events kept", f.orphans));
            }
            if f.held_messages > chat_core::MAX_HELD_MESSAGES + largest
                || f.seen_event_ids > largest
            {
                problems.push(format!(
                    "footprint past the largest batch ({largest}): {f:?}"
                ));
            }
            if f.requests > 4 || f.engagements > 1 || f.outputs > largest + 16 {
                problems.push(format!("footprint: {f:?}"));
            }
        }
        report(problems)
    }

    /// Checks what the server saw, after either run (`client`: after a client run, whose
    /// cursors are checked too): the redirect's host untouched, the oversized answers
    /// refused before the request's timeout, the endless and slow ones abandoned by the
    /// client, and how the polls went.
    pub fn check_server(&self, server: &HostileServer, client: bool) -> Result<(), String> {
        let mut problems = Vec::new();
        let wait = self.budget();
        match self.hostility {
            H::RedirectElsewhere => {
                let log = server.log();
                if log.other_host_connections != 0 {
                    problems.push(format!(
                        "{} connections to the redirect's host",
                        log.other_host_connections
                    ));
                }
            }
            H::DeclaredPastCap | H::ChunkedPastCap | H::EndlessChunked | H::HugeHeaders => {
                let log = server.wait_for(wait, |l| !l.answers.is_empty());
                match log.answers.first() {
                    None => problems.push("the oversized answer never ended".to_owned()),
                    Some(w) => {
                        if w.elapsed >= TIMEOUT {
                            problems.push(format!(
                                "the client took {:?} to refuse the answer ({} bytes written): it waited instead of refusing",
                                w.elapsed, w.bytes
                            ));
                        }
                        if matches!(self.hostility, H::EndlessChunked | H::DeclaredPastCap)
                            && !w.cut
                        {
                            problems.push(format!("the answer was not cut by the client: {w:?}"));
                        }
                    }
                }
            }
            H::OneBytePerSecond => {
                let log = server.wait_for(wait, |l| !l.answers.is_empty());
                if !log.answers.first().is_some_and(|w| w.cut) {
                    problems.push(format!(
                        "the slow answer was not abandoned: {:?}",
                        log.answers
                    ));
                }
            }
            H::Http10 => {
                let log = server.log();
                let mut connections: Vec<usize> =
                    log.requests.iter().map(|r| r.connection).collect();
                let requests = connections.len();
                connections.dedup();
                if connections.len() != requests {
                    problems.push(format!(
                        "a closed HTTP/1.0 connection carried another request: {:?}",
                        log.requests
                    ));
                }
            }
            H::ClosedAsNextPollGoesOut => {
                let log = server.wait_for(wait, |l| l.polls().len() >= 3);
                let polls = log.polls();
                let ok = polls.len() >= 3
                    && polls[1].connection == polls[0].connection
                    && polls[2].connection != polls[1].connection
                    && polls[2].last_event_id() == polls[1].last_event_id();
                if !ok {
                    problems.push(format!("the poll closed unanswered was not sent again at once on a new connection: {polls:?}"));
                }
            }
            H::DuplicateIds if client => {
                cursors(server, wait, &[None, Some("e7"), Some("e6")], &mut problems);
            }
            H::BigBatch if client => {
                let last = format!("e{}", script::FLOOD);
                cursors(server, wait, &[None, Some(&last)], &mut problems);
            }
            H::FloodDuringCatchUp if client => {
                let log = server.wait_for(wait, |l| !l.polls_while_unanswered.is_empty());
                match log.polls_while_unanswered.first() {
                    Some(&n) if n <= 2 => {}
                    other => problems.push(format!(
                        "{other:?} polls answered while the catch-up's history was held (at most 2: the session holds back past {} messages)",
                        chat_core::MAX_HELD_MESSAGES
                    )),
                }
            }
            H::UnknownEngagements if client => {
                cursors(server, wait, &[None, Some("k1")], &mut problems);
            }
            _ => {}
        }
        report(problems)
    }

    fn within_budget(&self, elapsed: Duration, problems: &mut Vec<String>) {
        if elapsed >= self.budget() {
            problems.push(format!(
                "took {elapsed:?}, past the budget {:?}",
                self.budget()
            ));
        }
    }
}

/// The texts of the `MESSAGE_ARRIVED` events.
fn arrived(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::MessageArrived(m) => Some(m.text().unwrap_or_default().to_owned()),
            _ => None,
        })
        .collect()
}

/// The first polls' `lastEventId`s must be `want`.
fn cursors(
    server: &HostileServer,
    wait: Duration,
    want: &[Option<&str>],
    problems: &mut Vec<String>,
) {
    let log: Log = server.wait_for(wait, |l| l.polls().len() >= want.len());
    let got: Vec<Option<&str>> = log
        .polls()
        .iter()
        .take(want.len())
        .map(|p| p.last_event_id())
        .collect();
    if got != want {
        problems.push(format!("cursors {got:?}, expected {want:?}"));
    }
}

fn report(problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
