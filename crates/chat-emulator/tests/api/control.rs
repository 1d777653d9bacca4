//! The contact-center side through `Control` and the control HTTP API; provisioning.

use std::time::Duration;

use chat_core::EngagementId;
use chat_core::wire::ParticipantType;
use chat_emulator::{AgentMode, ControlError};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Harness, is_problem, reply, start};

impl Harness {
    async fn control_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> crate::common::Reply {
        let mut request = self
            .http
            .request(method, self.url(path))
            .header("x-emulator-control-key", self.emu.control_key());
        if let Some(body) = body {
            request = request.json(&body);
        }
        reply(request.send().await.unwrap()).await
    }
}

#[tokio::test]
async fn control_drives_the_contact_center_side() {
    let h = start(AgentMode::Off).await;
    let token = h.jwt("cc", true).await;
    let sid = h.create_session(&token).await;
    let (eid, _) = h.create_engagement(&token, &sid).await;
    let control = h.emu.control();
    let id = EngagementId::new(eid.clone());
    let list = control.engagements();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].customer_id, "cc");
    assert!(list[0].verified_customer);
    let agent = control
        .add_participant(&id, ParticipantType::Agent, "Ann")
        .unwrap();
    control
        .post_message(&id, ParticipantType::Agent, "agent says")
        .unwrap();
    control
        .post_message(&id, ParticipantType::System, "system says")
        .unwrap();
    control
        .post_message(&id, ParticipantType::Bot, "bot says")
        .unwrap();
    control
        .remove_participant(&id, &agent.participant_id)
        .unwrap();
    assert_eq!(
        control.remove_participant(&id, &agent.participant_id),
        Err(ControlError::ParticipantNotFound)
    );
    let mut cursor = None;
    let events = h
        .poll_until(&token, &sid, &mut cursor, |e| {
            e["eventType"] == "PARTICIPANT_DISCONNECTED"
        })
        .await;
    let summary: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["eventType"].as_str().unwrap(),
                e["participant"]["participantType"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "ENGAGEMENT_CREATED:-",
            "PARTICIPANT_ADDED:CUSTOMER",
            "PARTICIPANT_ADDED:AGENT",
            "MESSAGE:AGENT",
            "MESSAGE:SYSTEM",
            "PARTICIPANT_ADDED:BOT",
            "MESSAGE:BOT",
            "PARTICIPANT_DISCONNECTED:AGENT",
        ]
    );
    control
        .raise_engagement_error(&id, "Routing failed", "No agent available")
        .unwrap();
    let events = h
        .poll_until(&token, &sid, &mut cursor, |e| {
            e["eventType"] == "ENGAGEMENT_ERROR"
        })
        .await;
    let error = &events.last().unwrap()["error"];
    assert_eq!(error["title"], "Routing failed");
    assert_eq!(error["detail"], "No agent available");
    assert_eq!(
        control.end_engagement(&id),
        Err(ControlError::EngagementEnded)
    );
    assert_eq!(
        control
            .post_message(&EngagementId::new("nope"), ParticipantType::Agent, "x")
            .map(|_| ()),
        Err(ControlError::EngagementNotFound)
    );
    assert_eq!(
        control
            .post_message(&id, ParticipantType::Agent, "")
            .map(|_| ()),
        Err(ControlError::InvalidText)
    );
}

#[tokio::test]
async fn control_http_api() {
    let h = start(AgentMode::Off).await;
    let token = h.jwt("http", false).await;
    let sid = h.create_session(&token).await;
    let (eid, _) = h.create_engagement(&token, &sid).await;
    // Guarded: no key → 401; an access token of the account works too.
    let r = reply(
        h.http
            .get(h.url("/emulator/v1/stats"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(is_problem(&r, 401));
    let access = h.access_token().await;
    let r = reply(
        h.http
            .get(h.url("/emulator/v1/stats"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["oauthCalls"], 2);
    assert_eq!(r.body["sessions"], 1);
    let r = h
        .control_call(Method::GET, "/emulator/v1/engagements", None)
        .await;
    assert_eq!(r.body["engagements"][0]["engagementId"], eid.as_str());
    let r = h
        .control_call(
            Method::POST,
            &format!("/emulator/v1/engagements/{eid}/participants"),
            Some(json!({"participantType": "SUPERVISOR", "displayName": "Sue"})),
        )
        .await;
    assert_eq!(r.status, 201);
    let pid = r.body["participantId"].as_str().unwrap().to_owned();
    let r = h
        .control_call(
            Method::POST,
            &format!("/emulator/v1/engagements/{eid}/messages"),
            Some(json!({"participantType": "AGENT", "text": "hello over http"})),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["participantType"], "AGENT");
    let r = h
        .control_call(
            Method::DELETE,
            &format!("/emulator/v1/engagements/{eid}/participants/{pid}"),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let r = h
        .control_call(
            Method::POST,
            "/emulator/v1/engagements:broadcast",
            Some(json!({"participantType": "SYSTEM", "text": "maintenance"})),
        )
        .await;
    assert_eq!(r.body["engagements"], 1);
    // Faults over HTTP.
    let r = h
        .control_call(
            Method::POST,
            "/emulator/v1/faults",
            Some(json!({"route": "EVENTS", "status": 500, "count": 1, "sessionId": sid})),
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(is_problem(&h.poll(&token, &sid, None).await, 500));
    h.control_call(
        Method::POST,
        "/emulator/v1/faults",
        Some(json!({"route": "EVENTS", "action": "drop"})),
    )
    .await;
    assert_eq!(
        h.control_call(Method::DELETE, "/emulator/v1/faults", None)
            .await
            .status,
        204
    );
    let r = h.poll(&token, &sid, None).await;
    assert_eq!(r.status, 200, "faults cleared");
    let summary: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(summary.iter().filter(|t| **t == "MESSAGE").count(), 2);
    let r = h
        .control_call(
            Method::POST,
            "/emulator/v1/faults",
            Some(json!({"route": "NOWHERE"})),
        )
        .await;
    assert!(is_problem(&r, 400));
    let r = h
        .control_call(
            Method::POST,
            "/emulator/v1/delays",
            Some(json!({"route": "OAUTH", "delayMs": 0})),
        )
        .await;
    assert_eq!(r.status, 204);
    // Tokens.
    let r = h
        .control_call(
            Method::POST,
            "/emulator/v1/chat-tokens",
            Some(json!({"customerId": "http", "ttlSeconds": 60})),
        )
        .await;
    let minted = r.body["jwtToken"].as_str().unwrap().to_owned();
    assert_eq!(h.poll(&minted, &sid, None).await.status, 200);
    assert_eq!(
        h.control_call(Method::POST, "/emulator/v1/chat-tokens:expire", None)
            .await
            .status,
        204
    );
    assert!(is_problem(&h.poll(&minted, &sid, None).await, 401));
    assert_eq!(
        h.control_call(Method::POST, "/emulator/v1/access-tokens:revoke", None)
            .await
            .status,
        204
    );
    let r = reply(
        h.http
            .get(h.url("/emulator/v1/stats"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(is_problem(&r, 401));
    // Engagement verbs, session invalidation, agent mode.
    let r = h
        .control_call(
            Method::POST,
            &format!("/emulator/v1/engagements/{eid}:error"),
            Some(json!({"title": "t"})),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = h
        .control_call(
            Method::POST,
            &format!("/emulator/v1/engagements/{eid}:end"),
            None,
        )
        .await;
    assert!(is_problem(&r, 409));
    let r = h
        .control_call(Method::POST, "/emulator/v1/engagements/nope:end", None)
        .await;
    assert!(is_problem(&r, 404));
    let r = h
        .control_call(
            Method::POST,
            &format!("/emulator/v1/sessions/{sid}:invalidate"),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let r = h
        .control_call(
            Method::POST,
            &format!("/emulator/v1/sessions/{sid}:invalidate"),
            None,
        )
        .await;
    assert!(is_problem(&r, 404));
    let r = h
        .control_call(
            Method::PUT,
            "/emulator/v1/agent",
            Some(json!({"mode": "bot"})),
        )
        .await;
    assert_eq!(r.status, 204);
    let token = h
        .emu
        .control()
        .mint_token("http", false, Duration::from_secs(60));
    let sid = h.create_session(&token).await;
    h.create_engagement(&token, &sid).await;
    let mut cursor = None;
    h.poll_until(&token, &sid, &mut cursor, |e| {
        e["participant"]["participantType"] == "BOT"
    })
    .await;
}

#[tokio::test]
async fn provisioning_integrations() {
    let h = start(AgentMode::Off).await;
    let access = h.access_token().await;
    let c = h.emu.credentials().clone();
    let base = h.url(&format!(
        "/api/digital/config/v1/accounts/{}/integrations",
        c.account_id
    ));
    let list = reply(
        h.http
            .get(&base)
            .bearer_auth(&access)
            .header("appkey", &c.appkey)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list.status, 200);
    assert_eq!(
        list.body["integrations"][0]["integrationId"],
        c.integration_id.as_str()
    );
    let created = reply(
        h.http
            .post(&base)
            .bearer_auth(&access)
            .header("appkey", &c.appkey)
            .json(&json!({"name": "Second", "settings": {"language": "fr"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(created.status, 201);
    let id = created.body["integrationId"].as_str().unwrap().to_owned();
    assert!(chat_core::is_uuid(&id));
    assert_eq!(created.body["settings"]["language"], "fr");
    let got = reply(
        h.http
            .get(format!("{base}/{id}"))
            .bearer_auth(&access)
            .header("appkey", &c.appkey)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got.body["name"], "Second");
    // The new integration works end to end with a token for it.
    let r = h
        .token_api(&access, json!({"integrationId": id, "customerId": "p"}))
        .await;
    let token = r.body["jwtToken"].as_str().unwrap().to_owned();
    let url = format!(
        "{}/sdk/digital/chat/v1/integrations/{id}/sessions",
        h.emu.base_url()
    );
    let r = h
        .call(
            Method::POST,
            &url,
            &token,
            Some(json!({"clientType": "web"})),
        )
        .await;
    assert_eq!(r.status, 201);
    let sid = r.body["sessionId"].as_str().unwrap().to_owned();
    // Its token does not open the default integration.
    assert!(is_problem(
        &h.call(
            Method::POST,
            &h.chat("/sessions"),
            &token,
            Some(json!({"clientType": "web"}))
        )
        .await,
        403
    ));
    // Delete: 204, then 404, and its sessions are gone.
    let r = reply(
        h.http
            .delete(format!("{base}/{id}"))
            .bearer_auth(&access)
            .header("appkey", &c.appkey)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 204);
    let r = reply(
        h.http
            .delete(format!("{base}/{id}"))
            .bearer_auth(&access)
            .header("appkey", &c.appkey)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(is_problem(&r, 404));
    let r = h
        .call(Method::GET, &format!("{url}/{sid}"), &token, None)
        .await;
    assert!(is_problem(&r, 404));
    // Rules: name required; access token and appkey required.
    let r = reply(
        h.http
            .post(&base)
            .bearer_auth(&access)
            .header("appkey", &c.appkey)
            .json(&json!({"name": ""}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(is_problem(&r, 400));
    let r = reply(
        h.http
            .get(&base)
            .header("appkey", &c.appkey)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(is_problem(&r, 401));
    let r = reply(h.http.get(&base).bearer_auth(&access).send().await.unwrap()).await;
    assert!(is_problem(&r, 403));
}
