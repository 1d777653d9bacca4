//! The backend side of AXP Digital chat authentication.
//!
//! A chat client (browser widget or the Rust chat SDK) needs a chat JWT and the appkey. The JWT
//! comes from AXP's *Generate JWT Token API*, which only a backend holding the integration's
//! OAuth client credentials may call. This crate is that backend's client:
//!
//! * [`TokenClientConfig`]: API host, account, credentials, integration, default JWT lifetime,
//!   auth path; from code, a JSON/TOML file or `AXP_*` environment variables.
//! * [`TokenClient`]: OAuth2 client-credentials access token, cached and refreshed single-flight;
//!   one refresh and retry on a 401; bounded retries with backoff and jitter; timeouts.
//! * [`CustomerRequest`]: a verified customer or a guest, every field rule checked locally.
//! * [`TokenClient::provider`]: a chat client's token provider for one customer, in one line;
//!   the chat client holds the closure, never the backend's credentials.
//! * [`ChatJwt`]: the token and its expiry. Secrets are [`Secret`]s: never in `Debug`, `Display`,
//!   logs or errors.
//! * `blocking` feature: [`blocking::TokenClient`], the same client for synchronous code.
//! * `server` feature (default): [`server`], a reference backend (`POST /v1/getJWT`,
//!   `GET /v1/getIntegration`) and the `axp-token-server` binary.
//!
//! # Example
//!
//! Against the local AXP emulator (use your region's `https://*.api.avayacloud.com` and your
//! integration's credentials in production):
//!
//! ```
//! use std::time::Duration;
//! use token_client::{CustomerRequest, TokenClient, TokenClientConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let emulator = chat_emulator::Emulator::builder().start().await?;
//! # let c = emulator.credentials();
//! # let (api_base_url, account_id, client_id, client_secret, appkey, integration_id) = (
//! #     emulator.base_url(), c.account_id.clone(), c.client_id.clone(),
//! #     c.client_secret.clone(), c.appkey.clone(), c.integration_id.clone());
//! let config = TokenClientConfig::new(
//!     api_base_url, account_id, client_id, client_secret, appkey, integration_id,
//! )
//! .with_default_lifetime(Duration::from_secs(30 * 60));
//! let client = TokenClient::new(config)?;
//!
//! let alice = CustomerRequest::verified("customer-42")
//!     .name("Alice Example")
//!     .email("alice@example.com");
//! let jwt = client.generate_jwt(&alice).await?;
//! assert!(jwt.token.expose().starts_with("jwt."));
//!
//! let guest = client.generate_jwt(&CustomerRequest::guest()).await?;
//! assert!(guest.expires_at > std::time::SystemTime::now());
//!
//! // Both JWTs used one access token.
//! assert_eq!(client.stats().oauth_requests, 1);
//! # emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "blocking")]
pub mod blocking;
mod client;
mod config;
mod error;
mod jwt;
mod request;
mod retry;
mod secret;
#[cfg(feature = "server")]
pub mod server;

pub use client::{BoxError, ClientStats, TokenClient, TokenClientBuilder, TokenFuture};
pub use config::{AuthPath, TokenClientConfig};
pub use error::{
    ConfigError, Endpoint, Field, ProblemDetails, Rule, TokenError, ValidationError, Violation,
};
pub use jwt::ChatJwt;
pub use request::{
    CUSTOMER_ID_MAX, CUSTOMER_NAME_MAX, CustomerRequest, EMAIL_ADDRESSES, IDENTIFIER_KEY_MAX,
    IDENTIFIER_KEYS_MAX, IDENTIFIER_VALUE_MAX, IDENTIFIER_VALUES_MAX, LIFETIME_MAX_MINUTES,
    LIFETIME_MIN_MINUTES, PHONE_NUMBERS,
};
pub use retry::{Clock, RetryPolicy, Sleep, SystemClock};
pub use secret::Secret;
