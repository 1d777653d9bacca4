//! A blocking facade over the async [`crate::TokenClient`] (feature `blocking`).
//!
//! It runs the async client on a private one-worker Tokio runtime, so it has exactly the same
//! behaviour (single-flight cache, retries, redaction). Like `reqwest::blocking`, it must not be
//! called from inside an async runtime: such a call returns
//! [`TokenError::BlockingInAsyncContext`] instead of blocking a worker thread.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let rt = tokio::runtime::Runtime::new()?;
//! # let emulator = rt.block_on(chat_emulator::Emulator::builder().start())?;
//! # let c = emulator.credentials().clone();
//! use token_client::{CustomerRequest, TokenClientConfig, blocking};
//!
//! let config = TokenClientConfig::new(
//!     emulator.base_url(), c.account_id, c.client_id, c.client_secret, c.appkey, c.integration_id,
//! );
//! let client = blocking::TokenClient::new(config)?;
//! let jwt = client.generate_jwt(&CustomerRequest::verified("customer-42"))?;
//! assert!(jwt.token.expose().starts_with("jwt."));
//! # rt.block_on(emulator.shutdown());
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use crate::{
    BoxError, ChatJwt, ClientStats, ConfigError, CustomerRequest, Secret, TokenClientConfig,
    TokenError,
};

/// The blocking token client. Cloning is cheap; clones share the runtime and the cache.
#[derive(Clone)]
pub struct TokenClient {
    inner: crate::TokenClient,
    runtime: Arc<RuntimeOwner>,
}

struct RuntimeOwner(Option<tokio::runtime::Runtime>);

impl Drop for RuntimeOwner {
    fn drop(&mut self) {
        // Never panics, even when the last clone is dropped inside an async context.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("blocking::TokenClient")
            .field(&self.inner)
            .finish()
    }
}

/// Builds a blocking [`TokenClient`] with a custom clock or HTTP client: the twin of
/// [`crate::TokenClientBuilder`].
#[derive(Debug)]
#[must_use]
pub struct TokenClientBuilder {
    inner: crate::TokenClientBuilder,
}

impl TokenClientBuilder {
    /// Uses `clock` for access-token expiry and retry backoff (tests inject a manual clock).
    pub fn clock(self, clock: Arc<dyn crate::Clock>) -> Self {
        Self {
            inner: self.inner.clock(clock),
        }
    }

    /// Uses a preconfigured `reqwest::Client` (the async one: it runs on this client's own
    /// runtime) instead of building one from the configuration's timeouts. Redirects should
    /// be disabled on it (the client sends credentials in headers).
    pub fn http_client(self, http: reqwest::Client) -> Self {
        Self {
            inner: self.inner.http_client(http),
        }
    }

    /// Checks the configuration and builds the client and its runtime. No network call is
    /// made.
    pub fn build(self) -> Result<TokenClient, TokenError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("axp-token-client")
            .enable_all()
            .build()
            .map_err(|e| ConfigError::Invalid {
                field: "runtime",
                reason: e.to_string(),
            })?;
        let inner = {
            let _guard = runtime.enter();
            self.inner.build()?
        };
        Ok(TokenClient {
            inner,
            runtime: Arc::new(RuntimeOwner(Some(runtime))),
        })
    }
}

impl TokenClient {
    /// Checks `config` and builds the client and its runtime. No network call is made.
    pub fn new(config: TokenClientConfig) -> Result<Self, TokenError> {
        Self::builder(config).build()
    }

    /// A builder, for a custom [`Clock`](crate::Clock) or `reqwest::Client`.
    pub fn builder(config: TokenClientConfig) -> TokenClientBuilder {
        TokenClientBuilder {
            inner: crate::TokenClient::builder(config),
        }
    }

    /// Requests a chat JWT; see [`crate::TokenClient::generate_jwt`].
    pub fn generate_jwt(&self, request: &CustomerRequest) -> Result<ChatJwt, TokenError> {
        self.block_on(self.inner.generate_jwt(request))
    }

    /// Fetches an access token now if none is cached.
    pub fn warm_up(&self) -> Result<(), TokenError> {
        self.block_on(self.inner.warm_up())
    }

    /// The OAuth access token (cached, refreshed single-flight); see
    /// [`crate::TokenClient::access_token`]. Send it only to the configured API host.
    pub fn access_token(&self) -> Result<Secret, TokenError> {
        self.block_on(self.inner.access_token())
    }

    /// Drops the cached access token; the next call fetches a new one.
    pub fn invalidate_access_token(&self) {
        // Only waits for the cache's lock, which no call holds for long; the same rule as
        // every other call: not from inside an async runtime (there it does nothing).
        let _ = self.block_on(async {
            self.inner.invalidate_access_token().await;
            Ok(())
        });
    }

    /// A token provider for `chat_blocking`, for one customer: each call mints a fresh chat
    /// JWT and answers its text; see [`crate::TokenClient::provider`].
    /// `chat_blocking::ClientBuilder::token_provider` takes it as it is.
    pub fn provider(
        &self,
        customer: CustomerRequest,
    ) -> impl Fn() -> Result<String, BoxError> + Clone + Send + Sync + 'static {
        let client = self.clone();
        let customer = Arc::new(customer);
        move || {
            client
                .generate_jwt(&customer)
                .map(|jwt| jwt.token.expose().to_owned())
                .map_err(BoxError::from)
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &TokenClientConfig {
        self.inner.config()
    }

    /// The appkey, for handing to a chat client together with its JWT.
    pub fn appkey(&self) -> &Secret {
        self.inner.appkey()
    }

    /// The chat integration id.
    pub fn integration_id(&self) -> &str {
        self.inner.integration_id()
    }

    /// What this client has done so far.
    pub fn stats(&self) -> ClientStats {
        self.inner.stats()
    }

    /// The async client underneath (shares the cache).
    pub fn as_async(&self) -> &crate::TokenClient {
        &self.inner
    }

    fn block_on<T>(
        &self,
        future: impl std::future::Future<Output = Result<T, TokenError>>,
    ) -> Result<T, TokenError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(TokenError::BlockingInAsyncContext);
        }
        match &self.runtime.0 {
            Some(runtime) => runtime.block_on(future),
            None => Err(TokenError::BlockingInAsyncContext),
        }
    }
}
