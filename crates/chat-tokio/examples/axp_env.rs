//! An interactive chat against any AXP Digital host (or a running `chat-emulator`),
//! configured from the environment.
//!
//! ```sh
//! # With a chat JWT your backend minted (push style: no automatic refresh):
//! AXP_API_BASE_URL=https://na.api.avayacloud.com AXP_INTEGRATION_ID=… AXP_APPKEY=… \
//! AXP_CHAT_TOKEN='jwt.…' cargo run -p chat-tokio --example axp_env
//!
//! # Or let the example play the backend with the token-client variables (AXP_ACCOUNT_ID,
//! # AXP_CLIENT_ID, AXP_CLIENT_SECRET, … see docs/authentication.md): tokens then refresh
//! # by themselves. For demonstrations only: client secrets belong on your backend.
//! ```
//!
//! Optional: `AXP_CUSTOMER_ID` (default `rust-sdk-demo`), `AXP_CUSTOMER_NAME`,
//! `AXP_TRANSPORT` (`long-poll`, `websocket` or `auto`), `AXP_ALLOW_PLAIN_HTTP=true` for a
//! non-loopback `http://` host. Type lines to send them; `/quit` leaves the chat.
#![allow(clippy::print_stdout)]

use std::sync::Arc;

use chat_tokio::{Client, DisconnectReason, Event, ShutdownReason, StreamTransport};
use tokio::io::{AsyncBufReadExt, BufReader};

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn required(name: &str) -> Result<String, Box<dyn std::error::Error>> {
    var(name).ok_or_else(|| format!("set {name}").into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let host = required("AXP_API_BASE_URL")?;
    let integration = required("AXP_INTEGRATION_ID")?;
    let appkey = required("AXP_APPKEY")?;
    let transport = match var("AXP_TRANSPORT").as_deref() {
        Some("websocket") => StreamTransport::WebSocket,
        Some("auto") => StreamTransport::Auto,
        _ => StreamTransport::LongPoll,
    };
    let mut builder = Client::builder(&host, &integration, &appkey)
        .stream_transport(transport)
        .allow_plain_http(var("AXP_ALLOW_PLAIN_HTTP").as_deref() == Some("true"));
    if let Some(name) = var("AXP_CUSTOMER_NAME") {
        builder = builder.display_name(name);
    }
    builder = match var("AXP_CHAT_TOKEN") {
        Some(token) => builder.token(token),
        None => {
            let backend = Arc::new(token_client::TokenClient::new(
                token_client::TokenClientConfig::from_env()?,
            )?);
            let mut customer = token_client::CustomerRequest::verified(
                var("AXP_CUSTOMER_ID").unwrap_or_else(|| "rust-sdk-demo".to_owned()),
            );
            if let Some(name) = var("AXP_CUSTOMER_NAME") {
                customer = customer.name(name);
            }
            builder.token_provider(move || {
                let backend = Arc::clone(&backend);
                let customer = customer.clone();
                async move {
                    Ok(backend
                        .generate_jwt(&customer)
                        .await?
                        .token
                        .expose()
                        .to_owned())
                }
            })
        }
    };

    let (client, events) = builder.connect().await?;
    println!("session {}", client.session_id());
    let chat = match client.user_context().engagements.first() {
        Some(ongoing) => {
            println!("joining ongoing engagement {}", ongoing.engagement_id);
            let chat = client.engagement_handle(ongoing.clone());
            chat.join().await?;
            chat
        }
        None => client.create_engagement().await?,
    };
    println!("engagement {}; type a message, /quit to leave", chat.id());

    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = stdin.next_line() => {
                let Some(line) = line? else { break };
                if line.trim() == "/quit" {
                    break;
                }
                if !line.trim().is_empty() {
                    if let Err(e) = chat.send_message(line.trim()).await {
                        println!("not sent: {e}");
                    }
                }
            }
            event = events.recv() => {
                let Some(e) = event else { break };
                match &e.event {
                    Event::MessageArrived(m) => println!(
                        "{}: {}",
                        m.sender.display_name.as_deref().unwrap_or("agent"),
                        m.text().unwrap_or("<non-text message>")
                    ),
                    Event::MessageDelivered(m) => println!("you: {}", m.text().unwrap_or("")),
                    Event::EngagementTerminated(_) => {
                        println!("the chat has ended");
                        break;
                    }
                    other => println!("[{}]", other.name()),
                }
            }
        }
    }
    let _ = chat.disconnect(Some(DisconnectReason::UserClosed)).await;
    client.shutdown(Some(ShutdownReason::UserClosed)).await?;
    Ok(())
}
