//! The chaos soak of the chat SDK (issue #7): many sessions against the in-process emulator
//! with faults injected at random, while customers and agents exchange numbered messages in
//! both directions; then the count of what was lost, duplicated or reordered.
//!
//! A run ([`run`]) starts an emulator (and a small TCP proxy in front of it, to cut
//! sockets), then for each session a customer app that connects through an [`Adapter`] with
//! a token provider minting short-lived tokens, creates an engagement, waits for it to be
//! active and sends `soak s{session} c{n}` at seeded random times; the agent side posts
//! `soak s{session} a{n}` through [`chat_emulator::Control::post_message`]. Meanwhile a
//! seeded schedule injects every [`FaultKind`]: 5xx and 429 answers, dropped polls and
//! sockets, hangs past the poll timeout, tokens expiring, sessions invalidated, answers
//! lost after the message was stored, and whole-server outages that cut every session at
//! once. At the end each session reads its dialog straight from the emulator's chat API and
//! the [`RunReport`] counts, per direction, what was sent, received, lost, duplicated and out
//! of order, the failed sends with their errors, the reconnections, the token refreshes and
//! the worst delay. See `docs/reliability.md`, section 1, for what each count means and the
//! figures of the long runs.
//!
//! `cargo xtask soak` runs the binary (`chat-soak --help`). The same proxy's whole-server
//! outage also drives the reconnect-storm benchmark ([`storm`], `cargo xtask bench storm`).
//!
//! Two more soaks (issue #15) run the customer apps as processes of their own, each keeping
//! its session in a store, and kill them with SIGKILL:
//!
//! * [`crash`] (`chat-soak crash`): one child process per customer, on chat-tokio or
//!   chat-blocking, its session in one SQLite file; killed at seeded instants (at random,
//!   right after a send was handed over, in the middle of a send) and started again from the
//!   store while the faults go on. Each child finds where it was from the SDK's held sends and
//!   the transcript, and takes the agent's messages into its own table with the exactly-once
//!   recipe.
//! * [`failover`] (`chat-soak failover`): gateway processes driving several customers each
//!   through one PostgreSQL database; one is killed, the others take its sessions over once
//!   their leases lapse, and the takeover time is measured.
//!
//! Both end with the same verdict per direction (the customers' numbers in the emulator's
//! dialogs, the agent's in the apps' tables): 0 lost (a send handed over and not stored
//! counts as lost), 0 duplicated, 0 out of order.
//!
//! # Example
//!
//! A tiny seeded soak, every fault kind included:
//!
//! ```
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use chat_soak::{Options, Transport, TokioAdapter};
//!
//! let options = Options {
//!     sessions: 2,
//!     messages: 4,
//!     duration: Duration::from_secs(4),
//!     seed: 7,
//!     ..Options::default()
//! };
//! let report = chat_soak::run(&options, Transport::LongPoll, std::sync::Arc::new(TokioAdapter)).await?;
//! assert_eq!(report.customer_to_agent.sent, 8);
//! assert!(report.clean(), "{}", chat_soak::table(&[report.clone()]));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod adapter;
mod agent;
mod app;
mod app_blocking;
mod app_tokio;
mod audit;
pub mod blocking_adapter;
pub mod child;
mod children;
pub mod crash;
mod dialogs;
pub mod failover;
mod faults;
pub mod gateway;
mod inbox;
mod lines;
mod numbered;
mod proxy;
mod report;
mod session;
pub mod smol_adapter;
mod stage;
pub mod storm;
mod tally;
pub mod tokio_adapter;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_core::Config;
use chat_emulator::{AgentMode, Emulator};
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use adapter::{
    Adapter, AdapterError, ConnectSpec, Connection, SoakClient, TokenSource, Transport,
};
pub use blocking_adapter::BlockingAdapter;
pub use child::{ChildAdapter, ChildArgs, run_child};
pub use crash::{CrashOptions, CrashReport, run_crash};
pub use failover::{FailoverOptions, FailoverReport, run_failover};
pub use faults::FaultKind;
pub use gateway::{GatewayArgs, run_gateway};
pub use report::{Direction, RunReport, table};
pub use smol_adapter::SmolAdapter;
pub use tally::{Spread, Tally};
pub use tokio_adapter::TokioAdapter;

use crate::session::{Phase, Plan, Slot, slot};

/// What a soak runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Sessions, all at once.
    pub sessions: usize,
    /// Messages per direction per session.
    pub messages: usize,
    /// How long the sends, posts and faults are spread over (the drain comes after).
    pub duration: Duration,
    /// Seed of the schedules: the sessions' pace and the faults' times, kinds and choices.
    pub seed: u64,
    /// Faults in all; `None`: one per four messages of the run, and every kind at least once.
    pub faults: Option<usize>,
    /// The kinds in the mix; default all.
    pub kinds: Vec<FaultKind>,
    /// Lifetime of the tokens the providers mint (refreshed ahead of expiry at half of it).
    pub token_ttl: Duration,
    /// The client's poll timeout; hangs last one second longer.
    pub poll_timeout: Duration,
    /// How long a session waits, after its last send and post, for everything to arrive.
    pub drain: Duration,
    /// chat-core's outbox ([`Config::outbox`]): how long a send whose answer was lost or
    /// transiently refused is retried across reconnections; `None` sends once.
    pub outbox: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sessions: 10,
            messages: 20,
            duration: Duration::from_secs(30),
            seed: 1,
            faults: None,
            kinds: FaultKind::ALL.to_vec(),
            token_ttl: Duration::from_secs(20),
            poll_timeout: Duration::from_secs(2),
            drain: Duration::from_secs(30),
            outbox: Some(Duration::from_secs(60)),
        }
    }
}

impl Options {
    /// The faults of the run: [`Options::faults`] or its default.
    pub fn total_faults(&self) -> usize {
        self.faults
            .unwrap_or_else(|| (self.sessions * self.messages / 4).max(self.kinds.len()))
    }

    fn check(&self) -> Result<(), SoakError> {
        let bad = |what: &str| Err(SoakError::Options(what.to_owned()));
        if self.sessions == 0 || self.sessions > 100_000 {
            return bad("sessions must be 1 to 100000");
        }
        if self.messages == 0 || self.messages > 100_000 {
            return bad("messages must be 1 to 100000");
        }
        if self.duration < Duration::from_secs(1) || self.duration > Duration::from_secs(86_400) {
            return bad("duration must be 1 s to 24 h");
        }
        if self.token_ttl < Duration::from_secs(4) {
            return bad("token lifetime must be at least 4 s");
        }
        Ok(())
    }

    /// chat-core's configuration for session `index`.
    fn config(&self, index: usize) -> Config {
        Config {
            poll_timeout: self.poll_timeout,
            request_timeout: Duration::from_secs(5),
            reconnection_timeout: Duration::from_secs(300),
            idle_timeout: None,
            outbox: self.outbox,
            jitter_seed: Some(self.seed ^ (index as u64).wrapping_mul(0x2545_f491)),
            ..Config::default()
        }
    }

    /// Whether the sends go through chat-core's outbox.
    fn uses_outbox(&self) -> bool {
        self.outbox.is_some()
    }
}

/// Why a run could not be made (a run that found losses is a [`RunReport`] that is not
/// [`clean`](RunReport::clean), not an error).
#[derive(Debug)]
#[non_exhaustive]
pub enum SoakError {
    /// The options are out of range.
    Options(String),
    /// The emulator or the proxy could not start.
    Start(String),
}

impl std::fmt::Display for SoakError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Options(e) => write!(f, "bad options: {e}"),
            Self::Start(e) => write!(f, "cannot start: {e}"),
        }
    }
}

impl std::error::Error for SoakError {}

/// The adapter of this name: `tokio` (chat-tokio), `blocking` (chat-blocking) or `smol`
/// (chat-smol).
pub fn adapter(name: &str) -> Option<Arc<dyn Adapter>> {
    match name {
        "tokio" => Some(Arc::new(TokioAdapter)),
        "blocking" => Some(Arc::new(BlockingAdapter)),
        "smol" => Some(Arc::new(SmolAdapter)),
        _ => None,
    }
}

/// The adapters this build has, by name.
pub const ADAPTERS: [&str; 3] = ["tokio", "blocking", "smol"];

/// Runs one soak with one adapter over one transport and returns its figures.
pub async fn run(
    options: &Options,
    transport: Transport,
    adapter: Arc<dyn Adapter>,
) -> Result<RunReport, SoakError> {
    options.check()?;
    let wall = std::time::Instant::now();
    let emulator = Emulator::builder()
        .hold_time(options.poll_timeout / 2)
        .agent(AgentMode::Off)
        .allow_short_token_ttl(true)
        .ws_ping_interval(Duration::from_secs(5))
        .start()
        .await
        .map_err(|e| SoakError::Start(e.to_string()))?;
    let upstream: SocketAddr = emulator
        .base_url()
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| SoakError::Start(format!("emulator address: {e}")))?;
    let proxy = proxy::Proxy::start(upstream)
        .await
        .map_err(|e| SoakError::Start(format!("proxy: {e}")))?;
    let control = emulator.control();
    let credentials = emulator.credentials().clone();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| SoakError::Start(format!("HTTP client: {e}")))?;
    let registry: session::Registry = Arc::new(
        (0..options.sessions)
            .map(|_| Mutex::new(Slot::default()))
            .collect(),
    );
    let started = Instant::now() + Duration::from_millis(50);
    let mut sessions = JoinSet::new();
    for index in 0..options.sessions {
        let customer = format!("soak-{}-{index}", options.seed);
        let tokens = Arc::new(TokenSource::new(
            control.clone(),
            customer.clone(),
            options.token_ttl,
        ));
        let ctx = session::Context {
            index,
            adapter: Arc::clone(&adapter),
            spec: ConnectSpec {
                base_url: proxy.base_url(),
                integration_id: credentials.integration_id.clone(),
                appkey: adapter::Secret(credentials.appkey.clone()),
                transport,
                config: options.config(index),
                tokens,
            },
            control: control.clone(),
            started,
            plan: Plan::new(options.seed, index, options.messages, options.duration),
            registry: Arc::clone(&registry),
            drain: options.drain,
            send_patience: options.outbox.unwrap_or_default() + Duration::from_secs(60),
        };
        sessions.spawn(async move { (index, customer.clone(), session::run(ctx).await) });
    }

    let from = options.duration / 20;
    let until = options.duration * 4 / 5;
    let schedule = faults::plan(
        options.seed,
        from,
        until,
        options.total_faults(),
        &options.kinds,
        faults::Caps {
            invalidations: (options.sessions / 10).max(1),
            expiries: (options.duration.as_secs() / 20).max(1) as usize,
            outages: (options.duration.as_secs() / 20).max(1) as usize,
        },
    );
    let mut injector = faults::Injector {
        control: &control,
        proxy: &proxy,
        transport,
        poll_timeout: options.poll_timeout,
        injected: BTreeMap::new(),
    };
    let mut skipped = 0u64;
    let mut skipped_down = 0u64;
    let mut logs = Vec::new();
    let mut pending = schedule.iter().peekable();
    let patience = options.duration + options.drain + Duration::from_secs(180);
    let give_up = started + patience;
    let far = Instant::now() + Duration::from_secs(86_400 * 2);
    loop {
        let next_fault = pending.peek().map(|p| started + p.at);
        tokio::select! {
            done = sessions.join_next() => match done {
                Some(Ok(done)) => logs.push(done),
                Some(Err(e)) => {
                    let mut log = session::SessionLog::default();
                    log.problems.push(format!("session task failed: {e}"));
                    logs.push((usize::MAX, String::new(), log));
                }
                None => break,
            },
            () = tokio::time::sleep_until(next_fault.unwrap_or(far)), if next_fault.is_some() => {
                if let Some(fault) = pending.next() {
                    if fault.aims_at_a_stream() && !proxy.status().up {
                        skipped_down += 1;
                        continue;
                    }
                    let target = if fault.kind.targets_a_session() {
                        pick(&registry, fault)
                    } else {
                        None
                    };
                    if fault.kind.targets_a_session() && target.is_none() {
                        skipped += 1;
                    } else {
                        injector.inject(fault, target.as_ref());
                    }
                }
            }
            () = tokio::time::sleep_until(give_up) => {
                let n = sessions.len();
                sessions.abort_all();
                for _ in 0..n {
                    let mut log = session::SessionLog::default();
                    log.problems.push(format!("session still running after {patience:?}"));
                    logs.push((usize::MAX, String::new(), log));
                }
                break;
            }
        }
    }
    control.clear_faults();
    let base_url = emulator.base_url();
    let auditor = audit::Auditor {
        http: &http,
        control: &control,
        base_url: &base_url,
        integration_id: &credentials.integration_id,
        appkey: &credentials.appkey,
    };
    for (index, customer, log) in &mut logs {
        if let Some(engagement) = log.engagement.clone() {
            match auditor.dialog(customer, *index, &engagement).await {
                Ok(dialog) => log.dialog = dialog,
                Err(e) => log.problems.push(format!("audit of session {index}: {e}")),
            }
        }
    }
    let mut report = RunReport {
        adapter: adapter.name().to_owned(),
        transport: Some(transport),
        seed: options.seed,
        sessions: options.sessions as u64,
        messages_per_direction: options.messages as u64,
        outbox: options.uses_outbox(),
        ..RunReport::default()
    };
    let mut delays = [Vec::new(), Vec::new()];
    for (_, _, log) in &logs {
        report.add(log, &mut delays);
    }
    report.set_delays(&mut delays);
    report.faults = injector
        .injected
        .iter()
        .map(|(k, n)| (k.name().to_owned(), *n))
        .collect();
    if skipped > 0 {
        report
            .faults
            .insert("skipped (no live session)".to_owned(), skipped);
    }
    if skipped_down > 0 {
        report
            .faults
            .insert("skipped (server down)".to_owned(), skipped_down);
    }
    drop(proxy);
    emulator.shutdown().await;
    report.seconds = wall.elapsed().as_secs_f64();
    Ok(report)
}

/// The live session a fault lands on: the seeded pick among the sessions active now (for
/// an invalidation, among those not invalidated yet; for a fault of the event stream, among
/// those whose stream is connected, so that faults do not wait in line for a reconnection
/// and hit its attempts one after the other).
fn pick(registry: &session::Registry, fault: &faults::Planned) -> Option<chat_core::SessionId> {
    let invalidation = fault.kind == FaultKind::SessionInvalidated;
    let stream = fault.aims_at_a_stream();
    let live: Vec<usize> = (0..registry.len())
        .filter(|&i| {
            let s = slot(registry, i);
            s.phase == Phase::Active
                && s.session.is_some()
                && !(invalidation && s.invalidated)
                && (!stream || s.stream_up)
        })
        .collect();
    if live.is_empty() {
        return None;
    }
    let index = live[(fault.pick % live.len() as u64) as usize];
    let mut s = slot(registry, index);
    if invalidation {
        s.invalidated = true;
    }
    s.session.clone()
}
