//! Fault injection: the next N requests of a route (optionally of one session) answer a
//! status, hang, or lose their connection; and standing delays per route.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

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
    id: u64,
    route: Route,
    session: Option<String>,
    action: FaultAction,
    remaining: u32,
}

/// Firings kept for [`FaultsView::fired`].
const FIRED_KEPT: usize = 50;

/// An outage: every request of every route answers `status` until `until`.
#[derive(Debug, Clone, Copy)]
struct Outage {
    id: u64,
    status: u16,
    until: Instant,
    ends_at_unix_ms: u64,
}

/// The fault table.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    rules: Vec<Rule>,
    delays: HashMap<Route, Duration>,
    outage: Option<Outage>,
    fired: VecDeque<FiredFault>,
    next_id: u64,
}

impl Faults {
    /// Arms a rule; its id, or `None` for a count of 0 (nothing armed).
    pub(crate) fn add(
        &mut self,
        route: Route,
        session: Option<String>,
        action: FaultAction,
        count: u32,
    ) -> Option<u64> {
        if count == 0 {
            return None;
        }
        self.next_id += 1;
        self.rules.push(Rule {
            id: self.next_id,
            route,
            session,
            action,
            remaining: count,
        });
        Some(self.next_id)
    }

    /// Every request of every route answers `status` for `duration` from now.
    pub(crate) fn start_outage(&mut self, status: u16, duration: Duration) {
        self.next_id += 1;
        let now_ms = unix_millis();
        self.outage = Some(Outage {
            id: self.next_id,
            status,
            until: crate::util::deadline_after(duration),
            ends_at_unix_ms: now_ms.saturating_add(duration.as_millis() as u64),
        });
    }

    /// Ends the outage; false if none was on.
    pub(crate) fn end_outage(&mut self) -> bool {
        self.outage.take().is_some()
    }

    /// Removes one armed rule; false if unknown (already used up, or cleared).
    pub(crate) fn remove(&mut self, id: u64) -> bool {
        let before = self.rules.len();
        self.rules.retain(|r| r.id != id);
        self.rules.len() != before
    }

    /// What is armed and what fired.
    pub(crate) fn view(&mut self) -> FaultsView {
        self.expire_outage();
        let now = Instant::now();
        FaultsView {
            armed: self
                .rules
                .iter()
                .map(|r| ArmedFault {
                    id: r.id,
                    route: r.route,
                    session_id: r.session.clone(),
                    action: ActionView::from(r.action),
                    remaining: r.remaining,
                })
                .collect(),
            delays: {
                let mut delays: Vec<DelayView> = self
                    .delays
                    .iter()
                    .map(|(route, d)| DelayView {
                        route: *route,
                        delay_ms: d.as_millis() as u64,
                    })
                    .collect();
                delays.sort_by_key(|d| format!("{:?}", d.route));
                delays
            },
            outage: self.outage.map(|o| OutageView {
                status: o.status,
                ends_at: crate::util::iso_from_unix_millis(o.ends_at_unix_ms),
                remaining_ms: o.until.saturating_duration_since(now).as_millis() as u64,
            }),
            fired: self.fired.iter().rev().cloned().collect(),
        }
    }

    fn expire_outage(&mut self) {
        if self.outage.is_some_and(|o| o.until <= Instant::now()) {
            self.outage = None;
        }
    }

    fn record(&mut self, id: u64, route: Route, session: Option<&str>, action: FaultAction) {
        let at = crate::util::iso_now();
        if let Some(last) = self.fired.back_mut() {
            if last.fault_id == id && last.route == route && last.session_id.as_deref() == session {
                last.times += 1;
                last.last_at = at;
                return;
            }
        }
        self.fired.push_back(FiredFault {
            fault_id: id,
            route,
            session_id: session.map(str::to_owned),
            action: ActionView::from(action),
            first_at: at.clone(),
            last_at: at,
            times: 1,
        });
        while self.fired.len() > FIRED_KEPT {
            self.fired.pop_front();
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
        self.outage = None;
    }

    /// Takes one use of the first rule matching the request, if any (an outage first), and
    /// records the firing.
    fn take(&mut self, route: Route, session: Option<&str>) -> Option<FaultAction> {
        self.expire_outage();
        if let Some(outage) = self.outage {
            let left = outage.until.saturating_duration_since(Instant::now());
            let action = FaultAction::Status {
                status: outage.status,
                retry_after: Some(left.as_secs() + 1),
            };
            self.record(outage.id, route, session, action);
            return Some(action);
        }
        let index = self.rules.iter().position(|r| {
            r.route.covers(route) && r.session.as_deref().is_none_or(|s| Some(s) == session)
        })?;
        let rule = &mut self.rules[index];
        rule.remaining -= 1;
        let action = rule.action;
        let id = rule.id;
        if rule.remaining == 0 {
            self.rules.remove(index);
        }
        self.record(id, route, session, action);
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

/// What a fault does, as [`Control::faults`](crate::Control::faults) shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ActionView {
    /// Answers this status (and `Retry-After`).
    #[serde(rename_all = "camelCase")]
    Status {
        /// The status.
        status: u16,
        /// `Retry-After` in seconds, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// Holds the request, then serves it.
    #[serde(rename_all = "camelCase")]
    Hang {
        /// How long, in milliseconds.
        hold_ms: u64,
    },
    /// Closes the connection before the answer's body.
    Drop,
    /// Serves the request, then closes the connection before the answer's body.
    LoseAnswer,
}

impl From<FaultAction> for ActionView {
    fn from(action: FaultAction) -> Self {
        match action {
            FaultAction::Status {
                status,
                retry_after,
            } => Self::Status {
                status,
                retry_after,
            },
            FaultAction::Hang(d) => Self::Hang {
                hold_ms: d.as_millis() as u64,
            },
            FaultAction::Drop => Self::Drop,
            FaultAction::LoseAnswer => Self::LoseAnswer,
        }
    }
}

/// A fault armed and not yet used up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ArmedFault {
    /// Its id (for [`Control::remove_fault`](crate::Control::remove_fault)).
    pub id: u64,
    /// The requests it applies to.
    pub route: Route,
    /// Only this session's requests, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// What it does.
    #[serde(flatten)]
    pub action: ActionView,
    /// Requests it will still apply to.
    pub remaining: u32,
}

/// A standing delay of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DelayView {
    /// The route.
    pub route: Route,
    /// The delay in milliseconds.
    pub delay_ms: u64,
}

/// An outage in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OutageView {
    /// What every request answers.
    pub status: u16,
    /// When it ends (ISO-8601).
    pub ends_at: String,
    /// Milliseconds left.
    pub remaining_ms: u64,
}

/// A fault that fired: consecutive firings of the same fault on the same route and session
/// are one entry with a count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FiredFault {
    /// The armed fault's id (or the outage's).
    pub fault_id: u64,
    /// The route of the request it hit.
    pub route: Route,
    /// The session of the request it hit, for session paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// What it did.
    #[serde(flatten)]
    pub action: ActionView,
    /// First firing (ISO-8601).
    pub first_at: String,
    /// Latest firing (ISO-8601).
    pub last_at: String,
    /// How many requests it hit.
    pub times: u32,
}

/// What is armed and what fired, newest firing first (the last 50 kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FaultsView {
    /// Faults armed, in the order they apply.
    pub armed: Vec<ArmedFault>,
    /// Standing delays.
    pub delays: Vec<DelayView>,
    /// The outage in progress, if any.
    pub outage: Option<OutageView>,
    /// Recent firings, newest first.
    pub fired: Vec<FiredFault>,
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
    if action.is_some() {
        inner
            .world()
            .feed
            .send(crate::live::Change::new(crate::live::ChangeKind::Faults));
    }
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
