//! `chat-soak`: the chaos soak from the command line (`cargo xtask soak` runs it in release).
//!
//! ```text
//! chat-soak --sessions 100 --messages 30 --duration 180 --seed 7 --transport both --adapter tokio
//! chat-soak crash --children 4 --messages 30 --kills 20 --duration 60 --adapter blocking
//! ```
//!
//! Prints a table per run (adapter × transport) and, with `--json`, the figures as JSON on
//! stdout (the table then goes to stderr). Exits with 1 if anything was lost, duplicated or
//! out of order, or a session could not run; 2 on bad options.
//!
//! `chat-soak crash` is the crash soak (customer processes killed with SIGKILL and started
//! again from their store); `crash-child` is the hidden mode its children run in.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool

use std::process::ExitCode;
use std::time::Duration;

use chat_soak::{ChildAdapter, CrashOptions, FaultKind, Options, RunReport, Transport};
use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};

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
#[command(name = "chat-soak", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    #[command(flatten)]
    soak: Args,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// The crash soak: customer processes killed with SIGKILL at seeded instants and started
    /// again from their store (SQLite), while faults go on; fails unless nothing was lost,
    /// duplicated or out of order either way.
    Crash(CrashArgs),
    /// A customer process of the crash soak (started by `crash`).
    #[command(hide = true)]
    CrashChild(CrashChildArgs),
    /// The failover soak: gateway processes on one PostgreSQL (`--postgres-url` or
    /// AXP_TEST_POSTGRES_URL), one killed with SIGKILL mid-run; the others take its sessions
    /// over. Fails unless nothing was lost, duplicated or out of order either way.
    Failover(FailoverArgs),
    /// A gateway process of the failover soak (started by `failover`).
    #[command(hide = true)]
    Gateway(GatewayCliArgs),
}

#[derive(ClapArgs, Debug)]
struct FailoverArgs {
    /// Gateway processes.
    #[arg(long, default_value_t = 2)]
    gateways: usize,
    /// Customers, shared out between the gateways.
    #[arg(long, default_value_t = 6)]
    customers: usize,
    /// Numbers each customer sends.
    #[arg(long, default_value_t = 30)]
    messages: u64,
    /// Agent messages posted to each customer (default: as many as `--messages`).
    #[arg(long)]
    agent_messages: Option<u64>,
    /// Seconds the sends and posts are spread over.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Gateways killed, one after the other (at least one is left).
    #[arg(long, default_value_t = 1)]
    kills: usize,
    /// Emulator faults in all.
    #[arg(long, default_value_t = 10)]
    faults: usize,
    /// The store's lease, in seconds.
    #[arg(long, default_value_t = 3)]
    lease_ttl: u64,
    /// How often a gateway looks for sessions nobody holds, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    poll_ms: u64,
    /// The PostgreSQL server (default: AXP_TEST_POSTGRES_URL); the run uses a schema of its
    /// own and drops it at the end.
    #[arg(long, env = "AXP_TEST_POSTGRES_URL", hide_env_values = true)]
    postgres_url: Option<String>,
    /// Seed of the schedules.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Event-stream transport.
    #[arg(long, value_enum, default_value_t = OneTransportArg::LongPoll)]
    transport: OneTransportArg,
    /// Seconds after the run the customers may take to finish.
    #[arg(long, default_value_t = 120)]
    patience: u64,
    /// The figures as JSON on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
}

#[derive(ClapArgs, Debug)]
struct GatewayCliArgs {
    #[arg(long)]
    name: String,
    #[arg(long, value_delimiter = ',')]
    customers: Vec<usize>,
    #[arg(long)]
    all_customers: usize,
    #[arg(long, value_enum)]
    transport: OneTransportArg,
    #[arg(long)]
    base_url: String,
    #[arg(long)]
    integration_id: String,
    #[arg(long)]
    messages: u64,
    #[arg(long)]
    agent_messages: u64,
    #[arg(long)]
    pace_ms: u64,
    #[arg(long)]
    seed: u64,
    #[arg(long)]
    lease_ttl_ms: u64,
    #[arg(long)]
    poll_ms: u64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ChildAdapterArg {
    Tokio,
    Blocking,
}

impl ChildAdapterArg {
    fn adapter(self) -> ChildAdapter {
        match self {
            Self::Tokio => ChildAdapter::Tokio,
            Self::Blocking => ChildAdapter::Blocking,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OneTransportArg {
    LongPoll,
    Websocket,
}

impl OneTransportArg {
    fn transport(self) -> Transport {
        match self {
            Self::LongPoll => Transport::LongPoll,
            Self::Websocket => Transport::WebSocket,
        }
    }
}

#[derive(ClapArgs, Debug)]
struct CrashArgs {
    /// Customer processes.
    #[arg(long, default_value_t = 4)]
    children: usize,
    /// Numbers each customer sends.
    #[arg(long, default_value_t = 30)]
    messages: u64,
    /// Agent messages posted to each customer (default: as many as `--messages`).
    #[arg(long)]
    agent_messages: Option<u64>,
    /// Seconds the sends, posts, kills and faults are spread over.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// SIGKILLs in all.
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// Faults in all (default: one per four messages, every kind at least once).
    #[arg(long)]
    faults: Option<usize>,
    /// Also invalidate live sessions on the server.
    #[arg(long)]
    live_invalidations: bool,
    /// Seed of the schedules.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Client library the children drive.
    #[arg(long, value_enum, default_value_t = ChildAdapterArg::Tokio)]
    adapter: ChildAdapterArg,
    /// Event-stream transport.
    #[arg(long, value_enum, default_value_t = OneTransportArg::LongPoll)]
    transport: OneTransportArg,
    /// Seconds after the run the children may take to finish.
    #[arg(long, default_value_t = 120)]
    patience: u64,
    /// The figures as JSON on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
}

#[derive(ClapArgs, Debug)]
struct CrashChildArgs {
    #[arg(long)]
    index: usize,
    #[arg(long, value_enum)]
    adapter: ChildAdapterArg,
    #[arg(long, value_enum)]
    transport: OneTransportArg,
    #[arg(long)]
    base_url: String,
    #[arg(long)]
    integration_id: String,
    #[arg(long)]
    store: std::path::PathBuf,
    #[arg(long)]
    messages: u64,
    #[arg(long)]
    agent_messages: u64,
    #[arg(long)]
    pace_ms: u64,
    #[arg(long)]
    seed: u64,
    #[arg(long, default_value_t = 15_000)]
    lease_ttl_ms: u64,
}

/// The options of the chaos soak (no subcommand).
#[derive(ClapArgs, Debug)]
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
    let cli = Cli::parse();
    match cli.mode {
        None => soak(&cli.soak),
        Some(Mode::Crash(args)) => crash(&args),
        Some(Mode::CrashChild(args)) => crash_child(&args),
        Some(Mode::Failover(args)) => failover(&args),
        Some(Mode::Gateway(args)) => gateway(&args),
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("chat-soak: no runtime: {e}");
            None
        }
    }
}

/// Prints a report as a table, or as JSON with the table on stderr; the exit code says
/// whether it is clean.
fn print_report<R: serde::Serialize>(report: &R, table: &str, json: bool, clean: bool) -> ExitCode {
    if json {
        eprint!("{table}");
        match serde_json::to_string_pretty(report) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("chat-soak: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{table}");
    }
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn crash(args: &CrashArgs) -> ExitCode {
    let options = CrashOptions {
        children: args.children,
        messages: args.messages,
        agent_messages: args.agent_messages.unwrap_or(args.messages),
        duration: Duration::from_secs(args.duration),
        kills: args.kills,
        faults: args.faults,
        live_invalidations: args.live_invalidations,
        seed: args.seed,
        adapter: args.adapter.adapter(),
        transport: args.transport.transport(),
        exe: None,
        patience: Duration::from_secs(args.patience),
    };
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    eprintln!(
        "chat-soak crash: {} / {}: {} children × {} messages, {} kills over {} s, seed {}",
        options.adapter.name(),
        options.transport,
        options.children,
        options.messages,
        options.kills,
        args.duration,
        options.seed
    );
    match runtime.block_on(chat_soak::run_crash(&options)) {
        Ok(report) => print_report(&report, &report.table(), args.json, report.clean()),
        Err(e) => {
            eprintln!("chat-soak: {e}");
            ExitCode::from(2)
        }
    }
}

fn crash_child(args: &CrashChildArgs) -> ExitCode {
    let child = chat_soak::ChildArgs {
        index: args.index,
        adapter: args.adapter.adapter(),
        transport: args.transport.transport(),
        base_url: args.base_url.clone(),
        integration_id: args.integration_id.clone(),
        store: args.store.clone(),
        messages: args.messages,
        agent_messages: args.agent_messages,
        pace: Duration::from_millis(args.pace_ms),
        seed: args.seed,
        lease_ttl: Duration::from_millis(args.lease_ttl_ms),
    };
    match chat_soak::run_child(&child) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-soak crash-child {}: {e}", args.index);
            ExitCode::from(3)
        }
    }
}

fn failover(args: &FailoverArgs) -> ExitCode {
    let options = chat_soak::FailoverOptions {
        gateways: args.gateways,
        customers: args.customers,
        messages: args.messages,
        agent_messages: args.agent_messages.unwrap_or(args.messages),
        duration: Duration::from_secs(args.duration),
        kills: args.kills,
        faults: args.faults,
        lease_ttl: Duration::from_secs(args.lease_ttl),
        poll: Duration::from_millis(args.poll_ms),
        postgres_url: args.postgres_url.clone(),
        seed: args.seed,
        transport: args.transport.transport(),
        exe: None,
        patience: Duration::from_secs(args.patience),
    };
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    eprintln!(
        "chat-soak failover: {} gateways / {}: {} customers × {} messages over {} s, {} killed, lease {} s, seed {}",
        options.gateways,
        options.transport,
        options.customers,
        options.messages,
        args.duration,
        options.kills,
        args.lease_ttl,
        options.seed
    );
    match runtime.block_on(chat_soak::run_failover(&options)) {
        Ok(report) => print_report(&report, &report.table(), args.json, report.clean()),
        Err(e) => {
            eprintln!("chat-soak: {e}");
            ExitCode::from(2)
        }
    }
}

fn gateway(args: &GatewayCliArgs) -> ExitCode {
    let gateway = chat_soak::GatewayArgs {
        name: args.name.clone(),
        customers: args.customers.clone(),
        all_customers: args.all_customers,
        transport: args.transport.transport(),
        base_url: args.base_url.clone(),
        integration_id: args.integration_id.clone(),
        messages: args.messages,
        agent_messages: args.agent_messages,
        pace: Duration::from_millis(args.pace_ms),
        seed: args.seed,
        lease_ttl: Duration::from_millis(args.lease_ttl_ms),
        poll: Duration::from_millis(args.poll_ms),
    };
    match chat_soak::run_gateway(&gateway) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-soak gateway {}: {e}", args.name);
            ExitCode::from(3)
        }
    }
}

fn soak(args: &Args) -> ExitCode {
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
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
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
