//! The behaviour suite every backend passes, written once: `suite!(backend)` in a test file
//! expands to one `#[test]` per function below, each on a fresh store of that backend.

#![allow(clippy::unwrap_used)] // test code: a failure is the test's

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use chat_store::{Lease, MAX_TTL, SCHEMA_VERSION, SessionStore, StoreError};

/// What the suite needs of a backend, beyond the [`SessionStore`] trait.
pub(crate) trait Backend: Sync {
    type Store: SessionStore;

    /// A new handle on the same storage, as another process would open it.
    fn open(&self) -> Self::Store;

    /// Moves the store's clock forward by a millisecond, so that two lapses are not at the
    /// same time. (A no-op for PostgreSQL: the server's clock, in microseconds, moves between
    /// two transactions.)
    fn tick(&self);

    /// The exactly-once recipe: records a position as the application's own transaction does.
    fn record_position(&self, key: &str, engagement: &str, index: u64) -> Result<(), StoreError>;

    /// Makes the stored positions of `key` unreadable (a negative message index). False if the
    /// backend cannot hold a corrupt row.
    fn corrupt(&self, key: &str) -> bool;

    /// Writes schema version `version` into the storage and opens it again; `None` if the
    /// backend has no schema.
    fn reopen_at_version(&self, version: i64) -> Option<Result<Self::Store, StoreError>>;
}

const LONG: Duration = Duration::from_secs(600);

/// Expands to one test per behaviour, each calling `$backend(test_name)` for a fresh
/// `Option<impl Backend>` (`None`: not run, said why on stderr).
macro_rules! suite {
    ($backend:path) => {
        suite!(@tests $backend;
            claim_save_and_claim_again,
            a_second_owner_is_held_off_until_the_lease_lapses,
            a_lapsed_lease_nobody_took_can_be_renewed,
            after_a_takeover_the_old_lease_is_fenced_off,
            release_lets_another_claim_at_once,
            remove_ends_the_session,
            epochs_grow_across_removal,
            unclaimed_lists_lapsed_and_released_sessions_oldest_first,
            positions_never_go_down,
            two_handles_are_one_store,
            concurrent_claims_have_one_winner,
            a_corrupt_row_is_a_typed_error,
            a_foreign_schema_version_is_refused,
            bad_arguments_are_refused,
            peek_reads_without_claiming,
        );
    };
    (@tests $backend:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if let Some(backend) = $backend(stringify!($name)) {
                    common::$name(&backend);
                }
            }
        )*
    };
}

fn lease_lost<T: std::fmt::Debug>(result: Result<T, StoreError>, key: &str) {
    match result {
        Err(StoreError::LeaseLost { key: k }) => assert_eq!(k, key),
        other => panic!("expected LeaseLost on {key:?}, got {other:?}"),
    }
}

/// What is stored under `key`, read by a claim of an owner of its own, then released.
fn stored<S: SessionStore>(store: &S, key: &str) -> Option<String> {
    let claim = store
        .claim(key, "reader", LONG)
        .expect("the reader's claim");
    store.release(&claim.lease).expect("the reader's release");
    claim.record
}

pub(crate) fn claim_save_and_claim_again<B: Backend>(backend: &B) {
    let store = backend.open();
    let first = store.claim("customer-42", "a", LONG).unwrap();
    assert_eq!(first.record, None);
    assert!(first.positions.is_empty());
    assert_eq!(first.lease.key, "customer-42");
    assert_eq!(first.lease.owner, "a");

    store.save(&first.lease, r#"{"v":1}"#).unwrap();
    store.renew(&first.lease, LONG).unwrap();
    store.save(&first.lease, r#"{"v":2}"#).unwrap();

    // The holder itself may claim again: a new epoch, the record as saved, the old lease
    // fenced off (a restarted process under the same name takes over from its former self).
    let again = store.claim("customer-42", "a", LONG).unwrap();
    assert_eq!(again.record.as_deref(), Some(r#"{"v":2}"#));
    assert!(again.lease.epoch > first.lease.epoch);
    lease_lost(store.save(&first.lease, "{}"), "customer-42");
    store.save(&again.lease, r#"{"v":3}"#).unwrap();

    // A record is opaque text: anything without a NUL goes, byte for byte.
    let odd = "  not JSON at all: 'quotes', \"double\", \\, ünïcödé 💬, \n\t  ";
    store.save(&again.lease, odd).unwrap();
    store.release(&again.lease).unwrap();
    assert_eq!(stored(&store, "customer-42").as_deref(), Some(odd));
}

pub(crate) fn a_second_owner_is_held_off_until_the_lease_lapses<B: Backend>(backend: &B) {
    let store = backend.open();
    let a = store.claim("k", "a", LONG).unwrap();
    match store.claim("k", "b", LONG) {
        Err(StoreError::Held { key, owner }) => {
            assert_eq!((key.as_str(), owner.as_str()), ("k", "a"));
        }
        other => panic!("expected Held, got {other:?}"),
    }
    // A renewal of zero lets the lease lapse now.
    store.renew(&a.lease, Duration::ZERO).unwrap();
    let b = store.claim("k", "b", LONG).unwrap();
    assert!(b.lease.epoch > a.lease.epoch);

    // A claim for zero is taken and lapsed at once.
    let c = store.claim("other", "c", Duration::ZERO).unwrap();
    let d = store.claim("other", "d", LONG).unwrap();
    assert!(d.lease.epoch > c.lease.epoch);
}

pub(crate) fn a_lapsed_lease_nobody_took_can_be_renewed<B: Backend>(backend: &B) {
    let store = backend.open();
    let a = store.claim("k", "a", Duration::ZERO).unwrap();
    // Lapsed, but still the current lease: it may save and renew, and then it holds again.
    store.save(&a.lease, "late").unwrap();
    store.renew(&a.lease, LONG).unwrap();
    assert!(matches!(
        store.claim("k", "b", LONG),
        Err(StoreError::Held { .. })
    ));
}

pub(crate) fn after_a_takeover_the_old_lease_is_fenced_off<B: Backend>(backend: &B) {
    let store = backend.open();
    let a = store.claim("k", "a", LONG).unwrap();
    store.save(&a.lease, "a's").unwrap();
    store.renew(&a.lease, Duration::ZERO).unwrap();

    let b = store.claim("k", "b", LONG).unwrap();
    assert_eq!(b.record.as_deref(), Some("a's"));

    lease_lost(store.save(&a.lease, "a's late write"), "k");
    lease_lost(store.renew(&a.lease, LONG), "k");
    lease_lost(store.release(&a.lease), "k");
    lease_lost(store.remove(&a.lease), "k");

    store.save(&b.lease, "b's").unwrap();
    lease_lost(store.save(&a.lease, "a's later write"), "k");
    store.release(&b.lease).unwrap();
    assert_eq!(stored(&store, "k").as_deref(), Some("b's"));
}

pub(crate) fn release_lets_another_claim_at_once<B: Backend>(backend: &B) {
    let store = backend.open();
    let a = store.claim("k", "a", LONG).unwrap();
    store.save(&a.lease, "kept").unwrap();
    store.release(&a.lease).unwrap();
    // A released lease is no longer current: nothing more through it.
    lease_lost(store.save(&a.lease, "after release"), "k");
    lease_lost(store.release(&a.lease), "k");

    let b = store.claim("k", "b", LONG).unwrap();
    assert_eq!(b.record.as_deref(), Some("kept"));
    assert!(b.lease.epoch > a.lease.epoch);
}

pub(crate) fn remove_ends_the_session<B: Backend>(backend: &B) {
    let store = backend.open();
    let a = store.claim("k", "a", LONG).unwrap();
    store.save(&a.lease, "ending").unwrap();
    backend.record_position("k", "chat-1", 3).unwrap();
    store.remove(&a.lease).unwrap();
    lease_lost(store.save(&a.lease, "after removal"), "k");
    lease_lost(store.remove(&a.lease), "k");
    assert_eq!(store.unclaimed(10).unwrap(), Vec::<String>::new());

    // Claimed again, it starts afresh: no record, no positions.
    let b = store.claim("k", "b", LONG).unwrap();
    assert_eq!(b.record, None);
    assert!(b.positions.is_empty());
}

pub(crate) fn epochs_grow_across_removal<B: Backend>(backend: &B) {
    let store = backend.open();
    let mut last = 0;
    for round in 0..3 {
        let claim = store.claim("k", &format!("owner-{round}"), LONG).unwrap();
        assert!(claim.lease.epoch > last, "round {round}: {claim:?}");
        last = claim.lease.epoch;
        store.remove(&claim.lease).unwrap();
    }
    // And across keys: one counter for the store.
    let other = store.claim("other", "x", LONG).unwrap();
    assert!(other.lease.epoch > last);
}

pub(crate) fn unclaimed_lists_lapsed_and_released_sessions_oldest_first<B: Backend>(backend: &B) {
    let store = backend.open();
    assert_eq!(store.unclaimed(10).unwrap(), Vec::<String>::new());

    // Lapse order c, b, a: the opposite of the keys' order, so that a tie would show.
    let c = store.claim("key-c", "gw-1", LONG).unwrap();
    store.save(&c.lease, "c").unwrap();
    store.release(&c.lease).unwrap();
    backend.tick();
    let b = store.claim("key-b", "gw-1", LONG).unwrap();
    store.renew(&b.lease, Duration::ZERO).unwrap();
    backend.tick();
    store.claim("key-a", "gw-1", Duration::ZERO).unwrap();
    backend.tick();
    // Held: not listed.
    store.claim("key-held", "gw-2", LONG).unwrap();

    assert_eq!(
        store.unclaimed(10).unwrap(),
        ["key-c", "key-b", "key-a"].map(String::from)
    );
    assert_eq!(
        store.unclaimed(2).unwrap(),
        ["key-c", "key-b"].map(String::from)
    );
    assert_eq!(store.unclaimed(0).unwrap(), Vec::<String>::new());

    // A gateway picks b up: held again, so no longer listed.
    let picked = store.claim("key-b", "gw-3", LONG).unwrap();
    assert_eq!(
        store.unclaimed(10).unwrap(),
        ["key-c", "key-a"].map(String::from)
    );
    store.remove(&picked.lease).unwrap();
    assert_eq!(
        store.unclaimed(10).unwrap(),
        ["key-c", "key-a"].map(String::from)
    );
}

pub(crate) fn positions_never_go_down<B: Backend>(backend: &B) {
    let store = backend.open();
    let a = store.claim("k", "a", LONG).unwrap();
    backend.record_position("k", "chat-2", 5).unwrap();
    backend.record_position("k", "chat-2", 3).unwrap();
    backend.record_position("k", "chat-1", 9).unwrap();
    backend.record_position("k", "chat-2", 7).unwrap();
    backend.record_position("k", "chat-1", 0).unwrap();
    backend.record_position("other", "chat-3", 1).unwrap();
    store.release(&a.lease).unwrap();

    let b = store.claim("k", "b", LONG).unwrap();
    assert_eq!(
        b.positions,
        vec![("chat-1".to_owned(), 9), ("chat-2".to_owned(), 7)]
    );
    // The largest index a database holds, and no further.
    backend
        .record_position("k", "chat-1", i64::MAX as u64)
        .unwrap();
    assert!(matches!(
        backend.record_position("k", "chat-1", u64::MAX),
        Err(StoreError::Invalid { .. })
    ));
    let c = store.claim("k", "b", LONG).unwrap();
    assert_eq!(c.positions[0], ("chat-1".to_owned(), i64::MAX as u64));
}

pub(crate) fn two_handles_are_one_store<B: Backend>(backend: &B) {
    let one = backend.open();
    let two = backend.open();
    let a = one.claim("k", "a", LONG).unwrap();
    one.save(&a.lease, "from one").unwrap();
    assert!(matches!(
        two.claim("k", "b", LONG),
        Err(StoreError::Held { .. })
    ));
    one.release(&a.lease).unwrap();
    let b = two.claim("k", "b", LONG).unwrap();
    assert_eq!(b.record.as_deref(), Some("from one"));
    lease_lost(one.save(&a.lease, "stale"), "k");
    two.save(&b.lease, "from two").unwrap();
    two.release(&b.lease).unwrap();
    assert_eq!(stored(&one, "k").as_deref(), Some("from two"));
}

pub(crate) fn concurrent_claims_have_one_winner<B: Backend>(backend: &B) {
    const THREADS: usize = 8;
    let start = Arc::new(Barrier::new(THREADS));
    let results: Vec<Result<Lease, StoreError>> = thread::scope(|scope| {
        let claims: Vec<_> = (0..THREADS)
            .map(|i| {
                let start = Arc::clone(&start);
                scope.spawn(move || {
                    let store = backend.open();
                    start.wait();
                    store
                        .claim("contested", &format!("owner-{i}"), LONG)
                        .map(|claim| claim.lease)
                })
            })
            .collect();
        claims.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let winners: Vec<&Lease> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for result in &results {
        match result {
            Ok(_) => {}
            Err(StoreError::Held { owner, .. }) => assert_eq!(owner, &winners[0].owner),
            Err(other) => panic!("a claim failed: {other}"),
        }
    }
    // The winner holds the session.
    let store = backend.open();
    store.save(winners[0], "won").unwrap();
}

pub(crate) fn a_corrupt_row_is_a_typed_error<B: Backend>(backend: &B) {
    let store = backend.open();
    let a = store.claim("k", "a", LONG).unwrap();
    store.release(&a.lease).unwrap();
    if !backend.corrupt("k") {
        return; // nothing can be corrupt in memory
    }
    match store.claim("k", "b", LONG) {
        Err(StoreError::Corrupt { key, detail }) => {
            assert_eq!(key, "k");
            assert!(!detail.is_empty());
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Other sessions are fine.
    store.claim("fine", "b", LONG).unwrap();
}

pub(crate) fn a_foreign_schema_version_is_refused<B: Backend>(backend: &B) {
    let store = backend.open();
    let a = store.claim("k", "a", LONG).unwrap();
    store.save(&a.lease, "kept").unwrap();
    let Some(reopened) = backend.reopen_at_version(SCHEMA_VERSION + 1) else {
        return; // memory has no schema
    };
    match reopened {
        Err(e @ StoreError::Version { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            assert!(e.to_string().contains("version 2"), "{e}");
        }
        other => panic!("expected Version, got {other:?}"),
    }
    // Left as it was: back at our version, the record is there.
    backend
        .reopen_at_version(SCHEMA_VERSION)
        .unwrap()
        .expect("reopened at our version");
    store.release(&a.lease).unwrap();
    assert_eq!(stored(&store, "k").as_deref(), Some("kept"));
}

pub(crate) fn bad_arguments_are_refused<B: Backend>(backend: &B) {
    let store = backend.open();
    let invalid = |result: Result<_, StoreError>, what: &str| match result {
        Err(StoreError::Invalid { what: w, .. }) => assert_eq!(w, what),
        other => panic!("expected Invalid {what}, got {other:?}"),
    };
    invalid(store.claim("", "a", LONG).map(|_| ()), "key");
    invalid(store.claim("k\0", "a", LONG).map(|_| ()), "key");
    invalid(store.claim(&"k".repeat(2000), "a", LONG).map(|_| ()), "key");
    invalid(store.claim("k", "", LONG).map(|_| ()), "owner");
    invalid(store.claim("k", "a", MAX_TTL * 2).map(|_| ()), "ttl");
    invalid(store.claim("k", "a", Duration::MAX).map(|_| ()), "ttl");
    let a = store.claim("k", "a", MAX_TTL).unwrap();
    invalid(store.save(&a.lease, "nul \0 inside"), "record");
    invalid(store.renew(&a.lease, Duration::MAX), "ttl");
    invalid(backend.record_position("k", "", 1), "engagement");
    // A lease no store handed out is no lease.
    let forged = Lease {
        epoch: u64::MAX,
        ..a.lease.clone()
    };
    lease_lost(store.save(&forged, "x"), "k");
    let stranger = Lease {
        owner: "b".to_owned(),
        ..a.lease.clone()
    };
    lease_lost(store.save(&stranger, "x"), "k");
    store.save(&a.lease, "fine").unwrap();
}

pub(crate) fn peek_reads_without_claiming<B: Backend>(backend: &B) {
    let store = backend.open();
    assert_eq!(store.peek("customer-9").unwrap(), None, "nothing stored");
    let claim = store.claim("customer-9", "a", LONG).unwrap();
    assert_eq!(
        store.peek("customer-9").unwrap(),
        None,
        "claimed, never saved"
    );
    store.save(&claim.lease, r#"{"customer":"nine"}"#).unwrap();
    assert_eq!(
        store.peek("customer-9").unwrap().as_deref(),
        Some(r#"{"customer":"nine"}"#)
    );
    // Reading took nothing: the holder still holds it, another owner is still held off.
    store.save(&claim.lease, "{}").unwrap();
    assert!(matches!(
        store.claim("customer-9", "b", LONG),
        Err(StoreError::Held { .. })
    ));
    assert!(matches!(store.peek(""), Err(StoreError::Invalid { .. })));
}
