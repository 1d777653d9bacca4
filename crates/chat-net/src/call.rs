//! The commands a session completes with a `Reply`, as both adapters queue them for their
//! loop, and the refresh policy around them.

use std::time::{Duration, Instant, SystemTime};

use chat_core::wire::{DisconnectReason, MappedData, ShutdownReason};
use chat_core::{ChatError, EngagementId, MessageId, PageLink, RequestId, Resumption, Session};

/// How long a token provider call may take before it counts as failed.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(30);
/// Wait before trying a failed token refresh again (while the token is still live).
pub const PROVIDER_RETRY: Duration = Duration::from_secs(5);
/// Refreshes in a row after 401s without the server accepting a token in between.
pub const MAX_AUTH_REFRESHES: u32 = 3;

/// A command that goes to the server and completes with the session's `Reply`. An adapter
/// keeps it until then: a call refused with 401 is made once more after a token refresh.
#[derive(Debug, Clone)]
pub enum Call {
    /// `init`, or `resume` of a session kept earlier.
    Init(Option<Resumption>),
    /// `createEngagement`.
    CreateEngagement(MappedData),
    /// `getEngagements`.
    ListEngagements,
    /// `join`.
    Join(EngagementId),
    /// `sendMessage`.
    Send {
        /// The chat.
        engagement: EngagementId,
        /// The text.
        text: String,
        /// The message it answers.
        parent: Option<MessageId>,
    },
    /// A page of history: the first, or the one a previous page linked to.
    FetchHistory {
        /// The chat.
        engagement: EngagementId,
        /// The page, `None` for the newest.
        page: Option<PageLink>,
    },
    /// `disconnect`.
    Disconnect {
        /// The chat.
        engagement: EngagementId,
        /// Why, if said.
        reason: Option<DisconnectReason>,
    },
    /// `shutdown`.
    Shutdown(Option<ShutdownReason>),
}

impl Call {
    /// Starts the call on `session`: the id its reply will carry, or why it was refused.
    pub fn start(
        &self,
        session: &mut Session,
        now: Instant,
        wall: SystemTime,
    ) -> Result<RequestId, ChatError> {
        match self {
            Self::Init(None) => session.init(now, wall),
            Self::Init(Some(r)) => session.resume(now, wall, r.clone()),
            Self::CreateEngagement(p) => session.create_engagement(now, p.clone()),
            Self::ListEngagements => session.list_engagements(now),
            Self::Join(e) => session.join(now, e),
            Self::Send {
                engagement,
                text,
                parent,
            } => session.send_message(now, engagement, text, parent.as_ref()),
            Self::FetchHistory { engagement, page } => {
                session.fetch_history(now, engagement, page.as_ref())
            }
            Self::Disconnect { engagement, reason } => session.disconnect(now, engagement, *reason),
            Self::Shutdown(reason) => session.shutdown(now, *reason),
        }
    }

    /// Whether this is `init` (or `resume`): its success arms the token refresh.
    pub fn is_init(&self) -> bool {
        matches!(self, Self::Init(_))
    }
}
