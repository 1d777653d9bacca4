//! `cargo xtask soak [options]`: the chaos soak (`crates/chat-soak`), built in release and run
//! with the options given, which go to the `chat-soak` binary unchanged (`--sessions N
//! --messages M --duration SECS --seed S --transport long-poll|websocket|both --adapter
//! tokio|blocking|smol|all --json`; `cargo xtask soak --help` lists them). It fails if anything
//! was lost, duplicated or out of order.

/// Runs `cargo run --release -p chat-soak -- <args>`.
pub(crate) fn soak(args: &[String]) -> Result<(), String> {
    let mut cargo: Vec<&str> = vec!["run", "--release", "--quiet", "-p", "chat-soak", "--"];
    cargo.extend(args.iter().map(String::as_str));
    crate::cargo(&cargo, &[])
}
