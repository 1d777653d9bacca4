//! `StreamTransport::Auto`: the WebSocket when the server upgrades, long polling otherwise.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chat_emulator::{AgentMode, Emulator};
use chat_tokio::{Client, Event, StreamTransport};
use common::*;

#[tokio::test]
async fn auto_uses_the_websocket_when_offered() {
    let emu = emulator(AgentMode::Agent).await;
    let (client, mut events) = connect(&emu, StreamTransport::Auto, "quinn").await;
    let chat = client.create_engagement(Default::default()).await.unwrap();
    expect_event(&mut events, arrived_with("Hello")).await;
    chat.send_message("over auto", None).await.unwrap();
    expect_event(&mut events, arrived_with("over auto")).await;
    assert!(emu.control().stats().ws_connections >= 1);
    client.shutdown(None).await.unwrap();
}

#[tokio::test]
async fn auto_falls_back_to_long_polling() {
    // HTTPS with a certificate the WebSocket's default roots do not trust, while the HTTP
    // client does: the upgrade fails, long polling works.
    let emu = Emulator::builder()
        .tls(true)
        .hold_time(Duration::from_millis(400))
        .agent_delay(Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    let pem = emu.ca_cert_pem().unwrap().as_bytes().to_vec();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let c = emu.credentials();
    assert!(emu.base_url().starts_with("https://"));
    let (client, mut events) = Client::builder(emu.base_url(), &c.integration_id, &c.appkey)
        .token(token(&emu, "rita"))
        .http_client(http)
        .stream_transport(StreamTransport::Auto)
        .ws_upgrade_timeout(Duration::from_secs(1))
        .config(config())
        .connect()
        .await
        .unwrap();
    let chat = client.create_engagement(Default::default()).await.unwrap();
    expect_event(&mut events, |e| matches!(e, Event::MessageArrived(_))).await;
    chat.send_message("over long polling", None).await.unwrap();
    expect_event(&mut events, arrived_with("over long polling")).await;
    assert_eq!(emu.control().stats().ws_connections, 0);
    client.shutdown(None).await.unwrap();
}
