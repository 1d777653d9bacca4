//! Pull-style tokens: the client asks a [`TokenProvider`] for a fresh chat JWT by itself.

pub use chat_driver::BoxError;

/// Where the client gets chat JWTs from, typically your backend (which mints them with the
/// Generate JWT Token API, see the `token-client` crate and its blocking client).
///
/// The client calls it itself: at connect if no token was given, ahead of expiry (at the
/// token reminder by default, see [`ClientBuilder::refresh_lead`](crate::ClientBuilder::refresh_lead)),
/// and after the server refused the token (401). Calls run on a thread of their own, so that
/// a slow backend never holds up events; they are single-flight. A call that has not
/// answered after 30 s counts as failed, but its thread is still waited for at shutdown:
/// bound your own calls (an HTTP timeout). A closure is a provider:
///
/// ```
/// # fn ask_backend() -> Result<String, chat_blocking::BoxError> { Ok(String::new()) }
/// let builder = chat_blocking::Client::builder("https://na.api.avayacloud.com", "123e4567-e89b-12d3-a456-426614174000", "appkey")
///     .token_provider(ask_backend);
/// # let _ = builder;
/// ```
pub trait TokenProvider: Send + Sync + 'static {
    /// A fresh chat JWT, `jwt.` prefix included.
    fn token(&self) -> Result<String, BoxError>;
}

impl<F> TokenProvider for F
where
    F: Fn() -> Result<String, BoxError> + Send + Sync + 'static,
{
    fn token(&self) -> Result<String, BoxError> {
        self()
    }
}
