//! The behaviour suite on [`SqliteStore`], plus what only a file can do: several stores on one
//! file, damage, and a process killed in the middle of a save.

#![allow(clippy::unwrap_used)] // test code: a failure is the test's

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use std::{env, fs};

use chat_store::sqlite::{self, rusqlite};
use chat_store::{ManualClock, SessionStore, SqliteStore, StoreError};
use tempfile::TempDir;

#[macro_use]
mod common;

use common::Backend as _;

struct Sqlite {
    dir: TempDir,
    clock: ManualClock,
}

impl Sqlite {
    fn path(&self) -> PathBuf {
        self.dir.path().join("store.db")
    }

    fn raw(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path()).unwrap()
    }
}

fn sqlite(_test: &str) -> Option<Sqlite> {
    let backend = Sqlite {
        dir: tempfile::tempdir().unwrap(),
        clock: ManualClock::new(),
    };
    // Created now, so that `raw` finds the schema.
    backend.open();
    Some(backend)
}

impl common::Backend for Sqlite {
    type Store = SqliteStore;

    fn open(&self) -> SqliteStore {
        SqliteStore::open_with_clock(self.path(), self.clock.clone()).unwrap()
    }

    fn tick(&self) {
        self.clock.advance(Duration::from_millis(1));
    }

    fn record_position(&self, key: &str, engagement: &str, index: u64) -> Result<(), StoreError> {
        let mut db = self.raw();
        let tx = db.transaction().unwrap();
        sqlite::record_position(&tx, key, engagement, index)?;
        tx.commit().unwrap();
        Ok(())
    }

    fn corrupt(&self, key: &str) -> bool {
        self.raw()
            .execute(
                "INSERT OR REPLACE INTO chat_store_positions VALUES (?1, 'chat-x', -1)",
                [key],
            )
            .unwrap();
        true
    }

    fn reopen_at_version(&self, version: i64) -> Option<Result<SqliteStore, StoreError>> {
        self.raw()
            .execute("UPDATE chat_store_version SET version = ?1", [version])
            .unwrap();
        Some(SqliteStore::open_with_clock(
            self.path(),
            self.clock.clone(),
        ))
    }
}

suite!(sqlite);

const LONG: Duration = Duration::from_secs(600);

#[test]
fn a_record_that_is_not_utf8_is_corrupt() {
    let backend = sqlite("").unwrap();
    let store = backend.open();
    let a = store.claim("k", "a", LONG).unwrap();
    store.release(&a.lease).unwrap();
    backend
        .raw()
        .execute(
            "UPDATE chat_store_sessions SET record = CAST(X'C328' AS TEXT) WHERE key = 'k'",
            [],
        )
        .unwrap();
    match store.claim("k", "b", LONG) {
        Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, "k"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_file_that_is_not_a_database_is_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not.db");
    fs::write(
        &path,
        "this is not an SQLite database, but it is long enough to look at. ".repeat(20),
    )
    .unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::Damaged { .. }) => {}
        other => panic!("expected Damaged, got {other:?}"),
    }
}

#[test]
fn a_directory_that_does_not_exist_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    match SqliteStore::open(dir.path().join("no/such/dir/store.db")) {
        Err(StoreError::Unreachable { .. }) => {}
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[test]
fn the_file_is_in_wal_mode_with_its_tables_beside_the_applications() {
    let backend = sqlite("").unwrap();
    let raw = backend.raw();
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let mut tables: Vec<String> = raw
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables.sort();
    assert_eq!(
        tables,
        [
            "chat_store_epoch",
            "chat_store_positions",
            "chat_store_sessions",
            "chat_store_version"
        ]
    );
    // Opening it again changes nothing.
    backend.open();
    let version: i64 = raw
        .query_row("SELECT version FROM chat_store_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, chat_store::SCHEMA_VERSION);
}

#[test]
fn fence_refuses_a_lost_lease_in_the_applications_transaction() {
    let backend = sqlite("").unwrap();
    let store = backend.open();
    let a = store.claim("k", "a", LONG).unwrap();
    let mut db = backend.raw();
    {
        let tx = db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        sqlite::fence(&tx, &a.lease).unwrap();
        sqlite::record_position(&tx, "k", "chat-1", 4).unwrap();
        tx.commit().unwrap();
    }
    store.renew(&a.lease, Duration::ZERO).unwrap();
    let b = store.claim("k", "b", LONG).unwrap();
    assert_eq!(b.positions, vec![("chat-1".to_owned(), 4)]);
    let tx = db.transaction().unwrap();
    match sqlite::fence(&tx, &a.lease) {
        Err(StoreError::LeaseLost { key }) => assert_eq!(key, "k"),
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    sqlite::fence(&tx, &b.lease).unwrap();
}

#[test]
fn stores_in_separate_threads_on_one_file_with_the_system_clock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    // Four "processes", each its own store on the file, each saving its own sessions while
    // the others do.
    std::thread::scope(|scope| {
        for i in 0..4 {
            let path = &path;
            scope.spawn(move || {
                let store = SqliteStore::open(path).unwrap();
                for round in 0..20 {
                    let key = format!("customer-{i}-{round}");
                    let claim = store.claim(&key, &format!("gw-{i}"), LONG).unwrap();
                    store
                        .save(&claim.lease, &format!("record {round}"))
                        .unwrap();
                    store.release(&claim.lease).unwrap();
                }
            });
        }
    });
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.unclaimed(1000).unwrap().len(), 80);
    let claim = store.claim("customer-3-19", "checker", LONG).unwrap();
    assert_eq!(claim.record.as_deref(), Some("record 19"));
}

/// The environment variable that makes `a_save_killed_midway_leaves_the_old_or_the_new_record`
/// the child that saves until it is killed.
const SAVER: &str = "CHAT_STORE_TEST_SAVER";

/// A record of `round`: a JSON object with a long filler, so that a save spans many pages.
fn record(round: u64) -> String {
    let fill = char::from(b'a' + (round % 26) as u8)
        .to_string()
        .repeat(200_000);
    format!(r#"{{"round":{round},"fill":"{fill}"}}"#)
}

#[test]
fn a_save_killed_midway_leaves_the_old_or_the_new_record() {
    if let Some(path) = env::var_os(SAVER) {
        return saver(Path::new(&path));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.db");
    let mut last_seen = 0;
    for kill_after in [5, 17, 30] {
        let mut child = Command::new(env::current_exe().unwrap())
            .args([
                "a_save_killed_midway_leaves_the_old_or_the_new_record",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(SAVER, &path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut saved = 0;
        for line in stdout.lines() {
            if let Some(n) = line.unwrap().strip_prefix("saved ") {
                saved = n.parse().unwrap();
                if saved >= kill_after {
                    break;
                }
            }
        }
        assert!(saved >= kill_after, "the saver stopped early");
        // SIGKILL, while it is (most likely) in the middle of its next save.
        child.kill().unwrap();
        child.wait().unwrap();

        let store = SqliteStore::open(&path).unwrap();
        let claim = store.claim("killed", "checker", LONG).unwrap();
        let record = claim.record.expect("a record");
        let round: u64 = record
            .strip_prefix(r#"{"round":"#)
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.parse().ok())
            .expect("a whole record");
        assert!(round >= saved, "round {round}, but {saved} was saved");
        assert_eq!(record, self::record(round), "a torn record");
        assert!(round >= last_seen);
        last_seen = round;
        store.release(&claim.lease).unwrap();
    }
}

/// The child: claims the session and saves records of rounds counting up, saying each one
/// once it is saved, until it is killed.
fn saver(path: &Path) {
    let store = SqliteStore::open(path).unwrap();
    // A lapsed lease at once (a ttl of zero), so that the parent may claim after the kill;
    // it stays current, and saves, until then.
    let claim = store.claim("killed", "saver", Duration::ZERO).unwrap();
    let start = claim
        .record
        .as_deref()
        .and_then(|r| r.strip_prefix(r#"{"round":"#))
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse::<u64>().ok())
        .map_or(1, |n| n + 1);
    let mut out = std::io::stdout();
    for round in start.. {
        store.save(&claim.lease, &record(round)).unwrap();
        writeln!(out, "saved {round}").unwrap();
        out.flush().unwrap();
    }
}
