//! The frame codec against RFC 6455's examples (section 5.7) and every refusal.

use super::*;

/// Every message in `bytes` for a decoder of this role, fed in one piece, and how it ended.
fn decode(role: Role, bytes: &[u8]) -> (Vec<Message>, Option<FrameError>) {
    decode_with(Decoder::new(role), bytes)
}

fn decode_with(mut decoder: Decoder, bytes: &[u8]) -> (Vec<Message>, Option<FrameError>) {
    decoder.push(bytes);
    let mut out = Vec::new();
    loop {
        match decoder.next() {
            Ok(Some(m)) => out.push(m),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

fn text(t: &str) -> Message {
    Message::Text(t.to_owned())
}

#[test]
fn rfc_6455_examples() {
    // A single-frame unmasked text message (server to client).
    let hello = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(decode(Role::Client, &hello), (vec![text("Hello")], None));
    // A single-frame masked text message (client to server).
    let masked = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(decode(Role::Server, &masked), (vec![text("Hello")], None));
    // A fragmented unmasked text message.
    let fragmented = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    assert_eq!(
        decode(Role::Client, &fragmented),
        (vec![text("Hello")], None)
    );
    // An unmasked ping, and a masked pong answering it.
    let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(
        decode(Role::Client, &ping),
        (vec![Message::Ping(b"Hello".to_vec())], None)
    );
    let pong = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(
        decode(Role::Server, &pong),
        (vec![Message::Pong(b"Hello".to_vec())], None)
    );
    // 256 bytes of binary in one unmasked frame (16-bit length).
    let mut binary = vec![0x82, 0x7E, 0x01, 0x00];
    binary.extend((0..256).map(|i| i as u8));
    let (messages, end) = decode(Role::Client, &binary);
    assert_eq!(end, None);
    assert_eq!(
        messages,
        [Message::Binary((0..256).map(|i| i as u8).collect())]
    );
    // 64 KiB in one unmasked frame (64-bit length).
    let mut big = vec![0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0];
    big.resize(big.len() + 65536, 7);
    let (messages, end) = decode(Role::Client, &big);
    assert_eq!(end, None);
    assert_eq!(messages, [Message::Binary(vec![7; 65536])]);
}

#[test]
fn the_encoder_writes_the_rfc_frames() {
    let mut server = Encoder::new(Role::Server);
    assert_eq!(
        server.text("Hello"),
        [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
    assert_eq!(
        server.ping(b"Hello"),
        [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
    let mut out = Vec::new();
    server.encode(Opcode::Binary, &[0; 256], &mut out).unwrap();
    assert_eq!(out[..4], [0x82, 0x7E, 0x01, 0x00]);
    out.clear();
    server
        .encode(Opcode::Binary, &[0; 65536], &mut out)
        .unwrap();
    assert_eq!(out[..10], [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    // A client masks, with a key of its own per frame.
    let mut client = Encoder::new(Role::Client);
    let a = client.text("Hello");
    assert_eq!((a[0], a[1], a.len()), (0x81, 0x85, 11));
    let keys: std::collections::HashSet<Vec<u8>> = (0..8)
        .map(|_| client.text("Hello")[2..6].to_vec())
        .collect();
    assert!(keys.len() > 1, "the same masking key every time");
    assert_eq!(decode(Role::Server, &a), (vec![text("Hello")], None));
}

#[test]
fn pieces_of_any_size_give_the_same_messages() {
    let mut encoder = Encoder::new(Role::Client);
    let mut bytes = encoder.text("first");
    bytes.extend(encoder.ping(b"p"));
    bytes.extend(encoder.text(&"x".repeat(300)));
    bytes.extend(encoder.close(Some((4401, "Token expired"))));
    let whole = decode(Role::Server, &bytes);
    assert_eq!(whole.0.len(), 4);
    for size in 1..bytes.len() {
        let mut decoder = Decoder::new(Role::Server);
        let mut messages = Vec::new();
        for piece in bytes.chunks(size) {
            decoder.push(piece);
            while let Some(m) = decoder.next().unwrap() {
                messages.push(m);
            }
        }
        assert_eq!((messages, None), whole, "pieces of {size}");
        assert!(!decoder.has_input());
    }
}

#[test]
fn control_frames_may_come_between_fragments() {
    // "Hel", a ping, "lo" (unmasked, server to client).
    let bytes = [
        0x01, 0x03, 0x48, 0x65, 0x6c, 0x89, 0x01, 0x21, 0x80, 0x02, 0x6c, 0x6f,
    ];
    assert_eq!(
        decode(Role::Client, &bytes),
        (vec![Message::Ping(b"!".to_vec()), text("Hello")], None)
    );
    // Three binary fragments.
    let bytes = [0x02, 0x01, 1, 0x00, 0x01, 2, 0x80, 0x01, 3];
    assert_eq!(
        decode(Role::Client, &bytes),
        (vec![Message::Binary(vec![1, 2, 3])], None)
    );
}

#[test]
fn close_frames() {
    let mut server = Encoder::new(Role::Server);
    let (messages, _) = decode(
        Role::Client,
        &server.close(Some((4404, "Session not found"))),
    );
    assert_eq!(
        messages,
        [Message::Close(Some(CloseFrame {
            code: 4404,
            reason: "Session not found".to_owned()
        }))]
    );
    assert_eq!(
        decode(Role::Client, &server.close(None)),
        (vec![Message::Close(None)], None)
    );
    // The reason is cut to fit, on a character boundary; a code that may not be sent is not.
    let long = "é".repeat(100);
    let frame = server.close(Some((1005, &long)));
    assert_eq!(frame[1] as usize, 2 + 122);
    let (messages, end) = decode(Role::Client, &frame);
    assert_eq!(end, None);
    let [Message::Close(Some(close))] = messages.as_slice() else {
        panic!("{messages:?}")
    };
    assert_eq!((close.code, close.reason.chars().count()), (1000, 61));
    // The closing handshake answers with the same code; a ping with its payload.
    let mut client = Encoder::new(Role::Client);
    let answer = client
        .answer(&Message::Close(Some(CloseFrame {
            code: 4401,
            reason: "Token expired".to_owned(),
        })))
        .unwrap();
    assert_eq!(
        decode(Role::Server, &answer).0,
        [Message::Close(Some(CloseFrame {
            code: 4401,
            reason: String::new()
        }))]
    );
    let pong = client.answer(&Message::Ping(vec![1, 2])).unwrap();
    assert_eq!(decode(Role::Server, &pong).0, [Message::Pong(vec![1, 2])]);
    assert_eq!(client.answer(&text("x")), None);
}

#[test]
fn refusals() {
    let cases: &[(Role, &[u8], FrameError)] = &[
        // A client's frame must be masked, a server's must not.
        (Role::Server, &[0x81, 0x01, b'a'], FrameError::Masking),
        (
            Role::Client,
            &[0x81, 0x81, 0, 0, 0, 0, b'a'],
            FrameError::Masking,
        ),
        // Reserved bits, opcodes.
        (Role::Client, &[0xC1, 0x00], FrameError::Reserved),
        (Role::Client, &[0x83, 0x00], FrameError::Opcode),
        (Role::Client, &[0x8B, 0x00], FrameError::Opcode),
        // Control frames: at most 125 bytes, never fragmented.
        (Role::Client, &[0x89, 0x7E, 0x00, 0x7E], FrameError::Control),
        (Role::Client, &[0x09, 0x00], FrameError::Control),
        // Fragments out of order.
        (Role::Client, &[0x80, 0x01, b'a'], FrameError::Fragmentation),
        (
            Role::Client,
            &[0x01, 0x01, b'a', 0x81, 0x01, b'b'],
            FrameError::Fragmentation,
        ),
        // Not UTF-8, in a text message and in a close reason.
        (Role::Client, &[0x81, 0x02, 0xC3, 0x28], FrameError::Utf8),
        (
            Role::Client,
            &[0x88, 0x04, 0x03, 0xE8, 0xFF, 0xFE],
            FrameError::Utf8,
        ),
        // Close frames: one byte, or a code that may not be sent.
        (Role::Client, &[0x88, 0x01, 0x03], FrameError::Close),
        (Role::Client, &[0x88, 0x02, 0x03, 0xED], FrameError::Close),
        (Role::Client, &[0x88, 0x02, 0x00, 0x01], FrameError::Close),
        (Role::Client, &[0x88, 0x02, 0x13, 0x88], FrameError::Close),
        // A 64-bit length past any limit (the top bit set).
        (
            Role::Client,
            &[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0],
            FrameError::TooLarge,
        ),
    ];
    for (role, bytes, error) in cases {
        assert_eq!(decode(*role, bytes), (vec![], Some(*error)), "{bytes:02x?}");
    }
    assert_eq!(FrameError::TooLarge.close_code(), 1009);
    assert_eq!(FrameError::Utf8.close_code(), 1007);
    assert_eq!(FrameError::Masking.close_code(), 1002);
    assert_eq!(
        TransportError::from(FrameError::Opcode),
        TransportError::Protocol
    );
}

#[test]
fn a_message_past_the_limit_is_refused_from_its_header() {
    // The header alone: nothing of the payload needs to arrive.
    let (_, end) = decode_with(
        Decoder::with_max_message(Role::Client, 1000),
        &[0x82, 0x7E, 0x03, 0xE9],
    );
    assert_eq!(end, Some(FrameError::TooLarge));
    // Exactly the limit is accepted.
    let mut at_limit = vec![0x82, 0x7E, 0x03, 0xE8];
    at_limit.resize(4 + 1000, 0);
    let (messages, end) = decode_with(Decoder::with_max_message(Role::Client, 1000), &at_limit);
    assert_eq!((messages.len(), end), (1, None));
    // Fragments count together.
    let mut fragments = vec![0x02, 0x7E, 0x01, 0xF4];
    fragments.resize(4 + 500, 0);
    fragments.extend([0x80, 0x7E, 0x01, 0xF5]);
    let (_, end) = decode_with(Decoder::with_max_message(Role::Client, 1000), &fragments);
    assert_eq!(end, Some(FrameError::TooLarge));
    // The default limit is the response cap.
    let mut header = vec![0x81, 0x7F];
    header.extend(((MAX_MESSAGE + 1) as u64).to_be_bytes());
    assert_eq!(decode(Role::Client, &header).1, Some(FrameError::TooLarge));
}

#[test]
fn a_refusal_is_final() {
    let mut decoder = Decoder::new(Role::Client);
    decoder.push(&[0x83, 0x00, 0x81, 0x01, b'a']);
    assert_eq!(decoder.next(), Err(FrameError::Opcode));
    decoder.push(&[0x81, 0x01, b'a']);
    assert_eq!(decoder.next(), Err(FrameError::Opcode));
    assert!(!decoder.has_input());
}

#[test]
fn debug_shows_no_payload() {
    let secret = "jwt.secret-token";
    for m in [
        text(secret),
        Message::Binary(secret.into()),
        Message::Ping(secret.into()),
        Message::Pong(secret.into()),
        Message::Close(Some(CloseFrame {
            code: 4401,
            reason: secret.to_owned(),
        })),
    ] {
        let debug = format!("{m:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("16"), "{debug}");
    }
    let mut decoder = Decoder::new(Role::Server);
    decoder.push(secret.as_bytes());
    assert!(!format!("{decoder:?}").contains("secret"));
}

#[test]
fn control_payloads_past_125_bytes_are_refused_or_cut() {
    let mut encoder = Encoder::new(Role::Server);
    let mut out = Vec::new();
    assert_eq!(
        encoder.encode(Opcode::Ping, &[0; 126], &mut out),
        Err(FrameError::Control)
    );
    assert!(out.is_empty());
    let ping = encoder.ping(&[0; 200]);
    assert_eq!(decode(Role::Client, &ping).0, [Message::Ping(vec![0; 125])]);
}
