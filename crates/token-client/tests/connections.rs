//! The reference server's connection limits: the header-read timeout, the idle timeout and the
//! connection cap close idle and slow connections, never a request in flight, and real requests
//! are still answered when idle or slow connections fill the cap.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use token_client::server::{ConnectionLimits, ServerConfig, TrustClientClaims, router, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The upper bound on anything awaited here: a hang fails instead of blocking the run.
const BOUND: Duration = Duration::from_secs(5);

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }
}

async fn start(emu: &chat_emulator::Emulator, limits: ConnectionLimits) -> Server {
    let (client, _) = common::client(emu);
    let app = router(client, Arc::new(TrustClientClaims), &[]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, app, limits, async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        stop: Some(stop),
        task,
    }
}

fn limits(header: Duration, idle: Duration, max: usize) -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: header,
        idle_timeout: idle,
        max_connections: max,
    }
}

/// A client that opens a new connection for each request.
fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// Reads until the server closes the connection (EOF or reset); returns what it sent.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(BOUND, stream.read(&mut buf)).await {
            Err(_) => panic!("the connection was not closed within {BOUND:?}"),
            Ok(Ok(0) | Err(_)) => return seen,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends one request and reads its whole response (by `content-length`); returns the status.
async fn exchange(stream: &mut TcpStream, request: &str) -> u16 {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if data.len() >= end + 4 + length {
                return head[9..12].parse().unwrap();
            }
        }
        let n = tokio::time::timeout(BOUND, stream.read(&mut buf))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "closed before the response: {data:?}");
        data.extend_from_slice(&buf[..n]);
    }
}

const INTEGRATION: &str = "GET /v1/getIntegration HTTP/1.1\r\nHost: backend\r\n\r\n";

/// True while the peer has neither closed the connection nor sent anything.
fn still_open(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 1];
    matches!(stream.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[tokio::test]
async fn half_a_request_head_or_nothing_is_closed_after_the_header_read_timeout() {
    let emu = common::emulator().await;
    let server = start(
        &emu,
        limits(Duration::from_millis(300), Duration::from_secs(30), 64),
    )
    .await;
    let started = Instant::now();
    let mut silent = server.connect().await;
    let mut slow = server.connect().await;
    slow.write_all(b"POST /v1/getJWT HTTP/1.1\r\nHost: backend\r\nContent-")
        .await
        .unwrap();
    assert_eq!(until_closed(&mut slow).await, b"");
    assert_eq!(until_closed(&mut silent).await, b"");
    assert!(started.elapsed() >= Duration::from_millis(280));
    let mut prompt = server.connect().await;
    assert_eq!(exchange(&mut prompt, INTEGRATION).await, 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let emu = common::emulator().await;
    let server = start(
        &emu,
        limits(Duration::from_secs(30), Duration::from_millis(300), 64),
    )
    .await;
    let mut stream = server.connect().await;
    assert_eq!(exchange(&mut stream, INTEGRATION).await, 200);
    assert_eq!(exchange(&mut stream, INTEGRATION).await, 200, "kept alive");
    let idle = Instant::now();
    assert_eq!(until_closed(&mut stream).await, b"");
    assert!(idle.elapsed() >= Duration::from_millis(280));
    emu.shutdown().await;
}

#[tokio::test]
async fn a_slow_get_jwt_outlasting_both_timeouts_is_answered() {
    let emu = common::emulator().await;
    let server = start(
        &emu,
        limits(Duration::from_millis(200), Duration::from_millis(200), 64),
    )
    .await;
    emu.control().delay_responses(
        chat_emulator::Route::TokenApi,
        Some(Duration::from_millis(700)),
    );
    let started = Instant::now();
    let response = tokio::time::timeout(
        BOUND,
        fresh_connections()
            .post(server.url("/v1/getJWT"))
            .json(&json!({"customerId": "slow-1", "verifiedCustomer": false}))
            .send(),
    )
    .await
    .expect("answered in time")
    .unwrap();
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(650));
    emu.shutdown().await;
}

#[tokio::test]
async fn a_real_request_is_answered_when_idle_and_slow_connections_fill_the_cap() {
    let emu = common::emulator().await;
    // Timeouts far beyond the test: only the cap's eviction can make room.
    let server = start(
        &emu,
        limits(Duration::from_secs(60), Duration::from_secs(60), 8),
    )
    .await;
    let mut hogs = Vec::new();
    for _ in 0..4 {
        let mut idle = server.connect().await;
        assert_eq!(exchange(&mut idle, INTEGRATION).await, 200);
        hogs.push(idle);
    }
    for _ in 0..4 {
        let mut slow = server.connect().await;
        slow.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        hogs.push(slow);
    }
    let response = tokio::time::timeout(
        BOUND,
        fresh_connections()
            .post(server.url("/v1/getJWT"))
            .json(&json!({"customerId": "real-1", "verifiedCustomer": false}))
            .send(),
    )
    .await
    .expect("answered in time")
    .unwrap();
    assert_eq!(response.status(), 200);
    // The connection idle the longest made room; the others are untouched.
    assert_eq!(until_closed(&mut hogs[0]).await, b"");
    assert!(hogs[1..].iter().all(still_open));
    emu.shutdown().await;
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_and_closes_idle_and_slow_connections() {
    let emu = common::emulator().await;
    let mut server = start(
        &emu,
        limits(Duration::from_secs(60), Duration::from_secs(60), 64),
    )
    .await;
    let mut idle = server.connect().await;
    assert_eq!(exchange(&mut idle, INTEGRATION).await, 200);
    let mut slow = server.connect().await;
    slow.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    emu.control().delay_responses(
        chat_emulator::Route::TokenApi,
        Some(Duration::from_millis(400)),
    );
    let http = fresh_connections();
    let in_flight = http
        .post(server.url("/v1/getJWT"))
        .json(&json!({"customerId": "late-1", "verifiedCustomer": false}))
        .send();
    let stop = server.stop.take().unwrap();
    let stopping = async {
        // Once the request is being served (it has reached the emulator), stop the server.
        while emu.control().stats().token_calls == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.send(()).unwrap();
        (until_closed(&mut idle).await, until_closed(&mut slow).await)
    };
    let (response, closed) = tokio::time::timeout(BOUND, async {
        futures::future::join(in_flight, stopping).await
    })
    .await
    .expect("in time");
    assert_eq!(response.unwrap().status(), 200, "finished, not cut");
    assert_eq!(closed, (Vec::new(), Vec::new()));
    tokio::time::timeout(BOUND, &mut server.task)
        .await
        .expect("serve returns")
        .unwrap();
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "not listening"
    );
    emu.shutdown().await;
}

#[test]
fn connection_limits_from_file_and_environment() {
    let dir = std::env::temp_dir().join(format!(
        "axp-token-server-limits-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("server.toml");
    std::fs::write(
        &path,
        "api_base_url = \"https://na.api.avayacloud.com\"\naccount_id = \"ABCDEF\"\n\
         client_id = \"c\"\nclient_secret = \"s\"\nappkey = \"k\"\n\
         integration_id = \"123e4567-e89b-12d3-a456-426614174000\"\n\
         header_read_timeout_ms = 2500\nmax_connections = 300\n",
    )
    .unwrap();
    let no_env = |_: &str| None;
    let config = ServerConfig::load_with(Some(&path), no_env).unwrap();
    assert_eq!(
        config.limits,
        limits(Duration::from_millis(2500), Duration::from_secs(60), 300)
    );
    let config = ServerConfig::load_with(Some(&path), |name| match name {
        "AXP_IDLE_TIMEOUT_MS" => Some("1500".into()),
        "AXP_MAX_CONNECTIONS" => Some("20".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(
        config.limits,
        limits(Duration::from_millis(2500), Duration::from_millis(1500), 20)
    );
    for (name, value) in [
        ("AXP_HEADER_READ_TIMEOUT_MS", "0"),
        ("AXP_IDLE_TIMEOUT_MS", "0"),
        ("AXP_MAX_CONNECTIONS", "0"),
        ("AXP_MAX_CONNECTIONS", "many"),
    ] {
        let result = ServerConfig::load_with(Some(&path), |n| (n == name).then(|| value.into()));
        assert!(result.is_err(), "{name}={value}");
    }
    // Without the settings: the documented defaults.
    let defaults = ConnectionLimits::default();
    assert_eq!(
        defaults,
        limits(Duration::from_secs(10), Duration::from_secs(60), 1024)
    );
    std::fs::write(
        &path,
        "api_base_url = \"https://na.api.avayacloud.com\"\naccount_id = \"ABCDEF\"\n\
         client_id = \"c\"\nclient_secret = \"s\"\nappkey = \"k\"\n\
         integration_id = \"123e4567-e89b-12d3-a456-426614174000\"\n",
    )
    .unwrap();
    let config = ServerConfig::load_with(Some(&path), no_env).unwrap();
    assert_eq!(config.limits, defaults);
    std::fs::remove_dir_all(&dir).ok();
}
