//! The JSON shapes of the AXP Digital chat API (reference sections 6.3–6.9), field for field.
//!
//! Both sides of the project use these types: chat-core reads responses and writes requests,
//! chat-emulator does the opposite. Rules that hold for every type here:
//! - field names are exactly the wire names (camelCase);
//! - optional fields are omitted when absent, never sent as `null`;
//! - unknown fields are ignored, and unknown enum values decode to an `Unknown` variant rather
//!   than failing, so that a newer server does not break an older client.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{DialogId, EngagementId, MessageId, ParticipantId, SessionId};

/// Free-form string pairs: `sessionParameters`, `engagementParameters`.
///
/// At most 20 entries, keys of at most 64 characters, values of at most 256 (checked by
/// [`validate::mapped_data`](crate::validate::mapped_data) on what the application sends).
pub type MappedData = BTreeMap<String, String>;

/// The `clientType` every session is created with.
pub const CLIENT_TYPE_WEB: &str = "web";

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// Body of `POST /v1/integrations/{int}/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSessionRequest {
    /// Used by the server only when the JWT carries no customer name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Always `"web"` from this SDK.
    pub client_type: String,
    /// Context for routing and workflows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_parameters: Option<MappedData>,
}

/// Body of `POST /v1/integrations/{int}/engagements`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateEngagementRequest {
    /// The session that creates the engagement.
    pub session_id: SessionId,
    /// Always present, `{}` when the application gave none.
    #[serde(default)]
    pub engagement_parameters: MappedData,
}

/// Body of `POST /v1/integrations/{int}/engagements/{eid}:join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinEngagementRequest {
    /// `dialogs[0].dialogId` of the engagement.
    pub dialog_id: DialogId,
    /// The joining session.
    pub session_id: SessionId,
}

/// Body of `POST /v1/integrations/{int}/engagements/{eid}:disconnect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisconnectEngagementRequest {
    /// `dialogs[0].dialogId` of the engagement.
    pub dialog_id: DialogId,
    /// The leaving session.
    pub session_id: SessionId,
    /// Why the customer leaves; omitted when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<DisconnectReason>,
}

/// Body of `POST /v1/integrations/{int}/engagements/{eid}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendMessageRequest {
    /// `dialogs[0].dialogId` of the engagement.
    pub dialog_id: DialogId,
    /// The sending session.
    pub session_id: SessionId,
    /// The message this one answers, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_message_id: Option<MessageId>,
    /// Always a `TEXT` element in `PLAINTEXT` from this SDK.
    pub body: MessageBody,
}

/// The client's acknowledgement frame on the WebSocket form of the events resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamAck {
    /// The last event the client has processed; it and everything before it are acknowledged.
    pub last_event_id: String,
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// Response of create session (201) and get session (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The new or resumed session.
    pub session_id: SessionId,
    /// The customer's display name as the server knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The parameters the session was created with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_parameters: Option<MappedData>,
    /// The customer's ongoing engagements, across all of their sessions.
    pub engagements: Vec<Engagement>,
}

/// An engagement (one chat) as the server describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Engagement {
    /// The engagement.
    pub engagement_id: EngagementId,
    /// Its dialogs; only the first is used (one dialog per engagement).
    pub dialogs: Vec<Dialog>,
}

/// The dialog of an engagement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dialog {
    /// The dialog.
    pub dialog_id: DialogId,
    /// The server's status of the dialog.
    pub dialog_status: EngagementStatus,
    /// Everyone in the dialog now.
    #[serde(default)]
    pub participants: Vec<Participant>,
    /// ISO-8601, kept as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// ISO-8601, kept as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<String>,
}

/// Someone in a dialog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    /// The participant.
    pub participant_id: ParticipantId,
    /// Customer, agent, supervisor, system or bot.
    pub participant_type: ParticipantType,
    /// The name shown for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// A message as the REST endpoints return it: the sender's fields are flat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestMessage {
    /// The message.
    pub message_id: MessageId,
    /// Its dialog.
    pub dialog_id: DialogId,
    /// Its engagement.
    pub engagement_id: EngagementId,
    /// The content.
    pub body: MessageBody,
    /// Position in the dialog, increasing.
    pub message_index: u64,
    /// The message this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_message_id: Option<MessageId>,
    /// The sender.
    pub sender_participant_id: ParticipantId,
    /// The sender's type.
    pub participant_type: ParticipantType,
    /// The sender's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// ISO-8601, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<String>,
    /// ISO-8601, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<String>,
}

/// One page of message history, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    /// The messages of this page, newest first.
    pub messages: Vec<RestMessage>,
    /// Where this page is.
    #[serde(default)]
    pub pagination: Pagination,
    /// The next (older) page.
    #[serde(default)]
    pub links: Links,
}

/// `pagination` of a [`MessagePage`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// 1-based page number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_number: Option<u64>,
    /// Messages per page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u64>,
    /// Messages in all pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// `links` of a [`MessagePage`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Links {
    /// Absolute URL of the next older page, or `""` when there is none.
    #[serde(default)]
    pub next: String,
    /// Absolute URL of the previous (newer) page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
}

/// An RFC 7807 problem body, as AXP sends with its error statuses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<String>,
    /// A short summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// What went wrong; `"Session not found"` is significant on the events resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Field-level violations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
}

/// One field-level violation of a [`Problem`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    /// The offending field.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
    /// A machine-readable code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// The `detail` with which the events resource reports an unknown session (HTTP 404).
pub const SESSION_NOT_FOUND: &str = "Session not found";

/// Whether a 404's body is the problem that says the session is gone.
pub fn is_session_not_found(body: &[u8]) -> bool {
    serde_json::from_slice::<Problem>(body)
        .ok()
        .and_then(|p| p.detail)
        .is_some_and(|d| d == SESSION_NOT_FOUND)
}

// ---------------------------------------------------------------------------------------------
// Server events
// ---------------------------------------------------------------------------------------------

/// One element of the events resource's JSON array.
///
/// Decoded flat, with every type-specific field optional, so that one pass reads any event
/// type, and an unknown type is kept rather than refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerEvent {
    /// Opaque, URL-safe; the stream cursor.
    pub event_id: String,
    /// See [`ServerEventType`].
    pub event_type: ServerEventType,
    /// The engagement the event is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engagement_id: Option<EngagementId>,
    /// Its dialog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialog_id: Option<DialogId>,
    /// When it happened, as the server writes dates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_date: Option<String>,
    /// The session it was queued for (only logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    /// `MESSAGE`: the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<EventMessage>,
    /// `MESSAGE`: the sender; `PARTICIPANT_*`: who joined or left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<Participant>,
    /// `ENGAGEMENT_ERROR`: what went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<EngagementErrorBody>,
}

impl ServerEvent {
    /// An event with only its id and type; the type-specific fields are empty.
    pub fn new(event_id: impl Into<String>, event_type: ServerEventType) -> Self {
        Self {
            event_id: event_id.into(),
            event_type,
            engagement_id: None,
            dialog_id: None,
            event_date: None,
            session_id: None,
            message: None,
            participant: None,
            error: None,
        }
    }
}

/// The kinds of server event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ServerEventType {
    /// A message was posted (by anyone, the customer included).
    Message,
    /// Someone joined the engagement.
    ParticipantAdded,
    /// Someone left the engagement.
    ParticipantDisconnected,
    /// The engagement was created (informational).
    EngagementCreated,
    /// The contact center could not handle the engagement; it is over.
    EngagementError,
    /// A type this version does not know; skipped with a log line.
    #[serde(other)]
    Unknown,
}

/// The `message` of a `MESSAGE` event: nested, unlike [`RestMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventMessage {
    /// The message.
    pub message_id: MessageId,
    /// The message this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_message_id: Option<MessageId>,
    /// Position in the dialog, increasing.
    pub message_index: u64,
    /// ISO-8601, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<String>,
    /// ISO-8601, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<String>,
    /// The content.
    pub body: MessageBody,
}

/// The `error` of an `ENGAGEMENT_ERROR` event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EngagementErrorBody {
    /// A URI naming the kind of error.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// A short summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------------------------

/// A message's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageBody {
    /// `TEXT` for everything this SDK sends; other element types are passed on as received.
    pub element_type: String,
    /// The text, for `TEXT` elements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element_text: Option<ElementText>,
}

impl MessageBody {
    /// A plain-text body, as the SDK sends.
    pub fn plain_text(text: impl Into<String>) -> Self {
        Self {
            element_type: "TEXT".to_owned(),
            element_text: Some(ElementText {
                text: text.into(),
                text_format: TextFormat::Plaintext,
            }),
        }
    }

    /// The text of a text element, if this is one.
    pub fn text(&self) -> Option<&str> {
        self.element_text.as_ref().map(|t| t.text.as_str())
    }
}

/// `elementText` of a [`MessageBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElementText {
    /// The text.
    pub text: String,
    /// How to render it.
    pub text_format: TextFormat,
}

/// How a text is formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum TextFormat {
    /// Plain text (all this SDK sends).
    Plaintext,
    /// HTML.
    Html,
    /// Markdown.
    Markdown,
    /// A format this version does not know.
    #[serde(other)]
    Unknown,
}

/// Who a participant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ParticipantType {
    /// The end user.
    Customer,
    /// A contact-center agent.
    Agent,
    /// A supervisor.
    Supervisor,
    /// The system (notices).
    System,
    /// An automated agent.
    Bot,
    /// A type this version does not know.
    #[serde(other)]
    Unknown,
}

/// The status of an engagement, as the SDK tracks it and as the server reports a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum EngagementStatus {
    /// Created or listed, not yet joined by this session's customer.
    Pending,
    /// The customer is in it: messages can be sent.
    Active,
    /// The customer asked to leave; waiting for the server to confirm.
    Terminating,
    /// Over.
    Terminated,
    /// A status this version does not know.
    #[serde(other)]
    Unknown,
}

/// Why a customer leaves an engagement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The application decided to disconnect.
    SystemClosed,
    /// The customer closed the chat.
    UserClosed,
    /// The customer was inactive.
    UserInactive,
}

impl DisconnectReason {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SystemClosed => "SYSTEM_CLOSED",
            Self::UserClosed => "USER_CLOSED",
            Self::UserInactive => "USER_INACTIVE",
        }
    }
}

/// Why a session is shut down (`?reason=` of delete session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ShutdownReason {
    /// The customer logged off or closed the app.
    UserClosed,
    /// The idle and grace timers ran out.
    UserInactive,
}

impl ShutdownReason {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserClosed => "USER_CLOSED",
            Self::UserInactive => "USER_INACTIVE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn optional_fields_are_omitted_not_null() {
        let body = CreateSessionRequest {
            display_name: None,
            client_type: CLIENT_TYPE_WEB.into(),
            session_parameters: None,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"clientType": "web"})
        );
        let send = SendMessageRequest {
            dialog_id: DialogId::new("d"),
            session_id: SessionId::new("s"),
            parent_message_id: None,
            body: MessageBody::plain_text("hi"),
        };
        assert_eq!(
            serde_json::to_value(&send).unwrap(),
            json!({"dialogId": "d", "sessionId": "s",
                   "body": {"elementType": "TEXT", "elementText": {"text": "hi", "textFormat": "PLAINTEXT"}}})
        );
        let create = CreateEngagementRequest {
            session_id: SessionId::new("s"),
            engagement_parameters: MappedData::new(),
        };
        assert_eq!(
            serde_json::to_value(&create).unwrap(),
            json!({"sessionId": "s", "engagementParameters": {}})
        );
    }

    #[test]
    fn unknown_fields_and_values_are_tolerated() {
        let event: ServerEvent = serde_json::from_value(json!({
            "eventId": "7", "eventType": "TYPING_STARTED", "shiny": [1, 2],
            "participant": {"participantId": "p", "participantType": "ROBOT", "x": 1}
        }))
        .unwrap();
        assert_eq!(event.event_type, ServerEventType::Unknown);
        assert_eq!(
            event.participant.unwrap().participant_type,
            ParticipantType::Unknown
        );
    }

    #[test]
    fn message_event_reads_nested_fields() {
        let event: ServerEvent = serde_json::from_value(json!({
            "eventId": "e1", "eventType": "MESSAGE", "engagementId": "en", "dialogId": "d",
            "eventDate": "2024-01-01T00:00:00Z",
            "message": {"messageId": "m", "messageIndex": 3, "body": {"elementType": "TEXT",
                        "elementText": {"text": "hello", "textFormat": "PLAINTEXT"}}},
            "participant": {"participantId": "a", "participantType": "AGENT", "displayName": "Ann"}
        }))
        .unwrap();
        let message = event.message.unwrap();
        assert_eq!(message.message_index, 3);
        assert_eq!(message.body.text(), Some("hello"));
    }
}
