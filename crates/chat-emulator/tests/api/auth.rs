//! OAuth client credentials and the Generate JWT Token API (reference 8.2, 8.3).

use base64::Engine as _;
use chat_emulator::{AgentMode, Route};
use serde_json::{Value, json};

use crate::common::{is_problem, reply, start};

#[tokio::test]
async fn oauth_issues_tokens_on_both_paths_and_refuses_bad_credentials() {
    let h = start(AgentMode::Off).await;
    let c = h.emu.credentials().clone();
    for path in [
        format!(
            "/api/auth/v1/{}/protocol/openid-connect/token",
            c.account_id
        ),
        format!(
            "/auth/realms/{}/protocol/openid-connect/token",
            c.account_id
        ),
    ] {
        let r = h
            .http
            .post(h.url(&path))
            .header("appkey", &c.appkey)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", c.client_id.as_str()),
                ("client_secret", c.client_secret.as_str()),
            ])
            .send()
            .await
            .unwrap();
        let r = reply(r).await;
        assert_eq!(r.status, 200);
        assert!(r.body["access_token"].as_str().unwrap().len() > 20);
        assert_eq!(r.body["expires_in"], 900);
        assert_eq!(r.body["token_type"], "Bearer");
    }
    let path = format!(
        "/api/auth/v1/{}/protocol/openid-connect/token",
        c.account_id
    );
    let cases = [
        (c.appkey.as_str(), c.client_id.as_str(), "wrong", 401),
        (c.appkey.as_str(), "wrong", c.client_secret.as_str(), 401),
        ("wrong", c.client_id.as_str(), c.client_secret.as_str(), 401),
    ];
    for (appkey, id, secret, status) in cases {
        let r = h
            .http
            .post(h.url(&path))
            .header("appkey", appkey)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ])
            .send()
            .await
            .unwrap();
        let r = reply(r).await;
        assert_eq!(r.status, status);
        assert_eq!(r.body["error"], "invalid_client");
        assert!(!r.body.to_string().contains(&c.client_secret));
    }
    let r = h
        .http
        .post(h.url(&path))
        .header("appkey", &c.appkey)
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // HTTP Basic client authentication works too.
    let r = h
        .http
        .post(h.url(&path))
        .header("appkey", &c.appkey)
        .basic_auth(&c.client_id, Some(&c.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Unknown realm.
    let r = h
        .http
        .post(h.url("/api/auth/v1/NOPE/protocol/openid-connect/token"))
        .header("appkey", &c.appkey)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(h.emu.control().stats().oauth_calls, 8);
}

#[tokio::test]
async fn token_api_mints_a_jwt_whose_payload_is_strict_base64() {
    let h = start(AgentMode::Off).await;
    let access = h.access_token().await;
    let int = h.emu.credentials().integration_id.clone();
    let r = h
        .token_api(
            &access,
            json!({
                "integrationId": int, "customerId": "cust~?>1", "customerName": "Zoë >?~",
                "verifiedCustomer": true, "ttl": "30",
                "customerIdentifiers": {"emailAddresses": ["z@example.com"]},
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let token = r.body["jwtToken"].as_str().unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 4);
    assert_eq!(parts[0], "jwt");
    // atob-compatible: standard alphabet, no padding needed, no base64url characters.
    for part in &parts[1..3] {
        assert!(!part.contains(['-', '_', '+', '/', '=']), "{part}");
    }
    let payload = base64::engine::general_purpose::STANDARD
        .decode(parts[2])
        .unwrap();
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = claims["exp"].as_u64().unwrap();
    assert!((now + 1790..=now + 1810).contains(&exp), "{claims}");
    assert!(claims["iat"].is_u64());
    assert!(claims["jti"].is_string());
    assert_eq!(claims["integrationId"], int.as_str());
    assert_eq!(claims["customerId"], "cust~?>1");
    assert_eq!(claims["customerName"], "Zoë >?~");
    assert_eq!(claims["verifiedCustomer"], true);
    assert_eq!(
        claims["customerIdentifiers"]["emailAddresses"][0],
        "z@example.com"
    );
    let stats = h.emu.control().stats();
    assert_eq!(
        (stats.oauth_calls, stats.token_calls, stats.tokens_minted),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn token_api_enforces_field_rules_with_problem_bodies() {
    let h =
        crate::common::start_with(chat_emulator::Emulator::builder().agent(AgentMode::Off)).await;
    let access = h.access_token().await;
    let int = h.emu.credentials().integration_id.clone();
    let ids: Vec<String> = (0..11).map(|i| format!("id{i}")).collect();
    let eleven: serde_json::Map<String, Value> =
        ids.iter().map(|k| (k.clone(), json!(["v"]))).collect();
    let bad = [
        (json!({"integrationId": int, "ttl": 15}), "customerId"),
        (
            json!({"integrationId": int, "customerId": ""}),
            "customerId",
        ),
        (
            json!({"integrationId": int, "customerId": "x".repeat(257)}),
            "customerId",
        ),
        (
            json!({"integrationId": int, "customerId": "c", "customerName": "n".repeat(71)}),
            "customerName",
        ),
        (
            json!({"integrationId": "not-a-uuid", "customerId": "c"}),
            "integrationId",
        ),
        (json!({"customerId": "c"}), "integrationId"),
        (
            json!({"integrationId": int, "customerId": "c", "ttl": 14}),
            "ttl",
        ),
        (
            json!({"integrationId": int, "customerId": "c", "ttl": 61}),
            "ttl",
        ),
        (
            json!({"integrationId": int, "customerId": "c", "ttl": "abc"}),
            "ttl",
        ),
        (
            json!({"integrationId": int, "customerId": "c", "verifiedCustomer": "yes"}),
            "verifiedCustomer",
        ),
        (
            json!({"integrationId": int, "customerId": "c", "verifiedCustomer": true, "customerIdentifiers": {}}),
            "customerIdentifiers",
        ),
        (
            json!({"integrationId": int, "customerId": "c", "verifiedCustomer": true, "customerIdentifiers": eleven}),
            "customerIdentifiers",
        ),
        (
            json!({"integrationId": int, "customerId": "c", "verifiedCustomer": true,
                "customerIdentifiers": {"phoneNumbers": ["1","2","3","4","5","6"]}}),
            "customerIdentifiers.phoneNumbers",
        ),
        (
            json!({"integrationId": int, "customerId": "c", "verifiedCustomer": true,
                "customerIdentifiers": {"phoneNumbers": [""]}}),
            "customerIdentifiers.phoneNumbers",
        ),
        (
            json!({"integrationId": int, "customerId": "c", "verifiedCustomer": true,
                "customerIdentifiers": {"k".repeat(51): ["v"]}}),
            "customerIdentifiers",
        ),
    ];
    for (body, field) in bad {
        let r = h.token_api(&access, body.clone()).await;
        assert!(is_problem(&r, 400), "{body} → {:?}", r.body);
        let fields: Vec<&str> = r.body["violations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{body} → {fields:?}");
    }
    // Identifiers are ignored for guests, even invalid ones; ttl is optional.
    let r = h
        .token_api(
            &access,
            json!({"integrationId": int, "customerId": "g",
                                    "customerIdentifiers": {"x": "not an array"}}),
        )
        .await;
    assert_eq!(r.status, 201);
    // Unknown integration.
    let r = h
        .token_api(
            &access,
            json!({"integrationId": "123e4567-e89b-12d3-a456-426614174000", "customerId": "c"}),
        )
        .await;
    assert!(is_problem(&r, 404));
    // Malformed JSON.
    let c = h.emu.credentials();
    let r = h
        .http
        .post(h.url(&format!(
            "/api/digital/chat/v1/accounts/{}/tokens",
            c.account_id
        )))
        .bearer_auth(&access)
        .header("appkey", &c.appkey)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(is_problem(&reply(r).await, 400));
}

#[tokio::test]
async fn token_api_requires_a_live_access_token_of_the_account() {
    let h = start_short_access().await;
    let c = h.emu.credentials().clone();
    let body = json!({"integrationId": c.integration_id, "customerId": "c"});
    let r = h.token_api("not-a-token", body.clone()).await;
    assert!(is_problem(&r, 401));
    let access = h.access_token().await;
    // Wrong appkey → 403; another account → 403.
    let r = h
        .http
        .post(h.url(&format!(
            "/api/digital/chat/v1/accounts/{}/tokens",
            c.account_id
        )))
        .bearer_auth(&access)
        .header("appkey", "wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(is_problem(&reply(r).await, 403));
    let r = h
        .http
        .post(h.url("/api/digital/chat/v1/accounts/OTHER/tokens"))
        .bearer_auth(&access)
        .header("appkey", &c.appkey)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(is_problem(&reply(r).await, 403));
    // Revoked access tokens → 401.
    assert_eq!(h.token_api(&access, body.clone()).await.status, 201);
    h.emu.control().revoke_access_tokens();
    assert!(is_problem(&h.token_api(&access, body.clone()).await, 401));
    // Expired access tokens → 401 (the access token lifetime here is 1 s).
    let access = h.access_token().await;
    assert_eq!(h.token_api(&access, body.clone()).await.status, 201);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(is_problem(&h.token_api(&access, body).await, 401));
}

async fn start_short_access() -> crate::common::Harness {
    crate::common::start_with(
        chat_emulator::Emulator::builder()
            .agent(AgentMode::Off)
            .allow_short_token_ttl(true)
            .access_token_ttl(std::time::Duration::from_secs(1)),
    )
    .await
}

#[tokio::test]
async fn short_token_lifetimes_need_the_option() {
    let h = start(AgentMode::Off).await;
    let access = h.access_token().await;
    let int = h.emu.credentials().integration_id.clone();
    let r = h
        .token_api(
            &access,
            json!({"integrationId": int, "customerId": "c", "ttlSeconds": 2}),
        )
        .await;
    assert_eq!(r.status, 201);
    let token = r.body["jwtToken"].as_str().unwrap().to_owned();
    let session = h.create_session(&token).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = h.poll(&token, &session, None).await;
    assert!(is_problem(&r, 401));
    assert_eq!(r.body["detail"], "Token expired");

    let strict = start_with_defaults().await;
    let access = strict.access_token().await;
    let int = strict.emu.credentials().integration_id.clone();
    let r = strict
        .token_api(
            &access,
            json!({"integrationId": int, "customerId": "c", "ttl": 1}),
        )
        .await;
    assert!(is_problem(&r, 400));
}

async fn start_with_defaults() -> crate::common::Harness {
    let emu = chat_emulator::Emulator::builder()
        .agent(AgentMode::Off)
        .start()
        .await
        .unwrap();
    crate::common::Harness {
        emu,
        http: reqwest::Client::new(),
    }
}

#[tokio::test]
async fn injected_failures_hit_the_token_endpoints() {
    let h = start(AgentMode::Off).await;
    let control = h.emu.control();
    control.fail_next(Route::OAuth, 503, 1);
    control.fail_next_with_retry_after(Route::TokenApi, 429, 1, 7);
    let c = h.emu.credentials().clone();
    let r = h
        .http
        .post(h.url(&format!(
            "/api/auth/v1/{}/protocol/openid-connect/token",
            c.account_id
        )))
        .header("appkey", &c.appkey)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert!(is_problem(&reply(r).await, 503));
    let access = h.access_token().await;
    let body = json!({"integrationId": c.integration_id, "customerId": "c"});
    let r = h.token_api(&access, body.clone()).await;
    assert!(is_problem(&r, 429));
    assert_eq!(r.headers["retry-after"], "7");
    assert_eq!(h.token_api(&access, body).await.status, 201);
    let stats = control.stats();
    assert_eq!(
        (stats.oauth_calls, stats.token_calls, stats.tokens_minted),
        (2, 2, 1)
    );
}
