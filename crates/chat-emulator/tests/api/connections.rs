//! Connection limits: the header-read timeout, the idle timeout and the connection cap close
//! idle and slow connections, never a held long poll or a WebSocket, and real requests are still
//! answered when idle or slow connections fill the cap or the process's file descriptors.

use std::time::{Duration, Instant};

use chat_emulator::{AgentMode, Emulator, EmulatorBuilder};
use futures::StreamExt;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::Harness;

/// The upper bound on anything awaited here: a hang fails instead of blocking the run.
const BOUND: Duration = Duration::from_secs(5);

/// A client that opens a new connection for each request, so that no request lands on a pooled
/// connection the emulator has just closed.
fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn start(builder: EmulatorBuilder) -> Harness {
    let emu = builder.agent(AgentMode::Off).start().await.unwrap();
    Harness {
        emu,
        http: fresh_connections(),
    }
}

async fn connect(emu: &Emulator) -> TcpStream {
    let addr = emu.base_url().rsplit('/').next().unwrap().to_owned();
    TcpStream::connect(addr).await.unwrap()
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

const STATS: &str = "GET /emulator/v1/stats HTTP/1.1\r\nHost: emulator\r\n\r\n";

/// True while the peer has neither closed the connection nor sent anything.
fn still_open(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 1];
    matches!(stream.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[tokio::test]
async fn half_a_request_head_or_nothing_is_closed_after_the_header_read_timeout() {
    let h = start(
        Emulator::builder()
            .header_read_timeout(Duration::from_millis(300))
            .idle_timeout(Duration::from_secs(30)),
    )
    .await;
    let started = Instant::now();
    let mut silent = connect(&h.emu).await;
    let mut slow = connect(&h.emu).await;
    slow.write_all(b"GET /emulator/v1/stats HTTP/1.1\r\nHost: emulator\r\nX-Slow: ")
        .await
        .unwrap();
    assert_eq!(until_closed(&mut slow).await, b"");
    assert_eq!(until_closed(&mut silent).await, b"");
    assert!(started.elapsed() >= Duration::from_millis(280));
    // A whole head in time is answered.
    let mut prompt = connect(&h.emu).await;
    assert_eq!(exchange(&mut prompt, STATS).await, 401);
    h.emu.shutdown().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let h = start(
        Emulator::builder()
            .header_read_timeout(Duration::from_secs(30))
            .idle_timeout(Duration::from_millis(300)),
    )
    .await;
    let mut stream = connect(&h.emu).await;
    assert_eq!(exchange(&mut stream, STATS).await, 401);
    assert_eq!(exchange(&mut stream, STATS).await, 401, "kept alive");
    let idle = Instant::now();
    assert_eq!(until_closed(&mut stream).await, b"");
    assert!(idle.elapsed() >= Duration::from_millis(280));
    h.emu.shutdown().await;
}

#[tokio::test]
async fn between_requests_a_connection_gets_the_idle_timeout_not_the_header_timeout() {
    let h = start(
        Emulator::builder()
            .header_read_timeout(Duration::from_millis(200))
            .idle_timeout(Duration::from_secs(30)),
    )
    .await;
    let mut stream = connect(&h.emu).await;
    assert_eq!(exchange(&mut stream, STATS).await, 401);
    // Longer than the header-read timeout, well under the idle timeout: nothing to await here.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(still_open(&stream));
    assert_eq!(exchange(&mut stream, STATS).await, 401);
    h.emu.shutdown().await;
}

#[tokio::test]
async fn a_held_long_poll_outlasting_both_timeouts_is_answered() {
    let h = start(
        Emulator::builder()
            .hold_time(Duration::from_millis(1_000))
            .header_read_timeout(Duration::from_millis(200))
            .idle_timeout(Duration::from_millis(200)),
    )
    .await;
    let token = h.jwt("held-poll", false).await;
    let session = h.create_session(&token).await;
    let started = Instant::now();
    let reply = h.poll(&token, &session, None).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body, serde_json::json!([]));
    assert!(started.elapsed() >= Duration::from_millis(900));
    h.emu.shutdown().await;
}

#[tokio::test]
async fn a_websocket_outlives_both_timeouts() {
    let h = start(
        Emulator::builder()
            .ws_ping_interval(Duration::from_millis(800))
            .header_read_timeout(Duration::from_millis(200))
            .idle_timeout(Duration::from_millis(200)),
    )
    .await;
    let token = h.jwt("ws-kept", false).await;
    let session = h.create_session(&token).await;
    let url = h
        .chat(&format!("/sessions/{session}/events"))
        .replacen("http", "ws", 1);
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
        .headers_mut()
        .insert("appkey", h.emu.credentials().appkey.parse().unwrap());
    let started = Instant::now();
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    // The server's first ping comes after four times the timeouts.
    loop {
        let message = tokio::time::timeout(BOUND, socket.next())
            .await
            .expect("a ping in time")
            .expect("the socket is open")
            .unwrap();
        if matches!(message, Message::Ping(_)) {
            break;
        }
    }
    assert!(started.elapsed() >= Duration::from_millis(750));
    h.emu.shutdown().await;
}

#[tokio::test]
async fn a_real_request_is_answered_when_idle_and_slow_connections_fill_the_cap() {
    // Timeouts far beyond the test: only the cap's eviction can make room.
    let h = start(Emulator::builder().max_connections(8)).await;
    let mut hogs = Vec::new();
    for _ in 0..4 {
        let mut idle = connect(&h.emu).await;
        assert_eq!(exchange(&mut idle, STATS).await, 401);
        hogs.push(idle);
    }
    for _ in 0..4 {
        let mut slow = connect(&h.emu).await;
        slow.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        hogs.push(slow);
    }
    let started = Instant::now();
    let reply = tokio::time::timeout(
        BOUND,
        h.http
            .get(h.url("/emulator/v1/stats"))
            .header("x-emulator-control-key", h.emu.control_key())
            .send(),
    )
    .await
    .expect("answered in time")
    .unwrap();
    assert_eq!(reply.status(), 200);
    let stats: Value = reply.json().await.unwrap();
    assert!(stats.is_object());
    assert!(started.elapsed() < BOUND);
    // The connection idle the longest made room; the others are untouched.
    assert_eq!(until_closed(&mut hogs[0]).await, b"");
    assert!(hogs[1..].iter().all(still_open));
    h.emu.shutdown().await;
}

#[tokio::test]
async fn busy_connections_are_never_evicted_and_a_new_one_waits_for_a_slot() {
    let h = start(
        Emulator::builder()
            .hold_time(Duration::from_millis(600))
            .max_connections(2),
    )
    .await;
    let token = h.jwt("cap-busy", false).await;
    let first = h.create_session(&token).await;
    let second = h.create_session(&token).await;
    let started = Instant::now();
    let polls = futures::future::join(h.poll(&token, &first, None), h.poll(&token, &second, None));
    let late = async {
        // Starts once both polls have reached the server (their connections fill the cap).
        while h.emu.control().stats().polls < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut stream = connect(&h.emu).await;
        let status = exchange(&mut stream, STATS).await;
        (status, started.elapsed())
    };
    let ((a, b), (status, answered_after)) =
        tokio::time::timeout(BOUND, futures::future::join(polls, late))
            .await
            .expect("all answered in time");
    assert_eq!((a.status.as_u16(), b.status.as_u16()), (200, 200));
    assert_eq!(a.body, serde_json::json!([]), "held to the end, not cut");
    assert_eq!(status, 401);
    assert!(
        answered_after >= Duration::from_millis(550),
        "admitted only when a poll ended: {answered_after:?}"
    );
    h.emu.shutdown().await;
}

#[tokio::test]
async fn a_tls_connection_that_never_starts_the_handshake_is_closed() {
    let h = start(
        Emulator::builder()
            .tls(true)
            .header_read_timeout(Duration::from_millis(300)),
    )
    .await;
    let started = Instant::now();
    let mut silent = connect(&h.emu).await;
    assert_eq!(until_closed(&mut silent).await, b"");
    assert!(started.elapsed() >= Duration::from_millis(280));
    // A real client still gets through.
    let pem = h.emu.ca_cert_pem().unwrap().as_bytes().to_vec();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let r = http.get(h.url("/emulator/v1/stats")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    h.emu.shutdown().await;
}

/// The scenario: the process is out of file descriptors, all held by silent
/// connections; a real request is still answered (an idle connection is closed to make room).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn out_of_file_descriptors_a_real_request_is_still_answered() {
    let log = std::env::temp_dir().join(format!("chat-emulator-fds-{}.log", std::process::id()));
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_chat-emulator"))
        .args(["--listen", "127.0.0.1:0", "--agent", "off"])
        // Far beyond the test: only closing idle connections for room can let the request in.
        .args(["--header-read-timeout-ms", "60000"])
        .env("RUST_LOG", "chat_emulator=debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let announced: Value = serde_json::from_str(&line).unwrap();
    let base = announced["hostURL"].as_str().unwrap().to_owned();
    let addr = base.trim_start_matches("http://").to_owned();
    // More silent connections than the emulator has descriptors for.
    let mut hogs = Vec::new();
    for _ in 0..100 {
        hogs.push(TcpStream::connect(&addr).await.unwrap());
    }
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        fresh_connections()
            .get(format!("{base}/emulator/v1/stats"))
            .header(
                "x-emulator-control-key",
                announced["controlKey"].as_str().unwrap(),
            )
            .send(),
    )
    .await;
    child.kill().await.unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let Ok(reply) = reply else {
        panic!("not answered in time; the emulator logged:\n{log_text}");
    };
    assert_eq!(reply.unwrap().status(), 200, "{log_text}");
}
