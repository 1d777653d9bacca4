//! Identifiers: the server's UUID strings as distinct types, and our own request ids.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an identifier received from the server, without checking its form.
            ///
            /// Server input is taken as it comes: ids are opaque to the client.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// Parses an identifier given by the application: it must be a UUID
            /// (8-4-4-4-12 hexadecimal digits, either case), as the official SDK requires.
            pub fn parse(id: &str) -> Result<Self, crate::ChatError> {
                if is_uuid(id) {
                    Ok(Self(id.to_owned()))
                } else {
                    Err(crate::ChatError::constraint(concat!(stringify!($name), " should be UUID")))
                }
            }

            /// The identifier as sent on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A chat session (one per client instance; `sessionId` on the wire).
    SessionId
);
string_id!(
    /// An engagement, i.e. one chat (`engagementId`).
    EngagementId
);
string_id!(
    /// The dialog of an engagement (`dialogs[0].dialogId`).
    DialogId
);
string_id!(
    /// A message (`messageId`).
    MessageId
);
string_id!(
    /// A participant of an engagement (`participantId`).
    ParticipantId
);
string_id!(
    /// A chat integration, the provisioned entry point (`integrationId`).
    IntegrationId
);

/// Identifies one request that the core asked the adapter to send, and the command it serves.
///
/// Every command returns the id of its request, and its [`Reply`](crate::Reply) carries the
/// same id. Ids are unique within one [`Session`](crate::Session) and never reused.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// True for the hyphenated UUID form `8-4-4-4-12` of hexadecimal digits, in either case.
///
/// Hand-written rather than taken from a UUID crate because the official SDK accepts exactly
/// this form and no other (no braces, no URN, no simple form).
pub fn is_uuid(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_form_is_checked() {
        assert!(is_uuid("123e4567-e89b-12d3-a456-426614174000"));
        assert!(is_uuid("123E4567-E89B-12D3-A456-426614174000"));
        assert!(!is_uuid("123e4567e89b12d3a456426614174000"));
        assert!(!is_uuid("{123e4567-e89b-12d3-a456-426614174000}"));
        assert!(!is_uuid("123e4567-e89b-12d3-a456-42661417400g"));
        assert!(!is_uuid(""));
    }

    #[test]
    fn parse_rejects_non_uuid_with_acs_322() {
        let err = EngagementId::parse("nope").unwrap_err();
        assert_eq!(err.code(), "ACS-322");
        assert!(EngagementId::parse("123e4567-e89b-12d3-a456-426614174000").is_ok());
    }
}
