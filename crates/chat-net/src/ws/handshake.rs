//! The WebSocket opening handshake (RFC 6455, section 4), without I/O: the client's upgrade
//! request and the reading of its answer ([`ClientHandshake`]), and the server's check of an
//! upgrade request ([`server_accept`]).
//!
//! ```
//! use chat_net::ws::handshake::{ClientHandshake, Upgrade, accept_key};
//!
//! // The key of RFC 6455's example, and the answer it expects.
//! let mut handshake = ClientHandshake::with_key(*b"the sample nonce");
//! assert_eq!(handshake.key(), "dGhlIHNhbXBsZSBub25jZQ==");
//! assert_eq!(accept_key(handshake.key()), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//! let answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x02[]";
//! match handshake.push(answer)? {
//!     // The bytes after the head are the first frames.
//!     Some(Upgrade::Accepted { rest }) => assert_eq!(rest, b"\x81\x02[]"),
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), chat_core::TransportError>(())
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chat_core::{Request, TransportError};
use ring::rand::SecureRandom as _;

use crate::Response;
use crate::http1::{MAX_HEAD_LEN, ResponseParser, Target, push_header};

/// The GUID RFC 6455 appends to the key before hashing it.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Most headers accepted in the server's answer.
const MAX_HEADERS: usize = 48;

/// `N` bytes from the operating system's generator, if it answers.
pub(crate) fn random<const N: usize>() -> Option<[u8; N]> {
    let mut bytes = [0u8; N];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(bytes)
}

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`: the base64 of the SHA-1 of the
/// key and the RFC's GUID.
pub fn accept_key(key: &str) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(key.as_bytes());
    context.update(GUID.as_bytes());
    STANDARD.encode(context.finish())
}

/// What the server answered the upgrade with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upgrade {
    /// `101` with the right `Sec-WebSocket-Accept`: the connection now carries frames.
    Accepted {
        /// What was read past the head: the first frames, to feed to the
        /// [`Decoder`](super::frame::Decoder).
        rest: Vec<u8>,
    },
    /// Any other status: the plain HTTP answer and its body (`401`, `404` "Session not
    /// found", a `200` from a server that only long-polls...).
    Refused(Response),
}

/// Where the client's handshake is.
enum State {
    /// Reading the head of the answer.
    Head(Vec<u8>),
    /// Not upgraded: reading the plain answer to its end.
    Refused(ResponseParser),
    /// Answered.
    Done,
}

/// The client's side of the opening handshake: the request to write
/// ([`request_bytes`](Self::request_bytes)) with a random key, and the answer read through
/// [`push`](Self::push) (and [`end`](Self::end) if the connection closes first).
pub struct ClientHandshake {
    key: String,
    state: State,
}

impl fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientHandshake").finish_non_exhaustive()
    }
}

impl ClientHandshake {
    /// A handshake with a random 16-byte key; [`TransportError::Connect`] if the operating
    /// system gives no random bytes.
    pub fn new() -> Result<Self, TransportError> {
        random::<16>()
            .map(Self::with_key)
            .ok_or(TransportError::Connect)
    }

    /// A handshake with this key (tests; a client sends a random one).
    pub fn with_key(key: [u8; 16]) -> Self {
        Self {
            key: STANDARD.encode(key),
            state: State::Head(Vec::new()),
        }
    }

    /// The `Sec-WebSocket-Key` value.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The upgrade request: `GET` of the target's path with the upgrade headers, and the
    /// request's own headers (its `Authorization` and `appkey`; no `Content-Type`). A header
    /// value with a line break is refused ([`TransportError::Protocol`]).
    pub fn request_bytes(
        &self,
        request: &Request,
        target: &Target,
    ) -> Result<Vec<u8>, TransportError> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(target.path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        push_header(&mut out, "Host", &target.authority)?;
        push_header(&mut out, "Upgrade", "websocket")?;
        push_header(&mut out, "Connection", "Upgrade")?;
        push_header(&mut out, "Sec-WebSocket-Key", &self.key)?;
        push_header(&mut out, "Sec-WebSocket-Version", "13")?;
        for (name, value) in request.headers() {
            if name != "Content-Type" {
                push_header(&mut out, name, value)?;
            }
        }
        out.extend_from_slice(b"\r\n");
        Ok(out)
    }

    /// Feeds bytes read from the connection; the outcome once the answer is whole. A `101`
    /// without the upgrade headers or the right `Sec-WebSocket-Accept`, or with an extension
    /// or subprotocol that was not asked for, is [`TransportError::Protocol`]; so is a head
    /// past 16 KiB or one that is not HTTP.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Option<Upgrade>, TransportError> {
        match &mut self.state {
            State::Head(head) => {
                head.extend_from_slice(bytes);
                let head = std::mem::take(head);
                self.state = State::Done;
                self.head(head)
            }
            State::Refused(parser) => {
                let parsed = parser.push(bytes)?;
                Ok(parsed.map(|r| {
                    self.state = State::Done;
                    Upgrade::Refused(Response::new(r.status, r.body))
                }))
            }
            State::Done => Err(TransportError::Protocol),
        }
    }

    /// The connection ended before the answer did: a refusal whose body runs to the end of
    /// the connection, else [`TransportError::Disconnected`].
    pub fn end(&mut self) -> Result<Upgrade, TransportError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Refused(mut parser) => {
                let r = parser.end()?;
                Ok(Upgrade::Refused(Response::new(r.status, r.body)))
            }
            _ => Err(TransportError::Disconnected),
        }
    }

    fn head(&mut self, buf: Vec<u8>) -> Result<Option<Upgrade>, TransportError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let len = match response.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_LEN => {
                self.state = State::Head(buf);
                return Ok(None);
            }
            Ok(httparse::Status::Partial) | Err(_) => return Err(TransportError::Protocol),
        };
        if response.code != Some(101) {
            // The plain answer, read by the long poll's parser from its first byte.
            let mut parser = ResponseParser::new();
            let parsed = parser.push(&buf)?;
            return Ok(match parsed {
                Some(r) => Some(Upgrade::Refused(Response::new(r.status, r.body))),
                None => {
                    self.state = State::Refused(parser);
                    None
                }
            });
        }
        let expected = accept_key(&self.key);
        let (mut upgrade, mut connection, mut accepted) = (false, false, false);
        for h in response.headers.iter() {
            let value = std::str::from_utf8(h.value).map_err(|_| TransportError::Protocol)?;
            if h.name.eq_ignore_ascii_case("upgrade") {
                upgrade |= has_token(value, "websocket");
            } else if h.name.eq_ignore_ascii_case("connection") {
                connection |= has_token(value, "upgrade");
            } else if h.name.eq_ignore_ascii_case("sec-websocket-accept") {
                accepted = value.trim() == expected;
            } else if h.name.eq_ignore_ascii_case("sec-websocket-extensions")
                || h.name.eq_ignore_ascii_case("sec-websocket-protocol")
            {
                // Neither was asked for: frames would not mean what they seem.
                tracing::debug!("WebSocket upgrade answered with an extension or subprotocol");
                return Err(TransportError::Protocol);
            }
        }
        if !(upgrade && connection && accepted) {
            tracing::debug!(
                upgrade,
                connection,
                accepted,
                "WebSocket upgrade answered 101 without its headers"
            );
            return Err(TransportError::Protocol);
        }
        Ok(Some(Upgrade::Accepted {
            rest: buf[len..].to_vec(),
        }))
    }
}

/// Whether a comma-separated header value holds this token (case-insensitive).
fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Why a server refuses an upgrade request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpgradeError {
    /// No `Upgrade: websocket`, or no `Connection: upgrade`.
    #[error("not a WebSocket upgrade (Upgrade: websocket and Connection: upgrade)")]
    NotUpgrade,
    /// `Sec-WebSocket-Version` is missing or not 13.
    #[error("unsupported WebSocket version (Sec-WebSocket-Version: 13)")]
    Version,
    /// `Sec-WebSocket-Key` is missing, repeated, or not the base64 of 16 bytes.
    #[error("missing or malformed Sec-WebSocket-Key")]
    Key,
}

impl UpgradeError {
    /// The HTTP status to refuse with: 426 Upgrade Required for the version (answer with
    /// `Sec-WebSocket-Version: 13`), 400 otherwise.
    pub fn status(self) -> u16 {
        match self {
            Self::Version => 426,
            _ => 400,
        }
    }
}

/// Checks an upgrade request's headers (the method, `GET`, is the caller's to check) and
/// gives the `Sec-WebSocket-Accept` value of the `101` answer.
pub fn server_accept<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<String, UpgradeError> {
    let (mut upgrade, mut connection, mut version) = (false, false, false);
    let mut key: Option<&str> = None;
    let mut keys = 0;
    for (name, value) in headers {
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade |= has_token(value, "websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection |= has_token(value, "upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            version = value.trim() == "13";
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            keys += 1;
            key = Some(value.trim());
        }
    }
    if !(upgrade && connection) {
        return Err(UpgradeError::NotUpgrade);
    }
    if !version {
        return Err(UpgradeError::Version);
    }
    match key {
        Some(key) if keys == 1 && STANDARD.decode(key).is_ok_and(|k| k.len() == 16) => {
            Ok(accept_key(key))
        }
        _ => Err(UpgradeError::Key),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::{Duration, Instant, SystemTime};

    use chat_core::{AppKey, Config, InitParams, Output, RequestKind, Session, Token};

    use super::*;

    /// A poll request of chat-core's, aimed at `base`.
    pub(crate) fn poll_request(base: &str) -> Request {
        // Its payload is {"exp":4000000000}.
        let token = Token::parse("jwt.e30.eyJleHAiOjQwMDAwMDAwMDB9.signature").unwrap();
        let params = InitParams::new(
            base,
            "123e4567-e89b-12d3-a456-426614174000",
            token,
            AppKey::new("the-appkey"),
        )
        .unwrap();
        let config = Config {
            request_timeout: Duration::from_secs(5),
            ..Config::default()
        };
        let mut session = Session::new(params, config).unwrap();
        let now = Instant::now();
        session.init(now, SystemTime::now()).unwrap();
        let mut created = false;
        loop {
            match session.poll_output() {
                Output::Transmit(r) if matches!(r.kind, RequestKind::Poll { .. }) => return r,
                Output::Transmit(r) if !created => {
                    let body =
                        r#"{"sessionId":"5e55e55e-0000-4000-8000-000000000001","engagements":[]}"#;
                    session.handle_response(now, r.id, 201, body.as_bytes());
                    session.create_engagement(now, Default::default()).unwrap();
                    created = true;
                }
                Output::Transmit(r) => {
                    let body = r#"{"engagementId":"e0000000-0000-4000-8000-000000000001","dialogs":[{"dialogId":"d0000000-0000-4000-8000-000000000001","dialogStatus":"PENDING","participants":[]}]}"#;
                    session.handle_response(now, r.id, 201, body.as_bytes());
                }
                Output::Wait(_) => panic!("no poll"),
                _ => {}
            }
        }
    }

    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn sample() -> ClientHandshake {
        ClientHandshake::with_key(*b"the sample nonce")
    }

    fn switching(extra: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn the_accept_key_of_rfc_6455() {
        assert_eq!(sample().key(), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), ACCEPT);
    }

    #[test]
    fn random_keys() {
        let a = ClientHandshake::new().unwrap();
        let b = ClientHandshake::new().unwrap();
        assert_ne!(a.key(), b.key());
        assert_eq!(STANDARD.decode(a.key()).unwrap().len(), 16);
        assert!(!format!("{a:?}").contains(a.key()));
    }

    #[test]
    fn the_upgrade_request() {
        let request = poll_request("http://127.0.0.1:8080");
        let url = crate::ws::websocket_url(&request.url);
        let target = Target::parse(&url, false).unwrap();
        let handshake = sample();
        let bytes = handshake.request_bytes(&request, &target).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.starts_with(&format!("GET {} HTTP/1.1\r\n", target.path)),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\n"));
        for header in [
            "Host: 127.0.0.1:8080",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
            "Authorization: Bearer jwt.e30.eyJleHAiOjQwMDAwMDAwMDB9.signature",
            "appkey: the-appkey",
        ] {
            assert!(
                text.contains(&format!("\r\n{header}\r\n")),
                "{header}: {text}"
            );
        }
        assert!(!text.contains("Content-Type"));
        // The server's view of it.
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut parsed = httparse::Request::new(&mut headers);
        assert!(parsed.parse(text.as_bytes()).unwrap().is_complete());
        assert_eq!(parsed.method, Some("GET"));
        let accept = server_accept(parsed.headers.iter().map(|h| (h.name, h.value))).unwrap();
        assert_eq!(accept, ACCEPT);
    }

    #[test]
    fn an_upgrade_in_any_pieces() {
        let mut answer = switching(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n"));
        let head = answer.len();
        answer.extend_from_slice(b"\x81\x02[]");
        for split in 1..answer.len() {
            let mut h = sample();
            let mut outcome = None;
            for piece in answer.chunks(split) {
                if outcome.is_none() {
                    outcome = h.push(piece).unwrap();
                } else if let Some(Upgrade::Accepted { rest }) = &mut outcome {
                    rest.extend_from_slice(piece);
                }
            }
            assert_eq!(
                outcome,
                Some(Upgrade::Accepted {
                    rest: answer[head..].to_vec()
                }),
                "split {split}"
            );
        }
    }

    #[test]
    fn a_wrong_or_missing_accept_is_refused() {
        for extra in [
            String::new(),
            "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n".to_owned(),
            format!(
                "Sec-WebSocket-Accept: {ACCEPT}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"
            ),
            format!("Sec-WebSocket-Accept: {ACCEPT}\r\nSec-WebSocket-Protocol: chat\r\n"),
        ] {
            assert_eq!(
                sample().push(&switching(&extra)),
                Err(TransportError::Protocol),
                "{extra}"
            );
        }
        let no_upgrade = format!(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
        );
        assert_eq!(
            sample().push(no_upgrade.as_bytes()),
            Err(TransportError::Protocol)
        );
        assert_eq!(
            sample().push(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(TransportError::Protocol)
        );
        let mut endless = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
        endless.resize(MAX_HEAD_LEN + 1, b'a');
        assert_eq!(sample().push(&endless), Err(TransportError::Protocol));
    }

    #[test]
    fn any_other_status_is_the_plain_answer() {
        let body = r#"{"detail":"Session not found"}"#;
        let answer = format!(
            "HTTP/1.1 404 Not Found\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut h = sample();
        let (a, b) = answer.as_bytes().split_at(40);
        assert_eq!(h.push(a).unwrap(), None);
        assert_eq!(
            h.push(b).unwrap(),
            Some(Upgrade::Refused(Response::new(
                404,
                body.as_bytes().to_vec()
            )))
        );
        // A body that runs to the end of the connection.
        let mut h = sample();
        assert_eq!(h.push(b"HTTP/1.1 200 OK\r\n\r\n[]").unwrap(), None);
        assert_eq!(
            h.end(),
            Ok(Upgrade::Refused(Response::new(200, b"[]".to_vec())))
        );
        // Cut short.
        let mut h = sample();
        assert_eq!(h.push(b"HTTP/1.1 101 Swi").unwrap(), None);
        assert_eq!(h.end(), Err(TransportError::Disconnected));
    }

    #[test]
    fn the_server_checks_the_upgrade() {
        let ok: [(&str, &[u8]); 4] = [
            ("Upgrade", b"websocket"),
            ("connection", b"keep-alive, Upgrade"),
            ("Sec-WebSocket-Version", b"13"),
            ("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        assert_eq!(server_accept(ok).as_deref(), Ok(ACCEPT));
        let without = |name: &'static str| ok.iter().copied().filter(move |(n, _)| *n != name);
        assert_eq!(
            server_accept(without("Upgrade")),
            Err(UpgradeError::NotUpgrade)
        );
        assert_eq!(
            server_accept(without("connection")),
            Err(UpgradeError::NotUpgrade)
        );
        assert_eq!(
            server_accept(without("Sec-WebSocket-Version")),
            Err(UpgradeError::Version)
        );
        assert_eq!(UpgradeError::Version.status(), 426);
        assert_eq!(
            server_accept(without("Sec-WebSocket-Key")),
            Err(UpgradeError::Key)
        );
        assert_eq!(UpgradeError::Key.status(), 400);
        let short = without("Sec-WebSocket-Key").chain([("Sec-WebSocket-Key", &b"AAAA"[..])]);
        assert_eq!(server_accept(short), Err(UpgradeError::Key));
        let twice = ok.iter().copied().chain([ok[3]]);
        assert_eq!(server_accept(twice), Err(UpgradeError::Key));
        let old = without("Sec-WebSocket-Version").chain([("Sec-WebSocket-Version", &b"8"[..])]);
        assert_eq!(server_accept(old), Err(UpgradeError::Version));
    }
}
