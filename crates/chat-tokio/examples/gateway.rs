//! A messaging gateway acting for many customers at once: each customer who writes in (here,
//! 50 simulated ones) gets a chat client of their own, with tokens minted for them by the
//! backend (token-client); the gateway forwards the customer's line into the chat and the
//! agent's answer back out. One process, one tokio runtime, one task per customer.
//!
//! `cargo run -p chat-tokio --example gateway` (against the embedded emulator; `CUSTOMERS=200`
//! to try more).
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_tokio::{Client, DisconnectReason, Event, ParticipantType, ShutdownReason};
use token_client::{CustomerRequest, TokenClient, TokenClientConfig};
use tokio::task::JoinSet;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the gateway reaches AXP: host, integration and appkey (not secret to the client
/// side, but never logged by the SDK either).
struct Axp {
    host: String,
    integration_id: String,
    appkey: String,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let customers: usize = std::env::var("CUSTOMERS").map_or(Ok(50), |v| v.parse())?;
    let emulator = chat_emulator::Emulator::builder()
        .agent_delay(Duration::from_millis(100))
        .agent_reply_delay(Duration::from_millis(100))
        .start()
        .await?;
    let c = emulator.credentials();
    let axp = Arc::new(Axp {
        host: emulator.base_url(),
        integration_id: c.integration_id.clone(),
        appkey: c.appkey.clone(),
    });
    // The backend half: one access token, cached and shared by every customer's provider
    // (a `TokenClient` is a cheap handle).
    let backend = TokenClient::new(TokenClientConfig::new(
        emulator.base_url(),
        c.account_id.clone(),
        c.client_id.clone(),
        c.client_secret.clone(),
        c.appkey.clone(),
        c.integration_id.clone(),
    ))?;

    let started = Instant::now();
    let mut chats = JoinSet::new();
    for n in 0..customers {
        let customer =
            CustomerRequest::verified(format!("customer-{n:03}")).name(format!("Customer {n}"));
        let line = format!("Hello, this is customer {n}: where is order {}?", 1000 + n);
        chats.spawn(converse(Arc::clone(&axp), backend.clone(), customer, line));
    }
    let mut answered = 0;
    while let Some(joined) = chats.join_next().await {
        let (customer, answer) = joined??;
        answered += 1;
        if answered <= 3 {
            println!("{customer} <- agent: {answer}");
        }
    }
    println!(
        "{answered} of {customers} customers answered in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    emulator.shutdown().await;
    if answered == customers {
        Ok(())
    } else {
        Err("some customers were not answered".into())
    }
}

/// One customer's conversation: connect as them, forward their line, wait for the agent's
/// answer, end the chat. Returns who it was and what the agent said.
async fn converse(
    axp: Arc<Axp>,
    backend: TokenClient,
    customer: CustomerRequest,
    line: String,
) -> Result<(String, String), BoxError> {
    let who = customer.customer_id().to_owned();
    // This customer's chat tokens, minted on demand (at connect, ahead of expiry, after a 401).
    let (client, events) = Client::builder(&axp.host, &axp.integration_id, &axp.appkey)
        .token_provider(backend.provider(customer))
        .connect()
        .await?;
    let chat = client.create_engagement().await?;
    chat.wait_active().await?;
    let sent = chat.send_message(&line).await?;

    let answer = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(e) = events.recv().await {
            // The agent's answer to this line (its greeting may come first).
            if let Event::MessageArrived(m) = &e.event {
                let from_agent = m.sender.participant_type == ParticipantType::Agent;
                if from_agent && m.parent_message_id.as_ref() == Some(&sent.message_id) {
                    return Ok(m.text().unwrap_or_default().to_owned());
                }
            }
        }
        Err::<_, BoxError>("the client stopped".into())
    })
    .await??;

    chat.disconnect(Some(DisconnectReason::UserClosed)).await?;
    client.shutdown(Some(ShutdownReason::UserClosed)).await?;
    Ok((who, answer))
}
