//! The methods of every adapter's handles that need no I/O, defined once: the local reads
//! and commands of `Client`, the reads of `Engagement`, and the moves of `HistoryPager` that
//! never fetch. Each adapter expands them inside its own `impl` blocks, so that both have the
//! same names, signatures, behaviour and docs.

/// The local methods of a `Client`: expand inside `impl Client { … }` of a client with
/// `fn context(&self) -> &UserContext`, `fn read<R>(&self, f: impl FnOnce(&Driver<_>) -> R) -> R`
/// and `fn command<R>(&self, f: impl FnOnce(&mut Driver<_>, Instant) -> R) -> R` (which lets the
/// driver carry out what the command produced), and an `Engagement { client, info }` handle.
#[macro_export]
macro_rules! client_local_methods {
    () => {
        /// A builder; see `ClientBuilder`.
        pub fn builder(
            host: impl Into<String>,
            integration_id: impl Into<String>,
            appkey: impl AsRef<str>,
        ) -> ClientBuilder {
            ClientBuilder::new(host, integration_id, appkey)
        }

        /// What `init` returned (also delivered as the `INITIALIZED` event).
        pub fn user_context(&self) -> &$crate::__private::UserContext {
            self.context()
        }

        /// The session's id.
        pub fn session_id(&self) -> &$crate::__private::SessionId {
            &self.context().session_id
        }

        /// An engagement this session knows (`getEngagementById`), without a network call.
        pub fn engagement(&self, id: &$crate::__private::EngagementId) -> Option<Engagement> {
            let info = self.read(|d| d.engagement(id))?;
            Some(self.engagement_handle(info))
        }

        /// Every engagement this session knows, without a network call.
        pub fn engagements(&self) -> Vec<Engagement> {
            let list = self.read(|d| d.engagements());
            list.into_iter()
                .map(|i| self.engagement_handle(i))
                .collect()
        }

        /// A handle on an engagement from its snapshot (for instance from the `INITIALIZED`
        /// event's user context).
        pub fn engagement_handle(&self, info: $crate::__private::EngagementInfo) -> Engagement {
            let client = self.clone();
            Engagement { client, info }
        }

        /// Replaces the chat token (`setJwtToken`, the push style): no network call; later
        /// requests carry it, the expiry timers restart, and a stream paused by a 401 resumes.
        pub fn set_token(&self, token: &str) -> Result<(), $crate::Error> {
            self.command(|d, now| d.set_token(now, token))
        }

        /// Retries the event stream now (`retryConnection`): after `RECONNECTION_TIMEOUT`,
        /// or to cut a backoff short. ACS-318 otherwise.
        pub fn retry_connection(&self) -> Result<(), $crate::Error> {
            self.command(|d, now| d.retry_connection(now))
        }

        /// Customer activity: restarts the idle timer and cancels a grace period
        /// (`resetIdleTimeout`).
        pub fn reset_idle_timeout(&self) -> Result<(), $crate::Error> {
            self.command(|d, now| d.reset_idle_timeout(now))
        }

        /// The event stream's state.
        pub fn stream_state(&self) -> $crate::__private::StreamState {
            self.read(|d| d.stream_state())
        }

        /// The sends accepted and not yet known delivered, oldest first: after a restart,
        /// those the process before handed over, which the outbox delivers now (each once).
        /// What an app shows as "sending…"; with `saved`, what it needs to
        /// know which of its own messages the SDK has taken.
        pub fn pending_sends(&self) -> Vec<$crate::__private::HeldSend> {
            self.read(|d| d.snapshot().sends)
        }

        /// The store's lease this client holds its session under (with a store, until it
        /// stops): what the application's own transaction checks with
        /// `chat_store::sqlite::fence` before recording a position itself (the exactly-once
        /// recipe of `docs/sessions-that-survive-restarts.md`).
        pub fn lease(&self) -> Option<$crate::__private::Lease> {
            self.read(|d| d.lease().cloned())
        }

        /// What to keep to resume this session later (the official SDK's `sessionStorage`),
        /// see `ClientBuilder::resume`. Free of secrets. Its positions are those of the
        /// events the application has taken: a message still queued comes again after the
        /// resume. Save it after taking events, not before.
        pub fn resumption(&self) -> Result<$crate::__private::Resumption, $crate::Error> {
            self.read(|d| d.resumption().ok_or($crate::Error::Closed(d.end_reason())))
        }

        /// How much the session holds of what the server sent: kept orphan events, held
        /// messages, requests in flight... (see `Footprint`); every count is bounded
        /// whatever the server sends. The events waiting for the application are
        /// `EventStream::queued`.
        pub fn footprint(&self) -> $crate::__private::Footprint {
            self.read(|d| d.footprint())
        }

        /// Why the session ended, once it has.
        pub fn end_reason(&self) -> Option<$crate::__private::EndReason> {
            self.read(|d| d.end_reason())
        }
    };
}

/// Defines the `Engagement` handle of a crate whose client is `Client`, with its local
/// reads; the adapter adds the commands in an `impl Engagement` of its own.
#[macro_export]
macro_rules! engagement_handle {
    () => {
        /// One engagement (chat) of the session: the official SDK's Engagement object.
        ///
        /// Holds a snapshot ([`info`](Self::info)) taken when the handle was made; the live
        /// status and participants come from [`status`](Self::status) and
        /// [`participants`](Self::participants).
        #[derive(Debug, Clone)]
        pub struct Engagement {
            client: Client,
            info: $crate::__private::EngagementInfo,
        }

        impl Engagement {
            /// The engagement's id.
            pub fn id(&self) -> &$crate::__private::EngagementId {
                &self.info.engagement_id
            }

            /// Its dialog's id.
            pub fn dialog_id(&self) -> &$crate::__private::DialogId {
                &self.info.dialog_id
            }

            /// The snapshot this handle was made from.
            pub fn info(&self) -> &$crate::__private::EngagementInfo {
                &self.info
            }

            /// The current state as this session knows it; `None` once it is over and
            /// forgotten.
            pub fn current(&self) -> Option<$crate::__private::EngagementInfo> {
                self.client.read(|d| d.engagement(self.id()))
            }

            /// The SDK status (`engagementStatus`): TERMINATED once the engagement is over.
            pub fn status(&self) -> $crate::__private::EngagementStatus {
                $crate::live_status(self.current().as_ref())
            }

            /// Who is in it now (`participants`); ACS-314 once it is over.
            pub fn participants(
                &self,
            ) -> Result<Vec<$crate::__private::Participant>, $crate::Error> {
                $crate::live_participants(self.current())
            }
        }
    };
}

/// Defines the `HistoryPager` of a crate whose engagement handle is `Engagement`, with its
/// moves and reads that never fetch; the adapter adds `older`, which may fetch.
#[macro_export]
macro_rules! history_pager {
    () => {
        /// Message history of one engagement, paged locally like the official
        /// `PageIterator`.
        #[derive(Debug, Clone)]
        pub struct HistoryPager {
            engagement: Engagement,
            pager: $crate::__private::HistoryPager,
        }

        impl HistoryPager {
            /// The messages of the current page, newest first.
            pub fn items(&self) -> &[$crate::__private::Message] {
                self.pager.items()
            }

            /// The page size.
            pub fn page_size(&self) -> usize {
                self.pager.page_size()
            }

            /// Moves to the next newer page (`next()`); never fetches. Returns whether it moved.
            pub fn newer(&mut self) -> bool {
                self.pager.newer()
            }

            /// Whether older messages exist, loaded or on the server (`hasPrevious()`).
            pub fn has_older(&self) -> bool {
                self.pager.has_older()
            }

            /// Whether newer messages are loaded (`hasNext()`).
            pub fn has_newer(&self) -> bool {
                self.pager.has_newer()
            }
        }
    };
}

use chat_core::EngagementInfo;
use chat_core::wire::{EngagementStatus, Participant};

/// An engagement's status from what the session knows of it: TERMINATED once forgotten.
pub fn live_status(current: Option<&EngagementInfo>) -> EngagementStatus {
    current.map_or(EngagementStatus::Terminated, |i| i.status)
}

/// An engagement's participants while it lasts; ACS-314 once it is over.
pub fn live_participants(
    current: Option<EngagementInfo>,
) -> Result<Vec<Participant>, crate::Error> {
    match current {
        Some(i) if !is_over(i.status) => Ok(i.participants),
        _ => Err(chat_core::ChatError::EngagementNotFound.into()),
    }
}

/// Whether an engagement is over or ending.
pub fn is_over(status: EngagementStatus) -> bool {
    matches!(
        status,
        EngagementStatus::Terminated | EngagementStatus::Terminating
    )
}
