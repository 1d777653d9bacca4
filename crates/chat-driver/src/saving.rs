//! When a client with a store writes its session's snapshot: the sans-IO half of
//! [`Action::Save`](crate::Action::Save). The core says when the snapshot changed; the
//! driver adds the positions of what the application has taken, keeps one save in flight at
//! a time (the next one takes the latest snapshot, so bursts coalesce), and tries again
//! after a failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// A change of positions alone is saved at most this often: a crash then delivers again at
/// most this much of what the application had taken (and an application that records
/// positions in its own transaction loses nothing to it). Held sends are saved at once.
pub const POSITION_SAVE_DELAY: Duration = Duration::from_millis(500);
/// The wait before a failed save is tried again.
pub const SAVE_RETRY: Duration = Duration::from_secs(1);

/// Which snapshot a save wrote: hand it back to
/// [`Driver::handle_saved`](crate::Driver::handle_saved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveTicket {
    pub(crate) version: u64,
    pub(crate) taken: u64,
}

/// Why a save failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SaveError {
    /// Another process holds the session now (its lease passed on): this one must stop
    /// driving it at once, without telling the server.
    LeaseLost,
    /// The store could not write it (unreachable, full, …): tried again shortly, and the
    /// sends waiting for it wait on.
    Failed(Arc<dyn std::error::Error + Send + Sync>),
}

/// The save state of a client with a store.
#[derive(Debug, Default)]
pub(crate) struct Saving {
    /// The application's label for the customer, written into every snapshot.
    pub(crate) customer: Option<String>,
    /// Events with a position taken by the application so far.
    pub(crate) taken: u64,
    pub(crate) in_flight: Option<SaveTicket>,
    pub(crate) saved: Option<SaveTicket>,
    /// When the positions last changed without a save since.
    pub(crate) positions_since: Option<Instant>,
    /// Not before this, after a failure.
    pub(crate) retry_at: Option<Instant>,
    /// The store's lease on the session, if it has one.
    pub(crate) lease: Option<LeaseClock>,
    /// The application records the positions itself (the exactly-once recipe): the record
    /// keeps these, the ones it was restored with, and taking an event moves nothing.
    pub(crate) positions_by_app: Option<Vec<(chat_core::EngagementId, u64)>>,
}

/// When the lease on the session must be renewed, and until when this process may act on
/// it: a process that cannot renew stops sending before another may have taken over.
#[derive(Debug)]
pub(crate) struct LeaseClock {
    pub(crate) lease: chat_store::Lease,
    pub(crate) ttl: Duration,
    /// The lease holds until then for sure: the start of the last claim or renewal that
    /// succeeded, plus `ttl` (the store counts from when it answered, later).
    pub(crate) valid_until: Instant,
    /// A renewal in flight, started then.
    pub(crate) renewing: Option<Instant>,
    /// The next renewal is due then.
    pub(crate) next_renewal: Instant,
}

impl LeaseClock {
    /// A lease claimed at `since` for `ttl`.
    pub(crate) fn new(since: Instant, lease: chat_store::Lease, ttl: Duration) -> Self {
        Self {
            lease,
            ttl,
            valid_until: since + ttl,
            renewing: None,
            next_renewal: since + ttl / 3,
        }
    }
}

impl Saving {
    /// When the next save is due, given the core's snapshot `version` and the latest
    /// `now`: `now` when at once, `None` when nothing is to be saved or one is in flight.
    pub(crate) fn due(&self, now: Instant, version: u64) -> Option<Instant> {
        if self.in_flight.is_some() {
            return None;
        }
        let (saved_version, saved_taken) =
            self.saved.map_or((None, 0), |s| (Some(s.version), s.taken));
        let due = if saved_version != Some(version) {
            // What the core keeps changed (a held send among it, maybe): at once.
            now
        } else if self.taken != saved_taken {
            self.positions_since.unwrap_or(now) + POSITION_SAVE_DELAY
        } else {
            return None;
        };
        Some(self.retry_at.map_or(due, |retry| due.max(retry)))
    }
}
