//! Async (tokio) client of the AXP Digital customer chat SDK.
//!
//! `chat-tokio` drives the sans-IO protocol core [`chat_core`] over the network: one driver
//! task per client owns the [`chat_core::Session`], carries its requests (REST calls over
//! reqwest, the event stream over HTTP long polling or a WebSocket), feeds back responses,
//! commands and the passing of tokio's clock, and hands events to the application. Protocol
//! rules all live in chat-core, so this client behaves exactly as the official SDK describes.
//!
//! - [`Client`]: a cheap [`Clone`] handle with every capability of the official SDK
//!   (`createEngagement`, `getEngagements`, `setJwtToken`, `retryConnection`,
//!   `resetIdleTimeout`, `shutdown`), [`Engagement`] for one chat (join, send, disconnect,
//!   participants, status, history), [`HistoryPager`] and a stream of history pages.
//! - [`EventStream`]: the 16 official events as a bounded [`futures::Stream`] with
//!   backpressure (nothing is ever dropped).
//! - Tokens pushed ([`Client::set_token`]) or pulled: a [`TokenProvider`] the client calls
//!   ahead of expiry and after a 401, single-flight.
//! - Transports: [`StreamTransport::LongPoll`] (default, what AXP serves),
//!   [`StreamTransport::WebSocket`], [`StreamTransport::Auto`]; or your own through
//!   [`HttpTransport`] and [`EventTransport`]. TLS is rustls; extra roots through
//!   [`tls_config_with_roots`] and [`ClientBuilder::tls_config`].
//!
//! # Example
//!
//! A chat with the simulated agent of the in-process emulator:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use chat_tokio::{Client, Event};
//!
//! let emulator = chat_emulator::Emulator::builder()
//!     .hold_time(Duration::from_millis(500))
//!     .agent_delay(Duration::from_millis(20))
//!     .start()
//!     .await?;
//! let c = emulator.credentials();
//! // Your backend mints this (see the token-client crate).
//! let jwt = emulator.control().mint_token("customer-1", true, Duration::from_secs(900));
//!
//! let (client, mut events) = Client::builder(emulator.base_url(), &c.integration_id, &c.appkey)
//!     .token(jwt)
//!     .connect()
//!     .await?;
//! let chat = client.create_engagement().await?;
//! let mut sent = false;
//! while let Some(e) = events.recv().await {
//!     match e.event {
//!         Event::EngagementActive(_) if !sent => {
//!             chat.send_message("Hello!").await?;
//!             sent = true;
//!         }
//!         Event::MessageArrived(m) if m.text().is_some_and(|t| t.contains("Hello!")) => break,
//!         _ => {}
//!     }
//! }
//! client.shutdown(None).await?;
//! # emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! See `docs/async-client.md` for the guide and the mapping from the official JavaScript SDK.
mod builder;
mod client;
mod driver;
mod events;
mod http1;
mod token;
mod transport;
mod ws;

#[cfg(test)]
mod tests;

/// This crate's version (the official SDK's `version()`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use builder::ClientBuilder;
pub use chat_driver::api::*;
/// rustls's client configuration, for [`ClientBuilder::tls_config`],
/// [`Http1LongPollTransport::with_tls_config`] and [`WebSocketTransport::with_tls_config`]
/// (see [`tls_config_with_roots`]).
pub use chat_net::TlsClientConfig;
pub use chat_net::{TlsRootsError, tls_config_with_roots};
pub use client::{Client, Engagement, HistoryPager, HistoryPages, QueuedMessage};
pub use events::EventStream;
pub use http1::Http1LongPollTransport;
pub use token::{BoxError, TokenProvider};
pub use transport::{EventTransport, HttpTransport, LongPollTransport, ReqwestTransport, Response};
pub use ws::{AutoTransport, WebSocketTransport};
