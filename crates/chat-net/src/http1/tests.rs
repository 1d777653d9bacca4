//! The parser fed whole, byte by byte and cut short; the request bytes; targets.

use std::time::{Duration, Instant, SystemTime};

use chat_core::{AppKey, Config, InitParams, Output, Session, Token};

use super::*;

/// Feeds `bytes` in pieces of `split` bytes; the response once whole, or the error.
fn feed(bytes: &[u8], split: usize) -> Result<Option<ParsedResponse>, TransportError> {
    let mut parser = ResponseParser::new();
    for piece in bytes.chunks(split.max(1)) {
        if let Some(r) = parser.push(piece)? {
            return Ok(Some(r));
        }
    }
    Ok(None)
}

fn every_split(bytes: &[u8]) -> ParsedResponse {
    let whole = feed(bytes, usize::MAX).unwrap().expect("whole");
    for split in [1, 2, 3, 7, 64] {
        assert_eq!(
            feed(bytes, split).unwrap().as_ref(),
            Some(&whole),
            "split {split}"
        );
    }
    whole
}

#[test]
fn a_content_length_body_in_any_pieces() {
    let r = every_split(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello");
    assert_eq!(
        (r.status, r.body.as_slice(), r.keep_alive),
        (200, &b"hello"[..], true)
    );
}

#[test]
fn a_chunked_body_with_extensions_and_trailers() {
    let r = every_split(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\n[1,\r\n2\r\n2]\r\n0\r\nX-Trailer: t\r\n\r\n",
    );
    assert_eq!((r.body.as_slice(), r.keep_alive), (&b"[1,2]"[..], true));
}

#[test]
fn interim_and_empty_answers() {
    let r = every_split(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n");
    assert_eq!((r.status, r.body.len(), r.keep_alive), (204, 0, true));
}

#[test]
fn a_body_to_the_end_of_the_connection() {
    let mut parser = ResponseParser::new();
    assert_eq!(parser.push(b"HTTP/1.1 200 OK\r\n\r\n[]"), Ok(None));
    let r = parser.end().unwrap();
    assert_eq!((r.body.as_slice(), r.keep_alive), (&b"[]"[..], false));
}

#[test]
fn a_response_cut_short_is_a_disconnection() {
    let mut parser = ResponseParser::new();
    assert_eq!(
        parser.push(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n[]"),
        Ok(None)
    );
    assert_eq!(parser.wants(), Some(7));
    assert_eq!(parser.end(), Err(TransportError::Disconnected));
    assert_eq!(
        ResponseParser::new().end(),
        Err(TransportError::Disconnected)
    );
}

#[test]
fn the_connection_is_kept_only_when_it_can_be() {
    let r = every_split(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
    assert!(!r.keep_alive);
    let r = every_split(b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n");
    assert!(!r.keep_alive);
    let r = every_split(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\ncontent-length: 0\r\n\r\n");
    assert!(r.keep_alive);
    // Bytes nobody asked for after the response.
    let r = feed(
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\nHTTP",
        usize::MAX,
    )
    .unwrap()
    .unwrap();
    assert!(!r.keep_alive);
}

#[test]
fn past_the_cap_and_garbage_are_protocol_errors() {
    let cap = MAX_RESPONSE_LEN;
    let declared = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", cap + 1);
    assert_eq!(
        feed(declared.as_bytes(), usize::MAX),
        Err(TransportError::Protocol)
    );
    let chunk = format!(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n",
        cap + 1
    );
    assert_eq!(
        feed(chunk.as_bytes(), usize::MAX),
        Err(TransportError::Protocol)
    );
    let mut parser = ResponseParser::new();
    parser.push(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
    let piece = vec![b' '; 1024 * 1024];
    let mut result = Ok(None);
    for _ in 0..=cap / piece.len() {
        result = parser.push(&piece);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(TransportError::Protocol));
    assert_eq!(
        feed(b"SMTP ready\r\n\r\n", usize::MAX),
        Err(TransportError::Protocol)
    );
    let two_lengths = b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n";
    assert_eq!(feed(two_lengths, usize::MAX), Err(TransportError::Protocol));
    let long_head = [b"HTTP/1.1 200 OK\r\nx: ".as_slice(), &[b'a'; MAX_HEAD_LEN]].concat();
    assert_eq!(feed(&long_head, usize::MAX), Err(TransportError::Protocol));
    let bad_chunk_end = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nxy\r\n";
    assert_eq!(
        feed(bad_chunk_end, usize::MAX),
        Err(TransportError::Protocol)
    );
}

/// chat-core's `init` request, aimed at `base`.
fn init_request(base: &str) -> Request {
    // Its payload is {"exp":4000000000}.
    let token = Token::parse("jwt.e30.eyJleHAiOjQwMDAwMDAwMDB9.signature").unwrap();
    let params = InitParams::new(
        base,
        "123e4567-e89b-12d3-a456-426614174000",
        token,
        AppKey::new("appkey"),
    )
    .unwrap();
    let config = Config {
        request_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    let mut session = Session::new(params, config).unwrap();
    session.init(Instant::now(), SystemTime::now()).unwrap();
    match session.poll_output() {
        Output::Transmit(r) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_request_bytes() {
    let request = init_request("http://127.0.0.1:8080");
    let target = Target::parse(&request.url, false).unwrap();
    assert_eq!(target.authority, "127.0.0.1:8080");
    let bytes = request_bytes(&request, &target).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with(&format!(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n",
        target.path
    )));
    assert!(head.contains("\r\nappkey: appkey"));
    assert!(head.contains(&format!("\r\nContent-Length: {}", body.len())));
    assert_eq!(Some(body), request.body.as_deref());

    let mut bad = request.clone();
    bad.url = "http://127.0.0.1/x".into();
    let target = Target::parse(&bad.url, false).unwrap();
    assert_eq!(target.authority, "127.0.0.1");
    assert_eq!(target.port, 80);
    let token = "jwt.e30.eyJleHAiOjQwMDAwMDAwMDB9.sig\r\nX-Evil: 1";
    let mut out = Vec::new();
    push_header(&mut out, "appkey", "k").unwrap();
    assert_eq!(
        push_header(&mut out, "Authorization", token),
        Err(TransportError::Protocol)
    );
    assert_eq!(
        out, b"appkey: k\r\n",
        "nothing of the refused value written"
    );
}

#[test]
fn targets() {
    let t = Target::parse("https://[::1]:8443/a?b=c", false).unwrap();
    assert!(t.tls);
    assert_eq!(
        (t.bare_host().as_str(), t.port, t.path.as_str()),
        ("::1", 8443, "/a?b=c")
    );
    assert_eq!(t.origin(), (true, "[::1]:8443".to_owned()));
    assert!(Target::parse("wss://example.com/e", false).unwrap().tls);
    assert_eq!(
        Target::parse("http://example.com/", false),
        Err(TransportError::Connect)
    );
    assert!(Target::parse("http://example.com/", true).is_ok());
    assert!(Target::parse("ws://localhost:1/", false).is_ok());
    assert_eq!(
        Target::parse("ftp://localhost/", true),
        Err(TransportError::Connect)
    );
}

#[test]
fn only_a_request_no_byte_of_whose_answer_came_on_a_reused_connection_is_sent_again() {
    let mut parser = ResponseParser::new();
    assert!(!parser.has_started());
    assert_eq!(parser.push(b""), Ok(None));
    assert!(!parser.has_started(), "nothing read yet");
    // The connection ends before any byte: the request may have crossed the server's close.
    let error = parser.end().unwrap_err();
    assert_eq!(error, TransportError::Disconnected);
    assert!(may_resend(true, parser.has_started(), error));
    assert!(!may_resend(false, parser.has_started(), error));

    // One byte of the answer, then the end: the server had the request.
    let mut parser = ResponseParser::new();
    parser.input().extend_from_slice(b"H");
    assert_eq!(parser.advance(), Ok(None));
    assert!(parser.has_started());
    let error = parser.end().unwrap_err();
    assert!(!may_resend(true, parser.has_started(), error));

    for error in [
        TransportError::Timeout,
        TransportError::Protocol,
        TransportError::Connect,
        TransportError::Certificate,
    ] {
        assert!(!may_resend(true, false, error), "{error:?}");
    }
}
