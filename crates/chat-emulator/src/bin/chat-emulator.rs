//! `chat-emulator`: runs the AXP Digital emulator until Ctrl-C.
//!
//! On start it prints one JSON line with everything a client needs (`hostURL`, `accountId`,
//! `clientId`, `clientSecret`, `appkey`, `integrationId`, `controlKey`, and `caCertFile` with
//! `--tls`), and writes the same JSON to `--credentials-out` if given.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chat_emulator::{AgentMode, Emulator};
use clap::Parser;

/// A local AXP Digital service for chat SDK development and tests.
#[derive(Parser, Debug)]
#[command(name = "chat-emulator", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443", env = "CHAT_EMULATOR_LISTEN")]
    listen: SocketAddr,
    /// Serve HTTPS with a self-signed certificate made at start (the official JS SDK
    /// refuses http:// hosts).
    #[arg(long)]
    tls: bool,
    /// Where to write the certificate to trust (PEM); default a file in the temp directory.
    #[arg(long, requires = "tls")]
    cert_out: Option<PathBuf>,
    /// Extra host names or IPs for the certificate.
    #[arg(long = "tls-host", requires = "tls")]
    tls_hosts: Vec<String>,
    /// Write the credentials JSON to this file too.
    #[arg(long)]
    credentials_out: Option<PathBuf>,
    /// Long-poll hold time in milliseconds.
    #[arg(long, default_value_t = 25_000)]
    hold_time_ms: u64,
    /// Contact-center simulation: agent, bot or off.
    #[arg(long, default_value = "agent")]
    agent: AgentMode,
    /// Agent delay before joining and before each answer, in milliseconds.
    #[arg(long, default_value_t = 300)]
    agent_delay_ms: u64,
    /// Allow chat tokens shorter than 15 minutes (fractional `ttl`, or `ttlSeconds`).
    #[arg(long)]
    allow_short_token_ttl: bool,
    /// Force the lifetime of every chat token the token API mints, in seconds.
    #[arg(long)]
    chat_token_ttl_secs: Option<u64>,
    /// Lifetime of OAuth access tokens, in seconds.
    #[arg(long, default_value_t = 900)]
    access_token_ttl_secs: u64,
    /// WebSocket ping interval in seconds.
    #[arg(long, default_value_t = 20)]
    ws_ping_secs: u64,
    /// Account id (realm).
    #[arg(long, default_value = "EMULAB", env = "CHAT_EMULATOR_ACCOUNT_ID")]
    account_id: String,
    /// Fixed OAuth client id (random by default).
    #[arg(long, env = "CHAT_EMULATOR_CLIENT_ID")]
    client_id: Option<String>,
    /// Fixed OAuth client secret (random by default).
    #[arg(long, env = "CHAT_EMULATOR_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Fixed appkey (random by default).
    #[arg(long, env = "CHAT_EMULATOR_APPKEY", hide_env_values = true)]
    appkey: Option<String>,
    /// Fixed id (UUID) of the integration provisioned at start.
    #[arg(long, env = "CHAT_EMULATOR_INTEGRATION_ID")]
    integration_id: Option<String>,
    /// Fixed control key (random by default).
    #[arg(long, env = "CHAT_EMULATOR_CONTROL_KEY", hide_env_values = true)]
    control_key: Option<String>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let mut builder = Emulator::builder()
        .listen(args.listen)
        .tls(args.tls)
        .hold_time(Duration::from_millis(args.hold_time_ms))
        .agent(args.agent)
        .agent_delay(Duration::from_millis(args.agent_delay_ms))
        .allow_short_token_ttl(args.allow_short_token_ttl)
        .access_token_ttl(Duration::from_secs(args.access_token_ttl_secs))
        .ws_ping_interval(Duration::from_secs(args.ws_ping_secs))
        .account_id(args.account_id);
    if let Some(path) = args.cert_out {
        builder = builder.cert_path(path);
    }
    for host in args.tls_hosts {
        builder = builder.tls_host(host);
    }
    if let Some(secs) = args.chat_token_ttl_secs {
        builder = builder.chat_token_ttl(Duration::from_secs(secs));
    }
    if let (Some(id), Some(secret)) = (args.client_id, args.client_secret) {
        builder = builder.client_credentials(id, secret);
    }
    if let Some(appkey) = args.appkey {
        builder = builder.appkey(appkey);
    }
    if let Some(id) = args.integration_id {
        builder = builder.integration_id(id);
    }
    if let Some(key) = args.control_key {
        builder = builder.control_key(key);
    }
    let emulator = builder.start().await.map_err(|e| e.to_string())?;
    let line = emulator.announcement_json();
    if let Some(path) = &args.credentials_out {
        std::fs::write(path, format!("{line}\n"))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}").map_err(|e| e.to_string())?;
        stdout.flush().map_err(|e| e.to_string())?;
    }
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    tracing::info!("shutting down");
    emulator.shutdown().await;
    Ok(())
}
