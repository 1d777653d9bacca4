//! The WebSocket event transport (the emulator's WebSocket form of the events resource) over
//! tungstenite's blocking socket, and [`AutoTransport`], which tries it and falls back to
//! long polling.

use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::{Request, TransportError};
use chat_net::http1::Target;
use chat_net::ws::{self, AutoMode, WsCursor, websocket_url};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, Message, WebSocket};

use crate::TlsClientConfig;
use crate::http1::{connect_tcp, remaining};
use crate::transport::{Cancel, EventTransport, Response};

struct Connection {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    /// The same socket, for timeouts and [`Cancel`].
    tcp: TcpStream,
    /// The cursor and token the server knows.
    cursor: WsCursor,
}

/// Carries the event stream over one WebSocket (`ws://` or `wss://` on the events resource).
///
/// A poll sends the cursor as `{"lastEventId": …}` when it moved (and a new token as
/// `{"jwtToken": …}` in-band after a refresh), then waits for the next pushed frame. When no
/// frame comes for 60 % of the poll timeout it answers `200 []`, as a long poll would. The
/// close codes 4401, 4403 and 4404 become the 401, 403 and 404 "Session not found" answers of
/// long polling; any other loss of the connection is a network failure, after which the next
/// poll reconnects with the cursor in the URL, so that nothing unacknowledged is lost. The
/// same protocol as chat-tokio's `WebSocketTransport`.
pub struct WebSocketTransport {
    connection: Option<Connection>,
    tls: Option<Arc<TlsClientConfig>>,
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
enum Opened {
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
            tls: None,
        }
    }

    /// A WebSocket transport with this TLS configuration (for instance one trusting the
    /// emulator's self-signed certificate).
    pub fn with_tls_config(config: Arc<TlsClientConfig>) -> Self {
        Self {
            connection: None,
            tls: Some(config),
        }
    }

    fn open(
        &mut self,
        request: &Request,
        cancel: &Cancel,
        deadline: Instant,
    ) -> Result<Opened, TransportError> {
        self.connection = None;
        let url = websocket_url(&request.url);
        // Plain `ws://` was allowed or refused with the host, by chat-core.
        let target = Target::parse(&url, true)?;
        let mut upgrade = url
            .as_str()
            .into_client_request()
            .map_err(|_| TransportError::Connect)?;
        for (name, value) in request.headers() {
            if name == "Content-Type" {
                continue;
            }
            let value = HeaderValue::from_str(value).map_err(|_| TransportError::Connect)?;
            upgrade.headers_mut().insert(name, value);
        }
        // Small buffers: a chat stream carries small frames. A message or frame past the
        // response cap is refused (`Error::Capacity`).
        let config = WebSocketConfig::default()
            .read_buffer_size(ws::READ_BUFFER)
            .write_buffer_size(0)
            .max_message_size(Some(ws::MAX_MESSAGE))
            .max_frame_size(Some(ws::MAX_MESSAGE));
        let connector = if target.tls {
            Connector::Rustls(match &self.tls {
                Some(c) => Arc::clone(c),
                None => chat_net::default_config()?,
            })
        } else {
            Connector::Plain
        };
        let tcp = connect_tcp(&target, deadline)?;
        cancel.watch(&tcp)?;
        let handle = tcp.try_clone().map_err(|_| TransportError::Connect)?;
        let left = remaining(deadline)?;
        let _ = handle.set_read_timeout(Some(left));
        let _ = handle.set_write_timeout(Some(left));
        match tungstenite::client_tls_with_config(upgrade, tcp, Some(config), Some(connector)) {
            Ok((socket, _)) => {
                self.connection = Some(Connection {
                    socket,
                    tcp: handle,
                    cursor: WsCursor::upgraded(request),
                });
                Ok(Opened::Yes)
            }
            Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                let status = response.status().as_u16();
                let body = response.body().clone().unwrap_or_default();
                Ok(Opened::Refused(Response::new(status, body)))
            }
            Err(HandshakeError::Interrupted(_)) => Err(TransportError::Timeout),
            Err(HandshakeError::Failure(e)) => {
                tracing::debug!(error = %e, "WebSocket upgrade failed");
                Err(TransportError::Connect)
            }
        }
    }

    fn turn(&mut self, request: &Request, cancel: &Cancel) -> Result<Response, TransportError> {
        let Some(c) = self.connection.as_mut() else {
            return Err(TransportError::Disconnected);
        };
        cancel.watch(&c.tcp)?;
        if let Some(text) = c.cursor.outgoing_for(request) {
            let _ = c.tcp.set_write_timeout(Some(request.timeout));
            c.socket
                .send(Message::text(text))
                .map_err(|_| TransportError::Disconnected)?;
        }
        let until = Instant::now() + ws::hold(request.timeout);
        loop {
            let Ok(left) = remaining(until) else {
                return Ok(ws::idle());
            };
            let _ = c.tcp.set_read_timeout(Some(left));
            match c.socket.read() {
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) && !cancel.is_cancelled() => {}
                Err(tungstenite::Error::Capacity(e)) => {
                    tracing::debug!(error = %e, "WebSocket message too large");
                    return Err(TransportError::Protocol);
                }
                Err(_) => return Err(TransportError::Disconnected),
                Ok(Message::Text(text)) => return Ok(ws::batch(text.to_string())),
                Ok(Message::Close(frame)) => return ws::closed(frame.map(|f| u16::from(f.code))),
                Ok(Message::Binary(_)) => return Err(TransportError::Protocol),
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
            }
        }
    }
}

impl EventTransport for WebSocketTransport {
    fn poll(&mut self, request: Request, cancel: &Cancel) -> Result<Response, TransportError> {
        if self.connection.is_none() {
            let deadline = Instant::now() + request.timeout;
            if let Opened::Refused(response) = self.open(&request, cancel, deadline)? {
                return Ok(response);
            }
        }
        let result = self.turn(&request, cancel);
        if !ws::keeps_socket(&result) {
            self.reset();
        }
        result
    }

    fn reset(&mut self) {
        if let Some(mut c) = self.connection.take() {
            // Best effort, and short: the connection may be dead already.
            let _ = c.tcp.set_write_timeout(Some(Duration::from_millis(200)));
            let _ = c.socket.close(None);
            let _ = c.socket.flush();
            let _ = c.tcp.shutdown(std::net::Shutdown::Both);
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
    /// This WebSocket first, then this long-polling transport.
    pub fn new(
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
}

impl EventTransport for AutoTransport {
    fn poll(&mut self, request: Request, cancel: &Cancel) -> Result<Response, TransportError> {
        match self.mode {
            AutoMode::WebSocket => return self.ws.poll(request, cancel),
            AutoMode::LongPoll => return self.long_poll.poll(request, cancel),
            AutoMode::Undecided => {}
        }
        let deadline = Instant::now() + self.upgrade_timeout.min(request.timeout);
        match self.ws.open(&request, cancel, deadline) {
            Ok(Opened::Yes) => {
                tracing::debug!("event stream: WebSocket");
                self.mode = AutoMode::WebSocket;
                self.ws.poll(request, cancel)
            }
            Ok(Opened::Refused(r)) if AutoMode::passes_on(r.status) => Ok(r),
            _ if cancel.is_cancelled() => Err(TransportError::Disconnected),
            _ => {
                tracing::debug!("event stream: WebSocket refused, long polling");
                self.mode = AutoMode::LongPoll;
                self.long_poll.poll(request, cancel)
            }
        }
    }

    fn reset(&mut self) {
        match self.mode {
            AutoMode::WebSocket => self.ws.reset(),
            AutoMode::LongPoll => self.long_poll.reset(),
            AutoMode::Undecided => {
                self.ws.reset();
                self.long_poll.reset();
            }
        }
    }

    fn name(&self) -> &'static str {
        self.mode.name()
    }
}
