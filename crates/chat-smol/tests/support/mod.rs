//! Shared helpers of the end-to-end tests: the in-process emulator on a tokio runtime of its
//! own (the client under test has none), a proxy in front of it that cuts connections, a
//! counting token provider, and awaiting events with a deadline by smol's timers.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::ops::Deref;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_emulator::{AgentMode, Control, Emulator, EmulatorBuilder};
use chat_smol::{ChatEvent, ClientBuilder, Config, Event, EventStream, StreamTransport};
use smol::{Timer, future};
use tokio::task::AbortHandle;

/// Runs a scenario once per transport, on `smol::block_on`: `both!(name, scenario)` makes
/// `name::long_poll` and `name::websocket`.
#[macro_export]
macro_rules! both {
    ($name:ident, $scenario:path) => {
        mod $name {
            #[test]
            fn long_poll() {
                smol::block_on($scenario(chat_smol::StreamTransport::LongPoll));
            }
            #[test]
            fn websocket() {
                smol::block_on($scenario(chat_smol::StreamTransport::WebSocket));
            }
        }
    };
}

/// How long any awaited event may take.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// The emulator, served by a tokio runtime that the test owns, behind a [`Proxy`]; shut
/// down on drop.
pub struct TestEmulator {
    emulator: Option<Emulator>,
    pub proxy: Proxy,
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
        .ws_ping_interval(Duration::from_secs(1))
}

pub fn emulator(agent: AgentMode) -> TestEmulator {
    start(emulator_builder(agent))
}

/// Starts this emulator on a runtime of two worker threads, and a proxy in front of it.
pub fn start(builder: EmulatorBuilder) -> TestEmulator {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let emulator = runtime.block_on(builder.start()).expect("emulator starts");
    let upstream = emulator.base_url();
    let authority = upstream.split("://").nth(1).unwrap_or_default();
    let proxy = runtime.block_on(Proxy::start(authority));
    TestEmulator {
        emulator: Some(emulator),
        proxy,
        runtime,
    }
}

/// A TCP proxy that can cut every connection open through it at once.
pub struct Proxy {
    base_url: String,
    pipes: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

impl Proxy {
    async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.to_owned();
        let pipes = Arc::new(Mutex::new(Vec::<AbortHandle>::new()));
        let table = Arc::clone(&pipes);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                let mut pipes = table.lock().unwrap();
                pipes.retain(|p| !p.is_finished());
                pipes.push(pipe.abort_handle());
            }
        })
        .abort_handle();
        Self {
            base_url,
            pipes,
            accept,
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Closes every connection open now, both ways.
    pub fn cut(&self) {
        for pipe in self.pipes.lock().unwrap().drain(..) {
            pipe.abort();
        }
    }
}

/// A token provider minting `ttl`-long tokens for `customer`, and how many it has minted.
pub fn provider(
    control: Control,
    customer: &str,
    ttl: Duration,
) -> (
    impl Fn() -> future::Ready<Result<String, chat_smol::BoxError>> + Send + 'static,
    Arc<AtomicU32>,
) {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&calls);
    let customer = customer.to_owned();
    let provider = move || {
        counter.fetch_add(1, Ordering::SeqCst);
        future::ready(Ok(control.mint_token(&customer, true, ttl)))
    };
    (provider, calls)
}

pub fn calls(counter: &AtomicU32) -> u32 {
    counter.load(Ordering::SeqCst)
}

/// A short poll timeout, so that hangs and outages are over quickly.
pub fn config() -> Config {
    Config {
        poll_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(5),
        ..Config::default()
    }
}

/// A builder for the emulator through its proxy.
pub fn builder(emu: &TestEmulator, transport: StreamTransport) -> ClientBuilder {
    let c = emu.credentials();
    chat_smol::Client::builder(emu.proxy.base_url(), &c.integration_id, &c.appkey)
        .stream_transport(transport)
        .config(config())
}

/// Awaits the first event matching `pred`; returns it and every event seen before it.
/// Panics with the events seen if none comes in time.
pub async fn expect_event(
    events: &mut EventStream,
    pred: impl Fn(&Event) -> bool,
) -> (ChatEvent, Vec<Event>) {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    loop {
        let next = future::or(async { Some(events.recv().await) }, async {
            Timer::at(deadline).await;
            None
        })
        .await;
        match next {
            Some(Some(e)) if pred(&e.event) => return (e, seen),
            Some(Some(e)) => seen.push(e.event),
            Some(None) => panic!("event stream ended; seen: {:?}", names(&seen)),
            None => panic!("no matching event in time; seen: {:?}", names(&seen)),
        }
    }
}

pub fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::name).collect()
}

pub fn is_active(e: &Event) -> bool {
    matches!(e, Event::EngagementActive(_))
}

/// A message from the agent whose text contains `needle`.
pub fn from_agent_with(needle: &str) -> impl Fn(&Event) -> bool + '_ {
    move |e| {
        matches!(e, Event::MessageArrived(m)
            if m.sender.participant_type == chat_smol::ParticipantType::Agent
                && m.text().is_some_and(|t| t.contains(needle)))
    }
}

/// The texts of the messages among these events.
pub fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::MessageArrived(m) => m.text().map(str::to_owned),
            _ => None,
        })
        .collect()
}
