//! Shared helpers of the end-to-end tests: an in-process emulator, clients over either
//! transport, and awaiting events with a deadline.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use async_trait::async_trait;
use chat_emulator::{AgentMode, Emulator};
use chat_tokio::{
    ChatEvent, Client, ClientBuilder, Config, Event, EventStream, EventTransport, PollOutcome,
    Request, StreamTransport, TransportError, WebSocketTransport,
};
use std::sync::Arc;
use tokio::sync::Notify;

/// Runs a scenario once per transport: `both!(name, scenario)` makes `name::long_poll` and
/// `name::websocket`.
#[macro_export]
macro_rules! both {
    ($name:ident, $scenario:path) => {
        mod $name {
            #[tokio::test]
            async fn long_poll() {
                $scenario(chat_tokio::StreamTransport::LongPoll).await;
            }
            #[tokio::test]
            async fn websocket() {
                $scenario(chat_tokio::StreamTransport::WebSocket).await;
            }
        }
    };
}

/// How long any awaited event may take.
pub const PATIENCE: Duration = Duration::from_secs(15);

pub async fn emulator(agent: AgentMode) -> Emulator {
    Emulator::builder()
        .hold_time(Duration::from_millis(400))
        .agent(agent)
        .agent_delay(Duration::from_millis(20))
        .allow_short_token_ttl(true)
        .ws_ping_interval(Duration::from_secs(5))
        .start()
        .await
        .expect("emulator starts")
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

pub async fn connect(
    emu: &Emulator,
    transport: StreamTransport,
    customer: &str,
) -> (Client, EventStream) {
    builder(emu, transport, customer)
        .connect()
        .await
        .expect("connects")
}

/// Awaits the first event matching `pred`, returning it; panics with the events seen if none
/// comes in time.
pub async fn expect_event(events: &mut EventStream, pred: impl Fn(&Event) -> bool) -> ChatEvent {
    expect_event_seen(events, pred).await.0
}

/// As [`expect_event`], also returning every event seen before it.
pub async fn expect_event_seen(
    events: &mut EventStream,
    pred: impl Fn(&Event) -> bool,
) -> (ChatEvent, Vec<Event>) {
    expect_event_within(events, PATIENCE, pred).await
}

/// As [`expect_event_seen`] with this patience (by tokio's clock: with the clock paused,
/// give more than the timers under test).
pub async fn expect_event_within(
    events: &mut EventStream,
    patience: Duration,
    pred: impl Fn(&Event) -> bool,
) -> (ChatEvent, Vec<Event>) {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(e)) if pred(&e.event) => return (e, seen),
            Ok(Some(e)) => seen.push(e.event),
            Ok(None) => panic!("event stream ended; seen: {:?}", names(&seen)),
            Err(_) => panic!("no matching event in time; seen: {:?}", names(&seen)),
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

/// A WebSocket whose connection the test can cut.
pub struct Cuttable {
    pub inner: WebSocketTransport,
    pub cut: Arc<Notify>,
}

#[async_trait]
impl EventTransport for Cuttable {
    async fn poll(&mut self, request: Request) -> PollOutcome {
        tokio::select! {
            r = self.inner.poll(request) => r,
            () = self.cut.notified() => PollOutcome::Failed(TransportError::Disconnected),
        }
    }
    async fn reset(&mut self) {
        self.inner.reset().await;
    }
}
