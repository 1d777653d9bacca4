//! A local AXP Digital service speaking the real wire protocol.
//!
//! The emulator serves, on one HTTP(S) port:
//! - OAuth client credentials (`/api/auth/v1/{accountId}/protocol/openid-connect/token` and the
//!   legacy `/auth/realms/{accountId}/…`) and the Generate JWT Token API
//!   (`/api/digital/chat/v1/accounts/{accountId}/tokens`), reference section 8;
//! - the customer chat API under `/sdk/digital/chat/v1/integrations/{integrationId}/…`,
//!   reference section 6, with the long-polling events resource and its WebSocket form;
//! - a provisioning API for integrations, and a control and fault API under `/emulator/v1/…`.
//!
//! With [`EmulatorBuilder::console`], a web console on a port of its own
//! (`http://127.0.0.1:PORT/console`) in which a person plays the contact center.
//!
//! A simulated agent (or bot) answers customers; [`Control`] drives the contact-center side
//! and injects faults from tests. See `docs/emulator.md` for the whole picture.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! let emu = chat_emulator::Emulator::builder()
//!     .hold_time(Duration::from_millis(300))
//!     .agent(chat_emulator::AgentMode::Off)
//!     .start()
//!     .await?;
//! assert!(emu.base_url().starts_with("http://127.0.0.1:"));
//! let token = emu.control().mint_token("customer-1", false, Duration::from_secs(60));
//! assert!(token.starts_with("jwt."));
//! emu.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod agent;
mod auth_api;
mod chat_api;
pub mod cli;
mod console;
mod control;
mod control_http;
mod events;
mod faults;
mod jwt;
mod listen;
mod live;
mod problem;
mod provisioning;
mod server;
mod state;
mod tls;
mod util;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use agent::AgentMode;
pub use control::{
    Changes, Control, ControlError, Delivery, EngagementInfo, IntegrationInfo, SessionInfo,
    SettingsInfo, Snapshot, Stats, TranscriptEntry,
};
pub use faults::{ActionView, ArmedFault, DelayView, FaultsView, FiredFault, OutageView, Route};
pub use live::{Change, ChangeKind, StreamState};

use state::{Counters, Inner, Integration, Secrets, Settings, World};

/// Everything a backend and a client need to use the emulator.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The AXP account id (the OAuth realm).
    pub account_id: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// The application key sent as the `appkey` header.
    pub appkey: String,
    /// The chat integration provisioned at start.
    pub integration_id: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("account_id", &self.account_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("appkey", &"<redacted>")
            .field("integration_id", &self.integration_id)
            .finish()
    }
}

/// The JSON line the binary prints at start: the names a client configuration uses.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Announcement<'a> {
    #[serde(rename = "hostURL")]
    host_url: &'a str,
    account_id: &'a str,
    client_id: &'a str,
    client_secret: &'a str,
    appkey: &'a str,
    integration_id: &'a str,
    control_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_cert_file: Option<String>,
    #[serde(rename = "consoleURL", skip_serializing_if = "Option::is_none")]
    console_url: Option<&'a str>,
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The certificate could not be made or written.
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// Configures and starts an [`Emulator`].
#[derive(Clone)]
pub struct EmulatorBuilder {
    listen: SocketAddr,
    tls: bool,
    cert_path: Option<PathBuf>,
    tls_hosts: Vec<String>,
    hold_time: Duration,
    allow_short_token_ttl: bool,
    chat_token_ttl: Option<Duration>,
    access_token_ttl: Duration,
    agent: AgentMode,
    join_delay: Duration,
    reply_delay: Duration,
    ws_ping_interval: Duration,
    limits: listen::Limits,
    account_id: String,
    client_id: Option<String>,
    client_secret: Option<String>,
    appkey: Option<String>,
    integration_id: Option<String>,
    control_key: Option<String>,
    console: bool,
    console_listen: Option<SocketAddr>,
    console_secret: Option<String>,
    /// A taken console address falls back to a free port (the binaries' derived default).
    pub(crate) console_fallback: bool,
}

impl fmt::Debug for EmulatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorBuilder")
            .field("listen", &self.listen)
            .field("tls", &self.tls)
            .field("hold_time", &self.hold_time)
            .field("header_read_timeout", &self.limits.header_read_timeout)
            .field("idle_timeout", &self.limits.idle_timeout)
            .field("max_connections", &self.limits.max_connections)
            .field("agent", &self.agent)
            .field("console", &self.console)
            .field("console_listen", &self.console_listen)
            .finish_non_exhaustive()
    }
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            tls: false,
            cert_path: None,
            tls_hosts: Vec::new(),
            hold_time: Duration::from_secs(25),
            allow_short_token_ttl: false,
            chat_token_ttl: None,
            access_token_ttl: Duration::from_secs(900),
            agent: AgentMode::Agent,
            join_delay: Duration::from_millis(200),
            reply_delay: Duration::from_millis(300),
            ws_ping_interval: Duration::from_secs(20),
            limits: listen::Limits::default(),
            account_id: "EMULAB".to_owned(),
            client_id: None,
            client_secret: None,
            appkey: None,
            integration_id: None,
            control_key: None,
            console: false,
            console_listen: None,
            console_secret: None,
            console_fallback: false,
        }
    }
}

impl EmulatorBuilder {
    /// Address to listen on; default `127.0.0.1:0` (a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Serve HTTPS with a self-signed certificate made at start.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// Where to write the certificate (PEM) clients must trust; default a file in the
    /// temporary directory named after the port.
    pub fn cert_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.cert_path = Some(path.into());
        self
    }

    /// An extra host name or IP address for the certificate (localhost, 127.0.0.1 and ::1
    /// are always in it).
    pub fn tls_host(mut self, host: impl Into<String>) -> Self {
        self.tls_hosts.push(host.into());
        self
    }

    /// How long a poll with nothing to deliver is held before `200 []`; default 25 s.
    pub fn hold_time(mut self, hold: Duration) -> Self {
        self.hold_time = hold;
        self
    }

    /// Allow chat tokens shorter than 15 minutes: the token API then accepts any positive
    /// `ttl` in minutes (fractions too) and an extra `ttlSeconds` field.
    pub fn allow_short_token_ttl(mut self, allow: bool) -> Self {
        self.allow_short_token_ttl = allow;
        self
    }

    /// Every chat token minted by the token API lives this long, whatever was asked
    /// (lets unchanged clients run with short-lived tokens).
    pub fn chat_token_ttl(mut self, ttl: Duration) -> Self {
        self.chat_token_ttl = Some(ttl);
        self
    }

    /// Lifetime of OAuth access tokens (`expires_in`); default 900 s.
    pub fn access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_token_ttl = ttl;
        self
    }

    /// The contact-center simulation; default [`AgentMode::Agent`].
    pub fn agent(mut self, mode: AgentMode) -> Self {
        self.agent = mode;
        self
    }

    /// Sets both agent delays: before joining a new engagement and before each answer
    /// (defaults 200 ms and 300 ms).
    pub fn agent_delay(mut self, delay: Duration) -> Self {
        self.join_delay = delay;
        self.reply_delay = delay;
        self
    }

    /// The agent's delay before each answer only.
    pub fn agent_reply_delay(mut self, delay: Duration) -> Self {
        self.reply_delay = delay;
        self
    }

    /// Interval of server pings on WebSocket connections; default 20 s.
    pub fn ws_ping_interval(mut self, interval: Duration) -> Self {
        self.ws_ping_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How long a connection may take to send a whole request head, counted from accept
    /// (TLS handshake included) or from the first byte of a later request on a keep-alive
    /// connection; past it the connection is closed. Default 10 s. Requests in flight (held
    /// long polls) and WebSockets are never cut by it.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.limits.header_read_timeout = timeout;
        self
    }

    /// How long a keep-alive connection may wait for its next request before it is closed;
    /// default 60 s. A connection with a request in flight (a held long poll) or upgraded to a
    /// WebSocket is not idle.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.limits.idle_timeout = timeout;
        self
    }

    /// At most this many open connections (WebSockets included); default 16,384 (at least 1).
    /// At the cap, the connection that has waited longest without a request in flight (idle,
    /// or still sending its head) is closed to admit a new one; when every connection has a
    /// request in flight, new ones wait in the listen backlog until one frees up.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.limits.max_connections = max.max(1);
        self
    }

    /// The account id (realm); default `EMULAB`.
    pub fn account_id(mut self, id: impl Into<String>) -> Self {
        self.account_id = id.into();
        self
    }

    /// Fixed OAuth client credentials instead of random ones.
    pub fn client_credentials(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self.client_secret = Some(secret.into());
        self
    }

    /// A fixed appkey instead of a random one.
    pub fn appkey(mut self, appkey: impl Into<String>) -> Self {
        self.appkey = Some(appkey.into());
        self
    }

    /// A fixed id (a UUID) for the integration provisioned at start.
    pub fn integration_id(mut self, id: impl Into<String>) -> Self {
        self.integration_id = Some(id.into());
        self
    }

    /// A fixed key for the control API instead of a random one.
    pub fn control_key(mut self, key: impl Into<String>) -> Self {
        self.control_key = Some(key.into());
        self
    }

    /// Serve the web console (off by default in the library, on in the binaries): its own
    /// port, `/console`. See [`Emulator::console_url`].
    pub fn console(mut self, on: bool) -> Self {
        self.console = on;
        self
    }

    /// Where the console listens (implies [`console`](Self::console)); default `127.0.0.1:0`
    /// (a free port). An address other than loopback requires a console secret: the one
    /// given with [`console_secret`](Self::console_secret), or one generated at start
    /// ([`Emulator::console_secret`]).
    pub fn console_listen(mut self, addr: SocketAddr) -> Self {
        self.console = true;
        self.console_listen = Some(addr);
        self
    }

    /// A secret the console's API requires (`x-console-secret`, entered once in the page),
    /// also on loopback.
    pub fn console_secret(mut self, secret: impl Into<String>) -> Self {
        self.console_secret = Some(secret.into());
        self
    }

    /// Binds, provisions the first integration and starts serving.
    pub async fn start(self) -> Result<Emulator, StartError> {
        let tcp = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: self.listen,
                source,
            })?;
        let local = tcp.local_addr().map_err(|source| StartError::Bind {
            addr: self.listen,
            source,
        })?;
        let console_listener = if self.console {
            let listen = self
                .console_listen
                .unwrap_or_else(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
            Some(console::bind(listen, self.console_fallback).await?)
        } else {
            None
        };
        let host = match local.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        let scheme = if self.tls { "https" } else { "http" };
        let base_url = format!("{scheme}://{host}:{}", local.port());
        let secrets = Secrets {
            account_id: self.account_id.clone(),
            client_id: self
                .client_id
                .clone()
                .unwrap_or_else(|| format!("emulator-{}", &util::new_uuid()[..8])),
            client_secret: self
                .client_secret
                .clone()
                .unwrap_or_else(|| util::random_token(24)),
            appkey: self
                .appkey
                .clone()
                .unwrap_or_else(|| util::random_token(16)),
            integration_id: self.integration_id.clone().unwrap_or_else(util::new_uuid),
            control_key: self
                .control_key
                .clone()
                .unwrap_or_else(|| util::random_token(24)),
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut world = World::new(self.agent);
        world.integrations.insert(
            secrets.integration_id.clone(),
            Integration {
                id: secrets.integration_id.clone(),
                name: "Default chat integration".to_owned(),
                settings: serde_json::json!({}),
                created_at: util::iso_now(),
            },
        );
        let inner = Arc::new(Inner {
            settings: Settings {
                hold_time: self.hold_time,
                allow_short_token_ttl: self.allow_short_token_ttl,
                chat_token_ttl: self.chat_token_ttl,
                access_token_ttl: self.access_token_ttl,
                join_delay: self.join_delay,
                reply_delay: self.reply_delay,
                ws_ping_interval: self.ws_ping_interval,
                base_url: base_url.clone(),
                scheme,
            },
            secrets,
            signer: jwt::Signer::new(),
            world: Mutex::new(world),
            faults: Mutex::new(Default::default()),
            counters: Counters::default(),
            shutdown,
        });
        // Each connection clones the router (an `Arc`) and calls it as a `Service<Request>`;
        // nothing is rebuilt per connection (`Router as Service<IncomingStream>` re-applied the
        // state per connection, about 35 KiB each, which dominated memory with 10,000 polls).
        let app = server::router(inner.clone());
        let (acceptor, cert_pem, cert_path) = if self.tls {
            let mut hosts = vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ];
            if !local.ip().is_unspecified() && !local.ip().is_loopback() {
                hosts.push(local.ip().to_string());
            }
            hosts.extend(self.tls_hosts.iter().cloned());
            let cert = tls::self_signed(hosts).map_err(StartError::Tls)?;
            let path = self.cert_path.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!("chat-emulator-{}.pem", local.port()))
            });
            std::fs::write(&path, &cert.pem)
                .map_err(|e| StartError::Tls(format!("cannot write {}: {e}", path.display())))?;
            let acceptor = tokio_rustls::TlsAcceptor::from(cert.config.clone());
            (Some(acceptor), Some(cert.pem), Some(path))
        } else {
            (None, None, None)
        };
        let server = tokio::spawn(listen::serve(tcp, app, self.limits, acceptor, shutdown_rx));
        tracing::info!(%base_url, "chat emulator listening");
        let console = console_listener.map(|bound| {
            let running = console::serve(inner.clone(), bound, self.console_secret.clone());
            tracing::info!(url = %running.url, "console listening");
            running
        });
        Ok(Emulator {
            credentials: Credentials {
                account_id: inner.secrets.account_id.clone(),
                client_id: inner.secrets.client_id.clone(),
                client_secret: inner.secrets.client_secret.clone(),
                appkey: inner.secrets.appkey.clone(),
                integration_id: inner.secrets.integration_id.clone(),
            },
            inner,
            base_url,
            server: Some(server),
            cert_pem,
            cert_path,
            console,
        })
    }
}

/// A running emulator. Dropping it stops serving; [`shutdown`](Self::shutdown) also waits.
pub struct Emulator {
    inner: Arc<Inner>,
    base_url: String,
    credentials: Credentials,
    server: Option<JoinHandle<()>>,
    cert_pem: Option<String>,
    cert_path: Option<PathBuf>,
    console: Option<console::Running>,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("base_url", &self.base_url)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// A builder with the defaults (plain HTTP on a free loopback port, 25 s hold, agent on).
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The account's credentials and the first integration.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The key of the control API (`x-emulator-control-key`).
    pub fn control_key(&self) -> &str {
        &self.inner.secrets.control_key
    }

    /// The certificate (PEM) to trust, when serving HTTPS.
    pub fn ca_cert_pem(&self) -> Option<&str> {
        self.cert_pem.as_deref()
    }

    /// Where the certificate was written, when serving HTTPS.
    pub fn cert_path(&self) -> Option<&Path> {
        self.cert_path.as_deref()
    }

    /// The router that serves this emulator's API, to drive it in process without sockets
    /// (`tower::ServiceExt::oneshot`), as the fuzz target `emulator` and its proptest twin do.
    /// Not part of the supported API.
    #[doc(hidden)]
    pub fn router(&self) -> axum::Router {
        server::router(self.inner.clone())
    }

    /// The console's address, `http://127.0.0.1:PORT/console`, when it is served.
    pub fn console_url(&self) -> Option<&str> {
        self.console.as_ref().map(|c| c.url.as_str())
    }

    /// The secret the console's API requires, if any (given, or generated because the
    /// console listens off loopback).
    pub fn console_secret(&self) -> Option<&str> {
        self.console.as_ref().and_then(|c| c.secret.as_deref())
    }

    /// Whether [`console_secret`](Self::console_secret) was generated at start (and should
    /// be shown to the person who will log in).
    pub fn console_secret_generated(&self) -> bool {
        self.console.as_ref().is_some_and(|c| c.secret_generated)
    }

    /// The in-process control handle.
    pub fn control(&self) -> Control {
        Control {
            inner: self.inner.clone(),
        }
    }

    /// The one-line JSON a client needs (`hostURL`, `accountId`, `clientId`, `clientSecret`,
    /// `appkey`, `integrationId`, `controlKey`, `caCertFile` with TLS, and `consoleURL`
    /// with the console; never the console secret). It contains
    /// secrets: hand it only to the processes that should have them.
    pub fn announcement_json(&self) -> String {
        let c = &self.credentials;
        serde_json::to_string(&Announcement {
            host_url: &self.base_url,
            account_id: &c.account_id,
            client_id: &c.client_id,
            client_secret: &c.client_secret,
            appkey: &c.appkey,
            integration_id: &c.integration_id,
            control_key: &self.inner.secrets.control_key,
            ca_cert_file: self.cert_path.as_ref().map(|p| p.display().to_string()),
            console_url: self.console_url(),
        })
        .unwrap_or_default()
    }

    /// Stops accepting, ends held polls, WebSockets and agent tasks, and waits for the server.
    pub async fn shutdown(mut self) {
        let _ = self.inner.shutdown.send(true);
        if let Some(server) = self.server.take() {
            let abort = server.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), server)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        if let Some(console) = self.console.take() {
            let abort = console.task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), console.task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.inner.shutdown.send(true);
    }
}

impl Inner {
    /// The integration provisioned at start.
    pub(crate) fn default_integration(&self) -> String {
        self.secrets.integration_id.clone()
    }
}
