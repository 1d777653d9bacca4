//! Typed errors: validation, configuration, HTTP problem details, transport and retries.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// Which AXP endpoint a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// The OAuth2 client-credentials token endpoint (access tokens).
    OAuth,
    /// The Generate JWT Token API (chat JWTs).
    TokenApi,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Endpoint::OAuth => "OAuth token endpoint",
            Endpoint::TokenApi => "Generate JWT Token API",
        })
    }
}

/// A field of a [`CustomerRequest`](crate::CustomerRequest) that failed validation.
///
/// Identifier *values* are personal data and are never copied into an error; keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// `customerId`.
    CustomerId,
    /// `customerName`.
    CustomerName,
    /// `customerIdentifiers` as a whole (its number of keys).
    CustomerIdentifiers,
    /// The name of one identifier (for example `emailAddresses`).
    IdentifierKey(String),
    /// The list of values of one identifier (its length).
    IdentifierValues(String),
    /// One value of one identifier, by index.
    IdentifierValue(String, usize),
    /// The requested JWT lifetime (`ttl`).
    Lifetime,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::CustomerId => f.write_str("customerId"),
            Field::CustomerName => f.write_str("customerName"),
            Field::CustomerIdentifiers => f.write_str("customerIdentifiers"),
            Field::IdentifierKey(key) => write!(f, "customerIdentifiers key {key:?}"),
            Field::IdentifierValues(key) => write!(f, "customerIdentifiers.{key}"),
            Field::IdentifierValue(key, index) => write!(f, "customerIdentifiers.{key}[{index}]"),
            // The API's field name, as for the others (the server's violations use it).
            Field::Lifetime => f.write_str("ttl"),
        }
    }
}

/// The rule a field broke. Lengths are counted in Unicode scalar values (`char`s).
///
/// `Display` states the rule in words and in the unit it counts ("must be 15 to 60 minutes,
/// was 5 minutes"), never in Rust's range syntax: these texts reach people.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// A string's length must be within `min..=max`.
    Length {
        /// Smallest allowed length.
        min: usize,
        /// Largest allowed length.
        max: usize,
        /// The length given.
        actual: usize,
    },
    /// A collection's number of entries must be within `min..=max`.
    Count {
        /// Smallest allowed count.
        min: usize,
        /// Largest allowed count.
        max: usize,
        /// The count given.
        actual: usize,
    },
    /// The lifetime must be between `min_minutes` and `max_minutes`.
    LifetimeRange {
        /// Shortest allowed lifetime in minutes.
        min_minutes: u64,
        /// Longest allowed lifetime in minutes.
        max_minutes: u64,
        /// The lifetime given, in seconds.
        actual_secs: u64,
    },
    /// The lifetime must be a whole number of minutes (the API takes integer minutes).
    WholeMinutes {
        /// The lifetime given, in seconds.
        actual_secs: u64,
    },
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Length { min, max, actual } => {
                let unit = |n: usize| if n == 1 { "character" } else { "characters" };
                match min {
                    0 => write!(f, "must be at most {max} {}", unit(*max))?,
                    1 if *actual == 0 => return f.write_str("must not be empty"),
                    _ => write!(f, "must be {min} to {max} {}", unit(*max))?,
                }
                write!(f, " long, was {actual}")
            }
            Rule::Count { min, max, actual } => {
                let unit = |n: usize| if n == 1 { "entry" } else { "entries" };
                match min {
                    0 => write!(f, "must have at most {max} {}", unit(*max))?,
                    _ => write!(f, "must have {min} to {max} {}", unit(*max))?,
                }
                write!(f, ", had {actual}")
            }
            Rule::LifetimeRange {
                min_minutes,
                max_minutes,
                actual_secs,
            } => {
                write!(f, "must be {min_minutes} to {max_minutes} minutes, was ")?;
                write_minutes(f, *actual_secs)
            }
            Rule::WholeMinutes { actual_secs } => {
                f.write_str("must be a whole number of minutes, was ")?;
                write_minutes(f, *actual_secs)
            }
        }
    }
}

/// A lifetime in the unit it was most likely given in: minutes when whole, else seconds.
fn write_minutes(f: &mut fmt::Formatter<'_>, secs: u64) -> fmt::Result {
    match (secs / 60, secs % 60) {
        (1, 0) => f.write_str("1 minute"),
        (minutes, 0) => write!(f, "{minutes} minutes"),
        _ => write!(f, "{secs} seconds"),
    }
}

/// A request field broke one of the Generate JWT Token API's rules; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {rule}")]
pub struct ValidationError {
    /// The field.
    pub field: Field,
    /// The rule it broke.
    pub rule: Rule,
}

/// A configuration problem found when loading or checking a [`TokenClientConfig`](crate::TokenClientConfig).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required setting is missing or empty.
    #[error("missing configuration setting `{0}`")]
    Missing(&'static str),
    /// A setting has an unusable value. The value itself is not repeated (it may be secret).
    #[error("invalid configuration setting `{field}`: {reason}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The API base URL is plain `http` to a non-loopback host and `allow_plain_http` is not set.
    #[error(
        "the API base URL must use https (plain http is allowed only for loopback hosts or with `allow_plain_http`)"
    )]
    InsecureUrl,
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file could not be parsed.
    #[error("cannot parse configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (secrets are never echoed by it: values are not quoted).
        message: String,
    },
}

/// One violation listed in a problem+json body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct Violation {
    /// The offending field, if the service named it.
    #[serde(alias = "propertyPath", alias = "name")]
    pub field: Option<String>,
    /// What is wrong with it.
    #[serde(alias = "reason", alias = "detail")]
    pub message: Option<String>,
    /// A machine-readable code, if the service sent one.
    pub code: Option<String>,
}

/// An RFC 7807 problem-details body as returned by AXP on errors.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct ProblemDetails {
    /// `type`: a URI reference identifying the problem type.
    #[serde(rename = "type")]
    pub problem_type: Option<String>,
    /// `title`: a short summary.
    pub title: Option<String>,
    /// `status`: the HTTP status the service meant.
    pub status: Option<u16>,
    /// `detail`: an explanation of this occurrence.
    pub detail: Option<String>,
    /// `instance`: a URI reference for this occurrence.
    pub instance: Option<String>,
    /// `violations`: per-field problems (validation failures).
    pub violations: Vec<Violation>,
}

impl fmt::Display for ProblemDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for part in [&self.title, &self.detail].into_iter().flatten() {
            write!(f, "{sep}{part}")?;
            sep = ": ";
        }
        for v in &self.violations {
            write!(
                f,
                "{sep}{} {}",
                v.field.as_deref().unwrap_or("?"),
                v.message.as_deref().unwrap_or("")
            )?;
            sep = "; ";
        }
        if sep.is_empty() {
            f.write_str("no details")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong getting a chat JWT.
///
/// No variant ever carries the client secret, the appkey, an access token or a JWT: problem
/// details returned by the service are scrubbed of them before they are stored here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The request broke a field rule; nothing was sent.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The configuration is incomplete or unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The service answered with a non-success status.
    #[error("{endpoint} answered HTTP {status}: {}", problem.as_ref().map_or_else(|| "no problem details".to_owned(), ToString::to_string))]
    Http {
        /// Which endpoint.
        endpoint: Endpoint,
        /// The HTTP status code.
        status: u16,
        /// The problem+json body, if the service sent one.
        problem: Option<Box<ProblemDetails>>,
    },
    /// The connection failed (refused, reset, a TLS failure other than an untrusted
    /// certificate, ...). Retried.
    #[error("{endpoint}: connection failed: {message}")]
    Transport {
        /// Which endpoint.
        endpoint: Endpoint,
        /// What happened (from the HTTP client; URLs carry no secrets).
        message: String,
    },
    /// The server's TLS certificate is not trusted (unknown issuer, expired, another host's).
    /// Not retried: trying again cannot change the answer. Trust the server's root with
    /// `ca_cert_file` (`AXP_CA_CERT_FILE`), or give the builder an HTTP client that trusts it.
    #[error(
        "{endpoint}: the server's TLS certificate is not trusted ({message}); trust its root \
         with `ca_cert_file` (AXP_CA_CERT_FILE)"
    )]
    UntrustedCertificate {
        /// Which endpoint.
        endpoint: Endpoint,
        /// The TLS library's reason (no secrets).
        message: String,
    },
    /// The host name could not be resolved. Not retried: a name that does not resolve now
    /// will not a few hundred milliseconds later; check the API base URL.
    #[error("{endpoint}: cannot resolve the host name ({message}); check the API base URL")]
    HostNotFound {
        /// Which endpoint.
        endpoint: Endpoint,
        /// The resolver's reason.
        message: String,
    },
    /// The call did not complete within the configured timeout.
    #[error("{endpoint}: timed out after {timeout:?}")]
    Timeout {
        /// Which endpoint.
        endpoint: Endpoint,
        /// The timeout that elapsed.
        timeout: Duration,
    },
    /// Every attempt of a retried call failed; `last` is the final failure. `Display` names
    /// the endpoint once ("OAuth token endpoint: gave up after 3 attempts; the last
    /// attempt answered HTTP 503: …"), not again for the last failure.
    #[error("{endpoint}: gave up after {attempts} attempts; the last attempt {}", last.detail())]
    RetriesExhausted {
        /// Which endpoint.
        endpoint: Endpoint,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        last: Box<TokenError>,
    },
    /// The service answered with success, but the body was not what the API defines.
    #[error("{endpoint}: unexpected response: {reason}")]
    InvalidResponse {
        /// Which endpoint.
        endpoint: Endpoint,
        /// What was wrong with it.
        reason: String,
    },
    /// A blocking call was made from inside an async runtime, where it would block a worker.
    #[error("blocking token-client call made from inside an async runtime; use the async client")]
    BlockingInAsyncContext,
}

impl TokenError {
    /// What one attempt did, without the endpoint: the tail of
    /// [`TokenError::RetriesExhausted`]'s text, which names the endpoint once.
    fn detail(&self) -> impl fmt::Display + '_ {
        struct Detail<'a>(&'a TokenError);
        impl fmt::Display for Detail<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    TokenError::Http {
                        status, problem, ..
                    } => {
                        write!(f, "answered HTTP {status}: ")?;
                        match problem {
                            Some(problem) => write!(f, "{problem}"),
                            None => f.write_str("no problem details"),
                        }
                    }
                    TokenError::Transport { message, .. } => {
                        write!(f, "could not connect: {message}")
                    }
                    TokenError::Timeout { timeout, .. } => write!(f, "timed out after {timeout:?}"),
                    other => {
                        let full = other.to_string();
                        let prefix = other.endpoint().map(|e| format!("{e}: "));
                        match prefix.as_deref().and_then(|p| full.strip_prefix(p)) {
                            Some(rest) => f.write_str(rest),
                            None => f.write_str(&full),
                        }
                    }
                }
            }
        }
        Detail(self)
    }

    /// The endpoint the failure came from, if it came from one.
    pub fn endpoint(&self) -> Option<Endpoint> {
        match self {
            TokenError::Http { endpoint, .. }
            | TokenError::Transport { endpoint, .. }
            | TokenError::UntrustedCertificate { endpoint, .. }
            | TokenError::HostNotFound { endpoint, .. }
            | TokenError::Timeout { endpoint, .. }
            | TokenError::RetriesExhausted { endpoint, .. }
            | TokenError::InvalidResponse { endpoint, .. } => Some(*endpoint),
            TokenError::Validation(_)
            | TokenError::Config(_)
            | TokenError::BlockingInAsyncContext => None,
        }
    }

    /// The HTTP status, if the service answered (looking through [`TokenError::RetriesExhausted`]).
    pub fn status(&self) -> Option<u16> {
        match self {
            TokenError::Http { status, .. } => Some(*status),
            TokenError::RetriesExhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// The problem details, if the service sent some (looking through retries).
    pub fn problem(&self) -> Option<&ProblemDetails> {
        match self {
            TokenError::Http { problem, .. } => problem.as_deref(),
            TokenError::RetriesExhausted { last, .. } => last.problem(),
            _ => None,
        }
    }

    /// The validation failure, if this is one.
    pub fn validation(&self) -> Option<&ValidationError> {
        match self {
            TokenError::Validation(v) => Some(v),
            _ => None,
        }
    }
}
