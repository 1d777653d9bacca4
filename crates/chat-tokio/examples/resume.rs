//! An app that is killed in the middle of a chat and carries on where it was, losing nothing
//! and repeating nothing: the session lives in a store (SQLite, one file), and the app writes
//! every agent message it takes into its own table of that file in the same transaction that
//! records its position (exactly-once into the app's store).
//!
//! The first run starts a chat, hands a message over (`saved()`), takes the agent's answers
//! and is killed with `kill -9` (nothing runs after it) while the agent writes on. The second run resumes from the store, gets exactly what it had not taken, finds its
//! message delivered once, and ends the chat.
//!
//! `cargo run -p chat-tokio --example resume`: the example is both sides. Without arguments it
//! starts the embedded emulator, plays the backend (mints the customer's chat token) and the
//! agent, and runs itself twice as the app (`resume app`), each run a process of its own.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chat_store::sqlite::{fence, record_position, rusqlite};
use chat_tokio::{
    Client, DisconnectReason, Event, Message, ParticipantType, ShutdownReason, SqliteStore,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The session's key in the store: one per customer's session.
const KEY: &str = "customer-7";

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
    let dir = std::env::temp_dir().join(format!("axp-resume-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let exe = std::env::current_exe()?;
    let run_app = || {
        tokio::process::Command::new(&exe)
            .arg("app")
            .env("AXP_HOST", emulator.base_url())
            .env("AXP_INTEGRATION_ID", &c.integration_id)
            .env("AXP_APPKEY", &c.appkey)
            .env("AXP_CHAT_TOKEN", &token)
            .env("APP_DB", dir.join("app.db"))
            .status()
    };

    println!("--- first run");
    let status = run_app().await?;
    if status.success() {
        return Err("the first run should have been killed".into());
    }
    println!("--- (the app was killed: {status})");

    // The app is gone; its chat is not. The agent writes meanwhile.
    let engagement = control
        .engagements()
        .into_iter()
        .next()
        .ok_or("no chat was started")?
        .engagement_id;
    for text in [
        "While you were away: it left the depot.",
        "It arrives tomorrow.",
    ] {
        control.post_message(&engagement, ParticipantType::Agent, text)?;
        println!("--- (agent, while the app is down) {text}");
    }

    println!("--- second run");
    let status = run_app().await?;
    let _ = std::fs::remove_dir_all(&dir);
    emulator.shutdown().await;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the second run failed: {status}").into())
    }
}

/// The app: resumes the session its store holds, or starts a chat if it holds none.
async fn app() -> Result<(), BoxError> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    let db = PathBuf::from(var("APP_DB")?);
    let store = Arc::new(SqliteStore::open(&db)?);
    // The app's own table, in the store's file: what it has shown the customer.
    let mut inbox = rusqlite::Connection::open(&db)?;
    inbox.busy_timeout(Duration::from_secs(10))?;
    inbox.execute_batch(
        "CREATE TABLE IF NOT EXISTS inbox (engagement TEXT, message_index INTEGER, text TEXT)",
    )?;

    let (client, events) = Client::builder(
        var("AXP_HOST")?,
        var("AXP_INTEGRATION_ID")?,
        var("AXP_APPKEY")?,
    )
    .token(var("AXP_CHAT_TOKEN")?)
    .store(store, KEY)
    // The same name in every run on this machine: a run after a crash takes the session
    // over at once instead of waiting for the dead one's lease to lapse.
    .store_owner("resume-example")
    // It records what it took itself (below): the client never moves the stored position.
    .app_records_positions()
    .connect()
    .await?;

    let first_run = client.engagements().is_empty();
    let chat = if first_run {
        let chat = client.create_engagement().await?;
        chat.wait_active().await?;
        // Handed over once `saved()` returns: delivered exactly once, whatever happens next.
        let sending = chat.queue_message("Hello, my parcel is late.")?;
        client.saved().await?;
        println!("customer: Hello, my parcel is late. (handed over)");
        drop(sending); // its outcome comes as MESSAGE_DELIVERED (in this run or the next)
        chat
    } else {
        client.engagements().remove(0)
    };

    let lease = client
        .lease()
        .ok_or("a client with a store holds a lease")?;
    // The first run: the greeting and the answer; the second: the two it missed.
    let wanted = 2;
    let mut taken = 0;
    while taken < wanted {
        let e = tokio::time::timeout(Duration::from_secs(15), events.recv())
            .await?
            .ok_or("the client stopped")?;
        let Event::MessageArrived(m) = &e.event else {
            continue;
        };
        if m.sender.participant_type != ParticipantType::Agent {
            continue;
        }
        // Exactly once into the app's store: the message and the position in one
        // transaction, checked against the lease (a process that lost the session to
        // another cannot write).
        let tx = inbox.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        fence(&tx, &lease)?;
        tx.execute(
            "INSERT INTO inbox VALUES (?1, ?2, ?3)",
            rusqlite::params![
                m.engagement_id.as_str(),
                i64::try_from(m.message_index)?,
                m.text().unwrap_or_default()
            ],
        )?;
        record_position(&tx, KEY, m.engagement_id.as_str(), m.message_index)?;
        tx.commit()?;
        println!("agent:    {}", m.text().unwrap_or_default());
        taken += 1;
    }

    if first_run {
        println!("(the app is killed: kill -9, nothing runs after it)");
        // SIGKILL, where there is `kill`; elsewhere `abort`, as abrupt.
        let _ = std::process::Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        std::process::abort();
    }

    let shown: Vec<String> = inbox
        .prepare("SELECT text FROM inbox ORDER BY rowid")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let unique: std::collections::HashSet<&String> = shown.iter().collect();
    println!("(the app's inbox: {} messages, none twice)", shown.len());
    if shown.len() != 4 || unique.len() != shown.len() {
        return Err(format!("the inbox should hold 4 different messages: {shown:?}").into());
    }
    let transcript = chat.transcript().await?;
    let ours: Vec<&Message> = transcript
        .iter()
        .filter(|m| m.sender.participant_type == ParticipantType::Customer)
        .collect();
    if ours.len() != 1 {
        return Err(format!("the customer's message should be there once: {ours:?}").into());
    }
    println!("(the customer's message was delivered once)");
    chat.disconnect(Some(DisconnectReason::UserClosed)).await?;
    client.shutdown(Some(ShutdownReason::UserClosed)).await?;
    Ok(())
}
