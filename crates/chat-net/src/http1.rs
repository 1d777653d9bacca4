//! The HTTP/1.1 long poll's framing, without I/O: where a request goes ([`Target`]), the
//! bytes of the request ([`request_bytes`]), and a [`ResponseParser`] that is fed what the
//! connection reads and says when a whole response has arrived.
//!
//! Bodies may be sized by `Content-Length`, chunked, or run to the end of the connection;
//! interim `1xx` answers are skipped; a response longer than [`MAX_RESPONSE_LEN`] (or a head
//! past 16 KiB, a chunk-size line past 1 KiB) is refused with [`TransportError::Protocol`].
//! [`may_resend`] says when a request that got no answer is sent again on a new connection.
//!
//! ```
//! use chat_net::http1::ResponseParser;
//!
//! let mut parser = ResponseParser::new();
//! // A response arriving in two reads.
//! assert!(parser.push(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n[]").unwrap().is_none());
//! let response = parser.push(b"\r\n0\r\n\r\n").unwrap().expect("complete");
//! assert_eq!((response.status, response.body.as_slice()), (200, &b"[]"[..]));
//! assert!(response.keep_alive);
//! ```

use chat_core::validate::{MAX_RESPONSE_LEN, is_loopback_host};
use chat_core::{Method, Request, TransportError};

/// Longest accepted status line and headers.
pub const MAX_HEAD_LEN: usize = 16 * 1024;
/// Most headers accepted in a response.
const MAX_HEADERS: usize = 48;
/// Longest accepted chunk-size or trailer line of a chunked body.
const MAX_LINE_LEN: usize = 1024;
/// How much an adapter should read at a time (a batch of a few chat events fits).
pub const READ_CHUNK: usize = 4096;

/// Where a request goes: scheme, host, port, the `Host` header and the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https://` or `wss://`.
    pub tls: bool,
    /// The host (a domain or an IP address).
    pub host: url::Host<String>,
    /// The port, explicit or the scheme's default.
    pub port: u16,
    /// The `Host` header: the host, and the port if the URL names one.
    pub authority: String,
    /// Path and query.
    pub path: String,
}

/// Scheme and authority: a connection serves only its own origin.
pub type Origin = (bool, String);

impl Target {
    /// Parses an `http(s)://` or `ws(s)://` URL. Plain `http://` / `ws://` is refused with
    /// [`TransportError::Connect`] to a host that is not loopback unless `allow_plain_http`.
    pub fn parse(url: &str, allow_plain_http: bool) -> Result<Self, TransportError> {
        let url = url::Url::parse(url).map_err(|_| TransportError::Connect)?;
        let tls = match url.scheme() {
            "https" | "wss" => true,
            "http" | "ws" => false,
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

    /// The origin, to tell whether a kept connection may carry a request.
    pub fn origin(&self) -> Origin {
        (self.tls, self.authority.clone())
    }

    /// The host as a socket address or a TLS server name wants it (IPv6 without brackets).
    pub fn bare_host(&self) -> String {
        match &self.host {
            url::Host::Domain(d) => d.clone(),
            url::Host::Ipv4(a) => a.to_string(),
            url::Host::Ipv6(a) => a.to_string(),
        }
    }
}

/// The request line, headers and body, ready to write. A header value with a line break is
/// refused ([`TransportError::Protocol`]): it would split into headers of someone else's
/// choosing.
pub fn request_bytes(request: &Request, target: &Target) -> Result<Vec<u8>, TransportError> {
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
pub(crate) fn push_header(
    out: &mut Vec<u8>,
    name: &str,
    value: &str,
) -> Result<(), TransportError> {
    if value.contains(['\r', '\n']) {
        return Err(TransportError::Protocol);
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Whether a request that got no answer may be sent again at once, on a new connection, as
/// if nothing had happened: it went out on a connection `reused` from an earlier exchange,
/// not one byte of the answer arrived (`answer_started` false, see
/// [`ResponseParser::has_started`]), and the connection ended (`error` is
/// [`TransportError::Disconnected`]: closed or reset, while writing or before the answer).
///
/// A server may close a kept-alive connection whenever it is idle, and the close can cross
/// the next request on the wire (RFC 9112 §9.3.1): the request then reached nobody, and the
/// failure says nothing about the server. The long poll's requests are `GET`s (polls and
/// probes), so sending one again is safe. Once: the new connection is not reused, so a
/// second failure is reported. A timeout, a protocol error or an answer cut short is never
/// sent again.
///
/// ```
/// use chat_core::TransportError::{Disconnected, Timeout};
/// use chat_net::http1::may_resend;
///
/// assert!(may_resend(true, false, Disconnected));
/// assert!(!may_resend(false, false, Disconnected), "a new connection's failure is reported");
/// assert!(!may_resend(true, true, Disconnected), "the answer had started");
/// assert!(!may_resend(true, false, Timeout), "the server may be slow, not gone");
/// ```
pub fn may_resend(reused: bool, answer_started: bool, error: TransportError) -> bool {
    reused && !answer_started && error == TransportError::Disconnected
}

/// A whole response, as [`ResponseParser`] gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// Whether the connection may carry another request (HTTP/1.1 keep-alive, the body
    /// framed, nothing read past it).
    pub keep_alive: bool,
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

/// Where the parser is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length(usize),
    ChunkSize,
    ChunkData(usize),
    ChunkEnd,
    Trailers,
    UntilClose,
    Done,
}

/// Reads one HTTP/1.1 response out of the bytes a connection delivers, without doing any
/// I/O: [`push`](Self::push) what was read (or read into [`input`](Self::input) and call
/// [`advance`](Self::advance)) until it gives the response; call [`end`](Self::end) when the
/// connection ends first. It allocates nothing until bytes arrive, so a held poll owns only
/// its socket.
#[derive(Debug)]
pub struct ResponseParser {
    /// Read and not yet consumed.
    input: Vec<u8>,
    state: State,
    status: u16,
    keep_alive: bool,
    body: Vec<u8>,
    /// A byte of the answer has arrived.
    started: bool,
}

impl Default for ResponseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseParser {
    /// A parser waiting for a status line.
    pub fn new() -> Self {
        Self {
            input: Vec::new(),
            state: State::Head,
            status: 0,
            keep_alive: false,
            body: Vec::new(),
            started: false,
        }
    }

    /// Whether any byte of the answer has arrived (been [`push`](Self::push)ed, or read into
    /// [`input`](Self::input) and [`advance`](Self::advance)d): until then, a connection that
    /// ends may have crossed the request ([`may_resend`]).
    pub fn has_started(&self) -> bool {
        self.started
    }

    /// Feeds bytes read from the connection; the response once it is whole.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Option<ParsedResponse>, TransportError> {
        self.input.extend_from_slice(bytes);
        self.advance()
    }

    /// The input buffer, to read into directly (append only); then call
    /// [`advance`](Self::advance).
    pub fn input(&mut self) -> &mut Vec<u8> {
        &mut self.input
    }

    /// How much the body still wants when that is known (a `Content-Length` body or a chunk):
    /// an adapter may read that much at once.
    pub fn wants(&self) -> Option<usize> {
        match self.state {
            State::Length(n) => Some(n - self.body.len()),
            State::ChunkData(left) => Some(left),
            _ => None,
        }
    }

    /// Parses what [`input`](Self::input) holds; the response once it is whole.
    pub fn advance(&mut self) -> Result<Option<ParsedResponse>, TransportError> {
        self.started |= !self.input.is_empty();
        let mut pos = 0;
        let result = self.run(&mut pos);
        self.input.drain(..pos);
        let done = result?;
        Ok(done.then(|| self.finish()))
    }

    /// The connection ended: the response if its body runs to the end of the connection,
    /// else [`TransportError::Disconnected`] (it was cut short).
    pub fn end(&mut self) -> Result<ParsedResponse, TransportError> {
        if self.state == State::UntilClose {
            self.input.clear();
            self.state = State::Done;
            Ok(self.finish())
        } else {
            Err(TransportError::Disconnected)
        }
    }

    fn finish(&mut self) -> ParsedResponse {
        ParsedResponse {
            status: self.status,
            body: std::mem::take(&mut self.body),
            // Bytes past the response were not asked for: the connection's state is unknown.
            keep_alive: self.keep_alive && self.input.is_empty(),
        }
    }

    /// Consumes from `input[pos..]`; `true` once the response is whole.
    fn run(&mut self, pos: &mut usize) -> Result<bool, TransportError> {
        loop {
            let unread = &self.input[*pos..];
            match self.state {
                State::Done => return Ok(true),
                State::Head => {
                    let Some(head) = parse_head(unread)? else {
                        if unread.len() >= MAX_HEAD_LEN {
                            return Err(TransportError::Protocol);
                        }
                        return Ok(false);
                    };
                    *pos += head.len;
                    // An interim answer (100 Continue...) is followed by the real one.
                    if (100..200).contains(&head.status) {
                        continue;
                    }
                    self.status = head.status;
                    self.keep_alive = head.keep_alive;
                    self.state = match head.framing {
                        Framing::Empty | Framing::Length(0) => State::Done,
                        Framing::Length(n) => {
                            self.body.reserve_exact(n);
                            State::Length(n)
                        }
                        Framing::Chunked => State::ChunkSize,
                        Framing::UntilClose => State::UntilClose,
                    };
                }
                State::Length(n) => {
                    let take = (n - self.body.len()).min(unread.len());
                    self.body.extend_from_slice(&unread[..take]);
                    *pos += take;
                    if self.body.len() < n {
                        return Ok(false);
                    }
                    self.state = State::Done;
                }
                State::ChunkSize => {
                    let Some(line) = line(unread)? else {
                        return Ok(false);
                    };
                    let size = std::str::from_utf8(line)
                        .ok()
                        .and_then(|l| usize::from_str_radix(l.split(';').next()?.trim(), 16).ok())
                        .ok_or(TransportError::Protocol)?;
                    *pos += line.len() + 2;
                    if size > MAX_RESPONSE_LEN - self.body.len() {
                        return Err(TransportError::Protocol);
                    }
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkData(left) => {
                    let take = left.min(unread.len());
                    self.body.extend_from_slice(&unread[..take]);
                    *pos += take;
                    if take < left {
                        self.state = State::ChunkData(left - take);
                        return Ok(false);
                    }
                    self.state = State::ChunkEnd;
                }
                State::ChunkEnd => {
                    let Some(line) = line(unread)? else {
                        return Ok(false);
                    };
                    if !line.is_empty() {
                        return Err(TransportError::Protocol);
                    }
                    *pos += 2;
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    // Trailers, up to the empty line.
                    let Some(line) = line(unread)? else {
                        return Ok(false);
                    };
                    *pos += line.len() + 2;
                    if line.is_empty() {
                        self.state = State::Done;
                    }
                }
                State::UntilClose => {
                    if unread.len() > MAX_RESPONSE_LEN - self.body.len() {
                        return Err(TransportError::Protocol);
                    }
                    self.body.extend_from_slice(unread);
                    *pos += unread.len();
                    return Ok(false);
                }
            }
        }
    }
}

/// The first line of `buf` without its CRLF, if it is whole.
fn line(buf: &[u8]) -> Result<Option<&[u8]>, TransportError> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(at) => Ok(Some(&buf[..at])),
        None if buf.len() > MAX_LINE_LEN => Err(TransportError::Protocol),
        None => Ok(None),
    }
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

#[cfg(test)]
mod tests;
