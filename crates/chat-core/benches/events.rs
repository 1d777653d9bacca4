//! How much the core adds to decoding: batches of server `MESSAGE` events fed through a
//! session (decode, de-duplicate, order, dispatch, next poll), next to the plain `serde_json`
//! parse of the same bytes into the same wire types.
//!
//! `cargo bench -p chat-core` prints criterion's figures, then one summary line per batch
//! size with ns per event for both and their ratio (target: the core within 1.3× the parse).
#![allow(missing_docs, clippy::disallowed_methods, clippy::print_stdout, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use chat_core::wire::ServerEvent;
use chat_core::{AppKey, Config, InitParams, Output, RequestId, RequestKind, Session, Token};
use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use serde_json::json;

const HOST: &str = "https://axp.test";
const INTEGRATION: &str = "123e4567-e89b-12d3-a456-426614174000";
const ENGAGEMENT: &str = "e0000000-0000-4000-8000-000000000001";
const DIALOG: &str = "d0000000-0000-4000-8000-000000000001";

fn batch(size: u64) -> Vec<u8> {
    let events: Vec<_> = (1..=size)
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
    let create = s.create_engagement(Default::default(), now).unwrap();
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

fn through_core(bytes: &[u8], (mut s, poll, now): (Session, RequestId, Instant)) -> Session {
    s.handle_response(now, poll, 200, bytes);
    black_box(drain(&mut s));
    s
}

fn parse_only(bytes: &[u8]) -> Vec<ServerEvent> {
    serde_json::from_slice::<Vec<ServerEvent>>(bytes).unwrap()
}

fn bench(c: &mut Criterion) {
    for size in [1u64, 50] {
        let bytes = batch(size);
        let mut group = c.benchmark_group(format!("message_batch_{size}"));
        group.throughput(Throughput::Elements(size));
        group.bench_function("serde_json_parse", |b| b.iter(|| parse_only(black_box(&bytes))));
        group.bench_function("serde_json_value", |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&bytes)).unwrap())
        });
        group.bench_function("chat_core", |b| {
            b.iter_batched(ready_session, |s| through_core(black_box(&bytes), s), BatchSize::SmallInput)
        });
        group.finish();
    }
}

/// Same work, timed by hand so that one line can compare both in the same run.
fn summary() {
    println!("\nsummary (median of 15 rounds):");
    for size in [1u64, 50] {
        let bytes = batch(size);
        let rounds = 15;
        let per_round = (20_000 / size).max(200) as usize;
        let mut core = Vec::new();
        let mut parse = Vec::new();
        for _ in 0..rounds {
            let sessions: Vec<_> = (0..per_round).map(|_| ready_session()).collect();
            let start = Instant::now();
            for s in sessions {
                black_box(through_core(&bytes, s));
            }
            core.push(start.elapsed());
            let start = Instant::now();
            for _ in 0..per_round {
                black_box(parse_only(&bytes));
            }
            parse.push(start.elapsed());
        }
        core.sort();
        parse.sort();
        let events = (per_round as u64 * size) as f64;
        let core_ns = core[rounds / 2].as_nanos() as f64 / events;
        let parse_ns = parse[rounds / 2].as_nanos() as f64 / events;
        println!(
            "  batch of {size:>2}: chat-core {core_ns:8.0} ns/event   serde_json parse {parse_ns:8.0} ns/event   ratio {:.2}x",
            core_ns / parse_ns
        );
    }
    let _ = SystemTime::now();
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
