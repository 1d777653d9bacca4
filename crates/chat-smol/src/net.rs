//! The sockets: TCP from async-net, TLS from futures-rustls, and chat-net's sans-IO codecs
//! for what goes over them, HTTP/1.1 ([`chat_net::http1`]) and the WebSocket
//! ([`chat_net::ws`]). No HTTP client and no WebSocket library: so nothing here follows a
//! redirect (a 3xx is a status like any other, for the core to refuse), and nothing logs a
//! header or a payload.

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::{PollOutcome, Request, TransportError};
use chat_driver::StreamTransport;
use chat_net::http1::{Origin, READ_CHUNK, ResponseParser, Target, request_bytes};
use chat_net::ws::frame::{Decoder, Encoder, Message, Role};
use chat_net::ws::handshake::{ClientHandshake, Upgrade};
use chat_net::ws::{self, AutoMode, WsCursor};
use chat_net::{Response, TlsClientConfig};
use futures_rustls::TlsConnector;
use futures_rustls::pki_types::ServerName;
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol::net::TcpStream;
use smol::{Timer, future};

/// How long a closing frame may take to go out (the peer may be gone already).
const CLOSE_WAIT: Duration = Duration::from_millis(200);

/// A connection, plain or TLS.
pub(crate) trait Duplex: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Duplex for T {}
type Stream = Box<dyn Duplex>;

/// An HTTP/1.1 connection, and the origin it serves.
type Conn = (Origin, Stream);

/// The event stream's connection, kept from one poll to the next.
pub(crate) enum Kept {
    /// The long poll's HTTP/1.1 connection (keep-alive).
    Http(Conn),
    /// An upgraded WebSocket.
    Ws(Box<WebSocket>),
}

pub(crate) struct WebSocket {
    stream: Stream,
    decoder: Decoder,
    encoder: Encoder,
    /// The cursor and token the server knows.
    cursor: WsCursor,
}

/// How this client reaches the server.
pub(crate) struct Net {
    pub(crate) tls: Option<Arc<TlsClientConfig>>,
    pub(crate) allow_plain_http: bool,
    pub(crate) transport: StreamTransport,
    pub(crate) upgrade_timeout: Duration,
    /// `StreamTransport::Auto`'s decision, made at the first upgrade.
    pub(crate) auto: Cell<AutoMode>,
}

/// `f`, or `None` if it takes longer than `limit`.
async fn within<T>(limit: Duration, f: impl Future<Output = T>) -> Option<T> {
    future::or(async { Some(f.await) }, async {
        Timer::after(limit).await;
        None
    })
    .await
}

/// Writes these bytes whole (through rustls's buffer, for TLS).
async fn write(stream: &mut Stream, bytes: &[u8]) -> Result<(), TransportError> {
    let written = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    written.await.map_err(|_| TransportError::Disconnected)
}

/// Reads one response through the sans-IO parser.
async fn read_response(
    stream: &mut Stream,
) -> Result<chat_net::http1::ParsedResponse, TransportError> {
    let mut parser = ResponseParser::new();
    let mut buf = vec![0; READ_CHUNK];
    loop {
        let parsed = match stream.read(&mut buf).await {
            // The end of the connection ends a body that runs to it; else it was cut short.
            Ok(0) | Err(_) => Some(parser.end()?),
            Ok(n) => parser.push(&buf[..n])?,
        };
        if let Some(r) = parsed {
            return Ok(r);
        }
    }
}

/// Whether a kept connection is still open and quiet: a read that is not ready at once
/// (HTTP/1.1 sends nothing unasked, so a ready read is the server's close).
async fn is_quiet(stream: &mut Stream) -> bool {
    future::poll_once(stream.read(&mut [0; 1])).await.is_none()
}

impl Net {
    /// TCP, then TLS for `https://` and `wss://`. A certificate rustls refuses is
    /// [`TransportError::Certificate`]; any other failure [`TransportError::Connect`].
    async fn connect(&self, target: &Target) -> Result<Stream, TransportError> {
        let host = target.bare_host();
        let tcp = TcpStream::connect((host.as_str(), target.port))
            .await
            .map_err(|_| TransportError::Connect)?;
        let _ = tcp.set_nodelay(true);
        if !target.tls {
            return Ok(Box::new(tcp));
        }
        let config = match &self.tls {
            Some(c) => Arc::clone(c),
            None => chat_net::default_config()?,
        };
        let name = ServerName::try_from(host).map_err(|_| TransportError::Connect)?;
        match TlsConnector::from(config).connect(name, tcp).await {
            Ok(tls) => Ok(Box::new(tls)),
            Err(e) if chat_net::is_certificate_error(&e) => Err(TransportError::Certificate),
            Err(_) => Err(TransportError::Connect),
        }
    }

    /// A REST call or probe, on a connection of its own.
    pub(crate) async fn send(&self, request: &Request) -> Result<Response, TransportError> {
        self.exchange(request, &mut None).await
    }

    /// One HTTP/1.1 exchange, on the `kept` connection if it serves this origin and is
    /// still open; the connection is kept again if it may carry another request.
    async fn exchange(
        &self,
        request: &Request,
        kept: &mut Option<Conn>,
    ) -> Result<Response, TransportError> {
        let target = Target::parse(&request.url, self.allow_plain_http)?;
        let head = request_bytes(request, &target)?;
        // A kept connection, if the server has not closed it since; sending again on a new
        // one is safe when the write fails, as nothing was received.
        let mut reused = None;
        if let Some((origin, mut s)) = kept.take() {
            if origin == target.origin()
                && is_quiet(&mut s).await
                && write(&mut s, &head).await.is_ok()
            {
                reused = Some(s);
            }
        }
        let mut stream = match reused {
            Some(s) => s,
            None => {
                let mut s = self.connect(&target).await?;
                write(&mut s, &head).await?;
                s
            }
        };
        let r = read_response(&mut stream).await?;
        if r.keep_alive {
            *kept = Some((target.origin(), stream));
        }
        Ok(Response::new(r.status, r.body))
    }

    /// One turn of the event stream, on the connection the previous turn kept, if any.
    pub(crate) async fn poll(
        &self,
        request: &Request,
        kept: Option<Kept>,
    ) -> (PollOutcome, Option<Kept>) {
        let ws = match kept {
            Some(Kept::Ws(ws)) => ws,
            Some(Kept::Http(conn)) => return self.long_poll(request, Some(conn)).await,
            None => match (self.transport, self.auto.get()) {
                (StreamTransport::LongPoll, _) | (_, AutoMode::LongPoll) => {
                    return self.long_poll(request, None).await;
                }
                (StreamTransport::Auto, AutoMode::Undecided) => {
                    match within(self.upgrade_timeout, self.upgrade(request)).await {
                        Some(Ok(Ok(ws))) => {
                            self.auto.set(AutoMode::WebSocket);
                            ws
                        }
                        Some(Ok(Err(r))) if AutoMode::passes_on(r.status) => {
                            return (PollOutcome::from_http(r.status, r.body), None);
                        }
                        _ => {
                            self.auto.set(AutoMode::LongPoll);
                            return self.long_poll(request, None).await;
                        }
                    }
                }
                _ => match self.upgrade(request).await {
                    Ok(Ok(ws)) => ws,
                    Ok(Err(r)) => return (PollOutcome::from_http(r.status, r.body), None),
                    Err(e) => return (PollOutcome::Failed(e), None),
                },
            },
        };
        let mut ws = ws;
        let outcome = ws.turn(request).await.unwrap_or_else(PollOutcome::Failed);
        let kept = ws::keeps_socket(&outcome).then_some(Kept::Ws(ws));
        (outcome, kept)
    }

    async fn long_poll(
        &self,
        request: &Request,
        mut kept: Option<Conn>,
    ) -> (PollOutcome, Option<Kept>) {
        let outcome = chat_net::poll_outcome(self.exchange(request, &mut kept).await);
        (outcome, kept.map(Kept::Http))
    }

    /// The WebSocket upgrade of this poll: the socket, or the plain HTTP answer it got.
    async fn upgrade(
        &self,
        request: &Request,
    ) -> Result<Result<Box<WebSocket>, Response>, TransportError> {
        let target = Target::parse(&ws::websocket_url(&request.url), self.allow_plain_http)?;
        let mut handshake = ClientHandshake::new()?;
        let head = handshake.request_bytes(request, &target)?;
        let mut stream = self.connect(&target).await?;
        let mut buf = vec![0; ws::READ_BUFFER];
        let answer = async {
            write(&mut stream, &head).await?;
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) => return handshake.end(),
                    Ok(n) => {
                        if let Some(upgrade) = handshake.push(&buf[..n]).transpose() {
                            return upgrade;
                        }
                    }
                    Err(_) => return Err(TransportError::Disconnected),
                }
            }
        };
        let upgrade = match answer.await {
            // No answer at all: the server could not be reached.
            Err(TransportError::Disconnected) => return Err(TransportError::Connect),
            answer => answer?,
        };
        match upgrade {
            Upgrade::Accepted { rest } => {
                let mut decoder = Decoder::new(Role::Client);
                decoder.push(&rest);
                let encoder = Encoder::new(Role::Client);
                let cursor = WsCursor::upgraded(request);
                Ok(Ok(Box::new(WebSocket {
                    stream,
                    decoder,
                    encoder,
                    cursor,
                })))
            }
            Upgrade::Refused(response) => Ok(Err(response)),
        }
    }
}

impl WebSocket {
    /// A poll on the socket: sends the cursor (and a new token) if the server needs them,
    /// then waits for the next pushed batch, answering pings meanwhile; `200 []` after 60 %
    /// of the poll's timeout without one, as a long poll would answer.
    async fn turn(&mut self, request: &Request) -> Result<PollOutcome, TransportError> {
        if let Some(text) = self.cursor.outgoing_for(request) {
            let frame = self.encoder.text(&text);
            write(&mut self.stream, &frame).await?;
        }
        let until = Instant::now() + ws::hold(request.timeout);
        let mut buf = vec![0; ws::READ_BUFFER];
        loop {
            let message = match self.decoder.next() {
                Ok(Some(message)) => message,
                Ok(None) => {
                    let read = async { Some(self.stream.read(&mut buf).await) };
                    let idle = async {
                        Timer::at(until).await;
                        None
                    };
                    match future::or(read, idle).await {
                        None => return Ok(ws::idle()),
                        Some(Ok(0) | Err(_)) => return Err(TransportError::Disconnected),
                        Some(Ok(n)) => self.decoder.push(&buf[..n]),
                    }
                    continue;
                }
                Err(e) => {
                    let close = self.encoder.close(Some((e.close_code(), "")));
                    within(CLOSE_WAIT, write(&mut self.stream, &close)).await;
                    return Err(e.into());
                }
            };
            match message {
                Message::Text(text) => return Ok(ws::batch(text)),
                Message::Binary(_) => return Err(TransportError::Protocol),
                Message::Pong(_) => {}
                Message::Ping(_) => {
                    if let Some(pong) = self.encoder.answer(&message) {
                        write(&mut self.stream, &pong).await?;
                    }
                }
                Message::Close(ref frame) => {
                    let code = frame.as_ref().map(|f| f.code);
                    // The closing handshake's answer, if the server still listens.
                    if let Some(answer) = self.encoder.answer(&message) {
                        within(CLOSE_WAIT, write(&mut self.stream, &answer)).await;
                    }
                    return Ok(ws::closed(code));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::disallowed_methods)]

    use std::time::SystemTime;

    use smol::net::TcpListener;

    use super::*;

    /// The `init` request of a session on `base`.
    fn request_to(base: &str) -> Request {
        // Its payload is {"exp":4000000000}.
        let token = chat_core::Token::parse("jwt.e30.eyJleHAiOjQwMDAwMDAwMDB9.signature").unwrap();
        let params = chat_core::InitParams::new(
            base,
            "123e4567-e89b-12d3-a456-426614174000",
            token,
            chat_core::AppKey::new("appkey"),
        )
        .unwrap()
        .allow_plain_http(true);
        let mut session = chat_core::Session::new(params, chat_core::Config::default()).unwrap();
        session.init(Instant::now(), SystemTime::now()).unwrap();
        match session.poll_output() {
            chat_core::Output::Transmit(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn net(allow_plain_http: bool) -> Net {
        Net {
            tls: None,
            allow_plain_http,
            transport: StreamTransport::LongPoll,
            upgrade_timeout: Duration::from_secs(1),
            auto: Cell::default(),
        }
    }

    #[test]
    fn a_redirect_is_a_status_never_followed() {
        smol::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let server = smol::spawn(async move {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut head = vec![0; 4096];
                let n = socket.read(&mut head).await.unwrap();
                let answer = "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:1/elsewhere\r\ncontent-length: 0\r\n\r\n";
                socket.write_all(answer.as_bytes()).await.unwrap();
                String::from_utf8_lossy(&head[..n]).into_owned()
            });
            let r = net(false).send(&request_to(&base)).await.unwrap();
            assert_eq!((r.status, r.body.len()), (302, 0));
            let head = server.await;
            assert!(head.starts_with("POST /"), "{head}");
            assert!(head.contains("\r\nappkey: appkey\r\n"), "{head}");
        });
    }

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        smol::block_on(async {
            let request = request_to("http://example.invalid");
            // Refused before any connection is attempted.
            assert_eq!(
                net(false).send(&request).await,
                Err(TransportError::Connect)
            );
            let (outcome, kept) = net(false).poll(&request, None).await;
            assert_eq!(outcome, PollOutcome::Failed(TransportError::Connect));
            assert!(kept.is_none());
        });
    }
}
