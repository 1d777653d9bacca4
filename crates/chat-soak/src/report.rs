//! The figures of a run, computed from the sessions' logs, and their table.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::adapter::Transport;
use crate::faults::FaultKind;
use crate::session::{Dir, SessionLog, Via};

/// The counts of one direction.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Direction {
    /// Messages sent: customer sends attempted, or agent posts accepted by the emulator.
    pub sent: u64,
    /// Distinct messages that reached the other side: stored in the dialog (customer →
    /// agent), or shown by the customer app (agent → customer).
    pub received: u64,
    /// Messages that vanished: sent and never received, or a customer send answered as
    /// delivered (or never answered) yet not stored, or stored but never shown back to the
    /// customer as `MESSAGE_DELIVERED` (nor by the history fill).
    pub lost: u64,
    /// Extra copies: stored twice, or shown twice.
    pub duplicated: u64,
    /// Messages stored or shown after a later-numbered one of the same direction.
    pub out_of_order: u64,
    /// Customer sends that ended with an error (`failed_sends` has the errors).
    pub failed: u64,
    /// Of those, how many were stored all the same (the answer was lost on the way back).
    pub failed_but_stored: u64,
    /// Agent messages the customer app got from the history fill after a new session.
    pub from_history: u64,
    /// The worst delay from send to receipt, in milliseconds: to the send's answer
    /// (customer → agent), to the message shown (agent → customer).
    pub worst_delay_ms: u64,
    /// The median of those delays over the run, in milliseconds.
    pub median_delay_ms: u64,
}

impl Direction {
    /// Whether nothing was lost, repeated or reordered.
    pub fn clean(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.out_of_order == 0
    }
}

/// The figures of one run (one adapter, one transport).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunReport {
    /// The adapter (`tokio`, `blocking`).
    pub adapter: String,
    /// The event-stream transport.
    pub transport: Option<Transport>,
    /// The seed of the schedule.
    pub seed: u64,
    /// Sessions run.
    pub sessions: u64,
    /// Sessions whose setup or recovery failed for good (see `problems`).
    pub sessions_failed: u64,
    /// Messages per direction per session.
    pub messages_per_direction: u64,
    /// Whether sends went through chat-core's outbox.
    pub outbox: bool,
    /// Wall-clock time of the run, in seconds.
    pub seconds: f64,
    /// Customer → agent.
    pub customer_to_agent: Direction,
    /// Agent → customer.
    pub agent_to_customer: Direction,
    /// Failed sends by error text (code and message; no secrets in them).
    pub failed_sends: BTreeMap<String, u64>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// `EVENT_STREAM_CONNECTED` after the first of each session (reconnections).
    pub reconnections: u64,
    /// `EVENT_STREAM_FAILED` by reason.
    pub stream_failures: BTreeMap<String, u64>,
    /// Tokens the providers fetched beyond the one each new session starts with.
    pub token_refreshes: u64,
    /// `TOKEN_EXPIRED` events.
    pub token_expired_events: u64,
    /// Sessions started again after an invalidation (or a client that stopped by itself).
    pub recoveries: u64,
    /// Of the recoveries, those started because the event stream closed by itself without
    /// `CLIENT_SESSION_INVALIDATED` (the app's chat still open).
    pub unsignalled_session_losses: u64,
    /// Messages both in a history fill and on the new session's stream, shown once.
    pub overlap: u64,
    /// Setup steps (connect, create, rejoin, history) tried again after an error.
    pub setup_retries: u64,
    /// What went wrong beyond the counts (setup failures), one line each.
    pub problems: Vec<String>,
}

impl RunReport {
    /// The bar: nothing lost, duplicated or out of order in either direction, every
    /// session ran to its end, and every lost session was reported as such by the SDK
    /// (`CLIENT_SESSION_INVALIDATED`), never found out by the app on its own.
    pub fn clean(&self) -> bool {
        self.customer_to_agent.clean()
            && self.agent_to_customer.clean()
            && self.sessions_failed == 0
            && self.unsignalled_session_losses == 0
    }

    /// How many faults of this kind were injected.
    pub fn injected(&self, kind: FaultKind) -> u64 {
        self.faults.get(kind.name()).copied().unwrap_or(0)
    }

    /// Adds a session's figures; its delays go to `delays` (customer → agent, agent →
    /// customer) for [`RunReport::set_delays`].
    pub(crate) fn add(&mut self, log: &SessionLog, delays: &mut [Vec<Duration>; 2]) {
        if !log.problems.is_empty() {
            self.sessions_failed += 1;
            self.problems.extend(log.problems.iter().cloned());
        }
        self.reconnections += log.connected.saturating_sub(log.incarnations);
        for (reason, n) in &log.failures {
            *self.stream_failures.entry(reason.clone()).or_default() += n;
        }
        self.token_refreshes += log.token_calls.saturating_sub(log.connect_attempts);
        self.token_expired_events += log.token_expired;
        self.recoveries += log.recoveries;
        self.unsignalled_session_losses += log.unsignalled;
        self.overlap += log.overlap;
        self.setup_retries += log.setup_retries;
        self.customer_side(log, &mut delays[0]);
        self.agent_side(log, &mut delays[1]);
    }

    /// The median and worst delays of each direction.
    pub(crate) fn set_delays(&mut self, delays: &mut [Vec<Duration>; 2]) {
        for (d, v) in [&mut self.customer_to_agent, &mut self.agent_to_customer]
            .into_iter()
            .zip(delays.iter_mut())
        {
            v.sort();
            let ms = |t: &Duration| t.as_millis() as u64;
            d.worst_delay_ms = v.last().map_or(0, ms);
            d.median_delay_ms = v.get(v.len() / 2).map_or(0, ms);
        }
    }

    fn customer_side(&mut self, log: &SessionLog, delays: &mut Vec<Duration>) {
        let d = &mut self.customer_to_agent;
        let mut stored: HashMap<usize, u64> = HashMap::new();
        let mut top = 0;
        for &(_, dir, n) in &log.dialog {
            if dir != Dir::Customer {
                continue;
            }
            *stored.entry(n).or_default() += 1;
            if n < top {
                d.out_of_order += 1;
            }
            top = top.max(n);
        }
        let mut shown: HashMap<usize, u64> = HashMap::new();
        let mut top = 0;
        for s in log.seen.iter().filter(|s| s.dir == Dir::Customer) {
            *shown.entry(s.n).or_default() += 1;
            if s.n < top {
                d.out_of_order += 1;
            }
            top = top.max(s.n);
        }
        d.received += stored.len() as u64;
        d.duplicated += stored.values().map(|c| c - 1).sum::<u64>();
        d.duplicated += shown.values().map(|c| c - 1).sum::<u64>();
        // Stored but never shown back to the customer.
        d.lost += stored.keys().filter(|n| !shown.contains_key(n)).count() as u64;
        for s in &log.sends {
            d.sent += 1;
            let is_stored = stored.contains_key(&s.n);
            match &s.outcome {
                Some((at, Ok(_))) => {
                    delays.push(at.duration_since(s.started));
                    if !is_stored {
                        d.lost += 1;
                    }
                }
                Some((_, Err(e))) => {
                    d.failed += 1;
                    if is_stored {
                        d.failed_but_stored += 1;
                    }
                    *self.failed_sends.entry(e.text.clone()).or_default() += 1;
                }
                None => {
                    if !is_stored {
                        d.lost += 1;
                    }
                    *self
                        .failed_sends
                        .entry("(no answer within the soak's patience)".to_owned())
                        .or_default() += 1;
                }
            }
        }
    }

    fn agent_side(&mut self, log: &SessionLog, delays: &mut Vec<Duration>) {
        let d = &mut self.agent_to_customer;
        let mut first: HashMap<usize, tokio::time::Instant> = HashMap::new();
        let mut count: HashMap<usize, u64> = HashMap::new();
        let mut top = 0;
        for s in log.seen.iter().filter(|s| s.dir == Dir::Agent) {
            *count.entry(s.n).or_default() += 1;
            first.entry(s.n).or_insert(s.at);
            if s.via == Via::History {
                d.from_history += 1;
            }
            if s.n < top {
                d.out_of_order += 1;
            }
            top = top.max(s.n);
        }
        d.duplicated += count.values().map(|c| c - 1).sum::<u64>();
        for p in log.posts.iter().filter(|p| p.ok) {
            d.sent += 1;
            match first.get(&p.n) {
                Some(at) => {
                    d.received += 1;
                    delays.push(at.saturating_duration_since(p.at));
                }
                None => d.lost += 1,
            }
        }
    }
}

/// A readable table of several runs, one column per run.
pub fn table(reports: &[RunReport]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&RunReport) -> String| {
        rows.push((name.to_owned(), reports.iter().map(f).collect()));
    };
    row("adapter / transport", &|r| {
        format!(
            "{} / {}",
            r.adapter,
            r.transport.map_or("-", Transport::name)
        )
    });
    row("seed", &|r| r.seed.to_string());
    row("sessions (failed)", &|r| {
        format!("{} ({})", r.sessions, r.sessions_failed)
    });
    row("messages per direction", &|r| {
        r.messages_per_direction.to_string()
    });
    row("outbox", &|r| {
        if r.outbox { "on" } else { "off" }.to_owned()
    });
    row("seconds", &|r| format!("{:.1}", r.seconds));
    for (label, pick) in [
        (
            "customer → agent",
            (|r: &RunReport| &r.customer_to_agent) as fn(&RunReport) -> &Direction,
        ),
        ("agent → customer", |r: &RunReport| &r.agent_to_customer),
    ] {
        row(&format!("{label}: sent"), &|r| pick(r).sent.to_string());
        row("  received", &|r| pick(r).received.to_string());
        row("  lost", &|r| pick(r).lost.to_string());
        row("  duplicated", &|r| pick(r).duplicated.to_string());
        row("  out of order", &|r| pick(r).out_of_order.to_string());
        row("  failed, with error", &|r| pick(r).failed.to_string());
        row("  failed but stored", &|r| {
            pick(r).failed_but_stored.to_string()
        });
        row("  from history", &|r| pick(r).from_history.to_string());
        row("  delay median / worst ms", &|r| {
            format!("{} / {}", pick(r).median_delay_ms, pick(r).worst_delay_ms)
        });
    }
    for kind in FaultKind::ALL {
        row(&format!("fault {}", kind.name()), &|r| {
            r.injected(kind).to_string()
        });
    }
    row("faults skipped (no session / server down)", &|r| {
        let n = |k: &str| r.faults.get(k).copied().unwrap_or(0);
        format!(
            "{} / {}",
            n("skipped (no live session)"),
            n("skipped (server down)")
        )
    });
    row("reconnections", &|r| r.reconnections.to_string());
    row("token refreshes", &|r| r.token_refreshes.to_string());
    row("TOKEN_EXPIRED events", &|r| {
        r.token_expired_events.to_string()
    });
    row("recoveries (new session)", &|r| r.recoveries.to_string());
    row("  of which unsignalled", &|r| {
        r.unsignalled_session_losses.to_string()
    });
    row("history/stream overlap", &|r| r.overlap.to_string());
    row("setup retries", &|r| r.setup_retries.to_string());
    row("verdict", &|r| {
        if r.clean() { "PASS" } else { "FAIL" }.to_owned()
    });
    let name_width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..reports.len())
        .map(|i| {
            rows.iter()
                .map(|r| r.1[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (name, cells) in &rows {
        let _ = write!(out, "{name:<name_width$}");
        for (cell, w) in cells.iter().zip(&widths) {
            let _ = write!(out, "  {cell:>w$}");
        }
        out.push('\n');
    }
    let mut failed: BTreeMap<&str, u64> = BTreeMap::new();
    let mut streams: BTreeMap<&str, u64> = BTreeMap::new();
    for r in reports {
        for (e, n) in &r.failed_sends {
            *failed.entry(e).or_default() += n;
        }
        for (e, n) in &r.stream_failures {
            *streams.entry(e).or_default() += n;
        }
    }
    if !failed.is_empty() {
        out.push_str("\nfailed sends (all runs):\n");
        for (e, n) in failed {
            let _ = writeln!(out, "  {n:>6}  {e}");
        }
    }
    if !streams.is_empty() {
        out.push_str("\nEVENT_STREAM_FAILED by reason (all runs):\n");
        for (e, n) in streams {
            let _ = writeln!(out, "  {n:>6}  {e}");
        }
    }
    for r in reports {
        for p in r.problems.iter().take(20) {
            let _ = writeln!(
                out,
                "problem ({} / {}): {p}",
                r.adapter,
                r.transport.map_or("-", Transport::name)
            );
        }
    }
    out
}
