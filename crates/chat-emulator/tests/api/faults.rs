//! Faults on demand: statuses, hangs, dropped connections, delays, invalid sessions.

use std::time::{Duration, Instant};

use chat_core::SessionId;
use chat_emulator::{AgentMode, Route};
use reqwest::Method;

use crate::common::{is_problem, start};

#[tokio::test]
async fn next_polls_fail_with_statuses_then_recover() {
    let h = start(AgentMode::Off).await;
    let token = h.jwt("f1", false).await;
    let sid = h.create_session(&token).await;
    let control = h.emu.control();
    control.fail_next(Route::Events, 500, 2);
    control.fail_next_with_retry_after(Route::Events, 503, 1, 3);
    assert!(is_problem(&h.poll(&token, &sid, None).await, 500));
    assert!(is_problem(&h.poll(&token, &sid, None).await, 500));
    let r = h.poll(&token, &sid, None).await;
    assert!(is_problem(&r, 503));
    assert_eq!(r.headers["retry-after"], "3");
    assert_eq!(h.poll(&token, &sid, None).await.status, 200);
    // A 404 fault is not "Session not found" (the client must tell them apart).
    control.fail_next(Route::Events, 404, 1);
    let r = h.poll(&token, &sid, None).await;
    assert!(is_problem(&r, 404));
    assert_ne!(r.body["detail"], "Session not found");
    // AnyChat covers every chat endpoint.
    control.fail_next(Route::AnyChat, 502, 1);
    let r = h
        .call(
            Method::GET,
            &h.chat(&format!("/sessions/{sid}")),
            &token,
            None,
        )
        .await;
    assert!(is_problem(&r, 502));
    assert_eq!(control.stats().polls, 5);
}

#[tokio::test]
async fn per_session_faults_leave_other_sessions_alone() {
    let h = start(AgentMode::Off).await;
    let token = h.jwt("f2", false).await;
    let s1 = h.create_session(&token).await;
    let s2 = h.create_session(&token).await;
    h.emu
        .control()
        .fail_next_for_session(&SessionId::new(s1.clone()), Route::Events, 401, 1);
    assert_eq!(h.poll(&token, &s2, None).await.status, 200);
    assert!(is_problem(&h.poll(&token, &s1, None).await, 401));
    assert_eq!(h.poll(&token, &s1, None).await.status, 200);
}

#[tokio::test]
async fn hung_and_dropped_polls() {
    let h = start(AgentMode::Off).await;
    let token = h.jwt("f3", false).await;
    let sid = h.create_session(&token).await;
    let control = h.emu.control();
    control.hang_next_polls(1, Duration::from_secs(60));
    // The client gives up first, as the official SDK does after 40 s.
    let url = h.chat(&format!("/sessions/{sid}/events"));
    let r = h
        .http
        .get(&url)
        .bearer_auth(&token)
        .header("appkey", &h.emu.credentials().appkey)
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()));
    control.drop_next_polls(1);
    let r = h
        .http
        .get(&url)
        .bearer_auth(&token)
        .header("appkey", &h.emu.credentials().appkey)
        .send()
        .await;
    let failed = match r {
        Err(_) => true,
        Ok(response) => response.bytes().await.is_err(),
    };
    assert!(failed, "the connection was dropped");
    assert_eq!(h.poll(&token, &sid, None).await.status, 200);
}

#[tokio::test]
async fn delays_and_invalidated_sessions() {
    let h = start(AgentMode::Off).await;
    let token = h.jwt("f4", false).await;
    let sid = h.create_session(&token).await;
    let control = h.emu.control();
    control.delay_responses(Route::AnyChat, Some(Duration::from_millis(200)));
    let started = Instant::now();
    let r = h
        .call(
            Method::GET,
            &h.chat(&format!("/sessions/{sid}")),
            &token,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    control.delay_responses(Route::AnyChat, None);
    // Invalidation wakes a held poll at once with "Session not found".
    let invalidate_later = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(control.invalidate_session(&SessionId::new(sid.clone())));
    };
    let r = {
        let (r, ()) = tokio::join!(h.poll(&token, &sid, None), invalidate_later);
        r
    };
    assert!(is_problem(&r, 404));
    assert_eq!(r.body["detail"], "Session not found");
    assert!(!control.invalidate_session(&SessionId::new(sid)));
}

#[tokio::test]
async fn per_session_hangs_and_drops() {
    let h = start(AgentMode::Off).await;
    let token = h.jwt("f5", false).await;
    let s1 = h.create_session(&token).await;
    let s2 = h.create_session(&token).await;
    let control = h.emu.control();
    control.drop_next_polls_for_session(&SessionId::new(s1.clone()), 1);
    control.hang_next_polls_for_session(&SessionId::new(s1.clone()), 1, Duration::from_millis(400));
    // The other session is untouched.
    assert_eq!(h.poll(&token, &s2, None).await.status, 200);
    let url = h.chat(&format!("/sessions/{s1}/events"));
    let dropped = match h
        .http
        .get(&url)
        .bearer_auth(&token)
        .header("appkey", &h.emu.credentials().appkey)
        .send()
        .await
    {
        Err(_) => true,
        Ok(response) => response.bytes().await.is_err(),
    };
    assert!(dropped);
    // Held for 400 ms, then served normally (hold time 300 ms) — and x-route-request is accepted.
    let started = Instant::now();
    let r = h
        .http
        .get(&url)
        .bearer_auth(&token)
        .header("appkey", &h.emu.credentials().appkey)
        .header("x-route-request", &s1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(650));
}

#[tokio::test]
async fn a_lost_answer_leaves_the_message_sent() {
    let h = start(AgentMode::Off).await;
    let token = h.jwt("f6", false).await;
    let sid = h.create_session(&token).await;
    let (eid, did) = h.create_engagement(&token, &sid).await;
    let control = h.emu.control();
    control.lose_next_answers(Route::Messages, 1);
    let send = h
        .http
        .post(h.chat(&format!("/engagements/{eid}/messages")))
        .bearer_auth(&token)
        .header("appkey", &h.emu.credentials().appkey)
        .json(&crate::chat::send_body(&sid, &did, "did it arrive?"))
        .send()
        .await;
    let lost = match send {
        Err(_) => true,
        Ok(response) => response.bytes().await.is_err(),
    };
    assert!(lost, "the answer was lost");
    // History reads are not the Messages route: this one is answered, and shows the message.
    control.fail_next(Route::Messages, 503, 1);
    let url = h.chat(&format!(
        "/engagements/{eid}/messages?sessionId={sid}&dialogId={did}&pageSize=50&pageNumber=1&orderBy=DSC"
    ));
    let page = h.call(Method::GET, &url, &token, None).await;
    assert_eq!(page.status, 200);
    let texts: Vec<&str> = page.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["body"]["elementText"]["text"].as_str())
        .collect();
    assert_eq!(texts, ["did it arrive?"]);
    // The 503 is still waiting for the next send.
    let r = h
        .call(
            Method::POST,
            &h.chat(&format!("/engagements/{eid}/messages")),
            &token,
            Some(crate::chat::send_body(&sid, &did, "again")),
        )
        .await;
    assert!(is_problem(&r, 503));
}
