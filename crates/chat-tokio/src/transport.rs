//! The I/O seams: [`HttpTransport`] for REST calls and probes, [`EventTransport`] for the event
//! stream, with the default implementations over reqwest ([`ReqwestTransport`], and
//! [`LongPollTransport`] for long polling through any [`HttpTransport`]). The default long
//! polling of a client is [`Http1LongPollTransport`](crate::Http1LongPollTransport).
//!
//! Every implementation here stops reading a response past
//! [`MAX_RESPONSE_LEN`](chat_core::validate::MAX_RESPONSE_LEN) and reports
//! [`TransportError::Protocol`].
//!
//! An embedder can bring their own HTTP stack, a proxy or an in-memory transport by
//! implementing these traits and passing them to
//! [`ClientBuilder::http_transport`](crate::ClientBuilder::http_transport) and
//! [`ClientBuilder::event_transport`](crate::ClientBuilder::event_transport). The client applies
//! each request's [`timeout`](chat_core::Request::timeout) itself, so implementations need not.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chat_core::{PollOutcome, Request, TransportError};

use chat_driver::{SharedTable, shared_while_used};

use crate::TlsClientConfig;

pub use chat_net::Response;

/// Carries one HTTP exchange: the REST calls of the chat API and the disconnection probes.
///
/// Send [`Request::method`] to [`Request::url`] with every header of [`Request::headers`] and
/// the body, and return the status and body whatever the status. Report a failure to get any
/// answer as a [`TransportError`]. Calls may run concurrently.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait HttpTransport: Send + Sync + 'static {
    /// Sends the request and reads the whole response.
    async fn send(&self, request: Request) -> Result<Response, TransportError>;
}

/// Carries the event stream, one turn at a time.
///
/// Each [`RequestKind::Poll`](chat_core::RequestKind::Poll) request asks for the events after
/// its `last_event_id`; answer with the next batch as a `200` response whose body is the JSON
/// array of server events, or with the status the server refused the stream with (401, 403,
/// 404 "Session not found"...). Only one poll is in flight at a time. A poll may be abandoned
/// (dropped) at any point; the next call is then preceded by [`reset`](Self::reset), which
/// must drop any persistent connection, so that everything not acknowledged is delivered
/// again.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait EventTransport: Send + 'static {
    /// How the turn ended: the next batch of events after the request's cursor, a refusal
    /// (a long poll's 401, 403 or 404 "Session not found", a WebSocket's close codes), any
    /// other HTTP answer, or no answer.
    async fn poll(&mut self, request: Request) -> PollOutcome;

    /// Drops any persistent connection: the previous poll was abandoned or failed.
    async fn reset(&mut self) {}

    /// A short name for logs, such as `"long-poll"`.
    fn name(&self) -> &'static str {
        "custom"
    }
}

/// The default [`HttpTransport`]: a [`reqwest::Client`] with rustls.
///
/// Cheap to clone; clones share the connection pool. Many chat clients may share one (see
/// [`ClientBuilder::http_client`](crate::ClientBuilder::http_client)), as long as they run on
/// the same tokio runtime.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

impl ReqwestTransport {
    /// A transport over a new reqwest client with default settings.
    pub fn new() -> Self {
        Self::with_client(default_client())
    }

    /// A transport over this reqwest client (proxy, extra root certificates...).
    pub fn with_client(client: reqwest::Client) -> Self {
        Self { client }
    }

    /// A transport whose client uses this TLS configuration (as chat-blocking's).
    pub fn with_tls_config(config: &TlsClientConfig) -> Result<Self, TransportError> {
        crate::builder::default_client(Some(config))
            .map(Self::with_client)
            .map_err(|_| TransportError::Connect)
    }
}

impl Default for ReqwestTransport {
    fn default() -> Self {
        Self::new()
    }
}

/// The REST transport of every client built without an HTTP client of the caller's on the
/// current tokio runtime: one reqwest client (its connection pool and TLS state) shared by
/// all of them with the same TLS configuration (none, or the same `Arc`), instead of one
/// each. It lives while a chat client uses it (the table holds it weakly, and the
/// configuration it was made for, so that its address is never another's), and is per
/// runtime because a reqwest client's pooled connections belong to the runtime they were
/// opened on.
pub(crate) fn shared_default(
    tls: Option<&Arc<TlsClientConfig>>,
) -> Result<Arc<dyn HttpTransport>, crate::Error> {
    static SHARED: SharedTable<tokio::runtime::Id, TlsClientConfig, ReqwestTransport> =
        Mutex::new(Vec::new());
    let runtime = tokio::runtime::Handle::current().id();
    let t = shared_while_used(&SHARED, runtime, tls, || {
        crate::builder::default_client(tls.map(|c| &**c)).map(ReqwestTransport::with_client)
    })?;
    Ok(t)
}

/// The reqwest client used when none is given.
pub(crate) fn default_client() -> reqwest::Client {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        // Never carry the appkey, the token or a body to wherever a 3xx points.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

#[async_trait]
impl HttpTransport for ReqwestTransport {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        let method = chat_net::reqwest_method(request.method);
        let mut builder = self.client.request(method, &request.url);
        for (name, value) in request.headers() {
            builder = builder.header(name, value);
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let mut response = builder
            .send()
            .await
            .map_err(|e| chat_net::reqwest_error(&e))?;
        if chat_net::followed_redirect(&request.url, response.url().as_str()) {
            return Err(TransportError::Protocol);
        }
        let status = response.status().as_u16();
        // Refuse an oversized body up front when it says so, and stop reading as soon as
        // it grows past the cap when it does not.
        let mut body = Vec::with_capacity(chat_net::declared_len(response.content_length())?);
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            tracing::debug!(error = %e, "response body failed");
            TransportError::Disconnected
        })? {
            chat_net::append_capped(&mut body, &chunk)?;
        }
        Ok(Response { status, body })
    }
}

/// HTTP long polling (what AXP serves) over an [`HttpTransport`], each poll one
/// `GET …/events?lastEventId=…`: what [`StreamTransport::LongPoll`](crate::StreamTransport::LongPoll)
/// uses when the builder is given an HTTP client or transport of the caller's.
pub type LongPollTransport = chat_net::LongPoll<Arc<dyn HttpTransport>>;

#[async_trait]
impl EventTransport for LongPollTransport {
    async fn poll(&mut self, request: Request) -> PollOutcome {
        chat_net::poll_outcome(self.http.send(request).await)
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use chat_core::validate::MAX_RESPONSE_LEN;

    use super::*;
    use crate::http1::tests::poll_request;

    /// A server that reads one request head, then writes `answer` and closes.
    async fn answering(answer: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                    return;
                }
                head.push(byte[0]);
            }
            let _ = socket.write_all(&answer).await;
        });
        base
    }

    #[tokio::test]
    async fn rest_refuses_a_declared_length_past_the_cap() {
        let base = answering(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
                MAX_RESPONSE_LEN + 1
            )
            .into_bytes(),
        )
        .await;
        let r = ReqwestTransport::new().send(poll_request(&base)).await;
        assert_eq!(r, Err(TransportError::Protocol));
    }

    #[tokio::test]
    async fn rest_stops_reading_a_chunked_body_past_the_cap() {
        let mut answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        let chunk = 64 * 1024;
        for _ in 0..=MAX_RESPONSE_LEN / chunk {
            answer.extend_from_slice(format!("{chunk:x}\r\n").as_bytes());
            answer.resize(answer.len() + chunk, b' ');
            answer.extend_from_slice(b"\r\n");
        }
        answer.extend_from_slice(b"0\r\n\r\n");
        let base = answering(answer).await;
        let r = ReqwestTransport::new().send(poll_request(&base)).await;
        assert_eq!(r, Err(TransportError::Protocol));
    }

    #[tokio::test]
    async fn rest_reads_a_body_up_to_the_cap() {
        let base = answering(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}".to_vec()).await;
        let r = ReqwestTransport::new().send(poll_request(&base)).await;
        assert_eq!(r, Ok(Response::new(201, b"{}".to_vec())));
    }
}
