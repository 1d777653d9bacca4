//! Blocking client of the AXP Digital customer chat SDK, for programs without an async
//! runtime: command-line tools, bots, test rigs, code called through FFI.
//!
//! `chat-blocking` drives the sans-IO protocol core [`chat_core`] on the caller's own threads
//! with blocking I/O: REST calls over reqwest's blocking client, the event stream over HTTP
//! long polling (a lean HTTP/1.1 connection of its own) or a WebSocket (chat-net's, over
//! blocking sockets).
//! There is no hidden runtime: whichever thread is blocked in the client (reading events, or
//! waiting for a command's reply) runs the protocol loop; one stream thread per client
//! carries the blocking poll. Protocol rules all live in chat-core, so this client behaves
//! exactly as chat-tokio and the official SDK do.
//!
//! - [`Client`]: a cheap [`Clone`], [`Send`] + [`Sync`] handle with every capability of the
//!   official SDK (`createEngagement`, `getEngagements`, `setJwtToken`, `retryConnection`,
//!   `resetIdleTimeout`, `shutdown`), [`Engagement`] for one chat (join, send, disconnect,
//!   participants, status, history), [`HistoryPager`] and [`HistoryPages`], an iterator of
//!   history pages.
//! - [`EventStream`]: the 16 official events as a blocking [`Iterator`], with
//!   [`recv_timeout`](EventStream::recv_timeout) and [`try_recv`](EventStream::try_recv);
//!   bounded, with backpressure (nothing is ever dropped).
//! - Tokens pushed ([`Client::set_token`]) or pulled: a blocking [`TokenProvider`] the client
//!   calls ahead of expiry and after a 401, single-flight.
//! - Transports: [`StreamTransport::LongPoll`] (default), [`StreamTransport::WebSocket`],
//!   [`StreamTransport::Auto`]; or your own through [`HttpTransport`] and
//!   [`EventTransport`]. TLS is rustls; extra roots through [`tls_config_with_roots`].
//!
//! # Example
//!
//! A chat with the simulated agent of the in-process emulator (which needs a tokio runtime
//! of its own; the client does not):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use chat_blocking::{Client, Event};
//!
//! let runtime = tokio::runtime::Runtime::new()?;
//! let emulator = runtime.block_on(
//!     chat_emulator::Emulator::builder()
//!         .hold_time(Duration::from_millis(500))
//!         .agent_delay(Duration::from_millis(20))
//!         .start(),
//! )?;
//! let c = emulator.credentials();
//! // Your backend mints this (see the token-client crate).
//! let jwt = emulator.control().mint_token("customer-1", true, Duration::from_secs(900));
//!
//! let (client, events) = Client::builder(emulator.base_url(), &c.integration_id, &c.appkey)
//!     .token(jwt)
//!     .connect()?;
//! let chat = client.create_engagement()?;
//! let mut sent = false;
//! for e in &events {
//!     match e.event {
//!         Event::EngagementActive(_) if !sent => {
//!             chat.send_message("Hello!")?;
//!             sent = true;
//!         }
//!         Event::MessageArrived(m) if m.text().is_some_and(|t| t.contains("Hello!")) => break,
//!         _ => {}
//!     }
//! }
//! client.shutdown(None)?;
//! # runtime.block_on(emulator.shutdown());
//! # Ok(())
//! # }
//! ```
//!
//! See `docs/blocking-client.md` for the guide: the threading model, and the mapping to
//! chat-tokio.
mod builder;
mod client;
mod driver;
mod events;
mod http1;
mod stream;
mod threads;
mod token;
mod transport;
mod ws;

/// This crate's version (the official SDK's `version()`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use builder::ClientBuilder;
pub use chat_driver::api::*;
/// rustls's client configuration, for [`ClientBuilder::tls_config`] (see
/// [`tls_config_with_roots`]).
pub use chat_net::TlsClientConfig;
pub use chat_net::{TlsRootsError, tls_config_with_roots};
pub use client::{Client, Engagement, HistoryPager, HistoryPages, QueuedMessage};
pub use events::EventStream;
pub use http1::Http1LongPollTransport;
pub use token::{BoxError, TokenProvider};
pub use transport::{
    Cancel, EventTransport, HttpTransport, LongPollTransport, ReqwestTransport, Response,
};
pub use ws::{AutoTransport, WebSocketTransport};
