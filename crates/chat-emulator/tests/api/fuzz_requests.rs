//! Fuzzing twin for the emulator: request bodies (and queries) at every endpoint — chat API,
//! OAuth, Generate JWT Token API, provisioning and control API — sent to the router in
//! process with `tower::ServiceExt::oneshot`, no socket involved. The driver [`run`] is
//! shared with the cargo-fuzz target `emulator` (fuzz/fuzz_targets/emulator.rs includes this
//! file); the proptest below feeds it bounded input in CI. `random_bodies.rs` sends random
//! bodies over real HTTP; this one reaches every route, with sequences of up to four
//! requests against a fresh emulator per input (so that a finding replays exactly).
//!
//! Every answer: no 5xx (the emulator answers one only when a fault is injected, and the
//! driver clears faults after each request); every 4xx is a problem JSON
//! (`application/problem+json` whose `status` is the response's), or, on the OAuth
//! endpoint, the OAuth error JSON `{"error", "error_description"}` that RFC 6749 specifies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    dead_code,
    unreachable_pub,
    missing_docs
)]

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chat_emulator::{AgentMode, Emulator};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// How the request authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Chat token and appkey.
    Chat,
    /// OAuth client credentials (the token endpoint).
    Client,
    /// OAuth access token.
    Access,
    /// The control key.
    Control,
}

/// Every route, with `{sid}`, `{eid}`, `{account}`, `{integration}` and `{pid}` filled in.
pub const ENDPOINTS: [(&str, &str, Auth); 35] = [
    (
        "POST",
        "/sdk/digital/chat/v1/integrations/{integration}/sessions",
        Auth::Chat,
    ),
    (
        "GET",
        "/sdk/digital/chat/v1/integrations/{integration}/sessions/{sid}",
        Auth::Chat,
    ),
    (
        "DELETE",
        "/sdk/digital/chat/v1/integrations/{integration}/sessions/{sid}",
        Auth::Chat,
    ),
    (
        "GET",
        "/sdk/digital/chat/v1/integrations/{integration}/sessions/{sid}/events",
        Auth::Chat,
    ),
    (
        "POST",
        "/sdk/digital/chat/v1/integrations/{integration}/engagements",
        Auth::Chat,
    ),
    (
        "GET",
        "/sdk/digital/chat/v1/integrations/{integration}/engagements/{eid}",
        Auth::Chat,
    ),
    (
        "POST",
        "/sdk/digital/chat/v1/integrations/{integration}/engagements/{eid}:join",
        Auth::Chat,
    ),
    (
        "POST",
        "/sdk/digital/chat/v1/integrations/{integration}/engagements/{eid}:disconnect",
        Auth::Chat,
    ),
    (
        "GET",
        "/sdk/digital/chat/v1/integrations/{integration}/engagements/{eid}/messages?sessionId={sid}",
        Auth::Chat,
    ),
    (
        "POST",
        "/sdk/digital/chat/v1/integrations/{integration}/engagements/{eid}/messages",
        Auth::Chat,
    ),
    (
        "POST",
        "/api/auth/v1/{account}/protocol/openid-connect/token",
        Auth::Client,
    ),
    (
        "POST",
        "/auth/realms/{account}/protocol/openid-connect/token",
        Auth::Client,
    ),
    (
        "POST",
        "/api/digital/chat/v1/accounts/{account}/tokens",
        Auth::Access,
    ),
    (
        "POST",
        "/api/digital/config/v1/accounts/{account}/integrations",
        Auth::Access,
    ),
    (
        "GET",
        "/api/digital/config/v1/accounts/{account}/integrations",
        Auth::Access,
    ),
    (
        "GET",
        "/api/digital/config/v1/accounts/{account}/integrations/{integration}",
        Auth::Access,
    ),
    (
        "DELETE",
        "/api/digital/config/v1/accounts/{account}/integrations/{integration}",
        Auth::Access,
    ),
    ("GET", "/emulator/v1/stats", Auth::Control),
    ("GET", "/emulator/v1/engagements", Auth::Control),
    ("POST", "/emulator/v1/engagements:broadcast", Auth::Control),
    ("POST", "/emulator/v1/engagements/{eid}:end", Auth::Control),
    (
        "POST",
        "/emulator/v1/engagements/{eid}:error",
        Auth::Control,
    ),
    (
        "POST",
        "/emulator/v1/engagements/{eid}/messages",
        Auth::Control,
    ),
    (
        "POST",
        "/emulator/v1/engagements/{eid}/participants",
        Auth::Control,
    ),
    (
        "DELETE",
        "/emulator/v1/engagements/{eid}/participants/{pid}",
        Auth::Control,
    ),
    ("POST", "/emulator/v1/faults", Auth::Control),
    ("DELETE", "/emulator/v1/faults", Auth::Control),
    ("POST", "/emulator/v1/delays", Auth::Control),
    (
        "POST",
        "/emulator/v1/sessions/{sid}:invalidate",
        Auth::Control,
    ),
    ("POST", "/emulator/v1/chat-tokens", Auth::Control),
    ("POST", "/emulator/v1/chat-tokens:expire", Auth::Control),
    ("POST", "/emulator/v1/chat-tokens:revoke", Auth::Control),
    ("POST", "/emulator/v1/access-tokens:revoke", Auth::Control),
    ("PUT", "/emulator/v1/agent", Auth::Control),
    ("GET", "/no/such/route", Auth::Chat),
];

/// Words the JSON generator draws keys and strings from, so that bodies reach validation.
const WORDS: [&str; 40] = [
    "sessionId",
    "dialogId",
    "body",
    "elementType",
    "elementText",
    "text",
    "textFormat",
    "customerId",
    "customerIdentifiers",
    "integrationId",
    "ttl",
    "engagementParameters",
    "sessionParameters",
    "clientType",
    "displayName",
    "participantType",
    "name",
    "settings",
    "reason",
    "route",
    "status",
    "count",
    "action",
    "delayMs",
    "verified",
    "mode",
    "sender",
    "parentMessageId",
    "TEXT",
    "PLAINTEXT",
    "web",
    "AGENT",
    "CUSTOMER",
    "BOT",
    "USER_CLOSED",
    "EVENTS",
    "ANY_CHAT",
    "client_credentials",
    "{sid}",
    "{eid}",
];

/// One request of an input.
#[derive(Debug)]
pub struct Call {
    pub endpoint: usize,
    /// Bit 0: leave the credentials out; bit 1: spoil them; bits 2-3: the content type.
    pub flags: u8,
    /// Query string (for every method).
    pub query: String,
    pub body: Vec<u8>,
}

impl<'a> Arbitrary<'a> for Call {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let endpoint = u.choose_index(ENDPOINTS.len())?;
        let flags = u8::arbitrary(u)?;
        let query = if u.ratio(1, 4)? {
            let n = u.int_in_range(0..=40usize)?.min(u.len());
            String::from_utf8_lossy(u.bytes(n)?).into_owned()
        } else {
            String::new()
        };
        let body = if u.ratio(3, 4)? {
            json_value(u, 0)?.to_string().into_bytes()
        } else {
            let n = u.int_in_range(0..=512usize)?.min(u.len());
            u.bytes(n)?.to_vec()
        };
        Ok(Self {
            endpoint,
            flags,
            query,
            body,
        })
    }
}

/// A JSON value built from fuzz input, with keys and strings mostly from [`WORDS`].
pub fn json_value(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Value> {
    let word = |u: &mut Unstructured<'_>| -> arbitrary::Result<String> {
        if u.ratio(4, 5)? {
            Ok((*u.choose(&WORDS)?).to_owned())
        } else {
            let n = u.int_in_range(0..=16usize)?.min(u.len());
            Ok(String::from_utf8_lossy(u.bytes(n)?).into_owned())
        }
    };
    let kind = if depth >= 3 {
        u.int_in_range(0..=4u8)?
    } else {
        u.int_in_range(0..=6u8)?
    };
    Ok(match kind {
        0 => Value::Null,
        1 => Value::Bool(bool::arbitrary(u)?),
        2 => json!(i64::arbitrary(u)?),
        3 => json!(u16::arbitrary(u)?),
        4 => Value::String(word(u)?),
        5 => {
            let n = u.int_in_range(0..=4usize)?;
            Value::Array(
                (0..n)
                    .map(|_| json_value(u, depth + 1))
                    .collect::<Result<_, _>>()?,
            )
        }
        _ => {
            let n = u.int_in_range(0..=6usize)?;
            let mut map = serde_json::Map::new();
            for _ in 0..n {
                map.insert(word(u)?, json_value(u, depth + 1)?);
            }
            Value::Object(map)
        }
    })
}

/// Decodes up to four calls from the input.
pub fn calls(data: &[u8]) -> Vec<Call> {
    let mut u = Unstructured::new(data);
    let mut calls = Vec::new();
    while !u.is_empty() && calls.len() < 4 {
        match Call::arbitrary(&mut u) {
            Ok(call) => calls.push(call),
            Err(_) => break,
        }
    }
    calls
}

/// A fresh emulator with a session, an engagement and the tokens to reach it.
struct Fixture {
    emu: Emulator,
    chat_token: String,
    access_token: String,
    sid: String,
    eid: String,
}

/// The runtime every input runs on (one per process: building one per input costs more
/// than the input).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

async fn send(
    router: &axum::Router,
    request: Request<Body>,
) -> (StatusCode, Option<String>, Vec<u8>) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    (status, content_type, body)
}

impl Fixture {
    async fn new() -> Self {
        let emu = Emulator::builder()
            .hold_time(Duration::from_millis(1))
            .agent(AgentMode::Off)
            .agent_delay(Duration::ZERO)
            .start()
            .await
            .expect("emulator");
        let chat_token = emu
            .control()
            .mint_token("fuzz-customer", true, Duration::from_secs(3600));
        let router = emu.router();
        let c = emu.credentials().clone();
        let chat = format!("/sdk/digital/chat/v1/integrations/{}", c.integration_id);
        let json_post = |uri: String, body: Value| {
            Request::post(uri)
                .header(header::AUTHORIZATION, format!("Bearer {chat_token}"))
                .header("appkey", &c.appkey)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .expect("request")
        };
        let (_, _, body) = send(
            &router,
            json_post(format!("{chat}/sessions"), json!({"clientType": "web"})),
        )
        .await;
        let sid = serde_json::from_slice::<Value>(&body).expect("session")["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_owned();
        let (_, _, body) = send(
            &router,
            json_post(
                format!("{chat}/engagements"),
                json!({"sessionId": sid, "engagementParameters": {}}),
            ),
        )
        .await;
        let eid = serde_json::from_slice::<Value>(&body).expect("engagement")["engagementId"]
            .as_str()
            .expect("engagementId")
            .to_owned();
        let form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            c.client_id, c.client_secret
        );
        let oauth = Request::post(format!(
            "/api/auth/v1/{}/protocol/openid-connect/token",
            c.account_id
        ))
        .header("appkey", &c.appkey)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .expect("request");
        let (_, _, body) = send(&router, oauth).await;
        let access_token = serde_json::from_slice::<Value>(&body).expect("oauth")["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        Self {
            emu,
            chat_token,
            access_token,
            sid,
            eid,
        }
    }

    fn fill(&self, text: &str) -> String {
        let c = self.emu.credentials();
        text.replace("{integration}", &c.integration_id)
            .replace("{account}", &c.account_id)
            .replace("{sid}", &self.sid)
            .replace("{eid}", &self.eid)
            .replace("{pid}", "fuzz-customer")
    }

    fn request(&self, call: &Call) -> Request<Body> {
        let (method, path, auth) = ENDPOINTS[call.endpoint % ENDPOINTS.len()];
        let c = self.emu.credentials();
        let spoil = |s: &str| {
            if call.flags & 2 != 0 {
                format!("{s}x")
            } else {
                s.to_owned()
            }
        };
        let query: String = call
            .query
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'=' | b'&' | b'-' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let uri = if query.is_empty() {
            self.fill(path)
        } else {
            format!(
                "{}{}{query}",
                self.fill(path),
                if path.contains('?') { '&' } else { '?' }
            )
        };
        let mut r = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).expect("method"))
            .uri(uri);
        if call.flags & 1 == 0 {
            r = match auth {
                Auth::Chat => r
                    .header(
                        header::AUTHORIZATION,
                        format!("Bearer {}", spoil(&self.chat_token)),
                    )
                    .header("appkey", spoil(&c.appkey)),
                Auth::Client => r.header("appkey", spoil(&c.appkey)),
                Auth::Access => r
                    .header(
                        header::AUTHORIZATION,
                        format!("Bearer {}", spoil(&self.access_token)),
                    )
                    .header("appkey", spoil(&c.appkey)),
                Auth::Control => r.header("x-emulator-control-key", spoil(self.emu.control_key())),
            };
        }
        let content_type = match (call.flags >> 2) & 3 {
            0 => Some("application/json"),
            1 => Some("application/x-www-form-urlencoded"),
            2 => Some("text/plain"),
            _ => None,
        };
        if let Some(ct) = content_type {
            r = r.header(header::CONTENT_TYPE, ct);
        }
        let mut body = call.body.clone();
        if auth == Auth::Client && call.flags & 16 != 0 {
            // A form that mostly holds the right credentials, so that the rest is reached.
            let tail = String::from_utf8_lossy(&body).into_owned();
            body = format!(
                "grant_type=client_credentials&client_id={}&client_secret={}&{tail}",
                c.client_id,
                spoil(&c.client_secret)
            )
            .into_bytes();
        } else {
            body = self.fill(&String::from_utf8_lossy(&body)).into_bytes();
        }
        r.body(Body::from(body)).expect("request")
    }
}

/// Sends the calls `data` decodes to a fresh emulator and checks every answer.
pub fn run(data: &[u8]) {
    let calls = calls(data);
    if calls.is_empty() {
        return;
    }
    runtime().block_on(async {
        let fixture = Fixture::new().await;
        let router = fixture.emu.router();
        for call in &calls {
            let (_, path, auth) = ENDPOINTS[call.endpoint % ENDPOINTS.len()];
            let request = fixture.request(call);
            let what = format!("{} {}", request.method(), request.uri());
            let (status, content_type, body) =
                tokio::time::timeout(Duration::from_secs(10), send(&router, request))
                    .await
                    .unwrap_or_else(|_| panic!("{what}: no answer in 10 s"));
            // A fault or delay asked for applies to later requests: none here.
            fixture.emu.control().clear_faults();
            check(&what, path, auth, status, content_type.as_deref(), &body);
        }
        fixture.emu.shutdown().await;
    });
}

fn check(
    what: &str,
    path: &str,
    auth: Auth,
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
) {
    let text = String::from_utf8_lossy(body);
    assert!(!status.is_server_error(), "{what}: {status} {text}");
    assert!(
        status.is_success()
            || status.is_client_error()
            || status == StatusCode::SWITCHING_PROTOCOLS,
        "{what}: {status}"
    );
    if !status.is_client_error() {
        return;
    }
    if auth == Auth::Client && path.contains("openid-connect") {
        let v: Value = serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("{what}: {status} {text:?}: {e}"));
        assert!(
            v["error"].is_string(),
            "{what}: {status} OAuth error without `error`: {text}"
        );
        return;
    }
    assert_eq!(
        content_type,
        Some("application/problem+json"),
        "{what}: {status} answered {text:?}"
    );
    let problem: chat_core::wire::Problem =
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("{what}: {status} {text:?}: {e}"));
    assert_eq!(problem.status, Some(status.as_u16()), "{what}: {text}");
    assert!(
        problem.detail.is_some_and(|d| !d.is_empty()),
        "{what}: {text}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 800, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn any_requests_get_a_2xx_or_a_problem(data in prop::collection::vec(any::<u8>(), 0..1500)) {
            run(&data);
        }
    }

    /// The fixture is sound: with good credentials, every GET succeeds and every other
    /// route answers `{}` with a 2xx or a problem.
    #[test]
    fn every_endpoint_answers_an_empty_json_object() {
        for (endpoint, (method, path, auth)) in ENDPOINTS.iter().enumerate() {
            let call = Call {
                endpoint,
                flags: 0,
                query: String::new(),
                body: b"{}".to_vec(),
            };
            runtime().block_on(async {
                let fixture = Fixture::new().await;
                let request = fixture.request(&call);
                let (status, content_type, body) = send(&fixture.emu.router(), request).await;
                check(path, path, *auth, status, content_type.as_deref(), &body);
                if *method == "GET" && !path.contains("no/such") {
                    assert!(status.is_success(), "{path}: {status}");
                }
                fixture.emu.shutdown().await;
            });
        }
    }
}
