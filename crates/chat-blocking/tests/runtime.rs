//! Called from inside a tokio runtime (an `async fn`, `#[tokio::main]`): reqwest's blocking
//! client, which panics when it is built, used or dropped there, only ever lives on the
//! client's own threads, so a whole chat works and nothing panics. The emulator runs on the
//! same runtime's workers while the test body blocks its thread.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use chat_blocking::{BoxError, Client, Event, HttpTransport, ReqwestTransport, StreamTransport};
use chat_emulator::{AgentMode, Emulator};
use support::{arrived_with, config, emulator_builder, expect_event};

async fn chat_inside_the_runtime(transport: StreamTransport) {
    let emu: Emulator = emulator_builder(AgentMode::Agent).start().await.unwrap();
    let c = emu.credentials();
    let control = emu.control();
    // A provider asked at connect: called off the runtime's thread too.
    let provider = move || -> Result<String, BoxError> {
        Ok(control.mint_token("rhea", true, Duration::from_secs(3600)))
    };
    let (client, events) = Client::builder(emu.base_url(), &c.integration_id, &c.appkey)
        .token_provider(provider)
        .stream_transport(transport)
        .config(config())
        .connect()
        .unwrap();
    let chat = client.create_engagement().unwrap();
    expect_event(&events, arrived_with("Hello"));
    chat.send_message("from inside a runtime").unwrap();
    expect_event(&events, arrived_with("from inside a runtime"));
    assert_eq!(chat.participants().unwrap().len(), 2);
    client.shutdown(None).unwrap();
    assert_eq!(client.thread_count(), 0);
    let rest: Vec<Event> = events.map(|e| e.event).collect();
    assert!(
        matches!(rest.last(), Some(Event::Shutdown { .. })),
        "{rest:?}"
    );
    assert_eq!(emu.control().stats().sessions, 0);

    // Dropped without a shutdown, inside the runtime: the last handle stops the client.
    let (client, events) = support::connect(&emu, transport, "rhea");
    client.create_engagement().unwrap();
    drop((client, events));
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chat_inside_a_runtime_over_long_polling() {
    chat_inside_the_runtime(StreamTransport::LongPoll).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chat_inside_a_runtime_over_a_websocket() {
    chat_inside_the_runtime(StreamTransport::WebSocket).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reqwest_transport_made_used_and_dropped_inside_a_runtime() {
    let emu = emulator_builder(AgentMode::Off).start().await.unwrap();
    let transport = ReqwestTransport::new();
    let clone = transport.clone();
    drop(transport);
    // chat-core's `init` request (its token is not the emulator's): an answer, not a panic.
    let r = clone.send(support::request_to(&emu.base_url())).unwrap();
    assert_eq!(r.status, 401);
    drop(clone);
    emu.shutdown().await;
}
