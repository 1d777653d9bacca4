//! The sans-IO client driver of the AXP Digital chat SDK, shared by every adapter.
//!
//! [`chat_core::Session`] holds every rule of the protocol. A client adds, around it, the
//! same few things whatever its runtime: the settings it is built with ([`Options`], and the
//! builder setters of [`client_builder_setters!`]), the ledger of calls waiting for their
//! reply, the event queue with its timestamps, its backpressure and the position of what the
//! application has taken, and the typed [`Error`]. [`Driver`] is that, still without I/O:
//! `chat-tokio` drives it with tokio, `chat-blocking` with the caller's threads, `chat-smol`
//! with smol, and an embedder with whatever they have: `docs/embedding.md` ("Bring your own
//! I/O") says what an adapter must do and walks through `chat-smol`, the small one written as
//! the example to start from. Each adapter keeps only its runtime glue: sockets, the clock,
//! wake-ups, threads.
//!
//! # Example
//!
//! The whole of an adapter's work, without sockets: carry out each [`Action`], feed back
//! what happened, and give the events to the application.
//!
//! ```
//! use std::time::{Instant, SystemTime};
//! use chat_driver::{Action, Call, Driver, Options};
//!
//! # fn main() -> Result<(), chat_driver::Error> {
//! let mut options = Options::new(
//!     "https://na.api.avayacloud.com",
//!     "123e4567-e89b-12d3-a456-426614174000",
//!     "my-appkey",
//! );
//! // A token whose payload is {"exp":4000000000}; your backend mints real ones.
//! options.token = Some("jwt.e30.eyJleHAiOjQwMDAwMDAwMDB9.sig".to_owned());
//! # #[allow(clippy::disallowed_methods)]
//! let (now, wall) = (Instant::now(), SystemTime::now());
//! let mut driver: Driver<u32> = Driver::new(now, wall, options.session(false)?, options.capacity);
//! driver.call(now, Call::Init(None), 1).map_err(|(_, e)| e)?;
//! loop {
//!     match driver.poll_action() {
//!         Action::Transmit(request) => {
//!             // An adapter sends it; here the server's answer is made up.
//!             let answer = br#"{"sessionId":"5e55e55e-0000-4000-8000-000000000001","engagements":[]}"#;
//!             driver.handle_response(now, request.id, 201, answer);
//!         }
//!         Action::Complete(waiter, result) => {
//!             assert_eq!(waiter, 1);
//!             assert!(result.is_ok());
//!         }
//!         Action::Wait(_) => break,
//!         other => panic!("{other:?}"),
//!     }
//! }
//! let first = driver.take_event(now).expect("an event");
//! assert_eq!(first.name(), "INITIALIZED");
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod call;
mod driver;
mod error;
mod events;
mod handles;
mod options;
mod reply;
mod saving;
mod shared;
mod store;
mod transcript;

pub use call::Call;
pub use driver::{Action, Driver};
pub use error::{BoxError, Error, ProviderError};
pub use events::{ChatEvent, RecvTimeoutError, TryRecvError};
pub use handles::{is_over, live_participants, live_status};
pub use options::{DEFAULT_EVENT_CAPACITY, DEFAULT_STORED_OUTBOX, Options, StreamTransport};
pub use reply::{Reply, from_reply};
pub use saving::{POSITION_SAVE_DELAY, SAVE_RETRY, SaveError, SaveTicket};
pub use shared::{SharedTable, shared_while_used};
pub use store::{DEFAULT_LEASE_TTL, StoreLink, StoreOptions, default_owner, stored_customer};
pub use transcript::Transcript;

/// What every adapter re-exports at its root, so that both name the same types alike:
/// `pub use chat_driver::api::*;`.
pub mod api {
    pub use crate::{
        ChatEvent, DEFAULT_EVENT_CAPACITY, DEFAULT_LEASE_TTL, Error, ProviderError,
        RecvTimeoutError, StreamTransport, TryRecvError, stored_customer,
    };
    pub use chat_core::wire::{
        DisconnectReason, EngagementStatus, MappedData, MessageBody, Participant, ParticipantType,
        ShutdownReason,
    };
    pub use chat_core::{
        ChatError, Config, EndReason, EngagementId, EngagementInfo, Event, Footprint, HistoryPage,
        Message, MessageId, PollOutcome, Request, Resumption, SessionId, StreamFailure,
        StreamFailureReason, StreamState, TokenRefresh, TransportError, UserContext,
    };
    pub use chat_core::{HeldSend, Snapshot, SnapshotError};
    pub use chat_store::{Lease, MemoryStore, SessionStore, SqliteStore, StoreError};
}

/// Names the methods of [`client_builder_setters!`] and the handles' macros refer to; not
/// part of the API.
#[doc(hidden)]
pub mod __private {
    pub use chat_core::wire::{EngagementStatus, MappedData, Participant};
    pub use chat_core::{
        Config, DialogId, EndReason, EngagementId, EngagementInfo, Footprint, Message, Resumption,
        SessionId, StreamState, UserContext,
    };
    pub use chat_core::{HeldSend, HistoryPager};
    pub use chat_store::{Lease, SessionStore};
}
