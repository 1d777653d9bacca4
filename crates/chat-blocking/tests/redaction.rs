//! No secret reaches a log line or an error: a whole chat over each transport, with the
//! backend's blocking token client (client secret → access token → JWT) as the token
//! provider, a token pushed with `set_token` (in-band over the WebSocket), refreshes after
//! 401s, injected faults and refused calls, traced at TRACE into memory, with the `log`
//! crate's records bridged in as `tracing_subscriber::fmt().init()` does. Alone in its test
//! binary: the subscriber is global, as the client logs from its own threads.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_blocking::{BoxError, Client, Event, StreamFailureReason, StreamTransport};
use chat_emulator::{AgentMode, Route};
use support::*;
use token_client::{CustomerRequest, TokenClientConfig, blocking::TokenClient};

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

/// Runs the chat; returns the secrets to look for and everything a person could read.
fn whole_chat(transport: StreamTransport, texts: &mut Vec<String>) -> Vec<String> {
    let emu = emulator(AgentMode::Agent);
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
    let minted = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&minted);
    let provider = move || -> Result<String, BoxError> {
        let jwt = backend.generate_jwt(&CustomerRequest::verified("redaction-customer"))?;
        let token = jwt.token.expose().to_owned();
        seen.lock().unwrap().push(token.clone());
        Ok(token)
    };
    let (client, events) = Client::builder(emu.base_url(), &c.integration_id, &c.appkey)
        .token_provider(provider)
        .stream_transport(transport)
        .config(config())
        .connect()
        .unwrap();
    texts.push(format!("{client:?}"));
    texts.push(format!("{events:?}"));
    let chat = client.create_engagement().unwrap();
    texts.push(format!("{chat:?}"));
    let (_, before) = expect_event_seen(&events, |e| matches!(e, Event::MessageArrived(_)));
    chat.send_message(&said("first")).unwrap();
    expect_event(&events, arrived_with("first"));

    // A token pushed by the application: over the WebSocket, the next poll sends it in-band
    // (`{"jwtToken": …}`) on the open socket. Two messages: the poll after the first one's
    // arrival carries the token.
    let pushed = pusher
        .generate_jwt(&CustomerRequest::verified("redaction-customer"))
        .unwrap();
    let pushed = pushed.token.expose().to_owned();
    minted.lock().unwrap().push(pushed.clone());
    client.set_token(&pushed).unwrap();
    chat.send_message(&said("pushed")).unwrap();
    expect_event(&events, arrived_with("pushed"));
    chat.send_message(&said("in-band")).unwrap();
    expect_event(&events, arrived_with("in-band"));

    // A 401 on the stream and a refresh through the provider; a 401 on a command, replayed.
    emu.control().expire_tokens();
    let (_, during) = expect_event_seen(
        &events,
        |e| matches!(e, Event::EventStreamFailed(f) if f.reason == StreamFailureReason::Unauthorized),
    );
    expect_event(&events, |e| matches!(e, Event::EventStreamConnected));
    emu.control().expire_tokens();
    chat.send_message(&said("after a refresh")).unwrap();
    expect_event(&events, arrived_with("after a refresh"));

    // Faults: the stream fails; a command fails with a server error.
    emu.control().fail_next(Route::Events, 503, 1);
    emu.control().fail_next(Route::Messages, 500, 1);
    if let Err(e) = chat.send_message(&said("through a fault")) {
        texts.push(format!("{e} {e:?}"));
    }
    chat.send_message(&said("after the faults")).unwrap();
    expect_event(&events, arrived_with("after the faults"));

    // Refused calls: a bad argument, a forged token, a token that is not one.
    let e = chat.send_message("").unwrap_err();
    texts.push(format!("{e} {e:?}"));
    let forged = format!("{}x", minted.lock().unwrap()[0]);
    if let Err(e) = client.set_token(&forged) {
        texts.push(format!("{e} {e:?}"));
    }
    if let Err(e) = client.set_token("jwt.eyJub3QiOiJhIHRva2VuIn0.c2ln") {
        texts.push(format!("{e} {e:?}"));
    }
    texts.push(format!("{:?}", chat.history(10).unwrap().items()));
    chat.disconnect(None).unwrap();
    client.shutdown(None).unwrap();
    for e in before.iter().chain(&during) {
        texts.push(format!("{e:?}"));
    }
    while let Ok(e) = events.recv_timeout(Duration::from_millis(50)) {
        texts.push(format!("{e:?}"));
    }
    let mut secrets = vec![c.client_secret.clone(), c.appkey.clone()];
    for jwt in minted.lock().unwrap().iter() {
        let parts: Vec<&str> = jwt.split('.').collect();
        secrets.push(jwt.clone());
        secrets.push(parts[3].to_owned());
        secrets.push(parts[2].to_owned());
    }
    assert!(
        minted.lock().unwrap().len() >= 4,
        "asked at start and twice on 401, and a token pushed"
    );
    secrets
}

#[test]
fn no_secret_in_logs_or_errors() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    // The `log` → `tracing` bridge, as `tracing_subscriber::fmt().init()` installs it.
    tracing_log::LogTracer::init().unwrap();
    log::trace!(target: "bridge", "log records are captured");
    for transport in [StreamTransport::LongPoll, StreamTransport::WebSocket] {
        let mut texts = Vec::new();
        let secrets = whole_chat(transport, &mut texts);
        let logs = String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned();
        assert!(
            logs.lines().count() > 50 && logs.contains("chat_blocking"),
            "tracing was not captured: {} lines",
            logs.lines().count()
        );
        assert!(
            logs.lines()
                .any(|l| l.contains("bridge") && l.contains("log records are captured")),
            "the log bridge is not installed"
        );
        assert!(texts.len() > 10, "{}", texts.len());
        for secret in &secrets {
            for form in forms(secret) {
                for line in logs.lines() {
                    assert!(!line.contains(&form), "a secret in a log line: {line}");
                }
            }
            for text in &texts {
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
}
