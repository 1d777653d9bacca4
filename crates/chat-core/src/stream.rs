//! The event stream's state and its cursor: which events are new, what to acknowledge.

use std::collections::HashSet;

use crate::ids::RequestId;
use crate::wire::ServerEvent;

/// The state of the event stream (the official SDK's six).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StreamState {
    /// Not running: no engagement of this session needs it.
    Closed,
    /// Started, waiting for the first answer.
    Connecting,
    /// Polling normally.
    Connected,
    /// Backing off between reconnection attempts.
    Retry,
    /// Stopped by a 401 or 403 until a new token is set.
    Paused,
    /// Reconnection timed out; waits for `retry_connection`.
    Failed,
}

/// What is in flight on the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InFlight {
    Poll(RequestId),
    Probe(RequestId),
}

impl InFlight {
    pub(crate) fn id(self) -> RequestId {
        match self {
            Self::Poll(id) | Self::Probe(id) => id,
        }
    }
}

/// The failure that started a round of disconnection probes, reported if all of them fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probing {
    pub(crate) failed: u8,
    pub(crate) reason: crate::event::StreamFailureReason,
}

/// Cursor and de-duplication, as the official SDK keeps them.
///
/// `last_event_id` is sent as `?lastEventId=` and acknowledges everything up to it; the
/// ids of the last non-empty batch are remembered so that a batch re-delivered after a lost
/// response is not processed twice. An empty batch clears both (the server has nothing
/// unacknowledged), exactly as the official client does, so the wire behaviour is the same.
#[derive(Debug, Default, Clone)]
pub(crate) struct Cursor {
    last_event_id: Option<String>,
    seen: HashSet<String>,
    /// The next batch's set, kept to reuse its allocation.
    spare: HashSet<String>,
}

impl Cursor {
    pub(crate) fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// How many event ids the seen set holds.
    pub(crate) fn seen(&self) -> usize {
        self.seen.len()
    }

    /// Forget the seen set (stream start or stop); the cursor stays.
    pub(crate) fn forget_seen(&mut self) {
        self.seen.clear();
    }

    /// Keeps the events of `batch` that were not in the previous batch, in order, and moves
    /// the cursor. The kept events come back without their `event_id`: the ids are moved into
    /// the seen-set rather than copied, the one copy being the new cursor.
    pub(crate) fn admit(&mut self, mut batch: Vec<ServerEvent>) -> Vec<ServerEvent> {
        if batch.is_empty() {
            self.last_event_id = None;
            self.seen.clear();
            return batch;
        }
        let mut batch_ids = std::mem::take(&mut self.spare);
        batch_ids.clear();
        let mut any_fresh = false;
        batch.retain_mut(|event| {
            let fresh = !self.seen.contains(&event.event_id);
            let id = std::mem::take(&mut event.event_id);
            // An id repeated inside one batch is processed once, at its first copy.
            let fresh = fresh && !batch_ids.contains(&id);
            if fresh {
                any_fresh = true;
                self.cursor_candidate(&id);
            }
            batch_ids.insert(id);
            fresh
        });
        if any_fresh {
            self.spare = std::mem::replace(&mut self.seen, batch_ids);
        } else {
            self.spare = batch_ids;
        }
        batch
    }

    fn cursor_candidate(&mut self, id: &str) {
        match &mut self.last_event_id {
            Some(last) => {
                last.clear();
                last.push_str(id);
            }
            None => self.last_event_id = Some(id.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ServerEventType;

    fn ev(id: &str) -> ServerEvent {
        ServerEvent::new(id, ServerEventType::EngagementCreated)
    }

    fn count(events: &[ServerEvent]) -> usize {
        events.len()
    }

    #[test]
    fn redelivered_batch_is_dropped_and_cursor_moves() {
        let mut c = Cursor::default();
        assert_eq!(count(&c.admit(vec![ev("1"), ev("2")])), 2);
        assert_eq!(c.last_event_id(), Some("2"));
        // A lost response: the same events again, plus a new one.
        assert_eq!(count(&c.admit(vec![ev("1"), ev("2"), ev("3")])), 1);
        assert_eq!(c.last_event_id(), Some("3"));
        // Only already-seen ids: nothing changes.
        assert!(c.admit(vec![ev("3")]).is_empty());
        assert_eq!(c.last_event_id(), Some("3"));
        // An id twice in one batch is processed once.
        assert_eq!(count(&c.admit(vec![ev("4"), ev("4"), ev("5")])), 2);
        assert_eq!(c.last_event_id(), Some("5"));
        // An empty batch resets the cursor, as the official client does.
        assert!(c.admit(Vec::new()).is_empty());
        assert_eq!(c.last_event_id(), None);
    }
}
