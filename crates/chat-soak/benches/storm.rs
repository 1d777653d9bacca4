//! The reconnect storm (issue #13 item 4): 1,000 chat-tokio clients long-polling the
//! in-process emulator lose it at the same instant (the soak's proxy cuts every connection
//! and refuses new ones) for 20 s; then it comes back. Printed: the reconnection attempts per
//! 100 ms window after recovery, the busiest window as a share of the clients, and the time
//! until every client is connected again. Two runs in one: default settings (each client's
//! jitter seeded from the operating system), then the baseline, one fixed `jitter_seed`
//! shared by every client (lockstep). Acceptance: with defaults, no 100 ms window after
//! recovery holds more than 10 % of the clients' attempts.
//!
//! `cargo bench -p chat-soak --bench storm` or `cargo xtask bench storm`; knobs
//! `STORM_CLIENTS` (1000), `STORM_OUTAGE_SECS` (20), `STORM_SEED` (the baseline's shared
//! seed, 0x5eed). Exits with 1 if the defaults break the 10 % bound or a client did not
//! come back. Figures: `docs/benchmarks.md`, "Reconnect storm".
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

use std::process::ExitCode;
use std::time::Duration;

use chat_soak::storm::{self, StormOptions, StormReport};

/// The acceptance bound: the busiest window's share of the clients, with defaults.
const BOUND: f64 = 0.10;

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| {
            let v = v.trim();
            match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => v.parse().ok(),
            }
        })
        .unwrap_or(default)
}

/// Raises the soft limit of open files to the hard limit: each client costs about ten
/// descriptors in this one process (its poll and REST connections, both ends of the
/// proxy's pipes, the emulator's side).
#[cfg(unix)]
fn raise_open_files(needed: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    if limit.current != limit.maximum {
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            eprintln!("storm: could not raise the open-files limit: {e}");
        }
    }
    let now = getrlimit(Resource::Nofile).current;
    eprintln!(
        "storm: open-files limit {} (about {needed} wanted)",
        now.map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
    );
    if now.is_some_and(|n| n < needed) {
        eprintln!("storm: the limit is low for this crowd; raise `ulimit -n` (hard) first");
    }
}

#[cfg(not(unix))]
fn raise_open_files(_needed: u64) {}

fn main() -> ExitCode {
    let clients = knob("STORM_CLIENTS", 1000) as usize;
    let outage = Duration::from_secs(knob("STORM_OUTAGE_SECS", 20));
    let seed = knob("STORM_SEED", 0x5eed);
    raise_open_files(clients as u64 * 10 + 256);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("storm: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut reports: Vec<StormReport> = Vec::new();
    for jitter_seed in [None, Some(seed)] {
        let options = StormOptions {
            clients,
            outage,
            jitter_seed,
            ..StormOptions::default()
        };
        let label = jitter_seed.map_or_else(
            || "default jitter (seeded from the OS per client)".to_owned(),
            |s| format!("baseline: one fixed jitter seed {s:#x} for all"),
        );
        eprintln!(
            "storm: {clients} clients, {} s outage, {label}",
            outage.as_secs()
        );
        match runtime.block_on(storm::run(&options)) {
            Ok(report) => {
                println!("\n{label}:\n{}", storm::histogram(&report, 5));
                reports.push(report);
            }
            Err(e) => {
                eprintln!("storm: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("{}", storm::table(&reports));
    let defaults = &reports[0];
    let within = defaults.busiest_share() <= BOUND;
    println!(
        "acceptance (defaults: no 100 ms window after recovery over {:.0} % of the clients): {} \
         (busiest {:.1} %; the fixed-seed baseline: {:.1} %)",
        BOUND * 100.0,
        if within { "met" } else { "NOT met" },
        defaults.busiest_share() * 100.0,
        reports[1].busiest_share() * 100.0
    );
    let complete = reports.iter().all(StormReport::complete);
    if !complete {
        println!("not every client lost the server, came back and caught up: see the table");
    }
    if within && complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
