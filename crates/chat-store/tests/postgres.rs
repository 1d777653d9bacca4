//! The behaviour suite on `PostgresStore`, against the server at `AXP_TEST_POSTGRES_URL`
//! (`cargo xtask postgres -- cargo test -p chat-store --all-features` starts one). Each test
//! works in a schema of its own, so that the tests run in parallel.
//!
//! Without the variable each test says NOT RUN on stderr and passes, unless
//! `AXP_REQUIRE_POSTGRES=1` (as in CI), which makes it fail.

#![allow(clippy::unwrap_used)] // test code: a failure is the test's

#[cfg(feature = "postgres")]
#[macro_use]
mod common;

use std::io::Write as _;

/// The server's URL, or `None` after saying why the test does not run (or failing, where the
/// tests must run).
fn server_url(test: &str) -> Option<String> {
    let required = std::env::var("AXP_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    let why = if !cfg!(feature = "postgres") {
        "need the `postgres` feature (cargo test -p chat-store --all-features)"
    } else if let Ok(url) = std::env::var("AXP_TEST_POSTGRES_URL") {
        return Some(url);
    } else {
        "need AXP_TEST_POSTGRES_URL; run `cargo xtask postgres -- cargo test -p chat-store \
         --all-features`, or `cargo xtask postgres` and export the line it prints"
    };
    assert!(
        !required,
        "{test}: AXP_REQUIRE_POSTGRES=1, but the PostgreSQL store tests {why}"
    );
    // Straight to the process's stderr, past the test harness's capture: loud even when the
    // test passes.
    let _ = writeln!(
        std::io::stderr(),
        "NOT RUN: {test}: PostgreSQL store tests {why}"
    );
    None
}

#[cfg(not(feature = "postgres"))]
#[test]
fn postgres_store() {
    server_url("postgres_store");
}

#[cfg(feature = "postgres")]
mod with_server {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use chat_store::postgres::postgres::{Client, NoTls};
    use chat_store::postgres::{self as pg};
    use chat_store::{PostgresStore, SessionStore, StoreError};

    use super::common::{self, Backend as _};
    use super::server_url;

    /// One test's schema on the server, dropped at the end.
    pub(crate) struct Postgres {
        admin: String,
        schema: String,
        /// The server's URL with the schema as the search path.
        url: String,
    }

    impl Drop for Postgres {
        fn drop(&mut self) {
            if let Ok(mut client) = Client::connect(&self.admin, NoTls) {
                let _ = client.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema));
            }
        }
    }

    impl Postgres {
        fn client(&self) -> Client {
            Client::connect(&self.url, NoTls).unwrap()
        }
    }

    pub(crate) fn postgres(test: &str) -> Option<Postgres> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let admin = server_url(test)?;
        let schema = format!(
            "t_{}_{}_{test}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let schema: String = schema.chars().take(63).collect();
        let mut client = Client::connect(&admin, NoTls).expect("the test server");
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap();
        let separator = if admin.contains('?') { '&' } else { '?' };
        // The schema as the search path, and as the application's name to find the store's
        // connections by.
        let url =
            format!("{admin}{separator}options=-csearch_path%3D{schema}&application_name={schema}");
        let backend = Postgres { admin, schema, url };
        backend.open();
        Some(backend)
    }

    impl common::Backend for Postgres {
        type Store = PostgresStore;

        fn open(&self) -> PostgresStore {
            PostgresStore::connect(&self.url).unwrap()
        }

        fn tick(&self) {}

        fn record_position(
            &self,
            key: &str,
            engagement: &str,
            index: u64,
        ) -> Result<(), StoreError> {
            let mut client = self.client();
            let mut tx = client.transaction().unwrap();
            pg::record_position(&mut tx, key, engagement, index)?;
            tx.commit().unwrap();
            Ok(())
        }

        fn corrupt(&self, key: &str) -> bool {
            self.client()
                .execute(
                    "INSERT INTO chat_store_positions VALUES ($1, 'chat-x', -1)
                     ON CONFLICT (key, engagement) DO UPDATE SET message_index = -1",
                    &[&key],
                )
                .unwrap();
            true
        }

        fn reopen_at_version(&self, version: i64) -> Option<Result<PostgresStore, StoreError>> {
            self.client()
                .execute("UPDATE chat_store_version SET version = $1", &[&version])
                .unwrap();
            Some(PostgresStore::connect(&self.url))
        }
    }

    suite!(postgres);

    const LONG: Duration = Duration::from_secs(600);

    #[test]
    fn the_tables_are_in_the_connections_schema() {
        let Some(backend) = postgres("the_tables_are_in_the_connections_schema") else {
            return;
        };
        let rows = backend
            .client()
            .query(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = $1 ORDER BY table_name",
                &[&backend.schema],
            )
            .unwrap();
        let tables: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(
            tables,
            [
                "chat_store_positions",
                "chat_store_sessions",
                "chat_store_version"
            ]
        );
    }

    /// An async chat client drops the last handle on its store where its task ends, on a
    /// runtime's thread, where the synchronous client's own close would panic.
    #[test]
    fn a_store_may_be_dropped_on_an_async_runtimes_thread() {
        let Some(backend) = postgres("a_store_may_be_dropped_on_an_async_runtimes_thread") else {
            return;
        };
        let store = backend.open();
        let claim = store.claim("k", "a", LONG).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async move { drop(store) });
        // The store's connection is closed (by a thread of its own), its lease still there.
        let again = backend.open();
        assert!(matches!(
            again.claim("k", "b", LONG),
            Err(StoreError::Held { .. })
        ));
        again.release(&claim.lease).unwrap();
    }

    #[test]
    fn a_connection_killed_by_the_server_is_replaced() {
        let Some(backend) = postgres("a_connection_killed_by_the_server_is_replaced") else {
            return;
        };
        let store = backend.open();
        let a = store.claim("k", "a", LONG).unwrap();
        // The server ends the store's connection (every one of this test's but this one).
        let killed = backend
            .client()
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE application_name = $1 AND pid <> pg_backend_pid()",
                &[&backend.schema],
            )
            .unwrap();
        assert!(!killed.is_empty());
        // The next call finds its connection closed and makes a new one.
        store.save(&a.lease, "after the kill").unwrap();
        store.release(&a.lease).unwrap();
        let b = store.claim("k", "b", LONG).unwrap();
        assert_eq!(b.record.as_deref(), Some("after the kill"));
    }

    #[test]
    fn fence_holds_off_a_takeover_until_the_applications_transaction_ends() {
        let Some(backend) =
            postgres("fence_holds_off_a_takeover_until_the_applications_transaction_ends")
        else {
            return;
        };
        let store = backend.open();
        let a = store.claim("k", "a", LONG).unwrap();
        let mut app = backend.client();
        let mut tx = app.transaction().unwrap();
        pg::fence(&mut tx, &a.lease).unwrap();
        pg::record_position(&mut tx, "k", "chat-1", 4).unwrap();
        tx.commit().unwrap();

        store.renew(&a.lease, Duration::ZERO).unwrap();
        let b = store.claim("k", "b", LONG).unwrap();
        assert_eq!(b.positions, vec![("chat-1".to_owned(), 4)]);
        let mut tx = app.transaction().unwrap();
        match pg::fence(&mut tx, &a.lease) {
            Err(StoreError::LeaseLost { key }) => assert_eq!(key, "k"),
            other => panic!("expected LeaseLost, got {other:?}"),
        }
    }

    #[test]
    fn a_password_never_shows() {
        let Some(backend) = postgres("a_password_never_shows") else {
            return;
        };
        // The test server trusts every connection: a password is taken and ignored.
        let url = backend
            .url
            .replacen("postgres://postgres@", "postgres://postgres:hunter2@", 1);
        assert!(url.contains("hunter2"));
        let store = PostgresStore::connect(&url).unwrap();
        let debug = format!("{store:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("postgres@127.0.0.1"), "{debug}");
    }
}

#[cfg(feature = "postgres")]
mod without_server {
    use chat_store::{PostgresStore, StoreError};

    #[test]
    fn an_unreachable_server_is_unreachable_and_keeps_the_password() {
        // Port 1 of the loopback: nothing listens there.
        let err = PostgresStore::connect("postgres://app:hunter2@127.0.0.1:1/chat").unwrap_err();
        assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
        let text = format!("{err} {err:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("app@127.0.0.1:1/chat"), "{text}");
    }

    #[test]
    fn an_unreadable_url_is_invalid_and_keeps_the_password() {
        let err =
            PostgresStore::connect("postgres://app:hunter2@127.0.0.1:notaport/chat").unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
        let text = format!("{err} {err:?}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn sslmode_require_is_refused_not_sent_in_the_clear() {
        let err =
            PostgresStore::connect("postgres://app@127.0.0.1:1/chat?sslmode=require").unwrap_err();
        assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
    }
}
