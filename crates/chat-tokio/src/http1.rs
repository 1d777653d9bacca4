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
use chat_core::validate::{MAX_RESPONSE_LEN, is_loopback_host};
use chat_core::{Method, Request, TransportError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::transport::{EventTransport, Response};

/// Longest accepted status line and headers.
const MAX_HEAD_LEN: usize = 16 * 1024;
/// Most headers accepted in a response.
const MAX_HEADERS: usize = 48;
/// How much is read at a time (a batch of a few chat events fits).
const READ_CHUNK: usize = 4096;
/// Longest accepted chunk-size or trailer line of a chunked body.
const MAX_LINE_LEN: usize = 1024;

/// Carries the event stream as HTTP long polls over one HTTP/1.1 connection of its own,
/// reused from poll to poll; the default for [`StreamTransport::LongPoll`](crate::StreamTransport::LongPoll).
///
/// `https://` goes over rustls with the webpki roots (one configuration shared by the whole
/// process) or the [`ClientConfig`] given to [`with_tls_config`](Self::with_tls_config);
/// `http://` only to a loopback host, unless [`allow_plain_http`](Self::allow_plain_http).
/// Bodies may be sized by `Content-Length`, chunked, or run to the end of the connection;
/// a response longer than [`MAX_RESPONSE_LEN`] is refused with [`TransportError::Protocol`].
/// A connection the server closed while idle is replaced before the request is sent; any
/// other failure is reported, and the next poll opens a new connection.
pub struct Http1LongPollTransport {
    tls: Option<Arc<ClientConfig>>,
    allow_plain_http: bool,
    connection: Option<Connection>,
}

impl std::fmt::Debug for Http1LongPollTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http1LongPollTransport")
            .field("connected", &self.connection.is_some())
            .field("allow_plain_http", &self.allow_plain_http)
            .finish_non_exhaustive()
    }
}

impl Default for Http1LongPollTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl Http1LongPollTransport {
    /// Long polling with the default TLS setup (rustls, webpki roots).
    pub fn new() -> Self {
        Self {
            tls: None,
            allow_plain_http: false,
            connection: None,
        }
    }

    /// Long polling with this TLS configuration (extra roots, a proxy's certificate...).
    pub fn with_tls_config(config: Arc<ClientConfig>) -> Self {
        Self {
            tls: Some(config),
            ..Self::new()
        }
    }

    /// Allow `http://` to a host that is not loopback (never in production).
    pub fn allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    async fn connect(&self, target: &Target) -> Result<Connection, TransportError> {
        let tcp = match &target.host {
            url::Host::Domain(d) => TcpStream::connect((d.as_str(), target.port)).await,
            url::Host::Ipv4(a) => TcpStream::connect((*a, target.port)).await,
            url::Host::Ipv6(a) => TcpStream::connect((*a, target.port)).await,
        }
        .map_err(|e| {
            tracing::debug!(error = %e, "long-poll connection failed");
            TransportError::Connect
        })?;
        // Requests are written whole; waiting for more would only delay them.
        let _ = tcp.set_nodelay(true);
        let stream = if target.tls {
            let config = match &self.tls {
                Some(c) => Arc::clone(c),
                None => crate::tls::default_config()?,
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
                    tracing::debug!(error = %e, "long-poll TLS handshake failed");
                    TransportError::Connect
                })?;
            Stream::Tls(Box::new(tls))
        } else {
            Stream::Plain(tcp)
        };
        Ok(Connection {
            origin: target.origin(),
            stream,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;

#[async_trait]
impl EventTransport for Http1LongPollTransport {
    async fn poll(&mut self, request: Request) -> Result<Response, TransportError> {
        let target = Target::parse(&request.url, self.allow_plain_http)?;
        let head = request_bytes(&request, &target)?;
        // Nothing of the request is kept while the server holds the poll.
        drop(request);
        // Taken out for the exchange: if this future is dropped half-way, so is the
        // connection, whose state is then unknown.
        if let Some(mut c) = self.connection.take() {
            if c.origin == target.origin() && c.stream.is_open() {
                match send(&mut c.stream, &head).await {
                    Ok(()) => {
                        drop((head, target));
                        return self.finish(c).await;
                    }
                    // Closed between the check and the write: nothing was received, so
                    // sending again on a new connection is safe.
                    Err(e) => tracing::debug!(error = %e, "idle long-poll connection lost"),
                }
            }
        }
        let mut c = self.connect(&target).await?;
        send(&mut c.stream, &head)
            .await
            .map_err(|_| TransportError::Disconnected)?;
        drop((head, target));
        self.finish(c).await
    }

    async fn reset(&mut self) {
        self.connection = None;
    }

    fn name(&self) -> &'static str {
        "long-poll"
    }
}

impl Http1LongPollTransport {
    async fn finish(&mut self, mut c: Connection) -> Result<Response, TransportError> {
        let (response, keep) = read_response(&mut c.stream).await?;
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

/// Where a request goes.
struct Target {
    tls: bool,
    host: url::Host<String>,
    port: u16,
    /// The `Host` header.
    authority: String,
    /// Path and query.
    path: String,
}

impl Target {
    fn parse(url: &str, allow_plain_http: bool) -> Result<Self, TransportError> {
        let url = url::Url::parse(url).map_err(|_| TransportError::Connect)?;
        let tls = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(TransportError::Connect),
        };
        let host = url.host().ok_or(TransportError::Connect)?.to_owned();
        let host_str = url.host_str().unwrap_or_default();
        if !tls && !allow_plain_http && !is_loopback_host(host_str) {
            tracing::debug!("plain HTTP refused to a host that is not loopback");
            return Err(TransportError::Connect);
        }
        let port = url.port_or_known_default().ok_or(TransportError::Connect)?;
        let authority = match url.port() {
            Some(p) => format!("{host_str}:{p}"),
            None => host_str.to_owned(),
        };
        let mut path = url.path().to_owned();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        Ok(Self {
            tls,
            host,
            port,
            authority,
            path,
        })
    }

    fn origin(&self) -> Origin {
        (self.tls, self.authority.clone())
    }
}

/// Scheme and authority: a connection serves only its own origin.
type Origin = (bool, String);

struct Connection {
    origin: Origin,
    stream: Stream,
}

/// The request line, headers and body, ready to write.
fn request_bytes(request: &Request, target: &Target) -> Result<Vec<u8>, TransportError> {
    let method = match request.method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Delete => "DELETE",
    };
    let body = request.body.as_deref().unwrap_or_default();
    let mut out = Vec::with_capacity(256 + body.len());
    push_header(&mut out, "Host", &target.authority)?;
    for (name, value) in request.headers() {
        push_header(&mut out, name, value)?;
    }
    if request.body.is_some() || request.method != Method::Get {
        push_header(&mut out, "Content-Length", &body.len().to_string())?;
    }
    let mut head = Vec::with_capacity(out.len() + body.len() + 32);
    head.extend_from_slice(method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.path.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    head.extend_from_slice(&out);
    head.extend_from_slice(b"\r\n");
    head.extend_from_slice(body.as_bytes());
    Ok(head)
}

/// Appends `name: value` and its CRLF.
fn push_header(out: &mut Vec<u8>, name: &str, value: &str) -> Result<(), TransportError> {
    // A line break in a value would split it into headers of someone else's choosing.
    if value.contains(['\r', '\n']) {
        return Err(TransportError::Protocol);
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// How the body of a response ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

#[derive(Debug)]
struct Head {
    status: u16,
    framing: Framing,
    keep_alive: bool,
    len: usize,
}

/// Parses a status line and headers, if `buf` holds them whole.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, TransportError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(TransportError::Protocol),
    };
    let status = response.code.ok_or(TransportError::Protocol)?;
    let mut keep_alive = response.version == Some(1);
    let mut length: Option<usize> = None;
    let mut chunked = false;
    for h in response.headers.iter() {
        let value = std::str::from_utf8(h.value).map_err(|_| TransportError::Protocol)?;
        if h.name.eq_ignore_ascii_case("content-length") {
            let n: usize = value.trim().parse().map_err(|_| TransportError::Protocol)?;
            if length.is_some_and(|m| m != n) {
                return Err(TransportError::Protocol);
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            if !chunked {
                // Any other coding runs to the end of the connection.
                keep_alive = false;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',') {
                let token = token.trim();
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        if n > MAX_RESPONSE_LEN {
            return Err(TransportError::Protocol);
        }
        Framing::Length(n)
    } else {
        keep_alive = false;
        Framing::UntilClose
    };
    Ok(Some(Head {
        status,
        framing,
        keep_alive,
        len,
    }))
}

/// Reads one response: its status and body, and whether the connection can carry another.
async fn read_response(stream: &mut Stream) -> Result<(Response, bool), TransportError> {
    // A held poll waits here, for minutes at a time: without any buffer of its own.
    stream.readable().await?;
    let mut reader = Reader {
        stream,
        buf: Vec::new(),
        pos: 0,
    };
    let head = loop {
        let head = loop {
            if let Some(head) = parse_head(reader.unread())? {
                break head;
            }
            if reader.unread().len() >= MAX_HEAD_LEN {
                return Err(TransportError::Protocol);
            }
            reader.fill().await?;
        };
        reader.pos += head.len;
        // An interim answer (100 Continue...) is followed by the real one.
        if !(100..200).contains(&head.status) {
            break head;
        }
    };
    let body = match head.framing {
        Framing::Empty => Vec::new(),
        Framing::Length(n) => reader.exact(n).await?,
        Framing::Chunked => reader.chunked().await?,
        Framing::UntilClose => reader.until_close().await?,
    };
    // Bytes past the response were not asked for: the connection's state is unknown.
    let keep = head.keep_alive && reader.unread().is_empty();
    Ok((Response::new(head.status, body), keep))
}

/// Reads a response out of a growing buffer.
struct Reader<'a> {
    stream: &'a mut Stream,
    buf: Vec<u8>,
    /// How much of `buf` is consumed.
    pos: usize,
}

impl Reader<'_> {
    fn unread(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads more; the end of the connection mid-response is [`TransportError::Disconnected`].
    async fn fill(&mut self) -> Result<(), TransportError> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        self.buf.reserve(READ_CHUNK);
        match self.stream.read_buf(&mut self.buf).await {
            Ok(0) | Err(_) => Err(TransportError::Disconnected),
            Ok(_) => Ok(()),
        }
    }

    /// Consumes up to `n` buffered bytes into `out`.
    fn take_into(&mut self, n: usize, out: &mut Vec<u8>) -> usize {
        let n = n.min(self.buf.len() - self.pos);
        out.extend_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        n
    }

    async fn exact(&mut self, n: usize) -> Result<Vec<u8>, TransportError> {
        let mut body = Vec::with_capacity(n);
        let left = n - self.take_into(n, &mut body);
        self.read_direct(left, &mut body).await?;
        Ok(body)
    }

    /// Reads the next `n` bytes (none of them buffered) straight into `out`'s spare room:
    /// one large read where the socket has them, and no copy.
    async fn read_direct(&mut self, n: usize, out: &mut Vec<u8>) -> Result<(), TransportError> {
        out.reserve(n);
        let end = out.len() + n;
        while out.len() < end {
            let left = (end - out.len()) as u64;
            match (&mut *self.stream).take(left).read_buf(out).await {
                Ok(0) | Err(_) => return Err(TransportError::Disconnected),
                Ok(_) => {}
            }
        }
        Ok(())
    }

    async fn until_close(&mut self) -> Result<Vec<u8>, TransportError> {
        let mut body = Vec::new();
        loop {
            self.take_into(usize::MAX, &mut body);
            if body.len() > MAX_RESPONSE_LEN {
                return Err(TransportError::Protocol);
            }
            if self.fill().await.is_err() {
                // The end of the connection is the end of this body (or a reset: the
                // body is then cut short, which JSON parsing will notice).
                return Ok(body);
            }
        }
    }

    /// One line, without its CRLF.
    async fn line(&mut self) -> Result<Vec<u8>, TransportError> {
        loop {
            if let Some(at) = self.unread().windows(2).position(|w| w == b"\r\n") {
                let line = self.unread()[..at].to_vec();
                self.pos += at + 2;
                return Ok(line);
            }
            if self.unread().len() > MAX_LINE_LEN {
                return Err(TransportError::Protocol);
            }
            self.fill().await?;
        }
    }

    async fn chunked(&mut self) -> Result<Vec<u8>, TransportError> {
        let mut body = Vec::new();
        loop {
            let line = self.line().await?;
            let size = std::str::from_utf8(&line)
                .ok()
                .and_then(|l| usize::from_str_radix(l.split(';').next()?.trim(), 16).ok())
                .ok_or(TransportError::Protocol)?;
            if size > MAX_RESPONSE_LEN - body.len() {
                return Err(TransportError::Protocol);
            }
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.line().await?.is_empty() {}
                return Ok(body);
            }
            let left = size - self.take_into(size, &mut body);
            self.read_direct(left, &mut body).await?;
            if !self.line().await?.is_empty() {
                return Err(TransportError::Protocol);
            }
        }
    }
}

/// A connection, plain or over TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Whether an idle connection is still open and quiet: the server may have closed it
    /// since the last response (and sent nothing else, as HTTP/1.1 has nothing unasked for).
    fn is_open(&self) -> bool {
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
    async fn readable(&self) -> Result<(), TransportError> {
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
