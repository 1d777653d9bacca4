//! [`PostgresStore`]: a fleet's store, in one PostgreSQL database.

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use postgres::config::Host;
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Transaction};

use crate::{Claim, Lease, SCHEMA_VERSION, SessionStore, StoreError, check};

/// How long a connection attempt may take when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Any number, the same in every process: the lock that makes two processes initialising a
/// fresh database take turns.
const INIT_LOCK: i64 = 0x6178_705f_7374_6f72; // "axp_stor"

/// The schema of [`SCHEMA_VERSION`] 1, created in the connection's current schema (the first
/// of its `search_path`). The tables are prefixed so that they can live beside the
/// application's own (the exactly-once recipe).
const SCHEMA: &str = "
    CREATE TABLE chat_store_version (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version BIGINT NOT NULL
    );
    -- One counter for the store, so that an epoch is never handed out twice, even for a key
    -- removed and claimed again. NO CYCLE, and CACHE 1 (the default): every claim's value is
    -- higher than all values taken before it, whichever connection took them.
    CREATE SEQUENCE chat_store_epoch NO CYCLE CACHE 1;
    CREATE TABLE chat_store_sessions (
        key TEXT PRIMARY KEY,
        owner TEXT,                    -- NULL once released
        epoch BIGINT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL, -- by the server's clock
        record TEXT
    );
    CREATE INDEX chat_store_sessions_lapse ON chat_store_sessions (expires_at);
    CREATE TABLE chat_store_positions (
        key TEXT NOT NULL,
        engagement TEXT NOT NULL,
        message_index BIGINT NOT NULL,
        PRIMARY KEY (key, engagement)
    );
";

pub(crate) const RECORD_POSITION: &str = "
    INSERT INTO chat_store_positions (key, engagement, message_index) VALUES ($1, $2, $3)
    ON CONFLICT (key, engagement) DO UPDATE
    SET message_index = GREATEST(chat_store_positions.message_index, EXCLUDED.message_index)";

/// A [`SessionStore`] in a PostgreSQL database, shared by the gateways of a fleet.
///
/// * Leases by the server's clock (`now()`), so that the machines' clocks need not agree.
/// * Fencing in the database: every write is `UPDATE … WHERE key = $1 AND epoch = $2`, so a
///   process that lost its lease cannot write, whatever it believes.
/// * Claims race-free between processes: a claim locks the session's row (`SELECT … FOR
///   UPDATE`) before it decides.
/// * One connection, used by one call at a time; connect one store per thread for calls in
///   parallel. A broken connection is replaced once per call: a call that fails again is
///   [`StoreError::Unreachable`]. A connection that breaks while a change commits is not
///   retried (the change may have been made): the call is `Unreachable` and says so.
/// * No TLS yet: the connection is plain TCP (or a Unix socket), for a database on the same
///   machine or a trusted network; a URL with `sslmode=require` is refused rather than sent in
///   the clear.
///
/// The tables are created in the connection's current schema (the first of its `search_path`;
/// pick one with `options=-csearch_path%3Dname` in the URL) if they are not there; tables
/// written by another version of this crate are refused with [`StoreError::Version`].
///
/// `Debug` and every error show the server's address, database and user, never the password.
pub struct PostgresStore {
    config: Config,
    /// Where it connects, for messages: host, port, database and user, no password.
    target: String,
    client: Mutex<Option<Client>>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    /// Closes the connection on a thread of its own: the synchronous client's close runs a
    /// runtime of its own, which panics on a thread that drives an async runtime ("Cannot
    /// start a runtime from within a runtime"), and an async chat client may drop the last
    /// handle on its store there (its task ends on a runtime's thread).
    fn drop(&mut self) {
        let client = self
            .client
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(client) = client {
            // (Should no thread start, the connection is closed here, as before.)
            let _ = std::thread::Builder::new()
                .name("chat-store-close".to_owned())
                .spawn(move || drop(client));
        }
    }
}

/// Why one attempt of a call failed: the store's answer, or the database's error (which may be
/// the connection's, and worth one more attempt on a new connection).
enum Failure {
    Store(StoreError),
    Db(postgres::Error),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Self {
        Failure::Db(e)
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, or
    /// the `key=value` form), creating the store's tables if they are not there.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        // The parser's message may quote the URL, password and all: it is not passed on.
        let mut config: Config = url.parse().map_err(|_| StoreError::Invalid {
            what: "PostgreSQL URL",
            reason: "cannot be read (it is not shown here: it may hold a password)".to_owned(),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        // So that a database's administrator sees whose connections these are.
        if config.get_application_name().is_none() {
            config.application_name("chat-store");
        }
        let store = Self {
            target: target(&config),
            config,
            client: Mutex::new(None),
        };
        let client = store.open()?;
        *store.lock() = Some(client);
        Ok(store)
    }

    /// A new connection, with the schema created or checked.
    fn open(&self) -> Result<Client, StoreError> {
        let mut client = self
            .config
            .connect(NoTls)
            .map_err(|e| StoreError::Unreachable {
                detail: format!(
                    "cannot connect to PostgreSQL at {}: {}",
                    self.target,
                    describe(&e)
                ),
            })?;
        initialise(&mut client).map_err(|failure| match failure {
            Failure::Store(e) => e,
            Failure::Db(e) => error(e),
        })?;
        Ok(client)
    }

    /// Runs `work` in one transaction and commits it, on the connection or, if that one is
    /// broken, on a new one (once).
    fn run<T>(
        &self,
        mut work: impl FnMut(&mut Transaction<'_>) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let mut slot = self.lock();
        let mut retried = false;
        loop {
            let client = match slot.take() {
                Some(client) if !client.is_closed() => slot.insert(client),
                _ => slot.insert(self.open()?),
            };
            let (e, committing) = match attempt(client, &mut work) {
                Ok(value) => return Ok(value),
                Err(Step::Final(e)) => return Err(e),
                Err(Step::Broken { error, committing }) => (error, committing),
            };
            *slot = None;
            if committing {
                return Err(StoreError::Unreachable {
                    detail: format!(
                        "the connection to {} broke while a change was committed: it may or \
                         may not have been made ({})",
                        self.target,
                        describe(&e)
                    ),
                });
            }
            if retried {
                return Err(StoreError::Unreachable {
                    detail: format!(
                        "the connection to {} broke, and again on a new connection ({})",
                        self.target,
                        describe(&e)
                    ),
                });
            }
            retried = true;
        }
    }

    /// Runs `sql` on the current lease's row, with the lease as `$1` (key), `$2` (epoch) and
    /// `$3` (owner) and `extra` from `$4` on: LeaseLost if no row changed.
    fn change(
        &self,
        lease: &Lease,
        sql: &str,
        extra: &[&(dyn ToSql + Sync)],
    ) -> Result<(), StoreError> {
        let Ok(epoch) = i64::try_from(lease.epoch) else {
            return Err(lost(lease));
        };
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&lease.key, &epoch, &lease.owner];
        params.extend_from_slice(extra);
        self.run(|tx| {
            let changed = tx.execute(sql, &params)?;
            if changed == 0 {
                return Err(lost(lease).into());
            }
            Ok(())
        })
    }

    fn lock(&self) -> MutexGuard<'_, Option<Client>> {
        // A transaction left open by a panic rolls back when it is dropped: the connection is
        // fine to use after one.
        self.client.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SessionStore for PostgresStore {
    fn claim(&self, key: &str, owner: &str, ttl: Duration) -> Result<Claim, StoreError> {
        check::name("key", key)?;
        check::name("owner", owner)?;
        let ttl = check::ttl_millis(ttl)?;
        self.run(|tx| {
            let (epoch, record) = claim_row(tx, key, owner, ttl)?;
            let mut positions = Vec::new();
            for row in tx.query(
                "SELECT engagement, message_index FROM chat_store_positions
                 WHERE key = $1 ORDER BY engagement",
                &[&key],
            )? {
                let engagement: String = row.try_get(0).map_err(|e| corrupt(key, &e))?;
                let index: i64 = row.try_get(1).map_err(|e| corrupt(key, &e))?;
                positions.push((engagement, check::stored_u64(key, "message index", index)?));
            }
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
            "UPDATE chat_store_sessions
             SET expires_at = now() + $4::bigint * interval '1 millisecond'
             WHERE key = $1 AND epoch = $2 AND owner = $3",
            &[&ttl],
        )
    }

    fn save(&self, lease: &Lease, record: &str) -> Result<(), StoreError> {
        check::record(record)?;
        self.change(
            lease,
            "UPDATE chat_store_sessions SET record = $4
             WHERE key = $1 AND epoch = $2 AND owner = $3",
            &[&record],
        )
    }

    fn remove(&self, lease: &Lease) -> Result<(), StoreError> {
        let Ok(epoch) = i64::try_from(lease.epoch) else {
            return Err(lost(lease));
        };
        self.run(|tx| {
            let removed = tx.execute(
                "DELETE FROM chat_store_sessions WHERE key = $1 AND epoch = $2 AND owner = $3",
                &[&lease.key, &epoch, &lease.owner],
            )?;
            if removed == 0 {
                return Err(lost(lease).into());
            }
            tx.execute(
                "DELETE FROM chat_store_positions WHERE key = $1",
                &[&lease.key],
            )?;
            Ok(())
        })
    }

    fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        // The lapse is now, or earlier if the lease had lapsed already: `unclaimed` lists
        // sessions by it.
        self.change(
            lease,
            "UPDATE chat_store_sessions SET owner = NULL, expires_at = LEAST(expires_at, now())
             WHERE key = $1 AND epoch = $2 AND owner = $3",
            &[],
        )
    }

    fn unclaimed(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(|tx| {
            let mut keys = Vec::new();
            for row in tx.query(
                "SELECT key FROM chat_store_sessions WHERE owner IS NULL OR expires_at <= now()
                 ORDER BY expires_at, key LIMIT $1",
                &[&limit],
            )? {
                keys.push(row.try_get(0).map_err(|e| corrupt("(a key)", &e))?);
            }
            Ok(keys)
        })
    }

    fn peek(&self, key: &str) -> Result<Option<String>, StoreError> {
        check::name("key", key)?;
        self.run(|tx| {
            let row = tx.query_opt(
                "SELECT record FROM chat_store_sessions WHERE key = $1",
                &[&key],
            )?;
            let Some(row) = row else {
                return Ok(None);
            };
            let record: Option<String> = row.try_get(0).map_err(|e| corrupt(key, &e))?;
            Ok(record)
        })
    }
}

/// How one attempt of a call ended, if not well.
enum Step {
    /// The call's answer.
    Final(StoreError),
    /// The connection broke, while the transaction was at work or `committing`.
    Broken {
        error: postgres::Error,
        committing: bool,
    },
}

/// One attempt: `work` in a transaction on `client`, committed.
fn attempt<T>(
    client: &mut Client,
    work: &mut impl FnMut(&mut Transaction<'_>) -> Result<T, Failure>,
) -> Result<T, Step> {
    let failed = |failure: Failure| match failure {
        Failure::Store(e) => Step::Final(e),
        Failure::Db(e) if is_connection(&e) => Step::Broken {
            error: e,
            committing: false,
        },
        Failure::Db(e) => Step::Final(error(e)),
    };
    let mut tx = client.transaction().map_err(|e| failed(e.into()))?;
    let value = work(&mut tx).map_err(failed)?;
    match tx.commit() {
        Ok(()) => Ok(value),
        Err(e) if is_connection(&e) => Err(Step::Broken {
            error: e,
            committing: true,
        }),
        Err(e) => Err(Step::Final(error(e))),
    }
}

/// Takes the row of `key` for `owner` in `tx`: the new epoch and the stored record.
fn claim_row(
    tx: &mut Transaction<'_>,
    key: &str,
    owner: &str,
    ttl: i64,
) -> Result<(i64, Option<String>), Failure> {
    // Two rounds at most: a row inserted by a concurrent claim between the SELECT and the
    // INSERT is locked and read in the second round.
    for _ in 0..2 {
        // FOR UPDATE: a concurrent claim waits here until this transaction ends, then reads
        // the row as this one left it. The new epoch is taken after the lock, so it is higher
        // than the one in the row.
        let row = tx.query_opt(
            "SELECT owner, expires_at > now(), record FROM chat_store_sessions
             WHERE key = $1 FOR UPDATE",
            &[&key],
        )?;
        if let Some(row) = row {
            let holder: Option<String> = row.try_get(0).map_err(|e| corrupt(key, &e))?;
            let live: bool = row.try_get(1).map_err(|e| corrupt(key, &e))?;
            let record: Option<String> = row.try_get(2).map_err(|e| corrupt(key, &e))?;
            if let Some(holder) = holder.filter(|h| live && h != owner) {
                return Err(StoreError::Held {
                    key: key.to_owned(),
                    owner: holder,
                }
                .into());
            }
            let row = tx.query_one(
                "UPDATE chat_store_sessions
                 SET owner = $2, epoch = nextval('chat_store_epoch'),
                     expires_at = now() + $3::bigint * interval '1 millisecond'
                 WHERE key = $1 RETURNING epoch",
                &[&key, &owner, &ttl],
            )?;
            let epoch: i64 = row.try_get(0).map_err(|e| corrupt(key, &e))?;
            return Ok((epoch, record));
        }
        // No row: insert one, unless a concurrent claim did first (DO NOTHING waits for that
        // claim's transaction, and the next round locks its row).
        let inserted = tx.query_opt(
            "INSERT INTO chat_store_sessions (key, owner, epoch, expires_at)
             VALUES ($1, $2, nextval('chat_store_epoch'),
                     now() + $3::bigint * interval '1 millisecond')
             ON CONFLICT (key) DO NOTHING RETURNING epoch",
            &[&key, &owner, &ttl],
        )?;
        if let Some(row) = inserted {
            let epoch: i64 = row.try_get(0).map_err(|e| corrupt(key, &e))?;
            return Ok((epoch, None));
        }
    }
    Err(StoreError::Database {
        detail: format!("the row of session {key:?} came and went during the claim"),
    }
    .into())
}

/// Creates the schema in a database that has none, or checks its version.
fn initialise(client: &mut Client) -> Result<(), Failure> {
    let mut tx = client.transaction()?;
    // Two processes initialising a fresh database at once take turns.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&INIT_LOCK])?;
    let exists: bool = tx
        .query_one("SELECT to_regclass('chat_store_version') IS NOT NULL", &[])?
        .try_get(0)?;
    if !exists {
        tx.batch_execute(SCHEMA)?;
        tx.execute(
            "INSERT INTO chat_store_version (id, version) VALUES (1, $1)",
            &[&SCHEMA_VERSION],
        )?;
        tx.commit()?;
        return Ok(());
    }
    let found: Option<i64> = match tx.query_opt("SELECT version FROM chat_store_version", &[])? {
        Some(row) => Some(row.try_get(0).map_err(|e| StoreError::Damaged {
            detail: format!("its schema version cannot be read: {}", describe(&e)),
        })?),
        None => None,
    };
    match found {
        Some(SCHEMA_VERSION) => Ok(tx.commit()?),
        Some(found) => Err(StoreError::Version {
            found,
            supported: SCHEMA_VERSION,
        }
        .into()),
        None => Err(StoreError::Damaged {
            detail: "its schema version table is empty".to_owned(),
        }
        .into()),
    }
}

/// Whether `e` means the connection is unusable (so a new one may do better).
fn is_connection(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // Not an error of the server: the connection's I/O, or a mistake of this side (a
        // parameter or a column of the wrong type), which a new connection would not mend.
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                ]
                .contains(code)
        }
    }
}

/// Maps a database error that is final for the call.
pub(crate) fn error(e: postgres::Error) -> StoreError {
    if is_connection(&e) {
        StoreError::Unreachable {
            detail: describe(&e),
        }
    } else {
        StoreError::Database {
            detail: describe(&e),
        }
    }
}

/// The error's message and SQLSTATE, without the server's DETAIL, which may quote a row's
/// values (a record, which may hold credentials).
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

fn corrupt(key: &str, e: &postgres::Error) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        detail: describe(e),
    }
}

fn lost(lease: &Lease) -> StoreError {
    StoreError::LeaseLost {
        key: lease.key.clone(),
    }
}

/// `user@host:port/database`, for messages: never the password.
fn target(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let host = match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let user = config.get_user().unwrap_or("(default user)");
    let database = config.get_dbname().unwrap_or(user);
    format!("{user}@{}/{database}", hosts.join(","))
}
