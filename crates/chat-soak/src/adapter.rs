//! The seam between the soak and a client library: what a soak session needs from a client,
//! whatever its threading model. One module per adapter implements it
//! ([`crate::tokio_adapter`], [`crate::blocking_adapter`], [`crate::smol_adapter`]).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chat_core::{Config, EngagementId, Event, Message};
use chat_emulator::Control;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The event-stream transport a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// HTTP long polling (what AXP serves).
    LongPoll,
    /// The emulator's WebSocket form of the events resource.
    #[serde(rename = "websocket")]
    WebSocket,
}

impl Transport {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::LongPoll => "long-poll",
            Self::WebSocket => "websocket",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Mints chat tokens for one customer through the emulator's control handle, counting calls.
/// This is what a real app's backend does; the adapter wraps it in its own token provider.
pub struct TokenSource {
    control: Control,
    customer: String,
    ttl: Duration,
    calls: AtomicU64,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("customer", &self.customer)
            .field("ttl", &self.ttl)
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A source of `ttl`-long tokens for `customer` (a verified customer).
    pub fn new(control: Control, customer: impl Into<String>, ttl: Duration) -> Self {
        Self {
            control,
            customer: customer.into(),
            ttl,
            calls: AtomicU64::new(0),
        }
    }

    /// A fresh token. The text is a secret: hand it to the client, never print it.
    pub fn mint(&self) -> String {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.control.mint_token(&self.customer, true, self.ttl)
    }

    /// How many tokens were minted so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

/// Everything an adapter needs to connect one session.
#[derive(Debug, Clone)]
pub struct ConnectSpec {
    /// The base URL clients talk to (the soak's proxy in front of the emulator).
    pub base_url: String,
    /// The integration id.
    pub integration_id: String,
    /// The appkey (a secret: the `Debug` of this struct hides it).
    pub appkey: Secret,
    /// The event-stream transport.
    pub transport: Transport,
    /// chat-core's configuration (short poll timeout, the outbox when available).
    pub config: Config,
    /// The customer's tokens; the adapter calls [`TokenSource::mint`] from its token provider.
    pub tokens: Arc<TokenSource>,
}

/// A string that is never shown by `Debug`.
#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A client call's error, as the soak records it: the official code and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterError {
    /// The official code, such as `ACS-320`.
    pub code: String,
    /// The error's `Display` text (the client libraries keep secrets out of it).
    pub text: String,
}

impl AdapterError {
    /// An error with this code and text.
    pub fn new(code: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            text: text.into(),
        }
    }

    /// Whether the session is gone on the server ("Session not found", ACS-320) or the client
    /// has shut down (ACS-310): the app must start a new session.
    pub fn session_gone(&self) -> bool {
        self.code == "ACS-320" || self.code == "ACS-310"
    }
}

impl fmt::Display for AdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for AdapterError {}

/// An event and when the soak received it.
#[derive(Debug, Clone)]
pub struct TimedEvent {
    /// The event.
    pub event: Event,
    /// When the soak's reader got it from the client.
    pub at: Instant,
}

/// A connected session.
pub struct Connection {
    /// The handle; calls may run concurrently with reading events.
    pub client: Arc<dyn SoakClient>,
    /// The client's events in order; ends after `SHUTDOWN` or when the client is gone.
    pub events: mpsc::UnboundedReceiver<TimedEvent>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("session_id", &self.client.session_id())
            .finish_non_exhaustive()
    }
}

/// A client library, as the soak drives it.
#[async_trait]
pub trait Adapter: Send + Sync + 'static {
    /// Its name in reports (`tokio`, `blocking`, `smol`).
    fn name(&self) -> &'static str;

    /// Initializes a new session (`init`) with a token provider over [`ConnectSpec::tokens`].
    async fn connect(&self, spec: &ConnectSpec) -> Result<Connection, AdapterError>;
}

/// One connected session's commands.
#[async_trait]
pub trait SoakClient: Send + Sync + 'static {
    /// The session's id.
    fn session_id(&self) -> String;

    /// Creates an engagement (`createEngagement`).
    async fn create_engagement(&self) -> Result<EngagementId, AdapterError>;

    /// Joins an engagement of the same customer started by an earlier session
    /// (`getEngagements`, then `join`).
    async fn join(&self, engagement: &EngagementId) -> Result<(), AdapterError>;

    /// Sends a text message (`sendMessage`) and returns it as stored.
    async fn send(&self, engagement: &EngagementId, text: &str) -> Result<Message, AdapterError>;

    /// The whole history of the engagement (`getMessages` and its pages), any order.
    async fn history(&self, engagement: &EngagementId) -> Result<Vec<Message>, AdapterError>;

    /// Shuts the client down (`shutdown`); errors are ignored.
    async fn shutdown(&self);
}
