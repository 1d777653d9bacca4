//! The failover soak (issue #15): two or more gateway processes ([`crate::gateway`]) drive
//! the sessions of several customers through one PostgreSQL database; the parent kills one
//! with SIGKILL mid-run, and the others take its sessions over once their leases lapse, while
//! the customers go on sending and the agent side goes on posting. See
//! `docs/reliability.md`, "Failover".
//!
//! The verdict is the crash soak's, per direction, and the takeover time per session of the
//! gateway killed: from the kill to the new owner's `connect` returning, and to the first of
//! the customer's messages it delivers.

mod fleet;
mod report;
mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::SoakError;
use crate::adapter::Transport;
use crate::agent::Agent;
use crate::child::APPKEY_VAR;
use crate::children::{self, Heard};
use crate::crash::{CRASH_FAULTS, own_exe};
use crate::faults::{self, Schedule};
use crate::gateway::{POSTGRES_VAR, TOKENS_VAR};
use crate::inbox::PostgresInbox;
use crate::stage::{POLL_TIMEOUT, Stage};
use crate::tally::Spread;
use fleet::Fleet;
pub use report::FailoverReport;
use schema::Schema;

/// The variable the PostgreSQL server's URL is read from when no URL is given (the one
/// `cargo xtask postgres` sets).
pub const POSTGRES_URL_VAR: &str = "AXP_TEST_POSTGRES_URL";

/// What a failover soak runs.
#[derive(Debug, Clone)]
pub struct FailoverOptions {
    /// Gateway processes (at least 2).
    pub gateways: usize,
    /// Customers, shared out between the gateways at start.
    pub customers: usize,
    /// Numbers each customer sends.
    pub messages: u64,
    /// Agent messages posted to each customer.
    pub agent_messages: u64,
    /// How long the sends and posts are spread over.
    pub duration: Duration,
    /// Gateways killed (one after the other, at seeded instants in the middle of the run;
    /// at least one is left).
    pub kills: usize,
    /// Faults of the emulator in all (the crash soak's kinds).
    pub faults: usize,
    /// The store's lease: a dead gateway's sessions are free this long after its last
    /// renewal.
    pub lease_ttl: Duration,
    /// How often a gateway looks for sessions nobody holds.
    pub poll: Duration,
    /// The PostgreSQL server; `None`: [`POSTGRES_URL_VAR`]. The run works in a schema of its
    /// own, dropped at the end.
    pub postgres_url: Option<String>,
    /// Seed of the schedules.
    pub seed: u64,
    /// The event-stream transport.
    pub transport: Transport,
    /// The binary to start as gateways (`chat-soak`); `None`: this process's own.
    pub exe: Option<PathBuf>,
    /// How long after `duration` the customers may take to finish before the run fails.
    pub patience: Duration,
}

impl Default for FailoverOptions {
    fn default() -> Self {
        Self {
            gateways: 2,
            customers: 6,
            messages: 30,
            agent_messages: 30,
            duration: Duration::from_secs(60),
            kills: 1,
            faults: 10,
            lease_ttl: Duration::from_secs(3),
            poll: Duration::from_secs(1),
            postgres_url: None,
            seed: 1,
            transport: Transport::LongPoll,
            exe: None,
            patience: Duration::from_secs(120),
        }
    }
}

impl FailoverOptions {
    fn check(&self) -> Result<(), SoakError> {
        let bad = |what: &str| Err(SoakError::Options(what.to_owned()));
        if self.gateways < 2 || self.gateways > 50 {
            return bad("gateways must be 2 to 50");
        }
        if self.kills == 0 || self.kills >= self.gateways {
            return bad("kills must be at least 1 and leave a gateway alive");
        }
        if self.customers == 0 || self.customers > 500 {
            return bad("customers must be 1 to 500");
        }
        if self.messages == 0 || self.messages > 100_000 || self.agent_messages > 100_000 {
            return bad("messages must be 1 to 100000");
        }
        if self.duration < Duration::from_secs(4) || self.duration > Duration::from_secs(86_400) {
            return bad("duration must be 4 s to 24 h");
        }
        if self.lease_ttl < Duration::from_secs(1) || self.poll < Duration::from_millis(100) {
            return bad("the lease must be at least 1 s and the poll at least 100 ms");
        }
        Ok(())
    }
}

/// The customer id of failover customer `i` (in its token, and in the emulator's chats).
fn customer_id(seed: u64, i: usize) -> String {
    format!("failover-{seed}-{i}")
}

/// The kill instants: one after the other in the middle of the run (from a quarter to two
/// thirds of it), each in a slot of its own so that its sessions are taken over before the
/// next kill.
fn kill_plan(seed: u64, kills: usize, duration: Duration) -> Vec<Duration> {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x0fa1_10e5);
    let slot = duration * 2 / 5 / kills.max(1) as u32;
    (0..kills)
        .map(|k| {
            let jitter = rng.u64(0..(slot.as_millis() as u64 / 2).max(1));
            duration / 4 + slot * k as u32 + Duration::from_millis(jitter)
        })
        .collect()
}

/// The gateway started as gateway `g`, driving `mine` at start.
#[allow(clippy::too_many_arguments)] // the command line, spelled out once
fn gateway_command(
    exe: &Path,
    options: &FailoverOptions,
    g: usize,
    stage: &Stage,
    tokens: &str,
    url: &str,
    pace: Duration,
) -> Command {
    let mine: Vec<String> = (0..options.customers)
        .filter(|i| i % options.gateways == g)
        .map(|i| i.to_string())
        .collect();
    let mut c = Command::new(exe);
    c.arg("gateway")
        .args(["--name", &format!("g{g}")])
        .args(["--customers", &mine.join(",")])
        .args(["--all-customers", &options.customers.to_string()])
        .args(["--transport", options.transport.name()])
        .args(["--base-url", &stage.proxy.base_url()])
        .args(["--integration-id", &stage.credentials.integration_id])
        .args(["--messages", &options.messages.to_string()])
        .args(["--agent-messages", &options.agent_messages.to_string()])
        .args(["--pace-ms", &pace.as_millis().to_string()])
        .args(["--seed", &options.seed.to_string()])
        .args(["--lease-ttl-ms", &options.lease_ttl.as_millis().to_string()])
        .args(["--poll-ms", &options.poll.as_millis().to_string()])
        // Secrets in the environment, not on the command line (`ps` shows that).
        .env(APPKEY_VAR, &stage.credentials.appkey)
        .env(TOKENS_VAR, tokens)
        .env(POSTGRES_VAR, url);
    c
}

/// Runs a failover soak and returns its figures.
pub async fn run_failover(options: &FailoverOptions) -> Result<FailoverReport, SoakError> {
    options.check()?;
    let wall = std::time::Instant::now();
    let admin = match &options.postgres_url {
        Some(url) => url.clone(),
        None => std::env::var(POSTGRES_URL_VAR).map_err(|_| {
            SoakError::Options(format!(
                "no PostgreSQL server: give --postgres-url or set {POSTGRES_URL_VAR} \
                 (`cargo xtask postgres -- …` starts a throwaway one)"
            ))
        })?,
    };
    let exe = own_exe(options.exe.as_ref())?;
    let seed = options.seed;
    let schema = tokio::task::spawn_blocking(move || {
        let schema = Schema::create(&admin, seed)?;
        // The store's tables and the gateways' table, before the gateways race to create them.
        chat_store::PostgresStore::connect(&schema.url).map_err(|e| e.to_string())?;
        PostgresInbox::connect(&schema.url).map_err(|e| e.to_string())?;
        Ok::<_, String>(schema)
    })
    .await
    .map_err(|e| SoakError::Start(e.to_string()))?
    .map_err(SoakError::Start)?;
    let stage = Stage::start().await?;
    let life = options.duration + options.patience + Duration::from_secs(3600);
    let tokens: String = (0..options.customers)
        .map(|i| format!("{i}={}", stage.token(&customer_id(seed, i), life)))
        .collect::<Vec<_>>()
        .join(",");
    let pace = options.duration.mul_f64(0.8) / options.messages.max(1) as u32;

    let (heard_tx, mut heard) = mpsc::unbounded_channel::<Heard>();
    let mut fleet = Fleet::new(options.customers);
    for g in 0..options.gateways {
        let command = gateway_command(&exe, options, g, &stage, &tokens, &schema.url, pace);
        let child = children::spawn(command, g, 1, true, heard_tx.clone())
            .map_err(|e| SoakError::Start(format!("gateway g{g}: {e}")))?;
        fleet.add(format!("g{g}"), child);
    }

    let mut report = FailoverReport {
        transport: options.transport.name().to_owned(),
        seed,
        gateways: options.gateways as u64,
        customers: options.customers as u64,
        messages: options.messages,
        agent_messages: options.agent_messages,
        lease_ttl_ms: options.lease_ttl.as_millis() as u64,
        poll_ms: options.poll.as_millis() as u64,
        bound_ms: (options.lease_ttl + options.poll).as_millis() as u64,
        ..FailoverReport::default()
    };
    let started = Instant::now();
    let d = options.duration;
    let kills = kill_plan(seed, options.kills, d);
    let mut next_kill = 0;
    let mut pick = fastrand::Rng::with_seed(seed ^ 0x9a7e);
    let mut agent = Agent::new(
        "failover",
        seed,
        options.customers,
        options.agent_messages,
        d / 50,
        d * 85 / 100,
    );
    let planned = faults::plan(
        seed,
        d / 20,
        d * 4 / 5,
        options.faults,
        &CRASH_FAULTS,
        faults::Caps {
            invalidations: 0,
            expiries: 0,
            outages: (d.as_secs() / 30).max(1) as usize,
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
        while kills.get(next_kill).is_some_and(|k| started + *k <= now) {
            next_kill += 1;
            let alive = fleet.killable();
            if alive.is_empty() {
                report.problems.push("no gateway to kill".to_owned());
                continue;
            }
            let g = alive[pick.usize(0..alive.len())];
            let held = fleet.kill(g).await;
            report.killed.push(format!(
                "{} at {:.1} s, holding {held} sessions",
                fleet.gates[g].name,
                (Instant::now() - started).as_secs_f64()
            ));
        }
        faults.inject_due(started, now, |f| {
            faults::pick_among(f, &fleet.sessions(f.aims_at_a_stream()))
        });
        agent.post_due(
            &stage.control,
            started,
            now,
            |i| fleet.chat(i),
            &mut report.problems,
        );
        if fleet.all_done() && agent.done() && next_kill == kills.len() {
            break;
        }
        if now >= give_up {
            for i in fleet.not_done() {
                report.problems.push(format!(
                    "customer {i} was not done {} s after the run's end",
                    options.patience.as_secs()
                ));
            }
            break;
        }
        let wake = [
            kills.get(next_kill).map(|k| started + *k),
            faults.next_due(started),
            agent.next_due(started, now, |i| fleet.chat(i).is_some()),
        ]
        .into_iter()
        .flatten()
        .fold(give_up, Instant::min);
        tokio::select! {
            h = heard.recv() => {
                if let Some(h) = h {
                    fleet.hear(h, &mut report).await;
                }
            }
            () = tokio::time::sleep_until(wake) => {}
        }
    }

    fleet.close(&mut report.problems).await;
    let lost = fleet.not_taken_over();
    if lost > 0 {
        report.problems.push(format!(
            "{lost} sessions of a killed gateway were never taken over"
        ));
    }
    stage.control.clear_faults();
    report.faults = faults.counts();
    drop(faults);
    report.takeover_to_connected = Spread::of(&fleet.to_connected);
    report.takeover_to_delivered = Spread::of(&fleet.to_delivered);
    audit(&stage, &fleet, &agent, &schema, options, &mut report).await?;
    stage.stop().await;
    drop(schema);
    report.seconds = wall.elapsed().as_secs_f64();
    Ok(report)
}

/// Both directions' verdict: each customer's numbers in the emulator's dialogs, and the
/// agent's numbers in the gateways' table.
async fn audit(
    stage: &Stage,
    fleet: &Fleet,
    agent: &Agent,
    schema: &Schema,
    options: &FailoverOptions,
    report: &mut FailoverReport,
) -> Result<(), SoakError> {
    let url = schema.url.clone();
    let count = fleet.custs.len();
    let taken = tokio::task::spawn_blocking(move || {
        (0..count)
            .map(|i| PostgresInbox::numbers(&url, i))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| SoakError::Start(e.to_string()))?;
    let all: BTreeSet<u64> = (1..=options.messages).collect();
    for ((i, c), taken) in fleet.custs.iter().enumerate().zip(taken) {
        report.handed += c.handed.len() as u64;
        let dialog = crate::dialogs::customer_numbers(
            &stage.control,
            &customer_id(options.seed, i),
            i,
            "failover",
        );
        if dialog.engagements > 1 {
            report.problems.push(format!(
                "customer {i} has {} chats (one expected)",
                dialog.engagements
            ));
        }
        report
            .customer_to_agent
            .add(&all, &c.handed, &dialog.numbers);
        match taken {
            Ok(taken) => report
                .agent_to_customer
                .add(agent.posted(i), &BTreeSet::new(), &taken),
            Err(e) => report
                .problems
                .push(format!("reading customer {i}'s table: {e}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kills_are_in_the_middle_of_the_run_in_slots_of_their_own() {
        let d = Duration::from_secs(100);
        let plan = kill_plan(3, 2, d);
        assert_eq!(plan.len(), 2);
        assert!(plan[0] >= Duration::from_secs(25) && plan[0] < Duration::from_secs(45));
        assert!(plan[1] >= Duration::from_secs(45) && plan[1] < Duration::from_secs(65));
        assert_eq!(plan, kill_plan(3, 2, d));
    }
}
