//! [`Clock`]: where the embedded stores read the time their leases are measured in.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// The time of day by which [`MemoryStore`](crate::MemoryStore) and
/// [`SqliteStore`](crate::SqliteStore) start and lapse leases.
///
/// Leases are measured by the wall clock, not by a monotonic one, because several processes on
/// one machine share an SQLite file and must agree on when a lease lapsed; a monotonic clock
/// means nothing across processes. (PostgreSQL leases use the server's clock instead.)
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock: the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that stands still until told to move: for tests, so that a lease lapses when the
/// test says so, without waiting. Clones share one time.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use chat_store::{Clock, ManualClock};
///
/// let clock = ManualClock::starting_at(SystemTime::UNIX_EPOCH);
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now(), SystemTime::UNIX_EPOCH + Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualClock {
    /// A clock standing at the system's time of now.
    pub fn new() -> Self {
        Self::starting_at(SystemTime::now())
    }

    /// A clock standing at `time`.
    pub fn starting_at(time: SystemTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(time)),
        }
    }

    /// Moves the clock forward by `by` (it stays where it is if that would overflow).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(later) = now.checked_add(by) {
            *now = later;
        }
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
