//! The HTTP/1.1 response parser reads network input: it must never panic, whatever arrives,
//! and it must read a well-formed response the same however the bytes are split up.

use chat_net::http1::ResponseParser;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Framing {
    Length,
    Chunked(Vec<usize>),
    UntilClose,
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        Just(Framing::Length),
        prop::collection::vec(1..64usize, 0..6).prop_map(Framing::Chunked),
        Just(Framing::UntilClose),
    ]
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

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
