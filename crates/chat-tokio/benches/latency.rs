//! chat-tokio against raw baselines, on the same emulator (a child process, so that the
//! client's memory is measured alone):
//!
//! 1. agent-message-to-app latency, p50 and p99, per transport, against a bare reqwest
//!    long-poll loop and a bare tokio-tungstenite reader;
//! 2. messages per second through one session (draining a backlog), against the same raw
//!    readers; and sequential sends;
//! 3. N concurrent sessions (default 10,000) with one chat each: client memory per session,
//!    and the time for one broadcast message to reach all of them;
//! 4. the same over TLS (default 1,000 sessions): builder defaults against an HTTP client
//!    shared by hand.
//!
//! `cargo bench -p chat-tokio` — tune with `BENCH_SESSIONS` (10000), `BENCH_SAMPLES` (300),
//! `BENCH_BACKLOG` (5000), `BENCH_TLS_SESSIONS` (1000); `BENCH_PART=tls` runs part 4 only.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::collapsible_match,
    missing_docs,
    unreachable_pub
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chat_tokio::{
    Client, ClientBuilder, Config, Event, EventStream, EventTransport, Http1LongPollTransport,
    Request, StreamTransport,
};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const CONTROL_KEY: &str = "bench-control-key";

/// The readers of the latency and throughput parts, in their order: a chat-tokio client of
/// this kind, or `None` for the raw baseline (1: reqwest long-poll loop, 3: tokio-tungstenite).
const READERS: [Option<Kind>; 5] = [
    Some(Kind::LongPoll),
    None,
    Some(Kind::WebSocket),
    None,
    Some(Kind::LongPollReqwest),
];

/// How a chat-tokio client of the bench carries its event stream. Every client shares one
/// `reqwest::Client` for its REST calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The default long poll: `Http1LongPollTransport`, one lean connection per session.
    LongPoll,
    /// Long polling through the shared reqwest client (`LongPollTransport`, the default
    /// before `Http1LongPollTransport`).
    LongPollReqwest,
    WebSocket,
    /// An event transport that never answers: the client alone, without any connection.
    Parked,
    /// Over TLS, builder defaults: only `.tls_config(roots)` (the emulator's self-signed
    /// certificate), no HTTP client given.
    TlsDefaults,
    /// Over TLS, an HTTP client shared by hand: `.http_client(shared)` with the lean long
    /// poll on the same roots.
    TlsShared,
    /// Over TLS, what builder defaults did before issue #14: a reqwest client of its own per
    /// chat client, and the lean long poll.
    TlsOwn,
}

impl Kind {
    fn apply(self, builder: ClientBuilder) -> ClientBuilder {
        match self {
            Kind::LongPoll => builder.event_transport(Box::new(Http1LongPollTransport::new())),
            Kind::LongPollReqwest => builder.stream_transport(StreamTransport::LongPoll),
            Kind::WebSocket => builder.stream_transport(StreamTransport::WebSocket),
            Kind::Parked => builder.event_transport(Box::new(Parked)),
            // Set up in `many_clients`, which holds the TLS configuration.
            Kind::TlsDefaults | Kind::TlsShared | Kind::TlsOwn => builder,
        }
    }
}

struct Parked;

#[async_trait::async_trait]
impl EventTransport for Parked {
    async fn poll(&mut self, _request: Request) -> chat_tokio::PollOutcome {
        futures::future::pending().await
    }
}
const ROLE: &str = "CHAT_TOKIO_BENCH_ROLE";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The child: an emulator (over TLS with its self-signed certificate if `tls`) that prints
/// its announcement and runs until stdin closes.
async fn emulator_role(tls: bool) {
    let emu = chat_emulator::Emulator::builder()
        .hold_time(Duration::from_secs(20))
        .agent(chat_emulator::AgentMode::Off)
        .control_key(CONTROL_KEY)
        .tls(tls)
        .start()
        .await
        .unwrap();
    let mut announcement: Value = serde_json::from_str(&emu.announcement_json()).unwrap();
    if let Some(pem) = emu.ca_cert_pem() {
        announcement["caCertPem"] = json!(pem);
    }
    println!("{announcement}");
    let mut line = String::new();
    let _ = BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await;
    emu.shutdown().await;
}

struct Server {
    base: String,
    integration: String,
    appkey: String,
    http: reqwest::Client,
    /// The roots that trust a TLS emulator's certificate.
    tls: Option<Arc<chat_tokio::TlsClientConfig>>,
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

    async fn token(&self, customer: &str) -> String {
        let v = self
            .control(
                "/emulator/v1/chat-tokens",
                json!({"customerId": customer, "ttlSeconds": 3600}),
            )
            .await;
        v["jwtToken"].as_str().unwrap().to_owned()
    }

    async fn post_agent(&self, engagement: &str, text: &str) {
        self.control(
            &format!("/emulator/v1/engagements/{engagement}/messages"),
            json!({"participantType": "AGENT", "text": text}),
        )
        .await;
    }

    fn chat_url(&self, path: &str) -> String {
        format!(
            "{}/sdk/digital/chat/v1/integrations/{}{path}",
            self.base, self.integration
        )
    }

    async fn chat_post(&self, token: &str, path: &str, body: Value) -> Value {
        self.http
            .post(self.chat_url(path))
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

    /// A raw session with one engagement: (token, session id, engagement id).
    async fn raw_session(&self, customer: &str) -> (String, String, String) {
        let token = self.token(customer).await;
        let s = self
            .chat_post(&token, "/sessions", json!({"clientType": "web"}))
            .await;
        let sid = s["sessionId"].as_str().unwrap().to_owned();
        let e = self
            .chat_post(
                &token,
                "/engagements",
                json!({"sessionId": sid, "engagementParameters": {}}),
            )
            .await;
        (token, sid, e["engagementId"].as_str().unwrap().to_owned())
    }

    async fn client(&self, customer: &str, transport: Kind) -> (Client, EventStream) {
        self.client_with(customer, transport, self.http.clone(), 1024)
            .await
    }

    async fn client_with(
        &self,
        customer: &str,
        transport: Kind,
        http: reqwest::Client,
        capacity: usize,
    ) -> (Client, EventStream) {
        let builder = Client::builder(&self.base, &self.integration, &self.appkey)
            .token(self.token(customer).await)
            .http_client(http);
        transport
            .apply(builder)
            .event_capacity(capacity)
            .config(Config {
                idle_timeout: None,
                ..Config::default()
            })
            .connect()
            .await
            .unwrap()
    }
}

/// Texts of MESSAGE events in a JSON array.
fn message_texts(body: &[u8]) -> (Vec<String>, Option<String>) {
    let v: Vec<Value> = serde_json::from_slice(body).unwrap_or_default();
    let last = v
        .last()
        .and_then(|e| e["eventId"].as_str().map(str::to_owned));
    let texts = v
        .iter()
        .filter(|e| e["eventType"] == "MESSAGE")
        .filter_map(|e| {
            e["message"]["body"]["elementText"]["text"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    (texts, last)
}

/// A bare reqwest long-poll loop, reporting each message text.
fn raw_long_poll(server: &Server, token: String, sid: &str, out: mpsc::UnboundedSender<String>) {
    let http = server.http.clone();
    let url = server.chat_url(&format!("/sessions/{sid}/events"));
    let appkey = server.appkey.clone();
    tokio::spawn(async move {
        let mut cursor: Option<String> = None;
        loop {
            let u = match &cursor {
                Some(c) => format!("{url}?lastEventId={c}"),
                None => url.clone(),
            };
            let Ok(r) = http
                .get(u)
                .bearer_auth(&token)
                .header("appkey", &appkey)
                .send()
                .await
            else {
                return;
            };
            let Ok(body) = r.bytes().await else { return };
            let (texts, last) = message_texts(&body);
            cursor = last;
            for t in texts {
                if out.send(t).is_err() {
                    return;
                }
            }
        }
    });
}

/// A bare tokio-tungstenite reader, acknowledging each frame.
async fn raw_websocket(
    server: &Server,
    token: String,
    sid: &str,
    out: mpsc::UnboundedSender<String>,
) {
    let url = server
        .chat_url(&format!("/sessions/{sid}/events"))
        .replacen("http", "ws", 1);
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    request
        .headers_mut()
        .insert("appkey", server.appkey.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    tokio::spawn(async move {
        while let Some(Ok(m)) = ws.next().await {
            if let WsMessage::Text(t) = m {
                let (texts, last) = message_texts(t.as_bytes());
                if let Some(last) = last {
                    let ack = json!({"lastEventId": last}).to_string();
                    if ws.send(WsMessage::text(ack)).await.is_err() {
                        return;
                    }
                }
                for t in texts {
                    if out.send(t).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

async fn until_text(events: &mut EventStream, text: &str) {
    while let Some(e) = events.recv().await {
        if let Event::MessageArrived(m) = &e.event {
            if m.text() == Some(text) {
                return;
            }
        }
    }
    panic!("stream ended");
}

async fn until_raw(rx: &mut mpsc::UnboundedReceiver<String>, text: &str) {
    while let Some(t) = rx.recv().await {
        if t == text {
            return;
        }
    }
    panic!("raw reader ended");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn summary(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

enum Reader {
    Client(EventStream),
    Raw(mpsc::UnboundedReceiver<String>),
}

impl Reader {
    async fn until(&mut self, text: &str) {
        match self {
            Self::Client(e) => until_text(e, text).await,
            Self::Raw(rx) => until_raw(rx, text).await,
        }
    }
}

async fn latency(server: &Server, samples: usize) {
    println!("\n## Agent message to app: latency ({samples} messages each, interleaved)\n");
    let names = [
        "chat-tokio long polling (Http1LongPollTransport, default)",
        "raw reqwest long-poll loop",
        "chat-tokio WebSocket",
        "raw tokio-tungstenite reader",
        "chat-tokio long polling over reqwest (LongPollTransport, before)",
    ];
    let mut readers = Vec::new();
    let mut engagements = Vec::new();
    let mut keep = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let customer = format!("latency-{i}");
        match READERS[i] {
            Some(t) => {
                let (client, events) = server.client(&customer, t).await;
                let chat = client.create_engagement().await.unwrap();
                while !matches!(
                    events.recv().await.unwrap().event,
                    Event::EngagementActive(_)
                ) {}
                engagements.push(chat.id().as_str().to_owned());
                readers.push(Reader::Client(events));
                keep.push(client);
            }
            None => {
                let (token, sid, eid) = server.raw_session(&customer).await;
                let (tx, rx) = mpsc::unbounded_channel();
                if i == 1 {
                    raw_long_poll(server, token, &sid, tx);
                } else {
                    raw_websocket(server, token, &sid, tx).await;
                }
                engagements.push(eid);
                readers.push(Reader::Raw(rx));
            }
        }
        let _ = name;
    }
    let mut results: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    for round in 0..samples + 10 {
        for (i, reader) in readers.iter_mut().enumerate() {
            let text = format!("lat-{round}");
            let t0 = Instant::now();
            server.post_agent(&engagements[i], &text).await;
            reader.until(&text).await;
            if round >= 10 {
                results[i].push(t0.elapsed());
            }
        }
    }
    println!("| reader | p50 | p99 |");
    println!("| --- | --- | --- |");
    let mut p50s = Vec::new();
    for (name, r) in names.iter().zip(results) {
        let (p50, p99) = summary(r);
        p50s.push(p50);
        println!("| {name} | {} | {} |", us(p50), us(p99));
    }
    println!(
        "\np50 ratio chat-tokio / raw: long polling {:.2}× (over reqwest {:.2}×), WebSocket {:.2}× (target ≤ 1.2×)",
        p50s[0].as_secs_f64() / p50s[1].as_secs_f64(),
        p50s[4].as_secs_f64() / p50s[1].as_secs_f64(),
        p50s[2].as_secs_f64() / p50s[3].as_secs_f64()
    );
    for c in keep {
        c.shutdown(None).await.unwrap();
    }
}

async fn throughput(server: &Server, backlog: usize) {
    println!("\n## One session: draining a backlog of {backlog} agent messages\n");
    println!("| reader | messages/s |");
    println!("| --- | --- |");
    for (i, name) in [
        "chat-tokio long polling (Http1LongPollTransport, default)",
        "raw reqwest long-poll loop",
        "chat-tokio WebSocket",
        "raw tokio-tungstenite reader",
        "chat-tokio long polling over reqwest (LongPollTransport, before)",
    ]
    .iter()
    .enumerate()
    {
        let customer = format!("throughput-{i}");
        // Queue the backlog first; then start reading and time the drain.
        let (mut reader, eid, client, raw) = match READERS[i] {
            Some(t) => {
                // A small buffer: the client stops polling (backpressure) while the backlog
                // is queued on the server.
                let (client, events) = server
                    .client_with(&customer, t, server.http.clone(), 16)
                    .await;
                let chat = client.create_engagement().await.unwrap();
                while !matches!(
                    events.recv().await.unwrap().event,
                    Event::EngagementActive(_)
                ) {}
                (
                    Reader::Client(events),
                    chat.id().as_str().to_owned(),
                    Some(client),
                    None,
                )
            }
            None => {
                let (token, sid, eid) = server.raw_session(&customer).await;
                (
                    Reader::Raw(mpsc::unbounded_channel().1),
                    eid,
                    None,
                    Some((token, sid)),
                )
            }
        };
        let fill = Arc::new(Semaphore::new(32));
        let mut posts = Vec::new();
        for n in 0..backlog {
            let permit = Arc::clone(&fill).acquire_owned().await.unwrap();
            let url = format!("{}/emulator/v1/engagements/{eid}/messages", server.base);
            let http = server.http.clone();
            posts.push(tokio::spawn(async move {
                let _ = http
                    .post(url)
                    .header("x-emulator-control-key", CONTROL_KEY)
                    .json(&json!({"participantType": "AGENT", "text": format!("t{n}")}))
                    .send()
                    .await;
                drop(permit);
            }));
        }
        for p in posts {
            p.await.unwrap();
        }
        let t0 = Instant::now();
        if let Some((token, sid)) = raw {
            let (tx, rx) = mpsc::unbounded_channel();
            if i == 1 {
                raw_long_poll(server, token, &sid, tx);
            } else {
                raw_websocket(server, token, &sid, tx).await;
            }
            reader = Reader::Raw(rx);
        }
        let mut got = 0;
        match &mut reader {
            Reader::Client(events) => {
                while got < backlog {
                    if let Event::MessageArrived(_) = events.recv().await.unwrap().event {
                        got += 1;
                    }
                }
            }
            Reader::Raw(rx) => {
                while got < backlog {
                    rx.recv().await.unwrap();
                    got += 1;
                }
            }
        }
        let rate = backlog as f64 / t0.elapsed().as_secs_f64();
        println!("| {name} | {rate:.0} |");
        if let Some(c) = client {
            c.shutdown(None).await.unwrap();
        }
    }

    let (client, events) = server.client("sender", Kind::LongPoll).await;
    let chat = client.create_engagement().await.unwrap();
    while !matches!(
        events.recv().await.unwrap().event,
        Event::EngagementActive(_)
    ) {}
    let n = 500;
    let t0 = Instant::now();
    for i in 0..n {
        chat.send_message(&format!("s{i}")).await.unwrap();
    }
    let sequential = n as f64 / t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let sends: Vec<_> = (0..n)
        .map(|i| {
            let chat = chat.clone();
            tokio::spawn(async move { chat.send_message(&format!("c{i}")).await.unwrap() })
        })
        .collect();
    for s in sends {
        s.await.unwrap();
    }
    let concurrent = n as f64 / t0.elapsed().as_secs_f64();
    println!(
        "\nSending from one session: {sequential:.0} messages/s one at a time, {concurrent:.0} messages/s with {n} in flight."
    );
    client.shutdown(None).await.unwrap();
}

/// Tokens for `sessions` customers named `prefix-i`, 64 requests at a time.
async fn tokens(server: &Server, prefix: &str, sessions: usize) -> Vec<String> {
    let gate = Arc::new(Semaphore::new(64));
    let mut jobs = Vec::new();
    for i in 0..sessions {
        let permit = Arc::clone(&gate).acquire_owned().await.unwrap();
        let http = server.http.clone();
        let url = format!("{}/emulator/v1/chat-tokens", server.base);
        let customer = format!("{prefix}-{i}");
        jobs.push(tokio::spawn(async move {
            let v: Value = http
                .post(url)
                .header("x-emulator-control-key", CONTROL_KEY)
                .json(&json!({"customerId": customer, "ttlSeconds": 3600}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            drop(permit);
            v["jwtToken"].as_str().unwrap().to_owned()
        }));
    }
    let mut out = Vec::with_capacity(sessions);
    for j in jobs {
        out.push(j.await.unwrap());
    }
    out
}

/// Child process: `sessions` chat-tokio clients with one chat each. Prints
/// `setup_s rss_before rss_after fanout_ms broadcast_call_ms`.
async fn many_clients(server: Server, sessions: usize, transport: Kind) {
    let tokens = tokens(&server, "many", sessions).await;
    let gate = Arc::new(Semaphore::new(64));
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(256);
    let http = match &server.tls {
        Some(tls) => http.use_preconfigured_tls(chat_tokio::TlsClientConfig::clone(tls)),
        None => http,
    }
    .build()
    .unwrap();
    let before = rss_kib();
    let received = Arc::new(AtomicUsize::new(0));
    let active = Arc::new(AtomicUsize::new(0));
    let all = Arc::new(Notify::new());
    let t0 = Instant::now();
    let mut clients = Vec::with_capacity(sessions);
    let mut connecting = Vec::new();
    for token in tokens {
        let permit = Arc::clone(&gate).acquire_owned().await.unwrap();
        let builder =
            Client::builder(&server.base, &server.integration, &server.appkey).token(token);
        let builder = match (transport, &server.tls) {
            (Kind::TlsDefaults, Some(tls)) => builder.tls_config(Arc::clone(tls)),
            (Kind::TlsShared, Some(tls)) => builder
                .tls_config(Arc::clone(tls))
                .http_client(http.clone())
                .event_transport(Box::new(Http1LongPollTransport::with_tls_config(
                    Arc::clone(tls),
                ))),
            (Kind::TlsOwn, Some(tls)) => builder
                .tls_config(Arc::clone(tls))
                .http_transport(Arc::new(
                    chat_tokio::ReqwestTransport::with_tls_config(tls).unwrap(),
                ))
                .event_transport(Box::new(Http1LongPollTransport::with_tls_config(
                    Arc::clone(tls),
                ))),
            _ => builder.http_client(http.clone()),
        };
        let builder = transport.apply(builder).config(Config {
            idle_timeout: None,
            ..Config::default()
        });
        let received = Arc::clone(&received);
        let active = Arc::clone(&active);
        let all = Arc::clone(&all);
        connecting.push(tokio::spawn(async move {
            let (client, events) = builder.connect().await.unwrap();
            client.create_engagement().await.unwrap();
            if transport == Kind::Parked {
                // No event will come: the engagement's creation is as far as it goes.
                active.fetch_add(1, Ordering::SeqCst);
            }
            drop(permit);
            tokio::spawn(async move {
                while let Some(e) = events.recv().await {
                    match e.event {
                        Event::EngagementActive(_) => {
                            active.fetch_add(1, Ordering::SeqCst);
                        }
                        Event::MessageArrived(_) => {
                            if received.fetch_add(1, Ordering::SeqCst) + 1 == sessions {
                                all.notify_one();
                            }
                        }
                        _ => {}
                    }
                }
            });
            client
        }));
    }
    for c in connecting {
        clients.push(c.await.unwrap());
    }
    while active.load(Ordering::SeqCst) < sessions {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let setup = t0.elapsed();
    // Let the first polls settle into held ones.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib();
    if transport == Kind::Parked {
        println!("{} {before} {after} NaN NaN", setup.as_secs_f64());
        drop(clients);
        return;
    }
    let t0 = Instant::now();
    server
        .control(
            "/emulator/v1/engagements:broadcast",
            json!({"participantType": "AGENT", "text": "to everyone"}),
        )
        .await;
    let call = t0.elapsed();
    tokio::time::timeout(Duration::from_secs(120), all.notified())
        .await
        .unwrap();
    let fanout = t0.elapsed();
    println!(
        "{} {before} {after} {} {}",
        setup.as_secs_f64(),
        fanout.as_secs_f64() * 1e3,
        call.as_secs_f64() * 1e3
    );
    drop(clients);
}

/// Child process: `sessions` bare reqwest long-poll loops. Prints
/// `setup_s rss_before rss_after fanout_ms broadcast_call_ms`.
async fn many_raw(server: Server, sessions: usize) {
    let gate = Arc::new(Semaphore::new(64));
    let mut raw = Vec::with_capacity(sessions);
    let mut jobs = Vec::new();
    let t0 = Instant::now();
    for i in 0..sessions {
        let permit = Arc::clone(&gate).acquire_owned().await.unwrap();
        let s = Server {
            base: server.base.clone(),
            integration: server.integration.clone(),
            appkey: server.appkey.clone(),
            http: server.http.clone(),
            tls: None,
        };
        jobs.push(tokio::spawn(async move {
            let r = s.raw_session(&format!("raw-many-{i}")).await;
            drop(permit);
            r
        }));
    }
    for j in jobs {
        raw.push(j.await.unwrap());
    }
    let setup = t0.elapsed();
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let before = rss_kib();
    let raw_server = Server {
        base: server.base.clone(),
        integration: server.integration.clone(),
        appkey: server.appkey.clone(),
        http,
        tls: None,
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    for (token, sid, _) in &raw {
        raw_long_poll(&raw_server, token.clone(), sid, tx.clone());
    }
    drop(tx);
    drop(raw);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib();
    let t0 = Instant::now();
    server
        .control(
            "/emulator/v1/engagements:broadcast",
            json!({"participantType": "AGENT", "text": "raw broadcast"}),
        )
        .await;
    let call = t0.elapsed();
    let mut got = 0;
    while got < sessions {
        if rx.recv().await.unwrap() == "raw broadcast" {
            got += 1;
        }
    }
    let fanout = t0.elapsed();
    println!(
        "{} {before} {after} {} {}",
        setup.as_secs_f64(),
        fanout.as_secs_f64() * 1e3,
        call.as_secs_f64() * 1e3
    );
}

/// Runs a role in a fresh child process (so that memory figures start clean) and returns
/// its result line.
async fn in_child(role: &str, announcement: &str, sessions: usize) -> Vec<f64> {
    let out = tokio::process::Command::new(std::env::current_exe().unwrap())
        .env(ROLE, role)
        .env("CHAT_TOKIO_BENCH_SERVER", announcement)
        .env("BENCH_SESSIONS", sessions.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .map(|v| v.parse().unwrap_or(f64::NAN))
        .collect()
}

async fn many_sessions(announcement: &str, sessions: usize) {
    println!("\n## {sessions} concurrent sessions, one chat each\n");
    // The first child also pays for the emulator's own growth (10,000 more sessions and
    // held polls on the same cores): the reference column goes first, not the one measured.
    let columns = [
        (
            "chat-tokio long polling over reqwest (before)",
            "many-client-reqwest",
        ),
        ("chat-tokio long polling (default)", "many-client"),
        ("chat-tokio WebSocket", "many-client-ws"),
        ("raw reqwest long-poll loops", "many-raw"),
        (
            "chat-tokio, event transport parked (no connection)",
            "many-client-parked",
        ),
    ];
    let mut runs = Vec::new();
    for (_, role) in columns {
        runs.push(in_child(role, announcement, sessions).await);
    }
    let per = |v: &[f64]| (v[2] - v[1]) / sessions as f64;
    let header: Vec<&str> = columns.iter().map(|c| c.0).collect();
    println!("| figure | {} |", header.join(" | "));
    println!("|{}", " --- |".repeat(columns.len() + 1));
    let row = |name: &str, cell: &dyn Fn(&[f64]) -> String| {
        let cells: Vec<String> = runs.iter().map(|r| cell(r)).collect();
        println!("| {name} | {} |", cells.join(" | "));
    };
    row(
        "memory per session (RSS growth / sessions, fresh process)",
        &|v| format!("{:.1} KiB", per(v)),
    );
    row("RSS before → with all sessions connected", &|v| {
        format!("{:.0} → {:.0} KiB", v[1], v[2])
    });
    row(
        "set-up, 64 at a time (client: connect + create + active; raw: create session + engagement)",
        &|v| format!("{:.1} s", v[0]),
    );
    // A parked client never receives the broadcast: its times are NaN, shown as "—".
    let ms = |x: f64| {
        if x.is_nan() {
            "—".to_owned()
        } else {
            format!("{x:.0} ms")
        }
    };
    row(
        &format!("one broadcast message reaching all {sessions}"),
        &|v| ms(v[3]),
    );
    row("of which the broadcast call itself", &|v| ms(v[4]));
}

fn server_from(announcement: &Value) -> Server {
    let tls = announcement["caCertPem"]
        .as_str()
        .map(|pem| chat_tokio::tls_config_with_roots(pem.as_bytes()).unwrap());
    let http = reqwest::Client::builder().tcp_nodelay(true);
    let http = match &tls {
        Some(tls) => http.use_preconfigured_tls(chat_tokio::TlsClientConfig::clone(tls)),
        None => http,
    };
    Server {
        base: announcement["hostURL"].as_str().unwrap().to_owned(),
        integration: announcement["integrationId"].as_str().unwrap().to_owned(),
        appkey: announcement["appkey"].as_str().unwrap().to_owned(),
        http: http.build().unwrap(),
        tls,
    }
}

/// Memory per session over TLS (issue #14, "Defaults that scale"): builder defaults against
/// an HTTP client shared by hand, each in a fresh child, against a TLS emulator of its own.
async fn tls_sessions(sessions: usize) {
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .env(ROLE, "emulator-tls")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let announcement = lines.next_line().await.unwrap().unwrap();
    println!("\n## {sessions} concurrent sessions over TLS, one chat each\n");
    let columns = [
        ("HTTP client shared by hand", "many-client-tls-shared"),
        ("**builder defaults**", "many-client-tls-defaults"),
        (
            "a reqwest client per chat client (the defaults before issue #14)",
            "many-client-tls-own",
        ),
    ];
    let mut runs = Vec::new();
    for (_, role) in columns {
        runs.push(in_child(role, &announcement, sessions).await);
    }
    let header: Vec<&str> = columns.iter().map(|c| c.0).collect();
    println!("| figure | {} |", header.join(" | "));
    println!("|{}", " --- |".repeat(columns.len() + 1));
    let cells = |f: &dyn Fn(&[f64]) -> String| -> String {
        runs.iter().map(|r| f(r)).collect::<Vec<_>>().join(" | ")
    };
    println!(
        "| memory per session (RSS growth / sessions, fresh process) | {} |",
        cells(&|v| format!("{:.1} KiB", (v[2] - v[1]) / sessions as f64))
    );
    println!(
        "| RSS before → with all sessions connected | {} |",
        cells(&|v| format!("{:.0} → {:.0} KiB", v[1], v[2]))
    );
    println!(
        "| one broadcast message reaching all {sessions} | {} |",
        cells(&|v| format!("{:.0} ms", v[3]))
    );
    drop(child.stdin.take());
    let _ = child.wait().await;
}

fn main() {
    let role = std::env::var(ROLE).unwrap_or_default();
    if !role.is_empty() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let sessions = env_number("BENCH_SESSIONS", 10_000);
        let server = std::env::var("CHAT_TOKIO_BENCH_SERVER")
            .ok()
            .map(|a| server_from(&serde_json::from_str(&a).unwrap()));
        match role.as_str() {
            "emulator" => rt.block_on(emulator_role(false)),
            "emulator-tls" => rt.block_on(emulator_role(true)),
            "many-client-tls-defaults" => {
                rt.block_on(many_clients(server.unwrap(), sessions, Kind::TlsDefaults))
            }
            "many-client-tls-own" => {
                rt.block_on(many_clients(server.unwrap(), sessions, Kind::TlsOwn))
            }
            "many-client-tls-shared" => {
                rt.block_on(many_clients(server.unwrap(), sessions, Kind::TlsShared))
            }
            "many-client" => rt.block_on(many_clients(server.unwrap(), sessions, Kind::LongPoll)),
            "many-client-reqwest" => rt.block_on(many_clients(
                server.unwrap(),
                sessions,
                Kind::LongPollReqwest,
            )),
            "many-client-ws" => {
                rt.block_on(many_clients(server.unwrap(), sessions, Kind::WebSocket))
            }
            "many-client-parked" => {
                rt.block_on(many_clients(server.unwrap(), sessions, Kind::Parked))
            }
            "many-raw" => rt.block_on(many_raw(server.unwrap(), sessions)),
            _ => panic!("unknown role {role}"),
        }
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if std::env::var("BENCH_PART").as_deref() == Ok("tls") {
        rt.block_on(tls_sessions(env_number("BENCH_TLS_SESSIONS", 1_000)));
        return;
    }
    rt.block_on(async {
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .env(ROLE, "emulator")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next_line().await.unwrap().unwrap();
        let server = server_from(&serde_json::from_str(&line).unwrap());
        println!("# chat-tokio benchmarks (emulator in a child process, loopback)");
        latency(&server, env_number("BENCH_SAMPLES", 300)).await;
        throughput(&server, env_number("BENCH_BACKLOG", 5000)).await;
        many_sessions(&line, env_number("BENCH_SESSIONS", 10_000)).await;
        drop(child.stdin.take());
        let _ = child.wait().await;
        tls_sessions(env_number("BENCH_TLS_SESSIONS", 1_000)).await;
    });
}
