//! The AXP Digital customer chat client on [smol](https://docs.rs/smol): the example adapter
//! for embedders who bring their own I/O.
//!
//! [`chat_driver::Driver`] holds the whole client without I/O: the protocol (token refresh,
//! 401 replay, request timeouts, reconnection, the event stream's cursor and
//! de-duplication), the calls waiting for their reply and the event queue. An adapter only
//! carries out its [`Action`](chat_driver::Action)s and feeds back what happened. This crate
//! is such an adapter, small enough to read in one sitting, and `docs/embedding.md` walks
//! through it:
//!
//! - `driver.rs`, the loop: drain the actions until `Wait`, then wait for the first of a
//!   request's outcome, a command from a handle, or the deadline; feed it; again.
//! - `net.rs`, the sockets: async-net TCP, futures-rustls TLS, and chat-net's sans-IO
//!   HTTP/1.1 and WebSocket codecs. REST calls and long polls are plain HTTP/1.1 requests
//!   (no redirect is ever followed); the event stream is long polling or a WebSocket, as
//!   [`StreamTransport`] says.
//! - `client.rs`, the handles: [`Client`] (create an engagement, send, list, join, the
//!   transcript, shut down) and [`EventStream`].
//!
//! # Why one thread and a `LocalExecutor`
//!
//! Each client runs its loop on a thread of its own, under [`smol::block_on`], with a
//! single-threaded [`smol::LocalExecutor`] for the requests in flight. The driver takes
//! one input at a time anyway, so a single thread loses nothing, and it makes the glue
//! plain: requests and the token provider's future need not be [`Send`]; a request is
//! cancelled by dropping its [`smol::Task`], which is all that `Action::Abort` asks; the
//! event stream's connection moves into the poll's task and back, with no lock. The
//! handles are [`Send`] + [`Sync`]: their calls may be awaited on any executor, smol's,
//! tokio's or a plain `block_on`, from any thread. The cost is one OS thread per client;
//! a program with thousands of sessions would run many loops on one executor instead (the
//! loop is an ordinary future: see `docs/embedding.md`).
//!
//! # Example
//!
//! A chat with the simulated agent of the in-process emulator (which runs on a tokio
//! runtime of its own; the client needs none), with tokens from a provider:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use chat_smol::{Client, Event};
//!
//! let runtime = tokio::runtime::Runtime::new()?;
//! let emulator = runtime.block_on(
//!     chat_emulator::Emulator::builder()
//!         .hold_time(Duration::from_millis(500))
//!         .agent_delay(Duration::from_millis(20))
//!         .start(),
//! )?;
//! let c = emulator.credentials();
//! // Your backend mints the tokens (see the token-client crate); here the emulator does.
//! let control = emulator.control();
//! let provider = move || {
//!     let jwt = control.mint_token("customer-1", true, Duration::from_secs(900));
//!     async move { Ok(jwt) }
//! };
//!
//! smol::block_on(async {
//!     let (client, mut events) = Client::builder(emulator.base_url(), &c.integration_id, &c.appkey)
//!         .connect(provider)
//!         .await?;
//!     let chat = client.create_engagement().await?;
//!     let mut sent = false;
//!     while let Some(e) = events.recv().await {
//!         match e.event {
//!             Event::EngagementActive(_) if !sent => {
//!                 client.send_message(&chat.engagement_id, "Hello!").await?;
//!                 sent = true;
//!             }
//!             Event::MessageArrived(m) if m.text().is_some_and(|t| t.contains("Hello!")) => break,
//!             _ => {}
//!         }
//!     }
//!     client.shutdown(None).await?;
//!     Ok::<_, chat_smol::Error>(())
//! })?;
//! # runtime.block_on(emulator.shutdown());
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod client;
mod driver;
mod net;

use std::future::Future;

pub use chat_driver::{BoxError, ChatEvent, Error, Options, StreamTransport};
pub use client::{Client, ClientBuilder, EventStream};

/// rustls's client configuration, for [`ClientBuilder::tls_config`].
pub use chat_net::TlsClientConfig;
pub use chat_net::{TlsRootsError, tls_config_with_roots};

pub use chat_core::wire::{MappedData, ParticipantType, ShutdownReason};
pub use chat_core::{
    ChatError, Config, EndReason, EngagementId, EngagementInfo, Event, Message, SessionId,
    StreamFailure, StreamFailureReason, StreamState, TransportError, UserContext,
};

/// Where the client gets chat JWTs from, typically your backend (which mints them with the
/// Generate JWT Token API, see the `token-client` crate).
///
/// The client calls it itself: at connect if no token was given, ahead of expiry, and after
/// the server refused the token (401). Calls are single-flight; one that has not answered
/// after 30 s counts as failed. Its future runs on the client's thread, so it need not be
/// [`Send`], and may use smol's I/O. An async closure is a provider:
///
/// ```
/// # async fn ask_backend() -> Result<String, chat_smol::BoxError> { Ok(String::new()) }
/// let builder = chat_smol::Client::builder("https://na.api.avayacloud.com", "123e4567-e89b-12d3-a456-426614174000", "appkey");
/// let connecting = builder.connect(|| async { ask_backend().await });
/// # drop(connecting);
/// ```
pub trait TokenProvider: Send + 'static {
    /// A fresh chat JWT, `jwt.` prefix included.
    fn token(&self) -> impl Future<Output = Result<String, BoxError>>;
}

impl<F, Fut> TokenProvider for F
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<String, BoxError>>,
{
    fn token(&self) -> impl Future<Output = Result<String, BoxError>> {
        self()
    }
}
