//! [`ClientBuilder`]: configuration and connection.

use std::sync::Arc;

use chat_core::{ChatError, UserContext};
use chat_driver::{Call, Driver, StoreLink, StreamTransport};

use crate::client::Client;
use crate::driver::{Io, Shared, now, run, wall};
use crate::events::EventStream;
use crate::http1::Http1LongPollTransport;
use crate::transport::{EventTransport, HttpTransport, LongPollTransport, ReqwestTransport};
use crate::ws::{AutoTransport, WebSocketTransport};
use crate::{Error, TlsClientConfig, TokenProvider};

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
pub(crate) fn default_client(tls: Option<&TlsClientConfig>) -> Result<reqwest::Client, Error> {
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

chat_driver::client_builder! {
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
    http_client: reqwest::Client
}

impl ClientBuilder {
    /// The reqwest client for the default transports (proxy, root certificates, a pool
    /// shared by many chat clients of one runtime). Long polling then goes through it too;
    /// to keep each session's lean connection for the polls while sharing this client for
    /// REST calls, also pass
    /// [`event_transport`](Self::event_transport)`(Box::new(Http1LongPollTransport::new()))`.
    #[must_use]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
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

    /// Creates (or resumes) the session and starts the client's task on the current tokio
    /// runtime. Returns the handle and the event stream, whose first event is
    /// `INITIALIZED`. With a token provider and no token, the provider is asked first.
    pub async fn connect(self) -> Result<(Client, EventStream), Error> {
        let session = self.options.session(self.provider.is_some())?;
        let long_poll = self.long_poll_kind();
        let http: Arc<dyn HttpTransport> = match (self.http, &self.http_client) {
            (Some(h), _) => h,
            (None, Some(c)) => Arc::new(ReqwestTransport::with_client(c.clone())),
            // No HTTP client of the caller's: the one this runtime's clients share.
            (None, None) => crate::transport::shared_default(self.tls.as_ref())?,
        };
        let allow_plain_http = self.options.allow_plain_http;
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
                            Box::new(t.allow_plain_http(allow_plain_http))
                        }
                    }
                };
                let ws = || {
                    match &self.tls {
                        Some(c) => WebSocketTransport::with_tls_config(Arc::clone(c)),
                        None => WebSocketTransport::new(),
                    }
                    .allow_plain_http(allow_plain_http)
                };
                match self.options.transport {
                    StreamTransport::WebSocket => Box::new(ws()),
                    // The same fallback as plain long polling would be.
                    StreamTransport::Auto => Box::new(AutoTransport::new(
                        ws(),
                        long_poll(),
                        self.options.ws_upgrade_timeout,
                    )),
                    _ => long_poll(),
                }
            }
        };
        let mut driver = Driver::new(now(), wall(), session, self.options.capacity);
        let (store, first) = match self.options.store.clone() {
            Some(kept) => {
                let since = now();
                let claiming = kept.clone();
                let (link, snapshot) =
                    tokio::task::spawn_blocking(move || StoreLink::claim(&claiming))
                        .await
                        .map_err(|_| Error::Closed(None))??;
                link.attach(&mut driver, &kept, since, &snapshot);
                (Some(Arc::new(link)), Call::Restore(Box::new(snapshot)))
            }
            None => (None, Call::Init(self.options.resume)),
        };
        let shared = Shared::new(driver);
        let io = Io {
            http,
            stream: Arc::new(tokio::sync::Mutex::new(events)),
            provider: self.provider,
            store,
        };
        let task = tokio::spawn(run(Arc::clone(&shared), io));
        let stream = EventStream::new(Arc::clone(&shared));
        let init = shared.call(first).await;
        match chat_driver::from_reply::<UserContext>(init) {
            Ok(context) => Ok((Client::new(shared, context, task), stream)),
            Err(e) => {
                {
                    let mut st = shared.lock();
                    st.handles_gone = true;
                }
                drop(stream);
                let _ = task.await;
                Err(e)
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

    #[test]
    fn default_settings_share_one_http_client_per_runtime() {
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        };
        let (a, b) = (runtime(), runtime());
        let first = a.block_on(async { crate::transport::shared_default(None).unwrap() });
        let again = a.block_on(async { crate::transport::shared_default(None).unwrap() });
        assert!(Arc::ptr_eq(&first, &again), "one client per runtime");
        let other = b.block_on(async { crate::transport::shared_default(None).unwrap() });
        assert!(
            !Arc::ptr_eq(&first, &other),
            "another runtime, another pool"
        );
        // Held only by the clients that use it: gone with the last of them.
        let gone = Arc::downgrade(&first);
        drop((first, again));
        assert!(gone.upgrade().is_none());
        let fresh = a.block_on(async { crate::transport::shared_default(None).unwrap() });
        assert!(!Arc::ptr_eq(&fresh, &other));
        // The same TLS configuration shares too; another one does not.
        let tls = chat_net::default_config().unwrap();
        let own = Arc::new(TlsClientConfig::clone(&tls));
        let with_tls = a.block_on(async { crate::transport::shared_default(Some(&tls)).unwrap() });
        let same_tls = a.block_on(async { crate::transport::shared_default(Some(&tls)).unwrap() });
        let other_tls = a.block_on(async { crate::transport::shared_default(Some(&own)).unwrap() });
        assert!(Arc::ptr_eq(&with_tls, &same_tls));
        assert!(!Arc::ptr_eq(&with_tls, &other_tls));
        assert!(!Arc::ptr_eq(&with_tls, &fresh));
    }
}
