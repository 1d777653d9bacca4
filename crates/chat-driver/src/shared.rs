//! What the clients built with default settings share: one value (an HTTP client) per key
//! and configuration, kept while some client uses it.

use std::sync::{Arc, Mutex, PoisonError, Weak};

/// The table behind [`shared_while_used`]: `(key, configuration, value)`, each value held
/// weakly, each configuration strongly (so that its address, by which it is compared, is
/// never another's while the entry lasts). `Mutex::new(Vec::new())` in a `static`.
pub type SharedTable<K, C, T> = Mutex<Vec<(K, Option<Arc<C>>, Weak<T>)>>;

/// The value of `table` for `key` and `config` (none, or the same `Arc`), made by `make` if
/// no live one is there. The table holds values weakly: a value goes with the last of its
/// users, and entries of values gone are dropped on the next call.
pub fn shared_while_used<K: PartialEq, C, T, E>(
    table: &SharedTable<K, C, T>,
    key: K,
    config: Option<&Arc<C>>,
    make: impl FnOnce() -> Result<T, E>,
) -> Result<Arc<T>, E> {
    let mut entries = table.lock().unwrap_or_else(PoisonError::into_inner);
    entries.retain(|(_, _, t)| t.strong_count() > 0);
    let same = |c: &Option<Arc<C>>| match (c, config) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    };
    let live = entries
        .iter()
        .find(|(k, c, _)| *k == key && same(c))
        .and_then(|(_, _, t)| t.upgrade());
    if let Some(t) = live {
        return Ok(t);
    }
    let t = Arc::new(make()?);
    entries.push((key, config.cloned(), Arc::downgrade(&t)));
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_per_key_and_configuration_while_used() {
        static TABLE: SharedTable<u8, String, u32> = Mutex::new(Vec::new());
        let ok = |v| move || Ok::<_, ()>(v);
        let config = Arc::new("roots".to_owned());
        let a = shared_while_used(&TABLE, 1, None, ok(10)).unwrap();
        assert_eq!(*shared_while_used(&TABLE, 1, None, ok(11)).unwrap(), 10);
        assert_eq!(*shared_while_used(&TABLE, 2, None, ok(20)).unwrap(), 20);
        let c = shared_while_used(&TABLE, 1, Some(&config), ok(30)).unwrap();
        assert_eq!(*c, 30);
        let other = Arc::new("roots".to_owned());
        assert_eq!(
            *shared_while_used(&TABLE, 1, Some(&other), ok(40)).unwrap(),
            40
        );
        assert_eq!(
            *shared_while_used(&TABLE, 1, Some(&config), ok(31)).unwrap(),
            30
        );
        drop(a);
        assert_eq!(*shared_while_used(&TABLE, 1, None, ok(12)).unwrap(), 12);
        assert_eq!(
            shared_while_used(&TABLE, 3, None, || Err::<u32, _>("no")),
            Err("no")
        );
        // Nothing holds the values but their users.
        let gone = Arc::downgrade(&c);
        drop(c);
        assert!(gone.upgrade().is_none());
    }
}
