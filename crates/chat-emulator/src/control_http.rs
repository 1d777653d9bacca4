//! The control and fault API over HTTP, under `/emulator/v1/…`, for out-of-process tests.
//!
//! Guarded by the `x-emulator-control-key` header, or by a valid OAuth access token of the
//! account (`Authorization: Bearer …`).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use chat_core::ids::{EngagementId, ParticipantId, SessionId};
use chat_core::wire::ParticipantType;
use serde::Deserialize;

use crate::agent::AgentMode;
use crate::control::{Control, ControlError};
use crate::faults::{FaultAction, Route};
use crate::problem::{ApiError, body_rejection, parse_json};
use crate::state::Inner;

/// The control routes.
pub(crate) fn routes() -> Router<Arc<Inner>> {
    Router::new()
        .route("/emulator/v1/stats", get(stats))
        .route("/emulator/v1/engagements", get(engagements))
        .route("/emulator/v1/engagements:broadcast", post(broadcast))
        .route("/emulator/v1/engagements/{verb}", post(engagement_verb))
        .route(
            "/emulator/v1/engagements/{eid}/messages",
            post(post_message),
        )
        .route(
            "/emulator/v1/engagements/{eid}/participants",
            post(add_participant),
        )
        .route(
            "/emulator/v1/engagements/{eid}/participants/{pid}",
            delete(remove_participant),
        )
        .route("/emulator/v1/faults", post(add_fault).delete(clear_faults))
        .route("/emulator/v1/delays", post(set_delay))
        .route("/emulator/v1/sessions/{verb}", post(session_verb))
        .route("/emulator/v1/chat-tokens", post(mint))
        .route("/emulator/v1/chat-tokens:expire", post(expire_tokens))
        .route("/emulator/v1/chat-tokens:revoke", post(revoke_tokens))
        .route(
            "/emulator/v1/access-tokens:revoke",
            post(revoke_access_tokens),
        )
        .route("/emulator/v1/agent", put(set_agent))
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
        ControlError::EngagementNotFound | ControlError::ParticipantNotFound => {
            ApiError::not_found(e.to_string())
        }
        ControlError::EngagementEnded => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        _ => ApiError::bad_request(e.to_string()),
    }
}

async fn stats(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let control = authorize(&inner, &headers)?;
    Ok(Json(control.stats()).into_response())
}

async fn engagements(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let control = authorize(&inner, &headers)?;
    Ok(Json(serde_json::json!({ "engagements": control.engagements() })).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostMessage {
    participant_type: ParticipantType,
    text: String,
}

async fn post_message(
    State(inner): State<Arc<Inner>>,
    Path(eid): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let control = authorize(&inner, &headers)?;
    let request: PostMessage = body(raw)?;
    let message = control
        .post_message(
            &EngagementId::new(eid),
            request.participant_type,
            &request.text,
        )
        .map_err(control_error)?;
    Ok((StatusCode::CREATED, Json(message)).into_response())
}

async fn broadcast(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let control = authorize(&inner, &headers)?;
    let request: PostMessage = body(raw)?;
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
    Path(eid): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let control = authorize(&inner, &headers)?;
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
    Path((eid, pid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let control = authorize(&inner, &headers)?;
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

/// `POST /emulator/v1/engagements/{eid}:end` and `…/{eid}:error` `{title?, detail?}`.
async fn engagement_verb(
    State(inner): State<Arc<Inner>>,
    Path(verb): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let control = authorize(&inner, &headers)?;
    let (id, verb) = verb.split_once(':').unwrap_or((&verb, ""));
    let id = EngagementId::new(id);
    match verb {
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
        _ => return Err(ApiError::not_found("Unknown operation: use :end or :error")),
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
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    authorize(&inner, &headers)?;
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
    inner.faults().add(
        request.route,
        request.session_id,
        action,
        request.count.unwrap_or(1),
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn clear_faults(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&inner, &headers)?.clear_faults();
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
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let control = authorize(&inner, &headers)?;
    let request: DelayRequest = body(raw)?;
    control.delay_responses(request.route, Some(Duration::from_millis(request.delay_ms)));
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /emulator/v1/sessions/{sid}:invalidate`.
async fn session_verb(
    State(inner): State<Arc<Inner>>,
    Path(verb): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let control = authorize(&inner, &headers)?;
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
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let control = authorize(&inner, &headers)?;
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
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&inner, &headers)?.expire_tokens();
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn revoke_tokens(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&inner, &headers)?.revoke_chat_tokens();
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn revoke_access_tokens(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&inner, &headers)?.revoke_access_tokens();
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct AgentRequest {
    mode: AgentMode,
}

async fn set_agent(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let control = authorize(&inner, &headers)?;
    let request: AgentRequest = body(raw)?;
    control.set_agent_mode(request.mode);
    Ok(StatusCode::NO_CONTENT.into_response())
}
