//! Sans-IO protocol core of the AXP Digital customer chat SDK.
#![forbid(unsafe_code)]

mod backoff;
pub mod config;
mod engagement;
pub mod error;
pub mod event;
pub mod history;
pub mod ids;
pub mod request;
mod session;
pub mod stream;
mod timer;
pub mod token;
pub mod validate;
pub mod wire;

pub use config::{AppKey, Config, InitParams};
pub use error::{ChatError, TransportError};
pub use event::{
    EngagementInfo, EngagementRef, Event, HistoryPage, Message, Output, PageLink,
    ParticipantChange, Reply, ReplyValue, StreamFailure, StreamFailureReason, UserContext,
};
pub use ids::{
    DialogId, EngagementId, IntegrationId, MessageId, ParticipantId, RequestId, SessionId,
};
pub use request::{Method, Request, RequestKind};
pub use session::{PROBE_COUNT, Resumption, Session, TOKEN_WARNING};
pub use stream::StreamState;
pub use token::Token;
