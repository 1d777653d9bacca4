//! `axp-token-server`: the reference chat-token backend.
//!
//! Usage: `axp-token-server [--config FILE]` (or `AXP_TOKEN_SERVER_CONFIG=FILE`); every setting
//! can also come from `AXP_*` environment variables, which override the file. See
//! `docs/authentication.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use token_client::TokenClient;
use token_client::server::{AuthMode, ServerConfig, router, serve};
use tracing::{error, info, warn};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: none in a redirected stream or a log
        // file, and none when NO_COLOR (https://no-color.org) is set.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            error!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut path = std::env::var_os("AXP_TOKEN_SERVER_CONFIG").map(PathBuf::from);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => {
                path = Some(args.next().ok_or("--config needs a file")?.into());
            }
            "--help" | "-h" => {
                info!(
                    "usage: axp-token-server [--config FILE]; settings from the file and AXP_* variables"
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    let config = ServerConfig::load(path.as_deref()).map_err(|e| e.to_string())?;
    if config.auth_mode == AuthMode::DemoTrustClient {
        warn!(
            "auth_mode demo-trust-client: the page's verifiedCustomer claim is believed; \
             plug in your own authentication before production use"
        );
    }
    let client = TokenClient::new(config.token.clone()).map_err(|e| e.to_string())?;
    match client.warm_up().await {
        Ok(()) => info!("OAuth credentials accepted"),
        Err(e) => {
            warn!(error = %e, "could not fetch an access token at start-up; will retry per request")
        }
    }
    let app = router(
        client,
        config.auth_mode.authenticator(),
        &config.allowed_origins,
    )
    .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    info!(
        address = %local,
        origins = ?config.allowed_origins,
        header_read_timeout_ms = config.limits.header_read_timeout.as_millis(),
        idle_timeout_ms = config.limits.idle_timeout.as_millis(),
        max_connections = config.limits.max_connections,
        "axp-token-server listening: POST /v1/getJWT, GET /v1/getIntegration"
    );
    serve(listener, app, config.limits, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    info!("axp-token-server stopped");
    Ok(())
}
