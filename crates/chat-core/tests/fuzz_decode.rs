//! Fuzzing twin for decoding: every wire type the core reads, and the same bytes as the
//! server's answer to each kind of request. The driver [`run`] is shared with the cargo-fuzz
//! target `decode` (fuzz/fuzz_targets/decode.rs includes this file and `support/`); the
//! proptests below feed it bounded input in CI: random bytes, and valid answers with a few
//! bytes changed, which reach deeper than random bytes do. `decode.rs` covers random JSON.
//!
//! Input layout: byte 0 picks the request answered, byte 1 the status, the rest is the body.
#![allow(clippy::disallowed_methods, dead_code, unreachable_pub, missing_docs)]

#[cfg(test)]
mod support;

use chat_core::{Config, EngagementId, Output, RequestId, wire};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::support::{ENGAGEMENT, Harness};

/// Statuses worth trying; byte 1 of the input indexes them (or is taken as-is past them).
pub const STATUSES: [u16; 12] = [200, 201, 204, 400, 401, 403, 404, 409, 429, 500, 502, 503];

/// What byte 0 of the input answers.
pub const KINDS: [&str; 8] = [
    "init",
    "create",
    "join",
    "send",
    "history",
    "list",
    "disconnect",
    "poll",
];

/// Decodes one fuzz input as every wire type, then as the answer to one request.
pub fn run(data: &[u8]) {
    let (kind, status, body) = match data {
        [k, s, body @ ..] => (*k, status_of(*s), body),
        _ => return,
    };
    every_wire_type(body);
    answer(kind, status, body);
}

fn status_of(byte: u8) -> u16 {
    STATUSES
        .get(byte as usize)
        .copied()
        .unwrap_or(100 + u16::from(byte) * 2)
}

/// Decodes `bytes` as each wire type; whatever decodes survives a round trip unchanged.
pub fn every_wire_type(bytes: &[u8]) {
    round_trip::<wire::Session>(bytes);
    round_trip::<wire::Engagement>(bytes);
    round_trip::<wire::RestMessage>(bytes);
    round_trip::<wire::MessagePage>(bytes);
    round_trip::<Vec<wire::ServerEvent>>(bytes);
    round_trip::<wire::Problem>(bytes);
    round_trip::<wire::StreamAck>(bytes);
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    let Ok(value) = serde_json::from_slice::<T>(bytes) else {
        return;
    };
    let json = serde_json::to_vec(&value).expect("a decoded value serializes");
    let again: T = serde_json::from_slice(&json).unwrap_or_else(|e| {
        panic!(
            "re-decoding {} failed: {e}\n{value:?}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(again, value, "round trip changed the value");
}

/// Answers one request of the kind `kind` picks with `status` and `body`: the command gets
/// exactly one reply, and the core ends waiting.
pub fn answer(kind: u8, status: u16, body: &[u8]) {
    let kind = KINDS[kind as usize % KINDS.len()];
    let mut h = Harness::new(Config::default());
    let e = EngagementId::new(ENGAGEMENT);
    let command = if kind == "init" {
        h.session.init(h.now, h.wall()).ok()
    } else {
        h.init();
        let _ = h.active_engagement();
        match kind {
            "create" => h.session.create_engagement(h.now, Default::default()).ok(),
            "join" => h.session.join(h.now, &e).ok(),
            "send" => h.session.send_message(h.now, &e, "x", None).ok(),
            "history" => h.session.fetch_history(h.now, &e, None).ok(),
            "list" => h.session.list_engagements(h.now).ok(),
            "disconnect" => h.session.disconnect(h.now, &e, None).ok(),
            _ => None,
        }
    };
    h.drain();
    let request = match command {
        Some(id) => h.take_request(|r| r.id == id),
        None => h.take_poll(),
    };
    h.replies.clear();
    h.session.handle_response(h.now, request.id, status, body);
    let mut replies: Vec<RequestId> = Vec::new();
    for _ in 0..10_000 {
        match h.session.poll_output() {
            Output::Wait(deadline) => {
                assert!(deadline.is_none_or(|d| d >= h.now), "deadline in the past");
                if let Some(id) = command {
                    let n = replies.iter().filter(|r| **r == id).count();
                    assert_eq!(n, 1, "{kind} answered {status}: {n} replies");
                }
                assert!(
                    replies.iter().all(|r| Some(*r) == command),
                    "a reply to a request nobody made: {replies:?}"
                );
                return;
            }
            Output::Reply(r) => replies.push(r.id),
            Output::Transmit(_) | Output::Abort(_) | Output::Event(_) | Output::FetchToken(_) => {}
        }
    }
    panic!("poll_output never returned Wait");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// A valid answer for each of [`KINDS`], to be mutated.
    fn valid(kind: usize) -> Vec<u8> {
        let v = match KINDS[kind] {
            "init" | "list" => session_json(json!([engagement_json(
                ENGAGEMENT,
                "ACTIVE",
                json!([
                {"participantId": CUSTOMER, "participantType": "CUSTOMER"}])
            )])),
            "create" | "join" => engagement_json(ENGAGEMENT, "ACTIVE", json!([])),
            "send" => rest_message(3, "CUSTOMER", "hi"),
            "history" => history_page(&[3, 2, 1], "/next?page=2"),
            "disconnect" => json!(null),
            _ => json!([message_event("ev-9", 4, "AGENT", "hello"),
                participant_event("ev-10", "PARTICIPANT_DISCONNECTED", AGENT, "AGENT"),
                {"eventId": "ev-11", "eventType": "ENGAGEMENT_ERROR", "engagementId": ENGAGEMENT,
                 "error": {"type": "t", "title": "x", "detail": "y"}}]),
        };
        v.to_string().into_bytes()
    }

    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        (
            0..KINDS.len(),
            0u8..3,
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
        )
            .prop_map(|(kind, status, edits)| {
                let mut body = valid(kind);
                for (at, byte, how) in edits {
                    let i = at.index(body.len() + 1);
                    match how {
                        0 if i < body.len() => body[i] = byte,
                        1 if i < body.len() => drop(body.remove(i)),
                        _ => body.insert(i, byte),
                    }
                }
                let mut data = vec![kind as u8, status];
                data.extend(body);
                data
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes(data in prop::collection::vec(any::<u8>(), 0..300)) {
            run(&data);
        }

        #[test]
        fn valid_answers_with_a_few_bytes_changed(data in mutated()) {
            run(&data);
        }
    }

    #[test]
    fn every_valid_answer_decodes_and_gets_its_reply() {
        for (kind, name) in KINDS.iter().enumerate() {
            let (status, body) = match *name {
                "disconnect" => (204, Vec::new()),
                _ => (200, valid(kind)),
            };
            answer(kind as u8, status, &body);
        }
        every_wire_type(&valid(0));
    }
}
