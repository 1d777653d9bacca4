//! A server certificate the client does not trust is reported as such
//! ([`TransportError::Certificate`]: "add its root with custom roots"), not as an unreachable
//! server, by every transport: the REST calls (reqwest), the lean long poll and the WebSocket.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant, SystemTime};

use chat_emulator::{AgentMode, Emulator};
use chat_tokio::{
    AutoTransport, ChatError, Error, EventTransport, Http1LongPollTransport, HttpTransport,
    Request, ReqwestTransport, StreamTransport, TransportError, WebSocketTransport,
};
use common::*;

/// The emulator over HTTPS, with a self-signed certificate no default root vouches for.
async fn untrusted() -> Emulator {
    Emulator::builder()
        .tls(true)
        .agent(AgentMode::Off)
        .start()
        .await
        .unwrap()
}

/// A chat request to `base` (the TLS handshake fails before it is sent).
fn request_to(base: &str) -> Request {
    // Its payload is {"exp":4000000000}.
    let token = chat_core::Token::parse("jwt.e30.eyJleHAiOjQwMDAwMDAwMDB9.signature").unwrap();
    let params = chat_core::InitParams::new(
        base,
        "123e4567-e89b-12d3-a456-426614174000",
        token,
        chat_core::AppKey::new("appkey"),
    )
    .unwrap();
    let mut session = chat_core::Session::new(params, config()).unwrap();
    session.init(Instant::now(), SystemTime::now()).unwrap();
    match session.poll_output() {
        chat_core::Output::Transmit(r) => r,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn connect_reports_the_certificate() {
    let emu = untrusted().await;
    for transport in [
        StreamTransport::LongPoll,
        StreamTransport::WebSocket,
        StreamTransport::Auto,
    ] {
        let err = builder(&emu, transport, "cert")
            .connect()
            .await
            .unwrap_err();
        assert_eq!(
            err,
            Error::Chat(ChatError::Unreachable(TransportError::Certificate)),
            "{transport:?}: {err}"
        );
        assert!(err.to_string().contains("custom roots"), "{err}");
    }
}

#[tokio::test]
async fn every_transport_reports_the_certificate() {
    let emu = untrusted().await;
    let request = request_to(&emu.base_url());
    assert_eq!(
        ReqwestTransport::new().send(request.clone()).await,
        Err(TransportError::Certificate),
        "reqwest"
    );
    assert_eq!(
        Http1LongPollTransport::new().poll(request.clone()).await,
        chat_tokio::PollOutcome::Failed(TransportError::Certificate),
        "long poll"
    );
    assert_eq!(
        WebSocketTransport::new().poll(request.clone()).await,
        chat_tokio::PollOutcome::Failed(TransportError::Certificate),
        "WebSocket"
    );
    // Auto falls back to long polling, which says the same.
    let mut auto = AutoTransport::new(
        WebSocketTransport::new(),
        Box::new(Http1LongPollTransport::new()),
        Duration::from_secs(5),
    );
    assert_eq!(
        auto.poll(request).await,
        chat_tokio::PollOutcome::Failed(TransportError::Certificate),
        "auto"
    );
}
