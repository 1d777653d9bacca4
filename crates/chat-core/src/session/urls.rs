//! The chat API's URLs. Ids from the server are percent-encoded where they enter a path or a
//! query, so that no id can change which resource a request names.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::ids::{DialogId, EngagementId, IntegrationId, SessionId};
use crate::wire::ShutdownReason;

/// Characters left as they are: RFC 3986 unreserved.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The official SDK's fixed REST base path.
pub(crate) const BASE_PATH: &str = "/sdk/digital/chat";

fn enc(s: &str) -> impl std::fmt::Display + '_ {
    utf8_percent_encode(s, COMPONENT)
}

pub(super) fn base(host: &str, integration: &IntegrationId) -> String {
    format!(
        "{host}{BASE_PATH}/v1/integrations/{}",
        enc(integration.as_str())
    )
}

pub(super) fn sessions(base: &str) -> String {
    format!("{base}/sessions")
}

pub(super) fn session(base: &str, sid: &SessionId) -> String {
    format!("{base}/sessions/{}", enc(sid.as_str()))
}

pub(super) fn delete_session(
    base: &str,
    sid: &SessionId,
    reason: Option<ShutdownReason>,
) -> String {
    match reason {
        Some(r) => format!("{}?reason={}", session(base, sid), r.as_str()),
        None => session(base, sid),
    }
}

pub(super) fn events(base: &str, sid: &SessionId, last_event_id: Option<&str>) -> String {
    events_after(&format!("{}/events", session(base, sid)), last_event_id)
}

/// The events URL from its fixed part, built once per session.
pub(super) fn events_after(events: &str, last_event_id: Option<&str>) -> String {
    use std::fmt::Write as _;
    let mut url = String::with_capacity(events.len() + 64);
    url.push_str(events);
    if let Some(id) = last_event_id {
        let _ = write!(url, "?lastEventId={}", enc(id));
    }
    url
}

pub(super) fn engagements(base: &str) -> String {
    format!("{base}/engagements")
}

pub(super) fn engagement_action(base: &str, eid: &EngagementId, action: &str) -> String {
    format!("{base}/engagements/{}:{action}", enc(eid.as_str()))
}

pub(super) fn messages(base: &str, eid: &EngagementId) -> String {
    format!("{base}/engagements/{}/messages", enc(eid.as_str()))
}

/// The first history page: always 50 messages, newest first, as the official SDK asks.
pub(super) fn first_history_page(
    base: &str,
    eid: &EngagementId,
    sid: &SessionId,
    did: &DialogId,
) -> String {
    format!(
        "{}?sessionId={}&dialogId={}&pageSize=50&pageNumber=1&orderBy=DSC",
        messages(base, eid),
        enc(sid.as_str()),
        enc(did.as_str())
    )
}

/// Whether a `links.next` from the server may be followed: it must lie under this
/// engagement's messages resource, so that the token is never sent anywhere else.
pub(super) fn is_own_history_link(base: &str, eid: &EngagementId, link: &str) -> bool {
    let own = messages(base, eid);
    // Scheme and host compare without case; ids are UUIDs, so the whole prefix can.
    link.get(..own.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(&own))
        && matches!(link.as_bytes().get(own.len()), None | Some(b'?'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_escape_their_path_segment() {
        let b = "https://h/sdk/digital/chat/v1/integrations/i";
        assert_eq!(
            messages(b, &EngagementId::new("../../x?y")),
            "https://h/sdk/digital/chat/v1/integrations/i/engagements/..%2F..%2Fx%3Fy/messages"
        );
        assert_eq!(
            events(b, &SessionId::new("s"), Some("a b&c")),
            "https://h/sdk/digital/chat/v1/integrations/i/sessions/s/events?lastEventId=a%20b%26c"
        );
    }

    #[test]
    fn history_links_must_stay_home() {
        let b = "https://h/sdk/digital/chat/v1/integrations/i";
        let e = EngagementId::new("e");
        assert!(is_own_history_link(
            b,
            &e,
            &format!("{b}/engagements/e/messages?pageNumber=2")
        ));
        assert!(!is_own_history_link(b, &e, "https://evil/steal"));
        assert!(!is_own_history_link(
            b,
            &e,
            &format!("{b}/engagements/e/messagesX")
        ));
        assert!(!is_own_history_link(
            b,
            &e,
            &format!("{b}/engagements/other/messages?p=2")
        ));
        assert!(!is_own_history_link(
            "https://h",
            &e,
            "https://h.evil.com/engagements/e/messages"
        ));
    }
}
