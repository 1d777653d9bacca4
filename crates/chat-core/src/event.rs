//! What the core tells the application: events (the official SDK's 16) and command replies.

use std::time::{Duration, SystemTime};

use crate::ChatError;
use crate::ids::{DialogId, EngagementId, MessageId, RequestId, SessionId};
use crate::wire::{
    self, EngagementErrorBody, EngagementStatus, MappedData, MessageBody, Participant,
    ShutdownReason,
};

/// The events of the official SDK, in Rust form. Server dates are passed on as the server
/// wrote them (`event_date`, `received_at`...); the time of a client-side event is the `now`
/// of the input that caused it, which the adapter knows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// `INITIALIZED`: the session is created or resumed.
    Initialized(UserContext),
    /// `SHUTDOWN`: the session has ended; nothing follows.
    Shutdown {
        /// Given by the application, or `USER_INACTIVE` after the idle grace period.
        reason: Option<ShutdownReason>,
    },
    /// `TOKEN_EXPIRY_REMINDER`: time to fetch and set a fresh token.
    TokenExpiryReminder {
        /// The token's `exp`.
        expires_at: SystemTime,
        /// How long it has left.
        expires_in: Duration,
    },
    /// `TOKEN_EXPIRED`: the token's `exp` has passed (by the local clock).
    TokenExpired {
        /// The token's `exp`.
        expired_at: SystemTime,
    },
    /// `IDLE_TIMEOUT_EXPIRED`: no activity for the idle timeout; the grace period starts.
    IdleTimeoutExpired {
        /// Time left before the automatic `USER_INACTIVE` shutdown.
        grace_period: Duration,
    },
    /// `EVENT_STREAM_CONNECTING`
    EventStreamConnecting,
    /// `EVENT_STREAM_CONNECTED`
    EventStreamConnected,
    /// `EVENT_STREAM_FAILED`
    EventStreamFailed(StreamFailure),
    /// `EVENT_STREAM_CLOSED`
    EventStreamClosed,
    /// `ENGAGEMENT_ACTIVE`: the customer is in the engagement; messages can be sent.
    EngagementActive(EngagementRef),
    /// `ENGAGEMENT_TERMINATED`: the customer has left; the engagement is over.
    EngagementTerminated(EngagementRef),
    /// `ENGAGEMENT_ERROR`: the contact center could not handle it; it is over.
    EngagementError {
        /// Which engagement.
        engagement: EngagementRef,
        /// Server date of the event.
        event_date: Option<String>,
        /// What went wrong.
        error: EngagementErrorBody,
    },
    /// `PARTICIPANT_ADDED`
    ParticipantAdded(ParticipantChange),
    /// `PARTICIPANT_DISCONNECTED`
    ParticipantDisconnected(ParticipantChange),
    /// `MESSAGE_ARRIVED`: a message from anyone but the customer.
    MessageArrived(Message),
    /// `MESSAGE_DELIVERED`: the customer's own message, as the server stored it (from this
    /// session or another of the same customer).
    MessageDelivered(Message),
}

impl Event {
    /// The chat (engagement) the event is about, for the events of one chat: messages,
    /// participants, activation, termination and errors. `None` for the session's and the
    /// stream's events.
    pub fn engagement_id(&self) -> Option<&EngagementId> {
        match self {
            Self::EngagementActive(e) | Self::EngagementTerminated(e) => Some(&e.engagement_id),
            Self::EngagementError { engagement, .. } => Some(&engagement.engagement_id),
            Self::ParticipantAdded(c) | Self::ParticipantDisconnected(c) => {
                Some(&c.engagement.engagement_id)
            }
            Self::MessageArrived(m) | Self::MessageDelivered(m) => Some(&m.engagement_id),
            _ => None,
        }
    }

    /// The official SDK's name of the event, such as `"MESSAGE_ARRIVED"`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Initialized(_) => "INITIALIZED",
            Self::Shutdown { .. } => "SHUTDOWN",
            Self::TokenExpiryReminder { .. } => "TOKEN_EXPIRY_REMINDER",
            Self::TokenExpired { .. } => "TOKEN_EXPIRED",
            Self::IdleTimeoutExpired { .. } => "IDLE_TIMEOUT_EXPIRED",
            Self::EventStreamConnecting => "EVENT_STREAM_CONNECTING",
            Self::EventStreamConnected => "EVENT_STREAM_CONNECTED",
            Self::EventStreamFailed(_) => "EVENT_STREAM_FAILED",
            Self::EventStreamClosed => "EVENT_STREAM_CLOSED",
            Self::EngagementActive(_) => "ENGAGEMENT_ACTIVE",
            Self::EngagementTerminated(_) => "ENGAGEMENT_TERMINATED",
            Self::EngagementError { .. } => "ENGAGEMENT_ERROR",
            Self::ParticipantAdded(_) => "PARTICIPANT_ADDED",
            Self::ParticipantDisconnected(_) => "PARTICIPANT_DISCONNECTED",
            Self::MessageArrived(_) => "MESSAGE_ARRIVED",
            Self::MessageDelivered(_) => "MESSAGE_DELIVERED",
        }
    }
}

/// `EVENT_STREAM_FAILED`'s payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFailure {
    /// Why.
    pub reason: StreamFailureReason,
    /// The base delay before the next automatic attempt (jitter comes on top); only when the
    /// stream retries by itself.
    pub retry_after: Option<Duration>,
}

/// Why the event stream failed (`EventStreamFailureReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StreamFailureReason {
    /// 401: the token is expired or invalid. The stream pauses until a new token is set.
    Unauthorized,
    /// 403: the token is not valid here. The stream pauses until a new token is set.
    Forbidden,
    /// The server no longer knows the session; the stream is closed for good.
    ClientSessionInvalidated,
    /// HTTP 500.
    ServerError,
    /// HTTP 501, a network failure, a timeout or an unreadable answer.
    ServerUnreachable,
    /// Any other unexpected status.
    UnexpectedError,
    /// Reconnection did not succeed within the reconnection timeout; see
    /// [`Session::retry_connection`](crate::Session::retry_connection).
    ReconnectionTimeout,
}

impl StreamFailureReason {
    /// The official SDK's value, such as `"RECONNECTION_TIMEOUT"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Forbidden => "FORBIDDEN",
            Self::ClientSessionInvalidated => "CLIENT_SESSION_INVALIDATED",
            Self::ServerError => "SERVER_ERROR",
            Self::ServerUnreachable => "SERVER_UNREACHABLE",
            Self::UnexpectedError => "UNEXPECTED_ERROR",
            Self::ReconnectionTimeout => "RECONNECTION_TIMEOUT",
        }
    }

    /// The official `message` text of the event.
    pub fn message(self) -> &'static str {
        match self {
            Self::Unauthorized | Self::Forbidden => "ACS-305 : JWT token is invalid.",
            Self::ReconnectionTimeout => "ACS-306 : Server is unreachable.",
            Self::ClientSessionInvalidated => "ACS-320 : Session not found.",
            Self::ServerError | Self::ServerUnreachable | Self::UnexpectedError => {
                "ACS-304 : Server responded unexpectedly."
            }
        }
    }
}

/// Names an engagement in an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngagementRef {
    /// The engagement.
    pub engagement_id: EngagementId,
    /// Its dialog.
    pub dialog_id: DialogId,
}

/// `PARTICIPANT_ADDED` / `PARTICIPANT_DISCONNECTED` payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantChange {
    /// Which engagement.
    pub engagement: EngagementRef,
    /// Server date of the event.
    pub event_date: Option<String>,
    /// Who joined or left.
    pub participant: Participant,
}

/// A chat message, received or sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The message.
    pub message_id: MessageId,
    /// Its engagement.
    pub engagement_id: EngagementId,
    /// Its dialog.
    pub dialog_id: DialogId,
    /// Position in the dialog; messages are delivered in this order.
    pub message_index: u64,
    /// The message this one answers.
    pub parent_message_id: Option<MessageId>,
    /// The sender.
    pub sender: Participant,
    /// The content, as received.
    pub body: MessageBody,
    /// Server time of receipt, as sent.
    pub received_at: Option<String>,
    /// Server time of the last change, as sent.
    pub last_updated_at: Option<String>,
    /// Server date of the event that carried it (`None` for history and send replies).
    pub event_date: Option<String>,
}

impl Message {
    /// The text of a text message.
    pub fn text(&self) -> Option<&str> {
        self.body.text()
    }

    pub(crate) fn from_rest(m: wire::RestMessage) -> Self {
        Self {
            message_id: m.message_id,
            engagement_id: m.engagement_id,
            dialog_id: m.dialog_id,
            message_index: m.message_index,
            parent_message_id: m.parent_message_id,
            sender: Participant {
                participant_id: m.sender_participant_id,
                participant_type: m.participant_type,
                display_name: m.display_name,
            },
            body: m.body,
            received_at: m.received_at,
            last_updated_at: m.last_updated_at,
            event_date: None,
        }
    }
}

/// An engagement as the application sees it (the official SDK's frozen "image").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngagementInfo {
    /// The engagement.
    pub engagement_id: EngagementId,
    /// Its dialog.
    pub dialog_id: DialogId,
    /// The SDK's status of it (not the server's dialog status).
    pub status: EngagementStatus,
    /// Who is in it.
    pub participants: Vec<Participant>,
    /// Server date of creation, as sent.
    pub created_at: Option<String>,
    /// Server date of the last change, as sent.
    pub last_updated_at: Option<String>,
}

/// `INITIALIZED`'s payload and `init`'s reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserContext {
    /// The session.
    pub session_id: SessionId,
    /// The customer's name as the server knows it.
    pub display_name: Option<String>,
    /// The session's parameters as the server knows them.
    pub session_parameters: Option<MappedData>,
    /// The customer's ongoing engagements.
    pub engagements: Vec<EngagementInfo>,
}

/// One page of history, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The messages, newest first.
    pub messages: Vec<Message>,
    /// The next older page, if any.
    pub next: Option<PageLink>,
}

/// The address of an older history page (the server's `links.next`), checked to lie under
/// the session's own host and integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageLink(pub(crate) String);

impl PageLink {
    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The completion of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The id the command returned.
    pub id: RequestId,
    /// How it ended.
    pub result: Result<ReplyValue, ChatError>,
}

/// What a successful command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyValue {
    /// `init` or `resume`.
    Initialized(UserContext),
    /// `create_engagement` or `join`.
    Engagement(EngagementInfo),
    /// `list_engagements`.
    Engagements(Vec<EngagementInfo>),
    /// `send_message`: the message as the server stored it.
    MessageSent(Message),
    /// `fetch_history`.
    History(HistoryPage),
    /// `disconnect`: the engagement is TERMINATING.
    Disconnected,
    /// `shutdown`.
    Shutdown,
    /// `refresh_token`: a new token from the provider is in use.
    TokenRefreshed,
    /// `wait_saved`: the store holds everything accepted before the call.
    Saved,
}

/// Why a session ended: see [`Session::end_reason`](crate::Session::end_reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// It was shut down (`SHUTDOWN` was emitted): by the application, with its reason if
    /// it gave one, or after the idle grace period (`USER_INACTIVE`).
    Shutdown(Option<ShutdownReason>),
    /// The server no longer knows it ("Session not found", ACS-320): the last events were
    /// `EVENT_STREAM_CLOSED` (if the stream ran) and
    /// `EVENT_STREAM_FAILED(CLIENT_SESSION_INVALIDATED)`. Start a new session.
    SessionInvalidated,
    /// This process stopped driving it without telling the server
    /// ([`Session::abandon`](crate::Session::abandon)): another took it over (its store's
    /// lease passed on), and must be the only one to send. The session goes on there.
    Abandoned,
}

impl EndReason {
    /// The official code that says why, for an application that reports it: `None` for a
    /// shutdown, `ACS-320` for an invalidated session.
    pub fn code(self) -> Option<&'static str> {
        match self {
            Self::Shutdown(_) | Self::Abandoned => None,
            Self::SessionInvalidated => Some("ACS-320"),
        }
    }
}

/// What the core wants done next; see [`Session::poll_output`](crate::Session::poll_output).
#[derive(Debug)]
pub enum Output {
    /// Send this request, then report its response or failure. A poll
    /// ([`RequestKind::Poll`](crate::RequestKind::Poll)) goes to the event stream's
    /// transport, whose outcome is reported with
    /// [`handle_poll`](crate::Session::handle_poll).
    Transmit(crate::Request),
    /// Abandon a request sent earlier; its outcome is no longer wanted (the core has already
    /// settled it: a request that ran past its timeout is failed with
    /// [`TransportError::Timeout`](crate::TransportError::Timeout) by the core itself). A
    /// transport that keeps a persistent stream connection closes it when its poll is
    /// abandoned.
    Abort(RequestId),
    /// Ask the token provider for a new chat token, then report it with
    /// [`handle_token`](crate::Session::handle_token) or
    /// [`handle_token_failure`](crate::Session::handle_token_failure) under this id. At most
    /// one is asked for at a time; only with [`Config::token_refresh`](crate::Config::token_refresh).
    FetchToken(RequestId),
    /// A command has completed.
    Reply(Reply),
    /// An event for the application.
    Event(Event),
    /// Nothing more to do now: call [`Session::handle_timeout`](crate::Session::handle_timeout)
    /// at this instant (if any), or sooner when a command or response comes in.
    Wait(Option<std::time::Instant>),
}

/// A plain agent message with index `index`, for unit tests.
#[cfg(test)]
pub(crate) fn test_message(index: u64) -> Message {
    use crate::ids::ParticipantId;
    use crate::wire::ParticipantType;
    Message {
        message_id: MessageId::new(format!("m{index}")),
        engagement_id: EngagementId::new("e"),
        dialog_id: DialogId::new("d"),
        message_index: index,
        parent_message_id: None,
        sender: Participant {
            participant_id: ParticipantId::new("a"),
            participant_type: ParticipantType::Agent,
            display_name: None,
        },
        body: MessageBody::plain_text("x"),
        received_at: None,
        last_updated_at: None,
        event_date: None,
    }
}
