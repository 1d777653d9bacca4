//! [`Http1LongPollTransport`]: long polling over one dedicated HTTP/1.1 connection.
//!
//! A process may hold thousands of sessions, each with a poll held by the server most of the
//! time. A general HTTP client keeps, per held poll, a pooled connection with its own task,
//! request channel and read and write buffers (tens of KiB). Here a session owns its
//! connection outright and a held poll owns nothing but the socket: the request is written
//! from a temporary buffer, and the read buffer is only allocated once the answer starts to
//! arrive (on plain TCP; over TLS, rustls keeps its own buffers).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use chat_core::validate::MAX_RESPONSE_LEN;
use chat_core::{PollOutcome, Request, TransportError};
use chat_net::http1::{Origin, READ_CHUNK, ResponseParser, Target, may_resend, request_bytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::transport::{EventTransport, Response};

/// Carries the event stream as HTTP long polls over one HTTP/1.1 connection of its own,
/// reused from poll to poll; the default for [`StreamTransport::LongPoll`](crate::StreamTransport::LongPoll).
///
/// `https://` goes over rustls with the webpki roots (one configuration shared by the whole
/// process) or the [`ClientConfig`] given to [`with_tls_config`](Self::with_tls_config);
/// `http://` only to a loopback host, unless [`allow_plain_http`](Self::allow_plain_http).
/// Bodies may be sized by `Content-Length`, chunked, or run to the end of the connection;
/// a response longer than [`MAX_RESPONSE_LEN`] is refused with [`TransportError::Protocol`].
/// A connection the server closed while idle is replaced before the request is sent, and
/// one that it closes as the request goes out (no byte of the answer read) is replaced and
/// the request sent again, once ([`chat_net::http1::may_resend`]); any other failure is
/// reported, and the next poll opens a new connection.
pub struct Http1LongPollTransport {
    tls: Option<Arc<ClientConfig>>,
    allow_plain_http: bool,
    connection: Option<Connection>,
}

chat_net::own_connection_transport!(Http1LongPollTransport, "http://");

impl Http1LongPollTransport {
    async fn connect(&self, target: &Target) -> Result<Connection, TransportError> {
        Ok(Connection {
            origin: target.origin(),
            stream: connect(target, self.tls.as_ref()).await?,
        })
    }
}

/// Opens a connection to the target: TCP, then TLS for `https://` and `wss://` (with this
/// configuration, or the process-wide default). A certificate rustls refuses is
/// [`TransportError::Certificate`]; any other failure [`TransportError::Connect`].
pub(crate) async fn connect(
    target: &Target,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<Stream, TransportError> {
    let tcp = match &target.host {
        url::Host::Domain(d) => TcpStream::connect((d.as_str(), target.port)).await,
        url::Host::Ipv4(a) => TcpStream::connect((*a, target.port)).await,
        url::Host::Ipv6(a) => TcpStream::connect((*a, target.port)).await,
    }
    .map_err(|e| {
        tracing::debug!(error = %e, "connection failed");
        TransportError::Connect
    })?;
    // Requests are written whole; waiting for more would only delay them.
    let _ = tcp.set_nodelay(true);
    if !target.tls {
        return Ok(Stream::Plain(tcp));
    }
    let config = match tls {
        Some(c) => Arc::clone(c),
        None => chat_net::default_config()?,
    };
    let name = match &target.host {
        url::Host::Domain(d) => ServerName::try_from(d.clone()),
        url::Host::Ipv4(a) => Ok(ServerName::IpAddress(std::net::IpAddr::V4(*a).into())),
        url::Host::Ipv6(a) => Ok(ServerName::IpAddress(std::net::IpAddr::V6(*a).into())),
    }
    .map_err(|_| TransportError::Connect)?;
    let tls = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| {
            tracing::debug!(error = %e, "TLS handshake failed");
            if chat_net::is_certificate_error(&e) {
                TransportError::Certificate
            } else {
                TransportError::Connect
            }
        })?;
    Ok(Stream::Tls(Box::new(tls)))
}

#[cfg(test)]
pub(crate) mod tests;

impl Http1LongPollTransport {
    /// One long poll's HTTP exchange: the status and body, whatever the status.
    ///
    /// On the connection kept from the previous poll when there is one. If that connection
    /// ends before any byte of the answer (the server closed it as the request went out),
    /// the request goes again, once, on a new connection ([`may_resend`]).
    pub(crate) async fn exchange(&mut self, request: Request) -> Result<Response, TransportError> {
        // Taken out for the exchange: if this future is dropped half-way, so is the
        // connection, whose state is then unknown.
        if let Some(mut c) = self.connection.take() {
            let target = Target::parse(&request.url, self.allow_plain_http)?;
            if c.origin == target.origin() && c.stream.is_open() {
                let head = request_bytes(&request, &target)?;
                let sent = send(&mut c.stream, &head).await;
                // While the server holds the poll, only the request itself is kept (its
                // URL; the credentials are shared with the session), to send it again.
                drop((head, target));
                let mut parser = ResponseParser::new();
                let result = match sent {
                    Ok(()) => self.finish(c, &mut parser).await,
                    Err(e) => {
                        tracing::debug!(error = %e, "kept-alive long-poll connection lost");
                        Err(TransportError::Disconnected)
                    }
                };
                match result {
                    Err(e) if may_resend(true, parser.has_started(), e) => {
                        tracing::debug!(
                            "the kept-alive connection ended before any answer; sending again on a new one"
                        );
                    }
                    result => return result,
                }
            }
        }
        let target = Target::parse(&request.url, self.allow_plain_http)?;
        let head = request_bytes(&request, &target)?;
        // Nothing of the request is kept while the server holds the poll.
        drop(request);
        let mut c = self.connect(&target).await?;
        send(&mut c.stream, &head)
            .await
            .map_err(|_| TransportError::Disconnected)?;
        drop((head, target));
        self.finish(c, &mut ResponseParser::new()).await
    }
}

#[async_trait]
impl EventTransport for Http1LongPollTransport {
    async fn poll(&mut self, request: Request) -> PollOutcome {
        chat_net::poll_outcome(self.exchange(request).await)
    }

    async fn reset(&mut self) {
        self.connection = None;
    }

    fn name(&self) -> &'static str {
        "long-poll"
    }
}

impl Http1LongPollTransport {
    async fn finish(
        &mut self,
        mut c: Connection,
        parser: &mut ResponseParser,
    ) -> Result<Response, TransportError> {
        let (response, keep) = read_response(&mut c.stream, parser).await?;
        if keep {
            self.connection = Some(c);
        }
        Ok(response)
    }
}

/// Writes the whole request (through rustls's buffer, for TLS).
async fn send(stream: &mut Stream, head: &[u8]) -> io::Result<()> {
    stream.write_all(head).await?;
    stream.flush().await
}

struct Connection {
    origin: Origin,
    stream: Stream,
}

/// Reads one response through the sans-IO parser: its status and body, and whether the
/// connection can carry another.
async fn read_response(
    stream: &mut Stream,
    parser: &mut ResponseParser,
) -> Result<(Response, bool), TransportError> {
    // A held poll waits here, for minutes at a time: without any buffer of its own.
    stream.readable().await?;
    loop {
        // A body of known length is read in one go where the socket has it.
        let want = parser
            .wants()
            .map_or(READ_CHUNK, |n| n.clamp(READ_CHUNK, MAX_RESPONSE_LEN));
        let input = parser.input();
        input.reserve(want);
        let parsed = match stream.read_buf(input).await {
            // The end of the connection is the end of a body that runs to it (or a reset:
            // the body is then cut short, which JSON parsing will notice).
            Ok(0) | Err(_) => Some(parser.end()?),
            Ok(_) => parser.advance()?,
        };
        if let Some(r) = parsed {
            return Ok((Response::new(r.status, r.body), r.keep_alive));
        }
    }
}

/// A connection, plain or over TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Whether an idle connection is still open and quiet: the server may have closed it
    /// since the last response (and sent nothing else, as HTTP/1.1 has nothing unasked for).
    pub(crate) fn is_open(&self) -> bool {
        let tcp = match self {
            Self::Plain(s) => s,
            Self::Tls(s) => s.get_ref().0,
        };
        // Ask the socket itself: tokio's readiness may not have seen the FIN yet.
        let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        matches!(
            socket2::SockRef::from(tcp).peek(&mut byte),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock
        )
    }

    /// Waits until there is something to read.
    pub(crate) async fn readable(&self) -> Result<(), TransportError> {
        match self {
            Self::Plain(s) => s.readable().await.map_err(|_| TransportError::Disconnected),
            // rustls may hold decrypted bytes already; reading is how to find out.
            Self::Tls(_) => Ok(()),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
