//! [`Http1LongPollTransport`] against a scripted HTTP/1.1 server on loopback.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chat_core::{AppKey, Config, InitParams, Output, RequestKind, Session, Token};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::*;

/// Payload `{"exp":4000000000}`.
const TOKEN: &str = "jwt.e30.eyJleHAiOjQwMDAwMDAwMDB9.first";
const INTEGRATION: &str = "123e4567-e89b-12d3-a456-426614174000";
const SID: &str = "5e55e55e-0000-4000-8000-000000000001";
const EID: &str = "e0000000-0000-4000-8000-000000000001";
const DID: &str = "d0000000-0000-4000-8000-000000000001";

/// What the server does with one request.
enum Answer {
    /// Write these bytes (in pieces of `split` bytes, flushed apart), keep the connection.
    Bytes(Vec<u8>, usize),
    /// Write these bytes, then close the connection.
    ThenClose(Vec<u8>),
    /// Read the request and never answer.
    Hang,
}

fn ok(body: &str) -> Answer {
    Answer::Bytes(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
        usize::MAX,
    )
}

struct Server {
    base: String,
    accepts: Arc<AtomicUsize>,
    /// Request heads, in order.
    requests: Arc<Mutex<Vec<String>>>,
    /// A message after each answer is written (and after each close).
    written: mpsc::UnboundedReceiver<()>,
}

/// A server that answers requests with `answers`, in order, across connections.
async fn server(answers: Vec<Answer>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let accepts = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (tx, written) = mpsc::unbounded_channel();
    let script = Arc::new(Mutex::new(answers.into_iter()));
    {
        let accepts = Arc::clone(&accepts);
        let requests = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                accepts.fetch_add(1, Ordering::SeqCst);
                let script = Arc::clone(&script);
                let requests = Arc::clone(&requests);
                let tx = tx.clone();
                tokio::spawn(serve(socket, script, requests, tx));
            }
        });
    }
    Server {
        base,
        accepts,
        requests,
        written,
    }
}

async fn serve(
    mut socket: TcpStream,
    script: Arc<Mutex<std::vec::IntoIter<Answer>>>,
    requests: Arc<Mutex<Vec<String>>>,
    tx: mpsc::UnboundedSender<()>,
) {
    let mut buf = Vec::new();
    loop {
        // One request head and its body.
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 1024];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 1024];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + length);
        requests.lock().unwrap().push(head);
        let answer = script.lock().unwrap().next();
        match answer {
            Some(Answer::Bytes(bytes, split)) => {
                for piece in bytes.chunks(split) {
                    if socket.write_all(piece).await.is_err() {
                        return;
                    }
                    let _ = socket.flush().await;
                    tokio::task::yield_now().await;
                }
                let _ = tx.send(());
            }
            Some(Answer::ThenClose(bytes)) => {
                let _ = socket.write_all(&bytes).await;
                drop(socket);
                let _ = tx.send(());
                return;
            }
            Some(Answer::Hang) => {
                let mut rest = Vec::new();
                let _ = socket.read_to_end(&mut rest).await;
                return;
            }
            None => return,
        }
    }
}

/// A poll request of a session on `base`, as chat-core makes it.
pub(crate) fn poll_request(base: &str) -> Request {
    let params = InitParams::new(
        base,
        INTEGRATION,
        Token::parse(TOKEN).unwrap(),
        AppKey::new("the-appkey"),
    )
    .unwrap();
    let mut session = Session::new(params, Config::default()).unwrap();
    let now = Instant::now();
    session.init(now, SystemTime::now()).unwrap();
    // The stream opens with the first engagement.
    let mut created = false;
    loop {
        match session.poll_output() {
            Output::Transmit(r) if matches!(r.kind, RequestKind::Poll { .. }) => return r,
            Output::Transmit(r) if !created => {
                let body = format!(r#"{{"sessionId":"{SID}","engagements":[]}}"#);
                session.handle_response(now, r.id, 201, body.as_bytes());
                session.create_engagement(now, Default::default()).unwrap();
                created = true;
            }
            Output::Transmit(r) => {
                let body = format!(
                    r#"{{"engagementId":"{EID}","dialogs":[{{"dialogId":"{DID}","dialogStatus":"PENDING","participants":[]}}]}}"#
                );
                session.handle_response(now, r.id, 201, body.as_bytes());
            }
            Output::Wait(_) => panic!("no poll"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn polls_reuse_one_connection() {
    let s = server(vec![ok("[]"), ok(r#"[{"eventId":"1"}]"#)]).await;
    let mut t = Http1LongPollTransport::new();
    let request = poll_request(&s.base);
    let first = t.exchange(request.clone()).await.unwrap();
    assert_eq!(first, Response::new(200, b"[]".to_vec()));
    let second = t.exchange(request.clone()).await.unwrap();
    assert_eq!(second.body, br#"[{"eventId":"1"}]"#);
    assert_eq!(s.accepts.load(Ordering::SeqCst), 1);

    let heads = s.requests.lock().unwrap().clone();
    let path = request.url.strip_prefix(&s.base).unwrap();
    assert!(heads[0].starts_with(&format!("GET {path} HTTP/1.1\r\n")));
    let authority = s.base.strip_prefix("http://").unwrap();
    assert!(heads[0].contains(&format!("\r\nHost: {authority}\r\n")));
    assert!(heads[0].contains(&format!("\r\nAuthorization: Bearer {TOKEN}\r\n")));
    assert!(heads[0].contains("\r\nappkey: the-appkey\r\n"));
}

#[tokio::test]
async fn reads_a_chunked_body_arriving_in_pieces() {
    let body = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                5;ext=1\r\n[{\"ev\r\n\
                c\r\nentId\":\"7\"}]\r\n\
                0\r\nx-trailer: yes\r\n\r\n";
    let s = server(vec![Answer::Bytes(body.as_bytes().to_vec(), 7), ok("[]")]).await;
    let mut t = Http1LongPollTransport::new();
    let request = poll_request(&s.base);
    let r = t.exchange(request.clone()).await.unwrap();
    assert_eq!(r, Response::new(200, br#"[{"eventId":"7"}]"#.to_vec()));
    // The chunked body ended where it should: the connection carries the next poll.
    assert_eq!(t.exchange(request).await.unwrap().body, b"[]");
    assert_eq!(s.accepts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn refusals_come_back_with_their_status_and_body() {
    let not_found = r#"{"detail":"Session not found"}"#;
    let s = server(vec![
        Answer::Bytes(
            b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 2\r\n\r\n{}".to_vec(),
            usize::MAX,
        ),
        Answer::Bytes(
            b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n".to_vec(),
            usize::MAX,
        ),
        Answer::ThenClose(
            format!(
                "HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{not_found}",
                not_found.len()
            )
            .into_bytes(),
        ),
    ])
    .await;
    let mut t = Http1LongPollTransport::new();
    let request = poll_request(&s.base);
    assert_eq!(
        t.exchange(request.clone()).await.unwrap(),
        Response::new(401, b"{}".to_vec())
    );
    assert_eq!(
        t.exchange(request.clone()).await.unwrap(),
        Response::new(403, Vec::new())
    );
    let r = t.exchange(request).await.unwrap();
    assert_eq!(r, Response::new(404, not_found.as_bytes().to_vec()));
    // `Connection: close` was honoured.
    assert!(t.connection.is_none());
}

#[tokio::test]
async fn a_body_running_to_the_end_of_the_connection() {
    let s = server(vec![
        Answer::ThenClose(b"HTTP/1.1 200 OK\r\n\r\n[]".to_vec()),
        ok("[1]"),
    ])
    .await;
    let mut t = Http1LongPollTransport::new();
    let request = poll_request(&s.base);
    assert_eq!(t.exchange(request.clone()).await.unwrap().body, b"[]");
    assert_eq!(t.exchange(request).await.unwrap().body, b"[1]");
    assert_eq!(s.accepts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_connection_closed_while_idle_is_replaced_before_sending() {
    // The server answers without `Connection: close`, then closes (as a server does at its
    // keep-alive timeout): the next poll must go out on a new connection, not fail.
    let s = server(vec![
        Answer::ThenClose(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]".to_vec()),
        ok("[2]"),
    ])
    .await;
    let mut written = s.written;
    let mut t = Http1LongPollTransport::new();
    let request = poll_request(&s.base);
    assert_eq!(t.exchange(request.clone()).await.unwrap().body, b"[]");
    assert!(t.connection.is_some(), "kept: the server did not say close");
    written.recv().await.unwrap();
    assert_eq!(t.exchange(request).await.unwrap().body, b"[2]");
    assert_eq!(s.accepts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_kept_connection_closed_as_the_next_poll_goes_out_is_replaced_and_the_poll_sent_again() {
    // The server reads the second poll on the kept connection and closes it without a byte
    // of answer (its close crossed the request): the poll goes again on a new connection.
    let s = server(vec![ok("[]"), Answer::ThenClose(Vec::new()), ok("[6]")]).await;
    let mut t = Http1LongPollTransport::new();
    let request = poll_request(&s.base);
    assert_eq!(t.exchange(request.clone()).await.unwrap().body, b"[]");
    assert_eq!(t.exchange(request.clone()).await.unwrap().body, b"[6]");
    assert_eq!(s.accepts.load(Ordering::SeqCst), 2);
    assert_eq!(
        s.requests.lock().unwrap().len(),
        3,
        "sent once more, no more"
    );
}

#[tokio::test]
async fn a_poll_on_a_new_connection_closed_before_any_answer_is_not_sent_again() {
    let s = server(vec![Answer::ThenClose(Vec::new()), ok("[7]")]).await;
    let mut t = Http1LongPollTransport::new();
    let request = poll_request(&s.base);
    assert_eq!(
        t.exchange(request.clone()).await,
        Err(TransportError::Disconnected)
    );
    assert_eq!(s.requests.lock().unwrap().len(), 1);
    // A second crossing after a resend is reported too: once only.
    let s = server(vec![
        ok("[]"),
        Answer::ThenClose(Vec::new()),
        Answer::ThenClose(Vec::new()),
        ok("[8]"),
    ])
    .await;
    let mut t = Http1LongPollTransport::new();
    let request = poll_request(&s.base);
    assert_eq!(t.exchange(request.clone()).await.unwrap().body, b"[]");
    assert_eq!(
        t.exchange(request.clone()).await,
        Err(TransportError::Disconnected)
    );
    assert_eq!(s.requests.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_connection_lost_mid_response_is_reported_and_the_next_poll_reconnects() {
    let s = server(vec![
        Answer::ThenClose(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n[{\"ev".to_vec()),
        ok("[3]"),
    ])
    .await;
    let mut t = Http1LongPollTransport::new();
    let request = poll_request(&s.base);
    assert_eq!(
        t.exchange(request.clone()).await,
        Err(TransportError::Disconnected)
    );
    assert_eq!(t.exchange(request).await.unwrap().body, b"[3]");
    assert_eq!(s.accepts.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_poll_leaves_no_connection_behind() {
    // The driver's timeout drops a poll the server holds too long; the next poll must not
    // read the late answer of the old one, so it goes out on a new connection.
    let s = server(vec![Answer::Hang, ok("[4]")]).await;
    let mut t = Http1LongPollTransport::new();
    let request = poll_request(&s.base);
    let held = tokio::time::timeout(Duration::from_secs(30), t.exchange(request.clone())).await;
    assert!(held.is_err(), "the held poll timed out");
    assert!(t.connection.is_none());
    assert_eq!(t.exchange(request).await.unwrap().body, b"[4]");
    assert_eq!(s.accepts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn reset_drops_the_connection() {
    let s = server(vec![ok("[]"), ok("[5]")]).await;
    let mut t = Http1LongPollTransport::new();
    let request = poll_request(&s.base);
    t.exchange(request.clone()).await.unwrap();
    t.reset().await;
    assert_eq!(t.exchange(request).await.unwrap().body, b"[5]");
    assert_eq!(s.accepts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_declared_length_past_the_cap_is_refused_unread() {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
        MAX_RESPONSE_LEN + 1
    );
    let s = server(vec![Answer::Bytes(head.into_bytes(), usize::MAX)]).await;
    let mut t = Http1LongPollTransport::new();
    let r = t.exchange(poll_request(&s.base)).await;
    assert_eq!(r, Err(TransportError::Protocol));
    assert!(t.connection.is_none());
}

#[tokio::test]
async fn a_chunked_body_growing_past_the_cap_is_refused() {
    // Two chunks, each under the cap, together over it: refused at the second size line.
    let half = MAX_RESPONSE_LEN / 2 + 1;
    let mut bytes = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    bytes.extend_from_slice(format!("{half:x}\r\n").as_bytes());
    bytes.resize(bytes.len() + half, b' ');
    bytes.extend_from_slice(format!("\r\n{half:x}\r\n").as_bytes());
    let s = server(vec![Answer::Bytes(bytes, usize::MAX)]).await;
    let mut t = Http1LongPollTransport::new();
    let r = t.exchange(poll_request(&s.base)).await;
    assert_eq!(r, Err(TransportError::Protocol));
}

#[tokio::test]
async fn a_body_to_the_end_of_the_connection_past_the_cap_is_refused() {
    let mut bytes = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    bytes.resize(bytes.len() + MAX_RESPONSE_LEN + 1, b' ');
    let s = server(vec![Answer::ThenClose(bytes)]).await;
    let mut t = Http1LongPollTransport::new();
    let r = t.exchange(poll_request(&s.base)).await;
    assert_eq!(r, Err(TransportError::Protocol));
}

#[tokio::test]
async fn garbage_is_a_protocol_error() {
    let s = server(vec![Answer::Bytes(
        b"SMTP ready\r\n\r\n".to_vec(),
        usize::MAX,
    )])
    .await;
    let mut t = Http1LongPollTransport::new();
    let r = t.exchange(poll_request(&s.base)).await;
    assert_eq!(r, Err(TransportError::Protocol));
}

#[tokio::test]
async fn plain_http_is_refused_to_a_host_that_is_not_loopback() {
    // chat-core refuses such a host URL; a custom caller might still hand one over. It is
    // refused before any connection is attempted.
    let mut request = poll_request("https://axp.example");
    request.url = request.url.replacen("https://", "http://", 1);
    let mut t = Http1LongPollTransport::new();
    assert_eq!(
        t.exchange(request.clone()).await,
        Err(TransportError::Connect)
    );
    // With the explicit opt-in, the check passes and the connection itself is attempted.
    let parsed = Target::parse(&request.url, true).unwrap();
    assert!(!parsed.tls);
    assert_eq!(parsed.port, 80);
    assert!(Target::parse(&request.url, false).is_err());
}

#[tokio::test]
async fn a_chat_over_https_with_a_tls_config_of_the_callers() {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::{self, RootCertStore};

    let emu = chat_emulator::Emulator::builder()
        .tls(true)
        .hold_time(Duration::from_millis(400))
        .agent_delay(Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    assert!(emu.base_url().starts_with("https://"));
    let pem = emu.ca_cert_pem().unwrap().as_bytes().to_vec();
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(&pem).unwrap())
        .unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let c = emu.credentials();
    let jwt = emu
        .control()
        .mint_token("tls-customer", true, Duration::from_secs(900));
    let (client, events) = crate::Client::builder(emu.base_url(), &c.integration_id, &c.appkey)
        .token(jwt)
        .http_client(http)
        .event_transport(Box::new(Http1LongPollTransport::with_tls_config(Arc::new(
            tls,
        ))))
        .connect()
        .await
        .unwrap();
    client.create_engagement().await.unwrap();
    // The simulated agent's greeting arrives over the TLS long poll.
    let arrived = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(e) = events.recv().await {
            if matches!(e.event, crate::Event::MessageArrived(_)) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(arrived, Ok(true));
    client.shutdown(None).await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn the_default_roots_refuse_an_unknown_certificate() {
    let emu = chat_emulator::Emulator::builder()
        .tls(true)
        .start()
        .await
        .unwrap();
    let mut t = Http1LongPollTransport::new();
    let r = t.exchange(poll_request(&emu.base_url())).await;
    // Said as such, with its remedy, rather than as an unreachable server.
    assert_eq!(r, Err(TransportError::Certificate));
    emu.shutdown().await;
}
