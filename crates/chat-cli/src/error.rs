//! The tool's one error type, and its exit codes.

use std::fmt;

/// What kind of failure, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The server or the chat failed (exit 1).
    Runtime,
    /// Bad or missing flags and settings (exit 2, like clap's own usage errors).
    Usage,
    /// The server refused the credentials or the token: 401 or 403 (exit 3).
    Rejected,
    /// The host could not be reached: connection refused, DNS, TLS or timeout (exit 4).
    Unreachable,
}

impl Kind {
    /// The process exit code.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Kind::Runtime => 1,
            Kind::Usage => 2,
            Kind::Rejected => 3,
            Kind::Unreachable => 4,
        }
    }
}

/// A failure with a message for the user. Messages never contain a secret: they are built
/// from the libraries' errors, which are secret-free, and from our own texts.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) kind: Kind,
    pub(crate) message: String,
}

impl CliError {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }

    pub(crate) fn runtime(message: impl Into<String>) -> Self {
        Self::new(Kind::Runtime, message)
    }

    /// The same failure with `what` in front, such as "provisioning: …".
    pub(crate) fn context(self, what: &str) -> Self {
        Self {
            kind: self.kind,
            message: format!("{what}: {}", self.message),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The kind of an HTTP status a server answered.
pub(crate) fn status_kind(status: u16) -> Kind {
    match status {
        401 | 403 => Kind::Rejected,
        _ => Kind::Runtime,
    }
}

impl From<token_client::TokenError> for CliError {
    fn from(e: token_client::TokenError) -> Self {
        use token_client::TokenError as E;
        fn kind(e: &E) -> Kind {
            match e {
                E::Validation(_) | E::Config(_) => Kind::Usage,
                E::Transport { .. }
                | E::Timeout { .. }
                | E::UntrustedCertificate { .. }
                | E::HostNotFound { .. } => Kind::Unreachable,
                E::RetriesExhausted { last, .. } => kind(last),
                // The OAuth endpoint of an account that does not exist: a credential that
                // is wrong, as much as a wrong secret.
                E::Http {
                    endpoint: token_client::Endpoint::OAuth,
                    status: 404,
                    ..
                } => Kind::Rejected,
                E::Http { status, .. } => status_kind(*status),
                _ => Kind::Runtime,
            }
        }
        let message = match &e {
            // The library names its setting; a person here has a flag.
            E::UntrustedCertificate { endpoint, message } => format!(
                "{endpoint}: the server's TLS certificate is not trusted ({message}); {CA_CERT_HINT}"
            ),
            E::Validation(v) => crate::token::invalid(v),
            E::Http {
                endpoint: token_client::Endpoint::OAuth,
                status: 404,
                ..
            } => format!("unknown account (check --account-id or AXP_ACCOUNT_ID): {e}"),
            _ => e.to_string(),
        };
        Self::new(kind(&e), message)
    }
}

/// What to do about a certificate that is not trusted, in this tool's words.
const CA_CERT_HINT: &str = "if the server uses a private CA (such as the emulator's --tls), \
                            give its root with --ca-cert FILE (or AXP_CA_CERT_FILE)";

impl From<chat_tokio::Error> for CliError {
    fn from(e: chat_tokio::Error) -> Self {
        use chat_tokio::ChatError as C;
        let kind = match e.as_chat() {
            // A token that expired before it could be used is a rejected credential, not a
            // usage mistake.
            Some(c) if c.is_expired_token() => Kind::Rejected,
            Some(C::InvalidToken { .. }) => Kind::Rejected,
            Some(C::ServerUnexpected {
                status: Some(status),
                ..
            }) => status_kind(*status),
            Some(C::Unreachable(_)) => Kind::Unreachable,
            Some(C::InvalidInitParams(_) | C::InvalidConfig(_) | C::Constraint(_)) => Kind::Usage,
            _ => Kind::Runtime,
        };
        let message = match e.as_chat() {
            // Not "server unreachable": the server answered, and what to do is different.
            Some(c @ C::Unreachable(chat_tokio::TransportError::Certificate)) => format!(
                "{} : the server's TLS certificate is not trusted; {CA_CERT_HINT}",
                c.code()
            ),
            _ => e.to_string(),
        };
        Self::new(kind, message)
    }
}

impl From<reqwest::Error> for CliError {
    fn from(e: reqwest::Error) -> Self {
        let kind = if e.is_connect() || e.is_timeout() {
            Kind::Unreachable
        } else {
            Kind::Runtime
        };
        let certificate = chat_net::is_certificate_error(&e);
        // Without the URL: it is ours and carries no secret, but the message is clearer
        // with the host named by the caller's context.
        let e = e.without_url();
        if certificate {
            return Self::new(
                Kind::Unreachable,
                format!("the server's TLS certificate is not trusted ({e}); {CA_CERT_HINT}"),
            );
        }
        Self::new(kind, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_and_unreachable_chat_errors_have_their_own_exit_codes() {
        let rejected = CliError::from(chat_tokio::Error::Chat(
            chat_tokio::ChatError::InvalidToken { detail: None },
        ));
        assert_eq!(rejected.kind.exit_code(), 3);
        let forbidden = CliError::from(chat_tokio::Error::Chat(
            chat_tokio::ChatError::ServerUnexpected {
                status: Some(403),
                detail: None,
            },
        ));
        assert_eq!(forbidden.kind, Kind::Rejected);
        let unreachable = CliError::from(chat_tokio::Error::Chat(
            chat_tokio::ChatError::Unreachable(chat_tokio::TransportError::Connect),
        ));
        assert_eq!(unreachable.kind.exit_code(), 4);
        assert_eq!(
            CliError::from(chat_tokio::Error::Closed(None)).kind,
            Kind::Runtime
        );
        let usage = CliError::from(chat_tokio::Error::Chat(chat_tokio::ChatError::Constraint(
            "Message should not be empty string".into(),
        )));
        assert_eq!(usage.kind, Kind::Usage);
        let untrusted = CliError::from(chat_tokio::Error::Chat(
            chat_tokio::ChatError::Unreachable(chat_tokio::TransportError::Certificate),
        ));
        assert_eq!(untrusted.kind, Kind::Unreachable);
        assert!(untrusted.message.contains("--ca-cert"), "{untrusted}");
        assert!(!untrusted.message.contains("unreachable"), "{untrusted}");
        let expired = CliError::from(chat_tokio::Error::Chat(chat_tokio::ChatError::Constraint(
            "JWT Token should be live".into(),
        )));
        assert_eq!(expired.kind.exit_code(), 3);
    }
}
