//! [`StoreError`]: what can go wrong in a store, in words a person can act on.

/// A store's failure.
///
/// No message holds a secret: never a record's text (it may hold a session's credentials),
/// never a PostgreSQL URL (it may hold a password). Keys and owners are names the application
/// chose and are shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be reached: the database cannot be opened or connected to, an I/O
    /// error, a file another process kept locked for too long.
    #[error("the session store cannot be reached: {detail}")]
    Unreachable {
        /// What failed.
        detail: String,
    },
    /// A stored row cannot be read (a value of the wrong type or out of range).
    #[error("the stored session {key:?} cannot be read: {detail}")]
    Corrupt {
        /// The session's key.
        key: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The database itself is damaged, or is not a database of this kind.
    #[error("the session store's database is damaged: {detail}")]
    Damaged {
        /// What the database engine said.
        detail: String,
    },
    /// The database refused one of the store's statements for a reason that is neither the
    /// connection's nor damage (for example, PostgreSQL has no schema to create the store's
    /// tables in, or the tables were changed from outside).
    #[error("the session store's database refused a statement: {detail}")]
    Database {
        /// What the database said.
        detail: String,
    },
    /// The store's schema was written by another version of this crate. The store is left as
    /// it is: never migrated down, never started afresh.
    #[error(
        "the session store's schema is version {found}, this version of chat-store supports \
         version {supported} only: use the chat-store that wrote it"
    )]
    Version {
        /// The version found in the store.
        found: i64,
        /// The one version this crate reads and writes.
        supported: i64,
    },
    /// The lease is no longer the session's current one: another claim happened since (or it
    /// was released, or the session removed). The caller must stop using the session.
    #[error("the lease on session {key:?} was lost: another claim happened since")]
    LeaseLost {
        /// The session's key.
        key: String,
    },
    /// A claim was refused: another owner holds a live lease on the session.
    #[error("session {key:?} is held by {owner:?}")]
    Held {
        /// The session's key.
        key: String,
        /// The owner holding it.
        owner: String,
    },
    /// An argument the store cannot take (an empty key, a NUL character, a lease longer than
    /// [`MAX_TTL`](crate::MAX_TTL), ...).
    #[error("{what} {reason}")]
    Invalid {
        /// What was given ("key", "owner", "ttl", ...).
        what: &'static str,
        /// Why it cannot be taken.
        reason: String,
    },
}
