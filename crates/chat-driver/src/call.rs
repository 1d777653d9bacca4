//! The commands a session completes with a `Reply`, as every adapter queues them.

use std::time::{Instant, SystemTime};

use chat_core::wire::{DisconnectReason, MappedData, ShutdownReason};
use chat_core::{
    ChatError, EngagementId, MessageId, PageLink, RequestId, Resumption, Session, Snapshot,
};

/// A command that completes with the session's `Reply`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Call {
    /// `init`, or `resume` of a session kept earlier.
    Init(Option<Resumption>),
    /// A session restored from its store's snapshot (see `Session::restore`).
    Restore(Box<Snapshot>),
    /// Everything accepted so far is in the store (see `Session::wait_saved`).
    WaitSaved,
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
    /// A new token from the provider, now.
    RefreshToken,
    /// `shutdown`.
    Shutdown(Option<ShutdownReason>),
}

impl Call {
    /// Starts the call on `session`: the id its reply will carry, or why it was refused.
    pub(crate) fn start(
        self,
        session: &mut Session,
        now: Instant,
        wall: SystemTime,
    ) -> Result<RequestId, ChatError> {
        match self {
            Self::Init(None) => session.init(now, wall),
            Self::Init(Some(r)) => session.resume(now, wall, r),
            Self::Restore(s) => session.restore(now, wall, *s),
            Self::WaitSaved => session.wait_saved(now),
            Self::CreateEngagement(p) => session.create_engagement(now, p),
            Self::ListEngagements => session.list_engagements(now),
            Self::Join(e) => session.join(now, &e),
            Self::Send {
                engagement,
                text,
                parent,
            } => session.send_message(now, &engagement, &text, parent.as_ref()),
            Self::FetchHistory { engagement, page } => {
                session.fetch_history(now, &engagement, page.as_ref())
            }
            Self::Disconnect { engagement, reason } => session.disconnect(now, &engagement, reason),
            Self::RefreshToken => session.refresh_token(now),
            Self::Shutdown(reason) => session.shutdown(now, reason),
        }
    }
}
