//! Holds 10,000 concurrent long polls against the emulator binary and measures how fast
//! events reach them, and the server's memory.
//!
//! The server runs as its own process (the `chat-emulator` binary) so that its resident
//! memory is measured alone and each side has its own file-descriptor budget. The pollers
//! speak raw HTTP/1.1 over keep-alive connections to keep the client side light.
//!
//! `cargo bench -p chat-emulator` — tune with `BENCH_POLLS` (default 10000) and
//! `BENCH_ROUNDS` (default 5).
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const CONTROL_KEY: &str = "bench-control-key";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Server {
    base: String,
    addr: String,
    integration: String,
    appkey: String,
    http: reqwest::Client,
}

impl Server {
    async fn control(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-emulator-control-key", CONTROL_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        r.json().await.unwrap_or(Value::Null)
    }

    async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/emulator/v1/stats", self.base))
            .header("x-emulator-control-key", CONTROL_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn chat_post(&self, token: &str, path: &str, body: Value) -> Value {
        let url = format!(
            "{}/sdk/digital/chat/v1/integrations/{}{path}",
            self.base, self.integration
        );
        self.http
            .post(url)
            .bearer_auth(token)
            .header("appkey", &self.appkey)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// One keep-alive connection polling one session until `stop`.
async fn poller(
    addr: String,
    path: String,
    token: String,
    appkey: String,
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let Ok(stream) = TcpStream::connect(&addr).await else {
        return;
    };
    let mut stream = BufReader::new(stream);
    let mut cursor: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        let query = cursor
            .as_ref()
            .map(|c| format!("?lastEventId={c}"))
            .unwrap_or_default();
        let request = format!(
            "GET {path}{query} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nappkey: {appkey}\r\n\r\n"
        );
        if stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .is_err()
        {
            return;
        }
        let mut length = 0usize;
        let mut status_ok = false;
        let mut line = String::new();
        loop {
            line.clear();
            match stream.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if trimmed.starts_with("HTTP/1.1 200") {
                status_ok = true;
            }
            if let Some(v) = trimmed.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if stream.read_exact(&mut body).await.is_err() || !status_ok {
            return;
        }
        let events: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
        if let Some(last) = events.last() {
            cursor = last["eventId"].as_str().map(str::to_owned);
            received.fetch_add(events.len() as u64, Ordering::Relaxed);
        }
    }
}

async fn wait_until(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; honour a name filter that is not ours by doing nothing.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"long_polls".contains(a.as_str()))
    {
        return;
    }
    let polls = env_number("BENCH_POLLS", 10_000);
    let rounds = env_number("BENCH_ROUNDS", 5);
    // BENCH_SERVER_WRAPPER runs the server under a profiler, e.g. `heaptrack`.
    let mut command = match std::env::var("BENCH_SERVER_WRAPPER") {
        Ok(wrapper) if !wrapper.is_empty() => {
            let mut c = tokio::process::Command::new(wrapper);
            c.arg(env!("CARGO_BIN_EXE_chat-emulator"));
            c
        }
        _ => tokio::process::Command::new(env!("CARGO_BIN_EXE_chat-emulator")),
    };
    let mut child = command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--agent",
            "off",
            "--hold-time-ms",
            "30000",
        ])
        .args(["--control-key", CONTROL_KEY])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let announcement: Value = loop {
        let line = lines.next_line().await.unwrap().unwrap();
        if line.starts_with('{') {
            break serde_json::from_str(&line).unwrap();
        }
    };
    let base = announcement["hostURL"].as_str().unwrap().to_owned();
    let server = Server {
        addr: base.trim_start_matches("http://").to_owned(),
        base,
        integration: announcement["integrationId"].as_str().unwrap().to_owned(),
        appkey: announcement["appkey"].as_str().unwrap().to_owned(),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap(),
    };
    let rss_start = server.stats().await["rssKib"].as_u64().unwrap_or(0);

    // 100 customers with polls/100 sessions each, one engagement per session.
    let setup = Instant::now();
    let customers = 100.min(polls);
    let mut tokens = Vec::new();
    for i in 0..customers {
        let r = server
            .control(
                "/emulator/v1/chat-tokens",
                json!({"customerId": format!("bench-{i}"), "ttlSeconds": 3600}),
            )
            .await;
        tokens.push(r["jwtToken"].as_str().unwrap().to_owned());
    }
    let sessions: Vec<(String, String)> = futures::stream::iter(0..polls)
        .map(|i| {
            let token = tokens[i % customers].clone();
            let server = &server;
            async move {
                let session = server
                    .chat_post(&token, "/sessions", json!({"clientType": "web"}))
                    .await;
                let sid = session["sessionId"].as_str().unwrap().to_owned();
                server
                    .chat_post(
                        &token,
                        "/engagements",
                        json!({"sessionId": sid, "engagementParameters": {}}),
                    )
                    .await;
                (token, sid)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let setup_time = setup.elapsed();
    let rss_setup = server.stats().await["rssKib"].as_u64().unwrap_or(0);

    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let connect = Instant::now();
    for (token, sid) in &sessions {
        let path = format!(
            "/sdk/digital/chat/v1/integrations/{}/sessions/{sid}/events",
            server.integration
        );
        tasks.push(tokio::spawn(poller(
            server.addr.clone(),
            path,
            token.clone(),
            server.appkey.clone(),
            received.clone(),
            stop.clone(),
        )));
    }
    // Every poller got its 2 queued events and is now held by the server.
    let target = 2 * polls as u64;
    wait_until("initial events", Duration::from_secs(120), async || {
        received.load(Ordering::Relaxed) >= target
    })
    .await;
    wait_until("held polls", Duration::from_secs(120), async || {
        server.stats().await["polls"].as_u64().unwrap_or(0) >= 2 * polls as u64
    })
    .await;
    let connect_time = connect.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_held = server.stats().await["rssKib"].as_u64().unwrap_or(0);

    // Rounds: one message into every engagement; each wakes one held poll.
    let mut round_times = Vec::new();
    let mut rss_peak = rss_held;
    for round in 0..rounds {
        let before = received.load(Ordering::Relaxed);
        let started = Instant::now();
        let r = server
            .control(
                "/emulator/v1/engagements:broadcast",
                json!({"participantType": "SYSTEM", "text": format!("tick {round}")}),
            )
            .await;
        assert_eq!(r["engagements"].as_u64(), Some(polls as u64));
        let elapsed = wait_until("round delivery", Duration::from_secs(120), async || {
            received.load(Ordering::Relaxed) >= before + polls as u64
        })
        .await;
        round_times.push(started.elapsed().max(elapsed));
        rss_peak = rss_peak.max(server.stats().await["rssKib"].as_u64().unwrap_or(0));
    }
    stop.store(true, Ordering::Relaxed);
    let total: Duration = round_times.iter().sum();
    let delivered = (rounds * polls) as f64;
    let stats = server.stats().await;
    println!("long_polls: {polls} concurrent long polls, {rounds} rounds of one event per poll");
    println!("  setup ({polls} sessions + engagements over HTTP): {setup_time:.2?}");
    println!("  all {polls} polls answered and re-held in: {connect_time:.2?}");
    for (i, t) in round_times.iter().enumerate() {
        println!(
            "  round {i}: {polls} events in {t:.2?} ({:.0} events/s)",
            polls as f64 / t.as_secs_f64()
        );
    }
    println!(
        "  overall: {:.0} events/s delivered ({} events in {total:.2?})",
        delivered / total.as_secs_f64(),
        delivered
    );
    println!(
        "  server RSS: {:.1} MiB at start, {:.1} MiB after creating {polls} sessions and engagements, \
         {:.1} MiB holding {polls} polls ({:.1} KiB per held poll and its connection), peak {:.1} MiB",
        rss_start as f64 / 1024.0,
        rss_setup as f64 / 1024.0,
        rss_held as f64 / 1024.0,
        (rss_held.saturating_sub(rss_setup)) as f64 / polls as f64,
        rss_peak as f64 / 1024.0
    );
    println!(
        "  server counters: polls={} events_delivered={}",
        stats["polls"], stats["eventsDelivered"]
    );
    // Interrupt the server itself (not a wrapper, which may not forward signals) so that it
    // shuts down cleanly and a profiler can write its data; then make sure the child is gone.
    if let Some(pid) = stats["pid"].as_u64() {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
        let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    }
    let _ = child.kill().await;
    for task in tasks {
        task.abort();
    }
}
