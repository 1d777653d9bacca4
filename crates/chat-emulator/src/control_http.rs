//! The control and fault API over HTTP, under `/emulator/v1/…`, for out-of-process tests.
//!
//! Guarded by the `x-emulator-control-key` header, or by a valid OAuth access token of the
//! account (`Authorization: Bearer …`). The same operations ([`operations`]) are what the
//! console serves under `/console/api/…`, behind its own guard: every handler here calls a
//! [`Control`] method or a provisioning function, and the console has no other way in.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use chat_core::wire::ParticipantType;
use chat_core::{EngagementId, MessageId, ParticipantId, SessionId};
use futures::StreamExt as _;
use serde::Deserialize;

use crate::agent::AgentMode;
use crate::control::{Control, ControlError};
use crate::faults::{FaultAction, Route};
use crate::problem::{ApiError, body_rejection, parse_json};
use crate::state::Inner;

/// The control routes under `/emulator/v1`, guarded by the control key.
pub(crate) fn routes() -> Router<Arc<Inner>> {
    Router::new().nest("/emulator/v1", operations())
}

/// Every control operation, unguarded, with paths relative to the API's root.
pub(crate) fn operations() -> Router<Arc<Inner>> {
    Router::new()
        .route("/stats", get(stats))
        .route("/state", get(state))
        .route("/changes", get(changes))
        .route("/sessions", get(sessions))
        .route("/engagements", get(engagements))
        .route("/engagements:broadcast", post(broadcast))
        .route("/engagements/{verb}", post(engagement_verb))
        .route(
            "/engagements/{eid}/messages",
            post(post_message).get(transcript),
        )
        .route("/engagements/{eid}/participants", post(add_participant))
        .route(
            "/engagements/{eid}/participants/{pid}",
            delete(remove_participant),
        )
        .route("/engagements/{eid}/agent", put(set_engagement_agent))
        .route(
            "/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/faults/{id}", delete(remove_fault))
        .route("/outage", post(start_outage).delete(end_outage))
        .route("/delays", post(set_delay))
        .route("/sessions/{verb}", post(session_verb))
        .route("/chat-tokens", post(mint))
        .route("/chat-tokens:expire", post(expire_tokens))
        .route("/chat-tokens:revoke", post(revoke_tokens))
        .route("/access-tokens:revoke", post(revoke_access_tokens))
        .route("/agent", put(set_agent))
        .route("/integrations", get(integrations).post(create_integration))
        .route("/integrations/{id}", delete(delete_integration))
}

/// Put in a request's extensions by the console's guard once it let the request through
/// (clients cannot set extensions): the operations then need no control key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Granted;

/// The guard of every operation: the console's grant, or the control key or an access token
/// of the account.
pub(crate) struct Authorized;

impl FromRequestParts<Arc<Inner>> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, inner: &Arc<Inner>) -> Result<Self, ApiError> {
        if parts.extensions.get::<Granted>().is_some() {
            return Ok(Self);
        }
        authorize(inner, &parts.headers).map(|_| Self)
    }
}

fn control(inner: &Arc<Inner>) -> Control {
    Control {
        inner: inner.clone(),
    }
}

fn authorize(inner: &Arc<Inner>, headers: &HeaderMap) -> Result<Control, ApiError> {
    let key_ok = headers
        .get("x-emulator-control-key")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|k| k == inner.secrets.control_key);
    let token_ok = || {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::util::bearer);
        let now = tokio::time::Instant::now();
        token.is_some_and(|t| {
            inner
                .world()
                .access_tokens
                .get(t.trim())
                .is_some_and(|expiry| *expiry > now)
        })
    };
    if key_ok || token_ok() {
        Ok(Control {
            inner: inner.clone(),
        })
    } else {
        Err(ApiError::unauthorized(
            "Control API needs x-emulator-control-key or an access token of the account",
        ))
    }
}

fn body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(body_rejection)?;
    parse_json(&bytes)
}

fn control_error(e: ControlError) -> ApiError {
    match e {
        ControlError::EngagementNotFound
        | ControlError::ParticipantNotFound
        | ControlError::MessageNotFound => ApiError::not_found(e.to_string()),
        ControlError::EngagementEnded => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        _ => ApiError::bad_request(e.to_string()),
    }
}

async fn stats(State(inner): State<Arc<Inner>>, _auth: Authorized) -> Result<Response, ApiError> {
    let control = control(&inner);
    Ok(Json(control.stats()).into_response())
}

async fn engagements(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
) -> Result<Response, ApiError> {
    let control = control(&inner);
    Ok(Json(serde_json::json!({ "engagements": control.engagements() })).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostMessage {
    participant_type: Option<ParticipantType>,
    participant_id: Option<String>,
    text: String,
    parent_message_id: Option<String>,
}

async fn post_message(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
    Path(eid): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let control = control(&inner);
    let request: PostMessage = body(raw)?;
    let engagement = EngagementId::new(eid);
    let parent = request.parent_message_id.map(MessageId::new);
    let message = match (request.participant_id, request.participant_type) {
        (Some(pid), _) => control.post_message_as(
            &engagement,
            &ParticipantId::new(pid),
            &request.text,
            parent.as_ref(),
        ),
        (None, Some(kind)) => control.post_reply(&engagement, kind, &request.text, parent.as_ref()),
        (None, None) => {
            return Err(ApiError::bad_request(
                "participantType or participantId is required",
            ));
        }
    }
    .map_err(control_error)?;
    Ok((StatusCode::CREATED, Json(message)).into_response())
}

async fn transcript(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
    Path(eid): Path<String>,
) -> Result<Response, ApiError> {
    let messages = control(&inner)
        .transcript(&EngagementId::new(eid))
        .map_err(control_error)?;
    Ok(Json(serde_json::json!({ "messages": messages })).into_response())
}

async fn state(State(inner): State<Arc<Inner>>, _auth: Authorized) -> Response {
    Json(control(&inner).snapshot()).into_response()
}

async fn sessions(State(inner): State<Arc<Inner>>, _auth: Authorized) -> Response {
    Json(serde_json::json!({ "sessions": control(&inner).sessions() })).into_response()
}

/// `GET …/changes`: server-sent events, `ready` once subscribed, then a `change` per
/// notification (`{kind, engagementId?, sessionId?}`); ends when the emulator shuts down.
async fn changes(State(inner): State<Arc<Inner>>, _auth: Authorized) -> Response {
    let feed = control(&inner).changes();
    let ready = futures::stream::once(async {
        Ok::<_, Infallible>(Event::default().event("ready").data("{}"))
    });
    let changes = futures::stream::unfold(feed, |mut feed| async move {
        let change = feed.recv().await?;
        let data = serde_json::to_string(&change).unwrap_or_else(|_| "{}".to_owned());
        Some((
            Ok::<_, Infallible>(Event::default().event("change").data(data)),
            feed,
        ))
    });
    let stop = async move { inner.shutting_down().await };
    let mut response = Sse::new(ready.chain(changes).take_until(stop))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Broadcast {
    participant_type: ParticipantType,
    text: String,
}

async fn broadcast(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let control = control(&inner);
    let request: Broadcast = body(raw)?;
    let count = control.broadcast_message(request.participant_type, &request.text);
    Ok(Json(serde_json::json!({ "engagements": count })).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddParticipant {
    participant_type: ParticipantType,
    display_name: Option<String>,
}

async fn add_participant(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
    Path(eid): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let control = control(&inner);
    let request: AddParticipant = body(raw)?;
    let name = request
        .display_name
        .unwrap_or_else(|| "Participant".to_owned());
    let participant = control
        .add_participant(&EngagementId::new(eid), request.participant_type, &name)
        .map_err(control_error)?;
    Ok((StatusCode::CREATED, Json(participant)).into_response())
}

async fn remove_participant(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
    Path((eid, pid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let control = control(&inner);
    control
        .remove_participant(&EngagementId::new(eid), &ParticipantId::new(pid))
        .map_err(control_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ErrorRequest {
    title: Option<String>,
    detail: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransferRequest {
    from_participant_id: String,
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct EngagementAgentRequest {
    on: bool,
}

/// `PUT /emulator/v1/engagements/{eid}/agent` `{on}`: the simulated agent of one chat.
async fn set_engagement_agent(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
    Path(eid): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: EngagementAgentRequest = body(raw)?;
    control(&inner)
        .set_engagement_agent(&EngagementId::new(eid), request.on)
        .map_err(control_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /emulator/v1/engagements/{eid}:end`, `…/{eid}:error` `{title?, detail?}` and
/// `…/{eid}:transfer` `{fromParticipantId, displayName?}`.
async fn engagement_verb(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
    Path(verb): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let control = control(&inner);
    let (id, verb) = verb.split_once(':').unwrap_or((&verb, ""));
    let id = EngagementId::new(id);
    match verb {
        "transfer" => {
            let request: TransferRequest = body(raw)?;
            let joined = control
                .hand_over(
                    &id,
                    &ParticipantId::new(request.from_participant_id),
                    request.display_name.as_deref().unwrap_or("Robin (agent)"),
                )
                .map_err(control_error)?;
            return Ok((StatusCode::CREATED, Json(joined)).into_response());
        }
        "end" => control.end_engagement(&id).map_err(control_error)?,
        "error" => {
            let bytes = raw.map_err(body_rejection)?;
            let request: ErrorRequest = if bytes.is_empty() {
                ErrorRequest::default()
            } else {
                parse_json(&bytes)?
            };
            control
                .raise_engagement_error(
                    &id,
                    request.title.as_deref().unwrap_or("Engagement error"),
                    request
                        .detail
                        .as_deref()
                        .unwrap_or("The contact center could not handle the engagement"),
                )
                .map_err(control_error)?;
        }
        _ => {
            return Err(ApiError::not_found(
                "Unknown operation: use :end, :error or :transfer",
            ));
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FaultRequest {
    route: Route,
    /// `status` (default), `hang`, `drop` or `lose-answer`.
    action: Option<String>,
    status: Option<u16>,
    count: Option<u32>,
    retry_after: Option<u64>,
    hold_ms: Option<u64>,
    session_id: Option<String>,
}

async fn add_fault(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: FaultRequest = body(raw)?;
    let action = match request.action.as_deref().unwrap_or("status") {
        "status" => {
            let status = request.status.unwrap_or(500);
            if !(100..=599).contains(&status) {
                return Err(ApiError::bad_request("status must be 100 to 599"));
            }
            FaultAction::Status {
                status,
                retry_after: request.retry_after,
            }
        }
        "hang" => FaultAction::Hang(Duration::from_millis(request.hold_ms.unwrap_or(45_000))),
        "drop" => FaultAction::Drop,
        "lose-answer" => FaultAction::LoseAnswer,
        _ => {
            return Err(ApiError::bad_request(
                "action must be status, hang, drop or lose-answer",
            ));
        }
    };
    let id = control(&inner).arm_fault(
        request.route,
        request.session_id,
        action,
        request.count.unwrap_or(1),
    );
    // 204 as before; the id is in `GET …/faults`.
    let _ = id;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_faults(State(inner): State<Arc<Inner>>, _auth: Authorized) -> Response {
    Json(control(&inner).faults()).into_response()
}

async fn remove_fault(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::not_found("No such fault"))?;
    if control(&inner).remove_fault(id) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found("No such fault (used up or cleared)"))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutageRequest {
    seconds: u64,
    status: Option<u16>,
}

/// `POST /emulator/v1/outage` `{seconds, status?}`: every API answers `status` (503) for a
/// while.
async fn start_outage(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: OutageRequest = body(raw)?;
    let status = request.status.unwrap_or(503);
    if !(400..=599).contains(&status) {
        return Err(ApiError::bad_request("status must be 400 to 599"));
    }
    if !(1..=3600).contains(&request.seconds) {
        return Err(ApiError::bad_request("seconds must be 1 to 3600"));
    }
    control(&inner).outage(Duration::from_secs(request.seconds), status);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn end_outage(State(inner): State<Arc<Inner>>, _auth: Authorized) -> Response {
    control(&inner).end_outage();
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
) -> Result<Response, ApiError> {
    control(&inner).clear_faults();
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DelayRequest {
    route: Route,
    delay_ms: u64,
}

async fn set_delay(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let control = control(&inner);
    let request: DelayRequest = body(raw)?;
    control.delay_responses(request.route, Some(Duration::from_millis(request.delay_ms)));
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /emulator/v1/sessions/{sid}:invalidate`.
async fn session_verb(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
    Path(verb): Path<String>,
) -> Result<Response, ApiError> {
    let control = control(&inner);
    match verb.split_once(':') {
        Some((sid, "invalidate")) => {
            if control.invalidate_session(&SessionId::new(sid)) {
                Ok(StatusCode::NO_CONTENT.into_response())
            } else {
                Err(ApiError::session_not_found())
            }
        }
        _ => Err(ApiError::not_found("Unknown operation: use :invalidate")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MintRequest {
    customer_id: String,
    #[serde(default)]
    verified_customer: bool,
    ttl_seconds: Option<u64>,
    integration_id: Option<String>,
}

async fn mint(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let control = control(&inner);
    let request: MintRequest = body(raw)?;
    let ttl = Duration::from_secs(request.ttl_seconds.unwrap_or(900).clamp(1, 86_400));
    let integration = request
        .integration_id
        .unwrap_or_else(|| inner.default_integration());
    let token = control.mint_token_for(
        &integration,
        &request.customer_id,
        request.verified_customer,
        ttl,
    );
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "jwtToken": token })),
    )
        .into_response())
}

async fn expire_tokens(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
) -> Result<Response, ApiError> {
    control(&inner).expire_tokens();
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn revoke_tokens(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
) -> Result<Response, ApiError> {
    control(&inner).revoke_chat_tokens();
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn revoke_access_tokens(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
) -> Result<Response, ApiError> {
    control(&inner).revoke_access_tokens();
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct AgentRequest {
    mode: AgentMode,
}

async fn set_agent(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let control = control(&inner);
    let request: AgentRequest = body(raw)?;
    control.set_agent_mode(request.mode);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn integrations(State(inner): State<Arc<Inner>>, _auth: Authorized) -> Response {
    Json(serde_json::json!({ "integrations": control(&inner).integrations() })).into_response()
}

#[derive(Deserialize)]
struct CreateIntegration {
    name: serde_json::Value,
    settings: Option<serde_json::Value>,
}

/// `POST /emulator/v1/integrations` `{name, settings?}`: the provisioning API's operation.
async fn create_integration(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: CreateIntegration = body(raw)?;
    let created = crate::provisioning::create_integration(&inner, &request.name, request.settings)?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn delete_integration(
    State(inner): State<Arc<Inner>>,
    _auth: Authorized,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if control(&inner).delete_integration(&id) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found("Integration not found"))
    }
}
