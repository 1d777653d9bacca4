//! The I/O seams: [`HttpTransport`] for REST calls, [`EventTransport`] for the event stream
//! (polls and probes), [`Cancel`] to interrupt a blocking poll from another thread, and the
//! default implementations over reqwest's blocking client ([`ReqwestTransport`], and
//! [`LongPollTransport`] for long polling through any [`HttpTransport`]). The default long
//! polling of a client is [`Http1LongPollTransport`](crate::Http1LongPollTransport).
//!
//! Every implementation here stops reading a response past [`MAX_RESPONSE_LEN`] and reports
//! [`TransportError::Protocol`].
//!
//! An embedder can bring their own HTTP stack, a proxy or an in-memory transport by
//! implementing these traits and passing them to
//! [`ClientBuilder::http_transport`](crate::ClientBuilder::http_transport) and
//! [`ClientBuilder::event_transport`](crate::ClientBuilder::event_transport). chat-core
//! times each request out itself (at its [`timeout`](chat_core::Request::timeout) a late answer
//! is ignored), but a thread blocked in a transport can only be waited for: implementations
//! should bound their own calls by the request's timeout, and event transports should honour
//! [`Cancel`].

use std::io::Read;
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};

use chat_core::validate::MAX_RESPONSE_LEN;
use chat_core::{PollOutcome, Request, TransportError};
use chat_driver::{SharedTable, shared_while_used};

use crate::TlsClientConfig;
use crate::threads::on_own_thread;

pub use chat_net::Response;

/// Interrupts one poll that blocks on another thread.
///
/// The client makes one per poll. A transport registers each socket the poll uses with
/// [`watch`](Self::watch); [`cancel`](Self::cancel) (called by the client when chat-core
/// aborts the poll, at its timeout, or at shutdown) shuts that socket down, so that the
/// blocked read returns at once. Blocking sockets have no other way to be woken.
#[derive(Clone, Default)]
pub struct Cancel(Arc<Mutex<CancelState>>);

#[derive(Default)]
struct CancelState {
    cancelled: bool,
    socket: Option<TcpStream>,
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl Cancel {
    /// A cancel handle not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CancelState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers the socket the poll is about to block on. Fails with
    /// [`TransportError::Disconnected`] (and shuts the socket down) if the poll is already
    /// cancelled.
    pub fn watch(&self, socket: &TcpStream) -> Result<(), TransportError> {
        let mut state = self.state();
        if state.cancelled {
            let _ = socket.shutdown(Shutdown::Both);
            return Err(TransportError::Disconnected);
        }
        state.socket = socket.try_clone().ok();
        Ok(())
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.state().cancelled
    }

    /// Cancels the poll: the watched socket is shut down, and any later
    /// [`watch`](Self::watch) fails.
    pub fn cancel(&self) {
        let mut state = self.state();
        state.cancelled = true;
        if let Some(socket) = state.socket.take() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// Carries one HTTP exchange: the REST calls of the chat API.
///
/// Send [`Request::method`] to [`Request::url`] with every header of [`Request::headers`] and
/// the body, and return the status and body whatever the status. Report a failure to get any
/// answer as a [`TransportError`]. Calls run concurrently, each on a thread of its own.
pub trait HttpTransport: Send + Sync + 'static {
    /// Sends the request and reads the whole response.
    fn send(&self, request: Request) -> Result<Response, TransportError>;
}

/// Carries the event stream, one turn at a time, on the client's stream thread.
///
/// Each [`RequestKind::Poll`](chat_core::RequestKind::Poll) request asks for the events after
/// its `last_event_id`; answer with the next batch ([`PollOutcome::Events`], the JSON array of
/// server events), the refusal the server answered with ([`PollOutcome::Unauthorized`],
/// [`PollOutcome::SessionGone`]...: [`PollOutcome::from_http`] maps a long poll's status), or
/// the failure to get any answer. Only one poll is in flight at a time. When a poll is
/// cancelled (see [`Cancel`]) or fails, the next call is preceded by
/// [`reset`](Self::reset), which must drop any persistent connection, so that everything not
/// acknowledged is delivered again.
pub trait EventTransport: Send + 'static {
    /// How the turn ended: the next batch of events after the request's cursor, a refusal,
    /// any other HTTP answer, or no answer. Register the sockets you block on with `cancel`.
    fn poll(&mut self, request: Request, cancel: &Cancel) -> PollOutcome;

    /// Drops any persistent connection: the previous poll was abandoned or failed.
    fn reset(&mut self) {}

    /// A short name for logs, such as `"long-poll"`.
    fn name(&self) -> &'static str {
        "custom"
    }
}

impl<T: EventTransport + ?Sized> EventTransport for Box<T> {
    fn poll(&mut self, request: Request, cancel: &Cancel) -> PollOutcome {
        (**self).poll(request, cancel)
    }
    fn reset(&mut self) {
        (**self).reset();
    }
    fn name(&self) -> &'static str {
        (**self).name()
    }
}

/// The default [`HttpTransport`]: a [`reqwest::blocking::Client`] with rustls.
///
/// Cheap to clone; clones share the connection pool. reqwest's blocking client runs one
/// thread of its own, which stops when the last clone is dropped (the chat client drops its
/// own at shutdown).
///
/// reqwest's blocking client panics when it is built, used or dropped inside a tokio
/// runtime's context; this transport never lets it: it builds, uses and drops the client on
/// a thread of its own when the calling thread is not one of the chat client's, so it may be
/// made, used and dropped from an `async fn` too.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    /// `None` if reqwest could not build one; calls then fail with
    /// [`TransportError::Connect`]. Taken only by `drop`.
    client: Option<reqwest::blocking::Client>,
}

impl ReqwestTransport {
    /// A transport over a new reqwest client with default settings.
    pub fn new() -> Self {
        let client = build(
            reqwest::blocking::Client::builder()
                .tcp_nodelay(true)
                // Never carry the appkey, the token or a body to wherever a 3xx points.
                .redirect(reqwest::redirect::Policy::none()),
        )
        .map_err(|e| tracing::warn!(error = %e, "HTTP client failed"))
        .ok();
        Self { client }
    }

    /// A transport over this reqwest client (proxy, extra root certificates...).
    pub fn with_client(client: reqwest::blocking::Client) -> Self {
        Self {
            client: Some(client),
        }
    }

    /// A transport whose client uses this TLS configuration.
    pub fn with_tls_config(config: &TlsClientConfig) -> Result<Self, TransportError> {
        let builder = reqwest::blocking::Client::builder()
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .use_preconfigured_tls(config.clone());
        build(builder).map(Self::with_client).map_err(|e| {
            tracing::warn!(error = %e, "HTTP client with the TLS configuration failed");
            TransportError::Connect
        })
    }
}

impl Default for ReqwestTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ReqwestTransport {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // The last clone joins reqwest's thread: not on a runtime's thread either.
            on_own_thread(move || drop(client));
        }
    }
}

/// The REST transport of every client built without an HTTP client of the caller's: one
/// reqwest client (its connection pool, TLS state and runtime thread) shared by all the
/// clients alive in the process with the same TLS configuration (none, or the same `Arc`),
/// instead of one each. The table holds it weakly (and the configuration it was made for, so
/// that its address is never another's): the last client to stop drops it, which joins
/// reqwest's thread, so that no thread outlives the clients.
pub(crate) fn shared_default(
    tls: Option<&Arc<TlsClientConfig>>,
) -> Result<Arc<dyn HttpTransport>, TransportError> {
    static SHARED: SharedTable<(), TlsClientConfig, ReqwestTransport> = Mutex::new(Vec::new());
    let t = shared_while_used(&SHARED, (), tls, || match tls {
        Some(c) => ReqwestTransport::with_tls_config(c),
        None => Ok(ReqwestTransport::new()),
    })?;
    Ok(t)
}

/// Builds a reqwest blocking client on a thread of the client's own.
fn build(builder: reqwest::blocking::ClientBuilder) -> Result<reqwest::blocking::Client, String> {
    on_own_thread(move || builder.build().map_err(|e| e.to_string()))
        .unwrap_or_else(|| Err("no thread to build it on".to_owned()))
}

impl HttpTransport for ReqwestTransport {
    fn send(&self, request: Request) -> Result<Response, TransportError> {
        let Some(client) = &self.client else {
            return Err(TransportError::Connect);
        };
        on_own_thread(|| send(client, request)).unwrap_or(Err(TransportError::Connect))
    }
}

fn send(client: &reqwest::blocking::Client, request: Request) -> Result<Response, TransportError> {
    let method = chat_net::reqwest_method(request.method);
    let mut builder = client
        .request(method, &request.url)
        .timeout(request.timeout);
    for (name, value) in request.headers() {
        builder = builder.header(name, value);
    }
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    let response = builder.send().map_err(|e| chat_net::reqwest_error(&e))?;
    if chat_net::followed_redirect(&request.url, response.url().as_str()) {
        return Err(TransportError::Protocol);
    }
    let status = response.status().as_u16();
    // Refuse an oversized body up front when it says so, and stop reading one byte past
    // the cap when it does not.
    let mut body = Vec::with_capacity(chat_net::declared_len(response.content_length())?);
    response
        .take(MAX_RESPONSE_LEN as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| {
            tracing::debug!(error = %e, "response body failed");
            if e.kind() == std::io::ErrorKind::TimedOut {
                TransportError::Timeout
            } else {
                TransportError::Disconnected
            }
        })?;
    if body.len() > MAX_RESPONSE_LEN {
        return Err(TransportError::Protocol);
    }
    Ok(Response { status, body })
}

/// HTTP long polling over an [`HttpTransport`], each poll one `GET …/events?lastEventId=…`:
/// what [`StreamTransport::LongPoll`](crate::StreamTransport::LongPoll) uses when the builder
/// is given an HTTP client or transport of the caller's. It cannot be interrupted: a
/// cancelled poll ends at its timeout.
pub type LongPollTransport = chat_net::LongPoll<Arc<dyn HttpTransport>>;

impl EventTransport for LongPollTransport {
    fn poll(&mut self, request: Request, _cancel: &Cancel) -> PollOutcome {
        chat_net::poll_outcome(self.http.send(request))
    }

    fn name(&self) -> &'static str {
        "long-poll"
    }
}

impl std::fmt::Debug for dyn EventTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
