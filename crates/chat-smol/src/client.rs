//! The handles: [`ClientBuilder`], [`Client`] and [`EventStream`].

use std::cell::Cell;
use std::sync::Arc;
use std::time::SystemTime;

use chat_core::wire::{MappedData, ShutdownReason};
use chat_core::{
    EndReason, EngagementId, EngagementInfo, Message, SessionId, StreamState, UserContext,
};
use chat_driver::{Call, ChatEvent, Driver, Error, Options, Reply, Transcript, from_reply};
use chat_net::TlsClientConfig;
use smol::future;

use crate::TokenProvider;
use crate::driver::{self, Shared, now};
use crate::net::Net;

/// Builds a [`Client`]: [`chat_driver::Options`] with the setters every adapter shares, and
/// a TLS configuration of your own if you need one.
#[derive(Debug)]
pub struct ClientBuilder {
    options: Options,
    tls: Option<Arc<TlsClientConfig>>,
}

impl ClientBuilder {
    /// A builder for this AXP region (`https://` base URL), integration and appkey.
    pub fn new(
        host: impl Into<String>,
        integration_id: impl Into<String>,
        appkey: impl AsRef<str>,
    ) -> Self {
        Self::from_options(Options::new(host, integration_id, appkey))
    }

    /// A builder with these options.
    pub fn from_options(options: Options) -> Self {
        Self { options, tls: None }
    }

    chat_driver::client_builder_setters!();

    /// The TLS configuration of `https://` and `wss://` connections (extra roots, from
    /// [`tls_config_with_roots`](crate::tls_config_with_roots)); default rustls with the
    /// webpki roots. Give it no ALPN protocols.
    #[must_use]
    pub fn tls_config(mut self, config: Arc<TlsClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Starts the client's thread, creates (or resumes) the session and returns once it is
    /// `INITIALIZED`: the handle and the event stream, whose first event is `INITIALIZED`.
    /// The provider is asked for the first token if none was given, ahead of each expiry
    /// and after a 401. The future may be awaited on any executor.
    pub async fn connect<P: TokenProvider>(
        self,
        provider: P,
    ) -> Result<(Client, EventStream), Error> {
        let Self { options, tls } = self;
        if options.store.is_some() {
            // Said at once rather than accepted and not kept: this example adapter leaves
            // the store out (chat-tokio and chat-blocking keep sessions in one).
            return Err(Error::Store(chat_store::StoreError::Invalid {
                what: "store",
                reason: "is not supported by chat-smol: use chat-tokio or chat-blocking".into(),
            }));
        }
        let session = options.session(true)?;
        let driver = Driver::new(now(), SystemTime::now(), session, options.capacity);
        let (shared, stop) = Shared::new(driver);
        let net = Net {
            tls,
            allow_plain_http: options.allow_plain_http,
            transport: options.transport,
            upgrade_timeout: options.ws_upgrade_timeout,
            auto: Cell::default(),
        };
        if let Err(e) = driver::start(Arc::clone(&shared), net, provider, stop) {
            tracing::warn!(error = %e, "the client's thread could not start");
            return Err(Error::Closed(None));
        }
        let events = EventStream {
            shared: Arc::clone(&shared),
        };
        match from_reply::<UserContext>(shared.call(Call::Init(options.resume)).await) {
            Ok(context) => {
                let handle = Arc::new(Handle { shared, context });
                Ok((Client { handle }, events))
            }
            Err(e) => {
                // Nobody is left: the loop stops.
                shared.lock().handles_gone = true;
                drop(events);
                shared.wait_stopped().await;
                Err(e)
            }
        }
    }
}

/// A connected chat session: a cheap [`Clone`], [`Send`] + [`Sync`] handle whose calls may
/// be awaited on any executor and from any thread.
///
/// The client stops when [`shutdown`](Self::shutdown) completes, when the session ends by
/// itself (the idle grace period, or the server forgetting it), or when every handle and
/// the [`EventStream`] are dropped; its requests in flight are then cancelled and its
/// thread ends.
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

/// Shared by every clone: when the last one goes, the client may stop.
struct Handle {
    shared: Arc<Shared>,
    context: UserContext,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().handles_gone = true;
        self.shared.wake.ring();
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session_id", &self.handle.context.session_id)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder; see [`ClientBuilder`].
    pub fn builder(
        host: impl Into<String>,
        integration_id: impl Into<String>,
        appkey: impl AsRef<str>,
    ) -> ClientBuilder {
        ClientBuilder::new(host, integration_id, appkey)
    }

    /// Connects with these options and token provider: [`ClientBuilder::connect`].
    pub async fn connect<P: TokenProvider>(
        options: Options,
        provider: P,
    ) -> Result<(Client, EventStream), Error> {
        ClientBuilder::from_options(options).connect(provider).await
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    async fn call<T: Reply>(&self, call: Call) -> Result<T, Error> {
        from_reply(self.shared().call(call).await)
    }

    /// What `init` returned (also delivered as the `INITIALIZED` event).
    pub fn user_context(&self) -> &UserContext {
        &self.handle.context
    }

    /// The session's id.
    pub fn session_id(&self) -> &SessionId {
        &self.handle.context.session_id
    }

    /// Starts a new chat (`createEngagement`); it is PENDING until `ENGAGEMENT_ACTIVE`.
    pub async fn create_engagement(&self) -> Result<EngagementInfo, Error> {
        self.call(Call::CreateEngagement(MappedData::new())).await
    }

    /// The customer's ongoing engagements across all their sessions (`getEngagements`).
    pub async fn list_engagements(&self) -> Result<Vec<EngagementInfo>, Error> {
        self.call(Call::ListEngagements).await
    }

    /// Joins an engagement of this customer started by another session (`join`).
    pub async fn join(&self, engagement: &EngagementId) -> Result<EngagementInfo, Error> {
        self.call(Call::Join(engagement.clone())).await
    }

    /// Sends a text message (`sendMessage`); returns it as the server stored it.
    pub async fn send_message(
        &self,
        engagement: &EngagementId,
        text: &str,
    ) -> Result<Message, Error> {
        let call = Call::Send {
            engagement: engagement.clone(),
            text: text.to_owned(),
            parent: None,
        };
        self.call(call).await
    }

    /// The engagement's whole history, oldest first, each message once (its history pages,
    /// newest to oldest).
    pub async fn transcript(&self, engagement: &EngagementId) -> Result<Vec<Message>, Error> {
        let mut transcript = Transcript::default();
        let mut page = None;
        loop {
            let call = Call::FetchHistory {
                engagement: engagement.clone(),
                page,
            };
            match transcript.add(self.call(call).await?) {
                Some(next) => page = Some(next),
                None => return Ok(transcript.into_messages()),
            }
        }
    }

    /// The event stream's state.
    pub fn stream_state(&self) -> StreamState {
        self.shared().lock().driver.stream_state()
    }

    /// Ends the session (`shutdown`): deletes it on the server, emits `SHUTDOWN`, ends the
    /// event stream, and returns once the client's thread has stopped.
    pub async fn shutdown(&self, reason: Option<ShutdownReason>) -> Result<(), Error> {
        let () = self.call(Call::Shutdown(reason)).await?;
        self.closed().await;
        Ok(())
    }

    /// Waits until the client has stopped, and says why.
    pub async fn closed(&self) -> Option<EndReason> {
        self.shared().wait_stopped().await;
        self.shared().lock().driver.end_reason()
    }
}

/// The client's events, in order, from [`recv`](Self::recv).
///
/// Bounded ([`ClientBuilder::event_capacity`], 1024 by default), with backpressure: once the
/// queue is full the client takes in no more event-stream answers until the application
/// takes an event, and the server keeps the rest. The stream ends after `SHUTDOWN`, or after
/// the last events of a session the server no longer knows. Dropping it is allowed: the
/// client then discards its events.
pub struct EventStream {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let queued = self.shared.lock().driver.queued();
        f.debug_struct("EventStream")
            .field("queued", &queued)
            .finish()
    }
}

impl EventStream {
    /// The next event; `None` once the client has stopped and every event was taken.
    pub async fn recv(&mut self) -> Option<ChatEvent> {
        loop {
            {
                let mut st = self.shared.lock();
                let holding = st.driver.is_holding();
                if let Some(e) = st.driver.take_event(now()) {
                    drop(st);
                    if holding {
                        // The answer held back by backpressure went in: its actions wait.
                        self.shared.wake.ring();
                    }
                    return Some(e);
                }
                if st.driver.is_finished() || self.shared.stopped.is_closed() {
                    return None;
                }
            }
            // The loop rings after every turn, and a ring is never lost.
            future::or(self.shared.changed.wait(), self.shared.wait_stopped()).await;
        }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.events_gone = true;
        st.driver.close_events(now());
        drop(st);
        self.shared.wake.ring();
    }
}
