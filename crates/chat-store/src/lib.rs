//! What an AXP Digital chat session must keep across processes (issue #15): crash-safe resume
//! on one machine, and failover across the machines of a fleet.
//!
//! A chat client saves one opaque record per session (JSON written by chat-core: this crate
//! never looks inside) under a key the application chooses, one per customer's session such as
//! `"customer-42"`. A process holds the session by a *lease* with a time to live, and every
//! claim gets a new, higher *epoch*: a process whose lease was taken over cannot save, renew or
//! remove any more (fencing), even if it does not know yet that it lost the session.
//!
//! * [`SessionStore`]: the trait the chat clients use: [`claim`](SessionStore::claim),
//!   [`renew`](SessionStore::renew), [`save`](SessionStore::save),
//!   [`remove`](SessionStore::remove), [`release`](SessionStore::release) and
//!   [`unclaimed`](SessionStore::unclaimed), the sessions a fleet's gateway picks up after a
//!   machine died.
//! * [`SqliteStore`]: the embedded default, one file that survives `kill -9` and power loss
//!   and that several processes of one machine may share.
//! * `PostgresStore` (feature `postgres`): a fleet's shared store, with leases by the server's
//!   clock.
//! * [`MemoryStore`]: for tests, with a [`ManualClock`] so that leases lapse when told.
//! * Exactly once: an application that stores the messages it takes in the same database
//!   advances the session's position in its own transaction with [`sqlite::record_position`]
//!   (or `postgres::record_position`); [`claim`](SessionStore::claim) returns those positions in
//!   [`Claim::positions`], so that a resumed session takes each message once.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use chat_store::{SessionStore, SqliteStore, StoreError};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(dir.path().join("sessions.db"))?;
//! let ttl = Duration::from_secs(30);
//!
//! // The first process takes the session: nothing stored yet.
//! let claim = store.claim("customer-42", "gateway-a", ttl)?;
//! assert_eq!(claim.record, None);
//! store.save(&claim.lease, r#"{"session":"..."}"#)?;
//!
//! // Another process is refused while the lease is live...
//! let refused = store.claim("customer-42", "gateway-b", ttl);
//! assert!(matches!(refused, Err(StoreError::Held { .. })));
//!
//! // ...and takes the session, record and all, once the first gives it up.
//! store.release(&claim.lease)?;
//! let taken = store.claim("customer-42", "gateway-b", ttl)?;
//! assert_eq!(taken.record.as_deref(), Some(r#"{"session":"..."}"#));
//! assert!(taken.lease.epoch > claim.lease.epoch);
//!
//! // The first lease is fenced off: it can no longer write.
//! let fenced = store.save(&claim.lease, "{}");
//! assert!(matches!(fenced, Err(StoreError::LeaseLost { .. })));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::time::Duration;

mod check;
mod clock;
mod error;
mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::StoreError;
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::store::PostgresStore;
pub use sqlite::store::SqliteStore;

/// The version of the schema this crate writes, in every backend's version table. A store
/// written with another version is refused with [`StoreError::Version`].
pub const SCHEMA_VERSION: i64 = 1;

/// The longest lease a claim or renewal may ask for (a year).
pub const MAX_TTL: Duration = Duration::from_secs(366 * 86_400);

/// The longest key, owner or engagement id, in bytes. (A key and an engagement id together
/// stay within what one entry of a PostgreSQL index holds, about 2.7 KB.)
pub const MAX_NAME_LEN: usize = 1024;

/// What a session must keep across processes, stored under a key the application chooses
/// (one per customer's session, e.g. "customer-42").
///
/// Every call is one transaction of the backend. Epochs come from one counter of the whole
/// store, so a claim's epoch is higher than that of every lease the store handed out before,
/// even of a session removed since.
pub trait SessionStore: Send + Sync + fmt::Debug + 'static {
    /// Takes the session `key` for `owner` for `ttl`: succeeds when no other owner holds a live
    /// lease (or `owner` itself holds it). Every successful claim gets a new, higher fencing
    /// `epoch`. Returns the lease and what is stored (None if nothing yet).
    ///
    /// Refused with [`StoreError::Held`] while another owner's lease is live. A claim by the
    /// owner that holds the lease fences that owner's earlier lease off too: a process that
    /// restarts under the same owner name takes over from its former self.
    fn claim(&self, key: &str, owner: &str, ttl: Duration) -> Result<Claim, StoreError>;

    /// Extends the lease by `ttl` from now; `StoreError::LeaseLost` if another claim happened
    /// since.
    ///
    /// A lease that lapsed but that nobody claimed since is still the current one, and renewing
    /// it holds the session again. A `ttl` of zero lets the lease lapse now.
    fn renew(&self, lease: &Lease, ttl: Duration) -> Result<(), StoreError>;

    /// Writes the record, atomically, only while `lease` is the current one (else LeaseLost:
    /// fencing). The record is opaque text; it must not contain a NUL character.
    fn save(&self, lease: &Lease, record: &str) -> Result<(), StoreError>;

    /// Removes the session (it ended), lease and all, with its recorded positions. LeaseLost if
    /// not the current lease.
    fn remove(&self, lease: &Lease) -> Result<(), StoreError>;

    /// Gives the lease up without removing anything, so that another process may claim at
    /// once. LeaseLost if not the current lease (a released lease is not current any more).
    fn release(&self, lease: &Lease) -> Result<(), StoreError>;

    /// Keys of stored sessions nobody holds (lease lapsed or released), at most `limit`, oldest
    /// lapse first: what a gateway of a fleet picks up after a machine died.
    ///
    /// A session claimed but never saved is listed too (its claim returns no record): the
    /// gateway that picks it up removes it.
    fn unclaimed(&self, limit: usize) -> Result<Vec<String>, StoreError>;

    /// What is stored for `key`, read without claiming it (`None` if nothing): for a gateway
    /// to learn whose session it is (the customer label in it) before it takes it over. Never
    /// act on it without a claim: another process may write it any moment.
    fn peek(&self, key: &str) -> Result<Option<String>, StoreError>;
}

/// What a successful [`SessionStore::claim`] gives: the lease, and what the session stored.
///
/// `Debug` shows the record's length, never its text: a record may hold a session's
/// credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Claim {
    /// The lease to save, renew, release or remove with.
    pub lease: Lease,
    /// The last record saved, or `None` if nothing was saved yet.
    pub record: Option<String>,
    /// Per chat (its engagement id), the highest message index the application recorded in its
    /// own transaction ([`sqlite::record_position`]), sorted by engagement id. The client takes,
    /// per chat, the higher of this and the record's own position.
    pub positions: Vec<(String, u64)>,
}

impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claim")
            .field("lease", &self.lease)
            .field(
                "record",
                &self.record.as_ref().map(|r| Redacted { bytes: r.len() }),
            )
            .field("positions", &self.positions)
            .finish()
    }
}

/// A record's stand-in in `Debug` output.
struct Redacted {
    bytes: usize,
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} bytes, redacted]", self.bytes)
    }
}

/// The right to write one session, from one claim until another claim (or a release or
/// removal) makes it stale.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The session's key.
    pub key: String,
    /// Who claimed it.
    pub owner: String,
    /// The claim's fencing epoch: higher than every epoch the store handed out before.
    pub epoch: u64,
}
