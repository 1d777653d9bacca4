//! [`SqliteStore`]: the embedded store, one SQLite file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use crate::{Claim, Clock, Lease, SCHEMA_VERSION, SessionStore, StoreError, SystemClock, check};

/// How long a call waits for another process's transaction on the same file before it fails
/// with [`StoreError::Unreachable`]. Every transaction of the store is a few statements, so a
/// wait this long means a stuck process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The schema of [`SCHEMA_VERSION`] 1. The tables are prefixed so that they can live beside
/// the application's own (the exactly-once recipe). STRICT tables refuse a value of the wrong
/// type, so that a row can only be unreadable through damage from outside.
const SCHEMA: &str = "
    CREATE TABLE chat_store_version (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    ) STRICT;
    -- The last epoch handed out: one counter for the store, so that an epoch is never handed
    -- out twice, even for a key removed and claimed again.
    CREATE TABLE chat_store_epoch (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last INTEGER NOT NULL
    ) STRICT;
    INSERT INTO chat_store_epoch (id, last) VALUES (1, 0);
    CREATE TABLE chat_store_sessions (
        key TEXT PRIMARY KEY NOT NULL,
        owner TEXT,                    -- NULL once released
        epoch INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,   -- ms since the Unix epoch, by the processes' clocks
        record TEXT
    ) STRICT;
    CREATE INDEX chat_store_sessions_lapse ON chat_store_sessions (expires_ms);
    CREATE TABLE chat_store_positions (
        key TEXT NOT NULL,
        engagement TEXT NOT NULL,
        message_index INTEGER NOT NULL,
        PRIMARY KEY (key, engagement)
    ) STRICT, WITHOUT ROWID;
";

pub(crate) const RECORD_POSITION: &str = "
    INSERT INTO chat_store_positions (key, engagement, message_index) VALUES (?1, ?2, ?3)
    ON CONFLICT (key, engagement)
    DO UPDATE SET message_index = max(message_index, excluded.message_index)";

/// A [`SessionStore`] in one SQLite file: the embedded default.
///
/// * Durable: write-ahead logging with `synchronous=FULL`, so that a call that returned has
///   reached the disk and survives `kill -9` and power loss.
/// * Atomic: every call is one transaction; a process killed in the middle of a
///   [`save`](SessionStore::save) leaves the old record or the new one, never a torn one.
/// * Shared: several processes (or several stores in one process) may open the same file; they
///   take turns, each waiting up to 10 s for the others, and they are one store. Leases are
///   measured by the wall clock, which all processes of one machine share; a clock set back
///   makes leases last longer.
///
/// A store is one connection, used by one call at a time; open one store per thread for calls
/// in parallel. The file is created with its schema if it does not exist; one written by
/// another version of this crate is refused with [`StoreError::Version`].
pub struct SqliteStore {
    connection: Mutex<Connection>,
    path: PathBuf,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the store in the file at `path`, creating it if needed, with leases by the system
    /// clock.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with_clock(path, SystemClock)
    }

    /// Opens the store with leases measured by `clock` (for tests, a
    /// [`ManualClock`](crate::ManualClock)). Every store on one file must use the same clock.
    pub fn open_with_clock(path: impl AsRef<Path>, clock: impl Clock) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut connection = Connection::open(&path).map_err(error)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(error)?;
        // Write-ahead logging: a commit appends to the log, so that readers and the writer do
        // not block each other and an interrupted write leaves the last committed state.
        let mode: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unreachable {
                detail: format!(
                    "{} cannot use write-ahead logging (journal mode {mode})",
                    path.display()
                ),
            });
        }
        // FULL, not WAL mode's usual NORMAL: NORMAL syncs the log only at checkpoints, so a
        // power loss could undo a save that had returned, and a session resumed from the
        // record before it would repeat or lose messages. A save is small; its fsync is cheap
        // beside a chat's network round trips.
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(error)?;
        initialise(&mut connection)?;
        Ok(Self {
            connection: Mutex::new(connection),
            path,
            clock: Arc::new(clock),
        })
    }

    /// The file the store is in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` in one transaction that holds the write lock from its start (so that it
    /// never has to upgrade a read lock, which fails at once when another process wrote),
    /// committing it if `work` succeeds. `work` gets the time of day, read once the lock is
    /// held.
    fn transaction<T>(
        &self,
        work: impl FnOnce(&Connection, i64) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut connection = self.lock();
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(error)?;
        let now = millis(self.clock.now());
        let value = work(&tx, now)?;
        tx.commit().map_err(error)?;
        Ok(value)
    }

    /// Runs `work` on the current lease's row: LeaseLost if no row changed.
    fn change(
        &self,
        lease: &Lease,
        sql: &str,
        value: impl FnOnce(i64) -> rusqlite::types::Value,
    ) -> Result<(), StoreError> {
        let Ok(epoch) = i64::try_from(lease.epoch) else {
            return Err(lost(lease));
        };
        self.transaction(|tx, now| {
            let changed = tx
                .execute(sql, params![lease.key, epoch, lease.owner, value(now)])
                .map_err(error)?;
            if changed == 0 {
                return Err(lost(lease));
            }
            Ok(())
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A transaction left open by a panic rolls back when it is dropped: the connection is
        // fine to use after one.
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl SessionStore for SqliteStore {
    fn claim(&self, key: &str, owner: &str, ttl: Duration) -> Result<Claim, StoreError> {
        check::name("key", key)?;
        check::name("owner", owner)?;
        let ttl = check::ttl_millis(ttl)?;
        self.transaction(|tx, now| {
            let row = tx
                .query_row(
                    "SELECT owner, expires_ms, record FROM chat_store_sessions WHERE key = ?1",
                    [key],
                    |row| {
                        Ok((
                            row.get::<_, Option<String>>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, Option<String>>(2)?,
                        ))
                    },
                )
                .optional()
                .map_err(unreadable(key))?;
            let record = match row {
                Some((Some(holder), expires, _)) if expires > now && holder != owner => {
                    return Err(StoreError::Held {
                        key: key.to_owned(),
                        owner: holder,
                    });
                }
                Some((_, _, record)) => record,
                None => None,
            };
            let epoch: i64 = tx
                .query_row(
                    "UPDATE chat_store_epoch SET last = last + 1 WHERE id = 1 RETURNING last",
                    [],
                    |row| row.get(0),
                )
                .map_err(error)?;
            tx.execute(
                "INSERT INTO chat_store_sessions (key, owner, epoch, expires_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET
                     owner = excluded.owner, epoch = excluded.epoch,
                     expires_ms = excluded.expires_ms",
                params![key, owner, epoch, now.saturating_add(ttl)],
            )
            .map_err(error)?;
            let positions = positions(tx, key)?;
            Ok(Claim {
                lease: Lease {
                    key: key.to_owned(),
                    owner: owner.to_owned(),
                    epoch: check::stored_u64(key, "epoch", epoch)?,
                },
                record,
                positions,
            })
        })
    }

    fn renew(&self, lease: &Lease, ttl: Duration) -> Result<(), StoreError> {
        let ttl = check::ttl_millis(ttl)?;
        self.change(
            lease,
            "UPDATE chat_store_sessions SET expires_ms = ?4
             WHERE key = ?1 AND epoch = ?2 AND owner = ?3",
            |now| now.saturating_add(ttl).into(),
        )
    }

    fn save(&self, lease: &Lease, record: &str) -> Result<(), StoreError> {
        check::record(record)?;
        self.change(
            lease,
            "UPDATE chat_store_sessions SET record = ?4
             WHERE key = ?1 AND epoch = ?2 AND owner = ?3",
            |_| record.to_owned().into(),
        )
    }

    fn remove(&self, lease: &Lease) -> Result<(), StoreError> {
        let Ok(epoch) = i64::try_from(lease.epoch) else {
            return Err(lost(lease));
        };
        self.transaction(|tx, _| {
            let removed = tx
                .execute(
                    "DELETE FROM chat_store_sessions WHERE key = ?1 AND epoch = ?2 AND owner = ?3",
                    params![lease.key, epoch, lease.owner],
                )
                .map_err(error)?;
            if removed == 0 {
                return Err(lost(lease));
            }
            tx.execute(
                "DELETE FROM chat_store_positions WHERE key = ?1",
                [&lease.key],
            )
            .map_err(error)?;
            Ok(())
        })
    }

    fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        // The lapse is now, or earlier if the lease had lapsed already: `unclaimed` lists
        // sessions by it.
        self.change(
            lease,
            "UPDATE chat_store_sessions SET owner = NULL, expires_ms = min(expires_ms, ?4)
             WHERE key = ?1 AND epoch = ?2 AND owner = ?3",
            rusqlite::types::Value::from,
        )
    }

    fn unclaimed(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.transaction(|tx, now| {
            let mut select = tx
                .prepare(
                    "SELECT key FROM chat_store_sessions
                     WHERE owner IS NULL OR expires_ms <= ?1
                     ORDER BY expires_ms, key LIMIT ?2",
                )
                .map_err(error)?;
            let keys = select
                .query_map(params![now, limit], |row| row.get::<_, String>(0))
                .map_err(error)?;
            keys.collect::<Result<Vec<_>, _>>()
                .map_err(unreadable("(a key that is not UTF-8)"))
        })
    }

    fn peek(&self, key: &str) -> Result<Option<String>, StoreError> {
        check::name("key", key)?;
        self.transaction(|tx, _| {
            let record = tx
                .query_row(
                    "SELECT record FROM chat_store_sessions WHERE key = ?1",
                    params![key],
                    |row| row.get::<_, Option<String>>(0),
                )
                .optional()
                .map_err(unreadable(key))?;
            Ok(record.flatten())
        })
    }
}

/// Creates the schema in a fresh database, or checks the version of an existing one.
fn initialise(connection: &mut Connection) -> Result<(), StoreError> {
    // Immediate: two processes opening a fresh file at once take turns, and the second sees
    // the first one's schema.
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(error)?;
    let exists: bool = tx
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'chat_store_version'",
            [],
            |row| row.get(0),
        )
        .map_err(error)?;
    if !exists {
        tx.execute_batch(SCHEMA).map_err(error)?;
        tx.execute(
            "INSERT INTO chat_store_version (id, version) VALUES (1, ?1)",
            [SCHEMA_VERSION],
        )
        .map_err(error)?;
        return tx.commit().map_err(error);
    }
    let found: Option<i64> = tx
        .query_row("SELECT version FROM chat_store_version", [], |row| {
            row.get(0)
        })
        .optional()
        .map_err(|e| StoreError::Damaged {
            detail: format!("its schema version cannot be read: {e}"),
        })?;
    match found {
        Some(SCHEMA_VERSION) => Ok(()),
        Some(found) => Err(StoreError::Version {
            found,
            supported: SCHEMA_VERSION,
        }),
        None => Err(StoreError::Damaged {
            detail: "its schema version table is empty".to_owned(),
        }),
    }
}

/// Whether `lease` is its session's current one.
pub(crate) fn is_current(connection: &Connection, lease: &Lease) -> Result<bool, StoreError> {
    let Ok(epoch) = i64::try_from(lease.epoch) else {
        return Ok(false);
    };
    connection
        .query_row(
            "SELECT count(*) > 0 FROM chat_store_sessions WHERE key = ?1 AND epoch = ?2 AND owner = ?3",
            params![lease.key, epoch, lease.owner],
            |row| row.get(0),
        )
        .map_err(error)
}

fn positions(connection: &Connection, key: &str) -> Result<Vec<(String, u64)>, StoreError> {
    let mut select = connection
        .prepare(
            "SELECT engagement, message_index FROM chat_store_positions
             WHERE key = ?1 ORDER BY engagement",
        )
        .map_err(error)?;
    let rows = select
        .query_map([key], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })
        .map_err(error)?;
    let mut positions = Vec::new();
    for row in rows {
        let (engagement, index) = row.map_err(unreadable(key))?;
        positions.push((engagement, check::stored_u64(key, "message index", index)?));
    }
    Ok(positions)
}

fn lost(lease: &Lease) -> StoreError {
    StoreError::LeaseLost {
        key: lease.key.clone(),
    }
}

/// Milliseconds since the Unix epoch (0 for a time before it).
fn millis(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Maps an error reading `key`'s row: a value that does not convert is a corrupt row.
fn unreadable(key: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| match e {
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::Utf8Error(..) => StoreError::Corrupt {
            key: key.to_owned(),
            detail: e.to_string(),
        },
        other => error(other),
    }
}

/// Maps an SQLite error: what a retry or an operator can fix (locks, I/O, permissions, a full
/// disk) is unreachable; a damaged file is damaged; anything else means the file's tables are
/// not what this crate wrote.
pub(crate) fn error(e: rusqlite::Error) -> StoreError {
    let code = match &e {
        rusqlite::Error::SqliteFailure(failure, _) => Some(failure.code),
        _ => None,
    };
    match code {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Unreachable {
            detail: format!(
                "the database stayed locked by another connection for {} s ({e})",
                BUSY_TIMEOUT.as_secs()
            ),
        },
        Some(
            ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::PermissionDenied
            | ErrorCode::ReadOnly
            | ErrorCode::OutOfMemory
            | ErrorCode::FileLockingProtocolFailed,
        ) => StoreError::Unreachable {
            detail: e.to_string(),
        },
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Damaged {
            detail: e.to_string(),
        },
        _ => StoreError::Database {
            detail: e.to_string(),
        },
    }
}
