//! The AXP account to talk to: flags, environment variables, or the emulator's credentials
//! file, and the HTTP and token clients built from them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chat_tokio::TlsClientConfig;

use serde::Deserialize;
use token_client::{Secret, TokenClient, TokenClientConfig};

use crate::error::CliError;

/// Where the AXP service is and the account's credentials. Every setting is optional here;
/// each command checks that it has the ones it needs.
#[derive(clap::Args, Clone, Default)]
pub(crate) struct Target {
    /// The AXP API host (hostURL), such as `https://na.api.avayacloud.com`, or the emulator's
    /// `http://127.0.0.1:8443`. The variable is token-client's and `axp-token-server`'s;
    /// the older `AXP_HOST` is still read when it is not set.
    #[arg(
        long,
        visible_alias = "api-base-url",
        env = "AXP_API_BASE_URL",
        global = true
    )]
    pub(crate) host: Option<String>,
    /// The account id (realm).
    #[arg(long, env = "AXP_ACCOUNT_ID", global = true)]
    pub(crate) account_id: Option<String>,
    /// OAuth client id of the integration's backend.
    #[arg(long, env = "AXP_CLIENT_ID", global = true, allow_hyphen_values = true)]
    pub(crate) client_id: Option<String>,
    /// OAuth client secret (prefer the environment variable: flags show in `ps`).
    // Generated secrets may start with '-': taken as values, not as flags.
    #[arg(
        long,
        env = "AXP_CLIENT_SECRET",
        hide_env_values = true,
        global = true,
        allow_hyphen_values = true
    )]
    pub(crate) client_secret: Option<String>,
    /// The application key.
    #[arg(
        long,
        env = "AXP_APPKEY",
        hide_env_values = true,
        global = true,
        allow_hyphen_values = true
    )]
    pub(crate) appkey: Option<String>,
    /// The chat integration id.
    #[arg(long, env = "AXP_INTEGRATION_ID", global = true)]
    pub(crate) integration_id: Option<String>,
    /// The emulator's credentials JSON (its announcement line or `--credentials-out` file):
    /// fills in every setting not given otherwise.
    #[arg(long, env = "AXP_CREDENTIALS_FILE", global = true)]
    pub(crate) credentials: Option<PathBuf>,
    /// An extra trusted root certificate (PEM), such as the emulator's `--tls` certificate,
    /// for every call and every `--transport`.
    #[arg(long, env = "AXP_CA_CERT_FILE", global = true)]
    pub(crate) ca_cert: Option<PathBuf>,
    /// Allow plain http:// to a host that is not loopback. Never in production.
    #[arg(long, env = "AXP_ALLOW_PLAIN_HTTP", global = true)]
    pub(crate) allow_plain_http: bool,
}

/// The host variable's old name, read when `AXP_API_BASE_URL` is not set.
const OLD_HOST_VAR: &str = "AXP_HOST";

/// The emulator's announcement, as far as we use it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CredentialsFile {
    #[serde(rename = "hostURL")]
    host_url: Option<String>,
    account_id: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    appkey: Option<String>,
    integration_id: Option<String>,
    ca_cert_file: Option<PathBuf>,
}

/// The settings after merging flags, environment and the credentials file.
pub(crate) struct Resolved {
    host: Option<String>,
    pub(crate) account_id: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    pub(crate) appkey: Option<Secret>,
    pub(crate) integration_id: Option<String>,
    ca_cert: Option<PathBuf>,
    pub(crate) allow_plain_http: bool,
}

impl Target {
    /// Merges in the credentials file, if one is named; flags and variables win over it.
    pub(crate) fn resolve(&self) -> Result<Resolved, CliError> {
        let file = match &self.credentials {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?;
                let parsed: CredentialsFile = serde_json::from_str(text.trim()).map_err(|e| {
                    CliError::usage(format!(
                        "{} is not the emulator's credentials JSON: {e}",
                        path.display()
                    ))
                })?;
                Some(parsed)
            }
        };
        let file = file.as_ref();
        let pick = |flag: &Option<String>, from_file: Option<&Option<String>>| {
            flag.clone()
                .filter(|v| !v.is_empty())
                .or_else(|| from_file.and_then(Clone::clone))
        };
        // `AXP_HOST`, the name this tool used before it shared token-client's variables.
        let host = self
            .host
            .clone()
            .filter(|v| !v.is_empty())
            .or_else(|| std::env::var(OLD_HOST_VAR).ok().filter(|v| !v.is_empty()));
        Ok(Resolved {
            host: pick(&host, file.map(|f| &f.host_url)),
            account_id: pick(&self.account_id, file.map(|f| &f.account_id)),
            client_id: pick(&self.client_id, file.map(|f| &f.client_id)),
            client_secret: pick(&self.client_secret, file.map(|f| &f.client_secret))
                .map(Secret::new),
            appkey: pick(&self.appkey, file.map(|f| &f.appkey)).map(Secret::new),
            integration_id: pick(&self.integration_id, file.map(|f| &f.integration_id)),
            ca_cert: self
                .ca_cert
                .clone()
                .or_else(|| file.and_then(|f| f.ca_cert_file.clone())),
            allow_plain_http: self.allow_plain_http,
        })
    }
}

impl Resolved {
    /// The host, with any trailing slash removed.
    pub(crate) fn host(&self) -> Result<String, CliError> {
        self.host
            .as_deref()
            .map(|h| h.trim_end_matches('/').to_owned())
            .ok_or_else(|| {
                CliError::usage(
                    "no AXP host: give --host, set AXP_API_BASE_URL, or name the emulator's \
                     credentials with --credentials FILE",
                )
            })
    }

    /// Whether client credentials were given (so that tokens can be minted directly).
    pub(crate) fn has_client_credentials(&self) -> bool {
        self.client_id.is_some() || self.client_secret.is_some()
    }

    /// The TLS configuration trusting `--ca-cert` as well as the usual roots, if one is
    /// given: one configuration for our own calls and every transport of the chat client.
    pub(crate) fn tls(&self) -> Result<Option<Arc<TlsClientConfig>>, CliError> {
        let Some(path) = &self.ca_cert else {
            return Ok(None);
        };
        let pem = std::fs::read(path)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?;
        chat_tokio::tls_config_with_roots(&pem)
            .map(Some)
            .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))
    }

    /// An HTTP client for our own calls and the chat client's REST calls, with this TLS
    /// configuration (from [`tls`](Self::tls)) if any. It follows no redirects: the
    /// requests carry credentials in headers.
    pub(crate) fn http(&self, tls: Option<&TlsClientConfig>) -> Result<reqwest::Client, CliError> {
        let mut builder = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(config) = tls {
            builder = builder.use_preconfigured_tls(config.clone());
        }
        builder
            .build()
            .map_err(|e| CliError::runtime(format!("cannot set up HTTP: {e}")))
    }

    /// A token-client for the account. Without an integration id (provisioning needs none),
    /// a placeholder fills the field: it is only sent when minting chat tokens.
    pub(crate) fn token_client(&self, need_integration: bool) -> Result<TokenClient, CliError> {
        let missing = |what: &str, flag: &str, var: &str| {
            CliError::usage(format!(
                "no {what}: give --{flag}, set {var}, or --credentials FILE"
            ))
        };
        let host = self.host()?;
        let integration_id = match (&self.integration_id, need_integration) {
            (Some(id), true) => {
                check_integration_id(id)?;
                id.clone()
            }
            (Some(id), false) => id.clone(),
            (None, false) => "unused".to_owned(),
            (None, true) => {
                return Err(missing(
                    "integration id",
                    "integration-id",
                    "AXP_INTEGRATION_ID",
                ));
            }
        };
        let config = TokenClientConfig::new(
            host,
            self.account_id
                .clone()
                .ok_or_else(|| missing("account id", "account-id", "AXP_ACCOUNT_ID"))?,
            self.client_id
                .clone()
                .ok_or_else(|| missing("client id", "client-id", "AXP_CLIENT_ID"))?,
            self.client_secret
                .clone()
                .ok_or_else(|| missing("client secret", "client-secret", "AXP_CLIENT_SECRET"))?,
            self.appkey
                .clone()
                .ok_or_else(|| missing("appkey", "appkey", "AXP_APPKEY"))?,
            integration_id,
        )
        .with_allow_plain_http(self.allow_plain_http);
        Ok(TokenClient::builder(config)
            .http_client(self.http(self.tls()?.as_deref())?)
            .build()?)
    }
}

/// Refuses plain `http://` to a host that is not loopback, unless allowed.
pub(crate) fn check_url(url: &str, allow_plain_http: bool) -> Result<reqwest::Url, CliError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| CliError::usage(format!("{url:?} is not a URL: {e}")))?;
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback || allow_plain_http => Ok(parsed),
        "http" => Err(CliError::usage(format!(
            "{url} is plain http to a host that is not loopback; use https (or \
             --allow-plain-http, never in production)"
        ))),
        other => Err(CliError::usage(format!(
            "{url}: unsupported scheme {other:?}"
        ))),
    }
}

/// Checks an integration id's form before anything is sent, as the chat client does: AXP's
/// ids are UUIDs, and a typo is a usage mistake (exit 2), not the server's 404.
pub(crate) fn check_integration_id(id: &str) -> Result<(), CliError> {
    let groups: Vec<&str> = id.split('-').collect();
    let uuid = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.chars().all(|c| c.is_ascii_hexdigit()));
    if uuid {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "the integration id {id:?} (--integration-id) is not a UUID such as \
             123e4567-e89b-12d3-a456-426614174000"
        )))
    }
}
