//! [`Http1LongPollTransport`]: long polling over one dedicated HTTP/1.1 connection, with
//! blocking sockets that [`Cancel`] can interrupt.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::validate::{MAX_RESPONSE_LEN, is_loopback_host};
use chat_core::{Request, TransportError};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::transport::{Cancel, EventTransport, Response};

/// Longest accepted status line and headers.
const MAX_HEAD_LEN: usize = 16 * 1024;
/// Most headers accepted in a response.
const MAX_HEADERS: usize = 48;
/// How much is read at a time.
const READ_CHUNK: usize = 4096;
/// Longest accepted chunk-size or trailer line of a chunked body.
const MAX_LINE_LEN: usize = 1024;

/// Carries the event stream (and the probes) as HTTP long polls over one HTTP/1.1
/// connection of its own, reused from poll to poll; the default for
/// [`StreamTransport::LongPoll`](crate::StreamTransport::LongPoll).
///
/// `https://` goes over rustls with the webpki roots (one configuration shared by the whole
/// process) or the [`ClientConfig`] given to [`with_tls_config`](Self::with_tls_config);
/// `http://` only to a loopback host, unless [`allow_plain_http`](Self::allow_plain_http).
/// Bodies may be sized by `Content-Length`, chunked, or run to the end of the connection; a
/// response longer than [`MAX_RESPONSE_LEN`] is refused with [`TransportError::Protocol`].
/// The socket is registered with the poll's [`Cancel`], so that an aborted poll returns at
/// once instead of when the server answers.
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

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

struct Connection {
    /// Scheme, host and port it goes to.
    origin: String,
    stream: Stream,
}

/// Where a request goes.
pub(crate) struct Target {
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) path: String,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, TransportError> {
        let url = url::Url::parse(url).map_err(|_| TransportError::Connect)?;
        let tls = match url.scheme() {
            "https" | "wss" => true,
            "http" | "ws" => false,
            _ => return Err(TransportError::Connect),
        };
        let host = url.host_str().ok_or(TransportError::Connect)?.to_owned();
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        let mut path = url.path().to_owned();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        Ok(Self {
            tls,
            host,
            port,
            path,
        })
    }

    fn origin(&self) -> String {
        format!("{}://{}:{}", self.tls, self.host, self.port)
    }

    /// The host as a socket address wants it (IPv6 literals lose their brackets).
    fn bare_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// Opens a TCP connection to the target within `deadline`.
pub(crate) fn connect_tcp(target: &Target, deadline: Instant) -> Result<TcpStream, TransportError> {
    let addrs = (target.bare_host(), target.port)
        .to_socket_addrs()
        .map_err(|_| TransportError::Connect)?;
    for addr in addrs {
        let left = remaining(deadline)?;
        if let Ok(s) = TcpStream::connect_timeout(&addr, left) {
            let _ = s.set_nodelay(true);
            return Ok(s);
        }
    }
    Err(TransportError::Connect)
}

/// Time left before `deadline`, or [`TransportError::Timeout`].
pub(crate) fn remaining(deadline: Instant) -> Result<Duration, TransportError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(TransportError::Timeout)
    } else {
        Ok(left)
    }
}

fn io_error(e: &io::Error, cancel: &Cancel) -> TransportError {
    if cancel.is_cancelled() {
        return TransportError::Disconnected;
    }
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => TransportError::Timeout,
        io::ErrorKind::InvalidData => TransportError::Protocol,
        _ => TransportError::Disconnected,
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

    /// Long polling with this TLS configuration (extra roots...). Give it no ALPN protocols.
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

    fn open(&self, target: &Target, deadline: Instant) -> Result<Stream, TransportError> {
        if !target.tls && !self.allow_plain_http && !is_loopback_host(target.bare_host()) {
            return Err(TransportError::Connect);
        }
        let tcp = connect_tcp(target, deadline)?;
        if !target.tls {
            return Ok(Stream::Plain(tcp));
        }
        let config = match &self.tls {
            Some(c) => Arc::clone(c),
            None => crate::tls::default_config()?,
        };
        let name = ServerName::try_from(target.bare_host().to_owned())
            .map_err(|_| TransportError::Connect)?;
        let conn = ClientConnection::new(config, name).map_err(|_| TransportError::Connect)?;
        Ok(Stream::Tls(Box::new(StreamOwned::new(conn, tcp))))
    }

    fn exchange(
        &mut self,
        request: &Request,
        target: &Target,
        cancel: &Cancel,
    ) -> Result<Response, TransportError> {
        let deadline = Instant::now() + request.timeout;
        let origin = target.origin();
        let reused = match self.connection.take() {
            Some(c) if c.origin == origin && !is_stale(c.stream.tcp()) => Some(c),
            _ => None,
        };
        let mut connection = match reused {
            Some(c) => c,
            None => Connection {
                origin,
                stream: self.open(target, deadline)?,
            },
        };
        cancel.watch(connection.stream.tcp())?;
        let head = request_head(request, target);
        let tcp = connection.stream.tcp();
        tcp.set_write_timeout(Some(remaining(deadline)?))
            .map_err(|e| io_error(&e, cancel))?;
        connection
            .stream
            .write_all(head.as_bytes())
            .and_then(|()| match &request.body {
                Some(b) => connection.stream.write_all(b.as_bytes()),
                None => Ok(()),
            })
            .and_then(|()| connection.stream.flush())
            .map_err(|e| io_error(&e, cancel))?;
        let mut reader = Reader {
            stream: &mut connection.stream,
            buf: Vec::new(),
            deadline,
            cancel,
        };
        let (response, keep) = reader.response()?;
        if keep {
            self.connection = Some(connection);
        }
        Ok(response)
    }
}

/// Whether an idle connection was closed by the server (or sent something unasked).
fn is_stale(tcp: &TcpStream) -> bool {
    if tcp.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let stale = !matches!(tcp.peek(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
    tcp.set_nonblocking(false).is_err() || stale
}

fn request_head(request: &Request, target: &Target) -> String {
    let default_port = if target.tls { 443 } else { 80 };
    let host = if target.port == default_port {
        target.host.clone()
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n",
        request.method.as_str(),
        target.path
    );
    for (name, value) in request.headers() {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    if let Some(body) = &request.body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    head
}

struct Reader<'a> {
    stream: &'a mut Stream,
    /// Read but not yet consumed.
    buf: Vec<u8>,
    deadline: Instant,
    cancel: &'a Cancel,
}

impl Reader<'_> {
    /// Reads more into `buf`; `false` at the end of the connection.
    fn fill(&mut self) -> Result<bool, TransportError> {
        let left = remaining(self.deadline)?;
        self.stream
            .tcp()
            .set_read_timeout(Some(left))
            .map_err(|e| io_error(&e, self.cancel))?;
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A TLS peer that closes without close_notify: the end, for a body that runs
                // to the end of the connection.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
                Err(e) => return Err(io_error(&e, self.cancel)),
            }
        }
    }

    /// The response, and whether the connection may be reused.
    fn response(&mut self) -> Result<(Response, bool), TransportError> {
        let (status, head_len, framing, close) = loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Response::new(&mut headers);
            match parsed.parse(&self.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = parsed.code.ok_or(TransportError::Protocol)?;
                    let (framing, close) = framing(parsed.headers)?;
                    break (status, len, framing, close);
                }
                Ok(httparse::Status::Partial) => {
                    if self.buf.len() > MAX_HEAD_LEN {
                        return Err(TransportError::Protocol);
                    }
                    if !self.fill()? {
                        return Err(TransportError::Disconnected);
                    }
                }
                Err(_) => return Err(TransportError::Protocol),
            }
        };
        self.buf.drain(..head_len);
        let (body, keep) = match framing {
            Framing::Length(len) => {
                if len > MAX_RESPONSE_LEN {
                    return Err(TransportError::Protocol);
                }
                while self.buf.len() < len {
                    if !self.fill()? {
                        return Err(TransportError::Disconnected);
                    }
                }
                let body: Vec<u8> = self.buf.drain(..len).collect();
                (body, !close)
            }
            Framing::Chunked => (self.chunked()?, !close),
            Framing::ToEnd => {
                while self.fill()? {
                    if self.buf.len() > MAX_RESPONSE_LEN {
                        return Err(TransportError::Protocol);
                    }
                }
                (std::mem::take(&mut self.buf), false)
            }
        };
        Ok((Response::new(status, body), keep && self.buf.is_empty()))
    }

    fn line(&mut self) -> Result<String, TransportError> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..at + 2).take(at).collect();
                return String::from_utf8(line).map_err(|_| TransportError::Protocol);
            }
            if self.buf.len() > MAX_LINE_LEN {
                return Err(TransportError::Protocol);
            }
            if !self.fill()? {
                return Err(TransportError::Disconnected);
            }
        }
    }

    fn chunked(&mut self) -> Result<Vec<u8>, TransportError> {
        let mut body = Vec::new();
        loop {
            let line = self.line()?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| TransportError::Protocol)?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.line()?.is_empty() {}
                return Ok(body);
            }
            if size > MAX_RESPONSE_LEN - body.len() {
                return Err(TransportError::Protocol);
            }
            while self.buf.len() < size + 2 {
                if !self.fill()? {
                    return Err(TransportError::Disconnected);
                }
            }
            body.extend(self.buf.drain(..size));
            if self.buf.drain(..2).as_slice() != b"\r\n" {
                return Err(TransportError::Protocol);
            }
        }
    }
}

enum Framing {
    Length(usize),
    Chunked,
    ToEnd,
}

fn framing(headers: &[httparse::Header<'_>]) -> Result<(Framing, bool), TransportError> {
    let mut framing = Framing::ToEnd;
    let mut close = false;
    for h in headers {
        let value = std::str::from_utf8(h.value).map_err(|_| TransportError::Protocol)?;
        if h.name.eq_ignore_ascii_case("content-length") {
            let len = value
                .trim()
                .parse::<u64>()
                .map_err(|_| TransportError::Protocol)?;
            if len > MAX_RESPONSE_LEN as u64 {
                return Err(TransportError::Protocol);
            }
            if !matches!(framing, Framing::Chunked) {
                framing = Framing::Length(usize::try_from(len).unwrap_or(usize::MAX));
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            framing = Framing::Chunked;
        } else if h.name.eq_ignore_ascii_case("connection")
            && value.to_ascii_lowercase().contains("close")
        {
            close = true;
        }
    }
    Ok((framing, close))
}

impl EventTransport for Http1LongPollTransport {
    fn poll(&mut self, request: Request, cancel: &Cancel) -> Result<Response, TransportError> {
        let target = Target::parse(&request.url)?;
        let result = self.exchange(&request, &target, cancel);
        if result.is_err() {
            self.connection = None;
        }
        result
    }

    fn reset(&mut self) {
        self.connection = None;
    }

    fn name(&self) -> &'static str {
        "long-poll"
    }
}
