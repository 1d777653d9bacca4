//! The emulator's size limits: request bodies over 64 KiB answer 413 with a problem body on
//! every endpoint that takes one (declared length or chunked); a body at the limit is read;
//! overlong identifiers in paths are unknown ids, not errors of another kind.

use chat_emulator::AgentMode;
use reqwest::Method;
use serde_json::json;

use crate::chat::send_body;
use crate::common::{is_problem, reply, start};

const LIMIT: usize = 64 * 1024;

#[tokio::test]
async fn bodies_over_64_kib_answer_413_problems_everywhere() {
    let h = start(AgentMode::Off).await;
    let c = h.emu.credentials().clone();
    let token = h.jwt("limits", false).await;
    let sid = h.create_session(&token).await;
    let (eid, _) = h.create_engagement(&token, &sid).await;
    let access = h.access_token().await;
    let endpoints = [
        h.url(&format!(
            "/api/auth/v1/{}/protocol/openid-connect/token",
            c.account_id
        )),
        h.url(&format!(
            "/api/digital/chat/v1/accounts/{}/tokens",
            c.account_id
        )),
        h.url(&format!(
            "/api/digital/config/v1/accounts/{}/integrations",
            c.account_id
        )),
        h.chat("/sessions"),
        h.chat("/engagements"),
        h.chat(&format!("/engagements/{eid}:join")),
        h.chat(&format!("/engagements/{eid}:disconnect")),
        h.chat(&format!("/engagements/{eid}/messages")),
        h.url("/emulator/v1/faults"),
    ];
    let stats = h.emu.control().stats();
    for url in &endpoints {
        // The bearer is the chat token on chat paths, the access token elsewhere.
        let bearer = if url.contains("/sdk/") {
            &token
        } else {
            &access
        };
        let r = reply(
            h.http
                .post(url)
                .bearer_auth(bearer)
                .header("appkey", &c.appkey)
                .header("x-emulator-control-key", h.emu.control_key())
                .header("content-type", "application/json")
                .body(vec![b' '; LIMIT + 1])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(is_problem(&r, 413), "{url}: {:?}", r.body);
        assert_eq!(r.body["detail"], "Request body larger than 64 KiB");
        // Chunked, with no length announced: the limit holds while reading.
        let answer = chunked_post(url, bearer, &c.appkey, h.emu.control_key()).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{url}: {answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
        assert!(
            answer.contains("Request body larger than 64 KiB"),
            "{answer}"
        );
    }
    let after = h.emu.control().stats();
    assert_eq!(
        (
            after.sessions,
            after.ongoing_engagements,
            after.tokens_minted
        ),
        (
            stats.sessions,
            stats.ongoing_engagements,
            stats.tokens_minted
        )
    );
    assert_eq!(h.emu.control().engagements()[0].message_count, 0);
}

/// A raw HTTP/1.1 POST with a chunked body of `LIMIT + 1` bytes; the whole answer as text.
async fn chunked_post(url: &str, bearer: &str, appkey: &str, control_key: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {bearer}\r\n\
         appkey: {appkey}\r\nx-emulator-control-key: {control_key}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 4096];
    let mut sent = 0;
    // The server may answer and close before the whole body is written: stop writing then.
    while sent <= LIMIT {
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        if stream.write_all(&frame).await.is_err() {
            break;
        }
        sent += chunk.len();
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_body_of_exactly_64_kib_is_read() {
    let h = start(AgentMode::Off).await;
    let token = h.jwt("limits", false).await;
    let sid = h.create_session(&token).await;
    let (eid, did) = h.create_engagement(&token, &sid).await;
    let mut body = send_body(&sid, &did, &"x".repeat(4096)).to_string();
    // Insignificant whitespace up to the limit.
    body.insert_str(1, &" ".repeat(LIMIT - body.len()));
    assert_eq!(body.len(), LIMIT);
    let r = reply(
        h.http
            .post(h.chat(&format!("/engagements/{eid}/messages")))
            .bearer_auth(&token)
            .header("appkey", &h.emu.credentials().appkey)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn overlong_ids_in_paths_are_unknown_ids() {
    let h = start(AgentMode::Off).await;
    let token = h.jwt("limits", false).await;
    let long = "a".repeat(4000);
    for (method, path, detail) in [
        (
            Method::GET,
            format!("/sessions/{long}"),
            "Session not found",
        ),
        (
            Method::DELETE,
            format!("/sessions/{long}"),
            "Session not found",
        ),
        (
            Method::GET,
            format!("/sessions/{long}/events"),
            "Session not found",
        ),
        (
            Method::GET,
            format!("/engagements/{long}"),
            "Engagement not found",
        ),
    ] {
        let r = h.call(method.clone(), &h.chat(&path), &token, None).await;
        assert!(is_problem(&r, 404), "{method} {path}: {:?}", r.body);
        assert_eq!(r.body["detail"], detail);
    }
    let sid = h.create_session(&token).await;
    let r = h
        .call(
            Method::POST,
            &h.chat("/engagements"),
            &token,
            Some(json!({"sessionId": long, "engagementParameters": {}})),
        )
        .await;
    assert!(is_problem(&r, 404));
    let r = h.poll(&token, &sid, Some(&"9".repeat(100))).await;
    assert!(is_problem(&r, 400), "{:?}", r.body);
    assert_eq!(r.body["violations"][0]["field"], "lastEventId");
}
