//! The failover soak parent's view of its gateways and of the customers they drive: which
//! gateway holds which session (as their lines tell), the kills, and the takeovers measured
//! after them.

use std::collections::BTreeSet;
use std::time::Duration;

use chat_core::{EngagementId, SessionId};
use tokio::process::{Child, ChildStdin};
use tokio::time::Instant;

use super::report::FailoverReport;
use crate::children::{self, Heard};
use crate::lines::Fact;

/// A takeover being measured.
#[derive(Debug, Clone, Copy)]
struct Takeover {
    killed_at: Instant,
    /// The gateway that died.
    from: usize,
    /// The highest number delivered before the kill.
    highest_before: u64,
    connected: bool,
    delivered: bool,
}

/// One customer, as its gateways told.
#[derive(Debug, Default)]
pub(super) struct Cust {
    /// The gateway that last connected its session, while it holds it.
    owner: Option<usize>,
    session: Option<SessionId>,
    engagement: Option<EngagementId>,
    stream_up: bool,
    done: bool,
    /// Numbers told handed over, by any gateway.
    pub(super) handed: BTreeSet<u64>,
    highest_delivered: u64,
    takeover: Option<Takeover>,
}

/// A gateway process.
#[derive(Debug)]
pub(super) struct Gate {
    pub(super) name: String,
    child: Option<Child>,
    /// Held open: the gateway runs until it closes.
    stdin: Option<ChildStdin>,
}

/// The gateways, the customers, and the takeover times.
#[derive(Debug, Default)]
pub(super) struct Fleet {
    pub(super) gates: Vec<Gate>,
    pub(super) custs: Vec<Cust>,
    /// From a kill to the new owner's `connect` returning, per session taken over.
    pub(super) to_connected: Vec<Duration>,
    /// From a kill to the new owner's first delivery of a number not delivered before.
    pub(super) to_delivered: Vec<Duration>,
}

impl Fleet {
    /// `customers` customers, no gateway yet.
    pub(super) fn new(customers: usize) -> Self {
        Self {
            custs: (0..customers).map(|_| Cust::default()).collect(),
            ..Self::default()
        }
    }

    /// A gateway started as `child`.
    pub(super) fn add(&mut self, name: String, mut child: Child) {
        let stdin = child.stdin.take();
        self.gates.push(Gate {
            name,
            child: Some(child),
            stdin,
        });
    }

    /// The gateways a kill may pick: alive and holding sessions, while another one is alive.
    pub(super) fn killable(&self) -> Vec<usize> {
        let alive = self.gates.iter().filter(|g| g.child.is_some()).count();
        if alive < 2 {
            return Vec::new();
        }
        (0..self.gates.len())
            .filter(|&g| self.gates[g].child.is_some())
            .filter(|&g| self.custs.iter().any(|c| c.owner == Some(g) && !c.done))
            .collect()
    }

    /// Kills gateway `g` now (SIGKILL); its sessions' takeovers are measured from now.
    /// Returns how many sessions it held.
    pub(super) async fn kill(&mut self, g: usize) -> usize {
        if let Some(mut child) = self.gates[g].child.take() {
            children::kill(&mut child).await;
        }
        self.gates[g].stdin = None;
        let killed_at = Instant::now();
        let mut held = 0;
        for c in self
            .custs
            .iter_mut()
            .filter(|c| c.owner == Some(g) && !c.done)
        {
            held += 1;
            c.owner = None;
            c.stream_up = false;
            c.takeover = Some(Takeover {
                killed_at,
                from: g,
                highest_before: c.highest_delivered,
                connected: false,
                delivered: false,
            });
        }
        held
    }

    /// The sessions of customers a live gateway holds, for a fault that lands on one (with
    /// `stream`, only those whose event stream is connected).
    pub(super) fn sessions(&self, stream: bool) -> Vec<SessionId> {
        self.custs
            .iter()
            .filter(|c| c.owner.is_some() && !c.done && (!stream || c.stream_up))
            .filter_map(|c| c.session.clone())
            .collect()
    }

    /// The chat of customer `i`, as told.
    pub(super) fn chat(&self, i: usize) -> Option<EngagementId> {
        self.custs[i].engagement.clone()
    }

    /// Whether every customer is done.
    pub(super) fn all_done(&self) -> bool {
        self.custs.iter().all(|c| c.done)
    }

    /// The customers not done.
    pub(super) fn not_done(&self) -> Vec<usize> {
        (0..self.custs.len())
            .filter(|&i| !self.custs[i].done)
            .collect()
    }

    /// How many sessions of a killed gateway were never taken over.
    pub(super) fn not_taken_over(&self) -> usize {
        self.custs
            .iter()
            .filter(|c| c.takeover.is_some_and(|t| !t.connected))
            .count()
    }

    /// Closes every gateway's standard input (they exit) and waits for them; those that do
    /// not exit in time are killed, and each that did not exit cleanly is a problem.
    pub(super) async fn close(&mut self, problems: &mut Vec<String>) {
        for gate in &mut self.gates {
            gate.stdin = None;
        }
        for gate in &mut self.gates {
            let Some(mut child) = gate.child.take() else {
                continue;
            };
            match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
                Ok(Ok(status)) if status.success() => {}
                Ok(status) => problems.push(format!("gateway {} ended with {status:?}", gate.name)),
                Err(_) => {
                    problems.push(format!("gateway {} did not exit", gate.name));
                    children::kill(&mut child).await;
                }
            }
        }
    }

    /// A line (or the end of a gateway's output) heard.
    pub(super) async fn hear(&mut self, h: Heard, report: &mut FailoverReport) {
        let g = h.process;
        crate::session::trace(|| match &h.line {
            Some(line) => format!("gateway {g}: {line}"),
            None => format!("gateway {g}: (end of output)"),
        });
        let Some(gate) = self.gates.get_mut(g) else {
            return;
        };
        let Some(line) = h.line else {
            if let Some(mut child) = gate.child.take() {
                let status = child.wait().await;
                report.problems.push(format!(
                    "gateway {} exited on its own ({status:?})",
                    gate.name
                ));
            }
            return;
        };
        // A dead gateway's last lines are facts about sends (a `handed` line is a promise);
        // they do not make it the owner again.
        let alive = gate.child.is_some();
        let Some(c) = self.custs.get_mut(line.customer) else {
            return;
        };
        match line.fact {
            Fact::Connected if alive => {
                match &mut c.takeover {
                    Some(t) if t.from != g && !t.connected => {
                        t.connected = true;
                        report.sessions_taken_over += 1;
                        self.to_connected.push(h.at - t.killed_at);
                    }
                    _ if c.owner.is_some_and(|o| o != g) => report.other_takeovers += 1,
                    _ => {}
                }
                c.owner = Some(g);
            }
            Fact::Session(s) if alive => c.session = Some(SessionId::new(s)),
            Fact::Engagement(e) if alive => c.engagement = Some(EngagementId::new(e)),
            Fact::Stream(up) if alive => c.stream_up = up,
            Fact::Handed(k) => {
                c.handed.insert(k);
            }
            Fact::Delivered(k) => {
                if let Some(t) = &mut c.takeover {
                    if alive && t.from != g && !t.delivered && k > t.highest_before {
                        t.delivered = true;
                        self.to_delivered.push(h.at - t.killed_at);
                    }
                }
                c.highest_delivered = c.highest_delivered.max(k);
            }
            Fact::Failed(_, code) => *report.send_errors.entry(code).or_default() += 1,
            Fact::Done if alive => c.done = true,
            Fact::Held if c.owner == Some(g) => c.owner = None,
            Fact::Problem(p) => report.problems.push(format!(
                "customer {} on {}: {p}",
                line.customer, self.gates[g].name
            )),
            _ => {}
        }
    }
}
