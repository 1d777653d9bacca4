//! `axp-chat`: AXP Digital chat in a terminal.
//!
//! ```text
//! axp-chat demo                      # everything against an embedded emulator
//! axp-chat emulator [OPTIONS]        # run the emulator (the options of `chat-emulator`)
//! axp-chat provision create|list|delete …   # chat integrations on the emulator
//! axp-chat token --customer-id ID | --guest [--json]   # mint a chat JWT
//! axp-chat chat [--backend URL | --token JWT] …          # an interactive chat
//! ```
//!
//! Settings come from flags or environment variables (`AXP_API_BASE_URL` (or the older
//! `AXP_HOST`), `AXP_ACCOUNT_ID`,
//! `AXP_CLIENT_ID`, `AXP_CLIENT_SECRET`, `AXP_APPKEY`, `AXP_INTEGRATION_ID`,
//! `AXP_CUSTOMER_ID`, `AXP_BACKEND_URL`, `AXP_CHAT_TOKEN`, `AXP_CA_CERT_FILE`), or from the
//! emulator's credentials JSON with `--credentials FILE`. `axp-chat <command> --help` lists
//! every option.
//!
//! The transcript goes to stdout; progress, connection state and errors to stderr. Input is
//! read line by line, from a terminal or a pipe; end of input means `/quit`. Secrets are
//! never printed, except the token `axp-chat token` is asked for.
//!
//! Exit codes: 0 success, 1 runtime failure (server error, chat failed, session ended by the
//! server), 2 usage (bad flags, missing settings), 3 credentials or token rejected (401/403)
//! or expired (a fixed `--token`), 4 host unreachable.
//!
//! See `docs/cli.md`.
#![forbid(unsafe_code)]

mod chat;
mod demo;
mod error;
mod output;
mod provision;
mod seen;
mod source;
mod target;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::CliError;

/// AXP Digital chat in a terminal: run the emulator, provision integrations, mint chat
/// tokens, chat interactively.
#[derive(Parser)]
#[command(name = "axp-chat", version, propagate_version = true)]
#[command(after_help = "Exit codes: 0 success, 1 runtime failure, 2 usage, \
                        3 credentials or token rejected or expired, 4 host unreachable.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the AXP emulator until Ctrl-C; prints its credentials as one JSON line.
    Emulator(chat_emulator::cli::EmulatorArgs),
    /// Create, list and delete chat integrations on the emulator.
    Provision(provision::ProvisionArgs),
    /// Mint a chat JWT for a verified customer or a guest.
    Token(token::TokenArgs),
    /// Chat as a customer: start a chat or join an open one, and type.
    Chat(chat::ChatArgs),
    /// Everything in one command, against an embedded emulator.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    // Usage errors exit with 2 and `--help` with 0, both from clap.
    let cli = Cli::parse();
    // Logs only when asked for (RUST_LOG), except the emulator's own, as its binary does.
    let default_filter = match cli.command {
        Command::Emulator(_) => "info",
        _ => "off",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: none in a redirected stream or a log
        // file, and none when NO_COLOR (https://no-color.org) is set.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&CliError::runtime(format!("cannot start tokio: {e}"))),
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Emulator(args) => chat_emulator::cli::run(args)
                .await
                .map_err(|e| CliError::runtime(e.to_string())),
            Command::Provision(args) => provision::run(args).await,
            Command::Token(args) => token::run(args).await,
            Command::Chat(args) => chat::run(args).await,
            Command::Demo(args) => demo::run(args).await,
        }
    });
    // Nothing we started may keep the process: the stdin reader thread is left blocked.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(error: &CliError) -> ExitCode {
    output::note(format!("axp-chat: error: {error}"));
    ExitCode::from(error.kind.exit_code())
}
