//! The console in headless Chromium (`console.test.mjs`, playwright-core) while chat-tokio
//! clients act as the customer's app. Runs only with `AXP_BROWSER_TESTS=1` (CI sets it, after
//! installing Debian's `chromium` and `npm ci` in this directory); otherwise the test
//! `browser_tests_not_run_set_AXP_BROWSER_TESTS` says so.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use chat_emulator::{AgentMode, Emulator};
use chat_tokio::{Client, Event, EventStream, StreamFailureReason};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout};

const ENV: &str = "AXP_BROWSER_TESTS";
const PATIENCE: Duration = Duration::from_secs(20);

fn enabled() -> bool {
    std::env::var(ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

#[test]
#[allow(non_snake_case)]
fn browser_tests_not_run_set_AXP_BROWSER_TESTS() {
    if !enabled() {
        eprintln!(
            "\n*** The console's browser test (console_in_headless_chromium) did NOT run. ***\n\
             *** It needs Debian's chromium and `npm ci` in crates/chat-emulator/tests/console; ***\n\
             *** then: AXP_BROWSER_TESTS=1 cargo test -p chat-emulator --test console        ***\n"
        );
    }
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

struct Script {
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Script {
    /// The script's next step line; it must be `step`.
    async fn expect(&mut self, step: &str) -> Value {
        let line = tokio::time::timeout(PATIENCE, self.stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("the page did not reach {step:?} in time"))
            .unwrap()
            .unwrap_or_else(|| panic!("the script ended before {step:?} (its stderr is above)"));
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["step"], step, "{line}");
        value
    }

    async fn tell(&mut self, value: Value) {
        self.stdin
            .write_all(format!("{value}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }
}

async fn expect_event(
    events: &mut EventStream,
    what: &str,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(e)) if pred(&e.event) => return e.event,
            Ok(Some(e)) => seen.push(e.event.name()),
            Ok(None) => panic!("event stream ended waiting for {what}; seen {seen:?}"),
            Err(_) => panic!("no {what} in time; seen {seen:?}"),
        }
    }
}

fn arrived(text: &str) -> impl Fn(&Event) -> bool + '_ {
    move |e| matches!(e, Event::MessageArrived(m) if m.text() == Some(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_headless_chromium() {
    if !enabled() {
        return; // said loudly by browser_tests_not_run_set_AXP_BROWSER_TESTS
    }
    let started = Instant::now();
    let emu = Emulator::builder()
        .console(true)
        .agent(AgentMode::Off)
        .hold_time(Duration::from_secs(2))
        .start()
        .await
        .unwrap();
    let c = emu.credentials().clone();
    let screenshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/images/console.png");
    std::fs::create_dir_all(screenshot.parent().unwrap()).unwrap();

    let mut child = tokio::process::Command::new("node")
        .arg("console.test.mjs")
        .current_dir(dir())
        .env("CONSOLE_URL", emu.console_url().unwrap())
        .env("SCREENSHOT", &screenshot)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (install Node.js, and `npm ci` in tests/console)");
    let mut script = Script {
        stdin: child.stdin.take().unwrap(),
        stdout: BufReader::new(child.stdout.take().unwrap()).lines(),
    };
    script.expect("ready").await;

    // The customer's app: a chat-tokio client whose tokens come from a provider (the
    // backend), so that it can refresh an expired one.
    let calls = Arc::new(AtomicU32::new(0));
    let provider = {
        let control = emu.control();
        let calls = Arc::clone(&calls);
        move || {
            calls.fetch_add(1, Ordering::SeqCst);
            let token = control.mint_token("alice", true, Duration::from_secs(3600));
            async move { Ok(token) }
        }
    };
    let (client, mut events) = Client::builder(emu.base_url(), &c.integration_id, &c.appkey)
        .token_provider(provider)
        .display_name("Alice Example")
        .connect()
        .await
        .unwrap();
    let chat = client.create_engagement().await.unwrap();
    script
        .tell(json!({"engagementId": chat.id().as_str()}))
        .await;
    script.expect("joined").await;
    expect_event(&mut events, "the agent's arrival", |e| {
        matches!(e, Event::EngagementActive(_))
    })
    .await;
    let question = "Hi! My parcel 12345 has not arrived yet.";
    chat.send_message(question).await.unwrap();
    script.tell(json!({"customerText": question})).await;

    // Answered as the agent in the page, as a reply: the client receives it.
    let answered = script.expect("answered").await;
    let text = answered["text"].as_str().unwrap().to_owned();
    let Event::MessageArrived(message) =
        expect_event(&mut events, "the agent's answer", arrived(&text)).await
    else {
        unreachable!()
    };
    assert_eq!(
        message.parent_message_id.as_ref().map(|m| m.as_str()),
        answered["parentMessageId"].as_str()
    );
    assert_eq!(
        message.sender.display_name.as_deref(),
        Some("Jordan (agent)")
    );
    script.tell(json!({})).await;
    script.expect("screenshot").await;

    // Tokens expired from the page: the client is refused, refreshes, and goes on.
    script.expect("tokens-expired").await;
    expect_event(&mut events, "a 401", |e| {
        matches!(e, Event::EventStreamFailed(f) if f.reason == StreamFailureReason::Unauthorized)
    })
    .await;
    expect_event(&mut events, "the stream back", |e| {
        matches!(e, Event::EventStreamConnected)
    })
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one refresh");
    script.tell(json!({})).await;
    // A 503 armed in the page hits the client's next poll; the page sees it fire.
    script.expect("fault-armed").await;
    script.expect("fault-fired").await;
    let after = "Still there after the faults?";
    chat.send_message(after).await.unwrap();
    let transcript = emu.control().transcript(chat.id()).unwrap();
    assert!(
        transcript
            .iter()
            .any(|m| m.message.body.text() == Some(after))
    );

    // An integration made in the page, with a token minted there, serves a client.
    let made = script.expect("integration").await;
    let integration = made["integrationId"].as_str().unwrap().to_owned();
    let token = made["token"].as_str().unwrap().to_owned();
    assert_ne!(integration, c.integration_id);
    assert_eq!(emu.control().settings().agent_mode, AgentMode::Agent);
    let (kiosk, mut kiosk_events) = Client::builder(emu.base_url(), &integration, &c.appkey)
        .token(token)
        .connect()
        .await
        .unwrap();
    let kiosk_chat = kiosk.create_engagement().await.unwrap();
    expect_event(&mut kiosk_events, "the simulated agent", |e| {
        matches!(e, Event::EngagementActive(_))
    })
    .await;
    let kiosk_text = "Hello from the kiosk";
    kiosk_chat.send_message(kiosk_text).await.unwrap();
    script
        .tell(json!({"engagementId": kiosk_chat.id().as_str(), "customerText": kiosk_text}))
        .await;
    let done = script.expect("done").await;
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    eprintln!(
        "browser test: page {}s, whole test {:.1}s; screenshot {}",
        done["seconds"],
        started.elapsed().as_secs_f64(),
        screenshot.display()
    );
    kiosk.shutdown(None).await.unwrap();
    client.shutdown(None).await.unwrap();
    emu.shutdown().await;
}
