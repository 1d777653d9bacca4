//! Decoding never panics: arbitrary bytes and arbitrary JSON, as tokens, as every wire type,
//! and as the answer to every kind of request.
#![allow(clippy::disallowed_methods)]

mod support;

use chat_core::wire;
use chat_core::{Config, Token};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::*;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "MESSAGE",
            "PARTICIPANT_ADDED",
            "PARTICIPANT_DISCONNECTED",
            "ENGAGEMENT_ERROR",
            "CUSTOMER",
            "AGENT",
            "eventId",
            "ev-1",
            ENGAGEMENT,
            DIALOG,
            "",
        ])
        .prop_map(|s| json!(s)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "eventId",
                    "eventType",
                    "engagementId",
                    "dialogId",
                    "message",
                    "participant",
                    "participantType",
                    "participantId",
                    "messageId",
                    "messageIndex",
                    "body",
                    "elementText",
                    "text",
                    "error",
                    "sessionId",
                    "engagements",
                    "dialogs",
                    "dialogStatus",
                    "participants",
                    "messages",
                    "links",
                    "next",
                    "detail",
                ])
                .prop_map(str::to_owned),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn every_wire_type(bytes: &[u8]) {
    let _ = serde_json::from_slice::<wire::Session>(bytes);
    let _ = serde_json::from_slice::<wire::Engagement>(bytes);
    let _ = serde_json::from_slice::<wire::RestMessage>(bytes);
    let _ = serde_json::from_slice::<wire::MessagePage>(bytes);
    let _ = serde_json::from_slice::<Vec<wire::ServerEvent>>(bytes);
    let _ = serde_json::from_slice::<wire::Problem>(bytes);
    let _ = serde_json::from_slice::<wire::StreamAck>(bytes);
}

/// A session with an active engagement and one of each kind of request outstanding; `body`
/// answers all of them with `status`.
fn answer_everything(status: u16, body: &[u8]) {
    let mut h = Harness::new(Config::default());
    h.init();
    let e = h.active_engagement();
    let _ = h.session.send_message(h.now, &e, "x", None);
    let _ = h.session.fetch_history(h.now, &e, None);
    let _ = h.session.list_engagements(h.now);
    let _ = h.session.join(h.now, &e);
    let _ = h.session.create_engagement(h.now, Default::default());
    let _ = h.session.disconnect(h.now, &e, None);
    // Bounded: a good answer to a poll brings the next poll.
    for _ in 0..2 {
        h.drain();
        for _ in 0..12 {
            let Some(r) = h.sent.pop_front() else { break };
            h.respond_raw(&r, status, body);
        }
        let _ = h.session.shutdown(h.now, None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn tokens_of_any_text_parse_or_fail_cleanly(text in ".{0,200}") {
        let _ = Token::parse(&text);
        let _ = Token::parse(&format!("jwt.{text}"));
        let _ = Token::parse(&format!("jwt.h.{text}.s"));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), status in 100u16..600) {
        every_wire_type(&bytes);
        answer_everything(status, &bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value(), status in prop::sample::select(vec![200u16, 201, 204, 404, 500])) {
        let bytes = value.to_string().into_bytes();
        every_wire_type(&bytes);
        answer_everything(status, &bytes);
        let batch = Value::Array(vec![value]).to_string().into_bytes();
        answer_everything(200, &batch);
    }
}
