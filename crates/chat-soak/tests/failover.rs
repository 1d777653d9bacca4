//! The failover soak's short form: two gateway processes of the `chat-soak` binary on one
//! PostgreSQL server (`AXP_TEST_POSTGRES_URL`; `cargo xtask postgres -- cargo test -p
//! chat-soak --test failover` starts a throwaway one), one killed with SIGKILL mid-run; the
//! other takes its sessions over within the lease and a poll, and nothing is lost,
//! duplicated or out of order either way.
//!
//! Without the variable the test says NOT RUN on stderr and passes, unless
//! `AXP_REQUIRE_POSTGRES=1` (as in CI), which makes it fail.
#![allow(clippy::unwrap_used)] // test code: a failure is the test's

use std::io::Write as _;
use std::process::Command;

use serde_json::Value;

fn server_url() -> Option<String> {
    if let Ok(url) = std::env::var("AXP_TEST_POSTGRES_URL") {
        return Some(url);
    }
    let why = "need AXP_TEST_POSTGRES_URL; run `cargo xtask postgres -- cargo test -p chat-soak \
               --test failover`, or `cargo xtask postgres` and export the line it prints";
    let required = std::env::var("AXP_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "AXP_REQUIRE_POSTGRES=1, but the failover soak {why}"
    );
    // Straight to the process's stderr, past the test harness's capture: loud even when the
    // test passes.
    let _ = writeln!(std::io::stderr(), "NOT RUN: failover soak: {why}");
    None
}

#[test]
fn a_killed_gateways_sessions_are_taken_over_losing_and_repeating_nothing() {
    let Some(url) = server_url() else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_chat-soak"))
        .args(["failover", "--json", "--postgres-url", &url])
        .args(["--gateways", "2", "--customers", "4", "--messages", "12"])
        .args(["--duration", "16", "--lease-ttl", "3", "--faults", "8"])
        .args(["--patience", "60", "--seed", "31"])
        .output()
        .expect("chat-soak runs");
    let table = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{table}", out.status);
    let report: Value = serde_json::from_slice(&out.stdout).expect("the figures as JSON");
    let n = |path: &str| {
        report
            .pointer(path)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("{path} in the figures\n{table}"))
    };
    for way in ["customer_to_agent", "agent_to_customer"] {
        assert_eq!(n(&format!("/{way}/expected")), 4 * 12, "{way}\n{table}");
        assert_eq!(n(&format!("/{way}/received")), 4 * 12, "{way}\n{table}");
        for bad in [
            "lost",
            "lost_after_handed",
            "duplicated",
            "out_of_order",
            "unexpected",
        ] {
            assert_eq!(n(&format!("/{way}/{bad}")), 0, "{way} {bad}\n{table}");
        }
    }
    assert_eq!(
        report
            .pointer("/killed")
            .and_then(Value::as_array)
            .map(Vec::len),
        Some(1)
    );
    assert!(n("/sessions_taken_over") >= 1, "{table}");
    // The killed gateway's sessions were taken over within the lease and a poll, and the
    // connect (slow in a debug build on a busy machine: up to 5 s allowed for it).
    let bound = n("/bound_ms") + 5_000;
    assert!(n("/takeover_to_connected/max_ms") <= bound, "{table}");
    assert_eq!(
        report.pointer("/problems"),
        Some(&Value::Array(vec![])),
        "{table}"
    );
}
