//! How much the core adds to decoding: batches of server `MESSAGE` events fed through a
//! session (decode, de-duplicate, order, dispatch, next poll), next to the plain `serde_json`
//! parse of the same bytes into the same wire types.
//!
//! `cargo bench -p chat-core` prints criterion's figures, then one summary line per batch
//! size with ns per event for both and their ratio (target: the core within 1.3× the parse).
//! `cargo bench -p chat-core -- --summary` prints only the summary.
#![allow(
    missing_docs,
    clippy::disallowed_methods,
    clippy::print_stdout,
    clippy::unwrap_used
)]

use std::hint::black_box;
use std::time::{Duration, Instant, UNIX_EPOCH};

use base64::Engine as _;
use chat_core::wire::ServerEvent;
use chat_core::{AppKey, Config, InitParams, Output, RequestId, RequestKind, Session, Token};
use criterion::{Criterion, Throughput, criterion_group};
use serde_json::json;

const HOST: &str = "https://axp.test";
const INTEGRATION: &str = "123e4567-e89b-12d3-a456-426614174000";
const ENGAGEMENT: &str = "e0000000-0000-4000-8000-000000000001";
const DIALOG: &str = "d0000000-0000-4000-8000-000000000001";

/// A batch of `size` agent messages, the first with index `first`.
fn batch(first: u64, size: u64) -> Vec<u8> {
    let events: Vec<_> = (first..first + size)
        .map(|i| {
            json!({"eventId": format!("ev-{i:08}"), "eventType": "MESSAGE",
                "engagementId": ENGAGEMENT, "dialogId": DIALOG, "eventDate": "2026-11-23T10:00:02.123Z",
                "sessionId": "5e55e55e-0000-4000-8000-000000000001",
                "message": {"messageId": format!("00000000-0000-4000-8000-{i:012}"), "messageIndex": i,
                    "receivedAt": "2026-11-23T10:00:02.100Z", "lastUpdatedAt": "2026-11-23T10:00:02.100Z",
                    "body": {"elementType": "TEXT", "elementText": {
                        "text": "Thank you for waiting. I can see your order; it left our warehouse this morning.",
                        "textFormat": "PLAINTEXT"}}},
                "participant": {"participantId": "a0000000-0000-4000-8000-000000000001",
                    "participantType": "AGENT", "displayName": "Alex"}})
        })
        .collect();
    serde_json::to_vec(&events).unwrap()
}

/// Consecutive batches, so that every message is new to a session fed with them in order.
fn batches(first: u64, count: u64, size: u64) -> Vec<Vec<u8>> {
    (0..count).map(|k| batch(first + k * size, size)).collect()
}

/// A session with an active engagement and a poll in flight; returns the poll's id.
fn ready_session() -> (Session, RequestId, Instant) {
    let now = Instant::now();
    let wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let payload = base64::engine::general_purpose::STANDARD.encode(r#"{"exp":1800003600}"#);
    let token = Token::parse(&format!("jwt.e30.{payload}.sig")).unwrap();
    let params = InitParams::new(HOST, INTEGRATION, token, AppKey::new("k")).unwrap();
    let mut s = Session::new(params, Config::default()).unwrap();
    let init = s.init(now, wall).unwrap();
    drain(&mut s);
    let session = json!({"sessionId": "5e55e55e-0000-4000-8000-000000000001", "engagements": []});
    s.handle_response(now, init, 201, session.to_string().as_bytes());
    let create = s.create_engagement(now, Default::default()).unwrap();
    drain(&mut s);
    let engagement = json!({"engagementId": ENGAGEMENT, "dialogs": [{"dialogId": DIALOG, "dialogStatus": "PENDING", "participants": []}]});
    s.handle_response(now, create, 201, engagement.to_string().as_bytes());
    let poll = drain(&mut s).unwrap();
    let active = json!([{"eventId": "ev-0", "eventType": "PARTICIPANT_ADDED", "engagementId": ENGAGEMENT, "dialogId": DIALOG,
        "participant": {"participantId": "c", "participantType": "CUSTOMER"}}]);
    s.handle_response(now, poll, 200, active.to_string().as_bytes());
    let poll = drain(&mut s).unwrap();
    (s, poll, now)
}

/// Drains the outputs, as an adapter must; returns the poll request among them, if any.
fn drain(s: &mut Session) -> Option<RequestId> {
    let mut poll = None;
    loop {
        match s.poll_output() {
            Output::Transmit(r) => {
                if matches!(r.kind, RequestKind::Poll { .. }) {
                    poll = Some(r.id);
                }
            }
            Output::Event(e) => {
                black_box(e);
            }
            Output::Wait(_) => return poll,
            other => {
                black_box(other);
            }
        }
    }
}

/// Feeds `iters` consecutive batches to `feed`, built in untimed chunks; returns the time
/// spent in `feed` alone.
fn timed(iters: u64, size: u64, mut feed: impl FnMut(&[u8])) -> Duration {
    let (mut done, mut total) = (0, Duration::ZERO);
    while done < iters {
        let chunk = (iters - done).min(2048);
        let input = batches(1 + done * size, chunk, size);
        let start = Instant::now();
        for bytes in &input {
            feed(black_box(bytes));
        }
        total += start.elapsed();
        done += chunk;
    }
    total
}

/// Through one long-lived session (steady state: an active engagement and a poll in flight),
/// draining all output after each batch.
fn core_time(iters: u64, size: u64) -> Duration {
    let (mut session, mut poll, now) = ready_session();
    timed(iters, size, |bytes| {
        session.handle_response(now, poll, 200, bytes);
        poll = drain(&mut session).unwrap();
    })
}

/// The same batches parsed into the same wire types, and nothing else.
fn parse_time(iters: u64, size: u64) -> Duration {
    timed(iters, size, |bytes| {
        black_box(serde_json::from_slice::<Vec<ServerEvent>>(bytes).unwrap());
    })
}

fn bench(c: &mut Criterion) {
    for size in [1u64, 10, 50] {
        let mut group = c.benchmark_group(format!("message_batch_{size}"));
        group.throughput(Throughput::Elements(size));
        group.bench_function("serde_json_parse", |b| {
            b.iter_custom(|iters| parse_time(iters, size))
        });
        group.bench_function("chat_core", |b| {
            b.iter_custom(|iters| core_time(iters, size))
        });
        group.finish();
    }
}

/// The same work timed in alternating rounds, for one comparable line per batch size.
fn summary() {
    println!("\nsummary: ns per MESSAGE event, median of 15 alternating rounds");
    for size in [1u64, 10, 50] {
        let rounds = 15;
        let iters = (20_000 / size).max(400);
        let (mut core, mut parse) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            core.push(core_time(iters, size));
            parse.push(parse_time(iters, size));
        }
        core.sort();
        parse.sort();
        let events = (iters * size) as f64;
        let core_ns = core[rounds / 2].as_nanos() as f64 / events;
        let parse_ns = parse[rounds / 2].as_nanos() as f64 / events;
        println!(
            "  batch of {size:>2}: chat-core {core_ns:6.0} ns   serde_json parse alone {parse_ns:6.0} ns   ratio {:.2}x",
            core_ns / parse_ns
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    if !std::env::args().any(|a| a == "--summary") {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    summary();
}
