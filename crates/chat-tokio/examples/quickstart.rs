//! A whole chat in a few seconds, on one machine: starts the embedded AXP emulator, mints a
//! chat JWT with token-client as a backend would, connects, starts a chat, converses with the
//! simulated agent, shows the transcript and every event as it happens, refreshes the token
//! once, and shuts down cleanly.
//!
//! `cargo run -p chat-tokio --example quickstart`
//!
//! Against a real AXP account, see the `axp_env` example.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use chat_tokio::{ChatEvent, Client, DisconnectReason, Event, EventStream, ShutdownReason};
use token_client::{CustomerRequest, TokenClient, TokenClientConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let stamp = move || format!("{:>6.3}s", started.elapsed().as_secs_f64());

    // 1. The AXP side: a local emulator with a quick agent.
    let emulator = chat_emulator::Emulator::builder()
        .hold_time(Duration::from_secs(5))
        .agent_delay(Duration::from_millis(150))
        .start()
        .await?;
    let c = emulator.credentials().clone();
    println!("{} emulator at {}", stamp(), emulator.base_url());

    // 2. The backend side: OAuth client credentials and the Generate JWT Token API.
    let backend = TokenClient::new(TokenClientConfig::new(
        emulator.base_url(),
        c.account_id.clone(),
        c.client_id.clone(),
        c.client_secret.clone(),
        c.appkey.clone(),
        c.integration_id.clone(),
    ))?;
    let customer = CustomerRequest::verified("customer-42").name("Alice Example");
    // The chat client pulls tokens from the backend by itself, ahead of expiry and after a 401.
    let provider = backend.provider(customer);

    // 3. The customer's chat client.
    let (client, mut events) = Client::builder(emulator.base_url(), &c.integration_id, &c.appkey)
        .token_provider(provider)
        .connect()
        .await?;
    println!("{} connected, session {}", stamp(), client.session_id());

    let chat = client.create_engagement().await?;
    println!("{} engagement {} created", stamp(), chat.id());

    // Wait until the agent is there, showing every event.
    wait_for(&mut events, &stamp, |e| {
        matches!(e, Event::MessageArrived(_))
    })
    .await?;

    for line in ["Hi, my order has not arrived.", "It is order 12345."] {
        let sent = chat.send_message(line).await?;
        println!("{} sent message #{}", stamp(), sent.message_index);
        wait_for(&mut events, &stamp, |e| {
            matches!(e, Event::MessageArrived(_))
        })
        .await?;
    }

    // A token refresh, as the client does by itself 3 minutes before expiry.
    client.refresh_token().await?;
    println!("{} token refreshed through the provider", stamp());
    let sent = chat.send_message("Thanks!").await?;
    wait_for(&mut events, &stamp, |e| matches!(e, Event::MessageArrived(m) if m.parent_message_id.as_ref() == Some(&sent.message_id) || m.message_index > sent.message_index)).await?;

    // The transcript, from the server's history: oldest first, each message once.
    let transcript = chat.transcript().await?;
    println!("\n--- transcript ---");
    for m in &transcript {
        let who = m
            .sender
            .display_name
            .clone()
            .unwrap_or_else(|| format!("{:?}", m.sender.participant_type));
        println!(
            "#{:<2} {:<20} {}",
            m.message_index,
            who,
            m.text().unwrap_or("<non-text>")
        );
    }
    println!("------------------\n");

    chat.disconnect(Some(DisconnectReason::UserClosed)).await?;
    wait_for(&mut events, &stamp, |e| {
        matches!(e, Event::EngagementTerminated(_))
    })
    .await?;
    client.shutdown(Some(ShutdownReason::UserClosed)).await?;
    while let Some(e) = events.recv().await {
        show(&stamp, &e);
    }
    emulator.shutdown().await;
    println!("{} done", stamp());
    Ok(())
}

/// Shows events until one matches.
async fn wait_for(
    events: &mut EventStream,
    stamp: &impl Fn() -> String,
    done: impl Fn(&Event) -> bool,
) -> Result<(), Box<dyn std::error::Error>> {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await?
            .ok_or("the client stopped")?;
        show(stamp, &e);
        if done(&e.event) {
            return Ok(());
        }
    }
}

fn show(stamp: &impl Fn() -> String, e: &ChatEvent) {
    let detail = match &e.event {
        Event::MessageArrived(m) | Event::MessageDelivered(m) => format!(
            "#{} {:?}: {}",
            m.message_index,
            m.sender.participant_type,
            m.text().unwrap_or("<non-text>")
        ),
        Event::ParticipantAdded(p) | Event::ParticipantDisconnected(p) => format!(
            "{:?} {}",
            p.participant.participant_type,
            p.participant.display_name.as_deref().unwrap_or("")
        ),
        Event::EventStreamFailed(f) => format!("{} {}", f.reason.as_str(), f.reason.message()),
        Event::Shutdown { reason } => format!("{reason:?}"),
        _ => String::new(),
    };
    println!("{}   event {:<26} {}", stamp(), e.name(), detail);
}
