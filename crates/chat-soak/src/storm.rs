//! The reconnect storm (issue #13 item 4): many chat-tokio clients long-polling the
//! in-process emulator through the soak's proxy lose the server at the same instant, it stays
//! unreachable (every connection cut, every new one refused) for a while, then comes back;
//! how do the clients' reconnection attempts spread out after it?
//!
//! [`run`] measures one crowd: each client's `EVENT_STREAM_CONNECTING` (the announcement of
//! each reconnection attempt, stamped by the client when it makes it) after the outage began,
//! the attempts per 100 ms window after recovery, and each client's `EVENT_STREAM_CONNECTED`
//! after it. An agent message is posted into every chat during the outage, so that each
//! client's first poll after recovery is answered at once (the server does not hold it) and
//! every client shows the message it missed: the reconnection is complete when it arrives.
//!
//! `cargo bench -p chat-soak --bench storm` (or `cargo xtask bench storm`) runs the crowd with
//! default settings (each client's jitter seeded from the operating system) and, as the
//! baseline in the same run, with one fixed [`Config::jitter_seed`] shared by all clients:
//! the lockstep the jitter is there to prevent. Figures: `docs/benchmarks.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use chat_core::{Config, Event, StreamFailureReason};
use chat_emulator::{AgentMode, Control, Emulator, StreamState};
use chat_tokio::{Client, Http1LongPollTransport, ParticipantType};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::SoakError;
use crate::proxy::Proxy;

/// The text of the message posted into every chat during the outage.
const MISSED: &str = "storm: posted while the server was unreachable";

/// The width of the windows attempts are counted in.
pub const WINDOW: Duration = Duration::from_millis(100);

/// What a storm runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StormOptions {
    /// Clients, each with one chat, all long-polling.
    pub clients: usize,
    /// How long the server is unreachable.
    pub outage: Duration,
    /// [`Config::jitter_seed`] of every client: `None` (the default: each client draws its
    /// own from the operating system), or one seed shared by all (lockstep).
    pub jitter_seed: Option<u64>,
    /// Clients set up at a time before the outage.
    pub setup_concurrency: usize,
    /// How long after recovery to wait for every client to be back before giving up.
    pub patience: Duration,
}

impl Default for StormOptions {
    fn default() -> Self {
        Self {
            clients: 1000,
            outage: Duration::from_secs(20),
            jitter_seed: None,
            setup_concurrency: 64,
            patience: Duration::from_secs(120),
        }
    }
}

/// What one storm measured. Times are from the recovery: the instant the proxy listened
/// again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StormReport {
    /// Clients in the crowd.
    pub clients: usize,
    /// The outage's length as ordered.
    pub outage: Duration,
    /// The shared jitter seed, if any (`None`: default settings).
    pub jitter_seed: Option<u64>,
    /// Connections cut when the outage began (polls held and REST calls in flight).
    pub connections_cut: usize,
    /// Clients that reported the server unreachable (`EVENT_STREAM_FAILED`,
    /// `SERVER_UNREACHABLE`) during the outage.
    pub saw_failure: usize,
    /// Reconnection attempts made during the outage (refused).
    pub attempts_during: usize,
    /// Every reconnection attempt made after the recovery, as the time since it, sorted.
    pub attempts_after: Vec<Duration>,
    /// Each client's first `EVENT_STREAM_CONNECTED` after the recovery (time since it),
    /// sorted; clients that never came back are missing.
    pub reconnected: Vec<Duration>,
    /// For each client that came back, from its successful attempt to its
    /// `EVENT_STREAM_CONNECTED` (the server's answer to the poll), sorted.
    pub answered_in: Vec<Duration>,
    /// Clients that showed the message posted during the outage.
    pub caught_up: usize,
    /// How long the clients took to set up before the outage.
    pub setup: Duration,
}

impl StormReport {
    /// Attempts after recovery per [`WINDOW`], by window index (window `i` covers
    /// `[i × 100 ms, (i + 1) × 100 ms)` after the recovery); empty windows are left out.
    pub fn windows(&self) -> BTreeMap<u64, usize> {
        let mut windows = BTreeMap::new();
        for t in &self.attempts_after {
            let index = (t.as_nanos() / WINDOW.as_nanos()) as u64;
            *windows.entry(index).or_default() += 1;
        }
        windows
    }

    /// The busiest window after recovery: its index and its attempts.
    pub fn busiest(&self) -> Option<(u64, usize)> {
        self.windows()
            .into_iter()
            .max_by_key(|&(index, n)| (n, std::cmp::Reverse(index)))
    }

    /// The busiest window's attempts as a share of the clients (0 to 1, or more if clients
    /// made several attempts in it).
    pub fn busiest_share(&self) -> f64 {
        let busiest = self.busiest().map_or(0, |(_, n)| n);
        busiest as f64 / self.clients.max(1) as f64
    }

    /// Windows after recovery holding more than `share` of the clients' attempts.
    pub fn windows_over(&self, share: f64) -> usize {
        let limit = share * self.clients as f64;
        self.windows()
            .values()
            .filter(|&&n| n as f64 > limit)
            .count()
    }

    /// The time from recovery until every client was connected again, if all were.
    pub fn all_back(&self) -> Option<Duration> {
        if self.reconnected.len() == self.clients {
            self.reconnected.last().copied()
        } else {
            None
        }
    }

    /// The time from recovery until this share (0 to 1) of the clients was connected again.
    pub fn back(&self, share: f64) -> Option<Duration> {
        let needed = ((share * self.clients as f64).ceil() as usize).max(1);
        self.reconnected.get(needed - 1).copied()
    }

    /// Whether every client lost the server, came back and showed the message it missed.
    pub fn complete(&self) -> bool {
        self.saw_failure == self.clients
            && self.reconnected.len() == self.clients
            && self.caught_up == self.clients
    }
}

/// What the event reader of one client keeps.
#[derive(Debug, Default)]
struct Seen {
    /// `EVENT_STREAM_CONNECTING`, `EVENT_STREAM_CONNECTED` and unreachable failures, with
    /// the client's stamps.
    stream: Vec<(Mark, SystemTime)>,
    /// Whether the message posted during the outage arrived.
    caught_up: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Connecting,
    Connected,
    Unreachable,
}

/// Counts and wake-ups shared by the readers and the run.
#[derive(Default)]
struct Progress {
    connected: AtomicUsize,
    caught_up: AtomicUsize,
    changed: Notify,
}

impl Progress {
    /// Waits until `count` reaches `target`, or `patience` runs out; returns the count.
    async fn wait(&self, count: &AtomicUsize, target: usize, patience: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let changed = self.changed.notified();
            let now = count.load(Ordering::Acquire);
            if now >= target {
                return now;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return count.load(Ordering::Acquire);
            }
        }
    }

    fn bump(&self, count: &AtomicUsize) {
        count.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }
}

/// Runs one storm and returns its figures. Needs about ten file descriptors per client
/// (each connection is counted at the client, at both ends of the proxy and at the
/// emulator): raise `ulimit -n` for large crowds.
pub async fn run(options: &StormOptions) -> Result<StormReport, SoakError> {
    if options.clients == 0 || options.outage.is_zero() {
        return Err(SoakError::Options(
            "a storm needs clients and an outage".into(),
        ));
    }
    let emulator = Emulator::builder()
        .agent(AgentMode::Off)
        .start()
        .await
        .map_err(|e| SoakError::Start(e.to_string()))?;
    let upstream: SocketAddr = emulator
        .base_url()
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| SoakError::Start(format!("emulator address: {e}")))?;
    let proxy = Proxy::start(upstream)
        .await
        .map_err(|e| SoakError::Start(format!("proxy: {e}")))?;
    let result = storm(options, &emulator, &proxy).await;
    drop(proxy);
    emulator.shutdown().await;
    result
}

async fn storm(
    options: &StormOptions,
    emulator: &Emulator,
    proxy: &Proxy,
) -> Result<StormReport, SoakError> {
    let control = emulator.control();
    let credentials = emulator.credentials().clone();
    // One pool for every client's REST calls; each client's polls go over its own lean
    // connection (the default long poll), as in chat-tokio's own benchmark.
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| SoakError::Start(format!("HTTP client: {e}")))?;
    let progress = Arc::new(Progress::default());
    let config = Config {
        jitter_seed: options.jitter_seed,
        ..Config::default()
    };

    // Set-up: every client connected, in its chat, its stream connected.
    let started = std::time::Instant::now();
    let gate = Arc::new(Semaphore::new(options.setup_concurrency.max(1)));
    let mut setups = JoinSet::new();
    for index in 0..options.clients {
        let gate = Arc::clone(&gate);
        let spec = Setup {
            base_url: proxy.base_url(),
            integration_id: credentials.integration_id.clone(),
            appkey: credentials.appkey.clone(),
            token: control.mint_token(&format!("storm-{index}"), true, Duration::from_secs(1800)),
            http: http.clone(),
            config: config.clone(),
            progress: Arc::clone(&progress),
        };
        setups.spawn(async move {
            let _permit = gate.acquire_owned().await;
            spec.connect().await
        });
    }
    let mut clients = Vec::with_capacity(options.clients);
    while let Some(done) = setups.join_next().await {
        match done {
            Ok(Ok(client)) => clients.push(client),
            Ok(Err(e)) => return Err(SoakError::Start(format!("a client: {e}"))),
            Err(e) => return Err(SoakError::Start(format!("a client's set-up: {e}"))),
        }
    }
    progress
        .wait(&progress.connected, options.clients, options.patience)
        .await;
    every_poll_held(&control, options.clients).await;
    let setup = started.elapsed();

    // The outage: everything cut and refused; the agent writes meanwhile.
    proxy.outage(options.outage);
    let down = proxy.wait_until(false).await;
    let posted = control.broadcast_message(ParticipantType::Agent, MISSED);
    let up = proxy.wait_until(true).await;
    progress
        .wait(&progress.caught_up, posted, options.patience)
        .await;

    // What the clients saw.
    let mut report = StormReport {
        clients: options.clients,
        outage: options.outage,
        jitter_seed: options.jitter_seed,
        connections_cut: down.cut,
        setup,
        ..StormReport::default()
    };
    let mut shutdowns = JoinSet::new();
    for client in clients {
        let seen = std::mem::take(&mut *client.seen.lock().unwrap_or_else(PoisonError::into_inner));
        report.add(&seen, down.since, up.since);
        shutdowns.spawn(async move {
            let _ = client.client.shutdown(None).await;
        });
    }
    while shutdowns.join_next().await.is_some() {}
    report.attempts_after.sort();
    report.reconnected.sort();
    report.answered_in.sort();
    Ok(report)
}

impl StormReport {
    fn add(&mut self, seen: &Seen, down: SystemTime, up: SystemTime) {
        let after = |at: SystemTime| at.duration_since(up).unwrap_or_default();
        let mut failed = false;
        let mut back = None;
        let mut attempt = None;
        for &(mark, at) in seen.stream.iter().filter(|(_, at)| *at >= down) {
            match mark {
                Mark::Unreachable => failed = true,
                Mark::Connecting if at < up => self.attempts_during += 1,
                Mark::Connecting => {
                    self.attempts_after.push(after(at));
                    if back.is_none() {
                        attempt = Some(at);
                    }
                }
                Mark::Connected if back.is_none() => {
                    back = Some(after(at));
                    let answered = attempt.and_then(|a| at.duration_since(a).ok());
                    self.answered_in.extend(answered);
                }
                Mark::Connected => {}
            }
        }
        self.saw_failure += usize::from(failed);
        self.reconnected.extend(back);
        self.caught_up += usize::from(seen.caught_up);
    }
}

/// Waits until the emulator holds a long poll of every session (each client is then
/// connected and waiting, as a crowd is when its server goes away).
async fn every_poll_held(control: &Control, clients: usize) {
    let mut changes = control.changes();
    loop {
        let held = control
            .sessions()
            .iter()
            .filter(|s| s.stream == StreamState::LongPoll)
            .count();
        if held >= clients || changes.recv().await.is_none() {
            return;
        }
    }
}

/// One client to set up.
struct Setup {
    base_url: String,
    integration_id: String,
    appkey: String,
    token: String,
    http: reqwest::Client,
    config: Config,
    progress: Arc<Progress>,
}

/// A client of the crowd and what its reader saw.
struct CrowdClient {
    client: Client,
    seen: Arc<Mutex<Seen>>,
}

impl Setup {
    async fn connect(self) -> Result<CrowdClient, chat_tokio::Error> {
        let (client, events) = Client::builder(&self.base_url, &self.integration_id, &self.appkey)
            .token(self.token)
            .config(self.config)
            .http_client(self.http)
            .event_transport(Box::new(Http1LongPollTransport::new()))
            .connect()
            .await?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let record = Arc::clone(&seen);
        let progress = Arc::clone(&self.progress);
        tokio::spawn(async move {
            let mut connected_once = false;
            while let Some(e) = events.recv().await {
                let mark = match &e.event {
                    Event::EventStreamConnecting => Some(Mark::Connecting),
                    Event::EventStreamConnected => Some(Mark::Connected),
                    Event::EventStreamFailed(f)
                        if f.reason == StreamFailureReason::ServerUnreachable =>
                    {
                        Some(Mark::Unreachable)
                    }
                    _ => None,
                };
                let caught_up =
                    matches!(&e.event, Event::MessageArrived(m) if m.text() == Some(MISSED));
                {
                    let mut seen = record.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(mark) = mark {
                        seen.stream.push((mark, e.at));
                    }
                    seen.caught_up |= caught_up;
                }
                if mark == Some(Mark::Connected) && !connected_once {
                    connected_once = true;
                    progress.bump(&progress.connected);
                }
                if caught_up {
                    progress.bump(&progress.caught_up);
                }
            }
        });
        let chat = client.create_engagement().await?;
        chat.wait_active().await?;
        Ok(CrowdClient { client, seen })
    }
}

/// The figures of storms side by side: one column per run.
pub fn table(reports: &[StormReport]) -> String {
    let mut out = String::new();
    let mut row = |label: &str, cell: &dyn Fn(&StormReport) -> String| {
        let _ = write!(out, "| {label} |");
        for r in reports {
            let _ = write!(out, " {} |", cell(r));
        }
        out.push('\n');
    };
    let ms =
        |d: Option<Duration>| d.map_or_else(|| "—".to_owned(), |d| format!("{} ms", d.as_millis()));
    row("jitter", &|r| match r.jitter_seed {
        None => "default (seeded from the OS per client)".to_owned(),
        Some(s) => format!("fixed seed {s:#x}, shared"),
    });
    row("clients / outage", &|r| {
        format!("{} / {} s", r.clients, r.outage.as_secs_f64())
    });
    row("connections cut", &|r| r.connections_cut.to_string());
    row("clients that saw the server unreachable", &|r| {
        r.saw_failure.to_string()
    });
    row("attempts during the outage (refused)", &|r| {
        r.attempts_during.to_string()
    });
    row("attempts after recovery", &|r| {
        r.attempts_after.len().to_string()
    });
    row(
        "**busiest 100 ms window after recovery**",
        &|r| match r.busiest() {
            Some((index, n)) => format!(
                "**{n} attempts = {:.1} % of clients** (at +{} ms)",
                r.busiest_share() * 100.0,
                index * WINDOW.as_millis() as u64
            ),
            None => "—".to_owned(),
        },
    );
    row("100 ms windows over 10 % of clients", &|r| {
        r.windows_over(0.10).to_string()
    });
    row("first / last attempt after recovery", &|r| {
        format!(
            "{} / {}",
            ms(r.attempts_after.first().copied()),
            ms(r.attempts_after.last().copied())
        )
    });
    row("connected again: 50 % / 90 % / all", &|r| {
        format!(
            "{} / {} / {}",
            ms(r.back(0.5)),
            ms(r.back(0.9)),
            ms(r.all_back())
        )
    });
    row(
        "successful attempt answered in: 50 % / 90 % / worst",
        &|r| {
            let at = |share: f64| {
                let n = r.answered_in.len();
                let i = ((share * n as f64).ceil() as usize).clamp(1, n.max(1)) - 1;
                r.answered_in.get(i).copied()
            };
            format!("{} / {} / {}", ms(at(0.5)), ms(at(0.9)), ms(at(1.0)))
        },
    );
    row("clients that showed the message they missed", &|r| {
        r.caught_up.to_string()
    });
    row("set-up before the outage", &|r| {
        format!("{:.1} s", r.setup.as_secs_f64())
    });
    let mut head = String::from("| figure |");
    let mut rule = String::from("| --- |");
    for r in reports {
        match r.jitter_seed {
            None => head.push_str(" default jitter |"),
            Some(_) => head.push_str(" one fixed seed (baseline) |"),
        }
        rule.push_str(" --- |");
    }
    format!("{head}\n{rule}\n{out}")
}

/// Attempts per second after recovery, with each second's busiest 100 ms window, and the
/// busiest windows overall.
pub fn histogram(report: &StormReport, top: usize) -> String {
    let windows = report.windows();
    let mut seconds: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    for (&index, &n) in &windows {
        let per_second = 1000 / WINDOW.as_millis() as u64;
        let s = seconds.entry(index / per_second).or_default();
        s.0 += n;
        s.1 = s.1.max(n);
    }
    let mut out = String::from("second after recovery | attempts | busiest 100 ms window\n");
    for (second, (n, busiest)) in &seconds {
        let bar = "#".repeat((n * 60).div_ceil(report.clients.max(1)));
        let _ = writeln!(out, "{second:>4} | {n:>5} | {busiest:>5}  {bar}");
    }
    let mut ranked: Vec<(u64, usize)> = windows.into_iter().collect();
    ranked.sort_by_key(|&(index, n)| (std::cmp::Reverse(n), index));
    let _ = write!(out, "busiest windows:");
    for (index, n) in ranked.into_iter().take(top) {
        let _ = write!(out, " +{} ms: {n};", index * WINDOW.as_millis() as u64);
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(attempts_ms: &[u64], clients: usize) -> StormReport {
        StormReport {
            clients,
            attempts_after: attempts_ms
                .iter()
                .map(|&m| Duration::from_millis(m))
                .collect(),
            reconnected: attempts_ms
                .iter()
                .map(|&m| Duration::from_millis(m + 1))
                .collect(),
            ..StormReport::default()
        }
    }

    #[test]
    fn attempts_are_counted_per_100_ms_window_after_recovery() {
        let r = report(&[0, 50, 99, 100, 250, 1_999, 2_000], 10);
        let windows: Vec<(u64, usize)> = r.windows().into_iter().collect();
        assert_eq!(windows, [(0, 3), (1, 1), (2, 1), (19, 1), (20, 1)]);
        assert_eq!(r.busiest(), Some((0, 3)));
        assert!((r.busiest_share() - 0.3).abs() < 1e-9);
        assert_eq!(r.windows_over(0.10), 1);
        assert_eq!(r.windows_over(0.30), 0);
        // Seven of ten came back: not all.
        assert_eq!(r.all_back(), None);
        assert_eq!(r.back(0.5), Some(Duration::from_millis(251)));
    }

    #[test]
    fn all_back_is_the_last_client_to_reconnect() {
        let r = report(&[10, 20, 3_000], 3);
        assert_eq!(r.all_back(), Some(Duration::from_millis(3_001)));
        let text = histogram(&r, 2);
        assert!(
            text.contains("busiest windows: +0 ms: 2; +3000 ms: 1;"),
            "{text}"
        );
        assert!(table(&[r]).contains("66.7 % of clients"));
    }

    #[test]
    fn what_a_client_saw_is_placed_around_the_outage() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        let seen = Seen {
            stream: vec![
                (Mark::Connecting, s(0)),
                (Mark::Connected, s(1)),
                (Mark::Unreachable, s(10)),
                (Mark::Connecting, s(11)),
                (Mark::Unreachable, s(11)),
                (Mark::Connecting, s(31)),
                (Mark::Connected, s(31)),
                (Mark::Connecting, s(40)),
                (Mark::Connected, s(40)),
            ],
            caught_up: true,
        };
        let mut r = StormReport {
            clients: 1,
            ..StormReport::default()
        };
        r.add(&seen, s(10), s(30));
        assert_eq!(r.saw_failure, 1);
        assert_eq!(r.attempts_during, 1);
        assert_eq!(
            r.attempts_after,
            [Duration::from_secs(1), Duration::from_secs(10)]
        );
        assert_eq!(r.reconnected, [Duration::from_secs(1)]);
        assert_eq!(r.answered_in, [Duration::ZERO]);
        assert!(r.complete());
    }
}
