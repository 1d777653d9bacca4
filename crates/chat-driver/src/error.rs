//! The clients' typed error: `chat_tokio::Error` and `chat_blocking::Error` are this type.

use std::sync::Arc;

use chat_core::{ChatError, EndReason};

/// What a token provider may fail with. Its `Display` text ends up in messages and logs:
/// keep secrets out of it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a call of the client failed.
///
/// Every variant but [`Store`](Self::Store) has an official `ACS-3xx` code
/// ([`code`](Self::code)); no variant carries a token or an appkey.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// chat-core refused the command, or the server answered with an error.
    #[error(transparent)]
    Chat(#[from] ChatError),
    /// The client has stopped: shut down, or its session ended ([`EndReason`]). No command
    /// can run any more. Its code is ACS-320 when the server forgot the session, ACS-310
    /// otherwise.
    #[error("{} (the client has stopped{}).", text(*.0), why(*.0))]
    Closed(Option<EndReason>),
    /// The token provider failed, timed out, or returned something that is not a live chat
    /// token. [`source`](std::error::Error::source) is the provider's own error.
    #[error("ACS-305 : JWT token is invalid (the token provider failed: {0}).")]
    TokenProvider(#[source] ProviderError),
    /// The session store failed: it cannot be reached, what it holds is corrupt or was
    /// written by another version, or another process holds the session. Nothing is
    /// started afresh in its place (that could lose a chat). Code `STORE`: the official SDK
    /// has no store.
    #[error(transparent)]
    Store(#[from] chat_store::StoreError),
}

fn text(reason: Option<EndReason>) -> &'static str {
    match reason {
        Some(EndReason::SessionInvalidated) => "ACS-320 : Session not found",
        _ => "ACS-310 : Avaya CCaaS Chat SDK not initialized",
    }
}

fn why(reason: Option<EndReason>) -> &'static str {
    match reason {
        Some(EndReason::SessionInvalidated) => ": the server no longer knows the session",
        Some(EndReason::Shutdown(_)) => ": shut down",
        Some(EndReason::Abandoned) => ": another process took the session over",
        _ => "",
    }
}

/// The token provider's error, shared (the same failure may answer several callers).
#[derive(Debug, Clone)]
pub struct ProviderError(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl ProviderError {
    /// Wraps the provider's error.
    pub fn new(error: BoxError) -> Self {
        Self(Arc::from(error))
    }

    /// An error of ours about the provider (it did not answer in time, its token was not
    /// live).
    pub fn message(text: impl Into<String>) -> Self {
        Self::new(text.into().into())
    }
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ProviderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

impl PartialEq for Error {
    // By kind and text: a provider's error has no equality of its own.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Chat(a), Self::Chat(b)) => a == b,
            (Self::Closed(a), Self::Closed(b)) => a == b,
            (Self::TokenProvider(a), Self::TokenProvider(b)) => a.to_string() == b.to_string(),
            (Self::Store(a), Self::Store(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Error {}

impl Error {
    /// The official SDK's error code, such as `"ACS-314"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Chat(e) => e.code(),
            // The official code of a session the server forgot, whatever is called on it.
            Self::Closed(Some(EndReason::SessionInvalidated)) => "ACS-320",
            Self::Closed(_) => "ACS-310",
            Self::TokenProvider(_) => "ACS-305",
            Self::Store(_) => "STORE",
        }
    }

    /// The chat-core error, if this is one.
    pub fn as_chat(&self) -> Option<&ChatError> {
        match self {
            Self::Chat(e) => Some(e),
            _ => None,
        }
    }
}
