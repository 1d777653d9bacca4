//! [`TokenClientConfig`]: where AXP is, the integration's credentials, and call behaviour.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use crate::error::ConfigError;
use crate::request::validate_lifetime;
use crate::retry::RetryPolicy;
use crate::secret::Secret;

/// Largest accepted `max_attempts` (retries stay bounded).
const MAX_ATTEMPTS: u32 = 10;
/// Largest accepted `max_concurrency`.
const MAX_CONCURRENCY: usize = 100_000;

/// Which OAuth token path the client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum AuthPath {
    /// `/api/auth/v1/{accountId}/protocol/openid-connect/token` (the API-exchange hub; default).
    #[default]
    ApiExchange,
    /// `/auth/realms/{accountId}/protocol/openid-connect/token` (the legacy realm path).
    LegacyRealm,
}

impl AuthPath {
    fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "api-exchange" | "apiexchange" => Some(Self::ApiExchange),
            "legacy-realm" | "legacy" | "realm" => Some(Self::LegacyRealm),
            _ => None,
        }
    }
}

/// Everything a [`TokenClient`](crate::TokenClient) needs.
///
/// Build it in code with [`TokenClientConfig::new`] and the `with_*` methods, or load it with
/// [`TokenClientConfig::from_file`] (JSON or TOML) or [`TokenClientConfig::from_env`] (`AXP_*`
/// variables). `Debug` shows no secret.
///
/// | setting | file key (aliases) | environment variable | default |
/// | --- | --- | --- | --- |
/// | API base URL | `api_base_url` (`labFQDN`, `hostURL`) | `AXP_API_BASE_URL` | required |
/// | account id | `account_id` (`realm`) | `AXP_ACCOUNT_ID` | required |
/// | client id | `client_id` (`clientId`) | `AXP_CLIENT_ID` | required |
/// | client secret | `client_secret` (`clientSecret`) | `AXP_CLIENT_SECRET` | required |
/// | appkey | `appkey` | `AXP_APPKEY` | required |
/// | integration id | `integration_id` (`integrationId`) | `AXP_INTEGRATION_ID` | required |
/// | JWT lifetime, minutes | `jwt_ttl_minutes` (`ttl`) | `AXP_JWT_TTL_MINUTES` | 15 |
/// | auth path | `auth_path` (`api-exchange` / `legacy-realm`) | `AXP_AUTH_PATH` | `api-exchange` |
/// | plain http opt-in | `allow_plain_http` | `AXP_ALLOW_PLAIN_HTTP` | false |
/// | request timeout, ms | `request_timeout_ms` | `AXP_REQUEST_TIMEOUT_MS` | 10000 |
/// | connect timeout, ms | `connect_timeout_ms` | `AXP_CONNECT_TIMEOUT_MS` | 5000 |
/// | attempts per call | `max_attempts` | `AXP_MAX_ATTEMPTS` | 3 |
/// | concurrent calls | `max_concurrency` | `AXP_MAX_CONCURRENCY` | 64 |
/// | extra root CA (PEM) | `ca_cert_file` (`caCertFile`) | `AXP_CA_CERT_FILE` | none |
///
/// A base URL without a scheme (`na.api.avayacloud.com`) means https. The aliases accept AXP's
/// sample `server.conf.json` and the emulator's `--credentials-out` file as they are; unknown
/// keys are ignored.
#[derive(Debug, Clone)]
pub struct TokenClientConfig {
    /// The AXP API base URL, such as `https://na.api.avayacloud.com`.
    pub api_base_url: String,
    /// The AXP account id (the "realm", six letters on AXP).
    pub account_id: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: Secret,
    /// The AXP application key (sent as header `appkey`).
    pub appkey: Secret,
    /// The chat integration id.
    pub integration_id: String,
    /// JWT lifetime requested when a [`CustomerRequest`](crate::CustomerRequest) sets none
    /// (15 to 60 whole minutes).
    pub default_lifetime: Duration,
    /// Which OAuth path to use.
    pub auth_path: AuthPath,
    /// Allow plain `http://` to a host that is not loopback. Never set this in production.
    pub allow_plain_http: bool,
    /// Timeout of each HTTP call, from sending to the whole body received.
    pub request_timeout: Duration,
    /// Timeout for establishing a connection.
    pub connect_timeout: Duration,
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// Most HTTP calls in flight at once from this client.
    pub max_concurrency: usize,
    /// An extra trusted root certificate (PEM file), for a TLS-intercepting proxy or the
    /// emulator's self-signed certificate. The system roots stay trusted.
    pub ca_cert_file: Option<PathBuf>,
}

impl TokenClientConfig {
    /// A configuration with the required settings and defaults for the rest.
    pub fn new(
        api_base_url: impl Into<String>,
        account_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
        appkey: impl Into<Secret>,
        integration_id: impl Into<String>,
    ) -> Self {
        Self {
            api_base_url: api_base_url.into(),
            account_id: account_id.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            appkey: appkey.into(),
            integration_id: integration_id.into(),
            default_lifetime: Duration::from_secs(15 * 60),
            auth_path: AuthPath::ApiExchange,
            allow_plain_http: false,
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            max_concurrency: 64,
            ca_cert_file: None,
        }
    }

    /// Sets the default JWT lifetime.
    pub fn with_default_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = lifetime;
        self
    }

    /// Sets the OAuth path variant.
    pub fn with_auth_path(mut self, auth_path: AuthPath) -> Self {
        self.auth_path = auth_path;
        self
    }

    /// Allows plain http to non-loopback hosts.
    pub fn with_allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    /// Sets the per-call timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Trusts the root certificate in the PEM file at `path` in addition to the system roots.
    pub fn with_ca_cert_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert_file = Some(path.into());
        self
    }

    /// Sets the most HTTP calls in flight at once.
    pub fn with_max_concurrency(mut self, max: usize) -> Self {
        self.max_concurrency = max;
        self
    }

    /// Loads the configuration from a JSON (`.json`) or TOML (any other extension) file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        ConfigValues::from_file(path.as_ref())?.into_config()
    }

    /// Loads the configuration from `AXP_*` environment variables.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Loads the configuration from `AXP_*` variables read through `lookup` (for tests, or a
    /// source other than the process environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut values = ConfigValues::default();
        values.apply_env(&lookup)?;
        values.into_config()
    }

    /// The OAuth token URL for this configuration.
    pub fn oauth_url(&self) -> Result<Url, ConfigError> {
        let path = match self.auth_path {
            AuthPath::ApiExchange => format!(
                "api/auth/v1/{}/protocol/openid-connect/token",
                self.account_id
            ),
            AuthPath::LegacyRealm => format!(
                "auth/realms/{}/protocol/openid-connect/token",
                self.account_id
            ),
        };
        self.join(&path)
    }

    /// The Generate JWT Token API URL for this configuration.
    pub fn tokens_url(&self) -> Result<Url, ConfigError> {
        self.join(&format!(
            "api/digital/chat/v1/accounts/{}/tokens",
            self.account_id
        ))
    }

    fn base_url(&self) -> Result<Url, ConfigError> {
        let text = self.api_base_url.trim();
        if text.is_empty() {
            return Err(ConfigError::Missing("api_base_url"));
        }
        let text = if text.contains("://") {
            text.to_owned()
        } else {
            format!("https://{text}")
        };
        let mut url = Url::parse(&text).map_err(|e| ConfigError::Invalid {
            field: "api_base_url",
            reason: e.to_string(),
        })?;
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(ConfigError::Invalid {
                field: "api_base_url",
                reason: "must not carry a query, fragment or user info".into(),
            });
        }
        match url.scheme() {
            "https" => Ok(url),
            "http" if self.allow_plain_http || is_loopback(&url) => Ok(url),
            "http" => Err(ConfigError::InsecureUrl),
            other => Err(ConfigError::Invalid {
                field: "api_base_url",
                reason: format!("unsupported scheme {other:?}"),
            }),
        }
    }

    fn join(&self, path: &str) -> Result<Url, ConfigError> {
        self.base_url()?
            .join(path)
            .map_err(|e| ConfigError::Invalid {
                field: "api_base_url",
                reason: e.to_string(),
            })
    }

    /// Checks every setting; [`TokenClient::new`](crate::TokenClient::new) calls this.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.base_url()?;
        check_segment("account_id", &self.account_id)?;
        if self.client_id.trim().is_empty() {
            return Err(ConfigError::Missing("client_id"));
        }
        if self.client_secret.is_empty() {
            return Err(ConfigError::Missing("client_secret"));
        }
        if self.appkey.is_empty() {
            return Err(ConfigError::Missing("appkey"));
        }
        check_segment("integration_id", &self.integration_id)?;
        validate_lifetime(self.default_lifetime).map_err(|e| ConfigError::Invalid {
            field: "jwt_ttl_minutes",
            reason: e.rule.to_string(),
        })?;
        if self.request_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                field: "request_timeout_ms",
                reason: "timeouts must be positive".into(),
            });
        }
        if !(1..=MAX_ATTEMPTS).contains(&self.retry.max_attempts) {
            return Err(ConfigError::Invalid {
                field: "max_attempts",
                reason: format!("must be 1 to {MAX_ATTEMPTS}"),
            });
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.max_concurrency) {
            return Err(ConfigError::Invalid {
                field: "max_concurrency",
                reason: format!("must be 1 to {MAX_CONCURRENCY}"),
            });
        }
        Ok(())
    }
}

fn check_segment(field: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::Missing(field));
    }
    if value.len() > 256
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(ConfigError::Invalid {
            field,
            reason: "must be 1 to 256 ASCII letters, digits, '-', '_' or '.'".into(),
        });
    }
    Ok(())
}

/// Whether the URL's host is loopback: `localhost`, 127.0.0.0/8 or `[::1]`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A number that may be written as a string (`"30"`, as AXP's sample configuration has it).
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Number(u64),
    Text(String),
}

impl NumberOrString {
    fn get(&self, field: &'static str) -> Result<u64, ConfigError> {
        match self {
            Self::Number(n) => Ok(*n),
            Self::Text(t) => parse_u64(field, t),
        }
    }
}

pub(crate) fn parse_u64(field: &'static str, text: &str) -> Result<u64, ConfigError> {
    text.trim().parse().map_err(|_| ConfigError::Invalid {
        field,
        reason: "not a whole number".into(),
    })
}

fn parse_bool(field: &'static str, text: &str) -> Result<bool, ConfigError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(ConfigError::Invalid {
            field,
            reason: "not a boolean".into(),
        }),
    }
}

/// The settings as they appear in a file or the environment, each optional until merged.
#[derive(Default, Deserialize)]
pub(crate) struct ConfigValues {
    #[serde(alias = "apiBaseUrl", alias = "labFQDN", alias = "hostURL")]
    api_base_url: Option<String>,
    #[serde(alias = "accountId", alias = "realm")]
    account_id: Option<String>,
    #[serde(alias = "clientId")]
    client_id: Option<String>,
    #[serde(alias = "clientSecret")]
    client_secret: Option<Secret>,
    #[serde(alias = "appKey")]
    appkey: Option<Secret>,
    #[serde(alias = "integrationId")]
    integration_id: Option<String>,
    #[serde(alias = "ttl", alias = "jwtTtlMinutes")]
    jwt_ttl_minutes: Option<NumberOrString>,
    #[serde(alias = "authPath")]
    auth_path: Option<AuthPath>,
    #[serde(alias = "toggleApiExchangeHub")]
    toggle_api_exchange_hub: Option<bool>,
    #[serde(alias = "allowPlainHttp")]
    allow_plain_http: Option<bool>,
    #[serde(alias = "requestTimeoutMs")]
    request_timeout_ms: Option<u64>,
    #[serde(alias = "connectTimeoutMs")]
    connect_timeout_ms: Option<u64>,
    #[serde(alias = "maxAttempts")]
    max_attempts: Option<u32>,
    #[serde(alias = "maxConcurrency")]
    max_concurrency: Option<usize>,
    #[serde(alias = "caCertFile")]
    ca_cert_file: Option<PathBuf>,
}

impl ConfigValues {
    pub(crate) fn from_file(path: &Path) -> Result<Self, ConfigError> {
        parse_file(path)
    }

    pub(crate) fn apply_env(
        &mut self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        // `AXP_HOST` is the name the chat clients' examples and `axp-chat` also accept; the
        // full name wins when both are set.
        if let Some(v) = get("AXP_API_BASE_URL").or_else(|| get("AXP_HOST")) {
            self.api_base_url = Some(v);
        }
        if let Some(v) = get("AXP_ACCOUNT_ID") {
            self.account_id = Some(v);
        }
        if let Some(v) = get("AXP_CLIENT_ID") {
            self.client_id = Some(v);
        }
        if let Some(v) = get("AXP_CLIENT_SECRET") {
            self.client_secret = Some(Secret::new(v));
        }
        if let Some(v) = get("AXP_APPKEY") {
            self.appkey = Some(Secret::new(v));
        }
        if let Some(v) = get("AXP_INTEGRATION_ID") {
            self.integration_id = Some(v);
        }
        if let Some(v) = get("AXP_JWT_TTL_MINUTES") {
            self.jwt_ttl_minutes = Some(NumberOrString::Text(v));
        }
        if let Some(v) = get("AXP_AUTH_PATH") {
            self.auth_path = Some(AuthPath::parse(&v).ok_or(ConfigError::Invalid {
                field: "auth_path",
                reason: "expected `api-exchange` or `legacy-realm`".into(),
            })?);
        }
        if let Some(v) = get("AXP_ALLOW_PLAIN_HTTP") {
            self.allow_plain_http = Some(parse_bool("allow_plain_http", &v)?);
        }
        if let Some(v) = get("AXP_REQUEST_TIMEOUT_MS") {
            self.request_timeout_ms = Some(parse_u64("request_timeout_ms", &v)?);
        }
        if let Some(v) = get("AXP_CONNECT_TIMEOUT_MS") {
            self.connect_timeout_ms = Some(parse_u64("connect_timeout_ms", &v)?);
        }
        if let Some(v) = get("AXP_MAX_ATTEMPTS") {
            let n = parse_u64("max_attempts", &v)?;
            self.max_attempts = Some(u32::try_from(n).unwrap_or(u32::MAX));
        }
        if let Some(v) = get("AXP_CA_CERT_FILE") {
            self.ca_cert_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("AXP_MAX_CONCURRENCY") {
            let n = parse_u64("max_concurrency", &v)?;
            self.max_concurrency = Some(usize::try_from(n).unwrap_or(usize::MAX));
        }
        Ok(())
    }

    pub(crate) fn into_config(self) -> Result<TokenClientConfig, ConfigError> {
        let mut config = TokenClientConfig::new(
            self.api_base_url
                .ok_or(ConfigError::Missing("api_base_url"))?,
            self.account_id.ok_or(ConfigError::Missing("account_id"))?,
            self.client_id.ok_or(ConfigError::Missing("client_id"))?,
            self.client_secret
                .ok_or(ConfigError::Missing("client_secret"))?,
            self.appkey.ok_or(ConfigError::Missing("appkey"))?,
            self.integration_id
                .ok_or(ConfigError::Missing("integration_id"))?,
        );
        if let Some(ttl) = self.jwt_ttl_minutes {
            let minutes = ttl.get("jwt_ttl_minutes")?;
            config.default_lifetime = Duration::from_secs(minutes.saturating_mul(60));
        }
        if let Some(hub) = self.toggle_api_exchange_hub {
            config.auth_path = if hub {
                AuthPath::ApiExchange
            } else {
                AuthPath::LegacyRealm
            };
        }
        if let Some(path) = self.auth_path {
            config.auth_path = path;
        }
        if let Some(allow) = self.allow_plain_http {
            config.allow_plain_http = allow;
        }
        if let Some(ms) = self.request_timeout_ms {
            config.request_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = self.connect_timeout_ms {
            config.connect_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = self.max_attempts {
            config.retry.max_attempts = n;
        }
        if let Some(n) = self.max_concurrency {
            config.max_concurrency = n;
        }
        config.ca_cert_file = self.ca_cert_file;
        config.validate()?;
        Ok(config)
    }
}

/// Reads and parses a JSON (`.json`) or TOML file into `T`.
pub(crate) fn parse_file<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        path: shown.clone(),
        source: e,
    })?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    // Parser messages can quote the offending input line; report only position and kind.
    if is_json {
        serde_json::from_str(&text).map_err(|e| ConfigError::Parse {
            path: shown,
            message: format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ),
        })
    } else {
        toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|span| {
                text.get(..span.start)
                    .unwrap_or(&text)
                    .lines()
                    .count()
                    .max(1)
            });
            ConfigError::Parse {
                path: shown,
                message: match line {
                    Some(line) => format!("TOML syntax or type error at line {line}"),
                    None => "TOML syntax or type error".to_owned(),
                },
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const INT: &str = "123e4567-e89b-12d3-a456-426614174000";

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn base_env() -> Vec<(&'static str, &'static str)> {
        vec![
            ("AXP_API_BASE_URL", "na.api.avayacloud.com"),
            ("AXP_ACCOUNT_ID", "ABCDEF"),
            ("AXP_CLIENT_ID", "client"),
            ("AXP_CLIENT_SECRET", "top-secret-value"),
            ("AXP_APPKEY", "appkey-value"),
            ("AXP_INTEGRATION_ID", INT),
        ]
    }

    #[test]
    fn from_env_with_defaults_and_overrides() {
        let c = TokenClientConfig::from_lookup(env(&base_env())).unwrap();
        assert_eq!(
            c.oauth_url().unwrap().as_str(),
            "https://na.api.avayacloud.com/api/auth/v1/ABCDEF/protocol/openid-connect/token"
        );
        assert_eq!(
            c.tokens_url().unwrap().as_str(),
            "https://na.api.avayacloud.com/api/digital/chat/v1/accounts/ABCDEF/tokens"
        );
        assert_eq!(c.default_lifetime, Duration::from_secs(900));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("top-secret-value") && !dbg.contains("appkey-value"));

        // The older name of the host, read when the full one is not set.
        let host_only: Vec<_> = base_env()
            .into_iter()
            .map(|(k, v)| match k {
                "AXP_API_BASE_URL" => ("AXP_HOST", "https://eu.api.avayacloud.com"),
                _ => (k, v),
            })
            .collect();
        let c = TokenClientConfig::from_lookup(env(&host_only)).unwrap();
        assert_eq!(c.api_base_url, "https://eu.api.avayacloud.com");
        let mut both = base_env();
        both.push(("AXP_HOST", "https://eu.api.avayacloud.com"));
        let c = TokenClientConfig::from_lookup(env(&both)).unwrap();
        assert_eq!(c.api_base_url, "na.api.avayacloud.com");

        let mut vars = base_env();
        vars.extend([
            ("AXP_AUTH_PATH", "legacy-realm"),
            ("AXP_JWT_TTL_MINUTES", "30"),
            ("AXP_MAX_ATTEMPTS", "5"),
            ("AXP_REQUEST_TIMEOUT_MS", "1500"),
        ]);
        let c = TokenClientConfig::from_lookup(env(&vars)).unwrap();
        assert_eq!(c.auth_path, AuthPath::LegacyRealm);
        assert!(
            c.oauth_url()
                .unwrap()
                .path()
                .starts_with("/auth/realms/ABCDEF/")
        );
        assert_eq!(c.default_lifetime, Duration::from_secs(1800));
        assert_eq!(c.retry.max_attempts, 5);
        assert_eq!(c.request_timeout, Duration::from_millis(1500));
    }

    #[test]
    fn missing_and_invalid_settings_are_typed() {
        let vars: Vec<_> = base_env()
            .into_iter()
            .filter(|(k, _)| *k != "AXP_CLIENT_SECRET")
            .collect();
        assert!(matches!(
            TokenClientConfig::from_lookup(env(&vars)),
            Err(ConfigError::Missing("client_secret"))
        ));
        let mut vars = base_env();
        vars.push(("AXP_JWT_TTL_MINUTES", "90"));
        assert!(matches!(
            TokenClientConfig::from_lookup(env(&vars)),
            Err(ConfigError::Invalid {
                field: "jwt_ttl_minutes",
                ..
            })
        ));
        let mut vars = base_env();
        vars.push(("AXP_AUTH_PATH", "sideways"));
        assert!(TokenClientConfig::from_lookup(env(&vars)).is_err());
        for (name, value) in [
            ("AXP_MAX_ATTEMPTS", "0"),
            ("AXP_MAX_ATTEMPTS", "99999999999"),
            ("AXP_MAX_CONCURRENCY", "0"),
            ("AXP_MAX_CONCURRENCY", "18446744073709551615"),
            ("AXP_REQUEST_TIMEOUT_MS", "0"),
            ("AXP_ALLOW_PLAIN_HTTP", "maybe"),
        ] {
            let mut vars = base_env();
            vars.push((name, value));
            assert!(
                TokenClientConfig::from_lookup(env(&vars)).is_err(),
                "{name}={value}"
            );
        }
        let mut vars = base_env();
        vars.push(("AXP_ACCOUNT_ID", "AB/../x"));
        assert!(TokenClientConfig::from_lookup(env(&vars)).is_err());
    }

    #[test]
    fn https_required_unless_loopback_or_opted_in() {
        let cfg = |url: &str| TokenClientConfig::new(url, "ABCDEF", "c", "s", "k", INT);
        assert!(matches!(
            cfg("http://example.com").validate(),
            Err(ConfigError::InsecureUrl)
        ));
        assert!(matches!(
            cfg("http://10.0.0.1:8080").validate(),
            Err(ConfigError::InsecureUrl)
        ));
        for ok in [
            "https://example.com",
            "http://localhost:9000",
            "http://127.0.0.1:1",
            "http://127.9.9.9",
            "http://[::1]:8080/",
        ] {
            assert!(cfg(ok).validate().is_ok(), "{ok}");
        }
        assert!(
            cfg("http://example.com")
                .with_allow_plain_http(true)
                .validate()
                .is_ok()
        );
        assert!(cfg("ftp://example.com").validate().is_err());
        assert!(cfg("https://example.com/?a=b").validate().is_err());
        // A path prefix is kept.
        assert_eq!(
            cfg("https://gw.example.com/axp")
                .tokens_url()
                .unwrap()
                .as_str(),
            "https://gw.example.com/axp/api/digital/chat/v1/accounts/ABCDEF/tokens"
        );
    }

    #[test]
    fn from_json_and_toml_files() {
        let dir = std::env::temp_dir().join(format!("token-client-cfg-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        // AXP's sample server.conf.json keys, ttl as a string.
        let json = dir.join("server.conf.json");
        std::fs::write(
            &json,
            format!(
                r#"{{"realm":"ABCDEF","labFQDN":"na.api.avayacloud.com","integrationId":"{INT}",
                "clientId":"c","clientSecret":"s3cr3t-json","appkey":"k","ttl":"30","toggleApiExchangeHub":false}}"#
            ),
        )
        .unwrap();
        let c = TokenClientConfig::from_file(&json).unwrap();
        assert_eq!(c.default_lifetime, Duration::from_secs(1800));
        assert_eq!(c.auth_path, AuthPath::LegacyRealm);
        let toml_path = dir.join("token.toml");
        std::fs::write(
            &toml_path,
            format!(
                "api_base_url = \"http://127.0.0.1:8080\"\naccount_id = \"ABCDEF\"\nclient_id = \"c\"\n\
                 client_secret = \"s3cr3t-toml\"\nappkey = \"k\"\nintegration_id = \"{INT}\"\n\
                 jwt_ttl_minutes = 60\nauth_path = \"api-exchange\"\n"
            ),
        )
        .unwrap();
        let c = TokenClientConfig::from_file(&toml_path).unwrap();
        assert_eq!(c.default_lifetime, Duration::from_secs(3600));
        // A parse error never echoes the file's values.
        std::fs::write(&toml_path, "client_secret = 42\nappkey = \"s3cr3t-broken").unwrap();
        let err = TokenClientConfig::from_file(&toml_path)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
        std::fs::write(&json, r#"{"clientSecret": 7, "appkey": "s3cr3t-x""#).unwrap();
        let err = TokenClientConfig::from_file(&json).unwrap_err().to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
        assert!(matches!(
            TokenClientConfig::from_file(dir.join("absent.toml")),
            Err(ConfigError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).ok();
    }
}
