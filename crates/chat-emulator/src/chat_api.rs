//! The customer chat API of reference section 6.3, under
//! `/sdk/digital/chat/v1/integrations/{integrationId}/…`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chat_core::wire::{
    CreateEngagementRequest, CreateSessionRequest, DisconnectEngagementRequest, EngagementStatus,
    JoinEngagementRequest, Links, MappedData, MessagePage, Pagination, Participant,
    ParticipantType, SendMessageRequest, ServerEventType,
};
use chat_core::{DialogId, EngagementId, ParticipantId, SessionId};
use serde::Deserialize;

use crate::agent;
use crate::jwt::Claims;
use crate::problem::{ApiError, body_rejection, parse_json, violation};
use crate::state::{CustomerKey, EngagementState, Inner, SessionState, World};
use crate::util::{iso_now, new_uuid, now_unix};

/// The verified caller of a chat API request.
pub(crate) struct Caller {
    pub(crate) claims: Claims,
    pub(crate) customer: CustomerKey,
}

/// Authorizes a chat request for `integration`.
///
/// Missing, malformed, tampered, expired or revoked JWT → 401; wrong appkey, another
/// account or another integration → 403; unknown integration → 404.
pub(crate) fn authorize(
    inner: &Inner,
    token: Option<&str>,
    appkey: Option<&str>,
    integration: &str,
) -> Result<Caller, ApiError> {
    let token = token.ok_or_else(|| ApiError::unauthorized("Missing bearer token"))?;
    let claims = inner
        .signer
        .verify(token.trim(), now_unix())
        .map_err(|e| ApiError::unauthorized(e.detail()))?;
    let mut world = inner.world();
    if claims.generation < world.min_token_generation {
        return Err(ApiError::unauthorized(world.revocation_detail));
    }
    if appkey != Some(inner.secrets.appkey.as_str()) {
        return Err(ApiError::forbidden("Invalid appkey"));
    }
    if claims.account_id != inner.secrets.account_id {
        return Err(ApiError::forbidden(
            "The token is not valid for this account",
        ));
    }
    if claims.integration_id != integration {
        return Err(ApiError::forbidden(
            "The token is not valid for this integration",
        ));
    }
    if !world.integrations.contains_key(integration) {
        return Err(ApiError::not_found("Integration not found"));
    }
    let customer = CustomerKey {
        integration_id: integration.to_owned(),
        customer_id: claims.customer_id.clone(),
        verified: claims.verified_customer,
    };
    // What the console shows as the session's token expiry: the customer's latest token.
    world.token_expiry.insert(customer.clone(), claims.exp);
    drop(world);
    Ok(Caller { claims, customer })
}

/// The bearer token and appkey of a request's headers.
pub(crate) fn credentials(headers: &HeaderMap) -> (Option<&str>, Option<&str>) {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::util::bearer);
    let appkey = headers.get("appkey").and_then(|v| v.to_str().ok());
    (token, appkey)
}

fn authorize_headers(
    inner: &Inner,
    headers: &HeaderMap,
    integration: &str,
) -> Result<Caller, ApiError> {
    let (token, appkey) = credentials(headers);
    authorize(inner, token, appkey, integration)
}

/// The caller's own session, or 404 "Session not found".
pub(crate) fn own_session<'w>(
    world: &'w World,
    caller: &Caller,
    session: &SessionId,
) -> Result<&'w SessionState, ApiError> {
    world
        .sessions
        .get(session)
        .filter(|s| s.customer == caller.customer)
        .ok_or_else(ApiError::session_not_found)
}

/// The caller's own engagement (same customer id and verified flag), or 404.
fn own_engagement<'w>(
    world: &'w mut World,
    caller: &Caller,
    engagement: &EngagementId,
) -> Result<&'w mut EngagementState, ApiError> {
    world
        .engagements
        .get_mut(engagement)
        .filter(|e| e.customer == caller.customer)
        .ok_or_else(|| ApiError::not_found("Engagement not found"))
}

/// The caller's ongoing engagement, reached from their own session through its dialog (join
/// and disconnect), or 404.
fn own_dialog<'w>(
    world: &'w mut World,
    caller: &Caller,
    engagement: &EngagementId,
    session: &SessionId,
    dialog: &DialogId,
) -> Result<&'w mut EngagementState, ApiError> {
    own_session(world, caller, session)?;
    let state = own_engagement(world, caller, engagement)?;
    if !state.ongoing() {
        return Err(ApiError::not_found("Engagement not found"));
    }
    if &state.dialog_id != dialog {
        return Err(ApiError::not_found("Dialog not found"));
    }
    Ok(state)
}

fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(body_rejection)?;
    parse_json(&bytes)
}

fn check_mapped_data(
    field: &str,
    data: Option<&MappedData>,
    violations: &mut Vec<chat_core::wire::Violation>,
) {
    let Some(data) = data else { return };
    if data.len() > 20 {
        violations.push(violation(field, "must have at most 20 entries"));
    }
    if data
        .iter()
        .any(|(k, v)| k.chars().count() > 64 || v.chars().count() > 256)
    {
        violations.push(violation(
            field,
            "keys must be at most 64 and values at most 256 characters",
        ));
    }
}

/// `POST …/sessions` → 201 Session.
pub(crate) async fn create_session(
    State(inner): State<Arc<Inner>>,
    Path(integration): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let caller = authorize_headers(&inner, &headers, &integration)?;
    let request: CreateSessionRequest = json_body(body)?;
    let mut violations = Vec::new();
    if request
        .display_name
        .as_ref()
        .is_some_and(|n| n.chars().count() > 70)
    {
        violations.push(violation("displayName", "length must be at most 70"));
    }
    check_mapped_data(
        "sessionParameters",
        request.session_parameters.as_ref(),
        &mut violations,
    );
    if !violations.is_empty() {
        return Err(ApiError::violations(violations));
    }
    // The name bound to the token wins over the one the client offers.
    let display_name = caller.claims.customer_name.clone().or(request.display_name);
    let mut world = inner.world();
    let state = SessionState {
        id: SessionId::new(new_uuid()),
        customer: caller.customer,
        display_name,
        session_parameters: Some(request.session_parameters.unwrap_or_default()),
        events: Default::default(),
        notify: Default::default(),
        feed: world.feed.clone(),
    };
    let wire = world.session_wire(&state);
    world.feed.send(crate::live::Change::session(&state.id));
    world.sessions.insert(state.id.clone(), state);
    Ok((StatusCode::CREATED, Json(wire)).into_response())
}

/// `GET …/sessions/{sid}` → 200 Session.
pub(crate) async fn get_session(
    State(inner): State<Arc<Inner>>,
    Path((integration, session)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authorize_headers(&inner, &headers, &integration)?;
    let world = inner.world();
    let state = own_session(&world, &caller, &SessionId::new(session))?;
    Ok(Json(world.session_wire(state)).into_response())
}

#[derive(Deserialize)]
pub(crate) struct DeleteQuery {
    reason: Option<String>,
}

/// `DELETE …/sessions/{sid}[?reason=]` → 204. Engagements go on.
pub(crate) async fn delete_session(
    State(inner): State<Arc<Inner>>,
    Path((integration, session)): Path<(String, String)>,
    query: Result<Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authorize_headers(&inner, &headers, &integration)?;
    let Query(query) = query.map_err(|_| ApiError::bad_request("Malformed query string"))?;
    if let Some(reason) = query.reason.as_deref() {
        if !matches!(reason, "USER_CLOSED" | "USER_INACTIVE") {
            return Err(ApiError::violations(vec![violation(
                "reason",
                "must be USER_CLOSED or USER_INACTIVE",
            )]));
        }
    }
    let mut world = inner.world();
    let session = SessionId::new(session);
    own_session(&world, &caller, &session)?;
    world.remove_session(&session);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST …/engagements` → 201 Engagement (dialog PENDING); queues ENGAGEMENT_CREATED and
/// PARTICIPANT_ADDED(CUSTOMER) to the creating session.
pub(crate) async fn create_engagement(
    State(inner): State<Arc<Inner>>,
    Path(integration): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let caller = authorize_headers(&inner, &headers, &integration)?;
    let request: CreateEngagementRequest = json_body(body)?;
    let mut violations = Vec::new();
    check_mapped_data(
        "engagementParameters",
        Some(&request.engagement_parameters),
        &mut violations,
    );
    if !violations.is_empty() {
        return Err(ApiError::violations(violations));
    }
    let (wire, id) = {
        let mut world = inner.world();
        let session = own_session(&world, &caller, &request.session_id)?;
        let customer_participant = Participant {
            participant_id: ParticipantId::new(new_uuid()),
            participant_type: ParticipantType::Customer,
            display_name: session.display_name.clone(),
        };
        let now = iso_now();
        let seq = world.new_engagement_seq();
        let state = EngagementState {
            id: EngagementId::new(new_uuid()),
            dialog_id: chat_core::DialogId::new(new_uuid()),
            customer: caller.customer.clone(),
            customer_participant: customer_participant.clone(),
            participants: vec![customer_participant.clone()],
            status: EngagementStatus::Pending,
            members: vec![request.session_id.clone()],
            messages: Vec::new(),
            created_at: now.clone(),
            last_updated_at: now,
            seq,
            parameters: request.engagement_parameters,
            auto_agent: None,
        };
        let wire = state.to_wire();
        let id = state.id.clone();
        let created = state.event(ServerEventType::EngagementCreated);
        let mut added = state.event(ServerEventType::ParticipantAdded);
        added.participant = Some(customer_participant);
        world.engagements.insert(id.clone(), state);
        world.push_event(&request.session_id, created);
        world.push_event(&request.session_id, added);
        (wire, id)
    };
    agent::on_engagement_created(&inner, &id);
    Ok((StatusCode::CREATED, Json(wire)).into_response())
}

/// Splits `{eid}:verb`.
fn split_verb(segment: &str) -> (&str, Option<&str>) {
    match segment.split_once(':') {
        Some((id, verb)) => (id, Some(verb)),
        None => (segment, None),
    }
}

/// `GET …/engagements/{eid}` → 200 Engagement (defined by the reference, never called by the
/// official SDK).
pub(crate) async fn get_engagement(
    State(inner): State<Arc<Inner>>,
    Path((integration, segment)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authorize_headers(&inner, &headers, &integration)?;
    let (id, verb) = split_verb(&segment);
    if verb.is_some() {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Use POST for engagement verbs",
        ));
    }
    let mut world = inner.world();
    let state = own_engagement(&mut world, &caller, &EngagementId::new(id))?;
    Ok(Json(state.to_wire()).into_response())
}

/// `POST …/engagements/{eid}:join` and `POST …/engagements/{eid}:disconnect`.
pub(crate) async fn engagement_verb(
    State(inner): State<Arc<Inner>>,
    Path((integration, segment)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let caller = authorize_headers(&inner, &headers, &integration)?;
    let (id, verb) = split_verb(&segment);
    let id = EngagementId::new(id);
    match verb {
        Some("join") => join(&inner, &caller, &id, json_body(body)?),
        Some("disconnect") => disconnect(&inner, &caller, &id, json_body(body)?),
        _ => Err(ApiError::not_found("Unknown engagement operation")),
    }
}

/// 200 Engagement; queues PARTICIPANT_ADDED(CUSTOMER) to the joining session.
fn join(
    inner: &Inner,
    caller: &Caller,
    id: &EngagementId,
    request: JoinEngagementRequest,
) -> Result<Response, ApiError> {
    let mut world = inner.world();
    let state = own_dialog(
        &mut world,
        caller,
        id,
        &request.session_id,
        &request.dialog_id,
    )?;
    if !state.members.contains(&request.session_id) {
        state.members.push(request.session_id.clone());
    }
    state.touch();
    let wire = state.to_wire();
    let mut added = state.event(ServerEventType::ParticipantAdded);
    added.participant = Some(state.customer_participant.clone());
    world.push_event(&request.session_id, added);
    Ok(Json(wire).into_response())
}

/// 204; queues PARTICIPANT_DISCONNECTED(CUSTOMER) to the customer's sessions in the engagement.
/// The customer leaving ends the engagement.
fn disconnect(
    inner: &Inner,
    caller: &Caller,
    id: &EngagementId,
    request: DisconnectEngagementRequest,
) -> Result<Response, ApiError> {
    let mut world = inner.world();
    let state = own_dialog(
        &mut world,
        caller,
        id,
        &request.session_id,
        &request.dialog_id,
    )?;
    state.status = EngagementStatus::Terminated;
    state.participants.clear();
    state.touch();
    let mut event = state.event(ServerEventType::ParticipantDisconnected);
    event.participant = Some(state.customer_participant.clone());
    world.broadcast(id, event);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST …/engagements/{eid}/messages` → 200 flat message; queues MESSAGE to the members.
pub(crate) async fn send_message(
    State(inner): State<Arc<Inner>>,
    Path((integration, engagement)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let caller = authorize_headers(&inner, &headers, &integration)?;
    let request: SendMessageRequest = json_body(body)?;
    let text_len = request
        .body
        .text()
        .map(|t| t.encode_utf16().count())
        .unwrap_or(0);
    if !(1..=4096).contains(&text_len) {
        return Err(ApiError::violations(vec![violation(
            "body.elementText.text",
            "length must be between 1 and 4096",
        )]));
    }
    let id = EngagementId::new(engagement);
    let message = {
        let mut world = inner.world();
        own_session(&world, &caller, &request.session_id)?;
        let state = own_engagement(&mut world, &caller, &id)?;
        if !state.ongoing() {
            return Err(ApiError::not_found("Engagement not found"));
        }
        if state.dialog_id != request.dialog_id {
            return Err(ApiError::not_found("Dialog not found"));
        }
        if !state.members.contains(&request.session_id) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "The session has not joined this engagement",
            ));
        }
        let sender = state.customer_participant.clone();
        world
            .add_message(&id, &sender, request.body, request.parent_message_id)
            .ok_or_else(|| ApiError::not_found("Engagement not found"))?
    };
    agent::on_customer_message(&inner, &id, &message);
    Ok(Json(message).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HistoryQuery {
    session_id: Option<String>,
    dialog_id: Option<String>,
    page_size: Option<String>,
    page_number: Option<String>,
    order_by: Option<String>,
}

/// `GET …/engagements/{eid}/messages?sessionId=&dialogId=&pageSize=&pageNumber=&orderBy=DSC`.
///
/// Pages of at most 50, newest first by default; `links.next` is the absolute URL of the next
/// (older) page with the same query, or `""`.
pub(crate) async fn list_messages(
    State(inner): State<Arc<Inner>>,
    Path((integration, engagement)): Path<(String, String)>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authorize_headers(&inner, &headers, &integration)?;
    let Query(query) = query.map_err(|_| ApiError::bad_request("Malformed query string"))?;
    let mut violations = Vec::new();
    let page_size = parse_number(
        query.page_size.as_deref(),
        50,
        1..=50,
        "pageSize",
        &mut violations,
    );
    let page_number = parse_number(
        query.page_number.as_deref(),
        1,
        1..=u32::MAX as u64,
        "pageNumber",
        &mut violations,
    );
    let order = query.order_by.clone().unwrap_or_else(|| "DSC".to_owned());
    let descending = match order.as_str() {
        "DSC" | "DESC" => true,
        "ASC" => false,
        _ => {
            violations.push(violation("orderBy", "must be DSC or ASC"));
            true
        }
    };
    let Some(session) = query.session_id.clone() else {
        violations.push(violation("sessionId", "is required"));
        return Err(ApiError::violations(violations));
    };
    if !violations.is_empty() {
        return Err(ApiError::violations(violations));
    }
    let id = EngagementId::new(engagement.clone());
    let mut world = inner.world();
    own_session(&world, &caller, &SessionId::new(session.clone()))?;
    let state = own_engagement(&mut world, &caller, &id)?;
    if query
        .dialog_id
        .as_deref()
        .is_some_and(|d| d != state.dialog_id.as_str())
    {
        return Err(ApiError::not_found("Dialog not found"));
    }
    let total = state.messages.len() as u64;
    let skip = (page_number - 1).saturating_mul(page_size);
    let messages: Vec<_> = if descending {
        state
            .messages
            .iter()
            .rev()
            .skip(skip as usize)
            .take(page_size as usize)
            .cloned()
            .collect()
    } else {
        state
            .messages
            .iter()
            .skip(skip as usize)
            .take(page_size as usize)
            .cloned()
            .collect()
    };
    let base = format!(
        "{}/sdk/digital/chat/v1/integrations/{}/engagements/{}/messages",
        public_base(&inner, &headers),
        integration,
        engagement
    );
    let link = |page: u64| {
        let mut url = format!(
            "{base}?sessionId={}",
            crate::util::encode_query_value(&session)
        );
        if let Some(dialog) = &query.dialog_id {
            url.push_str(&format!(
                "&dialogId={}",
                crate::util::encode_query_value(dialog)
            ));
        }
        url.push_str(&format!(
            "&pageSize={page_size}&pageNumber={page}&orderBy={}",
            crate::util::encode_query_value(&order)
        ));
        url
    };
    let page = MessagePage {
        messages,
        pagination: Pagination {
            page_number: Some(page_number),
            page_size: Some(page_size),
            total: Some(total),
        },
        links: Links {
            next: if page_number.saturating_mul(page_size) < total {
                link(page_number + 1)
            } else {
                String::new()
            },
            prev: (page_number > 1).then(|| link(page_number - 1)),
        },
    };
    Ok(Json(page).into_response())
}

fn parse_number(
    value: Option<&str>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    field: &str,
    violations: &mut Vec<chat_core::wire::Violation>,
) -> u64 {
    match value.map(str::parse::<u64>) {
        None => default,
        Some(Ok(n)) if range.contains(&n) => n,
        Some(_) => {
            violations.push(violation(
                field,
                format!(
                    "must be an integer between {} and {}",
                    range.start(),
                    range.end()
                ),
            ));
            default
        }
    }
}

/// The scheme and host the client used, for absolute links: the `Host` header when it looks
/// like a host name, else the emulator's own base URL.
fn public_base(inner: &Inner, headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
        });
    match host {
        Some(host) => format!("{}://{host}", inner.settings.scheme),
        None => inner.settings.base_url.clone(),
    }
}
