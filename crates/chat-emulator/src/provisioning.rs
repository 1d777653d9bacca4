//! Provisioning: create, list, get and delete chat integrations of the account.
//!
//! AXP provisions integrations in its admin portal; the emulator offers an HTTP API instead,
//! under `/api/digital/config/v1/accounts/{accountId}/integrations`, guarded like the token
//! API (the account's OAuth access token and the appkey).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::auth_api::require_access_token;
use crate::control::IntegrationInfo;
use crate::live::{Change, ChangeKind};
use crate::problem::{ApiError, body_rejection, parse_json, violation};
use crate::state::{Inner, Integration};
use crate::util::{iso_now, new_uuid};

/// An integration on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IntegrationView {
    integration_id: String,
    name: String,
    settings: serde_json::Value,
    created_at: String,
}

impl From<IntegrationInfo> for IntegrationView {
    fn from(i: IntegrationInfo) -> Self {
        Self {
            integration_id: i.integration_id,
            name: i.name,
            settings: i.settings,
            created_at: i.created_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateIntegration {
    name: serde_json::Value,
    #[serde(default)]
    settings: Option<serde_json::Value>,
}

/// `POST …/integrations` `{name, settings?}` → 201 integration.
pub(crate) async fn create(
    State(inner): State<Arc<Inner>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(body_rejection)?;
    require_access_token(&inner, &headers, &account)?;
    let request: CreateIntegration = parse_json(&body)?;
    let info = create_integration(&inner, &request.name, request.settings)?;
    Ok((StatusCode::CREATED, Json(IntegrationView::from(info))).into_response())
}

/// Provisions an integration: the one operation behind the provisioning API, the control
/// API and the console. The name must be a string of 1 to 128 characters, the settings an
/// object.
pub(crate) fn create_integration(
    inner: &Inner,
    name: &serde_json::Value,
    settings: Option<serde_json::Value>,
) -> Result<IntegrationInfo, ApiError> {
    let mut violations = Vec::new();
    let name = match name.as_str() {
        Some(n) if (1..=128).contains(&n.chars().count()) => n.to_owned(),
        _ => {
            violations.push(violation("name", "must be a string of 1 to 128 characters"));
            String::new()
        }
    };
    let settings = settings.unwrap_or_else(|| serde_json::Value::Object(Default::default()));
    if !settings.is_object() {
        violations.push(violation("settings", "must be an object"));
    }
    if !violations.is_empty() {
        return Err(ApiError::violations(violations));
    }
    let integration = Integration {
        id: new_uuid(),
        name,
        settings,
        created_at: iso_now(),
    };
    let info = info(inner, &integration);
    let mut world = inner.world();
    world
        .integrations
        .insert(integration.id.clone(), integration);
    world.feed.send(Change::new(ChangeKind::Integrations));
    Ok(info)
}

fn info(inner: &Inner, i: &Integration) -> IntegrationInfo {
    IntegrationInfo {
        integration_id: i.id.clone(),
        name: i.name.clone(),
        settings: i.settings.clone(),
        created_at: i.created_at.clone(),
        default: i.id == inner.secrets.integration_id,
    }
}

/// The integrations, by id.
pub(crate) fn list_integrations(inner: &Inner) -> Vec<IntegrationInfo> {
    let world = inner.world();
    world
        .integrations
        .values()
        .map(|i| info(inner, i))
        .collect()
}

/// `GET …/integrations` → 200 `{integrations: [...]}`.
pub(crate) async fn list(
    State(inner): State<Arc<Inner>>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_access_token(&inner, &headers, &account)?;
    let list: Vec<IntegrationView> = list_integrations(&inner)
        .into_iter()
        .map(IntegrationView::from)
        .collect();
    Ok(Json(serde_json::json!({ "integrations": list })).into_response())
}

/// `GET …/integrations/{id}` → 200 integration or 404.
pub(crate) async fn get(
    State(inner): State<Arc<Inner>>,
    Path((account, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_access_token(&inner, &headers, &account)?;
    let world = inner.world();
    let integration = world
        .integrations
        .get(&id)
        .ok_or_else(|| ApiError::not_found("Integration not found"))?;
    Ok(Json(IntegrationView::from(info(&inner, integration))).into_response())
}

/// `DELETE …/integrations/{id}` → 204; its sessions end and its engagements terminate.
pub(crate) async fn delete(
    State(inner): State<Arc<Inner>>,
    Path((account, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_access_token(&inner, &headers, &account)?;
    if delete_integration(&inner, &id) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found("Integration not found"))
    }
}

/// Deletes an integration: its sessions end and its engagements terminate. False if unknown.
pub(crate) fn delete_integration(inner: &Inner, id: &str) -> bool {
    let mut world = inner.world();
    if world.integrations.remove(id).is_none() {
        return false;
    }
    let sessions: Vec<_> = world
        .sessions
        .values()
        .filter(|s| s.customer.integration_id == id)
        .map(|s| s.id.clone())
        .collect();
    for session in sessions {
        world.remove_session(&session);
    }
    for engagement in world.engagements.values_mut() {
        if engagement.customer.integration_id == id {
            engagement.status = chat_core::wire::EngagementStatus::Terminated;
        }
    }
    world.feed.send(Change::new(ChangeKind::Integrations));
    world.feed.send(Change::new(ChangeKind::Engagement));
    true
}
