//! What a session is created with: the init parameters and the timing configuration.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::ids::IntegrationId;
use crate::wire::MappedData;
use crate::{ChatError, Token, validate};

/// Timing configuration of a session. Every field has a default, so a partial configuration
/// is written with struct update syntax:
///
/// ```
/// use std::time::Duration;
/// use chat_core::Config;
/// let config = Config { idle_timeout: Some(Duration::from_secs(600)), ..Config::default() };
/// assert!(config.validate().is_ok());
/// ```
///
/// Defaults and ranges (the official SDK's ranges; defaults decided in `docs/protocol.md`):
///
/// | field | default | range |
/// | --- | --- | --- |
/// | `reconnection_timeout` | 300 s | 120–900 s |
/// | `idle_timeout` | 900 s | 300–3300 s, or `None` to disable |
/// | `idle_shutdown_grace_timeout` | 30 s | 30–300 s |
/// | `poll_timeout` | 40 s | 1–300 s |
/// | `request_timeout` | 30 s | 1–300 s |
/// | `outbox` | `None` (off) | 1–3600 s |
/// | `token_refresh` | `None` (tokens are set by the application) | see [`TokenRefresh`] |
/// | `write_ahead` | `false` | needs `outbox` |
/// | `jitter_seed` | `None` (drawn from the operating system) | any |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How long the event stream may try to reconnect before it gives up (`Failed`).
    pub reconnection_timeout: Duration,
    /// How long without customer activity before `IDLE_TIMEOUT_EXPIRED`; `None` disables the
    /// idle and grace timers (the official docs' `0`).
    pub idle_timeout: Option<Duration>,
    /// How long after `IDLE_TIMEOUT_EXPIRED` before the automatic `USER_INACTIVE` shutdown.
    pub idle_shutdown_grace_timeout: Duration,
    /// How long one long poll may take before it counts as a network failure.
    pub poll_timeout: Duration,
    /// How long any other request may take (the official SDK has no limit).
    pub request_timeout: Duration,
    /// Seed of the jitter of the reconnection backoff and of the outbox's retries. `None`
    /// (the default) draws it from the operating system's randomness when the session is
    /// made, so that clients that lost the same server at the same instant do not come back
    /// in lockstep. Give a seed only where equal schedules are wanted: tests, a reproducible
    /// soak.
    pub jitter_seed: Option<u64>,
    /// The outbox: `Some(limit)` keeps a send whose answer was lost or that the server
    /// refused for a passing reason (no answer, 5xx, 429) and tries it again, across
    /// reconnections, for up to `limit` after it was sent. Before sending again it reads the
    /// engagement's history, so that a first attempt that did arrive is not sent twice. The
    /// reply still comes once, under the send's own [`RequestId`](crate::RequestId): the
    /// message as delivered, or the last error. `None` (the default, as in the official SDK)
    /// reports the first failure at once.
    pub outbox: Option<Duration>,
    /// The token's lifecycle when the application has a token provider: `Some` makes the
    /// session ask for tokens itself ([`Output::FetchToken`](crate::Output::FetchToken)) ahead
    /// of expiry and after the server refused one (401), and send a REST call refused with
    /// 401 once more with the new token. `None` (the default): tokens come only from
    /// [`Session::set_token`](crate::Session::set_token), as in the official SDK.
    pub token_refresh: Option<TokenRefresh>,
    /// Sends are kept in a store before they first go out: a send held by the outbox waits
    /// until [`Session::handle_saved`](crate::Session::handle_saved) reports a
    /// [`snapshot`](crate::Session::snapshot) that holds it, so that a process killed at any
    /// instant loses no send it accepted. Needs the outbox. `false` (the default) sends at
    /// once, as the official SDK does.
    pub write_ahead: bool,
}

/// When and how a session asks for a new token: see [`Config::token_refresh`].
///
/// | field | default | range |
/// | --- | --- | --- |
/// | `lead` | 180 s (the `TOKEN_EXPIRY_REMINDER` time) | 1–3600 s |
/// | `retry` | 5 s | 1–300 s |
/// | `timeout` | 30 s | 1–300 s |
/// | `max_in_a_row` | 3 | 1–10 |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRefresh {
    /// How long before `exp` a new token is asked for; never sooner than half the token's
    /// remaining life, so that short-lived tokens do not refresh in a loop.
    pub lead: Duration,
    /// Wait before asking again after the provider failed (while the token is still live).
    pub retry: Duration,
    /// How long the provider may take before its call counts as failed.
    pub timeout: Duration,
    /// Refreshes in a row caused by 401s without the server accepting a token in between;
    /// past it, a 401 is reported as it is.
    pub max_in_a_row: u32,
}

impl Default for TokenRefresh {
    fn default() -> Self {
        Self {
            lead: crate::TOKEN_WARNING,
            retry: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            max_in_a_row: 3,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            reconnection_timeout: Duration::from_secs(300),
            idle_timeout: Some(Duration::from_secs(900)),
            idle_shutdown_grace_timeout: Duration::from_secs(30),
            poll_timeout: Duration::from_secs(40),
            request_timeout: Duration::from_secs(30),
            jitter_seed: None,
            outbox: None,
            token_refresh: None,
            write_ahead: false,
        }
    }
}

impl Config {
    /// Checks every field against its range (ACS-303 with the field named).
    pub fn validate(&self) -> Result<(), ChatError> {
        fn within(d: Duration, lo: u64, hi: u64, what: &'static str) -> Result<(), ChatError> {
            if d >= Duration::from_secs(lo) && d <= Duration::from_secs(hi) {
                Ok(())
            } else {
                Err(ChatError::config(what))
            }
        }
        within(
            self.reconnection_timeout,
            120,
            900,
            "reconnectionTimeout should be 120 to 900 s",
        )?;
        if let Some(idle) = self.idle_timeout {
            within(idle, 300, 3300, "idleTimeout should be 300 to 3300 s")?;
        }
        within(
            self.idle_shutdown_grace_timeout,
            30,
            300,
            "idleShutdownGraceTimeout should be 30 to 300 s",
        )?;
        within(
            self.poll_timeout,
            1,
            300,
            "pollTimeout should be 1 to 300 s",
        )?;
        within(
            self.request_timeout,
            1,
            300,
            "requestTimeout should be 1 to 300 s",
        )?;
        if let Some(limit) = self.outbox {
            within(limit, 1, 3600, "outbox should be 1 to 3600 s")?;
        } else if self.write_ahead {
            return Err(ChatError::config(
                "writeAhead needs the outbox: sends kept in a store are sent by it",
            ));
        }
        if let Some(r) = &self.token_refresh {
            within(r.lead, 1, 3600, "tokenRefresh.lead should be 1 to 3600 s")?;
            within(r.retry, 1, 300, "tokenRefresh.retry should be 1 to 300 s")?;
            within(
                r.timeout,
                1,
                300,
                "tokenRefresh.timeout should be 1 to 300 s",
            )?;
            if !(1..=10).contains(&r.max_in_a_row) {
                return Err(ChatError::config(
                    "tokenRefresh.maxInARow should be 1 to 10",
                ));
            }
        }
        Ok(())
    }
}

/// The application key sent as the `appkey` header. Never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct AppKey(Arc<str>);

impl AppKey {
    /// Wraps an appkey (any text, as the official SDK accepts).
    pub fn new(key: impl AsRef<str>) -> Self {
        Self(Arc::from(key.as_ref()))
    }

    /// The key, for the `appkey` header. Handle with care.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn shared_text(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }
}

impl fmt::Debug for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppKey(<redacted>)")
    }
}

impl fmt::Display for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted appkey>")
    }
}

/// Where and as whom a session connects: the official SDK's `SDKInitParams`.
#[derive(Debug, Clone)]
pub struct InitParams {
    /// `https://` base URL of the AXP region, such as `https://na.api.avayacloud.com`.
    pub host: String,
    /// The chat integration.
    pub integration_id: IntegrationId,
    /// The chat JWT from the business's backend; `None` when the first one comes from the
    /// token provider ([`Config::token_refresh`] must then be set).
    pub token: Option<Token>,
    /// The account's application key.
    pub appkey: AppKey,
    /// Shown when the JWT carries no customer name (≤ 70 characters).
    pub display_name: Option<String>,
    /// Context for routing (≤ 20 entries).
    pub session_parameters: Option<MappedData>,
    /// Allow `http://` to a host that is not loopback. Off by default; for test rigs only.
    pub allow_plain_http: bool,
    /// Added to the `User-Agent` of every request, after this SDK's own name and version.
    pub user_agent: Option<String>,
}

impl InitParams {
    /// Parameters with the required fields; `integration_id` must be a UUID.
    pub fn new(
        host: impl Into<String>,
        integration_id: &str,
        token: Token,
        appkey: AppKey,
    ) -> Result<Self, ChatError> {
        let integration_id = IntegrationId::parse(integration_id)
            .map_err(|_| ChatError::init_param("integrationId should be a UUID"))?;
        Ok(Self {
            host: host.into(),
            integration_id,
            token: Some(token),
            appkey,
            display_name: None,
            session_parameters: None,
            allow_plain_http: false,
            user_agent: None,
        })
    }

    /// Parameters without a token: [`Session::init`](crate::Session::init) first asks the
    /// token provider for one ([`Output::FetchToken`](crate::Output::FetchToken)), so
    /// [`Config::token_refresh`] must be set.
    pub fn without_token(
        host: impl Into<String>,
        integration_id: &str,
        appkey: AppKey,
    ) -> Result<Self, ChatError> {
        let integration_id = IntegrationId::parse(integration_id)
            .map_err(|_| ChatError::init_param("integrationId should be a UUID"))?;
        Ok(Self {
            host: host.into(),
            integration_id,
            token: None,
            appkey,
            display_name: None,
            session_parameters: None,
            allow_plain_http: false,
            user_agent: None,
        })
    }

    /// Sets the display name.
    #[must_use]
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Sets the session parameters.
    #[must_use]
    pub fn session_parameters(mut self, parameters: MappedData) -> Self {
        self.session_parameters = Some(parameters);
        self
    }

    /// Adds the application's product (such as `my-app/1.2`) to the `User-Agent`.
    #[must_use]
    pub fn user_agent(mut self, product: impl Into<String>) -> Self {
        self.user_agent = Some(product.into());
        self
    }

    /// Allows `http://` to any host (never needed for loopback).
    #[must_use]
    pub fn allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    /// Checks everything but the token's liveness; returns the normalised host URL.
    pub(crate) fn validate(&self) -> Result<String, ChatError> {
        let host = validate::host_url(&self.host, self.allow_plain_http)?;
        if let Some(name) = &self.display_name {
            validate::display_name(name)?;
        }
        if let Some(parameters) = &self.session_parameters {
            validate::mapped_data(parameters)
                .map_err(|_| ChatError::init_param("sessionParameters exceed their limits"))?;
        }
        if let Some(ua) = &self.user_agent {
            if ua.len() > 256 || ua.chars().any(|c| c.is_control()) {
                return Err(ChatError::init_param(
                    "the user agent should be at most 256 printable characters",
                ));
            }
        }
        Ok(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_ranges_enforced() {
        assert!(Config::default().validate().is_ok());
        let bad = Config {
            reconnection_timeout: Duration::from_secs(119),
            ..Config::default()
        };
        assert_eq!(bad.validate().unwrap_err().code(), "ACS-303");
        let bad = Config {
            idle_timeout: Some(Duration::from_secs(90)),
            ..Config::default()
        };
        assert!(bad.validate().is_err());
        let off = Config {
            idle_timeout: None,
            ..Config::default()
        };
        assert!(off.validate().is_ok());
        let bad = Config {
            idle_shutdown_grace_timeout: Duration::from_secs(301),
            ..Config::default()
        };
        assert!(bad.validate().is_err());
        let edge = Config {
            reconnection_timeout: Duration::from_secs(900),
            idle_timeout: Some(Duration::from_secs(3300)),
            idle_shutdown_grace_timeout: Duration::from_secs(300),
            ..Config::default()
        };
        assert!(edge.validate().is_ok());
    }

    #[test]
    fn appkey_is_redacted() {
        let key = AppKey::new("super-secret-key");
        assert!(!format!("{key:?}{key}").contains("super-secret"));
    }
}
