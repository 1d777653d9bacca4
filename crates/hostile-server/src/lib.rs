//! Tests only: a hostile AXP server, and the table of cases both chat adapters run against
//! it (`crates/chat-tokio/tests/hostile.rs`, `crates/chat-blocking/tests/hostile.rs`).
//!
//! [`HostileServer`] is a fake AXP chat API on loopback that answers one request of the
//! client, the session's creation or the event stream's polls ([`On`]), with a
//! [`Hostility`]: bodies past the size cap (declared and chunked), an endless chunked body,
//! one byte per second, invalid and deeply nested JSON, 10,000 events in a batch, duplicate
//! and decreasing event ids, a `messageIndex` going backwards, floods of events of unknown
//! engagements, a `307` to another host, 1 MiB of headers, HTTP/1.0 answers, TLS with an
//! untrusted certificate, a kept-alive connection closed as the next poll goes out. Every
//! other request gets the answer AXP would give. [`CASES`] says, for each, what the
//! adapter's own transport makes of the exchange (a typed [`TransportError`](chat_core::TransportError),
//! or the status) and what the client shows ([`Outcome`]), and checks both within a time
//! budget of three times the request's timeout, with bounds on what the client may hold
//! ([`Case::check_run`]) and on what the server had to send ([`Case::check_server`]).
//!
//! **Why a crate of its own**, dev-only and unpublished: the same cases must run against
//! both adapters, so they live below both; the server needs sockets, threads and a
//! certificate generator (rcgen), which have no place in `chat-net`, a shipped crate that is
//! free of I/O, not even behind a feature. It uses std sockets and threads only, so that it
//! serves a tokio client and a blocking one alike, without a runtime of its own.
//!
//! # Example
//!
//! ```
//! use std::io::{Read, Write};
//! use hostile_server::{CASES, HostileServer, Hostility, On};
//!
//! let case = CASES
//!     .iter()
//!     .find(|c| c.hostility == Hostility::RedirectElsewhere && c.on == On::Connect)
//!     .expect("a case");
//! let server = HostileServer::start(case)?;
//! let mut socket = std::net::TcpStream::connect(server.base_url().trim_start_matches("http://"))?;
//! socket.write_all(b"POST /sdk/digital/chat/v1/integrations/i/sessions HTTP/1.1\r\nhost: h\r\ncontent-length: 2\r\n\r\n{}")?;
//! let mut answer = String::new();
//! socket.read_to_string(&mut answer)?;
//! assert!(answer.starts_with("HTTP/1.1 307"), "{answer}");
//! assert!(answer.contains("\r\nlocation: http://127.0.0.1:"));
//! // Nobody followed it.
//! assert!(case.check_server(&server, false).is_ok());
//! # Ok::<(), std::io::Error>(())
//! ```
#![forbid(unsafe_code)]

mod cases;
mod script;
mod server;
mod tls;

use std::time::{Instant, SystemTime};

use chat_core::{AppKey, InitParams, Output, Request, RequestKind, Session, Token};

pub use cases::{
    CASES, Case, EVENT_CAPACITY, Hostility, On, Outcome, Refusal, Run, TIMEOUT, config,
};
pub use script::{DIALOG_ID, ENGAGEMENT_ID, FLOOD, HEADERS_LEN, NESTING, SESSION_ID};
pub use server::{HostileServer, Log, Seen, Written};

// The floods are far past what the client keeps.
const _: () = assert!(FLOOD > chat_core::MAX_ORPHANS * 10 && FLOOD > EVENT_CAPACITY * 10);
const _: () = assert!(HEADERS_LEN == 1024 * 1024 && NESTING == 100_000);

/// The chat integration the clients name (any id will do: the server does not check).
pub const INTEGRATION_ID: &str = "123e4567-e89b-12d3-a456-426614174000";
/// The appkey the clients send.
pub const APPKEY: &str = "hostile-test-appkey";
/// A chat token that never expires (its payload is `{"exp":4000000000}`).
pub const TOKEN: &str = "jwt.e30.eyJleHAiOjQwMDAwMDAwMDB9.signature";

/// The request a case meets (`on`), as chat-core makes it for a session on `base` with
/// [`config`]: the session's creation, or the first poll of its event stream (after the
/// server's usual answers to the session's and the engagement's creation).
pub fn request(base: &str, on: On) -> Request {
    let token = Token::parse(TOKEN).unwrap_or_else(|e| unreachable!("{e}"));
    let params = InitParams::new(base, INTEGRATION_ID, token, AppKey::new(APPKEY))
        .unwrap_or_else(|e| panic!("{base}: {e}"));
    let mut session = Session::new(params, config()).unwrap_or_else(|e| panic!("{e}"));
    let (now, wall) = (Instant::now(), SystemTime::now());
    session.init(now, wall).unwrap_or_else(|e| panic!("{e}"));
    let mut created = false;
    loop {
        match session.poll_output() {
            Output::Transmit(r) if on == On::Connect => return r,
            Output::Transmit(r) if matches!(r.kind, RequestKind::Poll { .. }) => return r,
            Output::Transmit(r) if !created => {
                let body = format!(r#"{{"sessionId":"{SESSION_ID}","engagements":[]}}"#);
                session.handle_response(now, r.id, 201, body.as_bytes());
                session
                    .create_engagement(now, Default::default())
                    .unwrap_or_else(|e| panic!("{e}"));
                created = true;
            }
            Output::Transmit(r) => {
                let body = format!(
                    r#"{{"engagementId":"{ENGAGEMENT_ID}","dialogs":[{{"dialogId":"{DIALOG_ID}","dialogStatus":"PENDING","participants":[]}}]}}"#
                );
                session.handle_response(now, r.id, 201, body.as_bytes());
            }
            Output::Wait(_) => panic!("the session made no request"),
            _ => {}
        }
    }
}

/// A poll's outcome as [`Case::exchange`] states it: the status it stands for, or the
/// failure.
pub fn status_of(outcome: &chat_core::PollOutcome) -> Result<u16, chat_core::TransportError> {
    use chat_core::PollOutcome as P;
    match outcome {
        P::Events(_) => Ok(200),
        P::Unauthorized => Ok(401),
        P::Forbidden => Ok(403),
        P::SessionGone => Ok(404),
        P::Status { status, .. } => Ok(*status),
        P::Failed(e) => Err(*e),
        other => panic!("a poll outcome this suite does not know: {other:?}"),
    }
}

/// Both checks' problems, if any.
pub fn both(a: Result<(), String>, b: Result<(), String>) -> Result<(), String> {
    match (a, b) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Err(a), Err(b)) => Err(format!("{a}; {b}")),
    }
}

/// Prints the results of a table run, one line per case and run, and panics with every
/// failure if there is one. `results` holds, per case, the adapter's name for the run
/// (`"exchange"`, `"client"`) and its check.
pub fn report(adapter: &str, results: &[(&Case, &str, Result<(), String>)]) {
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(case, run, r)| {
            r.as_ref()
                .err()
                .map(|e| format!("{adapter} / {} / {run}: {e}", case.name))
        })
        .collect();
    #[allow(clippy::print_stderr)]
    for (case, run, r) in results {
        eprintln!(
            "{adapter:>8} | {:<58} | {run:<8} | {}",
            case.name,
            if r.is_ok() { "pass" } else { "FAIL" }
        );
    }
    assert!(
        failed.is_empty(),
        "{} of {} failed:\n{}",
        failed.len(),
        results.len(),
        failed.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hostility_is_in_the_table() {
        use Hostility as H;
        for h in [
            H::DeclaredPastCap,
            H::ChunkedPastCap,
            H::EndlessChunked,
            H::OneBytePerSecond,
            H::InvalidJson,
            H::DeepJson,
            H::BigBatch,
            H::DuplicateIds,
            H::IndexBackwards,
            H::UnknownEngagements,
            H::FloodDuringCatchUp,
            H::RedirectElsewhere,
            H::HugeHeaders,
            H::Http10,
            H::UntrustedTls,
            H::ClosedAsNextPollGoesOut,
        ] {
            assert!(CASES.iter().any(|c| c.hostility == h), "{h:?}");
        }
    }

    #[test]
    fn requests_are_the_clients_own() {
        let create = request("http://127.0.0.1:9", On::Connect);
        assert!(create.url.ends_with("/sessions"), "{}", create.url);
        let poll = request("http://127.0.0.1:9", On::Poll);
        assert!(matches!(
            poll.kind,
            RequestKind::Poll {
                last_event_id: None
            }
        ));
        assert_eq!(poll.timeout, TIMEOUT);
    }
}
