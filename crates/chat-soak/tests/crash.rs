//! The crash soak's short form, as CI runs it: customer processes of the `chat-soak` binary
//! killed with SIGKILL at seeded instants (at random, right after a send was handed over, in
//! the middle of a send) and started again from their SQLite store, with the emulator's
//! faults going on; nothing lost, duplicated or out of order either way, for chat-tokio and
//! chat-blocking.
#![allow(clippy::unwrap_used)] // test code: a failure is the test's

use std::process::Command;

use serde_json::Value;

/// Runs `chat-soak crash` with `adapter` and returns its figures.
fn crash(adapter: &str, seed: u64) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_chat-soak"))
        .args(["crash", "--adapter", adapter, "--json"])
        .args(["--children", "3", "--messages", "12", "--duration", "12"])
        .args(["--kills", "9", "--patience", "60"])
        .args(["--seed", &seed.to_string()])
        .output()
        .expect("chat-soak runs");
    let table = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{table}", out.status);
    let report: Value = serde_json::from_slice(&out.stdout).expect("the figures as JSON");
    check(&report, &table);
    report
}

fn check(report: &Value, table: &str) {
    let n = |path: &str| {
        report
            .pointer(path)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("{path} in the figures\n{table}"))
    };
    for way in ["customer_to_agent", "agent_to_customer"] {
        assert_eq!(n(&format!("/{way}/expected")), 3 * 12, "{way}\n{table}");
        assert_eq!(n(&format!("/{way}/received")), 3 * 12, "{way}\n{table}");
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
    assert!(n("/kills") >= 6, "{table}");
    assert_eq!(
        n("/restarts"),
        n("/kills"),
        "every child killed was started again\n{table}"
    );
    assert_eq!(n("/child_failures"), 0, "{table}");
    // (A send whose child was killed before `saved()` returned is delivered all the same, by
    // the next start, without a `handed` line.)
    assert!(n("/handed") >= 12, "{table}");
    assert!(n("/restart_to_delivered/count") >= 1, "{table}");
    let by_how = report
        .pointer("/kills_by_how")
        .and_then(Value::as_object)
        .unwrap();
    for how in ["at random", "after handed", "mid-send"] {
        assert!(
            by_how.keys().any(|k| k.starts_with(how)),
            "no kill {how}\n{table}"
        );
    }
    assert!(n("/faults/outage") >= 1, "{table}");
    assert_eq!(
        report.pointer("/problems"),
        Some(&Value::Array(vec![])),
        "{table}"
    );
}

#[test]
fn tokio_children_killed_and_restarted_lose_and_repeat_nothing() {
    crash("tokio", 21);
}

#[test]
fn blocking_children_killed_and_restarted_lose_and_repeat_nothing() {
    crash("blocking", 22);
}
