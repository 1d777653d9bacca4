//! The reference backend server, traced at TRACE (its own spans, token-client, axum, hyper,
//! reqwest and the emulator), over success and every failure path: no client secret, appkey,
//! JWT or JWT signature in a log line or an error body.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used)]

mod common;

use common::LogBuffer;

use std::sync::Arc;

use chat_emulator::Route;
use serde_json::{Value, json};
use token_client::server::{TrustClientClaims, router};

#[tokio::test(flavor = "current_thread")]
async fn the_reference_server_logs_no_secret() {
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Single-threaded runtime: the server, the client and the emulator log on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let emu = common::emulator().await;
    let (client, _) = common::client(&emu);
    let app = router(client, Arc::new(TrustClientClaims), &["*".to_owned()]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/getJWT", listener.local_addr().unwrap());
    // The binary's accept loop, so that its connection logs are searched too.
    tokio::spawn(token_client::server::serve(
        listener,
        app,
        token_client::server::ConnectionLimits::default(),
        std::future::pending(),
    ));
    let http = reqwest::Client::new();
    let get_jwt = |body: String| {
        let request = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let customer = json!({"customerId": "c-1", "verifiedCustomer": true,
        "customerName": "Ann", "customerIdentifiers": {"emailAddresses": ["ann@example.com"]}})
    .to_string();

    let mut jwts = Vec::new();
    let mut error_bodies = Vec::new();
    let (status, body) = get_jwt(customer.clone()).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    jwts.push(answer["jwtToken"].as_str().unwrap().to_owned());
    // The access token is revoked: token-client gets a new one and retries.
    emu.control().revoke_access_tokens();
    let (status, body) = get_jwt(customer.clone()).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    jwts.push(answer["jwtToken"].as_str().unwrap().to_owned());
    // Failures: AXP unavailable, a customer id over the limit, a malformed body, OAuth down.
    emu.control().fail_next(Route::TokenApi, 503, 5);
    error_bodies.push(get_jwt(customer.clone()).await);
    emu.control().clear_faults();
    let long = json!({"customerId": "x".repeat(300)}).to_string();
    error_bodies.push(get_jwt(long).await);
    error_bodies.push(get_jwt("{\"customerId\":".to_owned()).await);
    emu.control().revoke_access_tokens();
    emu.control().fail_next(Route::OAuth, 401, 5);
    error_bodies.push(get_jwt(customer).await);
    let statuses: Vec<u16> = error_bodies.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [502, 400, 400, 502], "{error_bodies:?}");
    let creds = emu.credentials().clone();
    emu.shutdown().await;

    let logs = buffer.text();
    assert!(
        logs.contains("TRACE") && logs.contains("getJWT failed"),
        "capture works:\n{logs}"
    );
    let mut secrets = vec![creds.client_secret.clone(), creds.appkey.clone()];
    for jwt in &jwts {
        secrets.push(jwt.clone());
        secrets.push(jwt.rsplit('.').next().unwrap().to_owned());
    }
    for secret in &secrets {
        for line in logs.lines() {
            assert!(
                !line.contains(secret.as_str()),
                "a secret in a log line: {line}"
            );
        }
        for (_, body) in &error_bodies {
            assert!(!body.contains(secret.as_str()), "a secret in: {body}");
        }
    }
}
