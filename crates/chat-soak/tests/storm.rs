//! A small reconnect storm, as CI can afford it: a crowd loses the server through a real
//! outage (connections cut, new ones refused), every client reports it, comes back when the
//! server does and shows the message posted meanwhile. The figures of the 1,000-client storm
//! are the benchmark's (`benches/storm.rs`), not a test's.

use std::time::Duration;

use chat_soak::storm::{self, StormOptions};

fn options(jitter_seed: Option<u64>) -> StormOptions {
    StormOptions {
        clients: 12,
        outage: Duration::from_secs(2),
        jitter_seed,
        ..StormOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_of_a_crowd_comes_back_after_an_outage() {
    let report = storm::run(&options(None)).await.expect("the storm runs");
    let table = storm::table(std::slice::from_ref(&report));
    assert!(report.complete(), "{table}");
    // Every held poll was cut when the server went away.
    assert!(report.connections_cut >= 12, "{table}");
    // Each client made at least one attempt after the recovery (the one that succeeded).
    assert!(report.attempts_after.len() >= 12, "{table}");
    assert!(report.all_back().is_some(), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_jitter_seed_gives_the_whole_crowd_one_schedule() {
    let report = storm::run(&options(Some(0x5eed)))
        .await
        .expect("the storm runs");
    let table = storm::table(std::slice::from_ref(&report));
    assert!(report.complete(), "{table}");
    // One schedule: every client made as many refused attempts as every other.
    assert_eq!(report.attempts_during % 12, 0, "{table}");
    assert_eq!(report.attempts_after.len(), 12, "{table}");
}
