//! [`ClientBuilder`]: configuration and connection.

use std::sync::Arc;
use std::time::Instant;

use chat_core::{ChatError, UserContext};
use chat_driver::{Call, Driver, StoreLink, StreamTransport};

use crate::client::Client;
use crate::driver::{Parts, Shared, wall};
use crate::events::EventStream;
use crate::http1::Http1LongPollTransport;
use crate::transport::{EventTransport, HttpTransport, LongPollTransport, ReqwestTransport};
use crate::ws::{AutoTransport, WebSocketTransport};
use crate::{Error, TlsClientConfig, TokenProvider};

chat_driver::client_builder! {
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
    http_client: ReqwestTransport
}

impl ClientBuilder {
    /// The reqwest blocking client for REST calls (proxy, root certificates). Long polling
    /// and probes then go through it too (they can no longer be interrupted, so an aborted
    /// poll ends at its timeout); to keep the lean, interruptible polls, also pass
    /// [`event_transport`](Self::event_transport)`(Box::new(Http1LongPollTransport::new()))`.
    #[must_use]
    pub fn http_client(mut self, client: reqwest::blocking::Client) -> Self {
        self.http_client = Some(ReqwestTransport::with_client(client));
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
            // No HTTP client of the caller's: the one the process's clients share.
            (None, None) => crate::transport::shared_default(self.tls.as_ref()).map_err(|_| {
                ChatError::InvalidInitParams("the TLS configuration was refused".into())
            })?,
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
        let mut driver = Driver::new(Instant::now(), wall(), session, self.options.capacity);
        let (store, first) = match &self.options.store {
            Some(kept) => {
                let since = Instant::now();
                let (link, snapshot) = StoreLink::claim(kept)?;
                link.attach(&mut driver, kept, since, &snapshot);
                (Some(Arc::new(link)), Call::Restore(Box::new(snapshot)))
            }
            None => (None, Call::Init(self.options.resume.take())),
        };
        let shared = Shared::start(Parts {
            driver,
            http,
            events,
            probes,
            provider: self.provider.clone(),
            store,
        })
        .map_err(|_| Error::Closed(None))?;
        let stream = EventStream {
            shared: Arc::clone(&shared),
        };
        let init = shared.call(first);
        match chat_driver::from_reply::<UserContext>(init) {
            Ok(context) => Ok((Client::new(shared, context), stream)),
            Err(e) => {
                shared.lock().stop();
                Err(e)
            }
        }
    }
}
