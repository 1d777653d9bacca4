//! No secret reaches a log line or an error: a whole chat over each transport, with the
//! backend's token client (client secret → access token → JWT) as the token provider, a
//! token pushed with `set_token` (in-band over the WebSocket), a refresh after a 401,
//! injected faults and refused calls, traced at TRACE into memory, with the `log` crate's
//! records bridged in as `tracing_subscriber::fmt().init()` does: whatever logs through
//! either facade is captured.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_emulator::{AgentMode, Route};
use chat_tokio::{Client, Event, StreamFailureReason, StreamTransport};
use common::*;
use token_client::{CustomerRequest, TokenClient, TokenClientConfig};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything the run produced that a person could read: errors' `Display` and `Debug`,
/// events' and handles' `Debug`.
#[derive(Default)]
struct Texts(Vec<String>);

impl Texts {
    fn error(&mut self, e: &dyn std::fmt::Debug, d: &dyn std::fmt::Display) {
        self.0.push(format!("{d}"));
        self.0.push(format!("{e:?}"));
    }
}

/// In every message the customer sends: no log line may quote it.
const SAID: &str = "plover-said-7f3a";

fn said(text: &str) -> String {
    format!("{SAID} {text}")
}

/// `text` and its hexadecimal form (how a frame dump shows a payload).
fn forms(text: &str) -> [String; 2] {
    let hex = text.bytes().map(|b| format!("{b:02x}")).collect();
    [text.to_owned(), hex]
}

/// Installs the `log` → `tracing` bridge once per process, as an application's
/// `tracing_subscriber::fmt().init()` does; the records then go to each thread's subscriber.
fn bridge_log() {
    static BRIDGE: std::sync::Once = std::sync::Once::new();
    BRIDGE.call_once(|| tracing_log::LogTracer::init().unwrap());
}

async fn whole_chat(transport: StreamTransport, texts: &mut Texts) -> Vec<String> {
    let emu = emulator(AgentMode::Agent).await;
    let c = emu.credentials().clone();
    let backend = TokenClient::new(TokenClientConfig::new(
        emu.base_url(),
        c.account_id.clone(),
        c.client_id.clone(),
        c.client_secret.clone(),
        c.appkey.clone(),
        c.integration_id.clone(),
    ))
    .unwrap();
    let pusher = backend.clone();
    // Every JWT handed to the client, and every access token, is a secret to look for.
    let minted = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&minted);
    let provider = move || {
        let backend = backend.clone();
        let seen = Arc::clone(&seen);
        async move {
            let jwt = backend
                .generate_jwt(&CustomerRequest::verified("redaction-customer"))
                .await?;
            let token = jwt.token.expose().to_owned();
            seen.lock().unwrap().push(token.clone());
            Ok(token)
        }
    };
    let (client, mut events) = Client::builder(emu.base_url(), &c.integration_id, &c.appkey)
        .token_provider(provider)
        .stream_transport(transport)
        .config(config())
        .connect()
        .await
        .unwrap();
    texts.0.push(format!("{client:?}"));
    let chat = client.create_engagement().await.unwrap();
    texts.0.push(format!("{chat:?}"));
    let (_, before) =
        expect_event_seen(&mut events, |e| matches!(e, Event::MessageArrived(_))).await;
    chat.send_message(&said("first")).await.unwrap();
    expect_event(&mut events, arrived_with("first")).await;

    // A token pushed by the application: over the WebSocket, the next poll sends it in-band
    // (`{"jwtToken": …}`) on the open socket. Two messages: the poll after the first one's
    // arrival carries the token.
    let pushed = pusher
        .generate_jwt(&CustomerRequest::verified("redaction-customer"))
        .await
        .unwrap();
    let pushed = pushed.token.expose().to_owned();
    minted.lock().unwrap().push(pushed.clone());
    client.set_token(&pushed).unwrap();
    chat.send_message(&said("pushed")).await.unwrap();
    expect_event(&mut events, arrived_with("pushed")).await;
    chat.send_message(&said("in-band")).await.unwrap();
    expect_event(&mut events, arrived_with("in-band")).await;

    // A 401 on the stream and a refresh through the provider.
    emu.control().expire_tokens();
    let (_, during) = expect_event_seen(&mut events, |e| {
        matches!(e, Event::EventStreamFailed(f) if f.reason == StreamFailureReason::Unauthorized)
    })
    .await;
    expect_event(&mut events, |e| matches!(e, Event::EventStreamConnected)).await;
    // A 401 on a command, replayed after a refresh.
    emu.control().expire_tokens();
    chat.send_message(&said("after a refresh")).await.unwrap();
    expect_event(&mut events, arrived_with("after a refresh")).await;

    // Faults: the stream drops and fails; a command fails with a server error.
    emu.control().drop_next_polls(1);
    emu.control().fail_next(Route::Events, 503, 1);
    emu.control().fail_next(Route::AnyChat, 500, 1);
    if let Err(e) = chat.send_message(&said("through a fault")).await {
        texts.error(&e, &e);
    }
    chat.send_message(&said("after the faults")).await.unwrap();
    expect_event(&mut events, arrived_with("after the faults")).await;

    // Refused calls: a bad argument, a token that is not one, an oversized text.
    let e = chat.send_message("").await.unwrap_err();
    texts.error(&e, &e);
    let e = chat.send_message(&"x".repeat(5000)).await.unwrap_err();
    texts.error(&e, &e);
    let forged = format!("{}x", minted.lock().unwrap()[0]);
    if let Err(e) = client.set_token(&forged) {
        texts.error(&e, &e);
    }
    if let Err(e) = client.set_token("jwt.eyJub3QiOiJhIHRva2VuIn0.c2ln") {
        texts.error(&e, &e);
    }
    let pager = chat.history(10).await.unwrap();
    texts.0.push(format!("{:?}", pager.items()));
    chat.disconnect(None).await.unwrap();
    client.shutdown(None).await.unwrap();
    for e in before.iter().chain(&during) {
        texts.0.push(format!("{e:?}"));
    }
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(50), events.recv()).await {
        texts.0.push(format!("{e:?}"));
    }
    let mut secrets = vec![
        c.client_secret.clone(),
        c.appkey.clone(),
        emu.control_key().to_owned(),
    ];
    for jwt in minted.lock().unwrap().iter() {
        let parts: Vec<&str> = jwt.split('.').collect();
        secrets.push(jwt.clone());
        // The signature alone is the credential's secret half; the payload names the customer.
        secrets.push(parts[3].to_owned());
        secrets.push(parts[2].to_owned());
    }
    assert!(
        minted.lock().unwrap().len() >= 4,
        "the provider was asked at start and twice on 401, and a token was pushed"
    );
    emu.shutdown().await;
    secrets
}

async fn no_secret_in_logs_or_errors(transport: StreamTransport) {
    bridge_log();
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test's runtime is single-threaded: the client's and the emulator's tasks all run
    // on this thread, under this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);
    // A record of the `log` crate, to show that the bridge delivers them here.
    log::trace!(target: "bridge", "log records are captured");
    let mut texts = Texts::default();
    let secrets = whole_chat(transport, &mut texts).await;
    let logs = String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned();
    assert!(
        logs.lines().count() > 50 && logs.contains("TRACE"),
        "tracing was not captured: {} lines",
        logs.lines().count()
    );
    assert!(
        logs.lines()
            .any(|l| l.contains("bridge") && l.contains("log records are captured")),
        "the log bridge is not installed"
    );
    assert!(texts.0.len() > 10, "{}", texts.0.len());
    for secret in &secrets {
        for form in forms(secret) {
            for line in logs.lines() {
                assert!(!line.contains(&form), "a secret in a log line: {line}");
            }
        }
        for text in &texts.0 {
            assert!(!text.contains(secret.as_str()), "a secret in: {text}");
        }
    }
    // What the customer said is no one's business either (errors and events may show it).
    for form in forms(SAID) {
        for line in logs.lines() {
            assert!(!line.contains(&form), "message text in a log line: {line}");
        }
    }
    if transport == StreamTransport::WebSocket {
        assert!(
            logs.contains("WebSocket: a new token goes in-band"),
            "no in-band token refresh"
        );
    }
}

both!(redaction, super::no_secret_in_logs_or_errors);
