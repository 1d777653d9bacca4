//! The chat API (reference 6.3): sessions, engagements, messages, history, events.

use std::time::Duration;

use chat_core::wire::{MessagePage, RestMessage, ServerEvent, ServerEventType, Session};
use chat_emulator::AgentMode;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{is_problem, start};

fn event_type(e: &Value) -> &str {
    e["eventType"].as_str().unwrap()
}

pub(crate) fn send_body(session: &str, dialog: &str, text: &str) -> Value {
    json!({"dialogId": dialog, "sessionId": session,
           "body": {"elementType": "TEXT", "elementText": {"text": text, "textFormat": "PLAINTEXT"}}})
}

#[tokio::test]
async fn a_whole_chat_from_token_to_delete() {
    let h = start(AgentMode::Agent).await;
    let token = h.jwt("alice", true).await;
    // Session.
    let r = h
        .call(Method::POST, &h.chat("/sessions"), &token,
              Some(json!({"displayName": "Ignored", "clientType": "web", "sessionParameters": {"k": "v"}})))
        .await;
    assert_eq!(r.status, 201);
    let session: Session = serde_json::from_value(r.body.clone()).unwrap();
    assert_eq!(
        session.display_name.as_deref(),
        Some("Name of alice"),
        "the token's name wins"
    );
    assert!(session.engagements.is_empty());
    let sid = session.session_id.as_str().to_owned();
    // Engagement: 201 with a PENDING dialog, then ENGAGEMENT_CREATED and PARTICIPANT_ADDED(CUSTOMER).
    let r = h
        .call(
            Method::POST,
            &h.chat("/engagements"),
            &token,
            Some(json!({"sessionId": sid, "engagementParameters": {"topic": "billing"}})),
        )
        .await;
    assert_eq!(r.status, 201);
    let engagement: chat_core::wire::Engagement = serde_json::from_value(r.body.clone()).unwrap();
    let dialog = &engagement.dialogs[0];
    assert_eq!(
        dialog.dialog_status,
        chat_core::wire::EngagementStatus::Pending
    );
    assert!(dialog.created_at.is_some() && dialog.last_updated_at.is_some());
    let eid = engagement.engagement_id.as_str().to_owned();
    let did = dialog.dialog_id.as_str().to_owned();
    let mut cursor = None;
    let events = h
        .poll_until(&token, &sid, &mut cursor, |e| {
            event_type(e) == "MESSAGE" && e["participant"]["participantType"] == "AGENT"
        })
        .await;
    let types: Vec<&str> = events.iter().map(event_type).collect();
    assert_eq!(
        types,
        [
            "ENGAGEMENT_CREATED",
            "PARTICIPANT_ADDED",
            "PARTICIPANT_ADDED",
            "MESSAGE"
        ]
    );
    assert_eq!(events[1]["participant"]["participantType"], "CUSTOMER");
    assert_eq!(events[2]["participant"]["participantType"], "AGENT");
    for e in &events {
        let parsed: ServerEvent = serde_json::from_value(e.clone()).unwrap();
        assert_eq!(parsed.engagement_id.unwrap().as_str(), eid);
        assert_eq!(parsed.session_id.unwrap().as_str(), sid);
        assert!(parsed.event_date.is_some());
    }
    // Send a message: flat REST form back, MESSAGE echo (nested), then the agent's answer.
    let r = h
        .call(
            Method::POST,
            &h.chat(&format!("/engagements/{eid}/messages")),
            &token,
            Some(send_body(&sid, &did, "I have a question")),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let sent: RestMessage = serde_json::from_value(r.body.clone()).unwrap();
    assert_eq!(sent.message_index, 2, "the greeting was 1");
    assert_eq!(
        sent.participant_type,
        chat_core::wire::ParticipantType::Customer
    );
    assert!(r.body["senderParticipantId"].is_string() && r.body["receivedAt"].is_string());
    let events = h
        .poll_until(&token, &sid, &mut cursor, |e| {
            event_type(e) == "MESSAGE" && e["participant"]["participantType"] == "AGENT"
        })
        .await;
    let echo = &events[0];
    assert_eq!(echo["message"]["messageId"], sent.message_id.as_str());
    assert_eq!(echo["participant"]["participantType"], "CUSTOMER");
    let answer = events.last().unwrap();
    assert!(
        answer["message"]["body"]["elementText"]["text"]
            .as_str()
            .unwrap()
            .contains("I have a question")
    );
    assert_eq!(answer["message"]["messageIndex"], 3);
    // Session now lists the engagement, ACTIVE since the agent joined.
    let r = h
        .call(
            Method::GET,
            &h.chat(&format!("/sessions/{sid}")),
            &token,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["engagements"][0]["engagementId"], eid.as_str());
    assert_eq!(
        r.body["engagements"][0]["dialogs"][0]["dialogStatus"],
        "ACTIVE"
    );
    assert_eq!(
        r.body["engagements"][0]["dialogs"][0]["participants"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Get engagement.
    let r = h
        .call(
            Method::GET,
            &h.chat(&format!("/engagements/{eid}")),
            &token,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["engagementId"], eid.as_str());
    // History, newest first.
    let url = h.chat(&format!(
        "/engagements/{eid}/messages?sessionId={sid}&dialogId={did}&pageSize=50&pageNumber=1&orderBy=DSC"
    ));
    let r = h.call(Method::GET, &url, &token, None).await;
    assert_eq!(r.status, 200);
    let page: MessagePage = serde_json::from_value(r.body).unwrap();
    let indexes: Vec<u64> = page.messages.iter().map(|m| m.message_index).collect();
    assert_eq!(indexes, [3, 2, 1]);
    assert_eq!(page.links.next, "");
    assert_eq!(page.pagination.total, Some(3));
    // Disconnect: 204 and PARTICIPANT_DISCONNECTED(CUSTOMER).
    let r = h
        .call(
            Method::POST,
            &h.chat(&format!("/engagements/{eid}:disconnect")),
            &token,
            Some(json!({"dialogId": did, "sessionId": sid, "reason": "USER_CLOSED"})),
        )
        .await;
    assert_eq!(r.status, 204);
    let events = h
        .poll_until(&token, &sid, &mut cursor, |e| {
            event_type(e) == "PARTICIPANT_DISCONNECTED"
        })
        .await;
    assert_eq!(
        events.last().unwrap()["participant"]["participantType"],
        "CUSTOMER"
    );
    let r = h
        .call(
            Method::GET,
            &h.chat(&format!("/sessions/{sid}")),
            &token,
            None,
        )
        .await;
    assert_eq!(r.body["engagements"], json!([]));
    // Sending into the ended engagement → 404.
    let r = h
        .call(
            Method::POST,
            &h.chat(&format!("/engagements/{eid}/messages")),
            &token,
            Some(send_body(&sid, &did, "anyone?")),
        )
        .await;
    assert!(is_problem(&r, 404));
    // Delete: 204, then the session is gone.
    let r = h
        .call(
            Method::DELETE,
            &h.chat(&format!("/sessions/{sid}?reason=USER_CLOSED")),
            &token,
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let r = h.poll(&token, &sid, None).await;
    assert!(is_problem(&r, 404));
    assert_eq!(r.body["detail"], "Session not found");
    let r = h
        .call(
            Method::GET,
            &h.chat(&format!("/sessions/{sid}")),
            &token,
            None,
        )
        .await;
    assert!(is_problem(&r, 404));
}

#[tokio::test]
async fn cursor_acknowledges_and_delivery_does_not() {
    let h = start(AgentMode::Off).await;
    let token = h.jwt("bob", false).await;
    let sid = h.create_session(&token).await;
    let (eid, _) = h.create_engagement(&token, &sid).await;
    let first = h.poll(&token, &sid, None).await;
    let ids: Vec<String> = first
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids[0].parse::<u64>().unwrap() < ids[1].parse::<u64>().unwrap());
    // Delivery is not acknowledgement: the same events come again.
    let again = h.poll(&token, &sid, None).await;
    assert_eq!(again.body, first.body);
    // lastEventId acknowledges it and everything before.
    let r = h.poll(&token, &sid, Some(&ids[0])).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_eq!(r.body[0]["eventId"], ids[1].as_str());
    let r = h.poll(&token, &sid, None).await;
    assert_eq!(
        r.body[0]["eventId"],
        ids[1].as_str(),
        "acknowledged event gone, the other kept"
    );
    // Nothing pending: held for the hold time (300 ms here), then [].
    let started = std::time::Instant::now();
    let r = h.poll(&token, &sid, Some(&ids[1])).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!([]));
    assert!(started.elapsed() >= Duration::from_millis(250));
    // A pending poll answers as soon as an event arrives.
    let control = h.emu.control();
    let engagement = chat_core::EngagementId::new(eid.clone());
    let post_later = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let at = std::time::Instant::now();
        control
            .post_message(&engagement, chat_core::wire::ParticipantType::Agent, "hi")
            .unwrap();
        at
    };
    let (r, posted_at) = tokio::join!(h.poll(&token, &sid, Some(&ids[1])), post_later);
    assert!(
        posted_at.elapsed() < Duration::from_millis(150),
        "answered at once"
    );
    let types: Vec<&str> = r.body.as_array().unwrap().iter().map(event_type).collect();
    assert_eq!(types, ["PARTICIPANT_ADDED", "MESSAGE"]);
    // An id that is not ours → 400.
    let r = h.poll(&token, &sid, Some("not-an-id")).await;
    assert!(is_problem(&r, 400));
}

#[tokio::test]
async fn history_pages_have_absolute_next_links() {
    let h = start(AgentMode::Off).await;
    let token = h.jwt("carol", false).await;
    let sid = h.create_session(&token).await;
    let (eid, did) = h.create_engagement(&token, &sid).await;
    let control = h.emu.control();
    let id = chat_core::EngagementId::new(eid.clone());
    for i in 1..=7 {
        control
            .post_message(
                &id,
                chat_core::wire::ParticipantType::Agent,
                &format!("m{i}"),
            )
            .unwrap();
    }
    let mut url = h.chat(&format!(
        "/engagements/{eid}/messages?sessionId={sid}&dialogId={did}&pageSize=3&pageNumber=1&orderBy=DSC"
    ));
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = h.call(Method::GET, &url, &token, None).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        pages += 1;
        let page: MessagePage = serde_json::from_value(r.body).unwrap();
        seen.extend(page.messages.iter().map(|m| m.message_index));
        if page.links.next.is_empty() {
            break;
        }
        assert!(
            page.links.next.starts_with(&h.emu.base_url()),
            "{}",
            page.links.next
        );
        assert!(
            page.links
                .next
                .contains(&format!("pageNumber={}", pages + 1))
        );
        assert!(page.links.next.contains("pageSize=3") && page.links.next.contains("orderBy=DSC"));
        url = page.links.next;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, [7, 6, 5, 4, 3, 2, 1]);
    // ASC order and bad parameters.
    let r = h
        .call(
            Method::GET,
            &h.chat(&format!(
                "/engagements/{eid}/messages?sessionId={sid}&orderBy=ASC&pageSize=2"
            )),
            &token,
            None,
        )
        .await;
    assert_eq!(r.body["messages"][0]["messageIndex"], 1);
    for bad in [
        "pageSize=0",
        "pageSize=51",
        "pageNumber=0",
        "orderBy=UP",
        "pageSize=x",
    ] {
        let r = h
            .call(
                Method::GET,
                &h.chat(&format!(
                    "/engagements/{eid}/messages?sessionId={sid}&{bad}"
                )),
                &token,
                None,
            )
            .await;
        assert!(is_problem(&r, 400), "{bad}");
    }
    let r = h
        .call(
            Method::GET,
            &h.chat(&format!("/engagements/{eid}/messages")),
            &token,
            None,
        )
        .await;
    assert!(is_problem(&r, 400), "sessionId is required");
    let r = h
        .call(
            Method::GET,
            &h.chat(&format!(
                "/engagements/{eid}/messages?sessionId={sid}&dialogId=other"
            )),
            &token,
            None,
        )
        .await;
    assert!(is_problem(&r, 404));
}

#[tokio::test]
async fn join_from_another_session_and_events_reach_both() {
    let h = start(AgentMode::Off).await;
    let token = h.jwt("dave", true).await;
    let s1 = h.create_session(&token).await;
    let (eid, did) = h.create_engagement(&token, &s1).await;
    // A second session of the same customer (another tab or device, even another token).
    let token2 = h.jwt("dave", true).await;
    let r = h
        .call(
            Method::POST,
            &h.chat("/sessions"),
            &token2,
            Some(json!({"clientType": "web"})),
        )
        .await;
    assert_eq!(
        r.body["engagements"][0]["engagementId"],
        eid.as_str(),
        "listed across sessions"
    );
    let s2 = r.body["sessionId"].as_str().unwrap().to_owned();
    // Before joining, history can be read (preview) but messages cannot be sent.
    let r = h
        .call(
            Method::GET,
            &h.chat(&format!("/engagements/{eid}/messages?sessionId={s2}")),
            &token2,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = h
        .call(
            Method::POST,
            &h.chat(&format!("/engagements/{eid}/messages")),
            &token2,
            Some(send_body(&s2, &did, "x")),
        )
        .await;
    assert!(is_problem(&r, 409));
    // Join: 200 Engagement and PARTICIPANT_ADDED(CUSTOMER) for the joining session only.
    let r = h
        .call(
            Method::POST,
            &h.chat(&format!("/engagements/{eid}:join")),
            &token2,
            Some(json!({"dialogId": did, "sessionId": s2})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["engagementId"], eid.as_str());
    let r = h.poll(&token2, &s2, None).await;
    let events = r.body.as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["eventType"], "PARTICIPANT_ADDED");
    assert_eq!(events[0]["participant"]["participantType"], "CUSTOMER");
    let cursor2 = events[0]["eventId"].as_str().unwrap().to_owned();
    let r = h.poll(&token, &s1, None).await;
    let cursor1 = r.body.as_array().unwrap().last().unwrap()["eventId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(r.body.as_array().unwrap().len(), 2, "s1 got no join event");
    // A message from s2 reaches both sessions.
    let r = h
        .call(
            Method::POST,
            &h.chat(&format!("/engagements/{eid}/messages")),
            &token2,
            Some(send_body(&s2, &did, "from 2")),
        )
        .await;
    assert_eq!(r.status, 200);
    for (token, sid, cursor) in [(&token, &s1, &cursor1), (&token2, &s2, &cursor2)] {
        let r = h.poll(token, sid, Some(cursor)).await;
        assert_eq!(r.body[0]["eventType"], "MESSAGE");
        assert_eq!(
            r.body[0]["message"]["body"]["elementText"]["text"],
            "from 2"
        );
    }
    // Disconnect from s1: PARTICIPANT_DISCONNECTED(CUSTOMER) to both sessions.
    let r = h
        .call(
            Method::POST,
            &h.chat(&format!("/engagements/{eid}:disconnect")),
            &token,
            Some(json!({"dialogId": did, "sessionId": s1})),
        )
        .await;
    assert_eq!(r.status, 204);
    for (token, sid) in [(&token, &s1), (&token2, &s2)] {
        let r = h.poll(token, sid, None).await;
        let last = r.body.as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["eventType"], "PARTICIPANT_DISCONNECTED");
        assert_eq!(last["participant"]["participantType"], "CUSTOMER");
    }
    // Disconnecting an ended engagement → 404.
    let r = h
        .call(
            Method::POST,
            &h.chat(&format!("/engagements/{eid}:disconnect")),
            &token2,
            Some(json!({"dialogId": did, "sessionId": s2})),
        )
        .await;
    assert!(is_problem(&r, 404));
    // Joining an ended engagement → 404; unknown verb → 404.
    let r = h
        .call(
            Method::POST,
            &h.chat(&format!("/engagements/{eid}:join")),
            &token2,
            Some(json!({"dialogId": did, "sessionId": s2})),
        )
        .await;
    assert!(is_problem(&r, 404));
    let r = h
        .call(
            Method::POST,
            &h.chat(&format!("/engagements/{eid}:explode")),
            &token2,
            Some(json!({})),
        )
        .await;
    assert!(is_problem(&r, 404));
}

#[tokio::test]
async fn authorization_rules() {
    let h = start(AgentMode::Off).await;
    let alice = h.jwt("alice", true).await;
    let sid = h.create_session(&alice).await;
    let (eid, did) = h.create_engagement(&alice, &sid).await;
    let events = h.chat(&format!("/sessions/{sid}/events"));
    // Missing token → 401.
    let r = crate::common::reply(
        h.http
            .get(&events)
            .header("appkey", &h.emu.credentials().appkey)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(is_problem(&r, 401));
    // Tampered token → 401 (flip a payload character, keep the signature).
    let mut parts: Vec<String> = alice.split('.').map(str::to_owned).collect();
    parts[2] = parts[2].replacen('e', "f", 1);
    let tampered = parts.join(".");
    assert!(is_problem(
        &h.call(Method::GET, &events, &tampered, None).await,
        401
    ));
    assert!(is_problem(
        &h.call(Method::GET, &events, "jwt.a.b", None).await,
        401
    ));
    // Expired token → 401.
    let expired = h
        .emu
        .control()
        .mint_token("alice", true, Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = h.call(Method::GET, &events, &expired, None).await;
    assert!(is_problem(&r, 401));
    assert!(!r.body.to_string().contains(&expired), "tokens never echo");
    // Wrong appkey → 403.
    let r = crate::common::reply(
        h.http
            .get(&events)
            .bearer_auth(&alice)
            .header("appkey", "wrong")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(is_problem(&r, 403));
    // Another integration → 403.
    let other = h.emu.control().mint_token_for(
        "123e4567-e89b-12d3-a456-426614174000",
        "alice",
        true,
        Duration::from_secs(60),
    );
    assert!(is_problem(
        &h.call(Method::GET, &events, &other, None).await,
        403
    ));
    // Another customer cannot see, join or read alice's things.
    let mallory = h.jwt("mallory", true).await;
    let msid = h.create_session(&mallory).await;
    assert!(is_problem(
        &h.call(Method::GET, &events, &mallory, None).await,
        404
    ));
    assert!(is_problem(
        &h.call(
            Method::GET,
            &h.chat(&format!("/sessions/{sid}")),
            &mallory,
            None
        )
        .await,
        404
    ));
    assert!(is_problem(
        &h.call(
            Method::DELETE,
            &h.chat(&format!("/sessions/{sid}")),
            &mallory,
            None
        )
        .await,
        404
    ));
    let join = json!({"dialogId": did, "sessionId": msid});
    assert!(is_problem(
        &h.call(
            Method::POST,
            &h.chat(&format!("/engagements/{eid}:join")),
            &mallory,
            Some(join)
        )
        .await,
        404
    ));
    let history = h.chat(&format!("/engagements/{eid}/messages?sessionId={msid}"));
    assert!(is_problem(
        &h.call(Method::GET, &history, &mallory, None).await,
        404
    ));
    // A guest with the same customer id never reaches the verified customer's chats.
    let guest = h.jwt("alice", false).await;
    let r = h
        .call(
            Method::POST,
            &h.chat("/sessions"),
            &guest,
            Some(json!({"clientType": "web"})),
        )
        .await;
    assert_eq!(r.body["engagements"], json!([]));
    let gsid = r.body["sessionId"].as_str().unwrap().to_owned();
    let join = json!({"dialogId": did, "sessionId": gsid});
    assert!(is_problem(
        &h.call(
            Method::POST,
            &h.chat(&format!("/engagements/{eid}:join")),
            &guest,
            Some(join)
        )
        .await,
        404
    ));
    assert!(is_problem(
        &h.call(Method::GET, &events, &guest, None).await,
        404
    ));
    // Using someone else's session id in a body → 404 "Session not found".
    let body = json!({"sessionId": sid, "engagementParameters": {}});
    let r = h
        .call(Method::POST, &h.chat("/engagements"), &mallory, Some(body))
        .await;
    assert!(is_problem(&r, 404));
    assert_eq!(r.body["detail"], "Session not found");
    // Revoked chat tokens → 401 everywhere.
    h.emu.control().revoke_chat_tokens();
    let r = h
        .call(
            Method::GET,
            &h.chat(&format!("/sessions/{sid}")),
            &alice,
            None,
        )
        .await;
    assert!(is_problem(&r, 401));
    assert_eq!(r.body["detail"], "Token revoked");
    let fresh = h
        .emu
        .control()
        .mint_token("alice", true, Duration::from_secs(60));
    assert_eq!(
        h.call(
            Method::GET,
            &h.chat(&format!("/sessions/{sid}")),
            &fresh,
            None
        )
        .await
        .status,
        200
    );
    h.emu.control().expire_tokens();
    let r = h
        .call(
            Method::GET,
            &h.chat(&format!("/sessions/{sid}")),
            &fresh,
            None,
        )
        .await;
    assert_eq!(r.body["detail"], "Token expired");
}

#[tokio::test]
async fn request_validation() {
    let h = start(AgentMode::Off).await;
    let token = h.jwt("erin", false).await;
    let sid = h.create_session(&token).await;
    let (eid, did) = h.create_engagement(&token, &sid).await;
    let messages = h.chat(&format!("/engagements/{eid}/messages"));
    // Text 1–4096 (UTF-16 units, as the official SDK counts).
    for text in [String::new(), "x".repeat(4097), "😀".repeat(2049)] {
        let r = h
            .call(
                Method::POST,
                &messages,
                &token,
                Some(send_body(&sid, &did, &text)),
            )
            .await;
        assert!(is_problem(&r, 400));
    }
    assert_eq!(
        h.call(
            Method::POST,
            &messages,
            &token,
            Some(send_body(&sid, &did, &"x".repeat(4096)))
        )
        .await
        .status,
        200
    );
    // Session fields.
    let r = h
        .call(
            Method::POST,
            &h.chat("/sessions"),
            &token,
            Some(json!({"clientType": "web", "displayName": "n".repeat(71)})),
        )
        .await;
    assert!(is_problem(&r, 400));
    let params: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
    let r = h
        .call(
            Method::POST,
            &h.chat("/sessions"),
            &token,
            Some(json!({"clientType": "web", "sessionParameters": params})),
        )
        .await;
    assert!(is_problem(&r, 400));
    // Malformed JSON → 400; oversized → 413; unknown ids → 404.
    let r = crate::common::reply(
        h.http
            .post(h.chat("/sessions"))
            .bearer_auth(&token)
            .header("appkey", &h.emu.credentials().appkey)
            .body("{\"clientType\":")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(is_problem(&r, 400));
    let r = crate::common::reply(
        h.http
            .post(&messages)
            .bearer_auth(&token)
            .header("appkey", &h.emu.credentials().appkey)
            .body(vec![b' '; 65 * 1024])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(is_problem(&r, 413));
    let unknown = "123e4567-e89b-12d3-a456-426614174000";
    assert!(is_problem(
        &h.call(
            Method::GET,
            &h.chat(&format!("/engagements/{unknown}")),
            &token,
            None
        )
        .await,
        404
    ));
    assert!(is_problem(
        &h.call(
            Method::GET,
            &h.chat(&format!("/sessions/{unknown}")),
            &token,
            None
        )
        .await,
        404
    ));
    assert!(is_problem(
        &h.call(Method::GET, &h.url("/no/such/path"), &token, None)
            .await,
        404
    ));
    let r = h
        .call(
            Method::DELETE,
            &h.chat(&format!("/sessions/{sid}?reason=BORED")),
            &token,
            None,
        )
        .await;
    assert!(is_problem(&r, 400));
    // A wrong dialog id → 404; a wrong method → 405 with a problem body.
    let r = h
        .call(
            Method::POST,
            &h.chat(&format!("/engagements/{eid}:join")),
            &token,
            Some(json!({"dialogId": "123e4567-e89b-12d3-a456-426614174000", "sessionId": sid})),
        )
        .await;
    assert!(is_problem(&r, 404));
    assert!(is_problem(
        &h.call(Method::PUT, &h.chat("/sessions"), &token, None)
            .await,
        405
    ));
    // CORS preflight from another origin.
    let r = h
        .http
        .request(Method::OPTIONS, h.chat("/sessions"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,appkey,content-type,x-route-request",
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let allowed = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for header in ["authorization", "appkey", "content-type", "x-route-request"] {
        assert!(allowed.contains(header), "{allowed}");
    }
}

#[tokio::test]
async fn bot_mode_and_the_end_command() {
    let h = start(AgentMode::Bot).await;
    let token = h.jwt("frank", false).await;
    let sid = h.create_session(&token).await;
    let (eid, did) = h.create_engagement(&token, &sid).await;
    let mut cursor = None;
    let events = h
        .poll_until(&token, &sid, &mut cursor, |e| event_type(e) == "MESSAGE")
        .await;
    assert_eq!(
        events.last().unwrap()["participant"]["participantType"],
        "BOT"
    );
    let r = h
        .call(
            Method::POST,
            &h.chat(&format!("/engagements/{eid}/messages")),
            &token,
            Some(send_body(&sid, &did, "/end")),
        )
        .await;
    assert_eq!(r.status, 200);
    let events = h
        .poll_until(&token, &sid, &mut cursor, |e| {
            event_type(e) == "PARTICIPANT_DISCONNECTED"
                && e["participant"]["participantType"] == "CUSTOMER"
        })
        .await;
    let types: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                event_type(e),
                e["participant"]["participantType"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        &types[types.len() - 2..],
        [
            ("PARTICIPANT_DISCONNECTED", "BOT"),
            ("PARTICIPANT_DISCONNECTED", "CUSTOMER")
        ]
    );
    let _ = ServerEventType::Message;
}
