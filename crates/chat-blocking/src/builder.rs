//! [`ClientBuilder`]: configuration and connection.

use std::sync::Arc;
use std::time::Instant;

use chat_core::{ChatError, UserContext};
use chat_driver::{Call, Driver, Options, StreamTransport};

use crate::client::Client;
use crate::driver::{Parts, Shared, wall};
use crate::events::EventStream;
use crate::http1::Http1LongPollTransport;
use crate::transport::{EventTransport, HttpTransport, LongPollTransport, ReqwestTransport};
use crate::ws::{AutoTransport, WebSocketTransport};
use crate::{Error, TlsClientConfig, TokenProvider};

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
    options: Options,
    provider: Option<Arc<dyn TokenProvider>>,
    http: Option<Arc<dyn HttpTransport>>,
    http_client: Option<ReqwestTransport>,
    events: Option<Box<dyn EventTransport>>,
    tls: Option<Arc<TlsClientConfig>>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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
            options: Options::new(host, integration_id, appkey),
            provider: None,
            http: None,
            http_client: None,
            events: None,
            tls: None,
        }
    }

    chat_driver::client_builder_setters!();

    /// Where to get tokens: called at connect when no [`token`](Self::token) is given, ahead
    /// of expiry, and after a 401. Any `Fn() -> Result<String, BoxError>` closure is one.
    #[must_use]
    pub fn token_provider(mut self, provider: impl TokenProvider) -> Self {
        self.provider = Some(Arc::new(provider));
        self
    }

    /// The reqwest blocking client for REST calls (proxy, root certificates). Long polling
    /// and probes then go through it too (they can no longer be interrupted, so an aborted
    /// poll ends at its timeout); to keep the lean, interruptible polls, also pass
    /// [`event_transport`](Self::event_transport)`(Box::new(Http1LongPollTransport::new()))`.
    #[must_use]
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
    #[must_use]
    pub fn tls_config(mut self, config: Arc<TlsClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Your own HTTP exchange for REST calls (and for long polling and probes unless an
    /// [`event_transport`](Self::event_transport) is given).
    #[must_use]
    pub fn http_transport(mut self, http: Arc<dyn HttpTransport>) -> Self {
        self.http = Some(http);
        self
    }

    /// Your own event stream transport; overrides [`stream_transport`](Self::stream_transport).
    #[must_use]
    pub fn event_transport(mut self, events: Box<dyn EventTransport>) -> Self {
        self.events = Some(events);
        self
    }

    fn lean_poll(&self) -> Box<dyn EventTransport> {
        let t = match &self.tls {
            Some(c) => Http1LongPollTransport::with_tls_config(Arc::clone(c)),
            None => Http1LongPollTransport::new(),
        };
        Box::new(t.allow_plain_http(self.options.allow_plain_http))
    }

    /// Creates (or resumes) the session, blocking until the server has answered, and starts
    /// the client's stream thread. Returns the handle and the event connection, whose first
    /// event is `INITIALIZED`. The token provider, if it is asked, is called on a thread of
    /// the client's (this one waits for it). Safe to call inside a tokio runtime's context
    /// (it blocks the calling thread).
    pub fn connect(mut self) -> Result<(Client, EventStream), Error> {
        let session = self.options.session(self.provider.is_some())?;
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
            .allow_plain_http(self.options.allow_plain_http)
        };
        let events: Box<dyn EventTransport> = match self.events.take() {
            Some(e) => e,
            None => match self.options.transport {
                StreamTransport::WebSocket => Box::new(ws()),
                StreamTransport::Auto => Box::new(AutoTransport::new(
                    ws(),
                    long_poll(&self),
                    self.options.ws_upgrade_timeout,
                )),
                _ => long_poll(&self),
            },
        };
        // Probes are plain HTTP GETs of the events resource, on the stream thread.
        let probes = long_poll(&self);
        let driver = Driver::new(session, self.options.capacity, Instant::now(), wall());
        let shared = Shared::start(Parts {
            driver,
            http,
            events,
            probes,
            provider: self.provider.clone(),
        })
        .map_err(|_| Error::Closed(None))?;
        let stream = EventStream {
            shared: Arc::clone(&shared),
        };
        let init = shared.call(Call::Init(self.options.resume.take()));
        match chat_driver::from_reply::<UserContext>(init) {
            Ok(context) => Ok((Client::new(shared, context), stream)),
            Err(e) => {
                shared.lock().stop();
                Err(e)
            }
        }
    }
}
