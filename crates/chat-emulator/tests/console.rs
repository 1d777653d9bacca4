//! The agent console: its guard (loopback, secret, CSRF and origin), its API (the control
//! operations, the live feed, masking), the control operations it added, and — with
//! `AXP_BROWSER_TESTS=1` — the page itself in headless Chromium with a chat-tokio client.
#![allow(clippy::unwrap_used, clippy::print_stderr, missing_docs)]

use std::time::Duration;

use chat_core::wire::ParticipantType;
use chat_core::{EngagementId, MessageId, SessionId};
use chat_emulator::{AgentMode, ChangeKind, ControlError, Emulator, EmulatorBuilder, Route};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(15);

fn builder() -> EmulatorBuilder {
    Emulator::builder()
        .hold_time(Duration::from_millis(400))
        .agent(AgentMode::Off)
        .agent_delay(Duration::from_millis(20))
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(PATIENCE)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The console's root (`http://127.0.0.1:PORT`) and the CSRF token of its page.
async fn open_page(http: &reqwest::Client, console_url: &str) -> (String, String) {
    let page = http.get(console_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(page.headers().get("access-control-allow-origin").is_none());
    let html = page.text().await.unwrap();
    let csrf = html
        .split(r#"<meta name="console-csrf" content=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert!(csrf.len() >= 24, "{csrf}");
    (console_url.trim_end_matches("/console").to_owned(), csrf)
}

fn api(root: &str, path: &str) -> String {
    format!("{root}/console/api{path}")
}

/// A customer session and engagement through the chat API; returns their ids.
async fn customer_chat(emu: &Emulator, http: &reqwest::Client, customer: &str) -> (String, String) {
    let c = emu.credentials();
    let token = emu
        .control()
        .mint_token(customer, true, Duration::from_secs(600));
    let base = format!(
        "{}/sdk/digital/chat/v1/integrations/{}",
        emu.base_url(),
        c.integration_id
    );
    let session: Value = http
        .post(format!("{base}/sessions"))
        .bearer_auth(&token)
        .header("appkey", &c.appkey)
        .json(&json!({"clientType": "web", "displayName": "Ann"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sid = session["sessionId"].as_str().unwrap().to_owned();
    let engagement: Value = http
        .post(format!("{base}/engagements"))
        .bearer_auth(&token)
        .header("appkey", &c.appkey)
        .json(&json!({"sessionId": sid, "engagementParameters": {}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (sid, engagement["engagementId"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn the_console_is_off_unless_asked_and_then_on_loopback() {
    let emu = builder().start().await.unwrap();
    assert_eq!(emu.console_url(), None);
    assert!(!emu.announcement_json().contains("consoleURL"));
    emu.shutdown().await;

    let emu = builder().console(true).start().await.unwrap();
    let url = emu.console_url().unwrap().to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/console"),
        "{url}"
    );
    assert_eq!(emu.console_secret(), None);
    let announced: Value = serde_json::from_str(&emu.announcement_json()).unwrap();
    assert_eq!(announced["consoleURL"], url.as_str());
    let http = http();
    let (root, csrf) = open_page(&http, &url).await;
    // The assets are built in.
    for asset in ["app.js", "api.js", "view.js", "console.css"] {
        let r = http
            .get(format!("{root}/console/assets/{asset}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
    }
    // Not the emulator's APIs: only the console's.
    let r = http
        .get(format!("{root}/emulator/v1/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .get(api(&root, "/state"))
        .header("x-console-csrf", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn only_loopback_host_names_are_answered() {
    let emu = builder().console(true).start().await.unwrap();
    let http = http();
    let (root, csrf) = open_page(&http, emu.console_url().unwrap()).await;
    // A DNS-rebinding page reaches the port under its own name: refused.
    for path in ["/console", "/console/api/state"] {
        let r = http
            .get(format!("{root}{path}"))
            .header("host", "attacker.example:80")
            .header("x-console-csrf", &csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST, "{path}");
    }
    let port = root.rsplit(':').next().unwrap();
    let r = http
        .get(api(&root, "/state"))
        .header("host", format!("localhost:{port}"))
        .header("x-console-csrf", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn off_loopback_the_secret_is_required() {
    let emu = builder()
        .console_listen("0.0.0.0:0".parse().unwrap())
        .start()
        .await
        .unwrap();
    assert!(emu.console_secret_generated());
    let secret = emu.console_secret().unwrap().to_owned();
    assert!(secret.len() >= 20);
    assert!(!emu.announcement_json().contains(&secret));
    let http = http();
    let url = emu.console_url().unwrap().to_owned();
    let page = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"<meta name="console-login" content="required">"#));
    assert!(!page.contains(&secret));
    let (root, csrf) = open_page(&http, &url).await;
    for given in [None, Some("wrong"), Some(&secret[..secret.len() - 1])] {
        let mut request = http
            .get(api(&root, "/state"))
            .header("x-console-csrf", &csrf);
        if let Some(given) = given {
            request = request.header("x-console-secret", given);
        }
        assert_eq!(request.send().await.unwrap().status(), 401, "{given:?}");
    }
    let r = http
        .get(api(&root, "/state"))
        .header("x-console-csrf", &csrf)
        .header("x-console-secret", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    emu.shutdown().await;

    // A given secret is used as is, and required on loopback too.
    let emu = builder()
        .console(true)
        .console_secret("correct horse battery staple")
        .start()
        .await
        .unwrap();
    assert!(!emu.console_secret_generated());
    let (root, csrf) = open_page(&http, emu.console_url().unwrap()).await;
    let r = http
        .get(api(&root, "/state"))
        .header("x-console-csrf", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    emu.shutdown().await;
}

#[tokio::test]
async fn cross_site_requests_are_refused() {
    let emu = builder().console(true).start().await.unwrap();
    let http = http();
    let (root, csrf) = open_page(&http, emu.console_url().unwrap()).await;
    let origin = root.clone();
    let body = json!({"mode": "bot"});
    let put = |headers: &[(&str, &str)]| {
        let mut request = http.put(api(&root, "/agent")).json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    // No token, a wrong one, another origin, another site: 403, and nothing changed.
    let refused = [
        vec![("origin", origin.as_str())],
        vec![("x-console-csrf", "guess"), ("origin", origin.as_str())],
        vec![
            ("x-console-csrf", csrf.as_str()),
            ("origin", "http://evil.example"),
        ],
        vec![
            ("x-console-csrf", csrf.as_str()),
            ("sec-fetch-site", "cross-site"),
        ],
        vec![
            ("x-console-csrf", csrf.as_str()),
            ("sec-fetch-site", "same-site"),
        ],
    ];
    for headers in &refused {
        let r = put(headers).await.unwrap();
        assert_eq!(r.status(), 403, "{headers:?}");
    }
    assert_eq!(emu.control().settings().agent_mode, AgentMode::Off);
    // A preflight gets no CORS grant.
    let r = http
        .request(reqwest::Method::OPTIONS, api(&root, "/agent"))
        .header("origin", "http://evil.example")
        .header("access-control-request-method", "PUT")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // The page's own request passes.
    let r = put(&[
        ("x-console-csrf", csrf.as_str()),
        ("origin", origin.as_str()),
        ("sec-fetch-site", "same-origin"),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(emu.control().settings().agent_mode, AgentMode::Bot);
    // The live feed needs the token too.
    let r = http.get(api(&root, "/changes")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    emu.shutdown().await;
}

/// Reads server-sent events until one of type `event` whose data satisfies `want`.
async fn next_event(
    response: &mut reqwest::Response,
    buffer: &mut String,
    event: &str,
    want: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let name = block
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .map(str::trim)
                .unwrap_or("message");
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .collect();
            if name == event {
                let value: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                if want(&value) {
                    return value;
                }
            }
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("the stream goes on");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn the_live_feed_tells_of_a_posted_message_and_the_transcript_has_it() {
    let emu = builder().console(true).start().await.unwrap();
    let http = http();
    let (root, csrf) = open_page(&http, emu.console_url().unwrap()).await;
    let (_sid, eid) = customer_chat(&emu, &http, "feed-1").await;
    let mut feed = http
        .get(api(&root, "/changes"))
        .header("x-console-csrf", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    assert_eq!(feed.headers()["content-type"], "text/event-stream");
    let mut buffer = String::new();
    next_event(&mut feed, &mut buffer, "ready", |_| true).await;
    let posted: Value = http
        .post(api(&root, &format!("/engagements/{eid}/messages")))
        .header("x-console-csrf", &csrf)
        .json(&json!({"participantType": "AGENT", "text": "Hello from the console"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posted["participantType"], "AGENT");
    let change = next_event(&mut feed, &mut buffer, "change", |c| {
        c["kind"] == "message" && c["engagementId"] == eid.as_str()
    })
    .await;
    assert_eq!(change["kind"], "message");
    let transcript: Value = http
        .get(api(&root, &format!("/engagements/{eid}/messages")))
        .header("x-console-csrf", &csrf)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last = transcript["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        last["body"]["elementText"]["text"],
        "Hello from the console"
    );
    // Queued for the customer's session, not acknowledged yet (nobody polls).
    assert_eq!(last["delivery"][0]["acknowledged"], false);
    emu.shutdown().await;
}

#[tokio::test]
async fn the_client_secret_is_masked_everywhere() {
    let secret = "s3cret-0123456789-abcdef";
    let emu = builder()
        .console(true)
        .client_credentials("client-x", secret)
        .start()
        .await
        .unwrap();
    let http = http();
    let (root, csrf) = open_page(&http, emu.console_url().unwrap()).await;
    let state = http
        .get(api(&root, "/state"))
        .header("x-console-csrf", &csrf)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !state.contains(secret) && !state.contains("0123456789"),
        "{state}"
    );
    let state: Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["settings"]["clientSecretMasked"], "s3cr…");
    assert_eq!(state["settings"]["clientId"], "client-x");
    assert!(state.get("controlKey").is_none());
    assert!(!state.to_string().contains(emu.control_key()));
    emu.shutdown().await;
}

#[tokio::test]
async fn integrations_made_in_the_console_are_the_provisioning_apis() {
    let emu = builder().console(true).start().await.unwrap();
    let http = http();
    let (root, csrf) = open_page(&http, emu.console_url().unwrap()).await;
    let created = http
        .post(api(&root, "/integrations"))
        .header("x-console-csrf", &csrf)
        .json(&json!({"name": "Kiosk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let id = created["integrationId"].as_str().unwrap().to_owned();
    assert!(
        emu.control()
            .integrations()
            .iter()
            .any(|i| i.integration_id == id && !i.default)
    );
    let bad = http
        .post(api(&root, "/integrations"))
        .header("x-console-csrf", &csrf)
        .json(&json!({"name": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let minted: Value = http
        .post(api(&root, "/chat-tokens"))
        .header("x-console-csrf", &csrf)
        .json(&json!({"customerId": "k-1", "integrationId": id}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(minted["jwtToken"].as_str().unwrap().starts_with("jwt."));
    let r = http
        .delete(api(&root, &format!("/integrations/{id}")))
        .header("x-console-csrf", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(!emu.control().delete_integration(&id));
    emu.shutdown().await;
}

#[tokio::test]
async fn control_operations_the_console_uses() {
    let emu = builder().start().await.unwrap();
    let http = http();
    let control = emu.control();
    let mut changes = control.changes();
    let (sid, eid) = customer_chat(&emu, &http, "ops-1").await;
    let id = EngagementId::new(eid.clone());
    let sessions = control.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].session_id, SessionId::new(sid.clone()));
    assert_eq!(sessions[0].customer_id, "ops-1");
    assert!(sessions[0].verified_customer);
    assert_eq!(sessions[0].display_name.as_deref(), Some("Ann"));
    assert!(sessions[0].token_expires_at.is_some());
    assert!(!sessions[0].token_refused);
    assert_eq!(sessions[0].engagements, vec![id.clone()]);
    // The feed told of the session and the engagement.
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        kinds.push(
            tokio::time::timeout(PATIENCE, changes.recv())
                .await
                .unwrap()
                .unwrap()
                .kind,
        );
    }
    assert!(kinds.contains(&ChangeKind::Session), "{kinds:?}");

    // A reply (parent id) as a given participant, then a hand-over.
    let agent = control
        .add_participant(&id, ParticipantType::Agent, "Ann Agent")
        .unwrap();
    let first = control
        .post_message(&id, ParticipantType::Customer, "hi")
        .unwrap();
    let reply = control
        .post_message_as(&id, &agent.participant_id, "hello", Some(&first.message_id))
        .unwrap();
    assert_eq!(reply.parent_message_id.as_ref(), Some(&first.message_id));
    assert_eq!(reply.sender_participant_id, agent.participant_id);
    assert_eq!(
        control.post_message_as(
            &id,
            &agent.participant_id,
            "x",
            Some(&MessageId::new("nope"))
        ),
        Err(ControlError::MessageNotFound)
    );
    let next = control
        .hand_over(&id, &agent.participant_id, "Bea Agent")
        .unwrap();
    let info = &control.engagements()[0];
    assert!(info.participants.contains(&next));
    assert!(!info.participants.contains(&agent));
    let customer = info
        .participants
        .iter()
        .find(|p| p.participant_type == ParticipantType::Customer)
        .unwrap()
        .participant_id
        .clone();
    assert_eq!(
        control.hand_over(&id, &customer, "x"),
        Err(ControlError::WrongParticipant)
    );
    let transcript = control.transcript(&id).unwrap();
    assert_eq!(transcript.len(), 2);
    assert_eq!(transcript[1].delivery.len(), 1);

    // The simulated agent turned on for this chat only joins and greets.
    assert!(!info.simulated_agent_on);
    control.set_engagement_agent(&id, true).unwrap();
    let info = &control.engagements()[0];
    assert!(info.simulated_agent_on);
    assert!(info.simulated_agent.is_some());
    assert_eq!(control.transcript(&id).unwrap().len(), 3);
    control.set_engagement_agent(&id, false).unwrap();
    assert!(!control.engagements()[0].simulated_agent_on);

    // Faults: armed, listed, fired, removed; an outage.
    control.fail_next(Route::TokenApi, 503, 2);
    control.drop_next_polls(1);
    let view = control.faults();
    assert_eq!(view.armed.len(), 2);
    assert_eq!(view.armed[0].remaining, 2);
    assert!(control.remove_fault(view.armed[1].id));
    assert!(!control.remove_fault(view.armed[1].id));
    let token_api = format!(
        "{}/api/digital/chat/v1/accounts/{}/tokens",
        emu.base_url(),
        emu.credentials().account_id
    );
    let r = http.post(&token_api).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let view = control.faults();
    assert_eq!(view.armed[0].remaining, 1);
    assert_eq!(view.fired.len(), 1);
    assert_eq!(view.fired[0].route, Route::TokenApi);
    control.outage(Duration::from_secs(30), 503);
    let r = http.post(&token_api).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let view = control.faults();
    assert!(view.outage.is_some());
    assert_eq!(
        view.armed[0].remaining, 1,
        "the outage answered, not the rule"
    );
    assert!(control.end_outage());
    assert!(control.faults().outage.is_none());

    // Expiring tokens shows on the session.
    control.expire_tokens();
    assert!(control.sessions()[0].token_refused);
    emu.shutdown().await;
}

#[tokio::test]
async fn the_control_api_serves_the_new_operations() {
    let emu = builder().start().await.unwrap();
    let http = http();
    let (_sid, eid) = customer_chat(&emu, &http, "http-1").await;
    let key = emu.control_key().to_owned();
    let url = |p: &str| format!("{}/emulator/v1{p}", emu.base_url());
    let r = http.get(url("/state")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let state: Value = http
        .get(url("/state"))
        .header("x-emulator-control-key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["sessions"][0]["customerId"], "http-1");
    assert_eq!(state["engagements"][0]["engagementId"], eid.as_str());
    let r = http
        .post(url(&format!("/engagements/{eid}:transfer")))
        .header("x-emulator-control-key", &key)
        .json(&json!({"fromParticipantId": "nobody"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .put(url(&format!("/engagements/{eid}/agent")))
        .header("x-emulator-control-key", &key)
        .json(&json!({"on": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = http
        .post(url("/outage"))
        .header("x-emulator-control-key", &key)
        .json(&json!({"seconds": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let faults: Value = http
        .get(url("/faults"))
        .header("x-emulator-control-key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults["outage"]["status"], 503);
    let r = http
        .delete(url("/outage"))
        .header("x-emulator-control-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    emu.shutdown().await;
}

#[path = "console/browser.rs"]
mod browser;
