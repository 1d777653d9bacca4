//! Contributor tasks, run as `cargo xtask <task>`:
//!
//! - `ci`: what CI checks: formatting, clippy with `-D warnings`, the tests, and rustdoc with
//!   `-D warnings`.
//! - `bench [storm]`: every benchmark of the workspace, one after the other, with their
//!   figures; `bench storm` runs only the reconnect storm (`crates/chat-soak/benches/storm.rs`).
//! - `doc`: the documentation, as CI builds it.
//! - `fuzz [--target T] [--seconds S]`: the cargo-fuzz targets of `fuzz/`, S seconds each,
//!   with the executions and findings per target (see `fuzz.rs`).
//! - `postgres [-- COMMAND...]`: a throwaway PostgreSQL server for chat-store's PostgreSQL
//!   tests; runs `COMMAND` with `AXP_TEST_POSTGRES_URL` set, or waits for Ctrl-C (see
//!   `postgres.rs`).
//! - `soak [--sessions N] [--messages M] [--duration SECS] [--seed S] [--transport T]
//!   [--adapter A] [--json]`: the chaos soak of `crates/chat-soak` in release, with its table
//!   of lost, duplicated and out-of-order messages; fails unless all are 0 (see `soak.rs`).
//!   `soak crash [...]` and `soak failover [...]`: the crash soak (customer processes killed
//!   with SIGKILL) and the failover soak (gateway processes on one PostgreSQL, one killed).

#![allow(clippy::print_stderr)] // a command-line tool: its output is stderr

use std::env;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

mod fuzz;
mod postgres;
mod soak;

fn main() -> ExitCode {
    let task = env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "ci" => ci(),
        "bench" => bench(env::args().nth(2).as_deref()),
        "doc" => doc(),
        "fuzz" => fuzz::fuzz(&env::args().skip(2).collect::<Vec<_>>()),
        "postgres" => postgres::postgres(&env::args().skip(2).collect::<Vec<_>>()),
        "soak" => soak::soak(&env::args().skip(2).collect::<Vec<_>>()),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci|bench [storm]|doc|fuzz [--target T] [--seconds S]|postgres [-- COMMAND...]|soak [--sessions N] \
                 [--messages M] [--duration SECS] [--seed S] [--transport long-poll|websocket|both] \
                 [--adapter tokio|blocking|smol|all] [--json]|soak crash [--children N] [--kills K] \
                 [--adapter tokio|blocking] ...|soak failover [--gateways G] [--customers C] ...>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(step) => {
            eprintln!("xtask: `{step}` failed");
            ExitCode::FAILURE
        }
    }
}

fn ci() -> Result<(), String> {
    cargo(&["fmt", "--all", "--", "--check"], &[])?;
    cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    cargo(&["test", "--workspace"], &[])?;
    doc()
}

fn doc() -> Result<(), String> {
    cargo(
        &["doc", "--workspace", "--no-deps", "--all-features"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )
}

fn bench(only: Option<&str>) -> Result<(), String> {
    match only {
        None => {}
        // The reconnect storm alone (about a minute): defaults against a shared fixed seed.
        Some("storm") => return cargo(&["bench", "-p", "chat-soak", "--bench", "storm"], &[]),
        Some(other) => return Err(format!("xtask bench {other}: no such benchmark (storm)")),
    }
    // Each crate's benchmarks compare against their baseline in the same run.
    for package in [
        "chat-core",
        "chat-emulator",
        "token-client",
        "chat-tokio",
        "chat-soak",
    ] {
        if root().join("crates").join(package).join("benches").is_dir() {
            cargo(&["bench", "-p", package], &[])?;
        }
    }
    Ok(())
}

fn cargo(args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    let line = format!("cargo {}", args.join(" "));
    eprintln!("$ {line}");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(root())
        .status()
        .map_err(|e| format!("{line} ({e})"))?;
    if status.success() { Ok(()) } else { Err(line) }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}
