//! [`TokenClient`]: cached, single-flight access tokens and the Generate JWT Token API.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use tokio::sync::{Mutex, Semaphore};
use tracing::{Instrument as _, debug, debug_span, warn};

use crate::config::TokenClientConfig;
use crate::error::{ConfigError, Endpoint, ProblemDetails, TokenError};
use crate::jwt::ChatJwt;
use crate::request::{CustomerRequest, TokenRequestBody, validate_lifetime};
use crate::retry::{Clock, SystemClock, parse_retry_after};
use crate::secret::Secret;

/// Lifetime assumed for an access token whose response has no `expires_in`.
const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(300);
/// Longest lifetime believed for an access token (a bogus `expires_in` cannot pin one forever).
const MAX_EXPIRES_IN: Duration = Duration::from_secs(24 * 3600);
/// Longest refresh margin before an access token's expiry.
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Longest stretch of a non-JSON error body kept as problem detail.
const MAX_DETAIL_CHARS: usize = 300;

/// The error of a chat client's token provider: the same type as `chat_tokio::BoxError` and
/// `chat_blocking::BoxError`, named here so that token-client needs neither crate. The error
/// inside is a [`TokenError`] (`downcast_ref::<TokenError>()`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The future that [`TokenClient::provider`]'s closure returns: a chat JWT, `jwt.` included.
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<String, BoxError>> + Send + 'static>>;

/// Counters of what a [`TokenClient`] has done since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// HTTP requests sent to the OAuth token endpoint (retries included).
    pub oauth_requests: u64,
    /// HTTP requests sent to the Generate JWT Token API (retries included).
    pub token_requests: u64,
    /// Chat JWTs successfully issued.
    pub jwts_issued: u64,
}

/// The client for AXP's OAuth and Generate JWT Token APIs.
///
/// Cloning is cheap: clones share the HTTP connection pool and the access-token cache.
///
/// * The access token (OAuth2 client-credentials grant) is cached and refreshed shortly before
///   `expires_in` runs out (10 % of its lifetime early, at most 60 s early). Refreshes are
///   single-flight: however many calls find the cache cold at once, one OAuth request is made and
///   its outcome is shared, success or failure.
/// * A 401 from the token API drops the access token that failed (unless another call already
///   replaced it), fetches a new one and retries once.
/// * Connection errors, 5xx and 429 are retried per [`RetryPolicy`](crate::RetryPolicy), honouring
///   `Retry-After`; every HTTP call has the configured timeout.
/// * Requests are validated before any network call.
/// * No secret (client secret, appkey, access token, JWT) is ever logged or put in an error.
#[derive(Clone)]
pub struct TokenClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: TokenClientConfig,
    http: reqwest::Client,
    oauth_url: Url,
    tokens_url: Url,
    default_ttl_minutes: u64,
    clock: Arc<dyn Clock>,
    permits: Semaphore,
    cache: Mutex<CacheState>,
    /// Completed access-token fetches (success or failure), for sharing a failure single-flight.
    fetches_done: AtomicU64,
    generation: AtomicU64,
    oauth_requests: AtomicU64,
    token_requests: AtomicU64,
    jwts_issued: AtomicU64,
}

#[derive(Default)]
struct CacheState {
    current: Option<AccessToken>,
    /// The failure of the most recent fetch, tagged with its `fetches_done` number.
    last_failure: Option<(u64, TokenError)>,
}

#[derive(Clone)]
struct AccessToken {
    value: Secret,
    refresh_at: Instant,
    generation: u64,
}

/// One failed HTTP attempt, before the retry decision.
struct Failure {
    retryable: bool,
    retry_after: Option<Duration>,
    error: TokenError,
}

impl Failure {
    fn fatal(error: TokenError) -> Self {
        Self {
            retryable: false,
            retry_after: None,
            error,
        }
    }
}

#[derive(Deserialize)]
struct OAuthResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// An OAuth2 error body (RFC 6749 section 5.2).
#[derive(Deserialize)]
struct OAuthError {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JwtResponse {
    jwt_token: String,
}

/// Builds a [`TokenClient`] with a custom clock or HTTP client.
#[derive(Debug)]
#[must_use]
pub struct TokenClientBuilder {
    config: TokenClientConfig,
    clock: Arc<dyn Clock>,
    http: Option<reqwest::Client>,
}

impl TokenClientBuilder {
    /// Uses `clock` for access-token expiry and retry backoff (tests inject a manual clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses a preconfigured `reqwest::Client` instead of building one from the configuration's
    /// timeouts. Redirects should be disabled on it (the client sends credentials in headers).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Checks the configuration and builds the client. No network call is made.
    pub fn build(self) -> Result<TokenClient, TokenError> {
        let config = self.config;
        config.validate()?;
        let oauth_url = config.oauth_url()?;
        let tokens_url = config.tokens_url()?;
        let default_ttl_minutes = validate_lifetime(config.default_lifetime)?;
        let http = match self.http {
            Some(http) => http,
            None => {
                let mut builder = reqwest::Client::builder()
                    .timeout(config.request_timeout)
                    .connect_timeout(config.connect_timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("axp-token-client/", env!("CARGO_PKG_VERSION")));
                if let Some(path) = &config.ca_cert_file {
                    let pem = std::fs::read(path).map_err(|e| ConfigError::Io {
                        path: path.display().to_string(),
                        source: e,
                    })?;
                    let certificate =
                        reqwest::Certificate::from_pem(&pem).map_err(|e| ConfigError::Invalid {
                            field: "ca_cert_file",
                            reason: e.to_string(),
                        })?;
                    builder = builder.add_root_certificate(certificate);
                }
                builder.build().map_err(|e| ConfigError::Invalid {
                    field: "http_client",
                    reason: e.to_string(),
                })?
            }
        };
        debug!(
            %oauth_url,
            %tokens_url,
            client_id = %config.client_id,
            "token client configured"
        );
        Ok(TokenClient {
            inner: Arc::new(Inner {
                permits: Semaphore::new(config.max_concurrency),
                config,
                http,
                oauth_url,
                tokens_url,
                default_ttl_minutes,
                clock: self.clock,
                cache: Mutex::new(CacheState::default()),
                fetches_done: AtomicU64::new(0),
                generation: AtomicU64::new(0),
                oauth_requests: AtomicU64::new(0),
                token_requests: AtomicU64::new(0),
                jwts_issued: AtomicU64::new(0),
            }),
        })
    }
}

impl fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClient")
            .field("oauth_url", &self.inner.oauth_url.as_str())
            .field("tokens_url", &self.inner.tokens_url.as_str())
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl TokenClient {
    /// Checks `config` and builds a client with the system clock. No network call is made.
    pub fn new(config: TokenClientConfig) -> Result<Self, TokenError> {
        Self::builder(config).build()
    }

    /// A builder, for a custom [`Clock`] or `reqwest::Client`.
    pub fn builder(config: TokenClientConfig) -> TokenClientBuilder {
        TokenClientBuilder {
            config,
            clock: Arc::new(SystemClock),
            http: None,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &TokenClientConfig {
        &self.inner.config
    }

    /// The appkey, for handing to a chat client together with its JWT.
    pub fn appkey(&self) -> &Secret {
        &self.inner.config.appkey
    }

    /// The chat integration id.
    pub fn integration_id(&self) -> &str {
        &self.inner.config.integration_id
    }

    /// What this client (and its clones) has done so far.
    pub fn stats(&self) -> ClientStats {
        ClientStats {
            oauth_requests: self.inner.oauth_requests.load(Ordering::Relaxed),
            token_requests: self.inner.token_requests.load(Ordering::Relaxed),
            jwts_issued: self.inner.jwts_issued.load(Ordering::Relaxed),
        }
    }

    /// Fetches an access token now if none is cached (for example at start-up, to fail fast on
    /// bad credentials).
    pub async fn warm_up(&self) -> Result<(), TokenError> {
        self.cached_access_token().await.map(drop)
    }

    /// The OAuth access token (cached, refreshed single-flight), for calling other AXP APIs of
    /// the account with the same credentials. Send it only to the configured API host.
    pub async fn access_token(&self) -> Result<Secret, TokenError> {
        self.cached_access_token().await.map(|t| t.value)
    }

    /// Drops the cached access token; the next call fetches a new one.
    pub async fn invalidate_access_token(&self) {
        self.inner.cache.lock().await.current = None;
    }

    /// Requests a chat JWT for `request`.
    ///
    /// The request is validated first ([`TokenError::Validation`], nothing sent); the JWT lifetime
    /// is the request's, or the configured default.
    pub async fn generate_jwt(&self, request: &CustomerRequest) -> Result<ChatJwt, TokenError> {
        request.validate()?;
        let ttl = match request.requested_lifetime() {
            Some(lifetime) => validate_lifetime(lifetime)?,
            None => self.inner.default_ttl_minutes,
        };
        let span = debug_span!("generate_jwt", verified = request.is_verified(), ttl);
        async move {
            let body = TokenRequestBody::new(request, &self.inner.config.integration_id, ttl);
            let token = self.cached_access_token().await?;
            let result = match self.post_jwt(&token, &body).await {
                Err(TokenError::Http { status: 401, .. }) => {
                    debug!("token API rejected the access token; refreshing once");
                    self.invalidate(token.generation).await;
                    let token = self.cached_access_token().await?;
                    self.post_jwt(&token, &body).await
                }
                other => other,
            };
            if let Ok(jwt) = &result {
                self.inner.jwts_issued.fetch_add(1, Ordering::Relaxed);
                let expires_at_unix = jwt
                    .expires_at
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                debug!(expires_at_unix, "chat JWT issued");
            }
            result
        }
        .instrument(span)
        .await
    }

    /// A token provider for the chat client, for one customer: each call mints a fresh chat
    /// JWT for `customer` and answers its text. The access token stays cached in this client
    /// (and its clones), and the chat client never sees the client secret: it holds only this
    /// closure. `chat_tokio::ClientBuilder::token_provider` takes it as it is:
    ///
    /// ```text
    /// chat_tokio::Client::builder(host, tokens.integration_id(), tokens.appkey().expose())
    ///     .token_provider(tokens.provider(CustomerRequest::verified("customer-42")))
    /// ```
    ///
    /// A closure of this shape is what the chat clients' `TokenProvider` accepts; this example
    /// calls it as the client would, against the emulator:
    ///
    /// ```
    /// use token_client::{CustomerRequest, TokenClient, TokenClientConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), token_client::BoxError> {
    /// # let emulator = chat_emulator::Emulator::builder().start().await?;
    /// # let c = emulator.credentials();
    /// # let config = TokenClientConfig::new(emulator.base_url(), c.account_id.clone(),
    /// #     c.client_id.clone(), c.client_secret.clone(), c.appkey.clone(), c.integration_id.clone());
    /// let tokens = TokenClient::new(config)?;
    /// let provider = tokens.provider(CustomerRequest::verified("customer-42").name("Alice"));
    /// // What the chat client does at connect and before each expiry:
    /// let first = provider().await?;
    /// let second = provider().await?;
    /// assert!(first.starts_with("jwt.") && second.starts_with("jwt."));
    /// // Two chat JWTs, one access token.
    /// assert_eq!(tokens.stats().oauth_requests, 1);
    /// # emulator.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn provider(
        &self,
        customer: CustomerRequest,
    ) -> impl Fn() -> TokenFuture + Clone + Send + Sync + 'static {
        let client = self.clone();
        let customer = Arc::new(customer);
        move || {
            let client = client.clone();
            let customer = Arc::clone(&customer);
            Box::pin(async move {
                client
                    .generate_jwt(&customer)
                    .await
                    .map(|jwt| jwt.token.expose().to_owned())
                    .map_err(BoxError::from)
            })
        }
    }

    /// The cached access token, or a new one (single-flight).
    async fn cached_access_token(&self) -> Result<AccessToken, TokenError> {
        let inner = &self.inner;
        let seen = inner.fetches_done.load(Ordering::Acquire);
        let mut state = inner.cache.lock().await;
        if let Some(token) = &state.current {
            if inner.clock.now() < token.refresh_at {
                return Ok(token.clone());
            }
        }
        // A fetch that completed while we queued failed: share its outcome instead of repeating it.
        if let Some((number, error)) = &state.last_failure {
            if *number > seen {
                return Err(duplicate(error));
            }
        }
        let result = self.fetch_access_token().await;
        let number = inner.fetches_done.fetch_add(1, Ordering::AcqRel) + 1;
        match result {
            Ok(token) => {
                state.current = Some(token.clone());
                state.last_failure = None;
                Ok(token)
            }
            Err(error) => {
                state.current = None;
                state.last_failure = Some((number, duplicate(&error)));
                Err(error)
            }
        }
    }

    /// Drops the cached token if it is still the one of `generation`.
    async fn invalidate(&self, generation: u64) {
        let mut state = self.inner.cache.lock().await;
        if state
            .current
            .as_ref()
            .is_some_and(|t| t.generation == generation)
        {
            state.current = None;
        }
    }

    async fn fetch_access_token(&self) -> Result<AccessToken, TokenError> {
        let inner = &self.inner;
        let config = &inner.config;
        debug!(url = %inner.oauth_url, "fetching access token");
        self.with_retries(Endpoint::OAuth, || async {
            let requested_at = inner.clock.now();
            inner.oauth_requests.fetch_add(1, Ordering::Relaxed);
            let request = inner
                .http
                .post(inner.oauth_url.clone())
                .header("appkey", config.appkey.expose())
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", config.client_id.as_str()),
                    ("client_secret", config.client_secret.expose()),
                ]);
            let (status, headers, body) = self.send(Endpoint::OAuth, request).await?;
            if !status.is_success() {
                return Err(self.status_failure(Endpoint::OAuth, status, &headers, &body, None));
            }
            let parsed: OAuthResponse = serde_json::from_slice(&body).map_err(|e| {
                Failure::fatal(TokenError::InvalidResponse {
                    endpoint: Endpoint::OAuth,
                    reason: format!("not an access token response ({:?})", e.classify()),
                })
            })?;
            if parsed.access_token.is_empty() {
                return Err(Failure::fatal(TokenError::InvalidResponse {
                    endpoint: Endpoint::OAuth,
                    reason: "empty access_token".into(),
                }));
            }
            let lifetime = parsed
                .expires_in
                .map_or(DEFAULT_EXPIRES_IN, Duration::from_secs)
                .min(MAX_EXPIRES_IN);
            let margin = (lifetime / 10).min(MAX_REFRESH_MARGIN);
            let generation = inner.generation.fetch_add(1, Ordering::Relaxed) + 1;
            debug!(
                expires_in_s = lifetime.as_secs(),
                generation, "access token obtained"
            );
            Ok(AccessToken {
                value: Secret::new(parsed.access_token),
                refresh_at: requested_at + (lifetime - margin),
                generation,
            })
        })
        .await
    }

    async fn post_jwt(
        &self,
        token: &AccessToken,
        body: &TokenRequestBody<'_>,
    ) -> Result<ChatJwt, TokenError> {
        let inner = &self.inner;
        self.with_retries(Endpoint::TokenApi, || async {
            inner.token_requests.fetch_add(1, Ordering::Relaxed);
            let request = inner
                .http
                .post(inner.tokens_url.clone())
                .bearer_auth(token.value.expose())
                .header("appkey", inner.config.appkey.expose())
                .json(body);
            let (status, headers, bytes) = self.send(Endpoint::TokenApi, request).await?;
            if !status.is_success() {
                return Err(self.status_failure(
                    Endpoint::TokenApi,
                    status,
                    &headers,
                    &bytes,
                    Some(&token.value),
                ));
            }
            let invalid = |reason: &str| {
                Failure::fatal(TokenError::InvalidResponse {
                    endpoint: Endpoint::TokenApi,
                    reason: reason.to_owned(),
                })
            };
            let parsed: JwtResponse = serde_json::from_slice(&bytes)
                .map_err(|_| invalid("body is not {\"jwtToken\": ...}"))?;
            ChatJwt::parse(&parsed.jwt_token)
                .ok_or_else(|| invalid("jwtToken is not a `jwt.` token with a numeric exp claim"))
        })
        .await
    }

    async fn with_retries<T, F, Fut>(
        &self,
        endpoint: Endpoint,
        mut attempt: F,
    ) -> Result<T, TokenError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let policy = self.inner.config.retry;
        let mut made = 0u32;
        loop {
            made += 1;
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(failure) if failure.retryable && made < policy.max_attempts => {
                    let delay = policy.delay(made - 1, failure.retry_after);
                    warn!(
                        %endpoint,
                        attempt = made,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        error = %failure.error,
                        "call failed; retrying"
                    );
                    self.inner.clock.sleep(delay).await;
                }
                Err(failure) if failure.retryable && made > 1 => {
                    warn!(%endpoint, attempts = made, error = %failure.error, "giving up");
                    return Err(TokenError::RetriesExhausted {
                        endpoint,
                        attempts: made,
                        last: Box::new(failure.error),
                    });
                }
                Err(failure) => return Err(failure.error),
            }
        }
    }

    async fn send(
        &self,
        endpoint: Endpoint,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), Failure> {
        // The semaphore is never closed, so acquiring only waits.
        let _permit = self.inner.permits.acquire().await.ok();
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_failure(endpoint, &e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_failure(endpoint, &e))?;
        Ok((status, headers, body.to_vec()))
    }

    fn transport_failure(&self, endpoint: Endpoint, error: &reqwest::Error) -> Failure {
        if error.is_timeout() {
            return Failure::fatal(TokenError::Timeout {
                endpoint,
                timeout: self.inner.config.request_timeout,
            });
        }
        let message = self.scrub(chain_text(error), None);
        // Only failures that may pass are retried: a certificate the client does not trust,
        // or a host name that does not resolve, gives the same answer a moment later.
        let error = match classify(error) {
            Cause::Certificate => TokenError::UntrustedCertificate { endpoint, message },
            Cause::Dns => TokenError::HostNotFound { endpoint, message },
            Cause::Other => {
                return Failure {
                    retryable: true,
                    retry_after: None,
                    error: TokenError::Transport { endpoint, message },
                };
            }
        };
        Failure::fatal(error)
    }

    fn status_failure(
        &self,
        endpoint: Endpoint,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        access_token: Option<&Secret>,
    ) -> Failure {
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let problem = match serde_json::from_slice::<ProblemDetails>(body) {
            // An OAuth error (RFC 6749 5.2) instead of a problem document.
            Ok(problem) if problem.title.is_none() && problem.detail.is_none() => {
                match serde_json::from_slice::<OAuthError>(body) {
                    Ok(oauth) if oauth.error.is_some() => Some(ProblemDetails {
                        title: oauth.error,
                        detail: oauth.error_description,
                        status: problem.status.or(Some(status.as_u16())),
                        ..problem
                    }),
                    _ => Some(problem),
                }
            }
            Ok(problem) => Some(problem),
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                (!text.is_empty()).then(|| ProblemDetails {
                    detail: Some(text.chars().take(MAX_DETAIL_CHARS).collect()),
                    ..ProblemDetails::default()
                })
            }
        }
        .map(|p| Box::new(self.scrub_problem(p, access_token)));
        Failure {
            retryable: status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS,
            retry_after,
            error: TokenError::Http {
                endpoint,
                status: status.as_u16(),
                problem,
            },
        }
    }

    fn scrub_problem(
        &self,
        mut p: ProblemDetails,
        access_token: Option<&Secret>,
    ) -> ProblemDetails {
        let fix = |s: Option<String>| s.map(|s| self.scrub(s, access_token));
        p.problem_type = fix(p.problem_type);
        p.title = fix(p.title);
        p.detail = fix(p.detail);
        p.instance = fix(p.instance);
        for v in &mut p.violations {
            v.field = fix(v.field.take());
            v.message = fix(v.message.take());
        }
        p
    }

    /// Removes any secret the service may have echoed back.
    fn scrub(&self, mut text: String, access_token: Option<&Secret>) -> String {
        let config = &self.inner.config;
        for secret in [
            Some(&config.client_secret),
            Some(&config.appkey),
            access_token,
        ]
        .into_iter()
        .flatten()
        {
            let s = secret.expose();
            if !s.is_empty() && text.contains(s) {
                text = text.replace(s, "[redacted]");
            }
        }
        text
    }
}

/// Re-creates an error for sharing one failed fetch with every caller that waited on it.
fn duplicate(error: &TokenError) -> TokenError {
    match error {
        TokenError::Validation(v) => TokenError::Validation(v.clone()),
        TokenError::Config(c) => TokenError::Config(match c {
            ConfigError::Missing(f) => ConfigError::Missing(f),
            ConfigError::Invalid { field, reason } => ConfigError::Invalid {
                field,
                reason: reason.clone(),
            },
            ConfigError::InsecureUrl => ConfigError::InsecureUrl,
            ConfigError::Io { path, source } => ConfigError::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            ConfigError::Parse { path, message } => ConfigError::Parse {
                path: path.clone(),
                message: message.clone(),
            },
        }),
        TokenError::Http {
            endpoint,
            status,
            problem,
        } => TokenError::Http {
            endpoint: *endpoint,
            status: *status,
            problem: problem.clone(),
        },
        TokenError::Transport { endpoint, message } => TokenError::Transport {
            endpoint: *endpoint,
            message: message.clone(),
        },
        TokenError::UntrustedCertificate { endpoint, message } => {
            TokenError::UntrustedCertificate {
                endpoint: *endpoint,
                message: message.clone(),
            }
        }
        TokenError::HostNotFound { endpoint, message } => TokenError::HostNotFound {
            endpoint: *endpoint,
            message: message.clone(),
        },
        TokenError::Timeout { endpoint, timeout } => TokenError::Timeout {
            endpoint: *endpoint,
            timeout: *timeout,
        },
        TokenError::RetriesExhausted {
            endpoint,
            attempts,
            last,
        } => TokenError::RetriesExhausted {
            endpoint: *endpoint,
            attempts: *attempts,
            last: Box::new(duplicate(last)),
        },
        TokenError::InvalidResponse { endpoint, reason } => TokenError::InvalidResponse {
            endpoint: *endpoint,
            reason: reason.clone(),
        },
        TokenError::BlockingInAsyncContext => TokenError::BlockingInAsyncContext,
    }
}

/// What a failed connection was, as far as the retry decision goes.
#[derive(Debug, PartialEq, Eq)]
enum Cause {
    /// rustls refused the server's certificate.
    Certificate,
    /// The host name did not resolve.
    Dns,
    /// Anything else (refused, reset, a handshake that broke): possibly transient.
    Other,
}

/// Walks the error's causes: a `rustls::Error` refusing the certificate (found through
/// `std::io::Error` too, how a TLS stream reports it), or hyper-util's "dns error".
fn classify(error: &(dyn std::error::Error + 'static)) -> Cause {
    let mut next = Some(error);
    // Bounded: a chain of causes is short, and a cyclic one must not hang.
    for _ in 0..32 {
        let Some(e) = next else { break };
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            if matches!(
                tls,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            ) {
                return Cause::Certificate;
            }
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            let inner = classify(inner);
            if inner != Cause::Other {
                return inner;
            }
        }
        // hyper-util's connector names its resolver failures so; its type is private.
        if e.to_string().starts_with("dns error") {
            return Cause::Dns;
        }
        next = e.source();
    }
    Cause::Other
}

/// The error and its causes, each once: HTTP clients often repeat a cause's text in its
/// wrapper's ("tcp connect error: Connection refused: Connection refused").
fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    for _ in 0..32 {
        let Some(cause) = source else { break };
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}
