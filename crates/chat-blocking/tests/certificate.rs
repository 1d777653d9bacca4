//! A server certificate the client does not trust is reported as such
//! ([`TransportError::Certificate`]: "add its root with custom roots"), not as an unreachable
//! server, by every transport: the REST calls (reqwest), the lean long poll and the WebSocket.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use chat_blocking::{
    AutoTransport, Cancel, ChatError, Error, EventTransport, Http1LongPollTransport, HttpTransport,
    PollOutcome, ReqwestTransport, StreamTransport, TransportError, WebSocketTransport,
};
use chat_emulator::AgentMode;
use support::*;

fn untrusted() -> TestEmulator {
    start(emulator_builder(AgentMode::Off).tls(true))
}

#[test]
fn connect_reports_the_certificate() {
    let emu = untrusted();
    for transport in [
        StreamTransport::LongPoll,
        StreamTransport::WebSocket,
        StreamTransport::Auto,
    ] {
        let err = builder(&emu, transport, "cert").connect().unwrap_err();
        assert_eq!(
            err,
            Error::Chat(ChatError::Unreachable(TransportError::Certificate)),
            "{transport:?}: {err}"
        );
        assert!(err.to_string().contains("custom roots"), "{err}");
    }
}

#[test]
fn every_transport_reports_the_certificate() {
    let emu = untrusted();
    let request = request_to(&emu.base_url());
    assert_eq!(
        ReqwestTransport::new().send(request.clone()),
        Err(TransportError::Certificate),
        "reqwest"
    );
    assert_eq!(
        Http1LongPollTransport::new().poll(request.clone(), &Cancel::new()),
        PollOutcome::Failed(TransportError::Certificate),
        "long poll"
    );
    assert_eq!(
        WebSocketTransport::new().poll(request.clone(), &Cancel::new()),
        PollOutcome::Failed(TransportError::Certificate),
        "WebSocket"
    );
    // Auto falls back to long polling, which says the same.
    let mut auto = AutoTransport::new(
        WebSocketTransport::new(),
        Box::new(Http1LongPollTransport::new()),
        Duration::from_secs(5),
    );
    assert_eq!(
        auto.poll(request, &Cancel::new()),
        PollOutcome::Failed(TransportError::Certificate),
        "auto"
    );
}
