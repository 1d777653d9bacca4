//! The WebSocket form of the event stream, without I/O: the protocol itself (RFC 6455: the
//! opening [`handshake`] and the [`frame`] codec, for the client and the server role), the
//! messages a poll sends (the cursor as `{"lastEventId": …}`, a refreshed token as
//! `{"jwtToken": …}`), what a pushed text message and a close code answer, and
//! [`AutoMode`], `StreamTransport::Auto`'s decision.
//!
//! The protocol is written here rather than taken from a WebSocket library because such
//! libraries log the upgrade request (the `appkey` and the `Bearer` token) and frame payloads
//! (the in-band token, message text) at trace level through the `log` crate, which an
//! application's subscriber picks up; nothing here logs more than lengths and kinds.
//!
//! ```
//! use chat_net::ws::{WsCursor, closed};
//!
//! // After the upgrade (cursor "7" in its URL), the server acknowledges "9" in a message.
//! let mut cursor = WsCursor::new(Some("7".to_owned()), "Bearer jwt.a".to_owned());
//! assert_eq!(cursor.outgoing(Some("9"), "Bearer jwt.a").as_deref(), Some(r#"{"lastEventId":"9"}"#));
//! assert_eq!(cursor.outgoing(Some("9"), "Bearer jwt.a"), None);
//! // Close code 4404 is the refusal long polling answers with 404 "Session not found".
//! assert_eq!(closed(Some(4404)), chat_core::PollOutcome::SessionGone);
//! ```

use std::time::Duration;

use chat_core::validate::MAX_RESPONSE_LEN;
use chat_core::{PollOutcome, Request, RequestKind, TransportError};

mod client;
pub mod frame;
pub mod handshake;

pub use client::{
    Auto, AutoRoute, ClientSocket, Connection, Step, Upgraded, accept, unless_upgraded,
    upgrade_failed,
};

/// Read buffer of a socket (frames larger than this are still read whole): a chat stream
/// carries small frames, and a process may hold thousands of sockets.
pub const READ_BUFFER: usize = 4096;
/// The largest message or frame accepted: the response cap.
pub const MAX_MESSAGE: usize = MAX_RESPONSE_LEN;

/// The events URL as a WebSocket URL (`http` → `ws`, `https` → `wss`).
pub fn websocket_url(url: &str) -> String {
    match url.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("http") => format!("ws{}", &url[4..]),
        _ => url.to_owned(),
    }
}

/// Whether the URL needs TLS (`https:` or `wss:`).
pub fn is_tls_url(url: &str) -> bool {
    let lower = url.get(..6).unwrap_or_default().to_ascii_lowercase();
    lower.starts_with("https:") || lower.starts_with("wss:")
}

/// The request's `Authorization` value (empty if none).
pub fn bearer(request: &Request) -> String {
    request
        .headers()
        .find(|(n, _)| *n == "Authorization")
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

/// The poll's cursor, if it has one.
pub fn last_event_id(request: &Request) -> Option<&str> {
    match &request.kind {
        RequestKind::Poll { last_event_id } => last_event_id.as_deref(),
        _ => None,
    }
}

/// What the server of one WebSocket knows: the cursor and the token it was last given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsCursor {
    acked: Option<String>,
    bearer: String,
}

impl WsCursor {
    /// After an upgrade that carried this cursor (in its URL) and this `Authorization`.
    pub fn new(acked: Option<String>, bearer: String) -> Self {
        Self { acked, bearer }
    }

    /// After the upgrade of this poll.
    pub fn upgraded(request: &Request) -> Self {
        Self::new(last_event_id(request).map(str::to_owned), bearer(request))
    }

    /// The text message a poll sends before waiting, if the server needs to be told anything:
    /// a new token (`jwtToken`, without `Bearer `) and/or a cursor that moved (`lastEventId`).
    pub fn outgoing(&mut self, last_event_id: Option<&str>, bearer: &str) -> Option<String> {
        let mut frame = serde_json::Map::new();
        if bearer != self.bearer {
            tracing::debug!("WebSocket: a new token goes in-band");
            let token = bearer.strip_prefix("Bearer ").unwrap_or(bearer);
            frame.insert("jwtToken".to_owned(), token.into());
            bearer.clone_into(&mut self.bearer);
        }
        if let Some(id) = last_event_id {
            if self.acked.as_deref() != Some(id) {
                frame.insert("lastEventId".to_owned(), id.into());
                self.acked = Some(id.to_owned());
            }
        }
        (!frame.is_empty()).then(|| serde_json::Value::Object(frame).to_string())
    }

    /// [`outgoing`](Self::outgoing) for this poll.
    pub fn outgoing_for(&mut self, request: &Request) -> Option<String> {
        self.outgoing(last_event_id(request), &bearer(request))
    }
}

/// How long a poll waits for a pushed message before answering [`idle`]: 60 % of its
/// timeout, so that the core never sees the poll time out on a quiet stream.
pub fn hold(timeout: Duration) -> Duration {
    timeout.mul_f32(0.6)
}

/// The answer of a poll that got no message in time, as a long poll's: `200 []`.
pub fn idle() -> PollOutcome {
    PollOutcome::Events(b"[]".to_vec())
}

/// The answer of a poll that got a pushed text message: a batch of events.
pub fn batch(text: String) -> PollOutcome {
    PollOutcome::Events(text.into_bytes())
}

/// What the closing of the socket means, by close code (`None`: no code, 1005): 4401, 4403
/// and 4404 are the refusals long polling answers with 401, 403 and 404 "Session not
/// found"; 4400 is a protocol error; anything else a network failure.
pub fn closed(code: Option<u16>) -> PollOutcome {
    match code.unwrap_or(1005) {
        4401 => PollOutcome::Unauthorized,
        4403 => PollOutcome::Forbidden,
        4404 => PollOutcome::SessionGone,
        4400 => PollOutcome::Failed(TransportError::Protocol),
        _ => PollOutcome::Failed(TransportError::Disconnected),
    }
}

/// Whether the socket may carry the next poll after this outcome (only after a batch).
pub fn keeps_socket(outcome: &PollOutcome) -> bool {
    matches!(outcome, PollOutcome::Events(_))
}

/// `StreamTransport::Auto`'s choice: undecided until the first upgrade attempt, then the
/// WebSocket or long polling for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoMode {
    /// No upgrade tried yet (or it was refused for the session's or token's sake).
    #[default]
    Undecided,
    /// The server upgraded.
    WebSocket,
    /// The server did not: long polling.
    LongPoll,
}

impl AutoMode {
    /// `Some(true)` for the WebSocket, `Some(false)` for long polling, `None` undecided.
    pub fn uses_websocket(self) -> Option<bool> {
        match self {
            Self::Undecided => None,
            Self::WebSocket => Some(true),
            Self::LongPoll => Some(false),
        }
    }

    /// A short name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::WebSocket => "auto (websocket)",
            Self::LongPoll => "auto (long-poll)",
            Self::Undecided => "auto",
        }
    }

    /// Whether an upgrade refused with this status is passed on as it is, still undecided
    /// (401, 403 and 404 concern the session or the token, not the transport), rather than
    /// a reason to fall back to long polling.
    pub fn passes_on(status: u16) -> bool {
        matches!(status, 401 | 403 | 404)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(websocket_url("https://h/e"), "wss://h/e");
        assert_eq!(websocket_url("HTTP://h/e"), "ws://h/e");
        assert_eq!(websocket_url("wss://h/e"), "wss://h/e");
        assert!(is_tls_url("HTTPS://h") && is_tls_url("wss://h"));
        assert!(!is_tls_url("http://h") && !is_tls_url("ws://h") && !is_tls_url("h"));
    }

    #[test]
    fn the_cursor_and_a_new_token_are_sent_once() {
        let mut c = WsCursor::new(None, "Bearer a".to_owned());
        assert_eq!(c.outgoing(None, "Bearer a"), None);
        assert_eq!(
            c.outgoing(Some("3"), "Bearer b").as_deref(),
            Some(r#"{"jwtToken":"b","lastEventId":"3"}"#)
        );
        assert_eq!(c.outgoing(Some("3"), "Bearer b"), None);
        assert_eq!(
            c.outgoing(Some("3"), "Bearer c").as_deref(),
            Some(r#"{"jwtToken":"c"}"#)
        );
    }

    #[test]
    fn close_codes_are_the_refusals_they_stand_for() {
        assert_eq!(closed(Some(4401)), PollOutcome::Unauthorized);
        assert_eq!(closed(Some(4403)), PollOutcome::Forbidden);
        assert_eq!(closed(Some(4404)), PollOutcome::SessionGone);
        assert_eq!(
            closed(Some(4400)),
            PollOutcome::Failed(TransportError::Protocol)
        );
        assert_eq!(
            closed(Some(1000)),
            PollOutcome::Failed(TransportError::Disconnected)
        );
        assert_eq!(
            closed(None),
            PollOutcome::Failed(TransportError::Disconnected)
        );
        assert!(keeps_socket(&idle()) && keeps_socket(&batch("[]".to_owned())));
        assert!(!keeps_socket(&closed(Some(4401))));
    }

    #[test]
    fn auto() {
        assert_eq!(AutoMode::default().uses_websocket(), None);
        assert_eq!(AutoMode::WebSocket.uses_websocket(), Some(true));
        assert_eq!(AutoMode::LongPoll.name(), "auto (long-poll)");
        assert!(AutoMode::passes_on(404) && !AutoMode::passes_on(400) && !AutoMode::passes_on(200));
        assert_eq!(hold(Duration::from_secs(10)), Duration::from_secs(6));
    }
}
