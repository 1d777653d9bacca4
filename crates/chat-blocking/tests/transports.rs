//! `StreamTransport::Auto` (the WebSocket when the server upgrades, long polling otherwise),
//! TLS with the emulator's certificate on every transport, plain HTTP refused for hosts that
//! are not loopback, and responses past the size cap refused.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use chat_blocking::{
    Cancel, Client, Event, EventStream, EventTransport, Http1LongPollTransport, HttpTransport,
    PollOutcome, ReqwestTransport, StreamTransport, TransportError, tls_config_with_roots,
};
use chat_emulator::{AgentMode, Route};
use support::*;

fn chat_over(client: &Client, events: &EventStream, text: &str) {
    let chat = client.create_engagement().unwrap();
    expect_event(events, |e| matches!(e, Event::MessageArrived(_)));
    chat.send_message(text).unwrap();
    expect_event(events, arrived_with(text));
}

#[test]
fn auto_uses_the_websocket_when_offered() {
    let emu = emulator(AgentMode::Agent);
    let (client, events) = connect(&emu, StreamTransport::Auto, "quinn");
    chat_over(&client, &events, "over auto");
    assert!(emu.control().stats().ws_connections >= 1);
    client.shutdown(None).unwrap();
}

#[test]
fn auto_falls_back_to_long_polling_when_the_upgrade_is_refused() {
    let emu = emulator(AgentMode::Agent);
    emu.control().fail_next(Route::Events, 400, 1);
    let (client, events) = connect(&emu, StreamTransport::Auto, "rita");
    chat_over(&client, &events, "over long polling");
    let stats = emu.control().stats();
    assert_eq!(stats.ws_connections, 0);
    assert!(stats.polls >= 2, "{}", stats.polls);
    client.shutdown(None).unwrap();
}

#[test]
fn the_tls_config_serves_every_transport() {
    let emu = start(emulator_builder(AgentMode::Agent).tls(true));
    assert!(emu.base_url().starts_with("https://"));
    let tls = tls_config_with_roots(emu.ca_cert_pem().unwrap().as_bytes()).unwrap();
    for (transport, customer) in [
        (StreamTransport::LongPoll, "tia"),
        (StreamTransport::WebSocket, "uma"),
        (StreamTransport::Auto, "val"),
    ] {
        let before = emu.control().stats().ws_connections;
        let (client, events) = builder(&emu, transport, customer)
            .tls_config(Arc::clone(&tls))
            .connect()
            .unwrap();
        chat_over(&client, &events, "over TLS");
        let sockets = emu.control().stats().ws_connections - before;
        assert_eq!(
            sockets >= 1,
            transport != StreamTransport::LongPoll,
            "{transport:?}: {sockets} WebSocket connections"
        );
        client.shutdown(None).unwrap();
    }
    // Without it, the self-signed certificate is not trusted.
    let err = builder(&emu, StreamTransport::LongPoll, "wes")
        .connect()
        .unwrap_err();
    assert_eq!(err.code(), "ACS-306", "{err}");
}

#[test]
fn plain_http_to_a_host_that_is_not_loopback_is_refused() {
    let emu = emulator(AgentMode::Off);
    let c = emu.credentials().clone();
    for transport in [
        StreamTransport::LongPoll,
        StreamTransport::WebSocket,
        StreamTransport::Auto,
    ] {
        for host in [
            "http://127.0.0.1.evil.com",
            "http://localhost.evil",
            "http://localhost@evil.com",
            "HTTP://example.com",
        ] {
            let err = Client::builder(host, &c.integration_id, &c.appkey)
                .token(token(&emu, "plain"))
                .stream_transport(transport)
                .config(config())
                .connect()
                .unwrap_err();
            assert_eq!(err.code(), "ACS-302", "{host} {transport:?}: {err}");
        }
        let base = emu.base_url().replacen("http", "HTTP", 1);
        let (client, _events) = Client::builder(base, &c.integration_id, &c.appkey)
            .token(token(&emu, "plain"))
            .stream_transport(transport)
            .config(config())
            .connect()
            .unwrap();
        client.shutdown(None).unwrap();
    }
    assert_eq!(emu.control().stats().sessions, 0);
}

/// A server that answers every connection with `answer`, then closes.
fn answering(answer: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for socket in listener.incoming().take(4) {
            let Ok(mut socket) = socket else { return };
            let mut head = [0u8; 4096];
            let _ = socket.read(&mut head);
            let _ = socket.write_all(&answer);
        }
    });
    base
}

#[test]
fn responses_past_the_cap_are_refused() {
    let cap = chat_core::validate::MAX_RESPONSE_LEN;
    let declared = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", cap + 1).into_bytes();
    let base = answering(declared);
    let r = ReqwestTransport::new().send(request_to(&base));
    assert_eq!(r, Err(TransportError::Protocol));
    let r = Http1LongPollTransport::new().poll(request_to(&base), &Cancel::new());
    assert_eq!(r, PollOutcome::Failed(TransportError::Protocol));

    let mut chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    let chunk = 64 * 1024;
    for _ in 0..=cap / chunk {
        chunked.extend_from_slice(format!("{chunk:x}\r\n").as_bytes());
        chunked.resize(chunked.len() + chunk, b' ');
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let base = answering(chunked);
    let r = ReqwestTransport::new().send(request_to(&base));
    assert_eq!(r, Err(TransportError::Protocol));
    let r = Http1LongPollTransport::new().poll(request_to(&base), &Cancel::new());
    assert_eq!(r, PollOutcome::Failed(TransportError::Protocol));

    // Within the cap, both read the body.
    let base = answering(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}".to_vec());
    let r = ReqwestTransport::new().send(request_to(&base)).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (201, &b"{}"[..]));
    let r = Http1LongPollTransport::new().poll(request_to(&base), &Cancel::new());
    let body = b"{}".to_vec();
    assert_eq!(r, PollOutcome::Status { status: 201, body });
}

#[test]
fn a_cancelled_poll_returns_at_once() {
    // A server that accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let _server = std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(2).collect();
        std::thread::sleep(Duration::from_secs(5));
        drop(held);
    });
    let cancel = Cancel::new();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            cancel.cancel();
        })
    };
    let start = std::time::Instant::now();
    let r = Http1LongPollTransport::new().poll(request_to(&base), &cancel);
    assert_eq!(r, PollOutcome::Failed(TransportError::Disconnected));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    canceller.join().unwrap();
}
