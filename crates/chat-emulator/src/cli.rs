//! The emulator's command line, shared by the `chat-emulator` binary and `axp-chat emulator`:
//! one definition of the options ([`EmulatorArgs`]) and one [`run`].
//!
//! ```
//! use clap::Parser;
//!
//! /// A binary of your own that embeds the emulator's options.
//! #[derive(Parser)]
//! struct MyCli {
//!     #[command(flatten)]
//!     emulator: chat_emulator::cli::EmulatorArgs,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cli = MyCli::try_parse_from(["my-cli", "--listen", "127.0.0.1:0", "--agent", "bot"])?;
//! // Serves until the future completes (here at once), after printing its JSON line.
//! chat_emulator::cli::run_until(cli.emulator, async {}).await?;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::{AgentMode, Emulator, EmulatorBuilder, StartError};

/// The options of a stand-alone emulator. Flatten it into a `clap::Parser`, or use it as a
/// subcommand's arguments. Its `Debug` leaves the secrets out.
#[derive(clap::Args, Clone)]
pub struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443", env = "CHAT_EMULATOR_LISTEN")]
    pub listen: SocketAddr,
    /// Serve HTTPS with a self-signed certificate made at start (the official JS SDK
    /// refuses http:// hosts).
    #[arg(long)]
    pub tls: bool,
    /// Where to write the certificate to trust (PEM); default a file in the temp directory.
    #[arg(long, requires = "tls")]
    pub cert_out: Option<PathBuf>,
    /// Extra host names or IPs for the certificate.
    #[arg(long = "tls-host", requires = "tls")]
    pub tls_hosts: Vec<String>,
    /// Write the credentials JSON to this file too.
    #[arg(long)]
    pub credentials_out: Option<PathBuf>,
    /// Long-poll hold time in milliseconds.
    #[arg(long, default_value_t = 25_000)]
    pub hold_time_ms: u64,
    /// Contact-center simulation: agent, bot or off.
    #[arg(long, default_value = "agent")]
    pub agent: AgentMode,
    /// Agent delay before joining and before each answer, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub agent_delay_ms: u64,
    /// Allow chat tokens shorter than 15 minutes (fractional `ttl`, or `ttlSeconds`).
    #[arg(long)]
    pub allow_short_token_ttl: bool,
    /// Force the lifetime of every chat token the token API mints, in seconds.
    #[arg(long)]
    pub chat_token_ttl_secs: Option<u64>,
    /// Lifetime of OAuth access tokens, in seconds.
    #[arg(long, default_value_t = 900)]
    pub access_token_ttl_secs: u64,
    /// WebSocket ping interval in seconds.
    #[arg(long, default_value_t = 20)]
    pub ws_ping_secs: u64,
    /// Close a connection that has not sent a whole request head this many milliseconds after
    /// accept (TLS handshake included) or after the first byte of a later request.
    #[arg(
        long,
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1..),
        env = "CHAT_EMULATOR_HEADER_READ_TIMEOUT_MS"
    )]
    pub header_read_timeout_ms: u64,
    /// Close a keep-alive connection idle (no request in flight) for this many milliseconds.
    #[arg(
        long,
        default_value_t = 60_000,
        value_parser = clap::value_parser!(u64).range(1..),
        env = "CHAT_EMULATOR_IDLE_TIMEOUT_MS"
    )]
    pub idle_timeout_ms: u64,
    /// At most this many open connections; past it the longest-waiting idle or slow one is
    /// closed to admit a new one.
    #[arg(
        long,
        default_value_t = 16_384,
        value_parser = clap::value_parser!(u64).range(1..),
        env = "CHAT_EMULATOR_MAX_CONNECTIONS"
    )]
    pub max_connections: u64,
    /// Account id (realm).
    #[arg(long, default_value = "EMULAB", env = "CHAT_EMULATOR_ACCOUNT_ID")]
    pub account_id: String,
    /// Fixed OAuth client id (random by default).
    #[arg(long, env = "CHAT_EMULATOR_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Fixed OAuth client secret (random by default).
    #[arg(
        long,
        env = "CHAT_EMULATOR_CLIENT_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub client_secret: Option<String>,
    /// Fixed appkey (random by default).
    #[arg(
        long,
        env = "CHAT_EMULATOR_APPKEY",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub appkey: Option<String>,
    /// Fixed id (UUID) of the integration provisioned at start.
    #[arg(long, env = "CHAT_EMULATOR_INTEGRATION_ID")]
    pub integration_id: Option<String>,
    /// Fixed control key (random by default).
    #[arg(
        long,
        env = "CHAT_EMULATOR_CONTROL_KEY",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub control_key: Option<String>,
    /// Do not serve the web console.
    #[arg(long)]
    pub no_console: bool,
    /// Address of the web console [default: 127.0.0.1, the port after --listen's (a free
    /// one if that is taken, or with port 0)]. An address other than loopback requires the
    /// console secret.
    #[arg(
        long,
        env = "CHAT_EMULATOR_CONSOLE_LISTEN",
        conflicts_with = "no_console"
    )]
    pub console_listen: Option<SocketAddr>,
    /// The secret the console asks for (required off loopback; generated and printed if not
    /// given).
    #[arg(
        long,
        env = "CHAT_EMULATOR_CONSOLE_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true,
        conflicts_with = "no_console"
    )]
    pub console_secret: Option<String>,
}

impl fmt::Debug for EmulatorArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorArgs")
            .field("listen", &self.listen)
            .field("tls", &self.tls)
            .field("agent", &self.agent)
            .field("account_id", &self.account_id)
            .field("client_id", &self.client_id)
            .field("no_console", &self.no_console)
            .field("console_listen", &self.console_listen)
            .finish_non_exhaustive()
    }
}

impl EmulatorArgs {
    /// The builder these options describe.
    pub fn builder(&self) -> EmulatorBuilder {
        let mut builder = Emulator::builder()
            .listen(self.listen)
            .tls(self.tls)
            .hold_time(Duration::from_millis(self.hold_time_ms))
            .agent(self.agent)
            .agent_delay(Duration::from_millis(self.agent_delay_ms))
            .allow_short_token_ttl(self.allow_short_token_ttl)
            .access_token_ttl(Duration::from_secs(self.access_token_ttl_secs))
            .ws_ping_interval(Duration::from_secs(self.ws_ping_secs))
            .header_read_timeout(Duration::from_millis(self.header_read_timeout_ms))
            .idle_timeout(Duration::from_millis(self.idle_timeout_ms))
            .max_connections(usize::try_from(self.max_connections).unwrap_or(usize::MAX))
            .account_id(self.account_id.clone());
        if let Some(path) = &self.cert_out {
            builder = builder.cert_path(path.clone());
        }
        for host in &self.tls_hosts {
            builder = builder.tls_host(host.clone());
        }
        if let Some(secs) = self.chat_token_ttl_secs {
            builder = builder.chat_token_ttl(Duration::from_secs(secs));
        }
        if let (Some(id), Some(secret)) = (&self.client_id, &self.client_secret) {
            builder = builder.client_credentials(id.clone(), secret.clone());
        }
        if let Some(appkey) = &self.appkey {
            builder = builder.appkey(appkey.clone());
        }
        if let Some(id) = &self.integration_id {
            builder = builder.integration_id(id.clone());
        }
        if let Some(key) = &self.control_key {
            builder = builder.control_key(key.clone());
        }
        if !self.no_console {
            builder = match self.console_listen {
                Some(addr) => builder.console_listen(addr),
                None => {
                    let port = match self.listen.port() {
                        0 | u16::MAX => 0,
                        port => port + 1,
                    };
                    let mut builder = builder.console_listen(SocketAddr::new(
                        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                        port,
                    ));
                    builder.console_fallback = true;
                    builder
                }
            };
            if let Some(secret) = &self.console_secret {
                builder = builder.console_secret(secret.clone());
            }
        }
        builder
    }
}

/// Why [`run`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The emulator could not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The credentials file could not be written.
    #[error("cannot write {path}: {source}")]
    CredentialsOut {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Standard output or the Ctrl-C handler failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Starts the emulator, prints its announcement (one JSON line with every credential) on
/// stdout, writes it to `--credentials-out` if given, prints the console's address (and a
/// generated console secret) on stderr, and serves until Ctrl-C.
pub async fn run(args: EmulatorArgs) -> Result<(), RunError> {
    run_until(args, async {
        // A failing Ctrl-C handler would otherwise stop the emulator at once.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
    .await
}

/// [`run`], serving until `stop` completes instead of until Ctrl-C.
pub async fn run_until(
    args: EmulatorArgs,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), RunError> {
    let emulator = args.builder().start().await?;
    let line = emulator.announcement_json();
    if let Some(path) = &args.credentials_out {
        std::fs::write(path, format!("{line}\n")).map_err(|source| RunError::CredentialsOut {
            path: path.clone(),
            source,
        })?;
    }
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}")?;
        stdout.flush()?;
    }
    if let Some(url) = emulator.console_url() {
        let mut stderr = std::io::stderr().lock();
        writeln!(stderr, "Console: {url}")?;
        if emulator.console_secret_generated() {
            if let Some(secret) = emulator.console_secret() {
                writeln!(
                    stderr,
                    "Console secret (generated, enter it once in the page): {secret}"
                )?;
            }
        }
    }
    stop.await;
    tracing::info!("shutting down");
    emulator.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::EmulatorArgs;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: EmulatorArgs,
    }

    #[test]
    fn defaults_match_the_documented_ones_and_debug_hides_secrets() {
        let cli = Cli::try_parse_from([
            "x",
            "--client-id",
            "id",
            "--client-secret",
            "s3cret-value",
            "--appkey",
            "appkey-value",
            "--control-key",
            "control-value",
            "--console-secret",
            "console-value",
        ])
        .expect("parses");
        assert_eq!(cli.args.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(cli.args.hold_time_ms, 25_000);
        assert_eq!(cli.args.header_read_timeout_ms, 10_000);
        assert_eq!(cli.args.idle_timeout_ms, 60_000);
        assert_eq!(cli.args.max_connections, 16_384);
        let builder = format!("{:?}", cli.args.builder());
        assert!(builder.contains("max_connections: 16384"), "{builder}");
        assert!(
            Cli::try_parse_from(["x", "--max-connections", "0"]).is_err(),
            "at least one connection"
        );
        assert_eq!(cli.args.account_id, "EMULAB");
        let debug = format!("{:?}", cli.args);
        for secret in [
            "s3cret-value",
            "appkey-value",
            "control-value",
            "console-value",
        ] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(
            Cli::try_parse_from(["x", "--cert-out", "c.pem"]).is_err(),
            "needs --tls"
        );
        // Secrets may start with '-'.
        let cli = Cli::try_parse_from(["x", "--appkey", "-abc"]).expect("parses");
        assert_eq!(cli.args.appkey.as_deref(), Some("-abc"));
    }
}
