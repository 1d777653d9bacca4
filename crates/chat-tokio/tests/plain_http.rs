//! chat-tokio refuses plain `http://` hosts that are not loopback before any network call,
//! on every transport, unless the application opts in.
#![allow(clippy::unwrap_used)]

mod common;

use chat_emulator::AgentMode;
use chat_tokio::{Client, StreamTransport};
use common::*;

#[tokio::test]
async fn plain_http_to_a_host_that_is_not_loopback_is_refused() {
    let emu = emulator(AgentMode::Off).await;
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
            "http://evil.com\\.localhost",
            "HTTP://example.com",
        ] {
            let err = Client::builder(host, &c.integration_id, &c.appkey)
                .token(token(&emu, "plain"))
                .stream_transport(transport)
                .config(config())
                .connect()
                .await
                .unwrap_err();
            assert_eq!(err.code(), "ACS-302", "{host} {transport:?}: {err}");
        }
        // Loopback over plain http is fine (the emulator here), in any case of the scheme.
        let base = emu.base_url().replacen("http", "HTTP", 1);
        let (client, _events) = Client::builder(base, &c.integration_id, &c.appkey)
            .token(token(&emu, "plain"))
            .stream_transport(transport)
            .config(config())
            .connect()
            .await
            .unwrap();
        client.shutdown(None).await.unwrap();
    }
    assert_eq!(
        emu.control().stats().sessions,
        0,
        "every session was closed"
    );
    emu.shutdown().await;
}
