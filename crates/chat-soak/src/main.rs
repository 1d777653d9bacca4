//! `chat-soak`: the chaos soak from the command line (`cargo xtask soak` runs it in release).
//!
//! ```text
//! chat-soak --sessions 100 --messages 30 --duration 180 --seed 7 --transport both --adapter tokio
//! ```
//!
//! Prints a table per run (adapter × transport) and, with `--json`, the figures as JSON on
//! stdout (the table then goes to stderr). Exits with 1 if anything was lost, duplicated or
//! out of order, or a session could not run; 2 on bad options.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool

use std::process::ExitCode;
use std::time::Duration;

use chat_soak::{FaultKind, Options, RunReport, Transport};
use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TransportArg {
    LongPoll,
    Websocket,
    Both,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum AdapterArg {
    Tokio,
    Blocking,
    Smol,
    /// Every adapter (`both` is its old name).
    #[value(alias = "both")]
    All,
}

/// The chaos soak: many chat sessions against the in-process emulator with faults injected
/// at random; counts lost, duplicated and out-of-order messages per direction.
#[derive(Parser, Debug)]
#[command(name = "chat-soak", version)]
struct Args {
    /// Sessions, all at once.
    #[arg(long, default_value_t = 10)]
    sessions: usize,
    /// Messages per direction per session.
    #[arg(long, default_value_t = 20)]
    messages: usize,
    /// Seconds the messages and faults are spread over (a drain follows).
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Seed of the schedules.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Faults in all (default: one per four messages, every kind at least once).
    #[arg(long)]
    faults: Option<usize>,
    /// Lifetime of the minted tokens, in seconds.
    #[arg(long, default_value_t = 20)]
    token_ttl: u64,
    /// Event-stream transport.
    #[arg(long, value_enum, default_value_t = TransportArg::Both)]
    transport: TransportArg,
    /// Client library.
    #[arg(long, value_enum, default_value_t = AdapterArg::Tokio)]
    adapter: AdapterArg,
    /// The figures as JSON on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = Options {
        sessions: args.sessions,
        messages: args.messages,
        duration: Duration::from_secs(args.duration),
        seed: args.seed,
        faults: args.faults,
        token_ttl: Duration::from_secs(args.token_ttl),
        kinds: FaultKind::ALL.to_vec(),
        ..Options::default()
    };
    let transports = match args.transport {
        TransportArg::LongPoll => vec![Transport::LongPoll],
        TransportArg::Websocket => vec![Transport::WebSocket],
        TransportArg::Both => vec![Transport::LongPoll, Transport::WebSocket],
    };
    let names: &[&str] = match args.adapter {
        AdapterArg::Tokio => &["tokio"],
        AdapterArg::Blocking => &["blocking"],
        AdapterArg::Smol => &["smol"],
        AdapterArg::All => &chat_soak::ADAPTERS,
    };
    let mut adapters = Vec::new();
    for name in names {
        match chat_soak::adapter(name) {
            Some(a) => adapters.push(a),
            None => {
                eprintln!(
                    "chat-soak: the {name} adapter is not in this build (available: {})",
                    chat_soak::ADAPTERS.join(", ")
                );
                return ExitCode::from(2);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chat-soak: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut reports: Vec<RunReport> = Vec::new();
    for adapter in &adapters {
        for &transport in &transports {
            eprintln!(
                "chat-soak: {} / {transport}: {} sessions × {} messages per direction over {} s, seed {}",
                adapter.name(),
                options.sessions,
                options.messages,
                args.duration,
                options.seed
            );
            match runtime.block_on(chat_soak::run(&options, transport, adapter.clone())) {
                Ok(r) => reports.push(r),
                Err(e) => {
                    eprintln!("chat-soak: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    let table = chat_soak::table(&reports);
    if args.json {
        eprint!("{table}");
        match serde_json::to_string_pretty(&reports) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("chat-soak: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{table}");
    }
    if reports.iter().all(RunReport::clean) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
