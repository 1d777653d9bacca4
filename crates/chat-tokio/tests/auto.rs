//! `StreamTransport::Auto`: the WebSocket when the server upgrades, otherwise the long polling
//! `StreamTransport::LongPoll` would use; and `ClientBuilder::tls_config` for every transport.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chat_core::RequestKind;
use chat_emulator::{AgentMode, Emulator, Route};
use chat_tokio::{
    Client, Event, HttpTransport, Request, ReqwestTransport, Response, StreamTransport,
    TransportError, tls_config_with_roots,
};
use common::*;

async fn tls_emulator() -> Emulator {
    Emulator::builder()
        .tls(true)
        .hold_time(Duration::from_millis(400))
        .agent_delay(Duration::from_millis(20))
        .start()
        .await
        .unwrap()
}

/// Counts the event-stream polls that go through it.
struct CountingPolls {
    inner: ReqwestTransport,
    polls: Arc<AtomicUsize>,
}

#[async_trait]
impl HttpTransport for CountingPolls {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        if matches!(request.kind, RequestKind::Poll { .. }) {
            self.polls.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.send(request).await
    }
}

/// Opens a chat, sends a message and waits for its echo.
async fn chat_over(client: &Client, events: &mut chat_tokio::EventStream, text: &str) {
    let chat = client.create_engagement().await.unwrap();
    expect_event(events, |e| matches!(e, Event::MessageArrived(_))).await;
    chat.send_message(text).await.unwrap();
    expect_event(events, arrived_with(text)).await;
}

#[tokio::test]
async fn auto_uses_the_websocket_when_offered() {
    let emu = emulator(AgentMode::Agent).await;
    let (client, mut events) = connect(&emu, StreamTransport::Auto, "quinn").await;
    let chat = client.create_engagement().await.unwrap();
    expect_event(&mut events, arrived_with("Hello")).await;
    chat.send_message("over auto").await.unwrap();
    expect_event(&mut events, arrived_with("over auto")).await;
    assert!(emu.control().stats().ws_connections >= 1);
    client.shutdown(None).await.unwrap();
}

#[tokio::test]
async fn auto_falls_back_to_long_polling_over_the_given_http_stack() {
    // HTTPS with a certificate the WebSocket's default roots do not trust, while the given
    // HTTP stack does: the upgrade fails, and the polls go through that stack, as they would
    // with `StreamTransport::LongPoll`.
    let emu = tls_emulator().await;
    let pem = emu.ca_cert_pem().unwrap().as_bytes().to_vec();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let polls = Arc::new(AtomicUsize::new(0));
    let counting = CountingPolls {
        inner: ReqwestTransport::with_client(http),
        polls: Arc::clone(&polls),
    };
    let c = emu.credentials();
    assert!(emu.base_url().starts_with("https://"));
    let (client, mut events) = Client::builder(emu.base_url(), &c.integration_id, &c.appkey)
        .token(token(&emu, "rita"))
        .http_transport(Arc::new(counting))
        .stream_transport(StreamTransport::Auto)
        .ws_upgrade_timeout(Duration::from_secs(1))
        .config(config())
        .connect()
        .await
        .unwrap();
    chat_over(&client, &mut events, "over long polling").await;
    assert_eq!(emu.control().stats().ws_connections, 0);
    assert!(
        polls.load(Ordering::SeqCst) >= 1,
        "the polls used the HTTP stack"
    );
    client.shutdown(None).await.unwrap();
}

#[tokio::test]
async fn auto_falls_back_to_the_lean_long_poll_with_the_tls_config() {
    // No HTTP stack given: the fallback is the lean long poll, trusting the emulator through
    // the builder's TLS configuration (as the REST calls do). The upgrade is refused once.
    let emu = tls_emulator().await;
    let tls = tls_config_with_roots(emu.ca_cert_pem().unwrap().as_bytes()).unwrap();
    emu.control().fail_next(Route::Events, 400, 1);
    let (client, mut events) = builder(&emu, StreamTransport::Auto, "sam")
        .tls_config(tls)
        .connect()
        .await
        .unwrap();
    chat_over(&client, &mut events, "over the lean poll").await;
    let stats = emu.control().stats();
    assert_eq!(stats.ws_connections, 0);
    // The refused upgrade, then long polls.
    assert!(stats.polls >= 2, "{}", stats.polls);
    client.shutdown(None).await.unwrap();
}

#[tokio::test]
async fn the_tls_config_serves_every_transport() {
    let emu = tls_emulator().await;
    let tls = tls_config_with_roots(emu.ca_cert_pem().unwrap().as_bytes()).unwrap();
    for (transport, customer) in [
        (StreamTransport::LongPoll, "tia"),
        (StreamTransport::WebSocket, "uma"),
        (StreamTransport::Auto, "val"),
    ] {
        let before = emu.control().stats().ws_connections;
        let (client, mut events) = builder(&emu, transport, customer)
            .tls_config(Arc::clone(&tls))
            .connect()
            .await
            .unwrap();
        chat_over(&client, &mut events, "over TLS").await;
        let sockets = emu.control().stats().ws_connections - before;
        assert_eq!(
            sockets >= 1,
            transport != StreamTransport::LongPoll,
            "{transport:?}: {sockets} WebSocket connections"
        );
        client.shutdown(None).await.unwrap();
    }
}

#[tokio::test]
async fn without_the_tls_config_the_emulator_is_not_trusted() {
    // The control for the tests above: the default roots refuse the self-signed certificate.
    let emu = tls_emulator().await;
    let err = builder(&emu, StreamTransport::LongPoll, "wes")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ACS-306", "{err}");
}
