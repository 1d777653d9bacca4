//! Each call's own result type: what a `Reply` holds for it.

use chat_core::{EngagementInfo, HistoryPage, Message, ReplyValue, UserContext};

use crate::Error;

/// A type one call completes with, out of the core's [`ReplyValue`].
pub trait Reply: Sized {
    /// The value, if `value` is of this call's kind.
    fn from_value(value: ReplyValue) -> Option<Self>;
}

/// A call's result, typed. The core completes each call with a reply of its own kind, so a
/// reply of another kind would be a bug in this SDK, reported as such rather than hidden.
pub fn from_reply<T: Reply>(result: Result<ReplyValue, Error>) -> Result<T, Error> {
    let value = result?;
    let kind = format!("{value:?}");
    T::from_value(value).ok_or_else(|| {
        debug_assert!(false, "a reply of another kind: {kind}");
        Error::Chat(chat_core::ChatError::ServerUnexpected {
            status: None,
            detail: Some("internal error: a reply of another kind".to_owned()),
        })
    })
}

macro_rules! reply {
    ($t:ty, $variant:pat => $value:expr) => {
        impl Reply for $t {
            fn from_value(value: ReplyValue) -> Option<Self> {
                match value {
                    $variant => Some($value),
                    _ => None,
                }
            }
        }
    };
}

reply!(UserContext, ReplyValue::Initialized(c) => c);
reply!(EngagementInfo, ReplyValue::Engagement(e) => e);
reply!(Vec<EngagementInfo>, ReplyValue::Engagements(e) => e);
reply!(Message, ReplyValue::MessageSent(m) => m);
reply!(HistoryPage, ReplyValue::History(p) => p);
reply!((), ReplyValue::Disconnected | ReplyValue::Shutdown | ReplyValue::TokenRefreshed | ReplyValue::Saved => ());
