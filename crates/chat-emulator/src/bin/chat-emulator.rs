//! `chat-emulator`: runs the AXP Digital emulator until Ctrl-C.
//!
//! On start it prints one JSON line with everything a client needs (`hostURL`, `accountId`,
//! `clientId`, `clientSecret`, `appkey`, `integrationId`, `controlKey`, and `caCertFile` with
//! `--tls`), and writes the same JSON to `--credentials-out` if given. The options are
//! [`chat_emulator::cli::EmulatorArgs`], shared with `axp-chat emulator`.

use chat_emulator::cli::{self, EmulatorArgs};
use clap::Parser;

/// A local AXP Digital service for chat SDK development and tests.
#[derive(Parser)]
#[command(name = "chat-emulator", version, about)]
struct Cli {
    #[command(flatten)]
    args: EmulatorArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
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
    let cli = Cli::parse();
    match cli::run(cli.args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
