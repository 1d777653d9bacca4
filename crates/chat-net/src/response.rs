//! [`Response`], what every transport answers with, and the response size cap every transport
//! enforces ([`MAX_RESPONSE_LEN`]).

use chat_core::TransportError;
use chat_core::validate::MAX_RESPONSE_LEN;

/// An HTTP response: its status and whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response of this status and body.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            body: body.into(),
        }
    }
}

/// A long poll's HTTP exchange as the event stream's outcome.
#[must_use]
pub fn poll_outcome(result: Result<Response, TransportError>) -> chat_core::PollOutcome {
    match result {
        Ok(r) => chat_core::PollOutcome::from_http(r.status, r.body),
        Err(e) => chat_core::PollOutcome::Failed(e),
    }
}

/// Checks a body's declared length (`Content-Length`) against the cap before reading it, and
/// gives the capacity to reserve: [`TransportError::Protocol`] past [`MAX_RESPONSE_LEN`].
pub fn declared_len(declared: Option<u64>) -> Result<usize, TransportError> {
    let declared = declared.unwrap_or(0);
    if declared > MAX_RESPONSE_LEN as u64 {
        return Err(TransportError::Protocol);
    }
    Ok(usize::try_from(declared).unwrap_or(0))
}

/// Appends a piece of a body as it arrives, refusing it with [`TransportError::Protocol`] once
/// the body would grow past [`MAX_RESPONSE_LEN`].
pub fn append_capped(body: &mut Vec<u8>, piece: &[u8]) -> Result<(), TransportError> {
    if piece.len() > MAX_RESPONSE_LEN.saturating_sub(body.len()) {
        return Err(TransportError::Protocol);
    }
    body.extend_from_slice(piece);
    Ok(())
}

/// Whether an HTTP client given by the application followed a redirect: the answer came from
/// `answered`, not from `sent`. Such an answer is refused (our own clients follow none: a 3xx
/// reaches the core as the unexpected status it is), since it is another server's.
pub fn followed_redirect(sent: &str, answered: &str) -> bool {
    let (Ok(sent), Ok(answered)) = (url::Url::parse(sent), url::Url::parse(answered)) else {
        return sent != answered;
    };
    let moved = sent.origin() != answered.origin() || sent.path() != answered.path();
    if moved {
        tracing::warn!(
            "the HTTP client followed a redirect; the answer is refused (build it with redirect::Policy::none())"
        );
    }
    moved
}

/// Whether this error, or any error it was caused by, is hyper refusing the server's answer
/// as broken HTTP: a head past its size limit (such as 1 MiB of headers), too many headers,
/// a malformed status line, header or body framing. The cue for
/// [`TransportError::Protocol`] rather than [`TransportError::Disconnected`] in the errors of
/// an HTTP client built on hyper (reqwest); it walks the chain of
/// [`source`](std::error::Error::source)s. An answer merely cut short is not one.
pub fn is_malformed_response(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    // Bounded: a chain of causes is short, and a cyclic one must not hang.
    for _ in 0..32 {
        let Some(e) = next else { return false };
        if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
            return hyper.is_parse();
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_followed_redirect_is_told_apart_from_the_request_itself() {
        let url = "https://axp.example/sdk/x?lastEventId=1";
        assert!(!followed_redirect(url, url));
        assert!(followed_redirect(
            url,
            "https://evil.example/sdk/x?lastEventId=1"
        ));
        assert!(followed_redirect(url, "https://axp.example/elsewhere"));
        assert!(!followed_redirect(
            "https://AXP.example:443/sdk/x",
            "https://axp.example/sdk/x"
        ));
    }

    #[test]
    fn bodies_stop_at_the_cap() {
        assert_eq!(declared_len(None), Ok(0));
        assert_eq!(declared_len(Some(10)), Ok(10));
        assert_eq!(
            declared_len(Some(MAX_RESPONSE_LEN as u64 + 1)),
            Err(TransportError::Protocol)
        );
        let mut body = vec![0; MAX_RESPONSE_LEN - 1];
        assert_eq!(append_capped(&mut body, b"x"), Ok(()));
        assert_eq!(
            append_capped(&mut body, b"x"),
            Err(TransportError::Protocol)
        );
        assert_eq!(body.len(), MAX_RESPONSE_LEN);
    }
}

/// reqwest's method for a chat-core request's.
pub fn reqwest_method(method: chat_core::Method) -> reqwest::Method {
    match method {
        chat_core::Method::Get => reqwest::Method::GET,
        chat_core::Method::Post => reqwest::Method::POST,
        chat_core::Method::Delete => reqwest::Method::DELETE,
    }
}

/// What a reqwest failure (async or blocking client) is to chat-core.
pub fn reqwest_error(e: &reqwest::Error) -> TransportError {
    // reqwest's errors may quote the URL, never headers; only the kind is kept anyway.
    tracing::debug!(error = %e, "request failed");
    if crate::is_certificate_error(e) {
        // Before "connect": the TLS handshake is part of reqwest's connecting.
        TransportError::Certificate
    } else if e.is_timeout() {
        TransportError::Timeout
    } else if crate::is_malformed_response(e) {
        // An answer that is not HTTP, or a head past hyper's limit: not a lost connection.
        TransportError::Protocol
    } else if e.is_connect() {
        TransportError::Connect
    } else if e.is_decode() {
        TransportError::Protocol
    } else {
        TransportError::Disconnected
    }
}

/// HTTP long polling over an adapter's HTTP transport `H`, each poll one
/// `GET …/events?lastEventId=…`; each adapter implements its event transport trait for it.
#[derive(Clone)]
pub struct LongPoll<H> {
    /// The HTTP transport the polls go through.
    pub http: H,
}

impl<H> LongPoll<H> {
    /// Long polling over this HTTP transport.
    pub fn new(http: H) -> Self {
        Self { http }
    }
}

impl<H> std::fmt::Debug for LongPoll<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LongPollTransport")
    }
}
