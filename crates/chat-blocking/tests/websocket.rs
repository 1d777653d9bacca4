//! The blocking `WebSocketTransport` against scripted servers (chat-net's codec in the server
//! role over std sockets): pings answered while a poll waits, close codes mapped to the refusals
//! they stand for, the upgrade bounded by the request's timeout, and [`Cancel`] interrupting
//! a poll blocked on the socket.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chat_blocking::{Cancel, EventTransport, PollOutcome, TransportError, WebSocketTransport};
use chat_net::ws::frame::{Decoder, Encoder, Message, Role};
use chat_net::ws::handshake::accept_key;
use support::request_to;

/// Reads a request head; its `Sec-WebSocket-Key`.
fn read_upgrade(socket: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(socket.read(&mut byte).unwrap(), 1, "closed in the head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    head.lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap()
        .to_owned()
}

/// A server that upgrades one connection, then runs `script` on it.
fn upgrading(script: impl FnOnce(TcpStream) + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let key = read_upgrade(&mut socket);
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(&key)
        );
        socket.write_all(answer.as_bytes()).unwrap();
        script(socket);
    });
    base
}

/// The next message from the client.
fn next(socket: &mut TcpStream, decoder: &mut Decoder) -> Message {
    let mut buf = [0u8; 1024];
    loop {
        if let Some(m) = decoder.next().unwrap() {
            return m;
        }
        let n = socket.read(&mut buf).unwrap();
        assert!(n > 0, "the client closed");
        decoder.push(&buf[..n]);
    }
}

#[test]
fn pings_are_answered_and_close_codes_mapped() {
    let (heard, pongs) = mpsc::channel();
    let base = upgrading(move |mut socket| {
        let mut encoder = Encoder::new(Role::Server);
        let mut decoder = Decoder::new(Role::Server);
        socket.write_all(&encoder.ping(b"are you there")).unwrap();
        heard.send(next(&mut socket, &mut decoder)).unwrap();
        socket.write_all(&encoder.text("[1]")).unwrap();
        socket
            .write_all(&encoder.close(Some((4401, "Token expired"))))
            .unwrap();
        heard.send(next(&mut socket, &mut decoder)).unwrap();
    });
    let mut t = WebSocketTransport::new();
    let r = t.poll(request_to(&base), &Cancel::new());
    assert_eq!(r, PollOutcome::Events(b"[1]".to_vec()));
    assert_eq!(
        pongs.recv().unwrap(),
        Message::Pong(b"are you there".to_vec())
    );
    // The close code is the refusal it stands for, not an HTTP body to parse again.
    let r = t.poll(request_to(&base), &Cancel::new());
    assert_eq!(r, PollOutcome::Unauthorized);
    // The closing handshake is answered with the same code.
    match pongs.recv().unwrap() {
        Message::Close(Some(f)) => assert_eq!(f.code, 4401),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_quiet_socket_answers_an_empty_batch() {
    let (done, end) = mpsc::channel::<()>();
    let base = upgrading(move |socket| {
        // Open until the test ends.
        let _ = end.recv();
        drop(socket);
    });
    let mut t = WebSocketTransport::new();
    let mut request = request_to(&base);
    request.timeout = Duration::from_millis(300);
    let r = t.poll(request, &Cancel::new());
    assert_eq!(r, PollOutcome::Events(b"[]".to_vec()));
    drop(done);
}

#[test]
fn the_upgrade_is_bounded_by_the_request_timeout() {
    // A server that accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (done, end) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let held = listener.accept();
        let _ = end.recv();
        drop(held);
    });
    let mut request = request_to(&base);
    request.timeout = Duration::from_millis(300);
    let start = Instant::now();
    let r = WebSocketTransport::new().poll(request, &Cancel::new());
    assert_eq!(r, PollOutcome::Failed(TransportError::Timeout));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    drop(done);
}

#[test]
fn a_cancelled_poll_returns_at_once() {
    let (upgraded, is_upgraded) = mpsc::channel();
    let (done, end) = mpsc::channel::<()>();
    let base = upgrading(move |socket| {
        upgraded.send(()).unwrap();
        let _ = end.recv();
        drop(socket);
    });
    let cancel = Cancel::new();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            // Once the server has upgraded, the poll is (or is about to be) blocked reading.
            is_upgraded.recv().unwrap();
            cancel.cancel();
        })
    };
    let mut request = request_to(&base);
    // Far longer than the test may take: only the cancel can end the poll.
    request.timeout = Duration::from_secs(60);
    let start = Instant::now();
    let r = WebSocketTransport::new().poll(request, &cancel);
    assert_eq!(r, PollOutcome::Failed(TransportError::Disconnected));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    canceller.join().unwrap();
    drop(done);
}

#[test]
fn plain_ws_only_to_loopback_unless_allowed() {
    let mut request = request_to("http://127.0.0.1:1");
    request.url = request.url.replace("127.0.0.1:1", "example.invalid:1");
    let r = WebSocketTransport::new().poll(request, &Cancel::new());
    assert_eq!(r, PollOutcome::Failed(TransportError::Connect));
    let t = WebSocketTransport::new().allow_plain_http(true);
    assert!(format!("{t:?}").contains("allow_plain_http: true"));
}
