//! The WebSocket event transport (the emulator's WebSocket form of the events resource) over
//! blocking sockets that [`Cancel`] can interrupt, and [`AutoTransport`], which tries it and
//! falls back to long polling.
//!
//! The protocol is chat-net's sans-IO WebSocket ([`chat_net::ws::handshake`] and
//! [`chat_net::ws::frame`]) over the same connections as the lean long poll (std's TCP,
//! rustls): no WebSocket library, so nothing logs the upgrade's headers or a frame's payload,
//! whatever subscriber the application installs.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::{PollOutcome, Request, TransportError};
use chat_net::http1::Target;
use chat_net::ws::frame::{Decoder, Encoder, Message, Role};
use chat_net::ws::handshake::{ClientHandshake, Upgrade};
use chat_net::ws::{self, AutoMode, READ_BUFFER, WsCursor, websocket_url};

use crate::TlsClientConfig;
use crate::http1::{Stream, connect, io_error, remaining};
use crate::transport::{Cancel, EventTransport, Response};

/// How long closing a connection may take (the peer may be gone already).
const CLOSE_WAIT: Duration = Duration::from_millis(200);

struct Connection {
    stream: Stream,
    decoder: Decoder,
    encoder: Encoder,
    /// The cursor and token the server knows.
    cursor: WsCursor,
}

impl Connection {
    /// Writes these bytes whole within `timeout` (through rustls's buffer, for TLS).
    fn send(&mut self, bytes: &[u8], timeout: Duration) -> io::Result<()> {
        self.stream.tcp().set_write_timeout(Some(timeout))?;
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }
}

/// Carries the event stream over one WebSocket (`ws://` or `wss://` on the events resource).
///
/// A poll sends the cursor as `{"lastEventId": …}` when it moved (and a new token as
/// `{"jwtToken": …}` in-band after a refresh), then waits for the next pushed frame. When no
/// frame comes for 60 % of the poll timeout it answers `200 []`, as a long poll would. The
/// close codes 4401, 4403 and 4404 become the 401, 403 and 404 "Session not found" answers of
/// long polling; any other loss of the connection is a network failure, after which the next
/// poll reconnects with the cursor in the URL, so that nothing unacknowledged is lost. Pings
/// are answered while a poll waits. The same protocol as chat-tokio's `WebSocketTransport`.
///
/// `wss://` goes over rustls with the webpki roots (one configuration shared by the whole
/// process) or the configuration given to [`with_tls_config`](Self::with_tls_config); a
/// certificate it does not trust is [`TransportError::Certificate`]. `ws://` only to a
/// loopback host, unless [`allow_plain_http`](Self::allow_plain_http). The socket is
/// registered with the poll's [`Cancel`], and the upgrade bounded by the request's timeout.
pub struct WebSocketTransport {
    connection: Option<Connection>,
    tls: Option<Arc<TlsClientConfig>>,
    allow_plain_http: bool,
}

impl std::fmt::Debug for WebSocketTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketTransport")
            .field("connected", &self.connection.is_some())
            .field("allow_plain_http", &self.allow_plain_http)
            .finish_non_exhaustive()
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
            allow_plain_http: false,
        }
    }

    /// A WebSocket transport with this TLS configuration (for instance one trusting the
    /// emulator's self-signed certificate). Give it no ALPN protocols.
    pub fn with_tls_config(config: Arc<TlsClientConfig>) -> Self {
        Self {
            tls: Some(config),
            ..Self::new()
        }
    }

    /// Allow `ws://` to a host that is not loopback (never in production).
    pub fn allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    fn open(
        &mut self,
        request: &Request,
        cancel: &Cancel,
        deadline: Instant,
    ) -> Result<Opened, TransportError> {
        self.connection = None;
        let target = Target::parse(&websocket_url(&request.url), self.allow_plain_http)?;
        let mut handshake = ClientHandshake::new()?;
        let head = handshake.request_bytes(request, &target)?;
        let mut stream = connect(&target, self.tls.as_ref(), deadline, cancel)?;
        // An upgrade that fails without an answer is a failure to connect (or the timeout).
        let failed = |e: &io::Error| match io_error(e, cancel) {
            TransportError::Timeout => TransportError::Timeout,
            _ if cancel.is_cancelled() => TransportError::Disconnected,
            _ => TransportError::Connect,
        };
        stream
            .tcp()
            .set_write_timeout(Some(remaining(deadline)?))
            .map_err(|e| failed(&e))?;
        stream
            .write_all(&head)
            .and_then(|()| stream.flush())
            .map_err(|e| {
                tracing::debug!(error = %e, "WebSocket upgrade not sent");
                failed(&e)
            })?;
        drop(head);
        let mut chunk = [0u8; READ_BUFFER];
        let upgrade = loop {
            stream
                .tcp()
                .set_read_timeout(Some(remaining(deadline)?))
                .map_err(|e| failed(&e))?;
            match stream.read(&mut chunk) {
                Ok(0) => break handshake.end(),
                Ok(n) => {
                    if let Some(upgrade) = handshake.push(&chunk[..n]).transpose() {
                        break upgrade;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break handshake.end(),
                Err(e) => {
                    tracing::debug!(error = %e, "WebSocket upgrade failed");
                    return Err(failed(&e));
                }
            }
        }
        .map_err(|e| match e {
            // The connection ended before an answer (unless the poll was cancelled).
            TransportError::Disconnected if !cancel.is_cancelled() => TransportError::Connect,
            e => e,
        })?;
        match upgrade {
            Upgrade::Accepted { rest } => {
                let mut decoder = Decoder::new(Role::Client);
                decoder.push(&rest);
                self.connection = Some(Connection {
                    stream,
                    decoder,
                    encoder: Encoder::new(Role::Client),
                    cursor: WsCursor::upgraded(request),
                });
                Ok(Opened::Yes)
            }
            Upgrade::Refused(response) => Ok(Opened::Refused(response)),
        }
    }

    fn turn(&mut self, request: &Request, cancel: &Cancel) -> Result<PollOutcome, TransportError> {
        let Some(c) = self.connection.as_mut() else {
            return Err(TransportError::Disconnected);
        };
        cancel.watch(c.stream.tcp())?;
        if let Some(text) = c.cursor.outgoing_for(request) {
            let frame = c.encoder.text(&text);
            c.send(&frame, request.timeout)
                .map_err(|_| TransportError::Disconnected)?;
        }
        let until = Instant::now() + ws::hold(request.timeout);
        let mut chunk = [0u8; READ_BUFFER];
        loop {
            let message = match c.decoder.next() {
                Ok(Some(message)) => message,
                Ok(None) => {
                    let Ok(left) = remaining(until) else {
                        return Ok(ws::idle());
                    };
                    let _ = c.stream.tcp().set_read_timeout(Some(left));
                    match c.stream.read(&mut chunk) {
                        Ok(0) => return Err(TransportError::Disconnected),
                        Ok(n) => c.decoder.push(&chunk[..n]),
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock
                                    | io::ErrorKind::TimedOut
                                    | io::ErrorKind::Interrupted
                            ) && !cancel.is_cancelled() => {}
                        Err(_) => return Err(TransportError::Disconnected),
                    }
                    continue;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "WebSocket frame refused");
                    let close = c.encoder.close(Some((e.close_code(), "")));
                    let _ = c.send(&close, CLOSE_WAIT);
                    return Err(e.into());
                }
            };
            match message {
                Message::Text(text) => return Ok(ws::batch(text)),
                Message::Binary(_) => return Err(TransportError::Protocol),
                Message::Pong(_) => {}
                Message::Ping(_) => {
                    if let Some(pong) = c.encoder.answer(&message) {
                        c.send(&pong, request.timeout)
                            .map_err(|_| TransportError::Disconnected)?;
                    }
                }
                Message::Close(ref frame) => {
                    let code = frame.as_ref().map(|f| f.code);
                    tracing::debug!(?code, "WebSocket closed by the server");
                    // The closing handshake's answer, if the server still listens.
                    if let Some(answer) = c.encoder.answer(&message) {
                        let _ = c.send(&answer, CLOSE_WAIT);
                    }
                    return Ok(ws::closed(code));
                }
            }
        }
    }
}

impl EventTransport for WebSocketTransport {
    fn poll(&mut self, request: Request, cancel: &Cancel) -> PollOutcome {
        if self.connection.is_none() {
            let deadline = Instant::now() + request.timeout;
            match self.open(&request, cancel, deadline) {
                Ok(Opened::Yes) => {}
                Ok(Opened::Refused(r)) => return PollOutcome::from_http(r.status, r.body),
                Err(e) => return PollOutcome::Failed(e),
            }
        }
        let outcome = self
            .turn(&request, cancel)
            .unwrap_or_else(PollOutcome::Failed);
        if !ws::keeps_socket(&outcome) {
            self.reset();
        }
        outcome
    }

    fn reset(&mut self) {
        if let Some(mut c) = self.connection.take() {
            // Best effort, and short: the connection may be dead already.
            let close = c.encoder.close(None);
            let _ = c.send(&close, CLOSE_WAIT);
            let _ = c.stream.tcp().shutdown(std::net::Shutdown::Both);
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
    fn poll(&mut self, request: Request, cancel: &Cancel) -> PollOutcome {
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
            Ok(Opened::Refused(r)) if AutoMode::passes_on(r.status) => {
                PollOutcome::from_http(r.status, r.body)
            }
            _ if cancel.is_cancelled() => PollOutcome::Failed(TransportError::Disconnected),
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
