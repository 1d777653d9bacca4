//! An app that restarts in the middle of a chat and carries on where it was: the first run
//! starts a chat, saves the client's `Resumption` after every event it takes, and exits
//! without shutting down (as a crash or an upgrade would); while it is away the agent writes;
//! the second run resumes the same session from the saved file, gets what it missed, and ends
//! the chat.
//!
//! `cargo run -p chat-tokio --example resume`: the example is both sides. Without arguments it
//! starts the embedded emulator, plays the backend (mints the customer's chat token) and the
//! agent, and runs itself twice as the app (`resume app`), each run a process of its own.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use chat_tokio::{Client, DisconnectReason, Event, ParticipantType, Resumption, ShutdownReason};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    if std::env::args().nth(1).as_deref() == Some("app") {
        return app().await;
    }
    let emulator = chat_emulator::Emulator::builder()
        .agent_delay(Duration::from_millis(100))
        .agent_reply_delay(Duration::from_millis(100))
        .start()
        .await?;
    let c = emulator.credentials();
    let control = emulator.control();
    // What the app's backend would hand it: a chat token for this customer.
    let token = control.mint_token("customer-7", true, Duration::from_secs(15 * 60));
    let state =
        std::env::temp_dir().join(format!("axp-resume-example-{}.json", std::process::id()));
    let exe = std::env::current_exe()?;
    let run_app = || {
        tokio::process::Command::new(&exe)
            .arg("app")
            .env("AXP_HOST", emulator.base_url())
            .env("AXP_INTEGRATION_ID", &c.integration_id)
            .env("AXP_APPKEY", &c.appkey)
            .env("AXP_CHAT_TOKEN", &token)
            .env("STATE_FILE", &state)
            .status()
    };

    println!("--- first run");
    let status = run_app().await?;
    if !status.success() {
        return Err(format!("the first run failed: {status}").into());
    }

    // The app is gone; its chat is not. The agent writes meanwhile.
    let saved: Resumption = serde_json::from_slice(&std::fs::read(&state)?)?;
    let engagement = saved
        .active_engagements
        .first()
        .ok_or("no chat was saved")?;
    control.post_message(
        engagement,
        ParticipantType::Agent,
        "While you were away: your parcel arrives tomorrow.",
    )?;
    println!(
        "--- (agent, while the app is down) While you were away: your parcel arrives tomorrow."
    );

    println!("--- second run");
    let status = run_app().await?;
    let _ = std::fs::remove_file(&state);
    emulator.shutdown().await;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the second run failed: {status}").into())
    }
}

/// The app: resumes the saved session if there is one, otherwise starts a chat.
async fn app() -> Result<(), BoxError> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    let state = PathBuf::from(var("STATE_FILE")?);
    let mut builder = Client::builder(
        var("AXP_HOST")?,
        var("AXP_INTEGRATION_ID")?,
        var("AXP_APPKEY")?,
    )
    .token(var("AXP_CHAT_TOKEN")?);
    let saved = match std::fs::read(&state) {
        Ok(bytes) => Some(serde_json::from_slice::<Resumption>(&bytes)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(saved) = &saved {
        builder = builder.resume(saved.clone());
    }
    let (client, events) = builder.connect().await?;

    let chat = match &saved {
        None => {
            let chat = client.create_engagement().await?;
            chat.wait_active().await?;
            let sent = chat.send_message("Hello, my parcel is late.").await?;
            println!("customer: {}", sent.text().unwrap_or_default());
            chat
        }
        Some(saved) => {
            let id = saved
                .active_engagements
                .first()
                .ok_or("no chat was saved")?;
            client
                .engagement(id)
                .ok_or("the resumed session lost its chat")?
        }
    };

    // Take events, saving the position after each: what was taken is never shown twice,
    // what was not is fetched again after a restart.
    let mut seen_agent = 0;
    let wanted = if saved.is_none() { 2 } else { 1 }; // greeting + answer; then the missed one
    while seen_agent < wanted {
        let e = tokio::time::timeout(Duration::from_secs(15), events.recv())
            .await?
            .ok_or("the client stopped")?;
        if let Event::MessageArrived(m) = &e.event {
            if m.sender.participant_type == ParticipantType::Agent {
                println!("agent:    {}", m.text().unwrap_or_default());
                seen_agent += 1;
            }
        }
        save(&state, &client.resumption()?)?;
    }

    if saved.is_none() {
        // Leave without `shutdown`, as a crash would: the session stays on the server.
        println!("(the app exits without shutting down)");
        std::process::exit(0);
    }
    let transcript = chat.transcript().await?;
    println!("(transcript: {} messages, oldest first)", transcript.len());
    chat.disconnect(Some(DisconnectReason::UserClosed)).await?;
    client.shutdown(Some(ShutdownReason::UserClosed)).await?;
    Ok(())
}

/// Writes the resumption atomically: a crash mid-write leaves the previous one.
fn save(path: &Path, resumption: &Resumption) -> Result<(), BoxError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(resumption)?)?;
    std::fs::rename(tmp, path)?;
    Ok(())
}
