//! The WebSocket event transport (the emulator's WebSocket form of the events resource) over
//! tungstenite's blocking socket, and [`AutoTransport`], which tries it and falls back to
//! long polling.

use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::validate::MAX_RESPONSE_LEN;
use chat_core::{Request, RequestKind, TransportError};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, Message, WebSocket};

use crate::TlsClientConfig;
use crate::http1::{Target, connect_tcp, remaining};
use crate::transport::{Cancel, EventTransport, Response};

/// Read buffer of a socket (frames larger than this are still read whole).
const READ_BUFFER: usize = 4096;

struct Connection {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    /// The same socket, for timeouts and [`Cancel`].
    tcp: TcpStream,
    /// The cursor the server knows (sent on the upgrade or in a frame).
    acked: Option<String>,
    /// The `Authorization` value the server knows.
    bearer: String,
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
        let url = match request.url.get(..4) {
            Some(p) if p.eq_ignore_ascii_case("http") => format!("ws{}", &request.url[4..]),
            _ => request.url.clone(),
        };
        let target = Target::parse(&url)?;
        let mut upgrade = url
            .as_str()
            .into_client_request()
            .map_err(|_| TransportError::Connect)?;
        let mut bearer = String::new();
        for (name, value) in request.headers() {
            if name == "Content-Type" {
                continue;
            }
            if name == "Authorization" {
                value.clone_into(&mut bearer);
            }
            let value = HeaderValue::from_str(value).map_err(|_| TransportError::Connect)?;
            upgrade.headers_mut().insert(name, value);
        }
        // Small buffers: a chat stream carries small frames. A message or frame past the
        // response cap is refused (`Error::Capacity`).
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0)
            .max_message_size(Some(MAX_RESPONSE_LEN))
            .max_frame_size(Some(MAX_RESPONSE_LEN));
        let connector = if target.tls {
            Connector::Rustls(match &self.tls {
                Some(c) => Arc::clone(c),
                None => crate::tls::default_config()?,
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
                let acked = match &request.kind {
                    RequestKind::Poll { last_event_id } => last_event_id.clone(),
                    _ => None,
                };
                self.connection = Some(Connection {
                    socket,
                    tcp: handle,
                    acked,
                    bearer,
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
        let mut frame = serde_json::Map::new();
        let bearer = request
            .headers()
            .find(|(n, _)| *n == "Authorization")
            .map(|(_, v)| v.to_owned())
            .unwrap_or_default();
        if bearer != c.bearer {
            let token = bearer.strip_prefix("Bearer ").unwrap_or(&bearer).to_owned();
            frame.insert("jwtToken".to_owned(), token.into());
            c.bearer = bearer;
        }
        if let RequestKind::Poll {
            last_event_id: Some(id),
        } = &request.kind
        {
            if c.acked.as_ref() != Some(id) {
                frame.insert("lastEventId".to_owned(), id.clone().into());
                c.acked = Some(id.clone());
            }
        }
        if !frame.is_empty() {
            let text = serde_json::Value::Object(frame).to_string();
            let _ = c.tcp.set_write_timeout(Some(request.timeout));
            c.socket
                .send(Message::text(text))
                .map_err(|_| TransportError::Disconnected)?;
        }
        let until = Instant::now() + request.timeout.mul_f32(0.6);
        loop {
            let Ok(left) = remaining(until) else {
                return Ok(Response::new(200, b"[]".to_vec()));
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
                Ok(Message::Text(text)) => {
                    return Ok(Response::new(200, text.as_bytes().to_vec()));
                }
                Ok(Message::Close(frame)) => return closed(frame),
                Ok(Message::Binary(_)) => return Err(TransportError::Protocol),
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
            }
        }
    }
}

fn closed(frame: Option<CloseFrame>) -> Result<Response, TransportError> {
    let code = frame.map_or(1005, |f| u16::from(f.code));
    match code {
        4401 => Ok(Response::new(401, b"{}".to_vec())),
        4403 => Ok(Response::new(403, b"{}".to_vec())),
        4404 => Ok(Response::new(
            404,
            br#"{"detail":"Session not found"}"#.to_vec(),
        )),
        4400 => Err(TransportError::Protocol),
        _ => Err(TransportError::Disconnected),
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
        let keep = matches!(&result, Ok(r) if r.status == 200);
        if !keep {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Undecided,
    WebSocket,
    LongPoll,
}

/// Tries the WebSocket upgrade with a short deadline on the first poll, and falls back to
/// long polling for good if the server does not upgrade (a plain `200`, a `400`, no answer in
/// time). Refusals that concern the session or the token (401, 403, 404) are passed on as
/// they are, undecided.
pub struct AutoTransport {
    ws: WebSocketTransport,
    long_poll: Box<dyn EventTransport>,
    mode: Mode,
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
            mode: Mode::Undecided,
            upgrade_timeout,
        }
    }

    /// Whether the WebSocket was chosen (`Some(true)`), long polling (`Some(false)`), or not
    /// yet decided.
    pub fn uses_websocket(&self) -> Option<bool> {
        match self.mode {
            Mode::Undecided => None,
            Mode::WebSocket => Some(true),
            Mode::LongPoll => Some(false),
        }
    }
}

impl EventTransport for AutoTransport {
    fn poll(&mut self, request: Request, cancel: &Cancel) -> Result<Response, TransportError> {
        match self.mode {
            Mode::WebSocket => return self.ws.poll(request, cancel),
            Mode::LongPoll => return self.long_poll.poll(request, cancel),
            Mode::Undecided => {}
        }
        let deadline = Instant::now() + self.upgrade_timeout.min(request.timeout);
        match self.ws.open(&request, cancel, deadline) {
            Ok(Opened::Yes) => {
                tracing::debug!("event stream: WebSocket");
                self.mode = Mode::WebSocket;
                self.ws.poll(request, cancel)
            }
            Ok(Opened::Refused(r)) if matches!(r.status, 401 | 403 | 404) => Ok(r),
            _ if cancel.is_cancelled() => Err(TransportError::Disconnected),
            _ => {
                tracing::debug!("event stream: WebSocket refused, long polling");
                self.mode = Mode::LongPoll;
                self.long_poll.poll(request, cancel)
            }
        }
    }

    fn reset(&mut self) {
        match self.mode {
            Mode::WebSocket => self.ws.reset(),
            Mode::LongPoll => self.long_poll.reset(),
            Mode::Undecided => {
                self.ws.reset();
                self.long_poll.reset();
            }
        }
    }

    fn name(&self) -> &'static str {
        match self.mode {
            Mode::WebSocket => "auto (websocket)",
            Mode::LongPoll => "auto (long-poll)",
            Mode::Undecided => "auto",
        }
    }
}
