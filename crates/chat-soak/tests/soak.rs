//! The short, seeded soak CI runs: every fault kind, both transports, each of the three
//! adapters (tokio, blocking, smol); nothing lost, duplicated or out of order,
//! and every send ended as delivered or failed with its error.

use std::sync::Arc;
use std::time::Duration;

use chat_soak::{Adapter, FaultKind, Options, RunReport, Transport};

fn options(seed: u64) -> Options {
    Options {
        sessions: 6,
        messages: 12,
        duration: Duration::from_secs(10),
        seed,
        // Enough that every kind comes at least once, and some twice.
        faults: Some(24),
        drain: Duration::from_secs(20),
        ..Options::default()
    }
}

fn check(report: &RunReport) {
    let table = chat_soak::table(std::slice::from_ref(report));
    assert!(report.clean(), "{table}");
    assert_eq!(report.sessions_failed, 0, "{table}");
    for kind in FaultKind::ALL {
        assert!(report.injected(kind) >= 1, "{kind} never injected\n{table}");
    }
    let c = &report.customer_to_agent;
    assert_eq!(c.sent, 6 * 12, "{table}");
    // Every send ended: delivered (stored, else it would be lost) or failed with its error.
    let failed: u64 = report.failed_sends.values().sum();
    assert_eq!(failed, c.failed, "a send never answered\n{table}");
    assert_eq!(report.agent_to_customer.sent, 6 * 12, "{table}");
    assert!(report.reconnections >= 1, "{table}");
    assert!(report.token_refreshes >= 1, "{table}");
    assert!(report.recoveries >= 1, "{table}");
}

async fn soak(adapter: Arc<dyn Adapter>, transport: Transport, seed: u64) {
    let report = chat_soak::run(&options(seed), transport, adapter)
        .await
        .expect("the soak runs");
    check(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_long_poll() {
    soak(Arc::new(chat_soak::TokioAdapter), Transport::LongPoll, 11).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_websocket() {
    soak(Arc::new(chat_soak::TokioAdapter), Transport::WebSocket, 12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_long_poll() {
    soak(
        Arc::new(chat_soak::BlockingAdapter),
        Transport::LongPoll,
        13,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_websocket() {
    soak(
        Arc::new(chat_soak::BlockingAdapter),
        Transport::WebSocket,
        14,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smol_long_poll() {
    soak(Arc::new(chat_soak::SmolAdapter), Transport::LongPoll, 15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smol_websocket() {
    soak(Arc::new(chat_soak::SmolAdapter), Transport::WebSocket, 16).await;
}
