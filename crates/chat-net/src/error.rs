//! The adapters' typed error: `chat_tokio::Error` and `chat_blocking::Error` are this type.

use chat_core::ChatError;

/// Why a call of the client failed.
///
/// Every variant has an official `ACS-3xx` code ([`code`](Self::code)); no variant carries a
/// token or an appkey.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// chat-core refused the command, or the server answered with an error.
    #[error(transparent)]
    Chat(#[from] ChatError),
    /// The client has shut down (or its session ended): no command can run any more.
    #[error("ACS-310 : Avaya CCaaS Chat SDK not initialized (the client has shut down).")]
    Closed,
    /// The token provider failed or returned something that is not a live chat token.
    #[error("ACS-305 : JWT token is invalid (token provider: {0}).")]
    TokenProvider(String),
}

impl Error {
    /// The official SDK's error code, such as `"ACS-314"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Chat(e) => e.code(),
            Self::Closed => "ACS-310",
            Self::TokenProvider(_) => "ACS-305",
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
