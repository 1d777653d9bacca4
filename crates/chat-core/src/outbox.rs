//! The outbox's bookkeeping: sends held until they are known delivered or known failed, and
//! what a look at history needs to tell a lost answer from a lost request.
//!
//! AXP has no idempotency key for messages, so the only way to know whether an attempt whose
//! answer never came did arrive is to read the engagement's history. A message there counts
//! as one of ours when it is a customer's, has the same text and parent, came after the send
//! started (`messageIndex` above the baseline), and is not already known as the outcome of
//! another send of this session: that last rule makes identical texts ("ok", "ok") count one
//! each instead of one for all.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::ChatError;
use crate::event::Message;
use crate::ids::{EngagementId, MessageId, RequestId};
use crate::wire::ParticipantType;

/// Sends held at once; beyond this a send is not kept, and fails at its first error as
/// without an outbox. It bounds the memory a long outage can take.
pub(crate) const MAX_HELD: usize = 256;
/// Message ids remembered as this session's own sends while sends are held.
const MAX_CONFIRMED: usize = 1024;
/// The wait before attempt `n + 1` after attempt `n` failed: Fibonacci seconds, capped.
const RETRY_SECS: [u64; 8] = [1, 2, 3, 5, 8, 13, 21, 30];
/// The longest wait between attempts while the stream is down.
const SCOUT_MAX_SECS: u64 = 3;

/// One send held by the outbox.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// The id the caller got from `send_message`: its reply comes under this id.
    pub(crate) reply: RequestId,
    pub(crate) engagement: EngagementId,
    pub(crate) text: String,
    pub(crate) parent: Option<MessageId>,
    /// When the outbox gives up.
    pub(crate) deadline: Instant,
    /// The highest `messageIndex` known in the engagement when the send started: a message
    /// of ours can only be above it.
    pub(crate) baseline: u64,
    /// An earlier attempt may have reached the server: read history before sending again.
    pub(crate) uncertain: bool,
    /// Attempts that failed so far.
    pub(crate) failures: u32,
    /// Why the last attempt failed: the reply if the outbox gives up.
    pub(crate) last_error: Option<ChatError>,
    pub(crate) step: Step,
    /// With write-ahead: the snapshot version that first holds this send. It does not go
    /// out before a snapshot at least that recent is saved.
    pub(crate) unsaved: Option<u64>,
}

/// Where a held send stands.
#[derive(Debug)]
pub(crate) enum Step {
    /// An attempt is in flight.
    Sending(RequestId),
    /// Waiting to try again, not before `retry_at` and only while the stream is connected.
    Waiting { retry_at: Instant },
    /// Reading history for an earlier attempt: the messages found so far that may be it.
    Checking {
        request: RequestId,
        candidates: Vec<Message>,
        pages: u32,
    },
}

impl Outgoing {
    /// Whether `m` may be the outcome of this send.
    pub(crate) fn may_be(&self, m: &Message) -> bool {
        m.message_index > self.baseline
            && m.sender.participant_type == ParticipantType::Customer
            && m.text() == Some(self.text.as_str())
            && m.parent_message_id == self.parent
    }

    /// Back to waiting after a failed attempt or check: the next step of the schedule,
    /// plus up to half of it again at random, so that clients held by the same outage do
    /// not all try again in the same instant.
    ///
    /// While the stream is down (`scouting`) the waits stop growing at 3 s: the one send
    /// tried then is how the session learns that the server is back, and the sends held
    /// should go out within seconds of that, not after a half-minute wait.
    pub(crate) fn wait_after_failure(
        &mut self,
        now: Instant,
        rng: &mut fastrand::Rng,
        scouting: bool,
    ) {
        let at = (self.failures.max(1) as usize - 1).min(RETRY_SECS.len() - 1);
        let mut wait = Duration::from_secs(RETRY_SECS[at]);
        if scouting {
            wait = wait.min(Duration::from_secs(SCOUT_MAX_SECS));
        }
        self.step = Step::Waiting {
            retry_at: now + wait + crate::backoff::jitter(rng, wait / 2),
        };
    }
}

/// Every held send, and what tells their messages apart.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub(crate) held: Vec<Outgoing>,
    /// Messages known to be the outcome of one of this session's sends, kept while sends of
    /// their engagement are held (a check of history must not take them for another's).
    confirmed: Vec<(EngagementId, MessageId)>,
    /// The highest `messageIndex` among this session's delivered sends, per engagement.
    highest_sent: BTreeMap<EngagementId, u64>,
}

impl Outbox {
    pub(crate) fn is_full(&self) -> bool {
        self.held.len() >= MAX_HELD
    }

    pub(crate) fn highest_sent(&self, engagement: &EngagementId) -> Option<u64> {
        self.highest_sent.get(engagement).copied()
    }

    /// The held send whose attempt is `id`.
    pub(crate) fn sending(&self, id: RequestId) -> Option<usize> {
        self.held
            .iter()
            .position(|o| matches!(o.step, Step::Sending(r) if r == id))
    }

    /// The held send whose history check is `id`.
    pub(crate) fn checking(&self, id: RequestId) -> Option<usize> {
        self.held
            .iter()
            .position(|o| matches!(o.step, Step::Checking { request, .. } if request == id))
    }

    /// Notes a delivered send (held or not), so that no held send takes its message.
    pub(crate) fn delivered(&mut self, m: &Message) {
        let high = self
            .highest_sent
            .entry(m.engagement_id.clone())
            .or_default();
        *high = (*high).max(m.message_index);
        if self.held.iter().any(|o| o.engagement == m.engagement_id) {
            if self.confirmed.len() >= MAX_CONFIRMED {
                self.confirmed.remove(0);
            }
            self.confirmed
                .push((m.engagement_id.clone(), m.message_id.clone()));
        }
    }

    /// Whether `m` is already the outcome of a send of this session.
    pub(crate) fn is_confirmed(&self, m: &Message) -> bool {
        self.confirmed
            .iter()
            .any(|(e, id)| *e == m.engagement_id && *id == m.message_id)
    }

    /// Forgets confirmations no held send needs any more.
    pub(crate) fn prune(&mut self) {
        let held = &self.held;
        self.confirmed
            .retain(|(e, _)| held.iter().any(|o| o.engagement == *e));
    }

    /// Forgets an engagement that is gone.
    pub(crate) fn forget(&mut self, engagement: &EngagementId) {
        self.highest_sent.remove(engagement);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // a base instant; nothing here waits on the clock
    fn retries_back_off_in_fibonacci_seconds_up_to_30_with_jitter() {
        let now = Instant::now();
        let mut o = Outgoing {
            reply: RequestId(1),
            engagement: EngagementId::new("e"),
            text: "hi".into(),
            parent: None,
            deadline: now,
            baseline: 0,
            uncertain: false,
            failures: 0,
            last_error: None,
            step: Step::Sending(RequestId(1)),
            unsaved: None,
        };
        let mut waits = Vec::new();
        let mut rng = fastrand::Rng::with_seed(9);
        for failures in 1..=10 {
            o.failures = failures;
            o.wait_after_failure(now, &mut rng, false);
            let Step::Waiting { retry_at } = o.step else {
                panic!("not waiting");
            };
            let wait = retry_at - now;
            let base = Duration::from_secs(RETRY_SECS[(failures as usize - 1).min(7)]);
            assert!(
                wait >= base && wait < base + base / 2,
                "{wait:?} for {base:?}"
            );
            waits.push(base.as_secs());
        }
        assert_eq!(waits, [1, 2, 3, 5, 8, 13, 21, 30, 30, 30]);
    }
}
