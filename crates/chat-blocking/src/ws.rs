//! The WebSocket event transport (the emulator's WebSocket form of the events resource) over
//! blocking sockets that [`Cancel`] can interrupt, and [`AutoTransport`], which tries it and
//! falls back to long polling.
//!
//! The protocol is chat-net's sans-IO WebSocket ([`chat_net::ws::handshake`],
//! [`chat_net::ws::frame`] and [`ClientSocket`](chat_net::ws::ClientSocket)) over the same connections as the lean long
//! poll (std's TCP, rustls): no WebSocket library, so nothing logs the upgrade's headers or a
//! frame's payload, whatever subscriber the application installs.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::{PollOutcome, Request, TransportError};
use chat_net::http1::Target;
use chat_net::ws::handshake::ClientHandshake;
use chat_net::ws::{self, AutoMode, AutoRoute, READ_BUFFER, Step, Upgraded};

use crate::TlsClientConfig;
use crate::http1::{Stream, connect, io_error, remaining};
use crate::transport::{Cancel, EventTransport};

/// How long closing a connection may take (the peer may be gone already).
const CLOSE_WAIT: Duration = Duration::from_millis(200);

type Connection = ws::Connection<Stream>;

/// Writes these bytes whole within `timeout` (through rustls's buffer, for TLS).
fn send(c: &mut Connection, bytes: &[u8], timeout: Duration) -> io::Result<()> {
    c.stream.tcp().set_write_timeout(Some(timeout))?;
    c.stream.write_all(bytes)?;
    c.stream.flush()
}

/// Carries the event stream over one WebSocket (`ws://` or `wss://` on the events
/// resource): the same protocol as chat-tokio's `WebSocketTransport`, over blocking sockets.
///
/// A poll sends the cursor when it moved (and a new token in-band after a refresh), then
/// waits for the next pushed frame, answering pings; with none for 60 % of the poll timeout
/// it answers an empty batch. The close codes 4401, 4403 and 4404 are the refusals of long
/// polling's 401, 403 and 404 "Session not found"; any other loss of the connection is a
/// network failure, and the next poll reconnects with the cursor in the URL.
///
/// `wss://` goes over rustls with the webpki roots or the configuration given to
/// [`with_tls_config`](Self::with_tls_config); an untrusted certificate is
/// [`TransportError::Certificate`]. `ws://` only to a loopback host, unless
/// [`allow_plain_http`](Self::allow_plain_http). The socket is registered with the poll's
/// [`Cancel`], and the upgrade bounded by the request's timeout.
pub struct WebSocketTransport {
    connection: Option<Connection>,
    tls: Option<Arc<TlsClientConfig>>,
    allow_plain_http: bool,
}

chat_net::own_connection_transport!(WebSocketTransport, "ws://");

impl WebSocketTransport {
    fn open(
        &mut self,
        request: &Request,
        cancel: &Cancel,
        deadline: Instant,
    ) -> Result<Upgraded, TransportError> {
        self.connection = None;
        let target = Target::parse(&ws::websocket_url(&request.url), self.allow_plain_http)?;
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
        };
        // The connection's end before an answer, unless the poll was cancelled.
        let upgrade = upgrade.map_err(|e| {
            if cancel.is_cancelled() {
                e
            } else {
                ws::upgrade_failed(e)
            }
        })?;
        let (connection, upgraded) = ws::accept(upgrade, request, stream);
        self.connection = connection;
        Ok(upgraded)
    }

    fn turn(&mut self, request: &Request, cancel: &Cancel) -> Result<PollOutcome, TransportError> {
        let Some(c) = self.connection.as_mut() else {
            return Err(TransportError::Disconnected);
        };
        cancel.watch(c.stream.tcp())?;
        if let Some(frame) = c.socket.outgoing(request) {
            send(c, &frame, request.timeout).map_err(|_| TransportError::Disconnected)?;
        }
        let until = Instant::now() + ws::hold(request.timeout);
        let mut chunk = [0u8; READ_BUFFER];
        loop {
            match c.socket.step() {
                Step::Read => {
                    let Ok(left) = remaining(until) else {
                        return Ok(ws::idle());
                    };
                    let _ = c.stream.tcp().set_read_timeout(Some(left));
                    match c.stream.read(&mut chunk) {
                        Ok(0) => return Err(TransportError::Disconnected),
                        Ok(n) => c.socket.push(&chunk[..n]),
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock
                                    | io::ErrorKind::TimedOut
                                    | io::ErrorKind::Interrupted
                            ) && !cancel.is_cancelled() => {}
                        Err(_) => return Err(TransportError::Disconnected),
                    }
                }
                Step::Send(pong) => {
                    send(c, &pong, request.timeout).map_err(|_| TransportError::Disconnected)?
                }
                Step::End { outcome, farewell } => {
                    if let Some(frame) = farewell {
                        let _ = send(c, &frame, CLOSE_WAIT);
                    }
                    return Ok(outcome);
                }
            }
        }
    }
}

impl EventTransport for WebSocketTransport {
    fn poll(&mut self, request: Request, cancel: &Cancel) -> PollOutcome {
        if self.connection.is_none() {
            let deadline = Instant::now() + request.timeout;
            if let Some(outcome) = ws::unless_upgraded(self.open(&request, cancel, deadline)) {
                return outcome;
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
            let close = c.socket.close();
            let _ = send(&mut c, &close, CLOSE_WAIT);
            let _ = c.stream.tcp().shutdown(std::net::Shutdown::Both);
        }
    }

    fn name(&self) -> &'static str {
        "websocket"
    }
}

/// `StreamTransport::Auto`: the same as chat-tokio's `AutoTransport`. The first poll tries
/// the WebSocket upgrade with a short deadline, and falls back to long polling for good if the
/// server does not upgrade. Refusals about the session or the token (401, 403, 404) are passed on
/// as they are, undecided.
pub type AutoTransport = ws::Auto<WebSocketTransport, Box<dyn EventTransport>>;

impl EventTransport for AutoTransport {
    fn poll(&mut self, request: Request, cancel: &Cancel) -> PollOutcome {
        let route = match self.mode.route() {
            Some(route) => route,
            None => {
                let deadline = Instant::now() + self.upgrade_timeout.min(request.timeout);
                let attempt = self.ws.open(&request, cancel, deadline).ok();
                if attempt.is_none() && cancel.is_cancelled() {
                    return PollOutcome::Failed(TransportError::Disconnected);
                }
                self.mode.decide(attempt.as_ref())
            }
        };
        match route {
            AutoRoute::WebSocket => self.ws.poll(request, cancel),
            AutoRoute::LongPoll => self.long_poll.poll(request, cancel),
            AutoRoute::Answer(outcome) => outcome,
        }
    }

    fn reset(&mut self) {
        if self.mode != AutoMode::LongPoll {
            self.ws.reset();
        }
        if self.mode != AutoMode::WebSocket {
            self.long_poll.reset();
        }
    }

    fn name(&self) -> &'static str {
        self.mode.name()
    }
}
