//! [`ClientBuilder`]: configuration and connection.

use std::sync::Arc;
use std::time::Duration;

use chat_core::wire::MappedData;
use chat_core::{AppKey, ChatError, Config, InitParams, ReplyValue, Resumption, Session, Token};

use crate::client::Client;
use crate::connection::Connection;
use chat_net::Call;

use crate::driver::{Answer, Command, Parts, Shared, fetch_token_off_thread};
use crate::http1::Http1LongPollTransport;
use crate::transport::{EventTransport, HttpTransport, LongPollTransport, ReqwestTransport};
use crate::ws::{AutoTransport, WebSocketTransport};
use crate::{Error, TlsClientConfig, TokenProvider};

/// Default size of the event queue.
pub const DEFAULT_EVENT_CAPACITY: usize = 1024;

/// How the event stream is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StreamTransport {
    /// HTTP long polling, what AXP serves (the default): over a dedicated HTTP/1.1
    /// connection per client ([`Http1LongPollTransport`]), or over the
    /// [`http_client`](ClientBuilder::http_client) or
    /// [`http_transport`](ClientBuilder::http_transport) when one is given.
    #[default]
    LongPoll,
    /// A WebSocket on the events resource (the emulator's extension).
    WebSocket,
    /// Try the WebSocket upgrade with a short deadline; fall back to long polling for good if
    /// the server does not upgrade.
    Auto,
}

/// Configures and connects a [`Client`].
///
/// ```no_run
/// # fn demo(jwt: String) -> Result<(), chat_blocking::Error> {
/// use chat_blocking::Client;
/// let (client, events) = Client::builder(
///     "https://na.api.avayacloud.com",
///     "123e4567-e89b-12d3-a456-426614174000",
///     "my-appkey",
/// )
/// .token(jwt)
/// .connect()?;
/// # Ok(()) }
/// ```
pub struct ClientBuilder {
    host: String,
    integration_id: String,
    appkey: AppKey,
    token: Option<String>,
    provider: Option<Arc<dyn TokenProvider>>,
    config: Config,
    display_name: Option<String>,
    session_parameters: Option<MappedData>,
    allow_plain_http: bool,
    transport: StreamTransport,
    http: Option<Arc<dyn HttpTransport>>,
    http_client: Option<ReqwestTransport>,
    events: Option<Box<dyn EventTransport>>,
    capacity: usize,
    refresh_lead: Duration,
    resume: Option<Resumption>,
    ws_upgrade_timeout: Duration,
    tls: Option<Arc<TlsClientConfig>>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("host", &self.host)
            .field("integration_id", &self.integration_id)
            .field("config", &self.config)
            .field("transport", &self.transport)
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
            host: host.into(),
            integration_id: integration_id.into(),
            appkey: AppKey::new(appkey),
            token: None,
            provider: None,
            config: Config::default(),
            display_name: None,
            session_parameters: None,
            allow_plain_http: false,
            transport: StreamTransport::LongPoll,
            http: None,
            http_client: None,
            events: None,
            capacity: DEFAULT_EVENT_CAPACITY,
            refresh_lead: chat_core::TOKEN_WARNING,
            resume: None,
            ws_upgrade_timeout: Duration::from_secs(3),
            tls: None,
        }
    }

    /// The chat JWT to start with (`jwt.` prefix included).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Where to get tokens: called at connect when no [`token`](Self::token) is given, ahead
    /// of expiry, and after a 401. Any `Fn() -> Result<String, BoxError>` closure is one.
    pub fn token_provider(mut self, provider: impl TokenProvider) -> Self {
        self.provider = Some(Arc::new(provider));
        self
    }

    /// How long before `exp` the provider is asked for a new token; default 180 s, the
    /// `TOKEN_EXPIRY_REMINDER` time. Never sooner than half the token's remaining life.
    pub fn refresh_lead(mut self, lead: Duration) -> Self {
        self.refresh_lead = lead;
        self
    }

    /// chat-core's configuration (timeouts, ranges as in the official SDK).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The customer's display name, used if the token names none.
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Session parameters (at most 20 × 64-character keys → 256-character values).
    pub fn session_parameters(mut self, parameters: MappedData) -> Self {
        self.session_parameters = Some(parameters);
        self
    }

    /// Allow `http://` to a host that is not loopback (never in production). Loopback hosts
    /// may always use plain HTTP.
    pub fn allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    /// How to carry the event stream; default [`StreamTransport::LongPoll`].
    pub fn stream_transport(mut self, transport: StreamTransport) -> Self {
        self.transport = transport;
        self
    }

    /// How long [`StreamTransport::Auto`] waits for the WebSocket upgrade; default 3 s.
    pub fn ws_upgrade_timeout(mut self, timeout: Duration) -> Self {
        self.ws_upgrade_timeout = timeout;
        self
    }

    /// The reqwest blocking client for REST calls (proxy, root certificates). Long polling
    /// and probes then go through it too (they can no longer be interrupted, so an aborted
    /// poll ends at its timeout); to keep the lean, interruptible polls, also pass
    /// [`event_transport`](Self::event_transport)`(Box::new(Http1LongPollTransport::new()))`.
    pub fn http_client(mut self, client: reqwest::blocking::Client) -> Self {
        self.http_client = Some(ReqwestTransport::with_client(client));
        self
    }

    /// The TLS configuration (rustls) of the connections the client opens itself: the long
    /// polls and probes of [`Http1LongPollTransport`], the WebSocket, and the REST calls
    /// unless an [`http_client`](Self::http_client) or
    /// [`http_transport`](Self::http_transport) is given. Use it to trust extra roots; give
    /// it no ALPN protocols. Default: rustls with the webpki roots, one configuration per
    /// process.
    pub fn tls_config(mut self, config: Arc<TlsClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Your own HTTP exchange for REST calls (and for long polling and probes unless an
    /// [`event_transport`](Self::event_transport) is given).
    pub fn http_transport(mut self, http: Arc<dyn HttpTransport>) -> Self {
        self.http = Some(http);
        self
    }

    /// Your own event stream transport; overrides [`stream_transport`](Self::stream_transport).
    pub fn event_transport(mut self, events: Box<dyn EventTransport>) -> Self {
        self.events = Some(events);
        self
    }

    /// Size of the event queue; default 1024. See [`Connection`] for the policy when the
    /// application falls behind.
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Resume this session (a "page reload") instead of creating one.
    pub fn resume(mut self, resumption: Resumption) -> Self {
        self.resume = Some(resumption);
        self
    }

    fn session(&self) -> Result<Session, Error> {
        let text = match (&self.token, &self.provider) {
            (Some(t), _) => Token::parse(t)?,
            (None, Some(p)) => fetch_token_off_thread(p.as_ref())?,
            (None, None) => {
                return Err(ChatError::InvalidInitParams(
                    "a token or a token provider is required".into(),
                )
                .into());
            }
        };
        let mut params = InitParams::new(
            self.host.clone(),
            &self.integration_id,
            text,
            self.appkey.clone(),
        )?
        .allow_plain_http(self.allow_plain_http);
        if let Some(name) = &self.display_name {
            params = params.display_name(name.clone());
        }
        if let Some(p) = &self.session_parameters {
            params = params.session_parameters(p.clone());
        }
        Ok(Session::new(params, self.config.clone())?)
    }

    fn lean_poll(&self) -> Box<dyn EventTransport> {
        let t = match &self.tls {
            Some(c) => Http1LongPollTransport::with_tls_config(Arc::clone(c)),
            None => Http1LongPollTransport::new(),
        };
        Box::new(t.allow_plain_http(self.allow_plain_http))
    }

    /// Creates (or resumes) the session, blocking until the server has answered, and starts
    /// the client's stream thread. Returns the handle and the event connection, whose first
    /// event is `INITIALIZED`. The token provider, if it is asked, is called on a thread of
    /// the client's (this one waits for it). Safe to call inside a tokio runtime's context
    /// (it blocks the calling thread).
    pub fn connect(mut self) -> Result<(Client, Connection), Error> {
        let session = self.session()?;
        let over_http = self.http.is_some() || self.http_client.is_some();
        let http: Arc<dyn HttpTransport> = match (self.http.take(), self.http_client.take()) {
            (Some(h), _) => h,
            (None, Some(c)) => Arc::new(c),
            (None, None) => match &self.tls {
                Some(c) => Arc::new(ReqwestTransport::with_tls_config(c).map_err(|_| {
                    ChatError::InvalidInitParams("the TLS configuration was refused".into())
                })?),
                None => Arc::new(ReqwestTransport::new()),
            },
        };
        let long_poll = |b: &Self| -> Box<dyn EventTransport> {
            if over_http {
                Box::new(LongPollTransport::new(Arc::clone(&http)))
            } else {
                b.lean_poll()
            }
        };
        let ws = || {
            match &self.tls {
                Some(c) => WebSocketTransport::with_tls_config(Arc::clone(c)),
                None => WebSocketTransport::new(),
            }
            .allow_plain_http(self.allow_plain_http)
        };
        let events: Box<dyn EventTransport> = match self.events.take() {
            Some(e) => e,
            None => match self.transport {
                StreamTransport::LongPoll => long_poll(&self),
                StreamTransport::WebSocket => Box::new(ws()),
                StreamTransport::Auto => Box::new(AutoTransport::new(
                    ws(),
                    long_poll(&self),
                    self.ws_upgrade_timeout,
                )),
            },
        };
        // Probes are plain HTTP GETs of the events resource, on the stream thread.
        let probes = long_poll(&self);
        let shared = Shared::start(Parts {
            session,
            capacity: self.capacity,
            http,
            events,
            probes,
            provider: self.provider.clone(),
            refresh_lead: self.refresh_lead,
        })
        .map_err(|_| Error::Closed)?;
        let connection = Connection {
            shared: Arc::clone(&shared),
        };
        match shared.call(Command::Call(Call::Init(self.resume.take()))) {
            Ok(Answer::Reply(reply)) if matches!(*reply, ReplyValue::Initialized(_)) => {
                let ReplyValue::Initialized(context) = *reply else {
                    return Err(Error::Closed);
                };
                let client = Client {
                    shared,
                    context: Arc::new(context),
                };
                Ok((client, connection))
            }
            other => {
                shared.lock().stop();
                Err(match other {
                    Err(e) => e,
                    Ok(_) => Error::Closed,
                })
            }
        }
    }
}
