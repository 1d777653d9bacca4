//! The backend-facing APIs of reference section 8: OAuth client credentials (8.2) and the
//! Generate JWT Token API (8.3).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::jwt::Claims;
use crate::problem::{ApiError, body_rejection, violation};
use crate::state::{Counters, Inner};
use crate::util::{new_uuid, now_unix, random_token};

/// Answer of the OAuth token endpoint.
#[derive(Serialize, Deserialize)]
pub(crate) struct AccessTokenResponse {
    pub(crate) access_token: String,
    pub(crate) expires_in: u64,
    pub(crate) token_type: String,
}

/// Answer of the Generate JWT Token API.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JwtTokenResponse {
    pub(crate) jwt_token: String,
}

/// An OAuth error body (RFC 6749 section 5.2, as Keycloak sends it).
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `POST /api/auth/v1/{accountId}/protocol/openid-connect/token` and the legacy
/// `/auth/realms/{accountId}/protocol/openid-connect/token`.
pub(crate) async fn oauth_token(
    State(inner): State<Arc<Inner>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(rejection) => return body_rejection(rejection).into_response(),
    };
    if account != inner.secrets.account_id {
        return oauth_error(
            StatusCode::NOT_FOUND,
            "invalid_request",
            "Realm does not exist",
        );
    }
    if header_str(&headers, "appkey") != Some(inner.secrets.appkey.as_str()) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Invalid appkey");
    }
    let form: HashMap<String, String> = form_urlencoded(&body);
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Only client_credentials is supported",
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing form parameter: grant_type",
            );
        }
    }
    // Client credentials come in the form, or in HTTP Basic authentication.
    let (id, secret) = match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => (id.clone(), secret.clone()),
        _ => basic_credentials(&headers).unwrap_or_default(),
    };
    if id != inner.secrets.client_id || secret != inner.secrets.client_secret {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client or Invalid client credentials",
        );
    }
    let token = random_token(32);
    let ttl = inner.settings.access_token_ttl;
    inner
        .world()
        .access_tokens
        .insert(token.clone(), crate::util::deadline_after(ttl));
    let response = AccessTokenResponse {
        access_token: token,
        expires_in: ttl.as_secs(),
        token_type: "Bearer".to_owned(),
    };
    let mut response = Json(response).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn form_urlencoded(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = header_str(headers, "authorization")?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

/// Checks `Authorization: Bearer <access token>` of the account and the `appkey`.
///
/// Missing, unknown, expired or revoked token → 401; another account or wrong appkey → 403.
pub(crate) fn require_access_token(
    inner: &Inner,
    headers: &HeaderMap,
    account: &str,
) -> Result<(), ApiError> {
    let token = header_str(headers, "authorization")
        .and_then(crate::util::bearer)
        .ok_or_else(|| ApiError::unauthorized("Missing bearer access token"))?;
    {
        let mut world = inner.world();
        let now = tokio::time::Instant::now();
        world.access_tokens.retain(|_, expiry| *expiry > now);
        if !world.access_tokens.contains_key(token.trim()) {
            return Err(ApiError::unauthorized("Invalid or expired access token"));
        }
    }
    if header_str(headers, "appkey") != Some(inner.secrets.appkey.as_str()) {
        return Err(ApiError::forbidden("Invalid appkey"));
    }
    if account != inner.secrets.account_id {
        return Err(ApiError::forbidden(
            "The access token is not valid for this account",
        ));
    }
    Ok(())
}

/// `POST /api/digital/chat/v1/accounts/{accountId}/tokens`.
pub(crate) async fn generate_jwt(
    State(inner): State<Arc<Inner>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(body_rejection)?;
    require_access_token(&inner, &headers, &account)?;
    let value: Value = crate::problem::parse_json(&body)?;
    let request = validate_token_request(&value, inner.settings.allow_short_token_ttl)?;
    if !inner
        .world()
        .integrations
        .contains_key(&request.integration_id)
    {
        return Err(ApiError::not_found("Integration not found"));
    }
    let ttl = inner.settings.chat_token_ttl.unwrap_or(request.ttl);
    let token = mint(
        &inner,
        &request.integration_id,
        &request.customer_id,
        request.customer_name,
        request.verified,
        request.identifiers,
        ttl,
    );
    Ok((
        StatusCode::CREATED,
        Json(JwtTokenResponse { jwt_token: token }),
    )
        .into_response())
}

/// Mints a chat token with the current revocation generation.
pub(crate) fn mint(
    inner: &Inner,
    integration_id: &str,
    customer_id: &str,
    customer_name: Option<String>,
    verified: bool,
    identifiers: Option<BTreeMap<String, Vec<String>>>,
    ttl: Duration,
) -> String {
    let now = now_unix();
    let generation = inner.world().min_token_generation;
    let claims = Claims {
        iss: "https://chat-emulator.invalid".to_owned(),
        sub: "userchatIntegration".to_owned(),
        exp: now.saturating_add(ttl.as_secs().max(1)),
        iat: now,
        jti: new_uuid(),
        integration_id: integration_id.to_owned(),
        account_id: inner.secrets.account_id.clone(),
        customer_id: customer_id.to_owned(),
        customer_name,
        verified_customer: verified,
        customer_identifiers: if verified { identifiers } else { None },
        generation,
    };
    Counters::bump(&inner.counters.tokens_minted);
    inner.signer.mint(&claims)
}

/// Signs a token with any account id and any `exp` (Unix seconds), validly: what a
/// misconfigured backend of another account, or a token kept past its expiry, looks like.
/// For authorization tests only; the token API never mints these.
pub(crate) fn forge(
    inner: &Inner,
    account_id: &str,
    integration_id: &str,
    customer_id: &str,
    verified: bool,
    exp: u64,
) -> String {
    let claims = Claims {
        iss: "https://chat-emulator.invalid".to_owned(),
        sub: "userchatIntegration".to_owned(),
        exp,
        iat: exp.saturating_sub(60),
        jti: new_uuid(),
        integration_id: integration_id.to_owned(),
        account_id: account_id.to_owned(),
        customer_id: customer_id.to_owned(),
        customer_name: None,
        verified_customer: verified,
        customer_identifiers: None,
        generation: inner.world().min_token_generation,
    };
    inner.signer.mint(&claims)
}

struct TokenRequest {
    integration_id: String,
    customer_id: String,
    customer_name: Option<String>,
    verified: bool,
    identifiers: Option<BTreeMap<String, Vec<String>>>,
    ttl: Duration,
}

/// Applies every field rule of reference 8.3, collecting all violations.
fn validate_token_request(value: &Value, allow_short: bool) -> Result<TokenRequest, ApiError> {
    let Some(object) = value.as_object() else {
        return Err(ApiError::bad_request("The body must be a JSON object"));
    };
    let mut violations = Vec::new();
    let integration_id = match object.get("integrationId") {
        Some(Value::String(s)) if chat_core::is_uuid(s) => s.clone(),
        Some(Value::String(_)) => {
            violations.push(violation("integrationId", "must be a UUID"));
            String::new()
        }
        None | Some(Value::Null) => {
            violations.push(violation("integrationId", "is required"));
            String::new()
        }
        Some(_) => {
            violations.push(violation("integrationId", "must be a string"));
            String::new()
        }
    };
    let customer_id = match object.get("customerId") {
        Some(Value::String(s)) if (1..=256).contains(&s.chars().count()) => s.clone(),
        Some(Value::String(_)) => {
            violations.push(violation("customerId", "length must be between 1 and 256"));
            String::new()
        }
        None | Some(Value::Null) => {
            violations.push(violation("customerId", "is required"));
            String::new()
        }
        Some(_) => {
            violations.push(violation("customerId", "must be a string"));
            String::new()
        }
    };
    let verified = match object.get("verifiedCustomer") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            violations.push(violation("verifiedCustomer", "must be a boolean"));
            false
        }
    };
    let customer_name = match object.get("customerName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= 70 => Some(s.clone()),
        Some(Value::String(_)) => {
            violations.push(violation("customerName", "length must be at most 70"));
            None
        }
        Some(_) => {
            violations.push(violation("customerName", "must be a string"));
            None
        }
    };
    // Identifiers belong to verified customers only; for guests they are ignored entirely.
    let identifiers = if verified {
        validate_identifiers(object.get("customerIdentifiers"), &mut violations)
    } else {
        None
    };
    let ttl = validate_ttl(
        object.get("ttl"),
        object.get("ttlSeconds"),
        allow_short,
        &mut violations,
    );
    if !violations.is_empty() {
        return Err(ApiError::violations(violations));
    }
    Ok(TokenRequest {
        integration_id,
        customer_id,
        customer_name,
        verified,
        identifiers,
        ttl,
    })
}

fn validate_identifiers(
    value: Option<&Value>,
    violations: &mut Vec<chat_core::wire::Violation>,
) -> Option<BTreeMap<String, Vec<String>>> {
    const FIELD: &str = "customerIdentifiers";
    let object = match value {
        None | Some(Value::Null) => return None,
        Some(Value::Object(o)) => o,
        Some(_) => {
            violations.push(violation(FIELD, "must be an object"));
            return None;
        }
    };
    if !(1..=10).contains(&object.len()) {
        violations.push(violation(FIELD, "must have between 1 and 10 identifiers"));
    }
    let mut out = BTreeMap::new();
    for (key, values) in object {
        let field = format!("{FIELD}.{key}");
        if key.is_empty() || key.chars().count() > 50 {
            violations.push(violation(
                FIELD,
                "identifier names must be 1 to 50 characters",
            ));
            continue;
        }
        let Some(array) = values.as_array() else {
            violations.push(violation(&field, "must be an array of strings"));
            continue;
        };
        if array.len() > 5 {
            violations.push(violation(&field, "must have at most 5 values"));
        }
        let mut strings = Vec::new();
        for item in array {
            match item.as_str() {
                Some(s) if (1..=256).contains(&s.chars().count()) => strings.push(s.to_owned()),
                Some(_) => violations.push(violation(&field, "values must be 1 to 256 characters")),
                None => violations.push(violation(&field, "values must be strings")),
            }
        }
        out.insert(key.clone(), strings);
    }
    Some(out)
}

/// `ttl` in minutes, 15–60, default 15; a number or a numeric string (the reference backend
/// sends the string "30"). With short lifetimes allowed, any positive number of minutes up to
/// 60 (fractions too), or `ttlSeconds` (1–3600), is accepted.
fn validate_ttl(
    ttl: Option<&Value>,
    ttl_seconds: Option<&Value>,
    allow_short: bool,
    violations: &mut Vec<chat_core::wire::Violation>,
) -> Duration {
    let default = Duration::from_secs(15 * 60);
    if allow_short {
        if let Some(seconds) = ttl_seconds.filter(|v| !v.is_null()) {
            return match seconds.as_u64() {
                Some(s) if (1..=3600).contains(&s) => Duration::from_secs(s),
                _ => {
                    violations.push(violation(
                        "ttlSeconds",
                        "must be an integer between 1 and 3600",
                    ));
                    default
                }
            };
        }
    }
    let minutes = match ttl {
        None | Some(Value::Null) => return default,
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    let valid = match minutes {
        Some(m) if allow_short => m > 0.0 && m <= 60.0,
        Some(m) => m.fract() == 0.0 && (15.0..=60.0).contains(&m),
        None => false,
    };
    match minutes {
        Some(m) if valid => Duration::from_secs_f64(m * 60.0),
        _ => {
            violations.push(violation(
                "ttl",
                "must be an integer number of minutes between 15 and 60",
            ));
            default
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const INT: &str = "123e4567-e89b-12d3-a456-426614174000";

    fn fields(err: ApiError) -> Vec<String> {
        err.violations.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn valid_request_passes() {
        let r = validate_token_request(
            &json!({"integrationId": INT, "customerId": "c", "ttl": "30", "verifiedCustomer": true,
                    "customerIdentifiers": {"emailAddresses": ["a@b.c"]}}),
            false,
        )
        .ok()
        .unwrap();
        assert_eq!(r.ttl, Duration::from_secs(1800));
        assert!(r.identifiers.is_some());
    }

    #[test]
    fn every_rule_is_checked() {
        let long = "x".repeat(257);
        let err = validate_token_request(
            &json!({"integrationId": "nope", "customerId": long, "customerName": "n".repeat(71),
                    "verifiedCustomer": true, "customerIdentifiers": {}, "ttl": 14}),
            false,
        )
        .err()
        .unwrap();
        assert_eq!(
            fields(err),
            [
                "integrationId",
                "customerId",
                "customerName",
                "customerIdentifiers",
                "ttl"
            ]
        );
        let six: Vec<String> = (0..6).map(|i| i.to_string()).collect();
        let err = validate_token_request(
            &json!({"integrationId": INT, "customerId": "c", "verifiedCustomer": true,
                    "customerIdentifiers": {"phoneNumbers": six}, "ttl": 61}),
            false,
        )
        .err()
        .unwrap();
        assert_eq!(fields(err), ["customerIdentifiers.phoneNumbers", "ttl"]);
    }

    #[test]
    fn identifiers_are_ignored_for_guests() {
        let r = validate_token_request(
            &json!({"integrationId": INT, "customerId": "g", "customerIdentifiers": {"x": 1}}),
            false,
        )
        .ok()
        .unwrap();
        assert!(r.identifiers.is_none());
    }

    #[test]
    fn short_ttls_need_the_option() {
        let body = json!({"integrationId": INT, "customerId": "c", "ttlSeconds": 3});
        assert_eq!(
            validate_token_request(&body, true).ok().unwrap().ttl,
            Duration::from_secs(3)
        );
        // Without the option ttlSeconds is ignored and the default applies.
        assert_eq!(
            validate_token_request(&body, false).ok().unwrap().ttl,
            Duration::from_secs(900)
        );
        let body = json!({"integrationId": INT, "customerId": "c", "ttl": 0.5});
        assert_eq!(
            validate_token_request(&body, true).ok().unwrap().ttl,
            Duration::from_secs(30)
        );
        assert!(validate_token_request(&body, false).is_err());
    }
}
