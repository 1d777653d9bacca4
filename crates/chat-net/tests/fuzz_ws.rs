//! Property tests of the WebSocket frame codec, which reads network input on both sides (the
//! clients and the emulator): it never panics, whatever arrives and however it is split; what
//! the encoder writes the decoder reads back, for every opcode and every length boundary
//! (125/126, 65535/65536); fragmented messages are reassembled around control frames.
#![allow(clippy::unwrap_used)]

use chat_net::ws::frame::{CloseFrame, Decoder, Encoder, FrameError, Message, Opcode, Role};
use proptest::prelude::*;

/// Every message of `pieces`, fed one after the other, and the refusal that ended them.
fn decode<'a>(
    mut decoder: Decoder,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<Message>, Option<FrameError>) {
    let mut out = Vec::new();
    for piece in pieces {
        decoder.push(piece);
        loop {
            match decoder.next() {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

/// One frame, written by hand (any header, valid or not).
fn raw_frame(b0: u8, masked: bool, mask: [u8; 4], len_form: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    let m = if masked { 0x80 } else { 0 };
    let n = payload.len();
    match len_form {
        // The shortest form that fits.
        0 if n <= 125 => out.push(m | n as u8),
        0 | 1 if n <= 0xFFFF => {
            out.push(m | 126);
            out.extend((n as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 127);
            out.extend((n as u64).to_be_bytes());
        }
    }
    if masked {
        out.extend(mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    } else {
        out.extend(payload);
    }
    out
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Client), Just(Role::Server)]
}

fn other(role: Role) -> Role {
    match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

/// Frames with headers of any kind, mostly plausible: what a fuzzer would find.
fn frames() -> impl Strategy<Value = Vec<u8>> {
    let frame = (
        any::<bool>(),
        prop_oneof![8 => Just(0u8), 1 => 0u8..8],
        prop_oneof![
            Just(0x0u8),
            Just(0x1),
            Just(0x2),
            Just(0x8),
            Just(0x9),
            Just(0xA),
            0u8..16
        ],
        any::<bool>(),
        any::<[u8; 4]>(),
        0u8..3,
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..8),
            prop::collection::vec(any::<u8>(), 120..130),
            prop::collection::vec(prop_oneof![Just(b'a'), any::<u8>()], 0..300),
        ],
    )
        .prop_map(|(fin, rsv, opcode, masked, mask, len_form, payload)| {
            let b0 = if fin { 0x80 } else { 0 } | rsv << 4 | opcode;
            raw_frame(b0, masked, mask, len_form, &payload)
        });
    prop::collection::vec(frame, 0..6).prop_map(|fs| fs.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bytes_split_anywhere_give_frames_or_a_typed_error(
        role in role(),
        bytes in prop_oneof![prop::collection::vec(any::<u8>(), 0..600), frames()],
        stride in 1usize..64,
        max in prop_oneof![Just(chat_net::ws::MAX_MESSAGE), 0usize..400],
    ) {
        let whole = decode(Decoder::with_max_message(role, max), [bytes.as_slice()]);
        let pieces = decode(Decoder::with_max_message(role, max), bytes.chunks(stride));
        prop_assert_eq!(&pieces, &whole);
        for m in &whole.0 {
            match m {
                Message::Text(t) => prop_assert!(t.len() <= max),
                Message::Binary(b) => prop_assert!(b.len() <= max),
                Message::Ping(p) | Message::Pong(p) => prop_assert!(p.len() <= 125),
                Message::Close(c) => {
                    prop_assert!(c.as_ref().is_none_or(|c| c.reason.len() <= 123));
                }
            }
        }
    }

    #[test]
    fn what_is_encoded_is_decoded(
        role in role(),
        opcode in prop_oneof![
            Just(Opcode::Text),
            Just(Opcode::Binary),
            Just(Opcode::Ping),
            Just(Opcode::Pong),
            Just(Opcode::Close),
        ],
        len in prop_oneof![
            Just(0usize), Just(1), Just(125), Just(126), Just(127),
            Just(65535), Just(65536), Just(65537), 0usize..70_000,
        ],
        fill in any::<u8>(),
        code in prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999],
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let mut encoder = Encoder::new(role);
        let mut bytes = Vec::new();
        let expected = if opcode.is_control() {
            let len = len.min(125);
            let payload = vec![fill; len];
            match opcode {
                Opcode::Ping => {
                    bytes = encoder.ping(&payload);
                    Message::Ping(payload)
                }
                Opcode::Pong => {
                    bytes = encoder.pong(&payload);
                    Message::Pong(payload)
                }
                _ => {
                    let reason = "r".repeat(len.saturating_sub(2));
                    bytes = encoder.close(Some((code, &reason)));
                    Message::Close(Some(CloseFrame { code, reason }))
                }
            }
        } else if opcode == Opcode::Text {
            let text: String = std::iter::repeat_n(char::from(b'a' + fill % 26), len).collect();
            encoder.encode(opcode, text.as_bytes(), &mut bytes).unwrap();
            Message::Text(text)
        } else {
            let payload = vec![fill; len];
            encoder.encode(opcode, &payload, &mut bytes).unwrap();
            Message::Binary(payload)
        };
        // The header's length form is the shortest that fits.
        let form = bytes[1] & 0x7F;
        let payload_len = match opcode {
            Opcode::Close => len.clamp(2, 125),
            Opcode::Ping | Opcode::Pong => len.min(125),
            _ => len,
        };
        let want = match payload_len { 0..=125 => payload_len as u8, 126..=65535 => 126, _ => 127 };
        prop_assert_eq!(form, want);
        prop_assert_eq!(bytes[1] & 0x80 != 0, role == Role::Client);
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        at.sort_unstable();
        let mut pieces = Vec::new();
        let mut from = 0;
        for cut in at.into_iter().chain([bytes.len()]) {
            pieces.push(&bytes[from..cut]);
            from = cut;
        }
        let decoded = decode(Decoder::new(other(role)), pieces);
        prop_assert_eq!(decoded, (vec![expected], None));
    }

    #[test]
    fn fragments_are_reassembled_around_control_frames(
        role in role(),
        text in "[a-zé€😀]{0,200}",
        binary in any::<bool>(),
        splits in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
        pings in prop::collection::vec(any::<bool>(), 6),
        mask in any::<[u8; 4]>(),
    ) {
        // Fragment boundaries anywhere, even inside a character: only the whole is UTF-8.
        let payload = text.as_bytes();
        let mut at: Vec<usize> = splits.iter().map(|i| i.index(payload.len() + 1)).collect();
        at.sort_unstable();
        at.dedup();
        let mut parts = Vec::new();
        let mut from = 0;
        for cut in at.into_iter().chain([payload.len()]) {
            parts.push(&payload[from..cut]);
            from = cut;
        }
        let masked = role == Role::Client;
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let opcode = match (i, binary) {
                (0, true) => 0x2,
                (0, false) => 0x1,
                _ => 0x0,
            };
            let fin = if i + 1 == parts.len() { 0x80 } else { 0 };
            bytes.extend(raw_frame(fin | opcode, masked, mask, 0, part));
            if pings[i % pings.len()] && fin == 0 {
                bytes.extend(raw_frame(0x89, masked, mask, 0, &[i as u8]));
                expected.push(Message::Ping(vec![i as u8]));
            }
        }
        expected.push(if binary {
            Message::Binary(payload.to_vec())
        } else {
            Message::Text(text.clone())
        });
        let decoded = decode(Decoder::new(other(role)), bytes.chunks(7));
        prop_assert_eq!(decoded, (expected, None));
    }
}
