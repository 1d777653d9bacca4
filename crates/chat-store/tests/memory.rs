//! The behaviour suite on [`MemoryStore`], with a manual clock.

#![allow(clippy::unwrap_used)] // test code: a failure is the test's

use std::time::Duration;

use chat_store::{Claim, Lease, ManualClock, MemoryStore, SessionStore, StoreError};

#[macro_use]
mod common;

use common::Backend as _;

struct Memory {
    store: MemoryStore,
    clock: ManualClock,
}

fn memory(_test: &str) -> Option<Memory> {
    let clock = ManualClock::new();
    Some(Memory {
        store: MemoryStore::with_clock(clock.clone()),
        clock,
    })
}

impl common::Backend for Memory {
    type Store = MemoryStore;

    fn open(&self) -> MemoryStore {
        self.store.clone()
    }

    fn tick(&self) {
        self.clock.advance(Duration::from_millis(1));
    }

    fn record_position(&self, key: &str, engagement: &str, index: u64) -> Result<(), StoreError> {
        self.store.record_position(key, engagement, index)
    }

    fn corrupt(&self, _key: &str) -> bool {
        false
    }

    fn reopen_at_version(&self, _version: i64) -> Option<Result<MemoryStore, StoreError>> {
        None
    }
}

suite!(memory);

#[test]
fn a_lease_lapses_when_its_time_has_passed() {
    let backend = memory("").unwrap();
    let store = backend.open();
    let ttl = Duration::from_secs(30);
    let a = store.claim("k", "a", ttl).unwrap();
    backend.clock.advance(ttl - Duration::from_millis(1));
    assert!(matches!(
        store.claim("k", "b", ttl),
        Err(StoreError::Held { .. })
    ));
    assert_eq!(store.unclaimed(10).unwrap(), Vec::<String>::new());
    backend.clock.advance(Duration::from_millis(1));
    assert_eq!(store.unclaimed(10).unwrap(), ["k".to_owned()]);
    let b = store.claim("k", "b", ttl).unwrap();
    assert!(b.lease.epoch > a.lease.epoch);
}

#[test]
fn debug_never_shows_a_record() {
    let claim = Claim {
        lease: Lease {
            key: "customer-42".to_owned(),
            owner: "gw".to_owned(),
            epoch: 7,
        },
        record: Some(r#"{"token":"s3cr3t"}"#.to_owned()),
        positions: vec![("chat-1".to_owned(), 3)],
    };
    let debug = format!("{claim:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(
        debug.contains("customer-42") && debug.contains("18 bytes"),
        "{debug}"
    );
}

#[test]
fn a_store_is_usable_as_a_trait_object() {
    let store: std::sync::Arc<dyn SessionStore> = std::sync::Arc::new(MemoryStore::new());
    let claim = store.claim("k", "a", Duration::from_secs(1)).unwrap();
    store.save(&claim.lease, "{}").unwrap();
}
