//! No secret (client secret, appkey, access token, JWT) ever reaches tracing output, `Debug`,
//! `Display` or an error, even when the service echoes them back.
#![allow(clippy::unwrap_used)]

mod common;

use common::LogBuffer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use token_client::{CustomerRequest, RetryPolicy, TokenClient, TokenClientConfig};

const CLIENT_SECRET: &str = "cs-7f3a9e1b-very-secret";
const APPKEY: &str = "ak-55d2c0ffee-appkey";
const ACCESS_TOKEN: &str = "at-0a1b2c3d4e5f-access";
const INTEGRATION: &str = "123e4567-e89b-12d3-a456-426614174000";
// payload {"exp":4102444800} (2100-01-01)
const JWT: &str = "jwt.eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2lnbmF0dXJlLXNlY3JldA";

/// What the mock service does next on the token API.
#[derive(Default)]
struct Mock {
    token_mode: AtomicU32,
    oauth_mode: AtomicU32,
}

const OK: u32 = 0;
const ECHO_400: u32 = 1;
const UNAUTHORIZED_ONCE: u32 = 2;
const UNAVAILABLE_TWICE: u32 = 3;
const UNAVAILABLE_ONCE: u32 = 4;

async fn oauth(State(mock): State<Arc<Mock>>, body: String) -> Response {
    if mock.oauth_mode.swap(OK, Ordering::SeqCst) == ECHO_400 {
        // A badly behaved service echoing the credentials it got.
        return (
            StatusCode::UNAUTHORIZED,
            [("content-type", "application/json")],
            format!(r#"{{"error":"invalid_client","error_description":"bad form {body} appkey {APPKEY}"}}"#),
        )
            .into_response();
    }
    (
        [("content-type", "application/json")],
        format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":900,"token_type":"Bearer"}}"#),
    )
        .into_response()
}

async fn tokens(State(mock): State<Arc<Mock>>, headers: HeaderMap) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let problem = |status: StatusCode, detail: String| {
        (
            status,
            [("content-type", "application/problem+json")],
            format!(r#"{{"type":"about:blank","title":"Nope","status":{},"detail":"{detail}","violations":[{{"field":"x","message":"{CLIENT_SECRET}"}}]}}"#, status.as_u16()),
        )
            .into_response()
    };
    match mock.token_mode.load(Ordering::SeqCst) {
        ECHO_400 => {
            mock.token_mode.store(OK, Ordering::SeqCst);
            problem(StatusCode::BAD_REQUEST, format!("{auth} appkey={APPKEY}"))
        }
        UNAUTHORIZED_ONCE => {
            mock.token_mode.store(OK, Ordering::SeqCst);
            problem(StatusCode::UNAUTHORIZED, format!("expired {auth}"))
        }
        UNAVAILABLE_TWICE => {
            mock.token_mode.store(UNAVAILABLE_ONCE, Ordering::SeqCst);
            problem(StatusCode::SERVICE_UNAVAILABLE, auth)
        }
        UNAVAILABLE_ONCE => {
            mock.token_mode.store(OK, Ordering::SeqCst);
            (
                StatusCode::BAD_GATEWAY,
                format!("upstream said {auth} {APPKEY}"),
            )
                .into_response()
        }
        _ => (
            StatusCode::CREATED,
            [("content-type", "application/json")],
            format!(r#"{{"jwtToken":"{JWT}"}}"#),
        )
            .into_response(),
    }
}

async fn mock_server() -> (String, Arc<Mock>) {
    let mock = Arc::new(Mock::default());
    let app = Router::new()
        .route(
            "/api/auth/v1/{account}/protocol/openid-connect/token",
            post(oauth),
        )
        .route(
            "/api/digital/chat/v1/accounts/{account}/tokens",
            post(tokens),
        )
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, mock)
}

fn assert_clean(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{what} leaks {secret:?}:\n{text}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn nothing_secret_in_traces_debug_display_or_errors() {
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,chat_emulator=off",
        ))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let secrets = [
        CLIENT_SECRET,
        APPKEY,
        ACCESS_TOKEN,
        JWT,
        "c2lnbmF0dXJlLXNlY3JldA",
    ];

    let (url, mock) = mock_server().await;
    let config = TokenClientConfig::new(
        url,
        "ABCDEF",
        "client-id",
        CLIENT_SECRET,
        APPKEY,
        INTEGRATION,
    )
    .with_retry(RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
        max_retry_after: Duration::from_millis(10),
    });
    let mut seen = vec![format!("{config:?}")];
    let client = TokenClient::new(config).unwrap();
    let verified = CustomerRequest::verified("customer-1")
        .name("Ann")
        .email("ann@example.com");

    // Success, then every failure path.
    let jwt = client.generate_jwt(&verified).await.unwrap();
    assert_eq!(jwt.token.expose(), JWT);
    seen.push(format!("{jwt:?} {} {:?}", jwt.token, jwt.token));

    mock.token_mode.store(ECHO_400, Ordering::SeqCst);
    let err = client.generate_jwt(&verified).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("[redacted]"), "{err}");
    seen.push(format!("{err} {err:?}"));

    mock.token_mode.store(UNAUTHORIZED_ONCE, Ordering::SeqCst);
    client.generate_jwt(&verified).await.unwrap();

    mock.token_mode.store(UNAVAILABLE_TWICE, Ordering::SeqCst);
    client.generate_jwt(&verified).await.unwrap();
    mock.token_mode.store(UNAVAILABLE_TWICE, Ordering::SeqCst);
    let err = client
        .generate_jwt(&CustomerRequest::guest())
        .await
        .map(|_| ())
        .map_err(|e| format!("{e} {e:?}"));
    seen.push(format!("{err:?}"));

    client.invalidate_access_token().await;
    mock.oauth_mode.store(ECHO_400, Ordering::SeqCst);
    let err = client.generate_jwt(&verified).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    seen.push(format!("{err} {err:?}"));

    let err = client
        .generate_jwt(&CustomerRequest::verified(""))
        .await
        .unwrap_err();
    seen.push(format!("{err} {err:?}"));
    seen.push(format!("{client:?} {:?}", client.appkey()));
    seen.push(format!("{} {:?}", client.appkey(), client.config()));

    // The same against the emulator, with its credentials.
    let emu = common::emulator().await;
    let (emu_client, _) = common::client(&emu);
    let emu_jwt = emu_client.generate_jwt(&verified).await.unwrap();
    emu.control()
        .fail_next(chat_emulator::Route::TokenApi, 503, 3);
    let err = emu_client.generate_jwt(&verified).await.unwrap_err();
    seen.push(format!("{err} {err:?} {emu_client:?} {emu_jwt:?}"));
    let creds = emu.credentials().clone();
    emu.shutdown().await;

    let traces = buffer.text();
    assert!(
        traces.contains("access token obtained"),
        "capture works:\n{traces}"
    );
    assert!(traces.contains("retrying"), "retries are logged:\n{traces}");
    let emu_secrets = [
        creds.client_secret.as_str(),
        creds.appkey.as_str(),
        emu_jwt.token.expose(),
    ];
    for text in seen.iter().chain(std::iter::once(&traces)) {
        assert_clean("output", text, &secrets);
        assert_clean("output", text, &emu_secrets);
    }
}
