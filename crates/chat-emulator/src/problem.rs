//! RFC 7807 problem responses (`application/problem+json`), built from chat-core's `Problem`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chat_core::wire::{Problem, Violation};

/// An error answer of any endpoint. Its texts never contain secrets.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) detail: String,
    pub(crate) violations: Vec<Violation>,
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            violations: Vec::new(),
            retry_after: None,
        }
    }

    pub(crate) fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub(crate) fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    pub(crate) fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub(crate) fn session_not_found() -> Self {
        Self::not_found(chat_core::wire::SESSION_NOT_FOUND)
    }

    /// 400 listing field violations.
    pub(crate) fn violations(violations: Vec<Violation>) -> Self {
        Self {
            violations,
            ..Self::bad_request("Constraint violation")
        }
    }

    /// 400 for a body that is not the expected JSON.
    pub(crate) fn malformed_json(err: &serde_json::Error) -> Self {
        // serde_json's messages name the position and the expected type; they quote at most
        // a short fragment of the input, and no endpoint receives secrets in its JSON body.
        Self::bad_request(format!("Malformed JSON body: {err}"))
    }

    pub(crate) fn with_retry_after(mut self, secs: Option<u64>) -> Self {
        self.retry_after = secs;
        self
    }
}

/// One violation.
pub(crate) fn violation(field: &str, message: impl Into<String>) -> Violation {
    Violation {
        field: field.to_owned(),
        message: message.into(),
        code: Some("ConstraintViolation".to_owned()),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            problem_type: Some("about:blank".to_owned()),
            title: Some(self.status.canonical_reason().unwrap_or("Error").to_owned()),
            status: Some(self.status.as_u16()),
            detail: Some(self.detail),
            violations: self.violations,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

/// Turns a body-buffering rejection (over the size limit, or a broken stream) into a problem.
pub(crate) fn body_rejection(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
    let status = rejection.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, "Request body larger than 64 KiB")
    } else {
        ApiError::new(status, "Could not read the request body")
    }
}

/// Parses a JSON body into `T`, or answers 400.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::malformed_json(&e))
}
