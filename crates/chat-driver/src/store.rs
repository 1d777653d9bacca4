//! A client's link to its [`SessionStore`]: the claim at connect, the snapshot read back
//! (checked: a corrupt or foreign one is an error, never a silent fresh start), and the
//! store calls behind [`Action::Save`](crate::Action::Save) and
//! [`Action::RenewLease`](crate::Action::RenewLease), which every adapter makes alike (on
//! a blocking thread).

use std::sync::Arc;
use std::time::Duration;

use chat_core::Snapshot;
use chat_store::{Lease, SessionStore, StoreError};

use crate::{Error, SaveError};

/// How long a lease lasts by default: a process that dies holds its sessions this long at
/// most before another may take them over.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(15);

/// Where a client keeps its session: the store, the session's key in it, and who claims it.
#[derive(Clone)]
pub struct StoreOptions {
    /// The store.
    pub store: Arc<dyn SessionStore>,
    /// The session's key, one per customer's session (`"customer-42"`).
    pub key: String,
    /// Who claims it: a name per process (the default is the host name and process id).
    pub owner: String,
    /// How long a claim or renewal holds the session.
    pub lease_ttl: Duration,
    /// The application's label for the customer, kept with the session, so that whoever
    /// takes it over can mint the next token for the right person.
    pub customer: Option<String>,
    /// The application records the position of what it takes in its own transaction
    /// (`chat_store::sqlite::record_position`): the client then never moves the stored
    /// position itself, so that it cannot run ahead of the application's commit.
    pub positions_by_app: bool,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("store", &self.store)
            .field("key", &self.key)
            .field("owner", &self.owner)
            .field("lease_ttl", &self.lease_ttl)
            .finish_non_exhaustive()
    }
}

impl StoreOptions {
    /// `key` in `store`, claimed by this process, with the default lease.
    pub fn new(store: Arc<dyn SessionStore>, key: impl Into<String>) -> Self {
        Self {
            store,
            key: key.into(),
            owner: default_owner(),
            lease_ttl: DEFAULT_LEASE_TTL,
            customer: None,
            positions_by_app: false,
        }
    }
}

/// This process's name as a lease owner: the host name and the process id.
pub fn default_owner() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}/{}", std::process::id())
}

/// The customer label ([`StoreOptions::customer`]) of the session stored under `key`, read
/// without claiming it: what a gateway of a fleet needs to mint the token of a session it is
/// about to take over (a key from [`SessionStore::unclaimed`]). `None` when nothing is stored
/// or the session carries no label. Blocks on the store.
pub fn stored_customer(store: &dyn SessionStore, key: &str) -> Result<Option<String>, Error> {
    let Some(text) = store.peek(key)? else {
        return Ok(None);
    };
    let snapshot = Snapshot::from_json(&text).map_err(|e| {
        Error::Store(StoreError::Corrupt {
            key: key.to_owned(),
            detail: e.to_string(),
        })
    })?;
    Ok(snapshot.customer)
}

/// The session held in its store under this client's lease.
#[derive(Debug)]
pub struct StoreLink {
    store: Arc<dyn SessionStore>,
    lease: Lease,
    ttl: Duration,
}

impl StoreLink {
    /// Claims the session and reads what the store holds for it: the snapshot to restore
    /// (an empty one when the store holds nothing yet), with the positions the application
    /// recorded itself taken in. Blocks on the store.
    pub fn claim(options: &StoreOptions) -> Result<(Self, Snapshot), Error> {
        let claim = options
            .store
            .claim(&options.key, &options.owner, options.lease_ttl)?;
        let mut snapshot = match claim.record.as_deref().map(Snapshot::from_json) {
            Some(Ok(snapshot)) => snapshot,
            Some(Err(e)) => {
                // Left as it is for a person to look at, and free for the next claim.
                if let Err(release) = options.store.release(&claim.lease) {
                    tracing::info!(error = %release, "releasing an unreadable session failed");
                }
                return Err(Error::Store(StoreError::Corrupt {
                    key: options.key.clone(),
                    detail: e.to_string(),
                }));
            }
            None => Snapshot::new(),
        };
        snapshot.raise_positions(claim.positions.iter().map(|(e, i)| (e.as_str(), *i)));
        let link = Self {
            store: Arc::clone(&options.store),
            lease: claim.lease,
            ttl: options.lease_ttl,
        };
        Ok((link, snapshot))
    }

    /// The lease this client holds the session under.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Sets `driver` up to keep the session in this store, as `options` say, with the lease
    /// claimed at `since`; `snapshot` is what the claim read.
    pub fn attach<W>(
        &self,
        driver: &mut crate::Driver<W>,
        options: &StoreOptions,
        since: std::time::Instant,
        snapshot: &Snapshot,
    ) {
        driver.keep_in_store(options.customer.clone());
        driver.hold_lease(since, self.lease.clone(), self.ttl);
        if options.positions_by_app {
            let restored = snapshot
                .resumption
                .as_ref()
                .map(|r| r.last_message_indexes.clone())
                .unwrap_or_default();
            driver.positions_by_app(restored);
        }
    }

    /// How long a claim or renewal holds the session.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Carries out [`Action::Save`](crate::Action::Save): writes `record`, or removes the
    /// session when there is none (it is over). Blocks on the store.
    pub fn save(&self, record: Option<&str>) -> Result<(), SaveError> {
        let result = match record {
            Some(text) => self.store.save(&self.lease, text),
            None => self.store.remove(&self.lease),
        };
        result.map_err(save_error)
    }

    /// Carries out [`Action::RenewLease`](crate::Action::RenewLease). Blocks on the store.
    pub fn renew(&self) -> Result<(), SaveError> {
        self.store.renew(&self.lease, self.ttl).map_err(save_error)
    }

    /// Gives the session up without ending it (the client was dropped, not shut down), so
    /// that the next process claims it at once. Blocks on the store.
    pub fn release(&self) {
        if let Err(e) = self.store.release(&self.lease) {
            tracing::info!(error = %e, "releasing the session's lease failed; it lapses instead");
        }
    }
}

fn save_error(e: StoreError) -> SaveError {
    match e {
        StoreError::LeaseLost { .. } => SaveError::LeaseLost,
        e => SaveError::Failed(Arc::new(e)),
    }
}
