//! Random bodies and queries at every endpoint: the answer is always a 2xx or a 4xx with a
//! JSON body, never a 5xx, a panic or a dropped connection.

use std::time::Duration;

use chat_emulator::{AgentMode, Emulator};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        prop_oneof![
            Just("TEXT"),
            Just("PLAINTEXT"),
            Just("web"),
            Just("AGENT"),
            Just("USER_CLOSED"),
            Just("123e4567-e89b-12d3-a456-426614174000"),
            Just("client_credentials"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    ".{0,10}",
                    prop_oneof![
                        Just("sessionId"),
                        Just("dialogId"),
                        Just("body"),
                        Just("elementText"),
                        Just("text"),
                        Just("customerId"),
                        Just("integrationId"),
                        Just("ttl"),
                        Just("customerIdentifiers"),
                        Just("engagementParameters"),
                        Just("clientType"),
                        Just("participantType"),
                        Just("name"),
                        Just("settings"),
                        Just("reason"),
                    ]
                    .prop_map(String::from),
                ],
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => json_value().prop_map(|v| v.to_string().into_bytes()),
        2 => prop::collection::vec(any::<u8>(), 0..512),
        1 => ".{0,200}".prop_map(String::into_bytes),
        1 => (1usize..3).prop_map(|n| vec![b'['; 40_000 * n]),
    ]
}

#[test]
fn random_bodies_never_break_the_server() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let emu = runtime.block_on(async {
        Emulator::builder()
            .hold_time(Duration::from_millis(20))
            .agent(AgentMode::Off)
            .start()
            .await
            .unwrap()
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = emu.base_url();
    let c = emu.credentials().clone();
    let control = emu.control();
    let token = control.mint_token("fuzz", true, Duration::from_secs(3600));
    let chat = format!(
        "{base}/sdk/digital/chat/v1/integrations/{}",
        c.integration_id
    );
    let (sid, eid) = runtime.block_on(async {
        let r: Value = http
            .post(format!("{chat}/sessions"))
            .bearer_auth(&token)
            .header("appkey", &c.appkey)
            .json(&json!({"clientType": "web"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let sid = r["sessionId"].as_str().unwrap().to_owned();
        let r: Value = http
            .post(format!("{chat}/engagements"))
            .bearer_auth(&token)
            .header("appkey", &c.appkey)
            .json(&json!({"sessionId": sid, "engagementParameters": {}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (sid, r["engagementId"].as_str().unwrap().to_owned())
    });
    let access = runtime.block_on(async {
        let r: Value = http
            .post(format!(
                "{base}/api/auth/v1/{}/protocol/openid-connect/token",
                c.account_id
            ))
            .header("appkey", &c.appkey)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &c.client_id),
                ("client_secret", &c.client_secret),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["access_token"].as_str().unwrap().to_owned()
    });
    let account = &c.account_id;
    let posts = [
        format!("{base}/api/auth/v1/{account}/protocol/openid-connect/token"),
        format!("{base}/auth/realms/{account}/protocol/openid-connect/token"),
        format!("{base}/api/digital/chat/v1/accounts/{account}/tokens"),
        format!("{base}/api/digital/config/v1/accounts/{account}/integrations"),
        format!("{chat}/sessions"),
        format!("{chat}/engagements"),
        format!("{chat}/engagements/{eid}:join"),
        format!("{chat}/engagements/{eid}:disconnect"),
        format!("{chat}/engagements/{eid}/messages"),
        format!("{base}/emulator/v1/engagements/{eid}/messages"),
        format!("{base}/emulator/v1/engagements/{eid}/participants"),
        format!("{base}/emulator/v1/engagements:broadcast"),
        format!("{base}/emulator/v1/faults"),
        format!("{base}/emulator/v1/delays"),
        format!("{base}/emulator/v1/chat-tokens"),
    ];
    let gets = [
        format!("{chat}/sessions/{sid}/events"),
        format!("{chat}/engagements/{eid}/messages"),
        format!("{chat}/sessions/{sid}"),
    ];
    // One runner per endpoint: a runner counts its cases across runs.
    let runner = || {
        TestRunner::new(Config {
            cases: 48,
            failure_persistence: None,
            ..Config::default()
        })
    };
    for url in &posts {
        runner()
            .run(&body(), |bytes| {
                let status = runtime.block_on(async {
                    let r = http
                        .post(url)
                        .bearer_auth(if url.contains("/tokens") || url.contains("/config/") {
                            &access
                        } else {
                            &token
                        })
                        .header("appkey", &c.appkey)
                        .header("x-emulator-control-key", emu.control_key())
                        .header("content-type", "application/json")
                        .body(bytes.clone())
                        .send()
                        .await
                        .unwrap();
                    let status = r.status();
                    let is_json = r
                        .headers()
                        .get("content-type")
                        .is_some_and(|v| v.to_str().unwrap().contains("json"));
                    let _ = r.bytes().await.unwrap();
                    (status, is_json)
                });
                // Random fault or delay requests must not leak into the next case.
                control.clear_faults();
                prop_assert!(
                    status.0.is_success() || status.0.is_client_error(),
                    "{url}: {}",
                    status.0
                );
                if status.0.is_client_error() {
                    prop_assert!(status.1, "{url}: error without a JSON body");
                }
                Ok(())
            })
            .unwrap();
    }
    for url in &gets {
        runner()
            .run(&".{0,60}", |query| {
                let status = runtime.block_on(async {
                    let encoded: String = query
                        .bytes()
                        .map(|b| {
                            if b.is_ascii_alphanumeric() || b == b'=' || b == b'&' {
                                (b as char).to_string()
                            } else {
                                format!("%{b:02X}")
                            }
                        })
                        .collect();
                    http.get(format!("{url}?{encoded}&lastEventId={encoded}"))
                        .bearer_auth(&token)
                        .header("appkey", &c.appkey)
                        .send()
                        .await
                        .unwrap()
                        .status()
                });
                prop_assert!(
                    status.is_success() || status.is_client_error(),
                    "{url}?{query}: {status}"
                );
                Ok(())
            })
            .unwrap();
    }
    // Still serving.
    let stats = control.stats();
    assert!(stats.chat_requests > 100, "{stats:?}");
    runtime.block_on(emu.shutdown());
}
