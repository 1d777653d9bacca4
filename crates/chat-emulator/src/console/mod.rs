//! The agent console: a web page, served by the emulator on its own port at `/console`, in
//! which a person plays the contact center (see docs/emulator.md, *The console*).
//!
//! The page is plain HTML, CSS and ES modules built into the binary. Its API,
//! `/console/api/…`, is the control API's own set of operations
//! ([`crate::control_http::operations`]) behind the console's guard:
//!
//! - the listener is on loopback unless configured otherwise, and then every API request
//!   needs the console secret (`x-console-secret`);
//! - on loopback the `Host` header must name the loopback address (DNS rebinding);
//! - every API request carries the per-start CSRF token delivered in the page
//!   (`x-console-csrf`), and a state-changing one must come from the console's own origin
//!   (`Origin`, `Sec-Fetch-Site`); no CORS is answered, so other sites read nothing;
//! - responses carry a Content-Security-Policy of `'self'` only, and are not cached.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use tokio::task::JoinHandle;

use crate::StartError;
use crate::control_http::{Granted, operations};
use crate::problem::ApiError;
use crate::state::Inner;

const INDEX: &str = include_str!("assets/index.html");
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/api.js"),
    ),
    (
        "view.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/view.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    ),
];

/// The header that carries the console secret.
pub(crate) const SECRET_HEADER: &str = "x-console-secret";
/// The header that carries the CSRF token.
pub(crate) const CSRF_HEADER: &str = "x-console-csrf";

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A console being served.
pub(crate) struct Running {
    /// `http://HOST:PORT/console`.
    pub(crate) url: String,
    /// The secret the API needs, if any.
    pub(crate) secret: Option<String>,
    /// Whether the secret was generated (the caller should show it once).
    pub(crate) secret_generated: bool,
    pub(crate) task: JoinHandle<()>,
}

#[derive(Clone)]
struct Guard {
    csrf: Arc<str>,
    secret: Option<Arc<str>>,
    /// On loopback: the `Host` values accepted; elsewhere any (the secret guards).
    hosts: Option<Arc<[String]>>,
}

/// The console's listener, bound before the emulator starts serving.
pub(crate) struct Bound {
    tcp: tokio::net::TcpListener,
    local: SocketAddr,
}

/// Binds the console's listener; with `fallback`, a free port of the same address if
/// `listen` is taken.
pub(crate) async fn bind(listen: SocketAddr, fallback: bool) -> Result<Bound, StartError> {
    let tcp = match tokio::net::TcpListener::bind(listen).await {
        Ok(tcp) => tcp,
        Err(_) if fallback && listen.port() != 0 => {
            let free = SocketAddr::new(listen.ip(), 0);
            tokio::net::TcpListener::bind(free)
                .await
                .map_err(|source| StartError::Bind { addr: free, source })?
        }
        Err(source) => {
            return Err(StartError::Bind {
                addr: listen,
                source,
            });
        }
    };
    let local = tcp.local_addr().map_err(|source| StartError::Bind {
        addr: listen,
        source,
    })?;
    Ok(Bound { tcp, local })
}

/// Serves the console until the emulator shuts down. Off loopback a secret is required:
/// `secret`, or one generated here.
pub(crate) fn serve(inner: Arc<Inner>, bound: Bound, secret: Option<String>) -> Running {
    let Bound { tcp, local } = bound;
    let loopback = local.ip().is_loopback();
    let (secret, secret_generated) = match secret.filter(|s| !s.is_empty()) {
        Some(s) => (Some(s), false),
        None if loopback => (None, false),
        None => (Some(crate::util::random_token(18)), true),
    };
    let port = local.port();
    let host = match local.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    let hosts = loopback.then(|| {
        let hosts = vec![
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
            format!("{host}:{port}"),
        ];
        Arc::from(hosts)
    });
    let guard = Guard {
        csrf: Arc::from(crate::util::random_token(24)),
        secret: secret.as_deref().map(Arc::from),
        hosts,
    };
    let app = router(inner.clone(), guard);
    // The same accept loop as the API's: header and idle timeouts, a connection cap.
    let shutdown = inner.shutdown.subscribe();
    let task = tokio::spawn(crate::listen::serve(
        tcp,
        app,
        crate::listen::Limits::default(),
        None,
        shutdown,
    ));
    Running {
        url: format!("http://{host}:{port}/console"),
        secret,
        secret_generated,
        task,
    }
}

fn router(inner: Arc<Inner>, guard: Guard) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(page))
        .route("/console/assets/{file}", get(asset))
        .nest("/console/api", operations())
        .fallback(|| async { ApiError::not_found("No such resource").into_response() })
        .layer(axum::middleware::from_fn_with_state(guard, guard_layer))
        .layer(DefaultBodyLimit::max(crate::server::BODY_LIMIT))
        .with_state(inner)
}

/// The page, with the CSRF token and whether a secret is needed.
async fn page(request: Request) -> Response {
    let guard = request.extensions().get::<Guard>().cloned();
    let (csrf, login) = match &guard {
        Some(g) => (g.csrf.to_string(), g.secret.is_some()),
        None => (String::new(), true),
    };
    let html = INDEX
        .replace("{{CSRF}}", &csrf)
        .replace("{{LOGIN}}", if login { "required" } else { "none" });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        html,
    )
        .into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, body)) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static(kind))],
            *body,
        )
            .into_response(),
        None => ApiError::not_found("No such asset").into_response(),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Compares in time independent of where the strings differ.
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, byte) in b.iter().enumerate() {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ byte);
    }
    diff == 0
}

/// Why a request was refused by the guard, if it was.
fn refusal(guard: &Guard, request: &Request) -> Option<ApiError> {
    let headers = request.headers();
    let host = header_str(headers, "host").unwrap_or_default();
    if let Some(hosts) = &guard.hosts {
        if !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return Some(ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "The console answers only to its loopback address",
            ));
        }
    }
    if !request.uri().path().starts_with("/console/api/") {
        return None;
    }
    if let Some(secret) = &guard.secret {
        let ok = header_str(headers, SECRET_HEADER).is_some_and(|s| same_secret(s, secret));
        if !ok {
            return Some(ApiError::unauthorized("Console secret required"));
        }
    }
    let csrf_ok = header_str(headers, CSRF_HEADER).is_some_and(|t| same_secret(t, &guard.csrf));
    if !csrf_ok {
        return Some(ApiError::forbidden(
            "Missing or wrong CSRF token: reload the console",
        ));
    }
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    if !safe {
        if let Some(site) = header_str(headers, "sec-fetch-site") {
            if !matches!(site, "same-origin" | "none") {
                return Some(ApiError::forbidden("Cross-site request refused"));
            }
        }
        if let Some(origin) = header_str(headers, "origin") {
            if !origin.eq_ignore_ascii_case(&format!("http://{host}")) {
                return Some(ApiError::forbidden("Cross-origin request refused"));
            }
        }
    }
    None
}

async fn guard_layer(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let mut response = match refusal(&guard, &request) {
        Some(e) => e.into_response(),
        None => {
            request.extensions_mut().insert(Granted);
            request.extensions_mut().insert(guard);
            next.run(request).await
        }
    };
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("abcd", "abc"));
        assert!(!same_secret("", "abc"));
    }
}
