//! Fault injection: the next N requests of a route (optionally of one session) answer a
//! status, hang, or lose their connection; and standing delays per route.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::problem::ApiError;
use crate::state::{Counters, Inner};

/// Which requests a fault or delay applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum Route {
    /// The OAuth client-credentials endpoint (both paths).
    #[serde(alias = "OAUTH")]
    OAuth,
    /// The Generate JWT Token API.
    TokenApi,
    /// The events resource (long poll and WebSocket upgrade).
    Events,
    /// Sending a message (`POST …/engagements/{id}/messages`; history reads are not covered).
    Messages,
    /// Any request of the chat API, the events resource included.
    AnyChat,
    /// The provisioning (integrations) API.
    Provisioning,
}

impl Route {
    fn covers(self, actual: Route) -> bool {
        self == actual
            || (self == Route::AnyChat && matches!(actual, Route::Events | Route::Messages))
    }
}

/// What an injected fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultAction {
    /// Answer this status with a problem body (and `Retry-After` if given).
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Hold the request this long, then serve it normally.
    Hang(Duration),
    /// Start the answer, then close the connection without a body.
    Drop,
    /// Serve the request (its effects happen), then close the connection without the answer's
    /// body: the client cannot tell whether it was done.
    LoseAnswer,
}

#[derive(Debug, Clone)]
struct Rule {
    route: Route,
    session: Option<String>,
    action: FaultAction,
    remaining: u32,
}

/// The fault table.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    rules: Vec<Rule>,
    delays: HashMap<Route, Duration>,
}

impl Faults {
    pub(crate) fn add(
        &mut self,
        route: Route,
        session: Option<String>,
        action: FaultAction,
        count: u32,
    ) {
        if count > 0 {
            self.rules.push(Rule {
                route,
                session,
                action,
                remaining: count,
            });
        }
    }

    pub(crate) fn set_delay(&mut self, route: Route, delay: Option<Duration>) {
        match delay {
            Some(d) if !d.is_zero() => {
                self.delays.insert(route, d);
            }
            _ => {
                self.delays.remove(&route);
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
        self.delays.clear();
    }

    /// Takes one use of the first rule matching the request, if any.
    fn take(&mut self, route: Route, session: Option<&str>) -> Option<FaultAction> {
        let index = self.rules.iter().position(|r| {
            r.route.covers(route) && r.session.as_deref().is_none_or(|s| Some(s) == session)
        })?;
        let rule = &mut self.rules[index];
        rule.remaining -= 1;
        let action = rule.action;
        if rule.remaining == 0 {
            self.rules.remove(index);
        }
        Some(action)
    }

    fn delay(&self, route: Route) -> Option<Duration> {
        let direct = self.delays.get(&route).copied();
        let chat = if matches!(route, Route::Events | Route::Messages) {
            self.delays.get(&Route::AnyChat).copied()
        } else {
            None
        };
        direct.max(chat)
    }
}

/// Classifies a request path: its route and, for session paths, the session id.
pub(crate) fn classify(path: &str) -> Option<(Route, Option<&str>)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        [
            "api",
            "auth",
            "v1",
            _,
            "protocol",
            "openid-connect",
            "token",
        ]
        | ["auth", "realms", _, "protocol", "openid-connect", "token"] => {
            Some((Route::OAuth, None))
        }
        ["api", "digital", "chat", "v1", "accounts", _, "tokens"] => Some((Route::TokenApi, None)),
        ["api", "digital", "config", "v1", "accounts", ..] => Some((Route::Provisioning, None)),
        [
            "sdk",
            "digital",
            "chat",
            "v1",
            "integrations",
            _,
            "sessions",
            sid,
            "events",
        ] => Some((Route::Events, Some(*sid))),
        [
            "sdk",
            "digital",
            "chat",
            "v1",
            "integrations",
            _,
            "sessions",
            sid,
        ] => Some((Route::AnyChat, Some(*sid))),
        ["sdk", "digital", "chat", ..] => Some((Route::AnyChat, None)),
        _ => None,
    }
}

/// Middleware: counts calls, then applies delays and faults before the handler runs.
pub(crate) async fn layer(
    State(inner): State<Arc<Inner>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == Method::OPTIONS {
        return next.run(request).await;
    }
    let path = request.uri().path().to_owned();
    let Some((route, session)) = classify(&path) else {
        return next.run(request).await;
    };
    let route = if route == Route::AnyChat
        && request.method() == Method::POST
        && path.ends_with("/messages")
    {
        Route::Messages
    } else {
        route
    };
    match route {
        Route::OAuth => Counters::bump(&inner.counters.oauth_calls),
        Route::TokenApi => Counters::bump(&inner.counters.token_calls),
        Route::Events => {
            Counters::bump(&inner.counters.polls);
            Counters::bump(&inner.counters.chat_requests);
        }
        Route::AnyChat | Route::Messages => Counters::bump(&inner.counters.chat_requests),
        Route::Provisioning => {}
    }
    let (delay, action) = {
        let mut faults = inner.faults();
        (faults.delay(route), faults.take(route, session))
    };
    if let Some(delay) = delay {
        if !sleep_or_shutdown(&inner, delay).await {
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Emulator shutting down")
                .into_response();
        }
    }
    match action {
        None => next.run(request).await,
        Some(FaultAction::Status {
            status,
            retry_after,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            ApiError::new(status, "Injected fault")
                .with_retry_after(retry_after)
                .into_response()
        }
        Some(FaultAction::Hang(duration)) => {
            if sleep_or_shutdown(&inner, duration).await {
                next.run(request).await
            } else {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Emulator shutting down")
                    .into_response()
            }
        }
        Some(FaultAction::Drop) => dropped_connection(),
        Some(FaultAction::LoseAnswer) => {
            drop(next.run(request).await);
            dropped_connection()
        }
    }
}

/// False if the emulator began shutting down during the sleep.
async fn sleep_or_shutdown(inner: &Inner, duration: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => true,
        () = inner.shutting_down() => false,
    }
}

/// A response whose body fails at once: hyper then closes the connection mid-response.
fn dropped_connection() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other(
            "connection dropped by fault injection",
        ))
    });
    Response::new(Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_classified() {
        assert_eq!(
            classify("/api/auth/v1/ACME/protocol/openid-connect/token"),
            Some((Route::OAuth, None))
        );
        assert_eq!(
            classify("/auth/realms/ACME/protocol/openid-connect/token"),
            Some((Route::OAuth, None))
        );
        assert_eq!(
            classify("/api/digital/chat/v1/accounts/ACME/tokens"),
            Some((Route::TokenApi, None))
        );
        assert_eq!(
            classify("/sdk/digital/chat/v1/integrations/i/sessions/s/events"),
            Some((Route::Events, Some("s")))
        );
        assert_eq!(
            classify("/sdk/digital/chat/v1/integrations/i/engagements"),
            Some((Route::AnyChat, None))
        );
        assert_eq!(classify("/emulator/v1/stats"), None);
    }

    #[test]
    fn rules_are_used_up_and_scoped() {
        let mut faults = Faults::default();
        let action = FaultAction::Status {
            status: 500,
            retry_after: None,
        };
        faults.add(Route::AnyChat, Some("s1".into()), action, 2);
        assert_eq!(faults.take(Route::Events, Some("s2")), None);
        assert_eq!(faults.take(Route::Events, Some("s1")), Some(action));
        assert_eq!(faults.take(Route::AnyChat, Some("s1")), Some(action));
        assert_eq!(faults.take(Route::Events, Some("s1")), None);
        faults.add(Route::Events, None, FaultAction::Drop, 1);
        assert_eq!(faults.take(Route::OAuth, None), None);
        assert_eq!(
            faults.take(Route::Events, Some("x")),
            Some(FaultAction::Drop)
        );
    }
}
