//! SQLite: the exactly-once recipe's functions, for the application's own transactions on the
//! store's database file, and the `rusqlite` this crate uses.
//!
//! An application that stores the messages it takes in its own tables, in the same database
//! file as its [`SqliteStore`](crate::SqliteStore), records each message's position in the same
//! transaction as the message itself. The message and its position are then committed together
//! or not at all, and the next [`claim`](crate::SessionStore::claim) of the session returns the
//! position in [`Claim::positions`](crate::Claim::positions): a message is taken exactly once
//! across crashes and takeovers.
//!
//! ```
//! use std::time::Duration;
//! use chat_store::sqlite::{self, rusqlite};
//! use chat_store::{SessionStore, SqliteStore};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("app.db");
//! let store = SqliteStore::open(&path)?;
//! let claim = store.claim("customer-42", "gateway-a", Duration::from_secs(30))?;
//!
//! // The application's own connection (waiting its turn, as the store's do) and table.
//! let mut db = rusqlite::Connection::open(&path)?;
//! db.busy_timeout(Duration::from_secs(10))?;
//! db.execute_batch("CREATE TABLE inbox (engagement TEXT, idx INTEGER, text TEXT)")?;
//! let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
//! sqlite::fence(&tx, &claim.lease)?; // refuse if another process took the session over
//! tx.execute("INSERT INTO inbox VALUES ('chat-1', 7, 'hello')", [])?;
//! sqlite::record_position(&tx, "customer-42", "chat-1", 7)?;
//! tx.commit()?;
//!
//! store.release(&claim.lease)?;
//! let again = store.claim("customer-42", "gateway-b", Duration::from_secs(30))?;
//! assert_eq!(again.positions, vec![("chat-1".to_owned(), 7)]);
//! # Ok(())
//! # }
//! ```

pub(crate) mod store;

pub use rusqlite;

use crate::{Lease, StoreError, check};

/// Records, in the application's transaction `tx` on the store's database, that it took
/// message `message_index` of chat `engagement` of session `key`. Positions never go down: a
/// lower index than the one recorded changes nothing.
///
/// The write takes effect with `tx`'s commit. Call [`fence`] first in the same transaction so
/// that a process that lost the session cannot advance its positions.
pub fn record_position(
    tx: &rusqlite::Transaction<'_>,
    key: &str,
    engagement: &str,
    message_index: u64,
) -> Result<(), StoreError> {
    check::name("key", key)?;
    check::name("engagement", engagement)?;
    let index = check::message_index(message_index)?;
    tx.execute(
        store::RECORD_POSITION,
        rusqlite::params![key, engagement, index],
    )
    .map_err(store::error)?;
    Ok(())
}

/// Checks, in the application's transaction `tx`, that `lease` is still the session's current
/// one: [`StoreError::LeaseLost`] if not. A claim by another process cannot come between this
/// check and `tx`'s commit (SQLite runs one writer at a time; start `tx` as an
/// [`Immediate`](rusqlite::TransactionBehavior::Immediate) transaction so that it waits for its
/// turn rather than failing with a busy error at its first write).
pub fn fence(tx: &rusqlite::Transaction<'_>, lease: &Lease) -> Result<(), StoreError> {
    if store::is_current(tx, lease)? {
        Ok(())
    } else {
        Err(StoreError::LeaseLost {
            key: lease.key.clone(),
        })
    }
}
