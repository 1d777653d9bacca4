//! Pull-style tokens: the client asks a [`TokenProvider`] for a fresh chat JWT by itself.

/// The error a [`TokenProvider`] may return. Its `Display` text ends up in
/// [`Error::TokenProvider`](crate::Error::TokenProvider): keep secrets out of it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Where the client gets chat JWTs from, typically your backend (which mints them with the
/// Generate JWT Token API, see the `token-client` crate and its blocking client).
///
/// The client calls it itself: once at connect if no token was given (on a thread of its
/// own, while `connect` waits), ahead of expiry (at the token reminder by default, see
/// [`ClientBuilder::refresh_lead`](crate::ClientBuilder::refresh_lead)), and after the server
/// refused the token (401). Refreshes run on a thread of their own, so that a slow backend
/// never holds up events; they are single-flight (never two at once for a client). A call
/// that has not answered after 30 s counts as failed, but the thread is still waited for at
/// shutdown: bound your own calls (an HTTP timeout).
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
