//! The typed error of every command, with the official SDK's `ACS-3xx` codes.

use std::borrow::Cow;

/// The detail of [`ChatError::is_expired_token`]'s refusal.
const TOKEN_NOT_LIVE: &str = "JWT Token should be live";

/// Why a command was refused, or how it failed.
///
/// [`code`](Self::code) gives the official SDK's code; `Display` gives its text in the
/// official `"ACS-nnn : text."` form. No variant ever carries a token or an appkey.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    /// `init` on a session that is already initialized (the official SDK's warning ACS-204).
    #[error(
        "ACS-204 : Avaya CCaaS Chat SDK is already initialized, subsequent init attempts will be ignored."
    )]
    AlreadyInitialized,
    /// The host, integration id, token, appkey, display name or session parameters are invalid.
    #[error("ACS-302 : Invalid init parameters : {0}.")]
    InvalidInitParams(Cow<'static, str>),
    /// A configuration value is out of its range.
    #[error("ACS-303 : Invalid configuration values : {0}.")]
    InvalidConfig(Cow<'static, str>),
    /// The server answered with a status that the call does not expect (403 included).
    #[error("ACS-304 : Server responded unexpectedly{}.", describe_status(*status, detail.as_deref()))]
    ServerUnexpected {
        /// The HTTP status, or `None` when a success carried an unusable body.
        status: Option<u16>,
        /// The `detail` (or `title`) of an RFC 7807 problem body, when there was one.
        detail: Option<String>,
    },
    /// The token was refused by the server (401), or its `exp` claim cannot be read.
    /// `detail` keeps why, in the server's words when it said ("Token expired"), so that a
    /// person can tell an expired token from a tampered one.
    #[error("ACS-305 : JWT token is invalid{}.", describe_status(None, detail.as_deref()))]
    InvalidToken {
        /// The `detail` (or `title`) of the server's problem body, or why the token could not
        /// be read; `None` when the server gave no reason.
        detail: Option<String>,
    },
    /// The request never got an answer: connection refused, reset, TLS failure or timeout.
    #[error("ACS-306 : Server is unreachable ({0}).")]
    Unreachable(TransportError),
    /// A message was sent but its answer never came (timeout, a broken connection, an
    /// unreadable answer), or the outbox gave up before it could tell: **the message may
    /// have been stored**. Read the engagement's history before sending it again. Its code is
    /// the official ACS-306.
    #[error(
        "ACS-306 : Server is unreachable ({0}); the message may have been stored: read the history before sending it again."
    )]
    MaybeDelivered(TransportError),
    /// No live token could be had from the token provider (it failed, timed out, or gave
    /// something that is not a live chat token).
    #[error("ACS-305 : JWT token is invalid (no fresh token from the token provider).")]
    TokenUnavailable,
    /// The session is not initialized (never, not yet, or no longer).
    #[error("ACS-310 : Avaya CCaaS Chat SDK not initialized.")]
    NotInitialized,
    /// The engagement is still PENDING: join it and wait for it to become ACTIVE.
    #[error("ACS-313 : Engagement is not activated.")]
    EngagementNotActive,
    /// The engagement is unknown, TERMINATING or TERMINATED, or the server no longer knows it.
    #[error("ACS-314 : Engagement doesn't exist.")]
    EngagementNotFound,
    /// `join` on an engagement that is already ACTIVE.
    #[error("ACS-315 : Engagement already active.")]
    EngagementAlreadyActive,
    /// A history page could not be fetched.
    #[error("ACS-317 : Failed to fetch older messages ({0}).")]
    HistoryFailed(Box<ChatError>),
    /// `retry_connection` while the event stream is neither retrying nor failed.
    #[error("ACS-318 : Retry connection is allowed only in case of Event Stream Failure.")]
    RetryNotAllowed,
    /// The server no longer knows the session.
    #[error("ACS-320 : Session not found.")]
    SessionNotFound,
    /// `init` or `shutdown` while one of them is in progress.
    #[error("ACS-321 : Cannot perform this operation as init/shutdown is in progress.")]
    InProgress,
    /// An argument breaks a constraint (length, UUID form, value set...).
    #[error("ACS-322 : Constraint violated : {0}.")]
    Constraint(Cow<'static, str>),
}

fn describe_status(status: Option<u16>, detail: Option<&str>) -> String {
    match (status, detail) {
        (Some(s), Some(d)) => format!(" (HTTP {s}: {d})"),
        (Some(s), None) => format!(" (HTTP {s})"),
        (None, Some(d)) => format!(" ({d})"),
        (None, None) => String::new(),
    }
}

impl ChatError {
    /// The official SDK's error code, such as `"ACS-314"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::AlreadyInitialized => "ACS-204",
            Self::InvalidInitParams(_) => "ACS-302",
            Self::InvalidConfig(_) => "ACS-303",
            Self::ServerUnexpected { .. } => "ACS-304",
            Self::InvalidToken { .. } => "ACS-305",
            Self::Unreachable(_) | Self::MaybeDelivered(_) => "ACS-306",
            Self::TokenUnavailable => "ACS-305",
            Self::NotInitialized => "ACS-310",
            Self::EngagementNotActive => "ACS-313",
            Self::EngagementNotFound => "ACS-314",
            Self::EngagementAlreadyActive => "ACS-315",
            Self::HistoryFailed(_) => "ACS-317",
            Self::RetryNotAllowed => "ACS-318",
            Self::SessionNotFound => "ACS-320",
            Self::InProgress => "ACS-321",
            Self::Constraint(_) => "ACS-322",
        }
    }

    /// Whether this is the refusal of a token that had expired (by the caller's clock)
    /// before it could be used: `init`, `resume` or `set_token` with a token whose `exp` has
    /// passed (ACS-322 "JWT Token should be live", as in the official SDK). A tool tells an
    /// expired credential from a usage mistake by it.
    pub fn is_expired_token(&self) -> bool {
        matches!(self, Self::Constraint(m) if m == TOKEN_NOT_LIVE)
    }

    pub(crate) fn token_not_live() -> Self {
        Self::constraint(TOKEN_NOT_LIVE)
    }

    pub(crate) fn constraint(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::Constraint(detail.into())
    }

    pub(crate) fn init_param(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::InvalidInitParams(detail.into())
    }

    pub(crate) fn config(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::InvalidConfig(detail.into())
    }
}

/// How a request failed to get any answer. Reported by the adapter; never holds secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No answer within the request's timeout.
    #[error("timed out")]
    Timeout,
    /// The connection could not be made (refused, DNS, TLS handshake other than a
    /// certificate the client does not trust).
    #[error("connection failed")]
    Connect,
    /// The server's TLS certificate is not trusted (unknown issuer, expired, wrong host).
    /// Trust the server's root with custom roots (`tls_config_with_roots`, `--ca-cert`).
    #[error("the server's TLS certificate is not trusted (add its root with custom roots)")]
    Certificate,
    /// The connection broke before a whole response arrived.
    #[error("connection lost")]
    Disconnected,
    /// The response could not be read (bad framing, body too large).
    #[error("unreadable response")]
    Protocol,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_follows_the_official_to_string_form() {
        assert_eq!(
            ChatError::EngagementNotFound.to_string(),
            "ACS-314 : Engagement doesn't exist."
        );
        assert_eq!(
            ChatError::constraint("Message should not be empty string").to_string(),
            "ACS-322 : Constraint violated : Message should not be empty string."
        );
        let e = ChatError::ServerUnexpected {
            status: Some(403),
            detail: None,
        };
        assert_eq!(
            e.to_string(),
            "ACS-304 : Server responded unexpectedly (HTTP 403)."
        );
        assert_eq!(ChatError::HistoryFailed(Box::new(e)).code(), "ACS-317");
    }

    #[test]
    fn a_refused_token_keeps_the_servers_reason() {
        let refused = ChatError::InvalidToken {
            detail: Some("Token expired".into()),
        };
        assert_eq!(
            refused.to_string(),
            "ACS-305 : JWT token is invalid (Token expired)."
        );
        assert_eq!(refused.code(), "ACS-305");
        assert_eq!(
            ChatError::InvalidToken { detail: None }.to_string(),
            "ACS-305 : JWT token is invalid."
        );
    }

    #[test]
    fn an_expired_token_is_told_apart_from_other_constraints() {
        let expired = ChatError::token_not_live();
        assert!(expired.is_expired_token());
        assert_eq!(
            expired.to_string(),
            "ACS-322 : Constraint violated : JWT Token should be live."
        );
        assert!(!ChatError::constraint("Message should not be empty string").is_expired_token());
        assert!(!ChatError::InvalidToken { detail: None }.is_expired_token());
    }
}
