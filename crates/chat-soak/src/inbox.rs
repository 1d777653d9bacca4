//! The customer app's own table of the agent messages it took, in the same database as its
//! session store, written with the exactly-once recipe: in one transaction, the store's
//! fence (this process still holds the session), the message, and its position
//! (`record_position`), committed together or not at all. The next `connect` starts after
//! the position the app recorded, so that a message is in the table once whatever instant
//! the process dies at. The parent reads the table back at the end of the run.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chat_core::Message;
use chat_store::postgres::{self as pg, postgres};
use chat_store::sqlite::{self, rusqlite};
use chat_store::{Lease, StoreError};

/// Why the app's own table could not be written or read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InboxError {
    /// The session store's part of the recipe failed; `LeaseLost`: another process holds the
    /// session now, and this one must not take the message.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The app's own statements failed.
    #[error("the app's table: {0}")]
    Table(String),
}

fn table(e: impl std::fmt::Display) -> InboxError {
    InboxError::Table(e.to_string())
}

/// The app's own table: where it keeps the agent messages it took.
pub(crate) trait Inbox: Send + Sync {
    /// Takes agent message `number` of `customer` (the message `m` of session `key`, held
    /// under `lease`) exactly once: fence, insert, record the position, commit.
    fn take(
        &self,
        lease: &Lease,
        key: &str,
        customer: usize,
        m: &Message,
        number: u64,
    ) -> Result<(), InboxError>;

    /// How many agent messages of `customer` the table holds.
    fn count(&self, customer: usize) -> Result<u64, InboxError>;
}

/// How long the app's connection waits for SQLite's write lock (the store's connections
/// wait as long), so that a busy file makes it wait its turn rather than fail.
const SQLITE_BUSY: Duration = Duration::from_secs(30);

const SQLITE_TABLE: &str = "CREATE TABLE IF NOT EXISTS soak_inbox (
    customer INTEGER NOT NULL,
    engagement TEXT NOT NULL,
    message_index INTEGER NOT NULL,
    number INTEGER NOT NULL
)";

/// The table in the SQLite file of the `SqliteStore`.
pub(crate) struct SqliteInbox {
    db: Mutex<rusqlite::Connection>,
}

impl SqliteInbox {
    /// Opens the app's own connection on the store's file, and its table.
    pub(crate) fn open(path: &Path) -> Result<Self, InboxError> {
        let db = rusqlite::Connection::open(path).map_err(table)?;
        db.busy_timeout(SQLITE_BUSY).map_err(table)?;
        db.execute_batch(SQLITE_TABLE).map_err(table)?;
        Ok(Self { db: Mutex::new(db) })
    }

    /// The agent numbers of `customer` in the order the app took them.
    pub(crate) fn numbers(path: &Path, customer: usize) -> Result<Vec<u64>, InboxError> {
        let db = rusqlite::Connection::open(path).map_err(table)?;
        db.busy_timeout(SQLITE_BUSY).map_err(table)?;
        db.execute_batch(SQLITE_TABLE).map_err(table)?;
        let mut query = db
            .prepare("SELECT number FROM soak_inbox WHERE customer = ?1 ORDER BY rowid")
            .map_err(table)?;
        let rows = query
            .query_map([customer as i64], |r| r.get::<_, i64>(0))
            .map_err(table)?;
        rows.map(|r| r.map(|n| n as u64).map_err(table)).collect()
    }
}

impl Inbox for SqliteInbox {
    fn take(
        &self,
        lease: &Lease,
        key: &str,
        customer: usize,
        m: &Message,
        number: u64,
    ) -> Result<(), InboxError> {
        let mut db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        // Immediate: it waits for the write lock now, not at its first write.
        let tx = db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(table)?;
        sqlite::fence(&tx, lease)?;
        tx.execute(
            "INSERT INTO soak_inbox (customer, engagement, message_index, number)
             VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                customer as i64,
                m.engagement_id.as_str(),
                m.message_index as i64,
                number as i64
            ],
        )
        .map_err(table)?;
        sqlite::record_position(&tx, key, m.engagement_id.as_str(), m.message_index)?;
        tx.commit().map_err(table)
    }

    fn count(&self, customer: usize) -> Result<u64, InboxError> {
        let db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        let n: i64 = db
            .query_row(
                "SELECT count(*) FROM soak_inbox WHERE customer = ?1",
                [customer as i64],
                |r| r.get(0),
            )
            .map_err(table)?;
        Ok(n as u64)
    }
}

const POSTGRES_TABLE: &str = "CREATE TABLE IF NOT EXISTS soak_inbox (
    seq BIGSERIAL PRIMARY KEY,
    customer BIGINT NOT NULL,
    engagement TEXT NOT NULL,
    message_index BIGINT NOT NULL,
    number BIGINT NOT NULL
)";

/// The table in the PostgreSQL database (and schema) of the `PostgresStore`.
pub(crate) struct PostgresInbox {
    /// `None` only while it is dropped.
    db: Mutex<Option<postgres::Client>>,
}

impl PostgresInbox {
    /// Connects the app's own connection (the URL's `search_path` must be the store's) and
    /// creates its table if needed.
    pub(crate) fn connect(url: &str) -> Result<Self, InboxError> {
        let mut db = postgres::Client::connect(url, postgres::NoTls).map_err(table)?;
        create_postgres_table(&mut db)?;
        Ok(Self {
            db: Mutex::new(Some(db)),
        })
    }

    /// The agent numbers of `customer` in the order the apps took them.
    pub(crate) fn numbers(url: &str, customer: usize) -> Result<Vec<u64>, InboxError> {
        let mut db = postgres::Client::connect(url, postgres::NoTls).map_err(table)?;
        create_postgres_table(&mut db)?;
        let rows = db
            .query(
                "SELECT number FROM soak_inbox WHERE customer = $1 ORDER BY seq",
                &[&(customer as i64)],
            )
            .map_err(table)?;
        Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect())
    }
}

impl Drop for PostgresInbox {
    /// Closes the connection on a thread of its own, as `PostgresStore` does: the
    /// synchronous client's close panics on an async runtime's thread, where a gateway's
    /// customer task ends.
    fn drop(&mut self) {
        if let Some(db) = self
            .db
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = std::thread::Builder::new()
                .name("soak-inbox-close".to_owned())
                .spawn(move || drop(db));
        }
    }
}

fn create_postgres_table(db: &mut postgres::Client) -> Result<(), InboxError> {
    // Several gateways start at once: the first creates the table, the others wait for it
    // (an advisory lock of the transaction; CREATE … IF NOT EXISTS alone races).
    let mut tx = db.transaction().map_err(table)?;
    tx.batch_execute("SELECT pg_advisory_xact_lock(7335)")
        .map_err(table)?;
    tx.batch_execute(POSTGRES_TABLE).map_err(table)?;
    tx.commit().map_err(table)
}

impl Inbox for PostgresInbox {
    fn take(
        &self,
        lease: &Lease,
        key: &str,
        customer: usize,
        m: &Message,
        number: u64,
    ) -> Result<(), InboxError> {
        let mut guard = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        let db = guard.as_mut().ok_or_else(|| table("closed"))?;
        let mut tx = db.transaction().map_err(table)?;
        pg::fence(&mut tx, lease)?;
        tx.execute(
            "INSERT INTO soak_inbox (customer, engagement, message_index, number)
             VALUES ($1, $2, $3, $4)",
            &[
                &(customer as i64),
                &m.engagement_id.as_str(),
                &(m.message_index as i64),
                &(number as i64),
            ],
        )
        .map_err(table)?;
        pg::record_position(&mut tx, key, m.engagement_id.as_str(), m.message_index)?;
        tx.commit().map_err(table)
    }

    fn count(&self, customer: usize) -> Result<u64, InboxError> {
        let mut guard = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        let db = guard.as_mut().ok_or_else(|| table("closed"))?;
        let row = db
            .query_one(
                "SELECT count(*) FROM soak_inbox WHERE customer = $1",
                &[&(customer as i64)],
            )
            .map_err(table)?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}
