//! Sans-IO protocol core of the AXP Digital customer chat SDK.
//!
//! A [`Session`] is one customer chat session on AXP Digital — its engagements (chats), its
//! event stream, its token and its timers — as a state machine that does no I/O, reads no
//! clock and starts no thread. The adapters (`chat-tokio`, `chat-blocking`, or your own) carry
//! its requests over the network and feed back responses and the time:
//!
//! ```text
//!   commands ─┐                                   ┌─> Transmit(Request)   send it
//!   responses ├─> Session (state, timers) ─poll_output─> Abort(RequestId)  cancel it
//!   failures  │     every input carries `now`     ├─> Reply / Event       give to the app
//!   timeouts ─┘                                   └─> Wait(deadline)      sleep until then
//! ```
//!
//! After every command or input, call [`Session::poll_output`] until it returns
//! [`Output::Wait`]. Protocol rules live here — validation with the official `ACS-3xx` codes,
//! the six stream states, probes, Fibonacci backoff with jitter, the reconnection, idle and
//! grace timers, the token reminder 180 s before `exp`, the cursor and de-duplication of
//! events, message ordering and catch-up from history — so that every adapter behaves alike.
//!
//! # Example
//!
//! A session created and its first chat started, with the test playing the server:
//!
//! ```
//! use std::time::{Duration, Instant, SystemTime};
//! use chat_core::{AppKey, Config, InitParams, Output, Session, Token};
//!
//! # fn main() -> Result<(), chat_core::ChatError> {
//! // In real use the token comes from your backend; this one's payload is {"exp":4000000000}.
//! let token = Token::parse("jwt.e30.eyJleHAiOjQwMDAwMDAwMDB9.signature")?;
//! let params = InitParams::new(
//!     "https://na.api.avayacloud.com",
//!     "123e4567-e89b-12d3-a456-426614174000",
//!     token,
//!     AppKey::new("appkey"),
//! )?;
//! let mut session = Session::new(params, Config::default())?;
//! # #[allow(clippy::disallowed_methods)]
//! let now = Instant::now(); // an adapter's clock; the core never reads one
//! let init = session.init(now, SystemTime::now())?;
//!
//! // The adapter sends the request and feeds back the server's answer.
//! let Output::Transmit(request) = session.poll_output() else { unreachable!() };
//! assert_eq!(request.method.as_str(), "POST");
//! let answer = br#"{"sessionId":"5e55e55e-0000-4000-8000-000000000001","engagements":[]}"#;
//! session.handle_response(now, request.id, 201, answer);
//!
//! let mut events = Vec::new();
//! loop {
//!     match session.poll_output() {
//!         Output::Event(event) => events.push(event.name()),
//!         Output::Reply(reply) => assert!(reply.id == init && reply.result.is_ok()),
//!         Output::Wait(deadline) => {
//!             // The idle timer (900 s by default) is the next deadline.
//!             assert_eq!(deadline, Some(now + Duration::from_secs(900)));
//!             break;
//!         }
//!         other => panic!("unexpected {other:?}"),
//!     }
//! }
//! assert_eq!(events, ["INITIALIZED"]);
//! assert!(session.is_ready());
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod backoff;
mod config;
mod engagement;
mod error;
mod event;
mod history;
mod ids;
mod outbox;
mod request;
mod session;
mod snapshot;
mod stream;
mod timer;
mod token;
pub mod validate;
pub mod wire;

pub use config::{AppKey, Config, InitParams, TokenRefresh};
pub use error::{ChatError, TransportError};
pub use event::{
    EndReason, EngagementInfo, EngagementRef, Event, HistoryPage, Message, Output, PageLink,
    ParticipantChange, Reply, ReplyValue, StreamFailure, StreamFailureReason, UserContext,
};
pub use history::{DEFAULT_PAGE_SIZE, HistoryPager, MAX_FETCHES_PER_MOVE, MAX_PAGE_SIZE};
pub use ids::{
    DialogId, EngagementId, IntegrationId, MessageId, ParticipantId, RequestId, SessionId, is_uuid,
};
pub use request::{Method, PollOutcome, Request, RequestKind, USER_AGENT};
pub use session::{
    Footprint, MAX_HELD_MESSAGES, MAX_ORPHANS, PROBE_COUNT, Resumption, Session, TOKEN_WARNING,
};
pub use snapshot::{HeldSend, SNAPSHOT_FORMAT, Snapshot, SnapshotError};
pub use stream::StreamState;
pub use token::{MAX_EXP_UNIX, Token};
