//! Shared helpers of the end-to-end tests: the in-process emulator on a tokio runtime of its
//! own (the client under test has none), clients over either transport, and awaiting events
//! with a deadline.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_blocking::{
    Cancel, ChatEvent, Client, ClientBuilder, Config, Event, EventStream, EventTransport,
    PollOutcome, Request, StreamTransport, TransportError, WebSocketTransport,
};
use chat_emulator::{AgentMode, Emulator, EmulatorBuilder};

/// Runs a scenario once per transport: `both!(name, scenario)` makes `name::long_poll` and
/// `name::websocket`.
#[macro_export]
macro_rules! both {
    ($name:ident, $scenario:path) => {
        mod $name {
            #[test]
            fn long_poll() {
                $scenario(chat_blocking::StreamTransport::LongPoll);
            }
            #[test]
            fn websocket() {
                $scenario(chat_blocking::StreamTransport::WebSocket);
            }
        }
    };
}

/// How long any awaited event may take.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// The emulator, served by a tokio runtime that the test owns; shut down on drop.
pub struct TestEmulator {
    emulator: Option<Emulator>,
    runtime: tokio::runtime::Runtime,
}

impl Deref for TestEmulator {
    type Target = Emulator;
    fn deref(&self) -> &Emulator {
        self.emulator.as_ref().unwrap()
    }
}

impl Drop for TestEmulator {
    fn drop(&mut self) {
        if let Some(e) = self.emulator.take() {
            self.runtime.block_on(e.shutdown());
        }
    }
}

pub fn emulator_builder(agent: AgentMode) -> EmulatorBuilder {
    Emulator::builder()
        .hold_time(Duration::from_millis(400))
        .agent(agent)
        .agent_delay(Duration::from_millis(20))
        .allow_short_token_ttl(true)
        .ws_ping_interval(Duration::from_secs(5))
}

pub fn emulator(agent: AgentMode) -> TestEmulator {
    start(emulator_builder(agent))
}

/// Starts this emulator on a runtime of two worker threads.
pub fn start(builder: EmulatorBuilder) -> TestEmulator {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let emulator = runtime.block_on(builder.start()).expect("emulator starts");
    TestEmulator {
        emulator: Some(emulator),
        runtime,
    }
}

pub fn token(emu: &Emulator, customer: &str) -> String {
    emu.control()
        .mint_token(customer, true, Duration::from_secs(3600))
}

/// A builder for `customer` with a one-hour token and a short poll timeout.
pub fn builder(emu: &Emulator, transport: StreamTransport, customer: &str) -> ClientBuilder {
    let c = emu.credentials();
    Client::builder(emu.base_url(), &c.integration_id, &c.appkey)
        .token(token(emu, customer))
        .stream_transport(transport)
        .config(config())
}

pub fn config() -> Config {
    Config {
        poll_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(5),
        ..Config::default()
    }
}

pub fn connect(
    emu: &Emulator,
    transport: StreamTransport,
    customer: &str,
) -> (Client, EventStream) {
    builder(emu, transport, customer)
        .connect()
        .expect("connects")
}

/// Awaits the first event matching `pred`, returning it; panics with the events seen if none
/// comes in time.
pub fn expect_event(events: &EventStream, pred: impl Fn(&Event) -> bool) -> ChatEvent {
    expect_event_seen(events, pred).0
}

/// As [`expect_event`], also returning every event seen before it.
pub fn expect_event_seen(
    events: &EventStream,
    pred: impl Fn(&Event) -> bool,
) -> (ChatEvent, Vec<Event>) {
    let mut seen = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        match events.recv_deadline(deadline) {
            Ok(e) if pred(&e.event) => return (e, seen),
            Ok(e) => seen.push(e.event),
            Err(e) => panic!("no matching event ({e:?}); seen: {:?}", names(&seen)),
        }
    }
}

pub fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::name).collect()
}

pub fn is_active(e: &Event) -> bool {
    matches!(e, Event::EngagementActive(_))
}

/// A message from the agent side whose text contains `needle`.
pub fn arrived_with(needle: &str) -> impl Fn(&Event) -> bool + '_ {
    move |e| matches!(e, Event::MessageArrived(m) if m.text().is_some_and(|t| t.contains(needle)))
}

/// A WebSocket whose connection the test can cut, through the poll's [`Cancel`]: as the
/// emulator's dropped polls do for long polling.
pub struct Cuttable {
    inner: WebSocketTransport,
    cut: Cut,
}

/// Cuts a [`Cuttable`]'s current poll, or its next one if none runs.
#[derive(Clone, Default)]
pub struct Cut(Arc<Mutex<(Option<Cancel>, bool)>>);

impl Cut {
    pub fn cut(&self) {
        let mut state = self.0.lock().unwrap();
        match state.0.take() {
            Some(c) => c.cancel(),
            None => state.1 = true,
        }
    }
}

impl Cuttable {
    pub fn new() -> (Self, Cut) {
        let cut = Cut::default();
        let t = Self {
            inner: WebSocketTransport::new(),
            cut: cut.clone(),
        };
        (t, cut)
    }
}

impl EventTransport for Cuttable {
    fn poll(&mut self, request: Request, cancel: &Cancel) -> PollOutcome {
        {
            let mut state = self.cut.0.lock().unwrap();
            if std::mem::take(&mut state.1) {
                return PollOutcome::Failed(TransportError::Disconnected);
            }
            state.0 = Some(cancel.clone());
        }
        let result = self.inner.poll(request, cancel);
        self.cut.0.lock().unwrap().0 = None;
        result
    }
    fn reset(&mut self) {
        self.inner.reset();
    }
}

/// A builder whose WebSocket (if that is the transport) can be cut, and the cutter: for long
/// polling it drops the next poll at the emulator instead.
pub fn cuttable(
    emu: &TestEmulator,
    transport: StreamTransport,
    customer: &str,
) -> (ClientBuilder, Box<dyn Fn()>) {
    let builder = builder(emu, transport, customer);
    if transport == StreamTransport::WebSocket {
        let (t, cut) = Cuttable::new();
        (
            builder.event_transport(Box::new(t)),
            Box::new(move || cut.cut()),
        )
    } else {
        let control = emu.control();
        (builder, Box::new(move || control.drop_next_polls(1)))
    }
}

/// A request of chat-core's (its `init`), aimed at `base`.
pub fn request_to(base: &str) -> Request {
    // Its payload is {"exp":4000000000}.
    let token = chat_core::Token::parse("jwt.e30.eyJleHAiOjQwMDAwMDAwMDB9.signature").unwrap();
    let params = chat_core::InitParams::new(
        base,
        "123e4567-e89b-12d3-a456-426614174000",
        token,
        chat_core::AppKey::new("appkey"),
    )
    .unwrap();
    let mut session = chat_core::Session::new(params, config()).unwrap();
    let now = std::time::Instant::now();
    session.init(now, std::time::SystemTime::now()).unwrap();
    match session.poll_output() {
        chat_core::Output::Transmit(r) => r,
        other => panic!("{other:?}"),
    }
}
