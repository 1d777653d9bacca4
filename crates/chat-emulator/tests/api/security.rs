//! The security matrix (issue #7): every hostile case against every chat endpoint where it
//! applies. Each row asserts the exact status and problem detail, and that nothing changed:
//! the world is read back before and after (control API and the victim's own token).

use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine as _;
use chat_emulator::AgentMode;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::chat::send_body;
use crate::common::{Harness, is_problem, reply, start_with};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Case {
    NoToken,
    MalformedToken,
    BadSignature,
    ExpiredToken,
    OtherIntegration,
    OtherAccount,
    WrongAppkey,
    NoAppkey,
    OtherCustomer,
    OtherCustomerVictimSession,
    GuestSameId,
    DeletedSession,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Endpoint {
    CreateSession,
    GetSession,
    DeleteSession,
    CreateEngagement,
    GetEngagement,
    Join,
    Send,
    Disconnect,
    ListMessages,
    EventsPoll,
    EventsWebSocket,
}

const CASES: [Case; 12] = [
    Case::NoToken,
    Case::MalformedToken,
    Case::BadSignature,
    Case::ExpiredToken,
    Case::OtherIntegration,
    Case::OtherAccount,
    Case::WrongAppkey,
    Case::NoAppkey,
    Case::OtherCustomer,
    Case::OtherCustomerVictimSession,
    Case::GuestSameId,
    Case::DeletedSession,
];

const ENDPOINTS: [Endpoint; 11] = [
    Endpoint::CreateSession,
    Endpoint::GetSession,
    Endpoint::DeleteSession,
    Endpoint::CreateEngagement,
    Endpoint::GetEngagement,
    Endpoint::Join,
    Endpoint::Send,
    Endpoint::Disconnect,
    Endpoint::ListMessages,
    Endpoint::EventsPoll,
    Endpoint::EventsWebSocket,
];

/// The victim (alice, verified) and her chat, plus the attackers' own sessions.
struct World {
    alice: String,
    alice_session: String,
    /// Alice's second session, not in the engagement: a wrongly accepted join would add it.
    alice_spare: String,
    engagement: String,
    dialog: String,
    /// The id of alice's newest pending event: a wrongly accepted poll would acknowledge it.
    last_event: String,
    deleted_session: String,
    mallory: String,
    mallory_session: String,
    guest: String,
    guest_session: String,
    other_integration_token: String,
    other_account_token: String,
    expired_token: String,
    forged_token: String,
}

/// The credentials a row sends and the session it names.
struct Attack {
    token: Option<String>,
    appkey: Option<String>,
    /// The session in the path (get, delete, events) or the body (engagement calls).
    session: String,
}

fn attack(h: &Harness, w: &World, case: Case) -> Attack {
    let appkey = Some(h.emu.credentials().appkey.clone());
    let victim = |token: &str| Attack {
        token: Some(token.to_owned()),
        appkey: appkey.clone(),
        session: w.alice_spare.clone(),
    };
    match case {
        Case::NoToken => Attack {
            token: None,
            ..victim("")
        },
        Case::MalformedToken => victim("jwt.not-a-token"),
        Case::BadSignature => victim(&w.forged_token),
        Case::ExpiredToken => victim(&w.expired_token),
        Case::OtherIntegration => victim(&w.other_integration_token),
        Case::OtherAccount => victim(&w.other_account_token),
        Case::WrongAppkey => Attack {
            appkey: Some("wrong-appkey".to_owned()),
            ..victim(&w.alice)
        },
        Case::NoAppkey => Attack {
            appkey: None,
            ..victim(&w.alice)
        },
        Case::OtherCustomer => Attack {
            session: w.mallory_session.clone(),
            ..victim(&w.mallory)
        },
        Case::OtherCustomerVictimSession => Attack {
            session: w.alice_session.clone(),
            ..victim(&w.mallory)
        },
        Case::GuestSameId => Attack {
            session: w.guest_session.clone(),
            ..victim(&w.guest)
        },
        Case::DeletedSession => Attack {
            session: w.deleted_session.clone(),
            ..victim(&w.alice)
        },
    }
}

/// The expected status and problem detail, or `None` where the case does not apply (an
/// attacker creating a session of their own is legitimate).
fn expected(case: Case, endpoint: Endpoint) -> Option<(u16, &'static str)> {
    let session_scoped = matches!(
        endpoint,
        Endpoint::GetSession
            | Endpoint::DeleteSession
            | Endpoint::EventsPoll
            | Endpoint::EventsWebSocket
    );
    Some(match case {
        Case::NoToken => (401, "Missing bearer token"),
        Case::MalformedToken => (401, "Invalid token"),
        Case::BadSignature => (401, "Invalid token signature"),
        Case::ExpiredToken => (401, "Token expired"),
        Case::OtherIntegration => (403, "The token is not valid for this integration"),
        Case::OtherAccount => (403, "The token is not valid for this account"),
        Case::WrongAppkey | Case::NoAppkey => (403, "Invalid appkey"),
        Case::OtherCustomer | Case::GuestSameId => match endpoint {
            Endpoint::CreateSession => return None,
            // Their own session, in the path, is fine: the row must name alice's.
            _ if session_scoped => (404, "Session not found"),
            Endpoint::CreateEngagement => return None,
            _ => (404, "Engagement not found"),
        },
        Case::OtherCustomerVictimSession | Case::DeletedSession => match endpoint {
            Endpoint::CreateSession => return None,
            Endpoint::GetEngagement if case == Case::OtherCustomerVictimSession => {
                (404, "Engagement not found")
            }
            Endpoint::GetEngagement => return None,
            _ => (404, "Session not found"),
        },
    })
}

/// The status and body of one row's request.
async fn perform(h: &Harness, w: &World, case: Case, endpoint: Endpoint) -> (u16, Value) {
    let a = attack(h, w, case);
    // Session-scoped endpoints of the other-customer cases name alice's session; the others
    // name the attack's session.
    let path_session = match case {
        Case::OtherCustomer | Case::GuestSameId => w.alice_session.clone(),
        _ if a.session == w.alice_spare => w.alice_session.clone(),
        _ => a.session.clone(),
    };
    let eid = &w.engagement;
    let (method, path, body) = match endpoint {
        Endpoint::CreateSession => (
            Method::POST,
            "/sessions".to_owned(),
            Some(json!({"clientType": "web"})),
        ),
        Endpoint::GetSession => (Method::GET, format!("/sessions/{path_session}"), None),
        Endpoint::DeleteSession => (Method::DELETE, format!("/sessions/{path_session}"), None),
        Endpoint::CreateEngagement => (
            Method::POST,
            "/engagements".to_owned(),
            Some(json!({"sessionId": a.session, "engagementParameters": {}})),
        ),
        Endpoint::GetEngagement => (Method::GET, format!("/engagements/{eid}"), None),
        Endpoint::Join => (
            Method::POST,
            format!("/engagements/{eid}:join"),
            Some(json!({"dialogId": w.dialog, "sessionId": a.session})),
        ),
        Endpoint::Send => (
            Method::POST,
            format!("/engagements/{eid}/messages"),
            Some(send_body(&a.session, &w.dialog, "intruder")),
        ),
        Endpoint::Disconnect => (
            Method::POST,
            format!("/engagements/{eid}:disconnect"),
            Some(json!({"dialogId": w.dialog, "sessionId": a.session})),
        ),
        Endpoint::ListMessages => (
            Method::GET,
            format!("/engagements/{eid}/messages?sessionId={}", a.session),
            None,
        ),
        Endpoint::EventsPoll => (
            Method::GET,
            format!(
                "/sessions/{path_session}/events?lastEventId={}",
                w.last_event
            ),
            None,
        ),
        Endpoint::EventsWebSocket => {
            return websocket(h, &a, &path_session, &w.last_event).await;
        }
    };
    let mut request = h.http.request(method, h.chat(&path));
    if let Some(token) = &a.token {
        request = request.bearer_auth(token);
    }
    if let Some(appkey) = &a.appkey {
        request = request.header("appkey", appkey);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = reply(request.send().await.unwrap()).await;
    let status = r.status.as_u16();
    assert!(
        is_problem(&r, status),
        "{case:?} × {endpoint:?}: not a problem body: {:?}",
        r.body
    );
    (status, r.body)
}

/// A WebSocket upgrade; the refusal is an HTTP status with the problem body.
async fn websocket(h: &Harness, a: &Attack, session: &str, last: &str) -> (u16, Value) {
    let url = h
        .chat(&format!("/sessions/{session}/events?lastEventId={last}"))
        .replacen("http", "ws", 1);
    let mut request = url.into_client_request().unwrap();
    if let Some(token) = &a.token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    if let Some(appkey) = &a.appkey {
        request
            .headers_mut()
            .insert("appkey", appkey.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            (response.status().as_u16(), body)
        }
        Ok(_) => (101, Value::Null),
        Err(other) => panic!("upgrade failed without an HTTP answer: {other}"),
    }
}

/// Everything a wrongly accepted request could change, read without changing anything.
async fn snapshot(h: &Harness, w: &World) -> Value {
    let control = h.emu.control();
    let stats = control.stats();
    let engagements: Vec<Value> = control
        .engagements()
        .iter()
        .map(|e| {
            json!({
                "id": e.engagement_id.as_str(),
                "status": format!("{:?}", e.status),
                "participants": e.participants.len(),
                "messages": e.message_count,
                "sessions": e.sessions.iter().map(|s| s.as_str().to_owned()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let read = |path: String| {
        let token = w.alice.clone();
        async move { h.call(Method::GET, &h.chat(&path), &token, None).await }
    };
    let session = read(format!("/sessions/{}", w.alice_session)).await;
    let history = read(format!(
        "/engagements/{}/messages?sessionId={}",
        w.engagement, w.alice_session
    ))
    .await;
    // Without a cursor the poll returns every unacknowledged event and acknowledges none.
    let events = read(format!("/sessions/{}/events", w.alice_session)).await;
    let mut session_body = session.body;
    session_body["status"] = json!(session.status.as_u16());
    json!({
        "sessions": stats.sessions,
        "ongoing": stats.ongoing_engagements,
        "ws_connections": stats.ws_connections,
        "tokens_minted": stats.tokens_minted,
        "engagements": engagements,
        "alice_session": session_body,
        "history": history.body,
        "pending_events": events.body,
    })
}

async fn setup(h: &Harness) -> World {
    let control = h.emu.control();
    let c = h.emu.credentials().clone();
    let alice = h.jwt("alice", true).await;
    let alice_session = h.create_session(&alice).await;
    let alice_spare = h.create_session(&alice).await;
    let (engagement, dialog) = h.create_engagement(&alice, &alice_session).await;
    let sent = h
        .call(
            Method::POST,
            &h.chat(&format!("/engagements/{engagement}/messages")),
            &alice,
            Some(send_body(&alice_session, &dialog, "hello")),
        )
        .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    // A session that was in the engagement, then deleted.
    let deleted_session = h.create_session(&alice).await;
    let joined = h
        .call(
            Method::POST,
            &h.chat(&format!("/engagements/{engagement}:join")),
            &alice,
            Some(json!({"dialogId": dialog, "sessionId": deleted_session})),
        )
        .await;
    assert_eq!(joined.status, 200, "{:?}", joined.body);
    let deleted = h
        .call(
            Method::DELETE,
            &h.chat(&format!("/sessions/{deleted_session}")),
            &alice,
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    let events = h.poll(&alice, &alice_session, None).await;
    let last_event = events.body.as_array().unwrap().last().unwrap()["eventId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mallory = h.jwt("mallory", true).await;
    let mallory_session = h.create_session(&mallory).await;
    let guest = h.jwt("alice", false).await;
    let guest_session = h.create_session(&guest).await;
    // A second, real integration of the same account.
    let access = h.access_token().await;
    let r = reply(
        h.http
            .post(h.url(&format!(
                "/api/digital/config/v1/accounts/{}/integrations",
                c.account_id
            )))
            .bearer_auth(&access)
            .header("appkey", &c.appkey)
            .json(&json!({"name": "second"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let second = r.body["integrationId"].as_str().unwrap().to_owned();
    let other_integration_token =
        control.mint_token_for(&second, "alice", true, Duration::from_secs(600));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let other_account_token =
        control.forge_token("OTHERACCOUNT", &c.integration_id, "alice", true, now + 600);
    let expired_token = control.forge_token(&c.account_id, &c.integration_id, "alice", true, now);
    // Alice's token with the customer id in the payload changed, the signature kept.
    let mut parts: Vec<String> = alice.split('.').map(str::to_owned).collect();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(&parts[2])
        .unwrap();
    let mut claims: Value = serde_json::from_slice(&payload).unwrap();
    claims["customerId"] = json!("mallory");
    parts[2] = base64::engine::general_purpose::STANDARD_NO_PAD.encode(claims.to_string());
    let forged_token = parts.join(".");
    World {
        alice,
        alice_session,
        alice_spare,
        engagement,
        dialog,
        last_event,
        deleted_session,
        mallory,
        mallory_session,
        guest,
        guest_session,
        other_integration_token,
        other_account_token,
        expired_token,
        forged_token,
    }
}

// The table is the report's (docs/reliability.md, section 3): `--nocapture` prints it.
#[allow(clippy::print_stdout)]
#[tokio::test]
async fn security_matrix_refuses_and_changes_nothing() {
    let h = start_with(chat_emulator::Emulator::builder().agent(AgentMode::Off)).await;
    let w = setup(&h).await;
    let before = snapshot(&h, &w).await;
    let mut table =
        String::from("| case | endpoint | expected | got |\n| --- | --- | --- | --- |\n");
    let mut rows = 0;
    let mut failures = Vec::new();
    for case in CASES {
        for endpoint in ENDPOINTS {
            let Some((status, detail)) = expected(case, endpoint) else {
                continue;
            };
            rows += 1;
            let (got, body) = perform(&h, &w, case, endpoint).await;
            let after = snapshot(&h, &w).await;
            let mut result = if got == status && body["detail"] == detail {
                "pass"
            } else {
                "FAIL"
            };
            if after != before {
                result = "FAIL (state changed)";
            }
            writeln!(
                table,
                "| {case:?} | {endpoint:?} | {status} {detail} | {got} {} |",
                body["detail"].as_str().unwrap_or("")
            )
            .unwrap();
            if result != "pass" {
                failures.push(format!(
                    "{case:?} × {endpoint:?}: expected {status} {detail:?}, got {got} {body}; {result}\n  before {before}\n  after  {after}"
                ));
            }
        }
    }
    println!("{rows} rows\n{table}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(rows >= 100, "{rows}");
    // The snapshot does see changes: alice's own acknowledgement and join change it.
    let r = h
        .poll(&w.alice, &w.alice_session, Some(&w.last_event))
        .await;
    assert_eq!(r.status, 200);
    let acknowledged = snapshot(&h, &w).await;
    assert_ne!(acknowledged["pending_events"], before["pending_events"]);
    let joined = h
        .call(
            Method::POST,
            &h.chat(&format!("/engagements/{}:join", w.engagement)),
            &w.alice,
            Some(json!({"dialogId": w.dialog, "sessionId": w.alice_spare})),
        )
        .await;
    assert_eq!(joined.status, 200);
    assert_ne!(snapshot(&h, &w).await["engagements"], before["engagements"]);
}
