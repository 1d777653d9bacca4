//! Pull-style tokens: the client asks a [`TokenProvider`] for a fresh chat JWT by itself.

use std::future::Future;

use async_trait::async_trait;

/// The error a [`TokenProvider`] may return. Its `Display` text ends up in
/// [`Error::TokenProvider`](crate::Error::TokenProvider): keep secrets out of it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Where the client gets chat JWTs from, typically your backend (which mints them with the
/// Generate JWT Token API, see the `token-client` crate).
///
/// The client calls it itself: once at connect if no token was given, ahead of expiry (at
/// the token reminder by default, see
/// [`ClientBuilder::refresh_lead`](crate::ClientBuilder::refresh_lead)), and after the
/// server refused the token (401). Calls are single-flight: never two at once for a client.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait TokenProvider: Send + Sync + 'static {
    /// A fresh chat JWT, `jwt.` prefix included.
    async fn token(&self) -> Result<String, BoxError>;
}

/// A [`TokenProvider`] made of an async closure; see [`token_provider_fn`].
pub struct FnTokenProvider<F>(F);

impl<F> std::fmt::Debug for FnTokenProvider<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnTokenProvider")
    }
}

/// A [`TokenProvider`] from a closure returning a future:
///
/// ```
/// let provider = chat_tokio::token_provider_fn(|| async {
///     // e.g. ask your backend over HTTP
///     Ok::<_, chat_tokio::BoxError>("jwt.header.payload.signature".to_owned())
/// });
/// # let _ = provider;
/// ```
pub fn token_provider_fn<F, Fut>(f: F) -> FnTokenProvider<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, BoxError>> + Send + 'static,
{
    FnTokenProvider(f)
}

#[async_trait]
impl<F, Fut> TokenProvider for FnTokenProvider<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, BoxError>> + Send + 'static,
{
    async fn token(&self) -> Result<String, BoxError> {
        (self.0)().await
    }
}
