//! A gateway process of the failover soak (`chat-soak gateway`, hidden): one tokio runtime
//! driving the sessions of several customers through one PostgreSQL database. It claims the
//! customers it is given at start, and every poll interval asks the store for sessions nobody
//! holds ([`SessionStore::unclaimed`]: those of a gateway that died, once their lease lapsed)
//! and takes them over. It runs until its standard input closes.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chat_store::{PostgresStore, SessionStore};
use tokio::io::AsyncReadExt;

use crate::adapter::{Secret, Transport};
use crate::app::Customer;
use crate::inbox::{Inbox, PostgresInbox};
use crate::lines::{Fact, Teller};

/// The variable the PostgreSQL URL comes in (it may hold a password: never on the command
/// line).
pub const POSTGRES_VAR: &str = "CHAT_SOAK_POSTGRES_URL";
/// The variable the customers' chat tokens come in: `index=token` pairs, comma-separated.
pub const TOKENS_VAR: &str = "CHAT_SOAK_TOKENS";

/// What a gateway is told on its command line.
#[derive(Debug, Clone)]
pub struct GatewayArgs {
    /// Its name: the owner of the sessions it claims.
    pub name: String,
    /// The customers it claims at start.
    pub customers: Vec<usize>,
    /// Customers in the run (keys `c0`… above it are not the run's).
    pub all_customers: usize,
    /// The event-stream transport.
    pub transport: Transport,
    /// The chat API (the parent's proxy).
    pub base_url: String,
    /// The integration.
    pub integration_id: String,
    /// Numbers each customer sends.
    pub messages: u64,
    /// Agent messages the parent posts to each customer.
    pub agent_messages: u64,
    /// The mean pause before each send.
    pub pace: Duration,
    /// The run's seed.
    pub seed: u64,
    /// The store's lease.
    pub lease_ttl: Duration,
    /// How often it looks for sessions nobody holds.
    pub poll: Duration,
}

/// The key of failover customer `index`: the same as the crash soak's.
pub(crate) fn customer_of(key: &str) -> Option<usize> {
    key.strip_prefix('c')?.parse().ok()
}

/// Reads [`TOKENS_VAR`]'s text: `index=token` pairs, comma-separated.
pub(crate) fn parse_tokens(text: &str) -> Option<Vec<(usize, String)>> {
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (i, t) = pair.split_once('=')?;
            Some((i.parse().ok()?, t.to_owned()))
        })
        .collect()
}

/// Runs a gateway until its standard input closes. The appkey, the tokens and the database
/// come from [`crate::child::APPKEY_VAR`], [`TOKENS_VAR`] and [`POSTGRES_VAR`].
pub fn run_gateway(args: &GatewayArgs) -> Result<(), String> {
    crate::child::log_if_asked();
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let appkey = var(crate::child::APPKEY_VAR)?;
    let url = var(POSTGRES_VAR)?;
    let tokens = parse_tokens(&var(TOKENS_VAR)?).ok_or("the tokens cannot be read")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("no runtime: {e}"))?;
    runtime.block_on(gateway(args, appkey, url, tokens))
}

async fn gateway(
    args: &GatewayArgs,
    appkey: String,
    url: String,
    tokens: Vec<(usize, String)>,
) -> Result<(), String> {
    let tell = Arc::new(Teller::default());
    let driving: Arc<Mutex<BTreeSet<usize>>> = Arc::default();
    let start = |index: usize| {
        let Some(token) = tokens.iter().find(|(i, _)| *i == index).map(|(_, t)| t) else {
            return;
        };
        if index >= args.all_customers
            || !driving
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(index)
        {
            return;
        }
        let customer = Customer {
            index,
            mode: "failover",
            base_url: args.base_url.clone(),
            integration_id: args.integration_id.clone(),
            appkey: Secret(appkey.clone()),
            token: Secret(token.clone()),
            transport: args.transport,
            key: crate::child::key(index),
            owner: format!("gateway-{}", args.name),
            lease_ttl: args.lease_ttl,
            messages: args.messages,
            agent_messages: args.agent_messages,
            pace: args.pace,
            seed: args.seed,
        };
        let (url, tell, driving) = (url.clone(), Arc::clone(&tell), Arc::clone(&driving));
        tokio::spawn(async move {
            drive(customer, url, tell).await;
            driving
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&index);
        });
    };
    for &index in &args.customers {
        start(index);
    }
    let lookout = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || PostgresStore::connect(&url))
            .await
            .map_err(|e| format!("the store: {e}"))?
            .map_err(|e| format!("the store: {e}"))?
    };
    let lookout = Arc::new(lookout);
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    let mut tick = tokio::time::interval(args.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            read = stdin.read(&mut buf) => match read {
                // The parent closed it (or is gone): the run is over.
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => {}
            },
            _ = tick.tick() => {
                let store = Arc::clone(&lookout);
                let found = tokio::task::spawn_blocking(move || store.unclaimed(64)).await;
                match found {
                    Ok(Ok(keys)) => {
                        for index in keys.iter().filter_map(|k| customer_of(k)) {
                            start(index);
                        }
                    }
                    Ok(Err(e)) => eprintln_problem(&args.name, &format!("unclaimed: {e}")),
                    Err(e) => eprintln_problem(&args.name, &format!("unclaimed: {e}")),
                }
            }
        }
    }
}

/// A gateway's own trouble (not a customer's), on stderr.
fn eprintln_problem(name: &str, what: &str) {
    #[allow(clippy::print_stderr)] // the gateway's own log
    {
        eprintln!("chat-soak gateway {name}: {what}");
    }
}

/// One customer's session on this gateway: a store connection and an app connection of its
/// own (PostgreSQL connections serve one call at a time), then the app until it is done or
/// another gateway holds the session.
async fn drive(customer: Customer, url: String, tell: Arc<Teller>) {
    let index = customer.index;
    let opened = tokio::task::spawn_blocking(move || {
        let store = PostgresStore::connect(&url).map_err(|e| e.to_string())?;
        let inbox = PostgresInbox::connect(&url).map_err(|e| e.to_string())?;
        Ok::<_, String>((store, inbox))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    let (store, inbox) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            tell.tell(index, Fact::Problem(format!("the database: {e}")));
            return;
        }
    };
    let store: Arc<dyn SessionStore> = Arc::new(store);
    let inbox: Arc<dyn Inbox> = Arc::new(inbox);
    crate::app_tokio::run(&customer, store, inbox, tell, true).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_keys_read_back() {
        assert_eq!(
            parse_tokens("0=jwt.a.b.c,3=jwt.d.e.f"),
            Some(vec![(0, "jwt.a.b.c".into()), (3, "jwt.d.e.f".into())])
        );
        assert_eq!(parse_tokens(""), Some(vec![]));
        assert_eq!(parse_tokens("x=1"), None);
        assert_eq!(parse_tokens("1"), None);
        assert_eq!(customer_of("c12"), Some(12));
        assert_eq!(customer_of("x12"), None);
        assert_eq!(customer_of("c"), None);
    }
}
