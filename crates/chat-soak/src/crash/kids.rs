//! The crash soak parent's view of its children: which process is alive and which start of
//! it that is, what it told (its session, its chat, its stream, the sends handed over and
//! delivered), the kill armed for its next line, and the times of its restarts.

use std::collections::BTreeSet;
use std::time::Duration;

use chat_core::{EngagementId, SessionId};
use chat_emulator::Control;
use tokio::process::Child;
use tokio::time::Instant;

use super::plan::{How, PlannedKill};
use super::report::CrashReport;
use crate::children::{self, Heard};
use crate::lines::Fact;

/// How long an armed kill waits for its line before it kills anyway.
const ARMED_PATIENCE: Duration = Duration::from_secs(10);

/// A kill waiting for its child's next line.
#[derive(Debug, Clone, Copy)]
struct Armed {
    kill: PlannedKill,
    /// Killed anyway then, if the line did not come.
    until: Instant,
    /// Set once the line came (mid-send: after the delay).
    fire_at: Option<Instant>,
}

/// A restart whose times are being measured.
#[derive(Debug, Clone, Copy)]
struct Since {
    started: Instant,
    /// The highest number delivered before the kill: the first delivery above it counts.
    highest_before: u64,
    connected: bool,
    delivered: bool,
}

/// One child.
#[derive(Debug, Default)]
pub(super) struct Kid {
    process: Option<Child>,
    /// Which start of the process this is (1 for the first).
    incarnation: u64,
    session: Option<SessionId>,
    engagement: Option<EngagementId>,
    stream_up: bool,
    /// It told it is done (and exits).
    done: bool,
    /// Dead, to be started again then.
    restart_at: Option<Instant>,
    armed: Option<Armed>,
    /// Numbers it told were handed over, in any incarnation.
    pub(super) handed: BTreeSet<u64>,
    highest_delivered: u64,
    since: Option<Since>,
}

/// Every child, and the times measured after their restarts.
#[derive(Debug, Default)]
pub(super) struct Kids {
    pub(super) all: Vec<Kid>,
    /// From a restart to `connect` returning.
    pub(super) to_connected: Vec<Duration>,
    /// From a restart to the first delivery of a number not delivered before the kill.
    pub(super) to_delivered: Vec<Duration>,
}

impl Kids {
    /// `n` children, none started yet.
    pub(super) fn new(n: usize) -> Self {
        Self {
            all: (0..n).map(|_| Kid::default()).collect(),
            ..Self::default()
        }
    }

    /// Child `i` was started (again) as `process` (after [`next_incarnation`]).
    ///
    /// [`next_incarnation`]: Self::next_incarnation
    pub(super) fn started(&mut self, i: usize, process: Child) {
        let kid = &mut self.all[i];
        if kid.incarnation > 1 {
            kid.since = Some(Since {
                started: Instant::now(),
                highest_before: kid.highest_delivered,
                connected: false,
                delivered: false,
            });
        }
        kid.process = Some(process);
        kid.restart_at = None;
        kid.session = None;
        kid.stream_up = false;
    }

    /// The number the next start of child `i` gets.
    pub(super) fn next_incarnation(&mut self, i: usize) -> u64 {
        self.all[i].incarnation += 1;
        self.all[i].incarnation
    }

    /// Children a kill may pick: alive, not done, no kill armed already.
    pub(super) fn killable(&self) -> Vec<usize> {
        (0..self.all.len())
            .filter(|&i| {
                let k = &self.all[i];
                k.process.is_some() && !k.done && k.armed.is_none()
            })
            .collect()
    }

    /// Arms `kill` on child `i`: it fires at the child's next `handed` line, or a little
    /// after its next `sending` line.
    pub(super) fn arm(&mut self, i: usize, kill: PlannedKill) {
        self.all[i].armed = Some(Armed {
            kill,
            until: Instant::now() + ARMED_PATIENCE,
            fire_at: None,
        });
    }

    /// The armed kills due by `now`: the child, the kill, and how to count it.
    pub(super) fn armed_due(&mut self, now: Instant) -> Vec<(usize, PlannedKill, String)> {
        let mut due = Vec::new();
        for (i, kid) in self.all.iter_mut().enumerate() {
            let Some(armed) = kid.armed else { continue };
            let how = if armed.fire_at.is_some_and(|at| at <= now) {
                armed.kill.how.name().to_owned()
            } else if armed.until <= now {
                format!("{} (timed out)", armed.kill.how.name())
            } else {
                continue;
            };
            kid.armed = None;
            if kid.process.is_some() && !kid.done {
                due.push((i, armed.kill, how));
            }
        }
        due
    }

    /// The dead children due to start again by `now`.
    pub(super) fn restarts_due(&self, now: Instant) -> Vec<usize> {
        (0..self.all.len())
            .filter(|&i| self.all[i].restart_at.is_some_and(|at| at <= now))
            .collect()
    }

    /// When something of the children's is due next (an armed kill, a restart).
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.all
            .iter()
            .flat_map(|k| {
                let armed = k.armed.map(|a| a.fire_at.unwrap_or(a.until).min(a.until));
                [armed, k.restart_at]
            })
            .flatten()
            .min()
    }

    /// Whether every child is done.
    pub(super) fn all_done(&self) -> bool {
        self.all.iter().all(|k| k.done)
    }

    /// Which children are not done.
    pub(super) fn not_done(&self) -> Vec<usize> {
        (0..self.all.len()).filter(|&i| !self.all[i].done).collect()
    }

    /// The chat child `i` told.
    pub(super) fn chat(&self, i: usize) -> Option<EngagementId> {
        self.all[i].engagement.clone()
    }

    /// The sessions of live children, for a fault that lands on one (with `stream`, only
    /// those whose event stream is connected).
    pub(super) fn sessions(&self, stream: bool) -> Vec<SessionId> {
        self.all
            .iter()
            .filter(|k| k.process.is_some() && !k.done && (!stream || k.stream_up))
            .filter_map(|k| k.session.clone())
            .collect()
    }

    /// Kills child `i` now (SIGKILL), removes its session on the server if the kill says
    /// so, and plans its restart.
    pub(super) async fn kill(
        &mut self,
        i: usize,
        kill: &PlannedKill,
        how: String,
        control: &Control,
        report: &mut CrashReport,
    ) {
        let kid = &mut self.all[i];
        let Some(mut child) = kid.process.take() else {
            return;
        };
        children::kill(&mut child).await;
        crate::session::trace(|| format!("killed child {i} #{} ({how})", kid.incarnation));
        report.kills += 1;
        *report.kills_by_how.entry(how).or_default() += 1;
        if kill.invalidate {
            if let Some(sid) = &kid.session {
                if control.invalidate_session(sid) {
                    report.invalidated_while_down += 1;
                }
            }
        }
        kid.stream_up = false;
        kid.since = None;
        kid.restart_at = Some(Instant::now() + kill.down_for);
    }

    /// Kills every child still alive (the end of the run).
    pub(super) async fn kill_all(&mut self) {
        for kid in &mut self.all {
            if let Some(mut child) = kid.process.take() {
                children::kill(&mut child).await;
            }
        }
    }

    /// A line (or the end of a child's output) heard.
    pub(super) async fn hear(&mut self, h: Heard, report: &mut CrashReport) {
        let Some(kid) = self.all.get_mut(h.process) else {
            return;
        };
        let current = h.incarnation == kid.incarnation;
        crate::session::trace(|| match &h.line {
            Some(line) => format!("child {} #{}: {line}", h.process, h.incarnation),
            None => format!("child {} #{}: (end of output)", h.process, h.incarnation),
        });
        let Some(line) = h.line else {
            if current {
                exited(kid, h.process, report).await;
            }
            return;
        };
        // Facts about the dead incarnation's sends still count (a `handed` line written just
        // before the kill is a promise); its session and stream do not.
        match line.fact {
            Fact::Handed(k) => {
                kid.handed.insert(k);
                if let Some(armed) = kid.armed.as_mut().filter(|_| current) {
                    if armed.kill.how == How::AfterHanded {
                        armed.fire_at = Some(h.at);
                    }
                }
            }
            Fact::Sending(_) if current => {
                if let Some(armed) = &mut kid.armed {
                    if let How::MidSend(delay) = armed.kill.how {
                        armed.fire_at.get_or_insert(h.at + delay);
                    }
                }
            }
            Fact::Delivered(k) => {
                if let Some(since) = kid.since.as_mut().filter(|_| current) {
                    if !since.delivered && k > since.highest_before {
                        since.delivered = true;
                        self.to_delivered.push(h.at - since.started);
                    }
                }
                kid.highest_delivered = kid.highest_delivered.max(k);
            }
            Fact::Connected if current => {
                if let Some(since) = &mut kid.since {
                    if !since.connected {
                        since.connected = true;
                        self.to_connected.push(h.at - since.started);
                    }
                }
            }
            Fact::Session(s) if current => kid.session = Some(SessionId::new(s)),
            Fact::Engagement(e) if current => kid.engagement = Some(EngagementId::new(e)),
            Fact::Stream(up) if current => kid.stream_up = up,
            Fact::Failed(_, code) => *report.send_errors.entry(code).or_default() += 1,
            Fact::Done if current => kid.done = true,
            Fact::Held => report.problems.push(format!(
                "child {} found its session held by another process",
                h.process
            )),
            Fact::Problem(p) => report.problems.push(format!("child {}: {p}", h.process)),
            _ => {}
        }
    }
}

/// The output of a child's current start ended: killed by the parent (nothing to do), done
/// (it exits), or it exited on its own without being done (a failure: started again).
async fn exited(kid: &mut Kid, index: usize, report: &mut CrashReport) {
    let Some(mut child) = kid.process.take() else {
        return; // killed by the parent
    };
    let status = child.wait().await.ok();
    if kid.done && status.is_some_and(|s| s.success()) {
        return;
    }
    report.child_failures += 1;
    report.problems.push(format!(
        "child {index} exited on its own ({status:?}) without being done"
    ));
    kid.done = false;
    kid.restart_at = Some(Instant::now() + Duration::from_millis(500));
}
