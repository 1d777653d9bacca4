//! The WebSocket event transport (the emulator's WebSocket form of the events resource) and
//! [`AutoTransport`], which tries it and falls back to long polling.
//!
//! The protocol is chat-net's sans-IO WebSocket ([`chat_net::ws::handshake`],
//! [`chat_net::ws::frame`] and [`ClientSocket`](chat_net::ws::ClientSocket)) over the same connections as the lean long
//! poll (tokio's TCP, tokio-rustls): no WebSocket library, so nothing logs the upgrade's
//! headers or a frame's payload, whatever subscriber the application installs.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat_core::{PollOutcome, Request, TransportError};
use chat_net::http1::Target;
use chat_net::ws::handshake::ClientHandshake;
use chat_net::ws::{self, AutoMode, AutoRoute, READ_BUFFER, Step, Upgraded};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::ClientConfig;

use crate::http1::{Stream, connect};
use crate::transport::EventTransport;

/// How long closing a connection may take (the peer may be gone already).
const CLOSE_WAIT: Duration = Duration::from_millis(200);

type Connection = ws::Connection<Stream>;

/// Carries the event stream over one WebSocket (`ws://` or `wss://` on the events resource).
///
/// A poll sends the cursor as `{"lastEventId": …}` when it moved (and a new token as
/// `{"jwtToken": …}` in-band after a refresh), then waits for the next pushed frame. When no
/// frame comes for 60 % of the poll timeout it answers an empty batch, as a long poll would.
/// The close codes 4401, 4403 and 4404 are the refusals long polling answers with 401, 403
/// and 404 "Session not found"; any other loss of the connection is a network failure, after
/// which the next poll reconnects with the cursor in the URL, so that nothing unacknowledged
/// is lost. Pings are answered while a poll waits.
///
/// `wss://` goes over rustls with the webpki roots (one configuration shared by the whole
/// process) or the [`ClientConfig`] given to [`with_tls_config`](Self::with_tls_config); a
/// certificate it does not trust is [`TransportError::Certificate`]. `ws://` only to a
/// loopback host, unless [`allow_plain_http`](Self::allow_plain_http). A message longer than
/// [`MAX_MESSAGE`](chat_net::ws::MAX_MESSAGE) is refused with [`TransportError::Protocol`].
pub struct WebSocketTransport {
    connection: Option<Connection>,
    tls: Option<Arc<ClientConfig>>,
    allow_plain_http: bool,
}

chat_net::own_connection_transport!(WebSocketTransport, "ws://");

impl WebSocketTransport {
    pub(crate) async fn open(&mut self, request: &Request) -> Result<Upgraded, TransportError> {
        self.connection = None;
        let target = Target::parse(&ws::websocket_url(&request.url), self.allow_plain_http)?;
        let mut handshake = ClientHandshake::new()?;
        let head = handshake.request_bytes(request, &target)?;
        let mut stream = connect(&target, self.tls.as_ref()).await?;
        send(&mut stream, &head).await.map_err(|e| {
            tracing::debug!(error = %e, "WebSocket upgrade not sent");
            TransportError::Connect
        })?;
        drop(head);
        let mut chunk = Vec::new();
        let upgrade = loop {
            chunk.clear();
            chunk.reserve(READ_BUFFER);
            match stream.read_buf(&mut chunk).await {
                Ok(0) => break handshake.end(),
                Ok(_) => {
                    if let Some(upgrade) = handshake.push(&chunk).transpose() {
                        break upgrade;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "WebSocket upgrade failed");
                    return Err(TransportError::Connect);
                }
            }
        }
        .map_err(ws::upgrade_failed)?;
        let (connection, upgraded) = ws::accept(upgrade, request, stream);
        self.connection = connection;
        Ok(upgraded)
    }

    async fn turn(&mut self, request: &Request) -> Result<PollOutcome, TransportError> {
        let Some(c) = self.connection.as_mut() else {
            return Err(TransportError::Disconnected);
        };
        if let Some(frame) = c.socket.outgoing(request) {
            send(&mut c.stream, &frame)
                .await
                .map_err(|_| TransportError::Disconnected)?;
        }
        let until = tokio::time::Instant::now() + ws::hold(request.timeout);
        loop {
            match c.socket.step() {
                Step::Read => {
                    // A held poll waits here without a buffer of its own (on plain TCP).
                    if !c.socket.has_input() {
                        match tokio::time::timeout_at(until, c.stream.readable()).await {
                            Err(_) => return Ok(ws::idle()),
                            Ok(r) => r?,
                        }
                    }
                    let input = c.socket.input();
                    input.reserve(READ_BUFFER);
                    match tokio::time::timeout_at(until, c.stream.read_buf(input)).await {
                        Err(_) => return Ok(ws::idle()),
                        Ok(Ok(0) | Err(_)) => return Err(TransportError::Disconnected),
                        Ok(Ok(_)) => {}
                    }
                }
                Step::Send(pong) => send(&mut c.stream, &pong)
                    .await
                    .map_err(|_| TransportError::Disconnected)?,
                Step::End { outcome, farewell } => {
                    if let Some(frame) = farewell {
                        let _ = tokio::time::timeout(CLOSE_WAIT, send(&mut c.stream, &frame)).await;
                    }
                    return Ok(outcome);
                }
            }
        }
    }
}

/// Writes these bytes whole (through rustls's buffer, for TLS).
async fn send(stream: &mut Stream, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

#[async_trait]
impl EventTransport for WebSocketTransport {
    async fn poll(&mut self, request: Request) -> PollOutcome {
        if self.connection.is_none() {
            if let Some(outcome) = ws::unless_upgraded(self.open(&request).await) {
                return outcome;
            }
        }
        let outcome = self
            .turn(&request)
            .await
            .unwrap_or_else(PollOutcome::Failed);
        if !ws::keeps_socket(&outcome) {
            self.connection = None;
        }
        outcome
    }

    async fn reset(&mut self) {
        if let Some(mut c) = self.connection.take() {
            // Best effort, and short: the connection may be dead already.
            let close = c.socket.close();
            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                send(&mut c.stream, &close).await?;
                c.stream.shutdown().await
            })
            .await;
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
pub type AutoTransport = ws::Auto<WebSocketTransport, Box<dyn EventTransport>>;

#[async_trait]
impl EventTransport for AutoTransport {
    async fn poll(&mut self, request: Request) -> PollOutcome {
        let route = match self.mode.route() {
            Some(route) => route,
            None => {
                let opened = tokio::time::timeout(self.upgrade_timeout, self.ws.open(&request));
                let attempt = opened.await.ok().and_then(Result::ok);
                self.mode.decide(attempt.as_ref())
            }
        };
        match route {
            AutoRoute::WebSocket => self.ws.poll(request).await,
            AutoRoute::LongPoll => self.long_poll.poll(request).await,
            AutoRoute::Answer(outcome) => outcome,
        }
    }

    async fn reset(&mut self) {
        // The fallback may hold a connection of its own (the lean long poll does).
        if self.mode != AutoMode::LongPoll {
            self.ws.reset().await;
        }
        if self.mode != AutoMode::WebSocket {
            self.long_poll.reset().await;
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

    use futures::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::Message as TMessage;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame as TCloseFrame;

    use super::*;
    use crate::http1::tests::poll_request;
    use crate::transport::MockEventTransport;
    use crate::transport::Response;

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

    /// A turn's outcome as the HTTP answer a long poll would have given, to compare.
    fn as_result(outcome: PollOutcome) -> Result<Response, TransportError> {
        match outcome {
            PollOutcome::Events(body) => Ok(Response::new(200, body)),
            PollOutcome::Unauthorized => Ok(Response::new(401, Vec::new())),
            PollOutcome::Forbidden => Ok(Response::new(403, Vec::new())),
            PollOutcome::Status { status, body } => Ok(Response::new(status, body)),
            PollOutcome::Failed(e) => Err(e),
            other => panic!("{other:?}"),
        }
    }

    /// A fallback that answers each poll with `[1]` and counts resets.
    fn fallback(polls: usize, resets: usize) -> Box<dyn EventTransport> {
        let mut t = MockEventTransport::new();
        t.expect_poll()
            .times(polls)
            .returning(|_| PollOutcome::Events(b"[1]".to_vec()));
        t.expect_reset().times(resets).return_const(());
        t.expect_name().return_const("fallback");
        Box::new(t)
    }

    #[tokio::test]
    async fn auto_falls_back_for_good_to_the_transport_it_was_given() {
        let (base, accepted) = answering("200 OK").await;
        let mut t = AutoTransport::new(
            WebSocketTransport::new(),
            fallback(2, 1),
            Duration::from_secs(5),
        );
        assert_eq!(t.fallback().name(), "fallback");
        let r = as_result(t.poll(poll_request(&base)).await).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"[1]"[..]));
        assert_eq!(t.uses_websocket(), Some(false));
        assert_eq!(t.name(), "auto (long-poll)");
        // Decided: the next poll goes to the fallback without another upgrade attempt.
        as_result(t.poll(poll_request(&base)).await).unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // The fallback's own connection is dropped on reset (the mock checks the count).
        t.reset().await;
    }

    #[tokio::test]
    async fn auto_passes_session_refusals_on_undecided() {
        let (base, _) = answering("401 Unauthorized").await;
        let mut t = AutoTransport::new(
            WebSocketTransport::new(),
            fallback(0, 0),
            Duration::from_secs(5),
        );
        let r = as_result(t.poll(poll_request(&base)).await).unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(t.uses_websocket(), None);
    }

    #[tokio::test]
    async fn auto_keeps_the_websocket_when_the_server_upgrades() {
        let base = sending(1000).await;
        let mut t = AutoTransport::new(
            WebSocketTransport::new(),
            fallback(0, 0),
            Duration::from_secs(5),
        );
        let r = as_result(t.poll(poll_request(&base)).await).unwrap();
        assert_eq!((r.status, r.body.len()), (200, 1000));
        assert_eq!(t.uses_websocket(), Some(true));
        assert!(format!("{t:?}").contains("fallback"));
    }

    /// A WebSocket server of another implementation (tokio-tungstenite) that sends these
    /// messages, then waits; what it received comes through the channel.
    async fn serving(
        messages: Vec<TMessage>,
    ) -> (String, tokio::sync::mpsc::UnboundedReceiver<TMessage>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(socket).await.unwrap();
            for m in messages {
                let _ = ws.send(m).await;
            }
            while let Some(Ok(m)) = ws.next().await {
                if tx.send(m).is_err() {
                    break;
                }
            }
        });
        (base, rx)
    }

    /// A WebSocket server that sends one text message of `len` bytes and then waits.
    async fn sending(len: usize) -> String {
        serving(vec![TMessage::text(" ".repeat(len))]).await.0
    }

    #[tokio::test]
    async fn a_message_past_the_cap_is_a_protocol_error() {
        let base = sending(chat_core::validate::MAX_RESPONSE_LEN + 1).await;
        let mut t = WebSocketTransport::new();
        let r = as_result(t.poll(poll_request(&base)).await);
        assert_eq!(r, Err(TransportError::Protocol));
        assert!(t.connection.is_none(), "the connection is dropped");
    }

    #[tokio::test]
    async fn a_message_within_the_cap_is_delivered() {
        let base = sending(1000).await;
        let mut t = WebSocketTransport::new();
        let r = as_result(t.poll(poll_request(&base)).await).unwrap();
        assert_eq!((r.status, r.body.len()), (200, 1000));
    }

    #[tokio::test]
    async fn pings_are_answered_and_close_codes_mapped() {
        let close = TMessage::Close(Some(TCloseFrame {
            code: 4404.into(),
            reason: "Session not found".into(),
        }));
        let (base, mut heard) = serving(vec![
            TMessage::Ping(vec![1, 2, 3].into()),
            TMessage::text("[1]"),
            close,
        ])
        .await;
        let mut t = WebSocketTransport::new();
        let r = as_result(t.poll(poll_request(&base)).await).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"[1]"[..]));
        assert_eq!(
            heard.recv().await.unwrap(),
            TMessage::Pong(vec![1, 2, 3].into())
        );
        // The close code is the refusal it stands for, not an HTTP body to parse again.
        assert_eq!(t.poll(poll_request(&base)).await, PollOutcome::SessionGone);
        assert!(t.connection.is_none(), "closed: the next poll reconnects");
        // The closing handshake was answered with the same code.
        match heard.recv().await.unwrap() {
            TMessage::Close(Some(f)) => assert_eq!(u16::from(f.code), 4404),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_quiet_socket_answers_an_empty_batch_and_stays_open() {
        let (base, _heard) = serving(vec![]).await;
        let mut t = WebSocketTransport::new();
        let mut request = poll_request(&base);
        request.timeout = Duration::from_millis(300);
        let r = as_result(t.poll(request.clone()).await).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"[]"[..]));
        assert!(t.connection.is_some());
        t.reset().await;
        assert!(t.connection.is_none());
    }

    #[tokio::test]
    async fn binary_and_broken_frames_are_protocol_errors() {
        let (base, _heard) = serving(vec![TMessage::binary(vec![1])]).await;
        let mut t = WebSocketTransport::new();
        assert_eq!(
            as_result(t.poll(poll_request(&base)).await),
            Err(TransportError::Protocol)
        );
        // A server that masks its frames, which RFC 6455 forbids; and one that upgrades
        // with the wrong accept key.
        let masked: &[u8] = &[0x81, 0x81, b'a', b'b', b'c', b'd', 0];
        for (accept_with, frames) in [
            (None, masked),
            (Some("AAAAAAAAAAAAAAAAAAAAAAAAAAA="), &[][..]),
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut head = vec![0; 4096];
                let n = socket.read(&mut head).await.unwrap();
                let head = String::from_utf8_lossy(&head[..n]).into_owned();
                let key = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                    .unwrap();
                let accept = accept_with
                    .map_or_else(|| chat_net::ws::handshake::accept_key(key), str::to_owned);
                let mut answer = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                )
                .into_bytes();
                answer.extend_from_slice(frames);
                let _ = socket.write_all(&answer).await;
                let _ = socket.read(&mut [0; 64]).await;
            });
            let mut t = WebSocketTransport::new();
            assert_eq!(
                as_result(t.poll(poll_request(&base)).await),
                Err(TransportError::Protocol),
                "{accept_with:?}"
            );
        }
    }

    #[tokio::test]
    async fn plain_ws_only_to_loopback_unless_allowed() {
        let mut t = WebSocketTransport::new();
        let mut request = poll_request("http://127.0.0.1:1");
        request.url = request.url.replace("127.0.0.1:1", "example.invalid:1");
        assert_eq!(
            as_result(t.poll(request).await),
            Err(TransportError::Connect)
        );
        let t = WebSocketTransport::new().allow_plain_http(true);
        assert!(format!("{t:?}").contains("allow_plain_http: true"));
    }

    #[test]
    fn tls_urls_are_recognised() {
        assert!(ws::is_tls_url("https://axp.example/x"));
        assert!(ws::is_tls_url("WSS://axp.example/x"));
        assert!(!ws::is_tls_url("http://127.0.0.1:1/x"));
        assert!(!ws::is_tls_url("ws://127.0.0.1:1/x"));
    }
}
