//! The event queue between the protocol and the application: bounded, with backpressure on
//! the event stream, and the read position of what the application has *taken*.

use std::collections::{BTreeMap, VecDeque};
use std::time::SystemTime;

use chat_core::{EngagementId, Event, Resumption};

/// One event of the official SDK's 16, with the time the client produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatEvent {
    /// The event.
    pub event: Event,
    /// When the client produced it (the official `eventDate` of client-side events), by the
    /// wall clock as of the client's start plus the monotonic clock since.
    pub at: SystemTime,
}

impl ChatEvent {
    /// The official name, such as `"MESSAGE_ARRIVED"`.
    pub fn name(&self) -> &'static str {
        self.event.name()
    }

    /// The chat this event is about, if it is one chat's (see [`Event::engagement_id`]).
    pub fn engagement_id(&self) -> Option<&EngagementId> {
        self.event.engagement_id()
    }
}

/// Why [`try_recv`](crate) found no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TryRecvError {
    /// None is ready now.
    #[error("no event is ready")]
    Empty,
    /// The client has stopped and every event was taken.
    #[error("the client has stopped")]
    Closed,
}

/// Why a wait for an event with a timeout ended without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvTimeoutError {
    /// None came in time.
    #[error("no event in time")]
    Timeout,
    /// The client has stopped and every event was taken.
    #[error("the client has stopped")]
    Closed,
}

/// The queue, with what the application has taken per chat.
#[derive(Debug)]
pub(crate) struct EventQueue {
    queue: VecDeque<ChatEvent>,
    capacity: usize,
    /// The receiver is gone: events are dropped (nobody will read them).
    closed: bool,
}

impl EventQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            capacity: capacity.max(1),
            closed: false,
        }
    }

    pub(crate) fn push(&mut self, event: ChatEvent) {
        if !self.closed {
            self.queue.push_back(event);
        }
    }

    pub(crate) fn pop(&mut self) -> Option<ChatEvent> {
        self.queue.pop_front()
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Full: the event stream is held back until the application takes an event.
    pub(crate) fn is_full(&self) -> bool {
        !self.closed && self.queue.len() >= self.capacity
    }

    pub(crate) fn close(&mut self) {
        self.closed = true;
        self.queue.clear();
    }

    /// Lowers the positions of `resumption` to what the application has taken: a message
    /// still queued was not seen, so the next session must fetch it again.
    pub(crate) fn lower_to_taken(&self, resumption: &mut Resumption) {
        let mut first_untaken: BTreeMap<&EngagementId, u64> = BTreeMap::new();
        for e in &self.queue {
            if let Event::MessageArrived(m) | Event::MessageDelivered(m) = &e.event {
                let at = first_untaken
                    .entry(&m.engagement_id)
                    .or_insert(m.message_index);
                *at = (*at).min(m.message_index);
            }
        }
        for (engagement, first) in first_untaken {
            let before = first.saturating_sub(1);
            let known = resumption
                .last_message_indexes
                .iter_mut()
                .find(|(e, _)| e == engagement);
            match known {
                Some((_, at)) => *at = (*at).min(before),
                None => resumption
                    .last_message_indexes
                    .push((engagement.clone(), before)),
            }
        }
    }
}
