//! What a client is built with, whatever the adapter: [`Options`] and the builder setters
//! every adapter's `ClientBuilder` shares ([`client_builder_setters!`](crate::client_builder_setters)).

use std::time::Duration;

use chat_core::wire::MappedData;
use chat_core::{AppKey, ChatError, Config, InitParams, Resumption, Session, Token, TokenRefresh};

/// Default size of the event queue.
pub const DEFAULT_EVENT_CAPACITY: usize = 1024;
/// The outbox's limit for a client with a store when its configuration sets none: the
/// longest the core allows, so that a send outlives restarts and outages.
pub const DEFAULT_STORED_OUTBOX: Duration = Duration::from_secs(3600);

/// How the event stream is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StreamTransport {
    /// HTTP long polling, what AXP serves (the default): over a dedicated HTTP/1.1
    /// connection per client, or over the builder's HTTP client or transport when one is
    /// given.
    #[default]
    LongPoll,
    /// A WebSocket on the events resource (the emulator's extension).
    WebSocket,
    /// Try the WebSocket upgrade with a short deadline; fall back to long polling for good if
    /// the server does not upgrade.
    Auto,
}

/// The settings of a client that do not depend on its runtime: the official SDK's
/// `SDKInitParams` and configuration, and the client's own (event queue, transport choice).
/// Each adapter's `ClientBuilder` holds one and adds its I/O (HTTP client, transports, token
/// provider).
#[derive(Clone)]
pub struct Options {
    /// `https://` base URL of the AXP region.
    pub host: String,
    /// The chat integration's id (a UUID).
    pub integration_id: String,
    /// The account's application key.
    pub appkey: AppKey,
    /// The chat JWT to start with, if any.
    pub token: Option<String>,
    /// chat-core's configuration.
    pub config: Config,
    /// Shown when the JWT carries no customer name.
    pub display_name: Option<String>,
    /// Context for routing.
    pub session_parameters: Option<MappedData>,
    /// Allow `http://` to a host that is not loopback.
    pub allow_plain_http: bool,
    /// How the event stream is carried.
    pub transport: StreamTransport,
    /// How long `Auto` waits for the WebSocket upgrade.
    pub ws_upgrade_timeout: Duration,
    /// Size of the event queue.
    pub capacity: usize,
    /// How long before `exp` a token provider is asked for a new token.
    pub refresh_lead: Duration,
    /// A session to resume instead of creating one.
    pub resume: Option<Resumption>,
    /// Added to the `User-Agent` of every request, after this SDK's own name and version.
    pub user_agent: Option<String>,
    /// Where the session is kept across processes, if anywhere: `connect` then resumes what
    /// the store holds, or starts afresh when it holds nothing.
    pub store: Option<crate::StoreOptions>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token and appkey never show.
        f.debug_struct("Options")
            .field("host", &self.host)
            .field("integration_id", &self.integration_id)
            .field("config", &self.config)
            .field("transport", &self.transport)
            .field("capacity", &self.capacity)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Options {
    /// Options for this host, integration and appkey, everything else by default.
    pub fn new(
        host: impl Into<String>,
        integration_id: impl Into<String>,
        appkey: impl AsRef<str>,
    ) -> Self {
        Self {
            host: host.into(),
            integration_id: integration_id.into(),
            appkey: AppKey::new(appkey),
            token: None,
            config: Config::default(),
            display_name: None,
            session_parameters: None,
            allow_plain_http: false,
            transport: StreamTransport::LongPoll,
            ws_upgrade_timeout: Duration::from_secs(3),
            capacity: DEFAULT_EVENT_CAPACITY,
            refresh_lead: chat_core::TOKEN_WARNING,
            resume: None,
            user_agent: None,
            store: None,
        }
    }

    /// The session these options describe. With a token provider (`provider`), the session
    /// asks for tokens itself (ahead of expiry and after a 401), starting with the first one
    /// when no token was given.
    pub fn session(&self, provider: bool) -> Result<Session, ChatError> {
        let mut config = self.config.clone();
        if self.store.is_some() {
            // Kept in a store: every send is written before it first goes out, and the
            // outbox delivers it whichever process holds the session.
            config.write_ahead = true;
            config.outbox.get_or_insert(DEFAULT_STORED_OUTBOX);
        }
        if provider && config.token_refresh.is_none() {
            config.token_refresh = Some(TokenRefresh {
                lead: self.refresh_lead,
                ..TokenRefresh::default()
            });
        }
        let mut params = match &self.token {
            Some(text) => InitParams::new(
                self.host.clone(),
                &self.integration_id,
                Token::parse(text)?,
                self.appkey.clone(),
            )?,
            None if provider => InitParams::without_token(
                self.host.clone(),
                &self.integration_id,
                self.appkey.clone(),
            )?,
            None => {
                return Err(ChatError::InvalidInitParams(
                    "a token or a token provider is required".into(),
                ));
            }
        };
        params = params.allow_plain_http(self.allow_plain_http);
        if let Some(name) = &self.display_name {
            params = params.display_name(name.clone());
        }
        if let Some(p) = &self.session_parameters {
            params = params.session_parameters(p.clone());
        }
        if let Some(ua) = &self.user_agent {
            params = params.user_agent(ua.clone());
        }
        Session::new(params, config)
    }
}

/// The setters every adapter's `ClientBuilder` shares, defined once: expand it inside
/// `impl ClientBuilder { … }` of a builder with an `options: chat_driver::Options` field.
#[macro_export]
macro_rules! client_builder_setters {
    () => {
        /// The chat JWT to start with (`jwt.` prefix included).
        #[must_use]
        pub fn token(mut self, token: impl Into<String>) -> Self {
            self.options.token = Some(token.into());
            self
        }

        /// How long before `exp` the token provider is asked for a new token; default 180 s,
        /// the `TOKEN_EXPIRY_REMINDER` time. Never sooner than half the token's remaining
        /// life.
        #[must_use]
        pub fn refresh_lead(mut self, lead: ::std::time::Duration) -> Self {
            self.options.refresh_lead = lead;
            self
        }

        /// chat-core's configuration: timeouts (ranges as in the official SDK), the outbox,
        /// the jitter's seed. See `chat_core::Config` for every field, its default and range.
        #[must_use]
        pub fn config(mut self, config: $crate::__private::Config) -> Self {
            self.options.config = config;
            self
        }

        /// The customer's display name, used if the token names none (≤ 70 characters).
        #[must_use]
        pub fn display_name(mut self, name: impl Into<String>) -> Self {
            self.options.display_name = Some(name.into());
            self
        }

        /// Session parameters (at most 20 × 64-character keys → 256-character values).
        #[must_use]
        pub fn session_parameters(mut self, parameters: $crate::__private::MappedData) -> Self {
            self.options.session_parameters = Some(parameters);
            self
        }

        /// Allow `http://` to a host that is not loopback (never in production). Loopback
        /// hosts may always use plain HTTP.
        #[must_use]
        pub fn allow_plain_http(mut self, allow: bool) -> Self {
            self.options.allow_plain_http = allow;
            self
        }

        /// Keeps the session in `store` under `key` (one key per customer's session):
        /// `connect` claims it and resumes what the store holds, or starts afresh when it
        /// holds nothing; every send is written there before it first goes out, and the
        /// position of what the application has taken follows it. A store that cannot be
        /// reached, holds something corrupt or is held by another process fails `connect`
        /// with `Error::Store`, never a fresh start in its place.
        #[must_use]
        pub fn store(
            mut self,
            store: ::std::sync::Arc<dyn $crate::__private::SessionStore>,
            key: impl Into<String>,
        ) -> Self {
            let mut kept = $crate::StoreOptions::new(store, key);
            if let Some(before) = self.options.store.take() {
                kept.customer = before.customer;
                kept.positions_by_app = before.positions_by_app;
            }
            self.options.store = Some(kept);
            self
        }

        /// The application's label for the customer the session belongs to, kept with it in
        /// the store (never read by the SDK), so that a process that takes the session over
        /// can mint the next token for the right person. Call after `store`.
        #[must_use]
        pub fn customer(mut self, label: impl Into<String>) -> Self {
            if let Some(kept) = &mut self.options.store {
                kept.customer = Some(label.into());
            }
            self
        }

        /// How long the store's lease on the session lasts (default 15 s): a process that
        /// dies holds its sessions this long at most before another may take them over.
        /// Renewed every third of it. Call after `store`.
        #[must_use]
        pub fn lease_ttl(mut self, ttl: ::std::time::Duration) -> Self {
            if let Some(kept) = &mut self.options.store {
                kept.lease_ttl = ttl;
            }
            self
        }

        /// The application records the position of what it takes itself, in its own
        /// transaction (`chat_store::sqlite::record_position`, the exactly-once recipe): the
        /// client then never moves the stored position when an event is taken, so that it
        /// cannot run ahead of the application's commit. Call after `store`.
        #[must_use]
        pub fn app_records_positions(mut self) -> Self {
            if let Some(kept) = &mut self.options.store {
                kept.positions_by_app = true;
            }
            self
        }

        /// Who claims the session in the store: a name per process (default: the host name
        /// and process id). Call after `store`.
        #[must_use]
        pub fn store_owner(mut self, owner: impl Into<String>) -> Self {
            if let Some(kept) = &mut self.options.store {
                kept.owner = owner.into();
            }
            self
        }

        /// How to carry the event stream; default `StreamTransport::LongPoll`.
        #[must_use]
        pub fn stream_transport(mut self, transport: $crate::StreamTransport) -> Self {
            self.options.transport = transport;
            self
        }

        /// How long `StreamTransport::Auto` waits for the WebSocket upgrade; default 3 s.
        #[must_use]
        pub fn ws_upgrade_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.options.ws_upgrade_timeout = timeout;
            self
        }

        /// Size of the event queue; default 1024. When the application falls behind,
        /// nothing is dropped: once the queue is full the client stops taking in event-stream
        /// answers until there is room, and the events wait on the server, which keeps them
        /// until a later poll acknowledges them.
        #[must_use]
        pub fn event_capacity(mut self, capacity: usize) -> Self {
            self.options.capacity = capacity.max(1);
            self
        }

        /// Resume this session (a "page reload") instead of creating one.
        #[must_use]
        pub fn resume(mut self, resumption: $crate::__private::Resumption) -> Self {
            self.options.resume = Some(resumption);
            self
        }

        /// Text added to the `User-Agent` of every request, after this SDK's name and version
        /// (for instance your app's name and version).
        #[must_use]
        pub fn user_agent(mut self, product: impl Into<String>) -> Self {
            self.options.user_agent = Some(product.into());
            self
        }
    };
}

/// Defines an adapter's `ClientBuilder`: its fields, `Debug`, `new`, the setters of
/// [`client_builder_setters!`] and those of the pluggable parts (`token_provider`,
/// `tls_config`, `http_transport`, `event_transport`). Expand it where the names
/// `TokenProvider`, `HttpTransport`, `EventTransport` and `TlsClientConfig` are in scope,
/// with the struct's docs and the type its `http_client` setter stores; the adapter adds
/// `http_client` and `connect`.
#[macro_export]
macro_rules! client_builder {
    ($(#[$meta:meta])* http_client: $http_client:ty) => {
        $(#[$meta])*
        pub struct ClientBuilder {
            options: $crate::Options,
            provider: Option<::std::sync::Arc<dyn TokenProvider>>,
            http: Option<::std::sync::Arc<dyn HttpTransport>>,
            http_client: Option<$http_client>,
            events: Option<Box<dyn EventTransport>>,
            tls: Option<::std::sync::Arc<TlsClientConfig>>,
        }

        impl ::std::fmt::Debug for ClientBuilder {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct("ClientBuilder")
                    .field("options", &self.options)
                    .field("provider", &self.provider.is_some())
                    .finish_non_exhaustive()
            }
        }

        impl ClientBuilder {
            /// A builder for this AXP host (such as `https://na.api.avayacloud.com`), chat
            /// integration and application key. Add a [`token`](Self::token) or a
            /// [`token_provider`](Self::token_provider) (or both) before connecting.
            pub fn new(
                host: impl Into<String>,
                integration_id: impl Into<String>,
                appkey: impl AsRef<str>,
            ) -> Self {
                Self {
                    options: $crate::Options::new(host, integration_id, appkey),
                    provider: None,
                    http: None,
                    http_client: None,
                    events: None,
                    tls: None,
                }
            }

            $crate::client_builder_setters!();

            /// Where to get tokens: called at connect when no [`token`](Self::token) is
            /// given, ahead of expiry, and after a 401. A closure returning the token is one.
            #[must_use]
            pub fn token_provider(mut self, provider: impl TokenProvider) -> Self {
                self.provider = Some(::std::sync::Arc::new(provider));
                self
            }

            /// The TLS configuration (rustls) of the connections the client opens itself:
            /// the lean long polls, the WebSocket, and the REST calls unless an
            /// [`http_client`](Self::http_client) or [`http_transport`](Self::http_transport)
            /// is given. Use it to trust extra roots (a test server's self-signed
            /// certificate); give it no ALPN protocols, as these connections speak HTTP/1.1.
            /// Default: rustls with the webpki roots, one configuration per process.
            #[must_use]
            pub fn tls_config(mut self, config: ::std::sync::Arc<TlsClientConfig>) -> Self {
                self.tls = Some(config);
                self
            }

            /// Your own HTTP exchange for REST calls and probes (and for long polling unless
            /// an [`event_transport`](Self::event_transport) is given).
            #[must_use]
            pub fn http_transport(mut self, http: ::std::sync::Arc<dyn HttpTransport>) -> Self {
                self.http = Some(http);
                self
            }

            /// Your own event stream transport; overrides
            /// [`stream_transport`](Self::stream_transport).
            #[must_use]
            pub fn event_transport(mut self, events: Box<dyn EventTransport>) -> Self {
                self.events = Some(events);
                self
            }
        }
    };
}
