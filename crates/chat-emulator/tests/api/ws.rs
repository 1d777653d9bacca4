//! The WebSocket form of the events resource.

use std::time::Duration;

use chat_core::wire::ParticipantType;
use chat_core::{EngagementId, SessionId};
use chat_emulator::AgentMode;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{Harness, start};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(h: &Harness, token: &str, sid: &str, last: Option<&str>) -> Socket {
    let mut url = h
        .chat(&format!("/sessions/{sid}/events"))
        .replacen("http", "ws", 1);
    if let Some(last) = last {
        url.push_str(&format!("?lastEventId={last}"));
    }
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
        .headers_mut()
        .insert("appkey", h.emu.credentials().appkey.parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// The next JSON array of events (skipping pings).
async fn next_batch(socket: &mut Socket) -> Vec<Value> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str::<Value>(text.as_str())
                .unwrap()
                .as_array()
                .unwrap()
                .clone();
        }
    }
}

async fn next_close(socket: &mut Socket) -> (u16, String) {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Close(Some(frame)) = message {
            return (u16::from(frame.code), frame.reason.to_string());
        }
    }
}

#[tokio::test]
async fn pushes_events_and_acknowledges_by_frame() {
    let h = start(AgentMode::Off).await;
    let token = h.jwt("ws1", false).await;
    let sid = h.create_session(&token).await;
    let (eid, _) = h.create_engagement(&token, &sid).await;
    let mut socket = connect(&h, &token, &sid, None).await;
    let batch = next_batch(&mut socket).await;
    let types: Vec<&str> = batch
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["ENGAGEMENT_CREATED", "PARTICIPANT_ADDED"]);
    // New events are pushed as they happen, without re-sending what this connection sent.
    let control = h.emu.control();
    control
        .post_message(
            &EngagementId::new(eid.clone()),
            ParticipantType::Agent,
            "pushed",
        )
        .unwrap();
    let batch = next_batch(&mut socket).await;
    assert_eq!(
        batch.last().unwrap()["message"]["body"]["elementText"]["text"],
        "pushed"
    );
    // Unacknowledged events are still queued: a long poll sees all four.
    assert_eq!(
        h.poll(&token, &sid, None)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        4
    );
    // Acknowledge the first two by frame.
    let second = {
        let r = h.poll(&token, &sid, None).await;
        r.body[1]["eventId"].as_str().unwrap().to_owned()
    };
    socket
        .send(Message::Text(
            json!({"lastEventId": second}).to_string().into(),
        ))
        .await
        .unwrap();
    // Round-trip through the server before checking (a ping is answered after the ack frame).
    socket.send(Message::Ping(vec![1, 2].into())).await.unwrap();
    loop {
        if let Message::Pong(_) = socket.next().await.unwrap().unwrap() {
            break;
        }
    }
    assert_eq!(
        h.poll(&token, &sid, None)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // A new connection starting after lastEventId gets only what follows.
    drop(socket);
    let mut socket = connect(&h, &token, &sid, Some(&second)).await;
    assert_eq!(next_batch(&mut socket).await.len(), 2);
    assert!(control.stats().ws_connections >= 2);
}

#[tokio::test]
async fn close_codes_map_to_http_statuses() {
    let h = start(AgentMode::Off).await;
    let token = h.jwt("ws2", false).await;
    let sid = h.create_session(&token).await;
    let control = h.emu.control();
    // Session invalidated → 4404 "Session not found".
    let mut socket = connect(&h, &token, &sid, None).await;
    control.invalidate_session(&SessionId::new(sid.clone()));
    assert_eq!(
        next_close(&mut socket).await,
        (4404, "Session not found".to_owned())
    );
    // Revoked token → 4401.
    let sid = h.create_session(&token).await;
    let mut socket = connect(&h, &token, &sid, None).await;
    control.revoke_chat_tokens();
    assert_eq!(next_close(&mut socket).await.0, 4401);
    // Token expiry without refresh → 4401; an in-band refresh keeps the connection.
    let short = control.mint_token("ws2", false, Duration::from_secs(1));
    let sid = h.create_session(&short).await;
    let mut socket = connect(&h, &short, &sid, None).await;
    let fresh = control.mint_token("ws2", false, Duration::from_secs(60));
    socket
        .send(Message::Text(json!({"jwtToken": fresh}).to_string().into()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (eid, _) = h.create_engagement(&fresh, &sid).await;
    assert_eq!(
        next_batch(&mut socket).await.len(),
        2,
        "still open after the old token expired: {eid}"
    );
    // A refresh with another customer's token → 4403.
    let other = control.mint_token("someone-else", false, Duration::from_secs(60));
    socket
        .send(Message::Text(json!({"jwtToken": other}).to_string().into()))
        .await
        .unwrap();
    assert_eq!(next_close(&mut socket).await.0, 4403);
    let short = control.mint_token("ws2", false, Duration::from_secs(1));
    let mut socket = connect(&h, &short, &sid, None).await;
    assert_eq!(
        next_close(&mut socket).await,
        (4401, "Token expired".to_owned())
    );
    // A malformed frame → 4400.
    let mut socket = connect(&h, &fresh, &sid, None).await;
    socket.send(Message::Text("{oops".into())).await.unwrap();
    assert_eq!(next_close(&mut socket).await.0, 4400);
}

#[tokio::test]
async fn upgrade_is_refused_with_http_statuses() {
    let h = start(AgentMode::Off).await;
    let token = h.jwt("ws3", false).await;
    let url = h
        .chat("/sessions/123e4567-e89b-12d3-a456-426614174000/events")
        .replacen("http", "ws", 1);
    let mut request = url.clone().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
        .headers_mut()
        .insert("appkey", h.emu.credentials().appkey.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 404)
        }
        other => panic!("expected 404, got {other:?}"),
    }
    let request = url.into_client_request().unwrap();
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401)
        }
        other => panic!("expected 401, got {other:?}"),
    }
    // Browsers cannot set headers: token and appkey may come in the query.
    let sid = h.create_session(&token).await;
    let url = format!(
        "{}?token={token}&appkey={}",
        h.chat(&format!("/sessions/{sid}/events"))
            .replacen("http", "ws", 1),
        h.emu.credentials().appkey
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    socket.close(None).await.unwrap();
}

#[tokio::test]
async fn server_pings_keep_the_connection_alive() {
    let h = crate::common::start_with(
        chat_emulator::Emulator::builder()
            .agent(AgentMode::Off)
            .ws_ping_interval(Duration::from_millis(50)),
    )
    .await;
    let token = h.jwt("ws4", false).await;
    let sid = h.create_session(&token).await;
    let mut socket = connect(&h, &token, &sid, None).await;
    let mut pings = 0;
    while pings < 3 {
        if let Message::Ping(_) = tokio::time::timeout(Duration::from_secs(2), socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            pings += 1;
        }
    }
}

/// Writes a raw upgrade request (credentials and these WebSocket headers) and reads the
/// status line and headers of the answer.
async fn raw_upgrade(h: &Harness, token: &str, sid: &str, headers: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = h.chat(&format!("/sessions/{sid}/events"));
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let mut tcp = tokio::net::TcpStream::connect(authority).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\nappkey: {}\r\n{headers}\r\n",
        h.emu.credentials().appkey
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).to_lowercase()
}

#[tokio::test]
async fn upgrade_headers_are_checked() {
    let h = start(AgentMode::Off).await;
    let token = h.jwt("ws5", false).await;
    let sid = h.create_session(&token).await;
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let ok = raw_upgrade(
        &h,
        &token,
        &sid,
        &format!("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n{key}"),
    )
    .await;
    assert!(ok.starts_with("http/1.1 101"), "{ok}");
    // RFC 6455's example key and the answer it expects.
    assert!(
        ok.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{ok}"
    );
    let old = raw_upgrade(
        &h,
        &token,
        &sid,
        &format!("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n{key}"),
    )
    .await;
    assert!(old.starts_with("http/1.1 426"), "{old}");
    assert!(old.contains("sec-websocket-version: 13"), "{old}");
    let keyless = raw_upgrade(
        &h,
        &token,
        &sid,
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
    )
    .await;
    assert!(keyless.starts_with("http/1.1 400"), "{keyless}");
    let no_connection = raw_upgrade(
        &h,
        &token,
        &sid,
        &format!("Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n{key}"),
    )
    .await;
    assert!(no_connection.starts_with("http/1.1 400"), "{no_connection}");
}

#[tokio::test]
async fn oversized_messages_close_with_1009_and_client_closes_are_answered() {
    let h = start(AgentMode::Off).await;
    let token = h.jwt("ws6", false).await;
    let sid = h.create_session(&token).await;
    let mut socket = connect(&h, &token, &sid, None).await;
    socket
        .send(Message::Text(" ".repeat(64 * 1024 + 1).into()))
        .await
        .unwrap();
    assert_eq!(next_close(&mut socket).await.0, 1009);
    // The closing handshake started by the client: the server answers with the same code.
    let mut socket = connect(&h, &token, &sid, None).await;
    socket
        .send(Message::Close(Some(
            tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: 1000.into(),
                reason: "bye".into(),
            },
        )))
        .await
        .unwrap();
    assert_eq!(next_close(&mut socket).await.0, 1000);
    // Exactly 64 KiB is read (and refused as a malformed frame: it is not JSON).
    let mut socket = connect(&h, &token, &sid, None).await;
    socket
        .send(Message::Text(" ".repeat(64 * 1024).into()))
        .await
        .unwrap();
    assert_eq!(next_close(&mut socket).await.0, 4400);
}
