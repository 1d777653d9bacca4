//! The reference backend server against the emulator: endpoints, authenticator hook, CORS.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use axum::http::HeaderMap;
use serde_json::{Value, json};
use token_client::CustomerRequest;
use token_client::server::{
    AuthFuture, CustomerAuthenticator, GetJwtRequest, GuestsOnly, Rejection, ServerConfig,
    TrustClientClaims, router,
};

async fn serve(
    emu: &chat_emulator::Emulator,
    auth: Arc<dyn CustomerAuthenticator>,
    origins: &[&str],
) -> String {
    let (client, _) = common::client(emu);
    let origins: Vec<String> = origins.iter().map(|o| (*o).to_owned()).collect();
    let app = router(client, auth, &origins).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(token_client::server::serve(
        listener,
        app,
        token_client::server::ConnectionLimits::default(),
        std::future::pending(),
    ));
    url
}

fn payload(token: &str) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(2).unwrap().trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(part))
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn get_jwt_and_get_integration_keep_the_sample_contract() {
    let emu = common::emulator().await;
    let url = serve(&emu, Arc::new(TrustClientClaims), &[]).await;
    let http = reqwest::Client::new();

    let response = http
        .post(format!("{url}/v1/getJWT"))
        .json(&json!({
            "customerId": "customer-7",
            "customerName": "Bo",
            "verifiedCustomer": true,
            "customerIdentifiers": {"emailAddresses": ["bo@example.com"]}
        }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["appkey"], emu.credentials().appkey.as_str());
    let claims = payload(answer["jwtToken"].as_str().unwrap());
    assert_eq!(claims["customerId"], "customer-7");
    assert_eq!(claims["verifiedCustomer"], true);
    assert_eq!(
        claims["customerIdentifiers"]["emailAddresses"][0],
        "bo@example.com"
    );

    // Unverified (as a string, as some widgets send it): identifiers dropped.
    let answer: Value = http
        .post(format!("{url}/v1/getJWT"))
        .json(
            &json!({"customerId": "visitor-1", "verifiedCustomer": "false", "customerName": "",
                      "customerIdentifiers": {"emailAddresses": ["x@example.com"]}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = payload(answer["jwtToken"].as_str().unwrap());
    assert_eq!(claims["verifiedCustomer"], false);
    assert!(claims.get("customerIdentifiers").is_none_or(Value::is_null));

    let integration = http
        .get(format!("{url}/v1/getIntegration"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(integration, emu.credentials().integration_id);
    // Query parameters never change the configuration (unlike AXP's sample).
    let integration = http
        .get(format!(
            "{url}/v1/getIntegration?integrationId=evil&clientSecret=x"
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(integration, emu.credentials().integration_id);
    emu.shutdown().await;
}

#[tokio::test]
async fn bad_input_and_upstream_failures_are_problem_json() {
    let emu = common::emulator().await;
    let url = serve(&emu, Arc::new(TrustClientClaims), &[]).await;
    let http = reqwest::Client::new();

    let response = http
        .post(format!("{url}/v1/getJWT"))
        .json(&json!({"customerId": "", "verifiedCustomer": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["violations"][0]["field"], "customerId");

    let response = http
        .post(format!("{url}/v1/getJWT"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    emu.control()
        .fail_next(chat_emulator::Route::TokenApi, 500, 3);
    let response = http
        .post(format!("{url}/v1/getJWT"))
        .json(&json!({"customerId": "c", "verifiedCustomer": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let text = response.text().await.unwrap();
    assert!(!text.contains(&emu.credentials().client_secret));
    emu.shutdown().await;
}

/// An application authenticator: a bearer session token maps to a customer; no session, 401.
struct AppSessions;

impl CustomerAuthenticator for AppSessions {
    fn authenticate<'a>(
        &'a self,
        headers: &'a HeaderMap,
        _body: &'a GetJwtRequest,
    ) -> AuthFuture<'a> {
        Box::pin(async move {
            match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                Some("Bearer session-of-carol") => {
                    Ok(CustomerRequest::verified("carol-from-db").email("carol@example.com"))
                }
                _ => Err(Rejection::unauthorized("sign in first")),
            }
        })
    }
}

#[tokio::test]
async fn the_authenticator_decides_who_is_verified() {
    let emu = common::emulator().await;
    let http = reqwest::Client::new();
    let claim = json!({"customerId": "mallory-claims-to-be-carol", "verifiedCustomer": true});

    let url = serve(&emu, Arc::new(AppSessions), &[]).await;
    let response = http
        .post(format!("{url}/v1/getJWT"))
        .json(&claim)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let answer: Value = http
        .post(format!("{url}/v1/getJWT"))
        .bearer_auth("session-of-carol")
        .json(&claim)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = payload(answer["jwtToken"].as_str().unwrap());
    assert_eq!(claims["customerId"], "carol-from-db");
    assert_eq!(claims["verifiedCustomer"], true);

    let url = serve(&emu, Arc::new(GuestsOnly), &[]).await;
    let answer: Value = http
        .post(format!("{url}/v1/getJWT"))
        .json(&claim)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        payload(answer["jwtToken"].as_str().unwrap())["verifiedCustomer"],
        false
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn cors_allow_list() {
    let emu = common::emulator().await;
    let http = reqwest::Client::new();
    let url = serve(
        &emu,
        Arc::new(TrustClientClaims),
        &["https://shop.example.com"],
    )
    .await;
    let preflight = |origin: &'static str| {
        http.request(reqwest::Method::OPTIONS, format!("{url}/v1/getJWT"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("https://shop.example.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://shop.example.com"
    );
    assert!(
        allowed.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let denied = preflight("https://evil.example.net").await.unwrap();
    assert!(
        denied
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    // A simple request from an allowed origin carries the header; without Origin it still works.
    let response = http
        .get(format!("{url}/v1/getIntegration"))
        .header("origin", "https://shop.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://shop.example.com"
    );
    assert!(
        http.get(format!("{url}/v1/getIntegration"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );

    let any = serve(&emu, Arc::new(TrustClientClaims), &["*"]).await;
    let response = http
        .request(reqwest::Method::OPTIONS, format!("{any}/v1/getJWT"))
        .header("origin", "https://anything.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    emu.shutdown().await;
}

#[test]
fn server_config_from_file_and_environment() {
    let dir = std::env::temp_dir().join(format!("axp-token-server-{}", fastrand_seed()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("server.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:3999\"\nallowed_origins = [\"https://a.example\"]\n\
         api_base_url = \"https://na.api.avayacloud.com\"\naccount_id = \"ABCDEF\"\n\
         client_id = \"c\"\nclient_secret = \"s\"\nappkey = \"k\"\n\
         integration_id = \"123e4567-e89b-12d3-a456-426614174000\"\nttl = \"30\"\n",
    )
    .unwrap();
    let config = ServerConfig::load_with(Some(&path), |name| match name {
        "AXP_ALLOWED_ORIGINS" => Some("https://b.example, https://c.example".into()),
        "AXP_AUTH_MODE" => Some("guests-only".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(config.listen.port(), 3999);
    assert_eq!(
        config.allowed_origins,
        ["https://b.example", "https://c.example"]
    );
    assert_eq!(config.auth_mode, token_client::server::AuthMode::GuestsOnly);
    assert_eq!(config.token.default_lifetime.as_secs(), 1800);
    assert!(
        ServerConfig::load_with(Some(&path), |name| {
            (name == "AXP_LISTEN").then(|| "not an address".into())
        })
        .is_err()
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn fastrand_seed() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}
