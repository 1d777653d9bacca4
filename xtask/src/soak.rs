//! `cargo xtask soak [options]`: the chaos soak (`crates/chat-soak`), built in release and run
//! with the options given, which go to the `chat-soak` binary unchanged (`--sessions N
//! --messages M --duration SECS --seed S --transport long-poll|websocket|both --adapter
//! tokio|blocking|smol|all --json`; `cargo xtask soak --help` lists them). It fails if anything
//! was lost, duplicated or out of order.
//!
//! `cargo xtask soak crash [options]` is the crash soak (customer processes killed with
//! SIGKILL and started again from their SQLite store; `--children N --messages M --kills K
//! --duration SECS --adapter tokio|blocking`), and `cargo xtask soak failover [options]` the
//! failover soak (gateway processes on one PostgreSQL, one killed; `--gateways G --customers C
//! --lease-ttl SECS`, with `AXP_TEST_POSTGRES_URL` set, e.g. under `cargo xtask postgres --
//! cargo xtask soak failover`). `cargo xtask soak crash --help` lists their options.

/// Runs `cargo run --release -p chat-soak -- <args>`.
pub(crate) fn soak(args: &[String]) -> Result<(), String> {
    let mut cargo: Vec<&str> = vec!["run", "--release", "--quiet", "-p", "chat-soak", "--"];
    cargo.extend(args.iter().map(String::as_str));
    crate::cargo(&cargo, &[])
}
