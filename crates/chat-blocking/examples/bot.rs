//! A bot on the customer side, on plain threads (no async runtime in the bot): it opens a
//! chat for a shop's order system, reports a problem, answers the agent from a few rules, and
//! leaves when it is done or when the agent ends the chat. Tokens come from the backend
//! (token-client's blocking client) whenever the client needs one.
//!
//! `cargo run -p chat-blocking --example bot` (against the embedded emulator, which runs on a
//! tokio runtime of its own; the bot does not).
#![allow(clippy::print_stdout)]

use std::time::Duration;

use chat_blocking::{Client, DisconnectReason, Event, Message, ParticipantType, ShutdownReason};
use token_client::CustomerRequest;
use token_client::blocking::TokenClient;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the bot says, by what it has seen.
enum Reply {
    Say(&'static str),
    Leave,
    Nothing,
}

fn rule(message: &Message, reported: bool) -> Reply {
    let text = message.text().unwrap_or_default().to_lowercase();
    if text.contains("how can i help") && !reported {
        Reply::Say("Order 4711 has been waiting for a courier for 3 days.")
    } else if text.contains("received your message") {
        Reply::Leave
    } else {
        Reply::Nothing
    }
}

fn main() -> Result<(), BoxError> {
    // The AXP side (for the example): the emulator, on its own runtime.
    let runtime = tokio::runtime::Runtime::new()?;
    let emulator = runtime.block_on(
        chat_emulator::Emulator::builder()
            .agent_delay(Duration::from_millis(100))
            .agent_reply_delay(Duration::from_millis(100))
            .start(),
    )?;
    let c = emulator.credentials().clone();

    // The backend half: an access token cached inside, a chat token minted per call.
    let backend = TokenClient::new(token_client::TokenClientConfig::new(
        emulator.base_url(),
        c.account_id.clone(),
        c.client_id.clone(),
        c.client_secret.clone(),
        c.appkey.clone(),
        c.integration_id.clone(),
    ))?;
    let provider = backend.provider(CustomerRequest::verified("order-system").name("Order bot"));

    let (client, events) = Client::builder(emulator.base_url(), &c.integration_id, &c.appkey)
        .token_provider(provider)
        .connect()?;
    let chat = client.create_engagement()?;
    println!("bot: chat {} opened", chat.id());

    let mut reported = false;
    loop {
        let e = events.recv_timeout(Duration::from_secs(30))?;
        match &e.event {
            Event::MessageArrived(m) if m.sender.participant_type == ParticipantType::Agent => {
                println!("agent: {}", m.text().unwrap_or_default());
                match rule(m, reported) {
                    Reply::Say(line) => {
                        chat.wait_active()?;
                        chat.send_reply(&m.message_id, line)?;
                        println!("bot:   {line}");
                        reported = true;
                    }
                    Reply::Leave => {
                        println!("bot:   (leaves)");
                        chat.disconnect(Some(DisconnectReason::UserClosed))?;
                        break;
                    }
                    Reply::Nothing => {}
                }
            }
            Event::EngagementTerminated(_) => {
                println!("bot: the agent ended the chat");
                break;
            }
            _ => {}
        }
    }
    client.shutdown(Some(ShutdownReason::UserClosed))?;
    runtime.block_on(emulator.shutdown());
    Ok(())
}
