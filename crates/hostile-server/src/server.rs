//! [`HostileServer`]: a fake AXP chat API on loopback, std sockets and threads, that answers
//! the requests of one [`Case`] with its hostility and every other request as AXP would.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chat_core::validate::MAX_RESPONSE_LEN;

use crate::cases::{Case, Hostility, On};
use crate::script::{self, Answer};

/// How long a poll with nothing to deliver is held before its empty answer.
const HOLD: Duration = Duration::from_millis(300);
/// The chunks of the oversized and endless chunked bodies.
const CHUNK: usize = 64 * 1024;
/// Longest request head read.
const MAX_REQUEST_HEAD: usize = 64 * 1024;

/// One request the server read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `GET`, `POST`, `DELETE`...
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The connection it came on (1 for the first one accepted).
    pub connection: usize,
    /// It carried `x-route-request` (a disconnection probe).
    pub probe: bool,
}

impl Seen {
    /// Whether it is a poll or a probe of the event stream.
    pub fn is_poll(&self) -> bool {
        self.method == "GET" && self.path.contains("/events")
    }

    /// The `lastEventId` it carried.
    pub fn last_event_id(&self) -> Option<&str> {
        self.path
            .split_once('?')?
            .1
            .split('&')
            .find_map(|kv| kv.strip_prefix("lastEventId="))
    }
}

/// How one hostile answer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Bytes written.
    pub bytes: u64,
    /// The client closed the connection before the answer was over (the server's write
    /// failed, or its read saw the end while it held the answer open): it refused the
    /// answer without waiting for the rest.
    pub cut: bool,
    /// From the first byte written to the end of the answer (written whole, or cut).
    pub elapsed: Duration,
}

/// What the server saw: every request, the connections, the hostile answers.
#[derive(Debug, Clone, Default)]
pub struct Log {
    /// Connections accepted.
    pub connections: usize,
    /// Requests read, in order.
    pub requests: Vec<Seen>,
    /// Connections made to the other host (where the redirect points).
    pub other_host_connections: usize,
    /// The hostile answers, in order.
    pub answers: Vec<Written>,
    /// For each request held unanswered until the client gave up (the history of
    /// [`Hostility::FloodDuringCatchUp`]): the polls that came meanwhile.
    pub polls_while_unanswered: Vec<usize>,
}

impl Log {
    /// The polls and probes, in order.
    pub fn polls(&self) -> Vec<&Seen> {
        self.requests.iter().filter(|r| r.is_poll()).collect()
    }
}

struct Shared {
    hostility: Hostility,
    on: On,
    /// Where the redirect points: `http://{other}`.
    other: SocketAddr,
    stop: AtomicBool,
    log: Mutex<Log>,
    changed: Condvar,
}

impl Shared {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Waits `d`, or less if the server stops.
    fn pause(&self, d: Duration) {
        let deadline = Instant::now() + d;
        let mut log = self.log();
        while !self.stopped() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            log = self
                .changed
                .wait_timeout(log, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn record(&self, f: impl FnOnce(&mut Log)) {
        f(&mut self.log());
        self.changed.notify_all();
    }
}

/// A hostile AXP server for one [`Case`], on `127.0.0.1`, with a second listener standing for
/// another host (where its redirects point). Stops when dropped.
pub struct HostileServer {
    base: String,
    addrs: [SocketAddr; 2],
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for HostileServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostileServer")
            .field("base", &self.base)
            .field("hostility", &self.shared.hostility)
            .finish_non_exhaustive()
    }
}

impl HostileServer {
    /// Starts the server of this case (over TLS with a self-signed certificate when the
    /// case is [`Hostility::UntrustedTls`]).
    pub fn start(case: &Case) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let other = TcpListener::bind("127.0.0.1:0")?;
        let addrs = [listener.local_addr()?, other.local_addr()?];
        let tls = match case.hostility {
            Hostility::UntrustedTls => Some(crate::tls::self_signed()?),
            _ => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            hostility: case.hostility,
            on: case.on,
            other: addrs[1],
            stop: AtomicBool::new(false),
            log: Mutex::new(Log::default()),
            changed: Condvar::new(),
        });
        let main = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept(&listener, &shared, tls.as_ref()))
        };
        let elsewhere = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                for socket in other.incoming() {
                    if shared.stopped() {
                        return;
                    }
                    shared.record(|log| log.other_host_connections += 1);
                    drop(socket);
                }
            })
        };
        Ok(Self {
            base: format!("{scheme}://{}", addrs[0]),
            addrs,
            shared,
            threads: vec![main, elsewhere],
        })
    }

    /// `http://127.0.0.1:port` (or `https://`): the host URL to give the client.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// What the server has seen so far.
    pub fn log(&self) -> Log {
        self.shared.log().clone()
    }

    /// Waits until the log satisfies `done`, up to `timeout`; the log then.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&Log) -> bool) -> Log {
        let deadline = Instant::now() + timeout;
        let mut log = self.shared.log();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if done(&log) || left.is_zero() {
                return log.clone();
            }
            log = self
                .shared
                .changed
                .wait_timeout(log, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        // Wakes both accept loops; connection threads end at their next read or write.
        for addr in self.addrs {
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn accept(listener: &TcpListener, shared: &Arc<Shared>, tls: Option<&Arc<rustls::ServerConfig>>) {
    let mut number = 0;
    for socket in listener.incoming() {
        if shared.stopped() {
            return;
        }
        let Ok(socket) = socket else { continue };
        let _ = socket.set_nodelay(true);
        number += 1;
        let connection = number;
        shared.record(|log| log.connections += 1);
        let shared = Arc::clone(shared);
        let tls = tls.cloned();
        std::thread::spawn(move || {
            let closer = socket.try_clone().ok();
            match tls {
                Some(config) => {
                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let stream = rustls::StreamOwned::new(conn, socket);
                    serve(stream, closer, connection, &shared);
                }
                None => serve(socket, closer, connection, &shared),
            }
        });
    }
}

/// One request read off a connection.
struct Incoming {
    method: String,
    path: String,
    probe: bool,
}

/// Reads one request head and its body; `None` when the connection ends first.
fn read_request(stream: &mut impl Read, buf: &mut Vec<u8>) -> Option<Incoming> {
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > MAX_REQUEST_HEAD {
            return None;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let mut length = 0;
    let mut probe = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().ok()?;
        } else if name.eq_ignore_ascii_case("x-route-request") {
            probe = true;
        }
    }
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    buf.drain(..head_end + length);
    Some(Incoming {
        method,
        path,
        probe,
    })
}

/// Whether the connection carries on after an answer.
enum Flow {
    KeepAlive,
    Close,
}

fn serve<S: Read + Write>(
    mut stream: S,
    closer: Option<TcpStream>,
    connection: usize,
    shared: &Shared,
) {
    let mut buf = Vec::new();
    while !shared.stopped() {
        let Some(request) = read_request(&mut stream, &mut buf) else {
            break;
        };
        let seen = Seen {
            method: request.method,
            path: request.path,
            connection,
            probe: request.probe,
        };
        let (answer, hostile) = route(shared, &seen);
        shared.record(|log| log.requests.push(seen));
        let flow = write_answer(&mut stream, answer, shared, hostile);
        if matches!(flow, Flow::Close) {
            break;
        }
    }
    let _ = stream.flush();
    if let Some(tcp) = closer {
        let _ = tcp.shutdown(Shutdown::Both);
    }
}

/// The answer to a request, and whether it is the case's hostile one.
fn route(shared: &Shared, seen: &Seen) -> (Answer, bool) {
    let h = shared.hostility;
    let http10 = h == Hostility::Http10;
    let normal = |answer: Answer| {
        if http10 {
            (answer.http10(), false)
        } else {
            (answer, false)
        }
    };
    let path = seen.path.split('?').next().unwrap_or_default();
    match seen.method.as_str() {
        "POST" if path.ends_with("/sessions") => {
            if shared.on == On::Connect {
                (
                    script::hostile(h, On::Connect, 0, &seen.path, shared.other),
                    true,
                )
            } else {
                normal(script::created_session())
            }
        }
        "POST" if path.ends_with("/engagements") => normal(script::created_engagement()),
        "GET" if path.ends_with("/events") => {
            if shared.on == On::Poll {
                let n = shared.log().polls().len();
                let answer = script::hostile(h, On::Poll, n, &seen.path, shared.other);
                let hostile = !matches!(answer, Answer::Hold { .. });
                (answer, hostile)
            } else {
                normal(Answer::hold())
            }
        }
        "GET" if path.ends_with("/messages") => normal(script::history(h)),
        "DELETE" => normal(Answer::NoContent),
        _ => normal(Answer::json(404, r#"{"status":404,"detail":"Not found"}"#)),
    }
}

fn write_answer<S: Read + Write>(
    stream: &mut S,
    answer: Answer,
    shared: &Shared,
    hostile: bool,
) -> Flow {
    let start = Instant::now();
    let mut written = Written {
        bytes: 0,
        cut: false,
        elapsed: Duration::ZERO,
    };
    let flow = match answer {
        Answer::Json {
            status,
            body,
            http10,
        } => {
            let head = if http10 {
                format!(
                    "HTTP/1.0 {status} {}\r\ncontent-type: application/json\r\n\r\n",
                    reason(status)
                )
            } else {
                format!(
                    "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    reason(status),
                    body.len()
                )
            };
            written.cut = !put(stream, head.as_bytes(), &mut written)
                || !put(stream, body.as_bytes(), &mut written);
            if http10 { Flow::Close } else { Flow::KeepAlive }
        }
        Answer::NoContent => {
            written.cut = !put(stream, b"HTTP/1.1 204 No Content\r\n\r\n", &mut written);
            Flow::KeepAlive
        }
        Answer::Hold { http10 } => {
            shared.pause(HOLD);
            return write_answer(
                stream,
                Answer::Json {
                    status: 200,
                    body: "[]".to_owned(),
                    http10,
                },
                shared,
                false,
            );
        }
        Answer::DeclaredPastCap { status } => {
            let head = format!(
                "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n[",
                reason(status),
                MAX_RESPONSE_LEN + 1
            );
            if put(stream, head.as_bytes(), &mut written) {
                // The body never comes: a client that waited for it would wait for its
                // timeout. Held open until the client goes.
                let mut rest = [0u8; 1024];
                while !shared.stopped() {
                    match stream.read(&mut rest) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            }
            written.cut = true;
            Flow::Close
        }
        Answer::Chunked { status, total } => {
            let head = format!(
                "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
                reason(status)
            );
            let mut ok = put(stream, head.as_bytes(), &mut written);
            let mut chunk = format!("{CHUNK:x}\r\n").into_bytes();
            chunk.resize(chunk.len() + CHUNK, b' ');
            chunk.extend_from_slice(b"\r\n");
            let mut sent = 0;
            while ok && !shared.stopped() && total.is_none_or(|t| sent < t) {
                ok = put(stream, &chunk, &mut written);
                sent += CHUNK;
            }
            if ok && !shared.stopped() {
                ok = put(stream, b"0\r\n\r\n", &mut written);
            }
            written.cut = !ok;
            Flow::Close
        }
        Answer::Slow(bytes) => {
            let mut ok = true;
            for byte in bytes {
                if !ok || shared.stopped() {
                    break;
                }
                ok = put(stream, &[byte], &mut written);
                shared.pause(Duration::from_secs(1));
            }
            written.cut = !ok;
            Flow::Close
        }
        Answer::Raw(bytes) => {
            written.cut = !put(stream, &bytes, &mut written);
            Flow::Close
        }
        Answer::CloseUnanswered => Flow::Close,
        Answer::Unanswered => {
            let before = shared.log().polls().len();
            let mut rest = [0u8; 1024];
            while !shared.stopped() {
                match stream.read(&mut rest) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            shared.record(|log| {
                let during = log.polls().len() - before;
                log.polls_while_unanswered.push(during);
            });
            Flow::Close
        }
    };
    if hostile {
        written.elapsed = start.elapsed();
        shared.record(|log| log.answers.push(written));
    }
    flow
}

/// Writes and flushes; `false` once the client has gone.
fn put(stream: &mut impl Write, bytes: &[u8], written: &mut Written) -> bool {
    let ok = stream
        .write_all(bytes)
        .and_then(|()| stream.flush())
        .is_ok();
    if ok {
        written.bytes += bytes.len() as u64;
    }
    ok
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        307 => "Temporary Redirect",
        404 => "Not Found",
        _ => "Whatever",
    }
}
