//! [`Snapshot`]: what a session keeps across processes, as its store writes it.
//!
//! The core decides what the snapshot holds and when it changed
//! ([`Session::snapshot_version`](crate::Session::snapshot_version)); the adapters write it.
//! It is JSON, versioned by [`SNAPSHOT_FORMAT`], and holds nothing secret: no token, no
//! appkey. A snapshot that cannot be read, or that another version of this SDK wrote, is a
//! typed [`SnapshotError`], never a silent fresh start that would lose a chat.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::ids::{EngagementId, MessageId};
use crate::session::Resumption;

/// The snapshot format this version writes and reads.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// What a session keeps across processes: the session and its chats with the position of
/// what the application has taken in each, the customer it belongs to, and the sends held
/// in the outbox (written before they first go out, so that a crash loses none of them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Snapshot {
    /// [`SNAPSHOT_FORMAT`] when written.
    pub format: u32,
    /// The application's label for the customer the session belongs to, so that whoever
    /// resumes it can mint the next token for the right person. The core never reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// The session, once the server created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumption: Option<Resumption>,
    /// The sends the outbox holds, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sends: Vec<HeldSend>,
}

/// A send the outbox holds: it is delivered exactly once, by whichever process resumes the
/// session, after a look at history in case an attempt before the crash arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HeldSend {
    /// The chat.
    pub engagement_id: EngagementId,
    /// The text.
    pub text: String,
    /// The message it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_message_id: Option<MessageId>,
    /// The highest `messageIndex` known when the send started: only a message above it
    /// can be this send's.
    pub baseline: u64,
    /// When the outbox gives up on it, in milliseconds since the Unix epoch (a wall-clock
    /// time, since the next process has another monotonic clock).
    pub give_up_at_ms: u64,
}

impl HeldSend {
    /// How long is left at `wall` before the outbox gives up on it.
    pub fn remaining(&self, wall: SystemTime) -> Duration {
        let now = wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        Duration::from_millis(self.give_up_at_ms).saturating_sub(now)
    }
}

/// Why a stored snapshot cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// It is not a snapshot: damaged, or not written by this SDK.
    #[error("the stored session is corrupt: {0}")]
    Corrupt(String),
    /// Another version of this SDK wrote it, in a format this one does not read.
    #[error("the stored session has format {found}; this version reads format {supported}")]
    Format {
        /// The format found.
        found: u32,
        /// The one this version reads.
        supported: u32,
    },
}

impl Snapshot {
    /// An empty snapshot: no session yet.
    pub fn new() -> Self {
        Self {
            format: SNAPSHOT_FORMAT,
            customer: None,
            resumption: None,
            sends: Vec::new(),
        }
    }

    /// The snapshot as its store keeps it.
    pub fn to_json(&self) -> String {
        // A struct of strings and numbers: serializing it cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A stored snapshot, checked: its format first, so that a newer one is reported as
    /// such rather than as corrupt.
    pub fn from_json(text: &str) -> Result<Self, SnapshotError> {
        let corrupt = |e: serde_json::Error| SnapshotError::Corrupt(e.to_string());
        let value: serde_json::Value = serde_json::from_str(text).map_err(corrupt)?;
        let Some(format) = value.get("format").and_then(serde_json::Value::as_u64) else {
            return Err(SnapshotError::Corrupt("not an object with a format".into()));
        };
        if format != u64::from(SNAPSHOT_FORMAT) {
            return Err(SnapshotError::Format {
                found: u32::try_from(format).unwrap_or(u32::MAX),
                supported: SNAPSHOT_FORMAT,
            });
        }
        serde_json::from_value(value).map_err(corrupt)
    }

    /// Raises the positions of what the application has taken to those it recorded itself
    /// (in its own transaction; see the exactly-once recipe in the docs): a position only
    /// ever moves forward.
    pub fn raise_positions<'a>(&mut self, taken: impl IntoIterator<Item = (&'a str, u64)>) {
        let Some(r) = &mut self.resumption else {
            return;
        };
        for (engagement, index) in taken {
            match r
                .last_message_indexes
                .iter_mut()
                .find(|(e, _)| e.as_str() == engagement)
            {
                Some((_, at)) => *at = (*at).max(index),
                None => r
                    .last_message_indexes
                    .push((EngagementId::new(engagement), index)),
            }
        }
    }
}

impl Default for Snapshot {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SessionId;

    #[test]
    fn a_snapshot_round_trips_and_a_foreign_one_is_a_typed_error() {
        let mut s = Snapshot::new();
        s.customer = Some("customer-42".into());
        s.resumption = Some(Resumption {
            session_id: SessionId::new("s1"),
            active_engagements: vec![EngagementId::new("e1")],
            last_message_indexes: vec![(EngagementId::new("e1"), 4)],
        });
        s.sends.push(HeldSend {
            engagement_id: EngagementId::new("e1"),
            text: "hello".into(),
            parent_message_id: None,
            baseline: 4,
            give_up_at_ms: 1_000,
        });
        assert_eq!(Snapshot::from_json(&s.to_json()), Ok(s.clone()));

        let newer = s.to_json().replace("\"format\":1", "\"format\":2");
        assert_eq!(
            Snapshot::from_json(&newer),
            Err(SnapshotError::Format {
                found: 2,
                supported: 1
            })
        );
        for bad in ["", "{}", "{\"format\":1,\"sends\":7}", "[1]"] {
            assert!(
                matches!(Snapshot::from_json(bad), Err(SnapshotError::Corrupt(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn positions_recorded_by_the_application_only_move_forward() {
        let mut s = Snapshot::new();
        s.resumption = Some(Resumption {
            session_id: SessionId::new("s1"),
            active_engagements: vec![],
            last_message_indexes: vec![(EngagementId::new("e1"), 4)],
        });
        s.raise_positions([("e1", 2), ("e2", 9)]);
        s.raise_positions([("e1", 6)]);
        let r = s.resumption.unwrap();
        assert_eq!(
            r.last_message_indexes,
            [(EngagementId::new("e1"), 6), (EngagementId::new("e2"), 9)]
        );
        assert_eq!(
            HeldSend {
                engagement_id: EngagementId::new("e1"),
                text: String::new(),
                parent_message_id: None,
                baseline: 0,
                give_up_at_ms: 5_000,
            }
            .remaining(SystemTime::UNIX_EPOCH + Duration::from_secs(2)),
            Duration::from_secs(3)
        );
    }
}
