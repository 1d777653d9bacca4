//! PostgreSQL (feature `postgres`): the exactly-once recipe's functions, for the application's
//! own transactions on the store's database, and the `postgres` client this crate uses.
//!
//! As with [`sqlite`](crate::sqlite): an application that stores the messages it takes in the
//! same database as its [`PostgresStore`](crate::PostgresStore) records each message's position
//! in the transaction that stores the message, and the next claim of the session returns it in
//! [`Claim::positions`](crate::Claim::positions). The store's tables are found by the
//! connection's `search_path`: the application's connection must see the same schema as the
//! store's.
//!
//! ```no_run
//! use chat_store::postgres::{self, postgres::{Client, NoTls}};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let lease = chat_store::Lease { key: "customer-42".into(), owner: "gw-a".into(), epoch: 1 };
//! let mut db = Client::connect("postgres://app@db.internal/chat", NoTls)?;
//! let mut tx = db.transaction()?;
//! postgres::fence(&mut tx, &lease)?; // refuse if another gateway took the session over
//! tx.execute("INSERT INTO inbox VALUES ('chat-1', 7, 'hello')", &[])?;
//! postgres::record_position(&mut tx, &lease.key, "chat-1", 7)?;
//! tx.commit()?;
//! # Ok(())
//! # }
//! ```

pub(crate) mod store;

pub use ::postgres;

use crate::{Lease, StoreError, check};

/// Records, in the application's transaction `tx` on the store's database, that it took
/// message `message_index` of chat `engagement` of session `key`. Positions never go down: a
/// lower index than the one recorded changes nothing.
///
/// The write takes effect with `tx`'s commit. Call [`fence`] first in the same transaction so
/// that a process that lost the session cannot advance its positions.
pub fn record_position(
    tx: &mut ::postgres::Transaction<'_>,
    key: &str,
    engagement: &str,
    message_index: u64,
) -> Result<(), StoreError> {
    check::name("key", key)?;
    check::name("engagement", engagement)?;
    let index = check::message_index(message_index)?;
    tx.execute(store::RECORD_POSITION, &[&key, &engagement, &index])
        .map_err(store::error)?;
    Ok(())
}

/// Checks, in the application's transaction `tx`, that `lease` is still the session's current
/// one: [`StoreError::LeaseLost`] if not. The check locks the session's row (`FOR SHARE`), so
/// that no claim can take the session over until `tx` ends.
pub fn fence(tx: &mut ::postgres::Transaction<'_>, lease: &Lease) -> Result<(), StoreError> {
    let current = match i64::try_from(lease.epoch) {
        Ok(epoch) => tx
            .query_opt(
                "SELECT 1 FROM chat_store_sessions
                 WHERE key = $1 AND epoch = $2 AND owner = $3 FOR SHARE",
                &[&lease.key, &epoch, &lease.owner],
            )
            .map_err(store::error)?
            .is_some(),
        Err(_) => false,
    };
    if current {
        Ok(())
    } else {
        Err(StoreError::LeaseLost {
            key: lease.key.clone(),
        })
    }
}
