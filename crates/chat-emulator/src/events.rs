//! The events resource: HTTP long polling (reference 6.7) and its WebSocket form
//! (specified in docs/protocol.md, "WebSocket form of the events resource").
//!
//! The WebSocket is chat-net's sans-IO implementation in the server role over hyper's
//! upgraded connection: no WebSocket library, so nothing logs the upgrade's headers or a
//! frame's payload (the in-band token, message text).

use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chat_core::SessionId;
use chat_core::wire::ServerEvent;
use chat_net::ws::READ_BUFFER;
use chat_net::ws::frame::{Decoder, Encoder, FrameError, Message, Role};
use chat_net::ws::handshake::{UpgradeError, server_accept};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::chat_api::{Caller, authorize, credentials, own_session};
use crate::live::{Reader, StreamGuard};
use crate::problem::ApiError;
use crate::state::{Counters, Inner};
use crate::util::now_unix;

/// WebSocket close codes (4000 + the HTTP status they stand for).
pub(crate) mod close {
    /// The token expired, was revoked or is invalid (HTTP 401).
    pub(crate) const UNAUTHORIZED: u16 = 4401;
    /// The token is for another account or integration, or the appkey is wrong (HTTP 403).
    pub(crate) const FORBIDDEN: u16 = 4403;
    /// The session does not exist (any more): reason "Session not found" (HTTP 404).
    pub(crate) const SESSION_NOT_FOUND: u16 = 4404;
    /// A frame the server does not understand.
    pub(crate) const BAD_FRAME: u16 = 4400;
    /// The emulator is shutting down.
    pub(crate) const GOING_AWAY: u16 = 1001;
}

/// The largest message a client may send (close 1009 beyond).
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// How long a write to a client may take before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server waits for the client's answer to its close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct EventsQuery {
    last_event_id: Option<String>,
    /// WebSocket only: browsers cannot set headers on the upgrade request.
    token: Option<String>,
    /// WebSocket only.
    appkey: Option<String>,
}

fn parse_cursor(value: Option<&str>) -> Result<u64, ApiError> {
    match value {
        None | Some("") => Ok(0),
        Some(v) => v.parse::<u64>().map_err(|_| {
            ApiError::violations(vec![crate::problem::violation(
                "lastEventId",
                "is not an event id issued by this server",
            )])
        }),
    }
}

/// `GET …/sessions/{sid}/events[?lastEventId=]`, upgraded to a WebSocket when asked.
pub(crate) async fn events(
    State(inner): State<Arc<Inner>>,
    Path((integration, session)): Path<(String, String)>,
    request: Request,
) -> Response {
    let (mut parts, _body) = request.into_parts();
    let query: EventsQuery = parts.uri.query().and_then(parse_query).unwrap_or_default();
    let websocket = is_upgrade(&parts.headers);
    let (header_token, header_appkey) = credentials(&parts.headers);
    let (token, appkey) = if websocket {
        (
            header_token.or(query.token.as_deref()),
            header_appkey.or(query.appkey.as_deref()),
        )
    } else {
        (header_token, header_appkey)
    };
    let caller = match authorize(&inner, token, appkey, &integration) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let cursor = match parse_cursor(query.last_event_id.as_deref()) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let session = SessionId::new(session);
    if websocket {
        {
            let mut world = inner.world();
            if let Err(e) = own_session(&world, &caller, &session) {
                return e.into_response();
            }
            if let Some(state) = world.sessions.get_mut(&session) {
                state.acknowledge(cursor);
            }
        }
        let accept = match server_accept(
            parts
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes())),
        ) {
            Ok(accept) => accept,
            Err(e) => return refused_upgrade(e),
        };
        // Present when the connection is served by hyper with upgrades (not through the router
        // in process).
        let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
            return ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "This connection cannot be upgraded to a WebSocket",
            )
            .into_response();
        };
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let socket = hyper_util::rt::TokioIo::new(upgraded);
                    websocket_loop(inner, socket, caller, session, cursor).await;
                }
                Err(e) => tracing::debug!("WebSocket upgrade failed: {e}"),
            }
        });
        return switching_protocols(&accept);
    }
    long_poll(inner, caller, session, cursor).await
}

/// Tiny query parser (the values here are ids and tokens: percent-decoding is enough).
fn parse_query(query: &str) -> Option<EventsQuery> {
    let mut out = EventsQuery::default();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_encoding::percent_decode_str(v)
            .decode_utf8()
            .ok()?
            .into_owned();
        match k {
            "lastEventId" => out.last_event_id = Some(v),
            "token" => out.token = Some(v),
            "appkey" => out.appkey = Some(v),
            _ => {}
        }
    }
    Some(out)
}

/// The `101` answer that hands the connection over to the WebSocket.
fn switching_protocols(accept: &str) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(accept) = HeaderValue::from_str(accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// An upgrade request without the headers RFC 6455 requires: 400, or 426 with the version
/// this server speaks.
fn refused_upgrade(e: UpgradeError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = ApiError::new(status, e.to_string()).into_response();
    if e == UpgradeError::Version {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
    }
    response
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Holds the poll until events are pending, the hold time passes, or the session goes away.
async fn long_poll(inner: Arc<Inner>, caller: Caller, session: SessionId, cursor: u64) -> Response {
    let _reader = StreamGuard::open(&inner, &session, Reader::LongPoll);
    let deadline = crate::util::deadline_after(inner.settings.hold_time);
    let mut acknowledged = false;
    loop {
        let notify;
        {
            let mut world = inner.world();
            if let Err(e) = own_session(&world, &caller, &session) {
                return e.into_response();
            }
            let Some(state) = world.sessions.get_mut(&session) else {
                return ApiError::session_not_found().into_response();
            };
            if !acknowledged {
                state.acknowledge(cursor);
                acknowledged = true;
            }
            let batch: Vec<ServerEvent> = state
                .events_after(cursor)
                .into_iter()
                .map(|q| q.event.clone())
                .collect();
            if !batch.is_empty() {
                inner
                    .counters
                    .events_delivered
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                return Json(batch).into_response();
            }
            notify = state.notify.clone();
        }
        // `notify_waiters` wakes only registered futures: register, then look once more, so
        // that an event queued between the unlock and the registration is not missed.
        let mut notified = pin!(notify.notified());
        notified.as_mut().enable();
        if has_events_after(&inner, &session, cursor) {
            continue;
        }
        tokio::select! {
            () = notified => continue,
            () = tokio::time::sleep_until(deadline) => {
                return Json(Vec::<ServerEvent>::new()).into_response();
            }
            () = inner.shutting_down() => {
                return Json(Vec::<ServerEvent>::new()).into_response();
            }
        }
    }
}

/// True if events after `cursor` are queued, or the session is gone (both end a wait).
fn has_events_after(inner: &Inner, session: &SessionId, cursor: u64) -> bool {
    let world = inner.world();
    match world.sessions.get(session) {
        Some(state) => state.events.back().is_some_and(|q| q.seq > cursor),
        None => true,
    }
}

/// Client → server frames of the WebSocket form.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClientFrame {
    /// Acknowledges this event and all before it.
    last_event_id: Option<String>,
    /// A refreshed chat token (`jwt.…`), replacing the connection's token.
    jwt_token: Option<String>,
}

enum Step {
    Continue,
    Close(u16, &'static str),
    /// The client closed the connection (or it broke): nothing more to send.
    End,
}

/// One side of a WebSocket: the connection and its codec.
struct Socket<S> {
    io: S,
    decoder: Decoder,
    encoder: Encoder,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Socket<S> {
    /// Writes one frame, within [`WRITE_TIMEOUT`].
    async fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        let write = async {
            self.io.write_all(frame).await?;
            self.io.flush().await
        };
        tokio::time::timeout(WRITE_TIMEOUT, write)
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    }

    /// Reads more of the client's frames; `false` when the connection ended.
    async fn read(&mut self) -> bool {
        let input = self.decoder.input();
        input.reserve(READ_BUFFER);
        matches!(self.io.read_buf(input).await, Ok(n) if n > 0)
    }

    /// The closing handshake started by the server: the close frame, then the client's
    /// answer (or the end of the connection, or [`CLOSE_TIMEOUT`]) before the connection
    /// is dropped, so that the close frame is not lost to a reset.
    async fn close(&mut self, code: u16, reason: &str) {
        let frame = self.encoder.close(Some((code, reason)));
        if self.send(&frame).await.is_err() {
            return;
        }
        let answered = async {
            loop {
                match self.decoder.next() {
                    Ok(Some(Message::Close(_))) | Err(_) => return,
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        if !self.read().await {
                            return;
                        }
                    }
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, answered).await;
        let _ = self.io.shutdown().await;
    }
}

async fn websocket_loop<S>(
    inner: Arc<Inner>,
    io: S,
    mut caller: Caller,
    session: SessionId,
    cursor: u64,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    Counters::bump(&inner.counters.ws_connections);
    let _reader = StreamGuard::open(&inner, &session, Reader::WebSocket);
    let mut socket = Socket {
        io,
        decoder: Decoder::with_max_message(Role::Server, MAX_CLIENT_MESSAGE),
        encoder: Encoder::new(Role::Server),
    };
    let mut sent_up_to = cursor;
    let ping_every = inner.settings.ws_ping_interval;
    let mut ping = tokio::time::interval_at(crate::util::deadline_after(ping_every), ping_every);
    let mut last_heard = Instant::now();
    let outcome = 'connection: loop {
        // What the client sent, in order (an acknowledgement before a ping is handled
        // before the pong is sent).
        loop {
            let message = match socket.decoder.next() {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(e) => break 'connection refused_frame(e),
            };
            last_heard = Instant::now();
            let step = match message {
                Message::Ping(_) | Message::Close(_) => {
                    let answer = socket.encoder.answer(&message);
                    let sent = match answer {
                        Some(frame) => socket.send(&frame).await.is_ok(),
                        None => true,
                    };
                    if matches!(message, Message::Close(_)) || !sent {
                        Step::End
                    } else {
                        Step::Continue
                    }
                }
                message => handle_frame(&inner, &mut caller, &session, message),
            };
            if !matches!(step, Step::Continue) {
                break 'connection step;
            }
        }
        // Send whatever is new, or learn that the session or token is gone.
        let notify;
        let batch = {
            let world = inner.world();
            if caller.claims.generation < world.min_token_generation {
                break Step::Close(close::UNAUTHORIZED, world.revocation_detail);
            }
            let Some(state) = world
                .sessions
                .get(&session)
                .filter(|s| s.customer == caller.customer)
            else {
                break Step::Close(close::SESSION_NOT_FOUND, chat_core::wire::SESSION_NOT_FOUND);
            };
            notify = state.notify.clone();
            let batch: Vec<ServerEvent> = state
                .events_after(sent_up_to)
                .into_iter()
                .map(|q| q.event.clone())
                .collect();
            if let Some(last) = state.events.back() {
                if !batch.is_empty() {
                    sent_up_to = last.seq;
                }
            }
            batch
        };
        if !batch.is_empty() {
            inner
                .counters
                .events_delivered
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            let text = serde_json::to_string(&batch).unwrap_or_else(|_| "[]".to_owned());
            let frame = socket.encoder.text(&text);
            if socket.send(&frame).await.is_err() {
                return;
            }
            continue;
        }
        let mut notified = pin!(notify.notified());
        notified.as_mut().enable();
        if has_events_after(&inner, &session, sent_up_to) {
            continue;
        }
        let expires_in = Duration::from_secs(caller.claims.exp.saturating_sub(now_unix()));
        let step = tokio::select! {
            () = notified => Step::Continue,
            () = tokio::time::sleep(expires_in) => Step::Close(close::UNAUTHORIZED, "Token expired"),
            () = inner.shutting_down() => Step::Close(close::GOING_AWAY, "Emulator shutting down"),
            _ = ping.tick() => {
                if last_heard.elapsed() > ping_every.saturating_mul(3) {
                    Step::Close(close::GOING_AWAY, "No pong")
                } else {
                    let frame = socket.encoder.ping(&[]);
                    if socket.send(&frame).await.is_err() { Step::End } else { Step::Continue }
                }
            }
            // Decoded at the top of the loop.
            open = socket.read() => if open { Step::Continue } else { Step::End },
        };
        if !matches!(step, Step::Continue) {
            break step;
        }
    };
    if let Step::Close(code, reason) = outcome {
        socket.close(code, reason).await;
    }
}

/// A frame that breaks RFC 6455, or a message past 64 KiB: closed with the RFC's code.
fn refused_frame(e: FrameError) -> Step {
    tracing::debug!("WebSocket frame refused: {e}");
    let reason = match e {
        FrameError::TooLarge => "Message too large",
        FrameError::Utf8 => "Text is not UTF-8",
        _ => "Protocol error",
    };
    Step::Close(e.close_code(), reason)
}

fn handle_frame(inner: &Inner, caller: &mut Caller, session: &SessionId, message: Message) -> Step {
    let text = match message {
        Message::Text(text) => text,
        // Pongs only prove liveness (pings and closes are answered by the loop).
        Message::Ping(_) | Message::Pong(_) | Message::Close(_) => return Step::Continue,
        Message::Binary(_) => {
            return Step::Close(close::BAD_FRAME, "Binary frames are not supported");
        }
    };
    let Ok(frame) = serde_json::from_str::<ClientFrame>(&text) else {
        return Step::Close(close::BAD_FRAME, "Malformed frame");
    };
    if let Some(token) = frame.jwt_token {
        tracing::debug!("WebSocket: a new token in-band");
        let appkey = inner.secrets.appkey.clone();
        match authorize(
            inner,
            Some(&token),
            Some(&appkey),
            &caller.customer.integration_id,
        ) {
            Ok(new) if new.customer == caller.customer => *caller = new,
            Ok(_) => return Step::Close(close::FORBIDDEN, "The token is for another customer"),
            Err(e) if e.status.as_u16() == 403 => {
                return Step::Close(close::FORBIDDEN, "Forbidden");
            }
            Err(_) => return Step::Close(close::UNAUTHORIZED, "Invalid token"),
        }
    }
    if let Some(id) = frame.last_event_id {
        let Ok(upto) = id.parse::<u64>() else {
            return Step::Close(close::BAD_FRAME, "Unknown lastEventId");
        };
        if let Some(state) = inner.world().sessions.get_mut(session) {
            state.acknowledge(upto);
        }
    }
    Step::Continue
}
