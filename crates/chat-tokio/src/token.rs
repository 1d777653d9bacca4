//! Pull-style tokens: the client asks a [`TokenProvider`] for a fresh chat JWT by itself.

use std::future::Future;

use async_trait::async_trait;
pub use chat_driver::BoxError;

/// Where the client gets chat JWTs from, typically your backend (which mints them with the
/// Generate JWT Token API, see the `token-client` crate).
///
/// The client calls it itself: at connect if no token was given, ahead of expiry (at the
/// token reminder by default, see [`ClientBuilder::refresh_lead`](crate::ClientBuilder::refresh_lead)),
/// and after the server refused the token (401). Calls are single-flight; one that has not
/// answered after 30 s counts as failed. An async closure is a provider:
///
/// ```
/// # async fn ask_backend() -> Result<String, chat_tokio::BoxError> { Ok(String::new()) }
/// let builder = chat_tokio::Client::builder("https://na.api.avayacloud.com", "123e4567-e89b-12d3-a456-426614174000", "appkey")
///     .token_provider(|| async { ask_backend().await });
/// # let _ = builder;
/// ```
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait TokenProvider: Send + Sync + 'static {
    /// A fresh chat JWT, `jwt.` prefix included.
    async fn token(&self) -> Result<String, BoxError>;
}

#[async_trait]
impl<F, Fut> TokenProvider for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, BoxError>> + Send + 'static,
{
    async fn token(&self) -> Result<String, BoxError> {
        self().await
    }
}
