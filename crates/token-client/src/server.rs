//! The reference backend server (feature `server`): the endpoint a web page or app calls for its
//! chat token.
//!
//! It speaks the same contract as AXP's sample backend, so existing chat widgets work with it:
//!
//! * `POST /v1/getJWT` with `{customerId, customerName?, verifiedCustomer, customerIdentifiers?}`
//!   answers `200 {jwtToken, appkey}`;
//! * `GET /v1/getIntegration` answers the integration id as plain text.
//!
//! Unlike the sample, it caches the access token, never logs a secret, takes its configuration
//! only from its file and the environment (never from a request), answers failures with
//! problem+json (400 for invalid input, 401/403 from the authenticator, 502/504 for AXP
//! failures), and lets the application decide who is verified through a
//! [`CustomerAuthenticator`].
//!
//! ```
//! use std::sync::Arc;
//! use token_client::server::{self, TrustClientClaims};
//! use token_client::{TokenClient, TokenClientConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = TokenClientConfig::new(
//!     "https://na.api.avayacloud.com", "ABCDEF", "client", "secret", "appkey",
//!     "0b1d0e7a-4bb0-4a9f-8a0c-7f1e2f3a4b5c",
//! );
//! let client = TokenClient::new(config)?;
//! let origins = vec!["https://shop.example.com".to_owned()];
//! let app: axum::Router = server::router(client, Arc::new(TrustClientClaims), &origins)?;
//! # drop(app);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::{info, warn};

use crate::config::{ConfigValues, parse_file, parse_u64};
use crate::error::{ConfigError, Endpoint, TokenError};
use crate::{CustomerRequest, TokenClient, TokenClientConfig};

mod listen;

pub use listen::{ConnectionLimits, serve};

/// The body of `POST /v1/getJWT`, as AXP's sample widgets send it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetJwtRequest {
    /// The customer id the page claims.
    pub customer_id: String,
    /// The display name.
    #[serde(default)]
    pub customer_name: Option<String>,
    /// Whether the page claims the customer is verified. Only a [`CustomerAuthenticator`]
    /// decides whether that is believed.
    #[serde(default, deserialize_with = "bool_or_string")]
    pub verified_customer: bool,
    /// Identifiers such as `emailAddresses` and `phoneNumbers`.
    #[serde(default)]
    pub customer_identifiers: Option<BTreeMap<String, Vec<String>>>,
}

/// Accepts `true`/`false` as JSON booleans or strings (some widgets send form values as text).
fn bool_or_string<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Text(String),
        Null(()),
    }
    match Flag::deserialize(deserializer)? {
        Flag::Bool(b) => Ok(b),
        Flag::Null(()) => Ok(false),
        Flag::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" | "" => Ok(false),
            _ => Err(serde::de::Error::custom(
                "verifiedCustomer must be true or false",
            )),
        },
    }
}

/// The answer of `POST /v1/getJWT`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GetJwtResponse<'a> {
    jwt_token: &'a str,
    appkey: &'a str,
}

/// A refusal from a [`CustomerAuthenticator`], answered as problem+json.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// The HTTP status (typically 401 or 403).
    pub status: StatusCode,
    /// Why, shown to the caller.
    pub detail: String,
}

impl Rejection {
    /// 401: the caller is not signed in.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            detail: detail.into(),
        }
    }

    /// 403: the caller may not have this token.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            detail: detail.into(),
        }
    }
}

/// A boxed future returned by [`CustomerAuthenticator::authenticate`].
pub type AuthFuture<'a> =
    Pin<Box<dyn Future<Output = Result<CustomerRequest, Rejection>> + Send + 'a>>;

/// The hook where the application's own user authentication decides who a token is for.
///
/// It sees the request's headers (session cookie, `Authorization`, ...) and body, and returns
/// the [`CustomerRequest`] to issue a JWT for, or a [`Rejection`]. A real implementation looks
/// the session up, and returns [`CustomerRequest::verified`] with the customer id and
/// identifiers from *its own records* for a signed-in user, and [`CustomerRequest::guest`] (or a
/// rejection) otherwise, ignoring what the page claims.
///
/// ```
/// use token_client::CustomerRequest;
/// use token_client::server::{AuthFuture, CustomerAuthenticator, GetJwtRequest, Rejection};
/// use axum::http::HeaderMap;
///
/// /// Trusts a session cookie `sid=<customer id>` (a stand-in for a real session lookup).
/// struct SessionCookie;
///
/// impl CustomerAuthenticator for SessionCookie {
///     fn authenticate<'a>(&'a self, headers: &'a HeaderMap, body: &'a GetJwtRequest) -> AuthFuture<'a> {
///         Box::pin(async move {
///             let cookie = headers.get("cookie").and_then(|v| v.to_str().ok()).unwrap_or("");
///             match cookie.strip_prefix("sid=") {
///                 Some(id) => Ok(CustomerRequest::verified(id).name(body.customer_name.clone().unwrap_or_default())),
///                 None => Ok(CustomerRequest::guest()),
///             }
///         })
///     }
/// }
/// ```
pub trait CustomerAuthenticator: Send + Sync + 'static {
    /// Decides who the JWT is for.
    fn authenticate<'a>(
        &'a self,
        headers: &'a HeaderMap,
        body: &'a GetJwtRequest,
    ) -> AuthFuture<'a>;
}

/// The permissive demo default: believes the page's `verifiedCustomer` claim, as AXP's sample
/// backend does. Anyone can then get a verified token for any customer id: use it only for
/// demos and development.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrustClientClaims;

impl CustomerAuthenticator for TrustClientClaims {
    fn authenticate<'a>(
        &'a self,
        _headers: &'a HeaderMap,
        body: &'a GetJwtRequest,
    ) -> AuthFuture<'a> {
        Box::pin(async move {
            let mut request = if body.verified_customer {
                CustomerRequest::verified(body.customer_id.clone())
            } else {
                CustomerRequest::unverified(body.customer_id.clone())
            };
            if let Some(name) = body.customer_name.as_ref().filter(|n| !n.is_empty()) {
                request = request.name(name.clone());
            }
            for (key, values) in body.customer_identifiers.iter().flatten() {
                request = request.identifier_values(key.clone(), values.iter().cloned());
            }
            Ok(request)
        })
    }
}

/// The safe default without application authentication: every caller is an unverified customer
/// under the id the page sent, with its display name, and no identifiers.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuestsOnly;

impl CustomerAuthenticator for GuestsOnly {
    fn authenticate<'a>(
        &'a self,
        _headers: &'a HeaderMap,
        body: &'a GetJwtRequest,
    ) -> AuthFuture<'a> {
        Box::pin(async move {
            let mut request = CustomerRequest::unverified(body.customer_id.clone());
            if let Some(name) = body.customer_name.as_ref().filter(|n| !n.is_empty()) {
                request = request.name(name.clone());
            }
            Ok(request)
        })
    }
}

/// Which built-in authenticator the binary uses (`auth_mode` / `AXP_AUTH_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum AuthMode {
    /// [`TrustClientClaims`] (demo).
    #[default]
    DemoTrustClient,
    /// [`GuestsOnly`].
    GuestsOnly,
}

impl AuthMode {
    /// The authenticator for this mode.
    pub fn authenticator(self) -> Arc<dyn CustomerAuthenticator> {
        match self {
            AuthMode::DemoTrustClient => Arc::new(TrustClientClaims),
            AuthMode::GuestsOnly => Arc::new(GuestsOnly),
        }
    }
}

/// The reference server's configuration: the token client's settings plus its own.
///
/// Loaded by [`ServerConfig::load`] from a JSON/TOML file (same keys as
/// [`TokenClientConfig`], plus `listen`, `allowed_origins`, `auth_mode`, `header_read_timeout_ms`,
/// `idle_timeout_ms` and `max_connections`), then overridden by environment variables (`AXP_*`
/// as for [`TokenClientConfig::from_env`], plus `AXP_LISTEN`, `AXP_ALLOWED_ORIGINS` as a
/// comma-separated list, `AXP_AUTH_MODE`, `AXP_HEADER_READ_TIMEOUT_MS`, `AXP_IDLE_TIMEOUT_MS`
/// and `AXP_MAX_CONNECTIONS`).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The address to listen on (default `127.0.0.1:3000`).
    pub listen: SocketAddr,
    /// The CORS allow-list: exact origins such as `https://shop.example.com`, or `*` for any.
    /// Empty: no CORS headers (same-origin pages only).
    pub allowed_origins: Vec<String>,
    /// Which built-in authenticator the binary uses.
    pub auth_mode: AuthMode,
    /// Timeouts and the connection cap of the binary's [`serve`].
    pub limits: ConnectionLimits,
    /// The token client's configuration.
    pub token: TokenClientConfig,
}

#[derive(Deserialize)]
struct ServerFile {
    #[serde(default)]
    listen: Option<String>,
    #[serde(default, alias = "allowedOrigins")]
    allowed_origins: Option<Vec<String>>,
    #[serde(default, alias = "authMode")]
    auth_mode: Option<AuthMode>,
    #[serde(default, alias = "headerReadTimeoutMs")]
    header_read_timeout_ms: Option<u64>,
    #[serde(default, alias = "idleTimeoutMs")]
    idle_timeout_ms: Option<u64>,
    #[serde(default, alias = "maxConnections")]
    max_connections: Option<u64>,
    #[serde(flatten)]
    token: ConfigValues,
}

impl ServerConfig {
    /// Loads the file at `path` (if any), then applies the process environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(path, |name| std::env::var(name).ok())
    }

    /// As [`ServerConfig::load`], reading variables through `lookup`.
    pub fn load_with(
        path: Option<&Path>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut file = match path {
            Some(path) => parse_file::<ServerFile>(path)?,
            None => ServerFile {
                listen: None,
                allowed_origins: None,
                auth_mode: None,
                header_read_timeout_ms: None,
                idle_timeout_ms: None,
                max_connections: None,
                token: ConfigValues::default(),
            },
        };
        file.token.apply_env(&lookup)?;
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if let Some(listen) = get("AXP_LISTEN") {
            file.listen = Some(listen);
        }
        if let Some(origins) = get("AXP_ALLOWED_ORIGINS") {
            file.allowed_origins = Some(
                origins
                    .split(',')
                    .map(|o| o.trim().to_owned())
                    .filter(|o| !o.is_empty())
                    .collect(),
            );
        }
        if let Some(mode) = get("AXP_AUTH_MODE") {
            file.auth_mode = Some(match mode.trim() {
                "demo-trust-client" => AuthMode::DemoTrustClient,
                "guests-only" => AuthMode::GuestsOnly,
                _ => {
                    return Err(ConfigError::Invalid {
                        field: "auth_mode",
                        reason: "expected `demo-trust-client` or `guests-only`".into(),
                    });
                }
            });
        }
        if let Some(v) = get("AXP_HEADER_READ_TIMEOUT_MS") {
            file.header_read_timeout_ms = Some(parse_u64("header_read_timeout_ms", &v)?);
        }
        if let Some(v) = get("AXP_IDLE_TIMEOUT_MS") {
            file.idle_timeout_ms = Some(parse_u64("idle_timeout_ms", &v)?);
        }
        if let Some(v) = get("AXP_MAX_CONNECTIONS") {
            file.max_connections = Some(parse_u64("max_connections", &v)?);
        }
        let positive = |field: &'static str, value: Option<u64>| match value {
            Some(0) => Err(ConfigError::Invalid {
                field,
                reason: "must be at least 1".into(),
            }),
            other => Ok(other),
        };
        let defaults = ConnectionLimits::default();
        let limits = ConnectionLimits {
            header_read_timeout: positive("header_read_timeout_ms", file.header_read_timeout_ms)?
                .map_or(defaults.header_read_timeout, Duration::from_millis),
            idle_timeout: positive("idle_timeout_ms", file.idle_timeout_ms)?
                .map_or(defaults.idle_timeout, Duration::from_millis),
            max_connections: positive("max_connections", file.max_connections)?
                .map_or(defaults.max_connections, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                }),
        };
        let listen = file
            .listen
            .as_deref()
            .unwrap_or("127.0.0.1:3000")
            .parse()
            .map_err(|_| ConfigError::Invalid {
                field: "listen",
                reason: "expected an address such as 127.0.0.1:3000".into(),
            })?;
        let allowed_origins = file.allowed_origins.unwrap_or_default();
        cors_layer(&allowed_origins)?;
        Ok(Self {
            listen,
            allowed_origins,
            auth_mode: file.auth_mode.unwrap_or_default(),
            limits,
            token: file.token.into_config()?,
        })
    }
}

#[derive(Clone)]
struct AppState {
    client: TokenClient,
    auth: Arc<dyn CustomerAuthenticator>,
}

/// The server's routes over `client`, with `auth` deciding who tokens are for and a CORS layer
/// for `allowed_origins` (`*` allows any origin; empty adds no CORS headers).
pub fn router(
    client: TokenClient,
    auth: Arc<dyn CustomerAuthenticator>,
    allowed_origins: &[String],
) -> Result<Router, ConfigError> {
    let router = Router::new()
        .route("/v1/getJWT", post(get_jwt))
        .route("/v1/getIntegration", get(get_integration))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(AppState { client, auth });
    Ok(match cors_layer(allowed_origins)? {
        Some(cors) => router.layer(cors),
        None => router,
    })
}

fn cors_layer(allowed_origins: &[String]) -> Result<Option<CorsLayer>, ConfigError> {
    if allowed_origins.is_empty() {
        return Ok(None);
    }
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .max_age(Duration::from_secs(600));
    if allowed_origins.iter().any(|o| o == "*") {
        return Ok(Some(base.allow_origin(AllowOrigin::any())));
    }
    let origins = allowed_origins
        .iter()
        .map(|o| {
            HeaderValue::from_str(o.trim_end_matches('/')).map_err(|_| ConfigError::Invalid {
                field: "allowed_origins",
                reason: format!("{o:?} is not a valid origin"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(
        base.allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true),
    ))
}

async fn get_integration(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        state.client.integration_id().to_owned(),
    )
}

async fn get_jwt(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<GetJwtRequest>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(rejection) => {
            // 413 for a body over the limit, 415 without a JSON content type, else 400.
            return problem(
                rejection.status(),
                "Invalid request body",
                &rejection.body_text(),
                Vec::new(),
            );
        }
    };
    let request = match state.auth.authenticate(&headers, &body).await {
        Ok(request) => request,
        Err(rejection) => {
            info!(
                status = rejection.status.as_u16(),
                "getJWT refused by the authenticator"
            );
            return problem(
                rejection.status,
                "Not allowed",
                &rejection.detail,
                Vec::new(),
            );
        }
    };
    match state.client.generate_jwt(&request).await {
        Ok(jwt) => (
            // A bearer credential: no cache may keep it.
            [(header::CACHE_CONTROL, "no-store")],
            Json(GetJwtResponse {
                jwt_token: jwt.token.expose(),
                appkey: state.client.appkey().expose(),
            }),
        )
            .into_response(),
        Err(error) => error_response(&error),
    }
}

fn error_response(error: &TokenError) -> Response {
    match error {
        TokenError::Validation(v) => problem(
            StatusCode::BAD_REQUEST,
            "Invalid customer",
            &v.to_string(),
            vec![
                serde_json::json!({ "field": v.field.to_string(), "message": v.rule.to_string() }),
            ],
        ),
        TokenError::Timeout { .. } => {
            warn!(%error, "getJWT failed");
            problem(
                StatusCode::GATEWAY_TIMEOUT,
                "AXP did not answer in time",
                "",
                Vec::new(),
            )
        }
        TokenError::Http {
            endpoint: Endpoint::TokenApi,
            status: 400,
            problem: details,
        } => problem(
            StatusCode::BAD_REQUEST,
            "Rejected by AXP",
            details
                .as_ref()
                .and_then(|d| d.detail.as_deref())
                .unwrap_or(""),
            Vec::new(),
        ),
        _ => {
            warn!(%error, "getJWT failed");
            problem(
                StatusCode::BAD_GATEWAY,
                "Could not obtain a chat token from AXP",
                "",
                Vec::new(),
            )
        }
    }
}

fn problem(
    status: StatusCode,
    title: &str,
    detail: &str,
    violations: Vec<serde_json::Value>,
) -> Response {
    let mut body = serde_json::json!({
        "type": "about:blank",
        "title": title,
        "status": status.as_u16(),
    });
    if !detail.is_empty() {
        body["detail"] = serde_json::Value::from(detail);
    }
    if !violations.is_empty() {
        body["violations"] = serde_json::Value::from(violations);
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}
