//! `axp-chat demo`: everything in one command against an embedded emulator.

use std::sync::Arc;
use std::time::Duration;

use chat_emulator::{AgentMode, Emulator};
use token_client::{CustomerRequest, TokenClient, TokenClientConfig};

use crate::chat::{ChatOptions, Setup, Transport, chat};
use crate::error::CliError;
use crate::output::note;

/// Start an embedded emulator, mint a token as a backend would, connect and chat with the
/// simulated agent; the emulator stops when you /quit.
#[derive(clap::Args)]
pub(crate) struct DemoArgs {
    /// Your name in the chat.
    #[arg(long, default_value = "Demo Customer")]
    name: String,
    /// Who answers: agent or bot.
    #[arg(long, default_value = "agent")]
    agent: AgentMode,
    /// The agent's delay before joining and before each answer, in milliseconds.
    #[arg(long, default_value_t = 300)]
    agent_delay_ms: u64,
    /// How events arrive.
    #[arg(long, value_enum, default_value_t = Transport::LongPoll)]
    transport: Transport,
    /// The name agents see (default: --name).
    #[arg(long)]
    display_name: Option<String>,
    // Nothing else: the demo's emulator is new, so `--new` and `--join` mean nothing, and
    // it brings its own account, so no `--host`, credentials or token are taken (clap
    // refuses them: exit 2).
}

pub(crate) async fn run(args: DemoArgs) -> Result<(), CliError> {
    let emulator = Emulator::builder()
        .agent(args.agent)
        .agent_delay(Duration::from_millis(args.agent_delay_ms))
        .console(true)
        .start()
        .await
        .map_err(|e| CliError::runtime(format!("cannot start the emulator: {e}")))?;
    note(format!("emulator running at {}", emulator.base_url()));
    if let Some(url) = emulator.console_url() {
        note(format!(
            "agent console at {url}: watch this chat live, answer as the agent, inject faults"
        ));
    }
    let result = demo(&emulator, args).await;
    emulator.shutdown().await;
    result
}

async fn demo(emulator: &Emulator, args: DemoArgs) -> Result<(), CliError> {
    let c = emulator.credentials();
    let backend = TokenClient::new(TokenClientConfig::new(
        emulator.base_url(),
        c.account_id.clone(),
        c.client_id.clone(),
        c.client_secret.clone(),
        c.appkey.clone(),
        c.integration_id.clone(),
    ))?;
    note("minting chat tokens with token-client, as a backend would");
    chat(Setup {
        host: emulator.base_url(),
        integration_id: c.integration_id.clone(),
        appkey: Some(c.appkey.clone()),
        source: crate::source::TokenSource::Direct {
            client: Arc::new(backend),
            customer: CustomerRequest::verified("demo-customer").name(args.name),
        },
        http: reqwest::Client::new(),
        tls: None,
        allow_plain_http: false,
        options: ChatOptions {
            transport: args.transport,
            display_name: args.display_name,
            ..ChatOptions::default()
        },
    })
    .await
}
