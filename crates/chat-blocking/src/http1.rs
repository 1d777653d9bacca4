//! [`Http1LongPollTransport`]: long polling over one dedicated HTTP/1.1 connection, with
//! blocking sockets that [`Cancel`] can interrupt.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::{PollOutcome, Request, TransportError};
use chat_net::http1::{
    ParsedResponse, READ_CHUNK, ResponseParser, Target, may_resend, request_bytes,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::transport::{Cancel, EventTransport, Response};

/// Carries the event stream (and the probes) as HTTP long polls over one HTTP/1.1
/// connection of its own, reused from poll to poll; the default for
/// [`StreamTransport::LongPoll`](crate::StreamTransport::LongPoll).
///
/// `https://` goes over rustls with the webpki roots (one configuration shared by the whole
/// process) or the [`ClientConfig`] given to [`with_tls_config`](Self::with_tls_config);
/// `http://` only to a loopback host, unless [`allow_plain_http`](Self::allow_plain_http).
/// Bodies may be sized by `Content-Length`, chunked, or run to the end of the connection; a
/// response longer than [`MAX_RESPONSE_LEN`](chat_core::validate::MAX_RESPONSE_LEN) is refused with [`TransportError::Protocol`].
/// The socket is registered with the poll's [`Cancel`], so that an aborted poll returns at
/// once instead of when the server answers. A kept-alive connection that the server closes
/// as the next request goes out (no byte of the answer read) is replaced and the request
/// sent again, once ([`chat_net::http1::may_resend`]).
pub struct Http1LongPollTransport {
    tls: Option<Arc<ClientConfig>>,
    allow_plain_http: bool,
    connection: Option<Connection>,
}

chat_net::own_connection_transport!(Http1LongPollTransport, "http://");

/// A connection, plain or over TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// The socket, for timeouts and [`Cancel`].
    pub(crate) fn tcp(&self) -> &TcpStream {
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
    /// Scheme and authority it goes to.
    origin: chat_net::http1::Origin,
    stream: Stream,
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

/// Opens a connection to the target within `deadline`, registered with `cancel`: TCP, then
/// for `https://` and `wss://` the whole TLS handshake (with this configuration, or the
/// process-wide default). A certificate rustls refuses is [`TransportError::Certificate`].
pub(crate) fn connect(
    target: &Target,
    tls: Option<&Arc<ClientConfig>>,
    deadline: Instant,
    cancel: &Cancel,
) -> Result<Stream, TransportError> {
    let mut tcp = connect_tcp(target, deadline)?;
    cancel.watch(&tcp)?;
    if !target.tls {
        return Ok(Stream::Plain(tcp));
    }
    let config = match tls {
        Some(c) => Arc::clone(c),
        None => chat_net::default_config()?,
    };
    let name = ServerName::try_from(target.bare_host()).map_err(|_| TransportError::Connect)?;
    let mut conn = ClientConnection::new(config, name).map_err(|_| TransportError::Connect)?;
    // Now rather than at the first write: a refused certificate is then told apart from a
    // lost connection.
    while conn.is_handshaking() {
        let left = remaining(deadline)?;
        let _ = tcp.set_read_timeout(Some(left));
        let _ = tcp.set_write_timeout(Some(left));
        if let Err(e) = conn.complete_io(&mut tcp) {
            tracing::debug!(error = %e, "TLS handshake failed");
            return Err(match io_error(&e, cancel) {
                e @ (TransportError::Certificate | TransportError::Timeout) => e,
                _ if cancel.is_cancelled() => TransportError::Disconnected,
                _ => TransportError::Connect,
            });
        }
    }
    Ok(Stream::Tls(Box::new(StreamOwned::new(conn, tcp))))
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

pub(crate) fn io_error(e: &io::Error, cancel: &Cancel) -> TransportError {
    if cancel.is_cancelled() {
        return TransportError::Disconnected;
    }
    if chat_net::is_certificate_error(e) {
        return TransportError::Certificate;
    }
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => TransportError::Timeout,
        io::ErrorKind::InvalidData => TransportError::Protocol,
        _ => TransportError::Disconnected,
    }
}

impl Http1LongPollTransport {
    /// One long poll's HTTP exchange, on the connection kept from the previous poll when
    /// there is one. If that connection ends before any byte of the answer (the server
    /// closed it as the request went out), the request goes again, once, on a new
    /// connection ([`may_resend`]).
    fn exchange(
        &mut self,
        request: &Request,
        target: &Target,
        cancel: &Cancel,
    ) -> Result<Response, TransportError> {
        let deadline = Instant::now() + request.timeout;
        let origin = target.origin();
        let bytes = request_bytes(request, target)?;
        let reused = match self.connection.take() {
            Some(c) if c.origin == origin && !is_stale(c.stream.tcp()) => Some(c),
            _ => None,
        };
        if let Some(connection) = reused {
            let mut parser = ResponseParser::new();
            match self.attempt(connection, &bytes, &mut parser, deadline, cancel) {
                Err(e) if !cancel.is_cancelled() && may_resend(true, parser.has_started(), e) => {
                    tracing::debug!(
                        "the kept-alive connection ended before any answer; sending again on a new one"
                    );
                }
                result => return result,
            }
        }
        let connection = Connection {
            origin,
            stream: connect(target, self.tls.as_ref(), deadline, cancel)?,
        };
        self.attempt(
            connection,
            &bytes,
            &mut ResponseParser::new(),
            deadline,
            cancel,
        )
    }

    /// Writes the request on `connection` and reads the answer; keeps the connection if it
    /// can carry another.
    fn attempt(
        &mut self,
        mut connection: Connection,
        bytes: &[u8],
        parser: &mut ResponseParser,
        deadline: Instant,
        cancel: &Cancel,
    ) -> Result<Response, TransportError> {
        cancel.watch(connection.stream.tcp())?;
        let tcp = connection.stream.tcp();
        tcp.set_write_timeout(Some(remaining(deadline)?))
            .map_err(|e| io_error(&e, cancel))?;
        connection
            .stream
            .write_all(bytes)
            .and_then(|()| connection.stream.flush())
            .map_err(|e| io_error(&e, cancel))?;
        let response = read_response(&mut connection.stream, parser, deadline, cancel)?;
        if response.keep_alive {
            self.connection = Some(connection);
        }
        Ok(Response::new(response.status, response.body))
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

/// Reads one response through the sans-IO parser, within `deadline`.
fn read_response(
    stream: &mut Stream,
    parser: &mut ResponseParser,
    deadline: Instant,
    cancel: &Cancel,
) -> Result<ParsedResponse, TransportError> {
    let mut chunk = [0u8; READ_CHUNK];
    loop {
        let left = remaining(deadline)?;
        stream
            .tcp()
            .set_read_timeout(Some(left))
            .map_err(|e| io_error(&e, cancel))?;
        match stream.read(&mut chunk) {
            Ok(0) => return parser.end(),
            Ok(n) => {
                if let Some(response) = parser.push(&chunk[..n])? {
                    return Ok(response);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A TLS peer that closes without close_notify: the end, for a body that runs to
            // the end of the connection.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return parser.end(),
            Err(e) => return Err(io_error(&e, cancel)),
        }
    }
}

impl EventTransport for Http1LongPollTransport {
    fn poll(&mut self, request: Request, cancel: &Cancel) -> PollOutcome {
        let result = Target::parse(&request.url, self.allow_plain_http)
            .and_then(|target| self.exchange(&request, &target, cancel));
        if result.is_err() {
            self.connection = None;
        }
        chat_net::poll_outcome(result)
    }

    fn reset(&mut self) {
        self.connection = None;
    }

    fn name(&self) -> &'static str {
        "long-poll"
    }
}
