//! The crash soak's child process (`chat-soak crash-child`, hidden): one customer app on
//! the adapter it is told, its session kept in the run's SQLite file, its agent messages
//! taken into its own table in the same file. The parent starts it again from that file
//! after each kill.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chat_store::{SessionStore, SqliteStore};

use crate::adapter::{Secret, Transport};
use crate::app::{Customer, Outcome};
use crate::inbox::{Inbox, SqliteInbox};
use crate::lines::{Fact, Teller};

/// The variable the appkey comes in (never on the command line, which `ps` shows).
pub const APPKEY_VAR: &str = "CHAT_SOAK_APPKEY";
/// The variable the customer's chat token comes in.
pub const TOKEN_VAR: &str = "CHAT_SOAK_TOKEN";

/// Which client library a child drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChildAdapter {
    /// chat-tokio.
    Tokio,
    /// chat-blocking.
    Blocking,
}

impl ChildAdapter {
    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tokio => "tokio",
            Self::Blocking => "blocking",
        }
    }

    /// The adapter of this name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "tokio" => Some(Self::Tokio),
            "blocking" => Some(Self::Blocking),
            _ => None,
        }
    }
}

/// What a crash child is told on its command line.
#[derive(Debug, Clone)]
pub struct ChildArgs {
    /// The customer's number.
    pub index: usize,
    /// The client library.
    pub adapter: ChildAdapter,
    /// The event-stream transport.
    pub transport: Transport,
    /// The chat API (the parent's proxy).
    pub base_url: String,
    /// The integration.
    pub integration_id: String,
    /// The run's SQLite file: the session store and the app's table.
    pub store: PathBuf,
    /// Numbers to send.
    pub messages: u64,
    /// Agent messages the parent posts to this customer.
    pub agent_messages: u64,
    /// The mean pause before each send.
    pub pace: Duration,
    /// The run's seed.
    pub seed: u64,
    /// The store's lease.
    pub lease_ttl: Duration,
}

/// The variable that turns a child's SDK log on: an env-filter line such as `debug` or
/// `chat_core=debug` (the SDK logs no secret).
pub const LOG_VAR: &str = "CHAT_SOAK_LOG";

/// The SDK's log on stderr, when [`LOG_VAR`] asks for it.
pub(crate) fn log_if_asked() {
    if let Ok(filter) = std::env::var(LOG_VAR) {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// The key of crash customer `index` in the store.
pub(crate) fn key(index: usize) -> String {
    format!("c{index}")
}

/// Runs a crash child to its end: `Ok` once its customer is done. The appkey and the token
/// come from [`APPKEY_VAR`] and [`TOKEN_VAR`].
pub fn run_child(args: &ChildArgs) -> Result<(), String> {
    log_if_asked();
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let customer = Customer {
        index: args.index,
        mode: "crash",
        base_url: args.base_url.clone(),
        integration_id: args.integration_id.clone(),
        appkey: Secret(var(APPKEY_VAR)?),
        token: Secret(var(TOKEN_VAR)?),
        transport: args.transport,
        key: key(args.index),
        // The same owner in every incarnation: a restarted child takes over from its dead
        // self at once instead of waiting for the lease to lapse.
        owner: format!("crash-child-{}", args.index),
        lease_ttl: args.lease_ttl,
        messages: args.messages,
        agent_messages: args.agent_messages,
        pace: args.pace,
        seed: args.seed,
    };
    let tell = Arc::new(Teller::default());
    let opened = SqliteStore::open(&args.store)
        .map_err(|e| e.to_string())
        .and_then(|store| {
            let inbox = SqliteInbox::open(&args.store).map_err(|e| e.to_string())?;
            Ok((store, inbox))
        });
    let (store, inbox) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            tell.tell(args.index, Fact::Problem(format!("the store: {e}")));
            return Err(e);
        }
    };
    let store: Arc<dyn SessionStore> = Arc::new(store);
    let inbox: Arc<dyn Inbox> = Arc::new(inbox);
    let outcome = match args.adapter {
        ChildAdapter::Blocking => crate::app_blocking::run(&customer, store, inbox, tell, false),
        ChildAdapter::Tokio => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| format!("no runtime: {e}"))?;
            runtime.block_on(crate::app_tokio::run(&customer, store, inbox, tell, false))
        }
    };
    match outcome {
        Outcome::Done => Ok(()),
        Outcome::Held => Err("the session is held by another process".to_owned()),
        Outcome::Failed(why) => Err(why),
    }
}
