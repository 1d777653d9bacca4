//! [`MemoryStore`]: the store in memory, for tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use crate::{Claim, Clock, Lease, SessionStore, StoreError, SystemClock, check};

/// A [`SessionStore`] in memory: nothing survives the process. For tests of code that uses a
/// store, and as the reference the other backends' behaviour is tested against.
///
/// Clones are handles on one store, as two processes are on one database file. Leases are
/// measured by a [`Clock`]: the system's by default, a [`ManualClock`](crate::ManualClock) for
/// tests that make leases lapse without waiting.
///
/// ```
/// use std::time::Duration;
/// use chat_store::{ManualClock, MemoryStore, SessionStore};
///
/// let clock = ManualClock::new();
/// let store = MemoryStore::with_clock(clock.clone());
/// let ttl = Duration::from_secs(10);
/// store.claim("customer-42", "a", ttl).unwrap();
/// assert!(store.claim("customer-42", "b", ttl).is_err());
/// clock.advance(ttl);
/// assert!(store.claim("customer-42", "b", ttl).is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
}

#[derive(Debug, Default)]
struct State {
    /// The last epoch handed out, store-wide.
    epoch: u64,
    sessions: BTreeMap<String, Session>,
    /// Per key, per engagement, the highest message index recorded.
    positions: BTreeMap<String, BTreeMap<String, u64>>,
}

#[derive(Debug)]
struct Session {
    /// `None` once released.
    owner: Option<String>,
    epoch: u64,
    expires_at: SystemTime,
    record: Option<String>,
}

impl Session {
    fn held_by(&self, now: SystemTime) -> Option<&str> {
        self.owner.as_deref().filter(|_| self.expires_at > now)
    }

    fn is_current(&self, lease: &Lease) -> bool {
        self.epoch == lease.epoch && self.owner.as_deref() == Some(lease.owner.as_str())
    }
}

impl MemoryStore {
    /// An empty store on the system's clock.
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }

    /// An empty store on `clock`.
    pub fn with_clock(clock: impl Clock) -> Self {
        Self {
            state: Arc::default(),
            clock: Arc::new(clock),
        }
    }

    /// Records that the application took message `message_index` of chat `engagement` of
    /// session `key`: the memory counterpart of [`sqlite::record_position`](crate::sqlite::record_position).
    /// A lower index than the one recorded changes nothing.
    pub fn record_position(
        &self,
        key: &str,
        engagement: &str,
        message_index: u64,
    ) -> Result<(), StoreError> {
        check::name("key", key)?;
        check::name("engagement", engagement)?;
        check::message_index(message_index)?;
        let mut state = self.lock();
        let position = state
            .positions
            .entry(key.to_owned())
            .or_default()
            .entry(engagement.to_owned())
            .or_default();
        *position = (*position).max(message_index);
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change below is made whole under the lock, so a panic elsewhere leaves nothing
        // half done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `change` on the session `lease` holds, if it is the current one.
    fn with_current<T>(
        &self,
        lease: &Lease,
        change: impl FnOnce(&mut State, SystemTime) -> T,
    ) -> Result<T, StoreError> {
        let now = self.clock.now();
        let mut state = self.lock();
        match state.sessions.get(&lease.key) {
            Some(session) if session.is_current(lease) => Ok(change(&mut state, now)),
            _ => Err(StoreError::LeaseLost {
                key: lease.key.clone(),
            }),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionStore for MemoryStore {
    fn claim(&self, key: &str, owner: &str, ttl: Duration) -> Result<Claim, StoreError> {
        check::name("key", key)?;
        check::name("owner", owner)?;
        check::ttl_millis(ttl)?;
        let now = self.clock.now();
        let mut state = self.lock();
        let state = &mut *state;
        let holder = state.sessions.get(key).and_then(|s| s.held_by(now));
        if let Some(holder) = holder.filter(|h| *h != owner) {
            return Err(StoreError::Held {
                key: key.to_owned(),
                owner: holder.to_owned(),
            });
        }
        state.epoch += 1;
        let epoch = state.epoch;
        let session = state.sessions.entry(key.to_owned()).or_insert(Session {
            owner: None,
            epoch,
            expires_at: now,
            record: None,
        });
        session.owner = Some(owner.to_owned());
        session.epoch = epoch;
        session.expires_at = now.checked_add(ttl).unwrap_or(now);
        let positions = state
            .positions
            .get(key)
            .map(|p| p.iter().map(|(e, i)| (e.clone(), *i)).collect())
            .unwrap_or_default();
        Ok(Claim {
            lease: Lease {
                key: key.to_owned(),
                owner: owner.to_owned(),
                epoch,
            },
            record: session.record.clone(),
            positions,
        })
    }

    fn renew(&self, lease: &Lease, ttl: Duration) -> Result<(), StoreError> {
        check::ttl_millis(ttl)?;
        self.with_current(lease, |state, now| {
            if let Some(session) = state.sessions.get_mut(&lease.key) {
                session.expires_at = now.checked_add(ttl).unwrap_or(now);
            }
        })
    }

    fn save(&self, lease: &Lease, record: &str) -> Result<(), StoreError> {
        check::record(record)?;
        self.with_current(lease, |state, _| {
            if let Some(session) = state.sessions.get_mut(&lease.key) {
                session.record = Some(record.to_owned());
            }
        })
    }

    fn remove(&self, lease: &Lease) -> Result<(), StoreError> {
        self.with_current(lease, |state, _| {
            state.sessions.remove(&lease.key);
            state.positions.remove(&lease.key);
        })
    }

    fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        self.with_current(lease, |state, now| {
            if let Some(session) = state.sessions.get_mut(&lease.key) {
                session.owner = None;
                // The lapse is now, or earlier if the lease had lapsed already.
                session.expires_at = session.expires_at.min(now);
            }
        })
    }

    fn unclaimed(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let now = self.clock.now();
        let state = self.lock();
        let mut lapsed: Vec<(SystemTime, &String)> = state
            .sessions
            .iter()
            .filter(|(_, s)| s.held_by(now).is_none())
            .map(|(key, s)| (s.expires_at, key))
            .collect();
        lapsed.sort();
        Ok(lapsed
            .into_iter()
            .take(limit)
            .map(|(_, key)| key.clone())
            .collect())
    }

    fn peek(&self, key: &str) -> Result<Option<String>, StoreError> {
        check::name("key", key)?;
        Ok(self.lock().sessions.get(key).and_then(|s| s.record.clone()))
    }
}
