//! The router: every API, the fault middleware, CORS and the body limit.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::problem::ApiError;
use crate::state::Inner;
use crate::{auth_api, chat_api, control_http, events, provisioning};

/// Largest request body accepted (413 beyond).
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

const CHAT: &str = "/sdk/digital/chat/v1/integrations/{integration}";

pub(crate) fn router(inner: Arc<Inner>) -> Router {
    let chat = Router::new()
        .route(&format!("{CHAT}/sessions"), post(chat_api::create_session))
        .route(
            &format!("{CHAT}/sessions/{{session}}"),
            get(chat_api::get_session).delete(chat_api::delete_session),
        )
        .route(
            &format!("{CHAT}/sessions/{{session}}/events"),
            get(events::events),
        )
        .route(
            &format!("{CHAT}/engagements"),
            post(chat_api::create_engagement),
        )
        .route(
            &format!("{CHAT}/engagements/{{engagement}}"),
            get(chat_api::get_engagement).post(chat_api::engagement_verb),
        )
        .route(
            &format!("{CHAT}/engagements/{{engagement}}/messages"),
            get(chat_api::list_messages).post(chat_api::send_message),
        );
    let backend = Router::new()
        .route(
            "/api/auth/v1/{account}/protocol/openid-connect/token",
            post(auth_api::oauth_token),
        )
        .route(
            "/auth/realms/{account}/protocol/openid-connect/token",
            post(auth_api::oauth_token),
        )
        .route(
            "/api/digital/chat/v1/accounts/{account}/tokens",
            post(auth_api::generate_jwt),
        )
        .route(
            "/api/digital/config/v1/accounts/{account}/integrations",
            post(provisioning::create).get(provisioning::list),
        )
        .route(
            "/api/digital/config/v1/accounts/{account}/integrations/{id}",
            get(provisioning::get).delete(provisioning::delete),
        );
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            HeaderName::from_static("authorization"),
            HeaderName::from_static("appkey"),
            HeaderName::from_static("content-type"),
            HeaderName::from_static("x-route-request"),
            HeaderName::from_static("x-emulator-control-key"),
        ])
        .expose_headers([HeaderName::from_static("retry-after")])
        .allow_credentials(true)
        .max_age(Duration::from_secs(600));
    chat.merge(backend)
        .merge(control_http::routes())
        .fallback(|| async { ApiError::not_found("No such resource").into_response() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed").into_response()
        })
        .layer(axum::middleware::from_fn_with_state(
            inner.clone(),
            crate::faults::layer,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(cors)
        .with_state(inner)
}
