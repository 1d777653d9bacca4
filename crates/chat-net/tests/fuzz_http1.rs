//! Fuzzing twin for the HTTP/1.1 response parser, which reads network input: it must never
//! panic, whatever arrives, and must read a response the same however the bytes are split.
//! The driver [`run`] is shared with the cargo-fuzz target `http1`
//! (fuzz/fuzz_targets/http1.rs includes this file); the proptests below run in CI.
#![allow(dead_code, unreachable_pub, missing_docs)]

use chat_core::validate::MAX_RESPONSE_LEN;
use chat_net::http1::{ParsedResponse, ResponseParser};

/// The fuzz input: the first byte picks the size of the pieces the rest is fed in. Oracle:
/// no panic; a body never over [`MAX_RESPONSE_LEN`]; and when both the piecewise and the
/// all-at-once parse give a response, it has the same status and body.
pub fn run(data: &[u8]) {
    let Some((&stride, bytes)) = data.split_first() else {
        return;
    };
    let piecewise = parse(bytes.chunks(usize::from(stride).max(1)));
    let whole = parse(std::iter::once(bytes));
    for r in [&piecewise, &whole].into_iter().flatten() {
        assert!(r.body.len() <= MAX_RESPONSE_LEN, "body over the cap");
    }
    if let (Some(a), Some(b)) = (&piecewise, &whole) {
        assert_eq!(
            (a.status, &a.body),
            (b.status, &b.body),
            "the split changed the response"
        );
        // Only bytes read past the response may cost the connection (they were not asked
        // for): fed at once they are seen, fed piecewise they may come after the response.
        assert!(
            a.keep_alive || !b.keep_alive,
            "the split cost the connection"
        );
    }
}

/// Feeds `pieces`, then the end of the connection; the response, if one came.
fn parse<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> Option<ParsedResponse> {
    let mut parser = ResponseParser::new();
    for piece in pieces {
        match parser.push(piece) {
            Ok(None) => {}
            Ok(Some(r)) => return Some(r),
            Err(_) => return None,
        }
    }
    parser.end().ok()
}

#[derive(Debug, Clone)]
enum Framing {
    Length,
    Chunked(Vec<usize>),
    UntilClose,
}

/// A response with this status, body and framing, as a server would write it.
fn response(status: u16, body: &[u8], framing: &Framing) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\n");
    match framing {
        Framing::Length => head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len())),
        Framing::Chunked(_) => head.push_str("Transfer-Encoding: chunked\r\n\r\n"),
        Framing::UntilClose => head.push_str("Connection: close\r\n\r\n"),
    }
    let mut out = head.into_bytes();
    match framing {
        Framing::Chunked(sizes) => {
            let mut rest = body;
            for size in sizes.iter().chain(std::iter::once(&usize::MAX)) {
                if rest.is_empty() {
                    break;
                }
                let (chunk, tail) = rest.split_at((*size).min(rest.len()));
                out.extend_from_slice(format!("{:x};ext=1\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
                rest = tail;
            }
            out.extend_from_slice(b"0\r\nX-Trailer: y\r\n\r\n");
        }
        Framing::Length | Framing::UntilClose => out.extend_from_slice(body),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framing() -> impl Strategy<Value = Framing> {
        prop_oneof![
            Just(Framing::Length),
            prop::collection::vec(1..64usize, 0..6).prop_map(Framing::Chunked),
            Just(Framing::UntilClose),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn the_fuzz_driver_holds_on_random_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
            run(&data);
        }

        #[test]
        fn the_fuzz_driver_holds_on_responses_with_random_tails(
            body in prop::collection::vec(any::<u8>(), 0..200),
            framing in framing(),
            tail in prop::collection::vec(any::<u8>(), 0..40),
            stride in any::<u8>(),
        ) {
            let mut data = vec![stride];
            data.extend(response(200, &body, &framing));
            data.extend(tail);
            run(&data);
        }

        #[test]
        fn any_bytes_give_a_response_or_an_error(
            pieces in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8),
            prefix in any::<bool>(),
        ) {
            let mut parser = ResponseParser::new();
            if prefix {
                // Past the status line, so that the headers and body get the random bytes.
                let _ = parser.push(b"HTTP/1.1 200 OK\r\n");
            }
            for piece in &pieces {
                match parser.push(piece) {
                    Ok(None) => {}
                    Ok(Some(_)) | Err(_) => return Ok(()),
                }
            }
            let _ = parser.end();
        }

        #[test]
        fn a_response_reads_the_same_however_it_is_split(
            status in prop::sample::select(vec![200u16, 201, 400, 401, 404, 500, 503]),
            body in prop::collection::vec(any::<u8>(), 0..300),
            framing in framing(),
            cuts in prop::collection::vec(0..400usize, 0..10),
        ) {
            let bytes = response(status, &body, &framing);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.push(bytes.len());
            cuts.sort_unstable();
            let mut parser = ResponseParser::new();
            let mut from = 0;
            let mut parsed = None;
            for to in cuts {
                if parsed.is_some() {
                    break;
                }
                parsed = parser.push(&bytes[from..to]).expect("well-formed");
                from = to;
            }
            let parsed = match parsed {
                Some(p) => p,
                None => parser.end().expect("a body that runs to the end"),
            };
            prop_assert_eq!(parsed.status, status);
            prop_assert_eq!(parsed.body, body);
            prop_assert_eq!(parsed.keep_alive, !matches!(framing, Framing::UntilClose));
        }
    }
}
