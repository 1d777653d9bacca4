//! The WebSocket event transport (the emulator's WebSocket form of the events resource) and
//! [`AutoTransport`], which tries it and falls back to long polling.

use std::time::Duration;

use async_trait::async_trait;
use chat_core::{Request, TransportError};
use chat_net::ws::{self, AutoMode, WsCursor, websocket_url};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::transport::{EventTransport, Response};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Connection {
    socket: Socket,
    /// The cursor and token the server knows.
    cursor: WsCursor,
}

/// Carries the event stream over one WebSocket (`ws://` or `wss://` on the events resource).
///
/// A poll sends the cursor as `{"lastEventId": …}` when it moved (and a new token as
/// `{"jwtToken": …}` in-band after a refresh), then waits for the next pushed frame. When no
/// frame comes for 60 % of the poll timeout it answers `200 []`, as a long poll would. The close
/// codes 4401, 4403 and 4404 become the 401, 403 and 404 "Session not found" answers of long
/// polling; any other loss of the connection is a network failure, after which the next poll
/// reconnects with the cursor in the URL, so that nothing unacknowledged is lost.
pub struct WebSocketTransport {
    connection: Option<Connection>,
    connector: Option<Connector>,
}

impl std::fmt::Debug for WebSocketTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketTransport")
            .field("connected", &self.connection.is_some())
            .finish()
    }
}

impl Default for WebSocketTransport {
    fn default() -> Self {
        Self::new()
    }
}

/// The outcome of an upgrade attempt.
pub(crate) enum Opened {
    Yes,
    /// The server answered the upgrade with a plain HTTP status.
    Refused(Response),
}

impl WebSocketTransport {
    /// A WebSocket transport with the default TLS setup (rustls, webpki roots; one
    /// configuration shared by the whole process).
    pub fn new() -> Self {
        Self {
            connection: None,
            connector: None,
        }
    }

    /// A WebSocket transport with this TLS connector (for instance a rustls configuration
    /// trusting the emulator's self-signed certificate).
    pub fn with_connector(connector: Connector) -> Self {
        Self {
            connection: None,
            connector: Some(connector),
        }
    }

    pub(crate) async fn open(&mut self, request: &Request) -> Result<Opened, TransportError> {
        self.connection = None;
        let url = websocket_url(&request.url);
        let mut upgrade = url
            .into_client_request()
            .map_err(|_| TransportError::Connect)?;
        for (name, value) in request.headers() {
            if name == "Content-Type" {
                continue;
            }
            let value = HeaderValue::from_str(value).map_err(|_| TransportError::Connect)?;
            upgrade.headers_mut().insert(name, value);
        }
        // Small buffers: a chat stream carries small frames, and a process may hold thousands
        // of sockets (tungstenite's defaults are 128 KiB each way).
        // A message or frame past the response cap is refused (`Error::Capacity`).
        let config = WebSocketConfig::default()
            .read_buffer_size(ws::READ_BUFFER)
            .write_buffer_size(0)
            .max_message_size(Some(ws::MAX_MESSAGE))
            .max_frame_size(Some(ws::MAX_MESSAGE));
        // `wss://` without a connector of the caller's: the process-wide rustls
        // configuration, instead of a root store built for every connection.
        let connector = match &self.connector {
            Some(c) => Some(c.clone()),
            None if ws::is_tls_url(&request.url) => {
                Some(Connector::Rustls(chat_net::default_config()?))
            }
            None => None,
        };
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            upgrade,
            Some(config),
            true,
            connector,
        );
        match connect.await {
            Ok((socket, _)) => {
                self.connection = Some(Connection {
                    socket,
                    cursor: WsCursor::upgraded(request),
                });
                Ok(Opened::Yes)
            }
            Err(tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response.body().clone().unwrap_or_default();
                Ok(Opened::Refused(Response::new(status, body)))
            }
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket upgrade failed");
                Err(TransportError::Connect)
            }
        }
    }

    async fn turn(&mut self, request: &Request) -> Result<Response, TransportError> {
        let Some(c) = self.connection.as_mut() else {
            return Err(TransportError::Disconnected);
        };
        if let Some(text) = c.cursor.outgoing_for(request) {
            c.socket
                .send(Message::text(text))
                .await
                .map_err(|_| TransportError::Disconnected)?;
        }
        let until = tokio::time::Instant::now() + ws::hold(request.timeout);
        loop {
            match tokio::time::timeout_at(until, c.socket.next()).await {
                Err(_) => return Ok(ws::idle()),
                Ok(Some(Err(tungstenite::Error::Capacity(e)))) => {
                    tracing::debug!(error = %e, "WebSocket message too large");
                    return Err(TransportError::Protocol);
                }
                Ok(None | Some(Err(_))) => return Err(TransportError::Disconnected),
                Ok(Some(Ok(message))) => match message {
                    Message::Text(text) => return Ok(ws::batch(text.to_string())),
                    Message::Close(frame) => return ws::closed(frame.map(|f| u16::from(f.code))),
                    Message::Binary(_) => return Err(TransportError::Protocol),
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                },
            }
        }
    }
}

#[async_trait]
impl EventTransport for WebSocketTransport {
    async fn poll(&mut self, request: Request) -> Result<Response, TransportError> {
        if self.connection.is_none() {
            if let Opened::Refused(response) = self.open(&request).await? {
                return Ok(response);
            }
        }
        let result = self.turn(&request).await;
        if !ws::keeps_socket(&result) {
            self.connection = None;
        }
        result
    }

    async fn reset(&mut self) {
        if let Some(mut c) = self.connection.take() {
            // Best effort, and short: the connection may be dead already.
            let _ = tokio::time::timeout(Duration::from_millis(200), c.socket.close(None)).await;
        }
    }

    fn name(&self) -> &'static str {
        "websocket"
    }
}

/// Tries the WebSocket upgrade with a short deadline on the first poll, and falls back to
/// long polling for good if the server does not upgrade (a plain `200`, a `400`, no answer in
/// time). Refusals that concern the session or the token (401, 403, 404) are passed on as
/// they are, undecided.
///
/// The fallback is any [`EventTransport`]: [`StreamTransport::Auto`](crate::StreamTransport::Auto)
/// gives it the one [`StreamTransport::LongPoll`](crate::StreamTransport::LongPoll) would use
/// (the lean [`Http1LongPollTransport`](crate::Http1LongPollTransport), or a
/// [`LongPollTransport`](crate::LongPollTransport) over the caller's HTTP stack).
pub struct AutoTransport {
    ws: WebSocketTransport,
    long_poll: Box<dyn EventTransport>,
    mode: AutoMode,
    upgrade_timeout: Duration,
}

impl std::fmt::Debug for AutoTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutoTransport")
            .field("ws", &self.ws)
            .field("long_poll", &self.long_poll.name())
            .field("mode", &self.mode)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .finish()
    }
}

impl AutoTransport {
    /// WebSocket first (default TLS setup), then this long-polling transport.
    pub fn new(long_poll: Box<dyn EventTransport>, upgrade_timeout: Duration) -> Self {
        Self::with_websocket(WebSocketTransport::new(), long_poll, upgrade_timeout)
    }

    /// As [`new`](Self::new), with this WebSocket transport (a TLS connector of your own).
    pub fn with_websocket(
        ws: WebSocketTransport,
        long_poll: Box<dyn EventTransport>,
        upgrade_timeout: Duration,
    ) -> Self {
        Self {
            ws,
            long_poll,
            mode: AutoMode::Undecided,
            upgrade_timeout,
        }
    }

    /// Whether the WebSocket was chosen (`Some(true)`), long polling (`Some(false)`), or not
    /// yet decided.
    pub fn uses_websocket(&self) -> Option<bool> {
        self.mode.uses_websocket()
    }

    /// The long-polling transport it falls back to.
    pub fn fallback(&self) -> &dyn EventTransport {
        self.long_poll.as_ref()
    }
}

#[async_trait]
impl EventTransport for AutoTransport {
    async fn poll(&mut self, request: Request) -> Result<Response, TransportError> {
        match self.mode {
            AutoMode::WebSocket => return self.ws.poll(request).await,
            AutoMode::LongPoll => return self.long_poll.poll(request).await,
            AutoMode::Undecided => {}
        }
        match tokio::time::timeout(self.upgrade_timeout, self.ws.open(&request)).await {
            Ok(Ok(Opened::Yes)) => {
                tracing::debug!("event stream: WebSocket");
                self.mode = AutoMode::WebSocket;
                self.ws.poll(request).await
            }
            Ok(Ok(Opened::Refused(r))) if AutoMode::passes_on(r.status) => Ok(r),
            _ => {
                tracing::debug!("event stream: WebSocket refused, long polling");
                self.mode = AutoMode::LongPoll;
                self.long_poll.poll(request).await
            }
        }
    }

    async fn reset(&mut self) {
        // The fallback may hold a connection of its own (the lean long poll does).
        match self.mode {
            AutoMode::WebSocket => self.ws.reset().await,
            AutoMode::LongPoll => self.long_poll.reset().await,
            AutoMode::Undecided => {
                self.ws.reset().await;
                self.long_poll.reset().await;
            }
        }
    }

    fn name(&self) -> &'static str {
        self.mode.name()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::SinkExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::http1::tests::poll_request;
    use crate::transport::MockEventTransport;

    /// A plain HTTP server that answers every request (upgrades included) with this status
    /// line and an empty JSON array, counting connections.
    async fn answering(status: &'static str) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut head = vec![0; 4096];
                    let _ = socket.read(&mut head).await;
                    let answer = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\n[]"
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        (base, accepted)
    }

    /// A fallback that answers each poll with `[1]` and counts resets.
    fn fallback(polls: usize, resets: usize) -> Box<dyn EventTransport> {
        let mut t = MockEventTransport::new();
        t.expect_poll()
            .times(polls)
            .returning(|_| Ok(Response::new(200, b"[1]".to_vec())));
        t.expect_reset().times(resets).return_const(());
        t.expect_name().return_const("fallback");
        Box::new(t)
    }

    #[tokio::test]
    async fn auto_falls_back_for_good_to_the_transport_it_was_given() {
        let (base, accepted) = answering("200 OK").await;
        let mut t = AutoTransport::new(fallback(2, 1), Duration::from_secs(5));
        assert_eq!(t.fallback().name(), "fallback");
        let r = t.poll(poll_request(&base)).await.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"[1]"[..]));
        assert_eq!(t.uses_websocket(), Some(false));
        assert_eq!(t.name(), "auto (long-poll)");
        // Decided: the next poll goes to the fallback without another upgrade attempt.
        t.poll(poll_request(&base)).await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // The fallback's own connection is dropped on reset (the mock checks the count).
        t.reset().await;
    }

    #[tokio::test]
    async fn auto_passes_session_refusals_on_undecided() {
        let (base, _) = answering("401 Unauthorized").await;
        let mut t = AutoTransport::new(fallback(0, 0), Duration::from_secs(5));
        let r = t.poll(poll_request(&base)).await.unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(t.uses_websocket(), None);
    }

    #[tokio::test]
    async fn auto_keeps_the_websocket_when_the_server_upgrades() {
        let base = sending(1000).await;
        let mut t = AutoTransport::new(fallback(0, 0), Duration::from_secs(5));
        let r = t.poll(poll_request(&base)).await.unwrap();
        assert_eq!((r.status, r.body.len()), (200, 1000));
        assert_eq!(t.uses_websocket(), Some(true));
        assert!(format!("{t:?}").contains("fallback"));
    }

    /// A WebSocket server that sends one text message of `len` bytes and then waits.
    async fn sending(len: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(socket).await.unwrap();
            let _ = ws.send(Message::text(" ".repeat(len))).await;
            while let Some(Ok(_)) = ws.next().await {}
        });
        base
    }

    #[tokio::test]
    async fn a_message_past_the_cap_is_a_protocol_error() {
        let base = sending(chat_core::validate::MAX_RESPONSE_LEN + 1).await;
        let mut t = WebSocketTransport::new();
        let r = t.poll(poll_request(&base)).await;
        assert_eq!(r, Err(TransportError::Protocol));
        assert!(t.connection.is_none(), "the connection is dropped");
    }

    #[tokio::test]
    async fn a_message_within_the_cap_is_delivered() {
        let base = sending(1000).await;
        let mut t = WebSocketTransport::new();
        let r = t.poll(poll_request(&base)).await.unwrap();
        assert_eq!((r.status, r.body.len()), (200, 1000));
    }

    #[test]
    fn tls_urls_are_recognised() {
        assert!(ws::is_tls_url("https://axp.example/x"));
        assert!(ws::is_tls_url("WSS://axp.example/x"));
        assert!(!ws::is_tls_url("http://127.0.0.1:1/x"));
        assert!(!ws::is_tls_url("ws://127.0.0.1:1/x"));
    }
}
