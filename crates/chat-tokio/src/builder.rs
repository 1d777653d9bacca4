//! [`ClientBuilder`]: configuration and connection.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chat_core::wire::MappedData;
use chat_core::{AppKey, ChatError, Config, InitParams, ReplyValue, Resumption, Session, Token};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::client::{Client, Shared};
use crate::driver::{Answer, Command, Driver, Envelope};
use crate::events::EventStream;
use crate::http1::Http1LongPollTransport;
use crate::transport::{EventTransport, HttpTransport, LongPollTransport, ReqwestTransport};
use crate::ws::{AutoTransport, WebSocketTransport};
use crate::{Error, TlsClientConfig, TokenProvider};
use chat_net::Call;

/// Default size of the event buffer.
pub const DEFAULT_EVENT_CAPACITY: usize = 1024;

/// How the event stream is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StreamTransport {
    /// HTTP long polling, what AXP serves (the default): over a dedicated HTTP/1.1
    /// connection per client ([`Http1LongPollTransport`](crate::Http1LongPollTransport)), or
    /// over the [`http_client`](ClientBuilder::http_client) or
    /// [`http_transport`](ClientBuilder::http_transport) when one is given.
    #[default]
    LongPoll,
    /// A WebSocket on the events resource (the emulator's extension).
    WebSocket,
    /// Try the WebSocket upgrade with a short deadline; fall back to long polling for good if
    /// the server does not upgrade.
    Auto,
}

/// Which long polling the default transports use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LongPollKind {
    /// Each session's own lean connection ([`Http1LongPollTransport`]).
    Lean,
    /// [`LongPollTransport`] over the caller's HTTP stack (a proxy, extra roots).
    OverHttp,
}

/// The reqwest client for REST calls when the caller gave none: with this TLS
/// configuration, or reqwest's own rustls setup.
fn default_client(tls: Option<&TlsClientConfig>) -> Result<reqwest::Client, Error> {
    match tls {
        None => Ok(crate::transport::default_client()),
        Some(config) => reqwest::Client::builder()
            .tcp_nodelay(true)
            // Never carry the appkey, the token or a body to wherever a 3xx points.
            .redirect(reqwest::redirect::Policy::none())
            .use_preconfigured_tls(config.clone())
            .build()
            .map_err(|e| {
                tracing::warn!(error = %e, "HTTP client with the TLS configuration failed");
                Error::Chat(ChatError::InvalidInitParams(
                    "the TLS configuration was refused".into(),
                ))
            }),
    }
}

/// Configures and connects a [`Client`].
///
/// ```no_run
/// # async fn demo(jwt: String) -> Result<(), chat_tokio::Error> {
/// use chat_tokio::Client;
/// let (client, mut events) = Client::builder(
///     "https://na.api.avayacloud.com",
///     "123e4567-e89b-12d3-a456-426614174000",
///     "my-appkey",
/// )
/// .token(jwt)
/// .connect()
/// .await?;
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
    http_client: Option<reqwest::Client>,
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
    /// of expiry, and after a 401.
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

    /// The reqwest client for the default transports (proxy, root certificates, a pool
    /// shared by many chat clients of one runtime). Long polling then goes through it too;
    /// to keep each session's lean connection for the polls while sharing this client for
    /// REST calls, also pass
    /// [`event_transport`](Self::event_transport)`(Box::new(Http1LongPollTransport::new()))`.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// The TLS configuration (rustls) of the connections the client opens itself: the long
    /// polls of [`Http1LongPollTransport`], the WebSocket, and the REST calls unless an
    /// [`http_client`](Self::http_client) or [`http_transport`](Self::http_transport) is
    /// given. Use it to trust extra roots (a test server's self-signed certificate); give it
    /// no ALPN protocols, as these connections speak HTTP/1.1. Default: rustls with the
    /// webpki roots, one configuration per process.
    pub fn tls_config(mut self, config: Arc<TlsClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Your own HTTP exchange for REST calls and probes (and for long polling unless an
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

    /// Size of the event buffer; default 1024. See [`EventStream`] for the policy when the
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

    /// The long polling [`StreamTransport::LongPoll`] and the fallback of
    /// [`StreamTransport::Auto`] use.
    fn long_poll_kind(&self) -> LongPollKind {
        if self.http_client.is_some() || self.http.is_some() {
            LongPollKind::OverHttp
        } else {
            LongPollKind::Lean
        }
    }

    /// Creates (or resumes) the session and starts the client's driver task on the current
    /// tokio runtime. Returns the handle and the event stream, whose first event is
    /// `INITIALIZED`.
    pub async fn connect(self) -> Result<(Client, EventStream), Error> {
        let text = match (&self.token, &self.provider) {
            (Some(t), _) => t.clone(),
            (None, Some(p)) => tokio::time::timeout(chat_net::PROVIDER_TIMEOUT, p.token())
                .await
                .map_err(|_| Error::TokenProvider("timed out".to_owned()))?
                .map_err(|e| Error::TokenProvider(e.to_string()))?,
            (None, None) => {
                return Err(ChatError::InvalidInitParams(
                    "a token or a token provider is required".into(),
                )
                .into());
            }
        };
        let token = Token::parse(&text)?;
        let mut params = InitParams::new(
            self.host.clone(),
            &self.integration_id,
            token,
            self.appkey.clone(),
        )?
        .allow_plain_http(self.allow_plain_http);
        if let Some(name) = &self.display_name {
            params = params.display_name(name.clone());
        }
        if let Some(p) = &self.session_parameters {
            params = params.session_parameters(p.clone());
        }
        let session = Session::new(params, self.config.clone())?;

        let long_poll = self.long_poll_kind();
        let http: Arc<dyn HttpTransport> = match (self.http, &self.http_client) {
            (Some(h), _) => h,
            (None, Some(c)) => Arc::new(ReqwestTransport::with_client(c.clone())),
            (None, None) => Arc::new(ReqwestTransport::with_client(default_client(
                self.tls.as_deref(),
            )?)),
        };
        let events: Box<dyn EventTransport> = match self.events {
            Some(e) => e,
            None => {
                let long_poll = || -> Box<dyn EventTransport> {
                    match long_poll {
                        LongPollKind::OverHttp => {
                            Box::new(LongPollTransport::new(Arc::clone(&http)))
                        }
                        LongPollKind::Lean => {
                            let t = match &self.tls {
                                Some(c) => Http1LongPollTransport::with_tls_config(Arc::clone(c)),
                                None => Http1LongPollTransport::new(),
                            };
                            Box::new(t.allow_plain_http(self.allow_plain_http))
                        }
                    }
                };
                let ws = || {
                    match &self.tls {
                        Some(c) => WebSocketTransport::with_tls_config(Arc::clone(c)),
                        None => WebSocketTransport::new(),
                    }
                    .allow_plain_http(self.allow_plain_http)
                };
                match self.transport {
                    StreamTransport::LongPoll => long_poll(),
                    StreamTransport::WebSocket => Box::new(ws()),
                    // The same fallback as plain long polling would be.
                    StreamTransport::Auto => Box::new(AutoTransport::with_websocket(
                        ws(),
                        long_poll(),
                        self.ws_upgrade_timeout,
                    )),
                }
            }
        };

        let (tx, commands) = mpsc::channel(64);
        let (events_tx, rx) = mpsc::channel(self.capacity);
        let overflow = Arc::new(Mutex::new(VecDeque::new()));
        let driver = Driver {
            session,
            commands,
            events: events_tx,
            overflow: Arc::clone(&overflow),
            capacity: self.capacity,
            http,
            stream: Arc::new(tokio::sync::Mutex::new(events)),
            provider: self.provider,
            refresh_lead: self.refresh_lead,
            start: (Instant::now(), SystemTime::now()),
        };
        let handle = tokio::spawn(driver.run());
        let stream = EventStream { rx, overflow };

        let (reply, answer) = tokio::sync::oneshot::channel();
        let sent = tx
            .send(Box::new(Envelope {
                command: Command::Call(Call::Init(self.resume)),
                reply,
            }))
            .await;
        let result = match sent {
            Ok(()) => answer.await.unwrap_or(Err(Error::Closed)),
            Err(_) => Err(Error::Closed),
        };
        match result {
            Ok(Answer::Reply(ReplyValue::Initialized(context))) => {
                let client = Client {
                    tx,
                    shared: Arc::new(Shared {
                        context,
                        driver: Mutex::new(Some(handle)),
                    }),
                };
                Ok((client, stream))
            }
            other => {
                drop(tx);
                drop(stream);
                let _ = handle.await;
                Err(match other {
                    Err(e) => e,
                    Ok(_) => Error::Closed,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> ClientBuilder {
        ClientBuilder::new("https://axp.example", "integration", "appkey")
    }

    #[test]
    fn long_polling_is_lean_unless_an_http_stack_is_given() {
        assert_eq!(builder().long_poll_kind(), LongPollKind::Lean);
        let with_client = builder().http_client(reqwest::Client::new());
        assert_eq!(with_client.long_poll_kind(), LongPollKind::OverHttp);
        let with_http = builder().http_transport(Arc::new(ReqwestTransport::new()));
        assert_eq!(with_http.long_poll_kind(), LongPollKind::OverHttp);
        // A TLS configuration alone keeps the lean connection (it takes the configuration).
        let tls = chat_net::default_config().unwrap();
        assert_eq!(
            builder().tls_config(tls).long_poll_kind(),
            LongPollKind::Lean
        );
    }
}
