//! Requests the core asks the adapter to send, as plain data.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::ids::{RequestId, SessionId};

/// HTTP method of a [`Request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `DELETE`
    Delete,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Delete => "DELETE",
        }
    }
}

/// What a request is for, so that an adapter can carry the event stream its own way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKind {
    /// A REST call of the chat API.
    Rest,
    /// One turn of the event stream: "give me the events after `last_event_id`".
    ///
    /// Over HTTP long polling this is the `GET …/events` of [`Request::url`]. A WebSocket
    /// transport instead keeps one socket open, sends `{"lastEventId": …}` as the
    /// acknowledgement of the previous turn, and answers this request with the next pushed
    /// batch as a `200` response. At most one poll is in flight at any time.
    Poll {
        /// The cursor: the last event the core has processed, if any.
        last_event_id: Option<String>,
    },
    /// A disconnection probe: a plain `GET …/events` with `x-route-request`, whose body is
    /// ignored. Always sent over HTTP.
    Probe,
}

/// How one turn of the event stream ended, as its transport saw it: see
/// [`Session::handle_poll`](crate::Session::handle_poll).
///
/// A long poll is an HTTP exchange ([`from_http`](Self::from_http) sorts its status); a
/// WebSocket reports its pushed message as [`Events`](Self::Events) and its close codes as
/// the refusals they stand for, without dressing them up as HTTP answers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PollOutcome {
    /// A batch of events: the JSON array as received (a long poll's `200` body).
    Events(Vec<u8>),
    /// The token was refused (HTTP 401, WebSocket close 4401).
    Unauthorized,
    /// The token is not valid here (HTTP 403, WebSocket close 4403).
    Forbidden,
    /// The server no longer knows the session (HTTP 404 "Session not found", close 4404).
    SessionGone,
    /// Any other HTTP answer.
    Status {
        /// The status.
        status: u16,
        /// The body.
        body: Vec<u8>,
    },
    /// No answer: the connection failed, broke, or the answer could not be read.
    Failed(crate::TransportError),
}

impl PollOutcome {
    /// A long poll's HTTP answer, sorted by status.
    pub fn from_http(status: u16, body: Vec<u8>) -> Self {
        match status {
            200 => Self::Events(body),
            401 => Self::Unauthorized,
            403 => Self::Forbidden,
            404 if crate::wire::is_session_not_found(&body) => Self::SessionGone,
            _ => Self::Status { status, body },
        }
    }
}

/// An HTTP request to send, with everything needed to send it.
///
/// `Debug` shows the method, URL and kind, never the `Authorization` or `appkey` values.
#[derive(Clone)]
pub struct Request {
    /// Quote this id when reporting the response or failure.
    pub id: RequestId,
    /// The method.
    pub method: Method,
    /// Absolute URL, path and query included.
    pub url: String,
    /// JSON body of a `POST`.
    pub body: Option<String>,
    /// How long the core waits for the outcome: past it, the core aborts the request and
    /// counts it as timed out. A transport may use it to bound its own blocking calls.
    pub timeout: Duration,
    /// What the request is for.
    pub kind: RequestKind,
    pub(crate) bearer: Arc<str>,
    pub(crate) appkey: Arc<str>,
    pub(crate) route: Option<SessionId>,
    pub(crate) user_agent: Arc<str>,
}

/// This SDK's `User-Agent`: its name and version.
pub const USER_AGENT: &str = concat!("axp-chat-rs/", env!("CARGO_PKG_VERSION"));

impl Request {
    /// The headers to send, in order: `Authorization`, `appkey`, then `Content-Type` on a
    /// request with a body, `x-route-request` on a probe, and `User-Agent` (this SDK's name
    /// and version, and the application's product if it gave one).
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            Some(("Authorization", &*self.bearer)),
            Some(("appkey", &*self.appkey)),
            self.body
                .as_ref()
                .map(|_| ("Content-Type", "application/json")),
            self.route
                .as_ref()
                .map(|sid| ("x-route-request", sid.as_str())),
            Some(("User-Agent", &*self.user_agent)),
        ]
        .into_iter()
        .flatten()
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("method", &self.method)
            .field("url", &self.url)
            .field("kind", &self.kind)
            .field("body_len", &self.body.as_ref().map(String::len))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
