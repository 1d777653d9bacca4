//! `cargo xtask fuzz [--target T] [--seconds S]`: runs the cargo-fuzz targets of `fuzz/`, one
//! after the other, each for `S` seconds (60 by default), and reports per target the
//! executions run and the findings (crash, timeout and leak inputs libFuzzer wrote).
//!
//! Installs cargo-fuzz first if it is missing. Needs the nightly toolchain (`rustup toolchain
//! install nightly`). The fuzz project has its own workspace and target directory
//! (`fuzz/target`); corpora grow in `fuzz/corpus/<target>`, findings land in
//! `fuzz/artifacts/<target>`, both git-ignored.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The targets, in the order they run.
pub(crate) const TARGETS: [&str; 5] = ["token", "decode", "http1", "session", "emulator"];

/// libFuzzer options of a target beyond the common ones. The emulator target runs about a
/// hundred inputs a second (a fresh emulator each); libFuzzer's default length control would
/// keep its inputs to a few bytes for the whole run, so it starts at the full length.
fn options(target: &str) -> &'static [&'static str] {
    match target {
        "emulator" => &["-len_control=0", "-max_len=2048"],
        _ => &[],
    }
}

/// What one target's run came to.
struct Outcome {
    target: &'static str,
    executions: Option<u64>,
    seconds: u64,
    corpus: usize,
    findings: Vec<String>,
}

pub(crate) fn fuzz(args: &[String]) -> Result<(), String> {
    let (targets, seconds) = parse(args)?;
    ensure_cargo_fuzz()?;
    let mut outcomes = Vec::new();
    for target in targets {
        outcomes.push(run(target, seconds)?);
    }
    eprintln!();
    eprintln!(
        "{:<10} {:>8} {:>14} {:>10} {:>8}  findings",
        "target", "seconds", "executions", "exec/s", "corpus"
    );
    for o in &outcomes {
        let execs = o.executions.map_or("?".to_owned(), |n| n.to_string());
        let rate = o
            .executions
            .map_or("?".to_owned(), |n| (n / o.seconds.max(1)).to_string());
        eprintln!(
            "{:<10} {:>8} {:>14} {:>10} {:>8}  {}",
            o.target,
            o.seconds,
            execs,
            rate,
            o.corpus,
            if o.findings.is_empty() {
                "none".to_owned()
            } else {
                o.findings.join(", ")
            }
        );
    }
    let found: usize = outcomes.iter().map(|o| o.findings.len()).sum();
    if found == 0 {
        Ok(())
    } else {
        Err(format!("fuzzing: {found} finding(s)"))
    }
}

fn parse(args: &[String]) -> Result<(Vec<&'static str>, u64), String> {
    let usage = || "usage: cargo xtask fuzz [--target token|decode|session|emulator] [--seconds S]";
    let mut targets: Vec<&'static str> = Vec::new();
    let mut seconds = 60;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--target" => {
                let name = args.next().ok_or_else(|| usage().to_owned())?;
                let target = TARGETS
                    .iter()
                    .find(|t| *t == name)
                    .ok_or_else(|| format!("no fuzz target `{name}`; {}", usage()))?;
                targets.push(target);
            }
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|s| *s > 0)
                    .ok_or_else(|| usage().to_owned())?;
            }
            _ => return Err(usage().to_owned()),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    Ok((targets, seconds))
}

/// A command for the fuzz project: the rustup `cargo` (so that `+nightly` works even when
/// xtask runs under another toolchain), without the variables that would point it at the
/// main workspace's toolchain or target directory.
fn cargo_nightly() -> Command {
    let mut command = Command::new("cargo");
    command
        .arg("+nightly")
        .current_dir(super::root().join("fuzz"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO");
    command
}

fn ensure_cargo_fuzz() -> Result<(), String> {
    let present = cargo_nightly()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    eprintln!("$ cargo install cargo-fuzz --locked");
    let status = Command::new("cargo")
        .args(["install", "cargo-fuzz", "--locked"])
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .map_err(|e| format!("cargo install cargo-fuzz ({e})"))?;
    if status.success() {
        Ok(())
    } else {
        Err("cargo install cargo-fuzz --locked".to_owned())
    }
}

/// Runs one target, echoing libFuzzer's output, and reads its final statistics.
fn run(target: &'static str, seconds: u64) -> Result<Outcome, String> {
    let line = format!(
        "cargo +nightly fuzz run {target} -- -max_total_time={seconds} -timeout=20 -print_final_stats=1 {}",
        options(target).join(" ")
    );
    eprintln!("$ (cd fuzz && {line})");
    let started = Instant::now();
    let mut child = cargo_nightly()
        .args(["fuzz", "run", target, "--"])
        .arg(format!("-max_total_time={seconds}"))
        .args(["-timeout=20", "-print_final_stats=1"])
        .args(options(target))
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{line} ({e})"))?;
    let mut executions = None;
    let mut findings = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for text in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{text}");
            if let Some(n) = text.strip_prefix("stat::number_of_executed_units:") {
                executions = n.trim().parse().ok();
            }
            // "Test unit written to fuzz/artifacts/<target>/crash-…"
            if let Some(path) = text.split("Test unit written to ").nth(1) {
                findings.push(path.trim().to_owned());
            }
        }
    }
    let status = child.wait().map_err(|e| format!("{line} ({e})"))?;
    if !status.success() && findings.is_empty() {
        // A build error, or libFuzzer stopped without writing an input.
        return Err(line);
    }
    let corpus = std::fs::read_dir(super::root().join("fuzz/corpus").join(target))
        .map(|d| d.count())
        .unwrap_or(0);
    Ok(Outcome {
        target,
        executions,
        seconds: started.elapsed().as_secs(),
        corpus,
        findings,
    })
}
