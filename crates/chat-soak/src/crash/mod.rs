//! The crash soak (issue #15): customer apps in processes of their own, killed with SIGKILL
//! at seeded random instants and started again from their store, while the emulator's
//! faults go on. See `docs/reliability.md`, "Crash soak".
//!
//! The parent starts the emulator and the soak's proxy, then one child process per customer
//! (`chat-soak crash-child`, [`crate::child`]) with its session in one SQLite file shared by
//! all. Meanwhile it posts agent messages into each customer's chat at seeded times, injects
//! faults, and kills children at seeded instants: at a random moment, right after a child
//! told it a send was handed over, or in the middle of a send. After a seeded pause it starts
//! the child again (sometimes with its session removed on the server meanwhile, so that the
//! restart finds it gone). At the end it stops killing, lets every child finish, and checks
//! each direction: the customers' numbers in the emulator's dialogs, the agent's in the
//! apps' own tables.

mod kids;
mod plan;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::SoakError;
use crate::adapter::Transport;
use crate::agent::Agent;
use crate::child::{APPKEY_VAR, ChildAdapter, TOKEN_VAR};
use crate::children::{self, Heard};
use crate::faults::{self, FaultKind, Schedule};
use crate::inbox::SqliteInbox;
use crate::stage::{POLL_TIMEOUT, Stage};
use crate::tally::Spread;
use kids::Kids;
use plan::{How, kill_plan};
pub use report::CrashReport;

/// The fault kinds of a crash soak by default: every kind of the chaos soak but the token
/// expiry (the children's tokens are minted once for the whole run) and the live session
/// invalidation (a session removed on the server is part of the kills instead: see
/// [`CrashOptions::live_invalidations`]).
pub const CRASH_FAULTS: [FaultKind; 7] = [
    FaultKind::ServerError,
    FaultKind::TooManyRequests,
    FaultKind::DroppedPoll,
    FaultKind::DroppedSocket,
    FaultKind::Hang,
    FaultKind::LostAnswer,
    FaultKind::Outage,
];

/// What a crash soak runs.
#[derive(Debug, Clone)]
pub struct CrashOptions {
    /// Customer processes.
    pub children: usize,
    /// Numbers each customer sends.
    pub messages: u64,
    /// Agent messages posted to each customer.
    pub agent_messages: u64,
    /// How long the sends, posts, kills and faults are spread over (the children finish
    /// after it).
    pub duration: Duration,
    /// Kills in all, at seeded instants in the first three quarters of the run.
    pub kills: usize,
    /// Faults in all; `None`: one per four messages, every kind at least once.
    pub faults: Option<usize>,
    /// Also invalidate live sessions on the server (`session-invalidated` in the mix).
    pub live_invalidations: bool,
    /// Seed of the schedules.
    pub seed: u64,
    /// The client library the children drive.
    pub adapter: ChildAdapter,
    /// The event-stream transport.
    pub transport: Transport,
    /// The binary to start as children (`chat-soak`); `None`: this process's own.
    pub exe: Option<PathBuf>,
    /// How long after `duration` the children may take to finish before the run fails.
    pub patience: Duration,
}

impl Default for CrashOptions {
    fn default() -> Self {
        Self {
            children: 4,
            messages: 30,
            agent_messages: 30,
            duration: Duration::from_secs(60),
            kills: 20,
            faults: None,
            live_invalidations: false,
            seed: 1,
            adapter: ChildAdapter::Tokio,
            transport: Transport::LongPoll,
            exe: None,
            patience: Duration::from_secs(120),
        }
    }
}

impl CrashOptions {
    fn check(&self) -> Result<(), SoakError> {
        let bad = |what: &str| Err(SoakError::Options(what.to_owned()));
        if self.children == 0 || self.children > 200 {
            return bad("children must be 1 to 200");
        }
        if self.messages == 0 || self.messages > 100_000 {
            return bad("messages must be 1 to 100000");
        }
        if self.agent_messages > 100_000 {
            return bad("agent messages must be at most 100000");
        }
        if self.duration < Duration::from_secs(2) || self.duration > Duration::from_secs(86_400) {
            return bad("duration must be 2 s to 24 h");
        }
        Ok(())
    }

    fn kinds(&self) -> Vec<FaultKind> {
        let mut kinds = CRASH_FAULTS.to_vec();
        if self.live_invalidations {
            kinds.push(FaultKind::SessionInvalidated);
        }
        kinds
    }

    fn total_faults(&self, kinds: usize) -> usize {
        self.faults.unwrap_or_else(|| {
            (self.children * self.messages as usize / 4)
                .max(kinds)
                .min(10_000)
        })
    }
}

/// The customer id of crash customer `i` (in its tokens, and in the emulator's chats).
fn customer_id(seed: u64, i: usize) -> String {
    format!("crash-{seed}-{i}")
}

/// The binary to start as children: `exe`, or this process's own.
pub(crate) fn own_exe(exe: Option<&PathBuf>) -> Result<PathBuf, SoakError> {
    match exe {
        Some(exe) => Ok(exe.clone()),
        None => std::env::current_exe().map_err(|e| SoakError::Start(format!("own binary: {e}"))),
    }
}

/// What every start of a child is given.
struct Launch<'a> {
    options: &'a CrashOptions,
    exe: PathBuf,
    base_url: String,
    integration_id: String,
    appkey: String,
    db: PathBuf,
    tokens: Vec<String>,
    pace: Duration,
}

impl Launch<'_> {
    /// Starts child `i` (again) and tells `kids`.
    fn start(
        &self,
        kids: &mut Kids,
        i: usize,
        heard: &mpsc::UnboundedSender<Heard>,
    ) -> Result<(), SoakError> {
        let o = self.options;
        let mut c = Command::new(&self.exe);
        c.arg("crash-child")
            .args(["--index", &i.to_string()])
            .args(["--adapter", o.adapter.name()])
            .args(["--transport", o.transport.name()])
            .args(["--base-url", &self.base_url])
            .args(["--integration-id", &self.integration_id])
            .arg("--store")
            .arg(&self.db)
            .args(["--messages", &o.messages.to_string()])
            .args(["--agent-messages", &o.agent_messages.to_string()])
            .args(["--pace-ms", &self.pace.as_millis().to_string()])
            .args(["--seed", &o.seed.to_string()])
            // Secrets in the environment, not on the command line (`ps` shows that).
            .env(APPKEY_VAR, &self.appkey)
            .env(TOKEN_VAR, &self.tokens[i]);
        let incarnation = kids.next_incarnation(i);
        let process = children::spawn(c, i, incarnation, false, heard.clone())
            .map_err(|e| SoakError::Start(format!("child {i}: {e}")))?;
        kids.started(i, process);
        Ok(())
    }
}

/// Runs a crash soak and returns its figures (a run that found losses is a report that is
/// not [`clean`](CrashReport::clean), not an error).
pub async fn run_crash(options: &CrashOptions) -> Result<CrashReport, SoakError> {
    options.check()?;
    let wall = std::time::Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("chat-soak-crash-")
        .tempdir()
        .map_err(|e| SoakError::Start(format!("temporary directory: {e}")))?;
    let db = dir.path().join("sessions.db");
    // The store's schema and the app's table, before the children race to create them.
    chat_store::SqliteStore::open(&db).map_err(|e| SoakError::Start(format!("store: {e}")))?;
    SqliteInbox::open(&db).map_err(|e| SoakError::Start(format!("store: {e}")))?;
    let stage = Stage::start().await?;
    let life = options.duration + options.patience + Duration::from_secs(3600);
    let launch = Launch {
        options,
        exe: own_exe(options.exe.as_ref())?,
        base_url: stage.proxy.base_url(),
        integration_id: stage.credentials.integration_id.clone(),
        appkey: stage.credentials.appkey.clone(),
        db: db.clone(),
        tokens: (0..options.children)
            .map(|i| stage.token(&customer_id(options.seed, i), life))
            .collect(),
        // The sends are spread over four fifths of the run.
        pace: options.duration.mul_f64(0.8) / options.messages.max(1) as u32,
    };

    let (heard_tx, mut heard) = mpsc::unbounded_channel::<Heard>();
    let mut report = CrashReport {
        adapter: options.adapter.name().to_owned(),
        transport: options.transport.name().to_owned(),
        seed: options.seed,
        children: options.children as u64,
        messages: options.messages,
        agent_messages: options.agent_messages,
        ..CrashReport::default()
    };
    let mut kids = Kids::new(options.children);
    for i in 0..options.children {
        launch.start(&mut kids, i, &heard_tx)?;
    }
    let started = Instant::now();
    let d = options.duration;
    let kills = kill_plan(options.seed, options.kills, d / 20, d * 3 / 4);
    let mut next_kill = 0;
    let mut agent = Agent::new(
        "crash",
        options.seed,
        options.children,
        options.agent_messages,
        d / 50,
        d * 85 / 100,
    );
    let kinds = options.kinds();
    let planned = faults::plan(
        options.seed,
        d / 20,
        d * 4 / 5,
        options.total_faults(kinds.len()),
        &kinds,
        faults::Caps {
            invalidations: (options.children / 4).max(1),
            expiries: 0,
            outages: (d.as_secs() / 20).max(1) as usize,
        },
    );
    let mut faults = Schedule::new(
        planned,
        faults::Injector {
            control: &stage.control,
            proxy: &stage.proxy,
            transport: options.transport,
            poll_timeout: POLL_TIMEOUT,
            injected: BTreeMap::new(),
        },
    );
    let give_up = started + d + options.patience;

    loop {
        let now = Instant::now();
        // Kills due: at once, or armed for the child's next line.
        while let Some(kill) = kills
            .get(next_kill)
            .filter(|k| started + k.at <= now)
            .copied()
        {
            next_kill += 1;
            let live = kids.killable();
            if live.is_empty() {
                *report
                    .kills_by_how
                    .entry("skipped (no live child)".to_owned())
                    .or_default() += 1;
                continue;
            }
            let i = live[(kill.pick % live.len() as u64) as usize];
            match kill.how {
                How::AtRandom => {
                    let how = kill.how.name().to_owned();
                    kids.kill(i, &kill, how, &stage.control, &mut report).await;
                }
                How::AfterHanded | How::MidSend(_) => kids.arm(i, kill),
            }
        }
        for (i, kill, how) in kids.armed_due(now) {
            kids.kill(i, &kill, how, &stage.control, &mut report).await;
        }
        for i in kids.restarts_due(now) {
            report.restarts += 1;
            launch.start(&mut kids, i, &heard_tx)?;
        }
        faults.inject_due(started, now, |f| {
            faults::pick_among(f, &kids.sessions(f.aims_at_a_stream()))
        });
        agent.post_due(
            &stage.control,
            started,
            now,
            |i| kids.chat(i),
            &mut report.problems,
        );
        if kids.all_done() && agent.done() {
            break;
        }
        if now >= give_up {
            for i in kids.not_done() {
                report.problems.push(format!(
                    "child {i} was not done {} s after the run's end",
                    options.patience.as_secs()
                ));
            }
            break;
        }
        let wake = [
            kills.get(next_kill).map(|k| started + k.at),
            faults.next_due(started),
            kids.next_due(),
            agent.next_due(started, now, |i| kids.chat(i).is_some()),
        ]
        .into_iter()
        .flatten()
        .fold(give_up, Instant::min);
        tokio::select! {
            h = heard.recv() => {
                if let Some(h) = h {
                    kids.hear(h, &mut report).await;
                }
            }
            () = tokio::time::sleep_until(wake) => {}
        }
    }

    kids.kill_all().await;
    stage.control.clear_faults();
    report.faults = faults.counts();
    drop(faults);
    report.restart_to_connected = Spread::of(&kids.to_connected);
    report.restart_to_delivered = Spread::of(&kids.to_delivered);
    audit(&stage, &kids, &agent, &db, options, &mut report);
    stage.stop().await;
    report.seconds = wall.elapsed().as_secs_f64();
    Ok(report)
}

/// Both directions' verdict: each customer's numbers in the emulator's dialogs, and the
/// agent's numbers in its own table.
fn audit(
    stage: &Stage,
    kids: &Kids,
    agent: &Agent,
    db: &Path,
    options: &CrashOptions,
    report: &mut CrashReport,
) {
    let all: BTreeSet<u64> = (1..=options.messages).collect();
    for (i, kid) in kids.all.iter().enumerate() {
        report.handed += kid.handed.len() as u64;
        let dialog = crate::dialogs::customer_numbers(
            &stage.control,
            &customer_id(options.seed, i),
            i,
            "crash",
        );
        if dialog.engagements > 1 {
            report.problems.push(format!(
                "customer {i} has {} chats (one expected)",
                dialog.engagements
            ));
        }
        report
            .customer_to_agent
            .add(&all, &kid.handed, &dialog.numbers);
        match SqliteInbox::numbers(db, i) {
            Ok(taken) => report
                .agent_to_customer
                .add(agent.posted(i), &BTreeSet::new(), &taken),
            Err(e) => report
                .problems
                .push(format!("reading child {i}'s table: {e}")),
        }
    }
}
