//! Sans-IO protocol core of the AXP Digital customer chat SDK.
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod ids;
pub mod token;
pub mod validate;
pub mod wire;

pub use config::{AppKey, Config, InitParams};
pub use error::{ChatError, TransportError};
pub use ids::{
    DialogId, EngagementId, IntegrationId, MessageId, ParticipantId, RequestId, SessionId,
};
pub use token::Token;
