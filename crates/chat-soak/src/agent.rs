//! The agent side of the crash and failover soaks: numbered messages posted into each
//! customer's chat at seeded times through the emulator's control handle, once the parent
//! knows which chat it is.

use std::collections::BTreeSet;
use std::time::Duration;

use chat_core::EngagementId;
use chat_emulator::Control;
use chat_tokio::ParticipantType;
use tokio::time::Instant;

use crate::numbered::{Way, text};

/// How soon the agent looks again for a chat it does not know yet.
const UNKNOWN_CHAT_RETRY: Duration = Duration::from_millis(100);

/// Each customer's posts: when, how far along, and which the emulator accepted.
#[derive(Debug)]
pub(crate) struct Agent {
    mode: &'static str,
    times: Vec<Vec<Duration>>,
    next: Vec<usize>,
    posted: Vec<BTreeSet<u64>>,
}

impl Agent {
    /// `count` posts per customer at seeded instants in `[from, until)` of the run.
    pub(crate) fn new(
        mode: &'static str,
        seed: u64,
        customers: usize,
        count: u64,
        from: Duration,
        until: Duration,
    ) -> Self {
        Self {
            mode,
            times: (0..customers)
                .map(|i| plan(seed, i, count, from, until))
                .collect(),
            next: vec![0; customers],
            posted: vec![BTreeSet::new(); customers],
        }
    }

    /// Posts what is due by `now` (the run started at `started`) into the chats `chat` knows;
    /// a post the emulator refuses is a problem.
    pub(crate) fn post_due(
        &mut self,
        control: &Control,
        started: Instant,
        now: Instant,
        chat: impl Fn(usize) -> Option<EngagementId>,
        problems: &mut Vec<String>,
    ) {
        for i in 0..self.times.len() {
            while self.times[i]
                .get(self.next[i])
                .is_some_and(|t| started + *t <= now)
            {
                let Some(engagement) = chat(i) else { break };
                let j = self.next[i] as u64 + 1;
                let body = text(self.mode, i, Way::Agent, j);
                match control.post_message(&engagement, ParticipantType::Agent, &body) {
                    Ok(_) => {
                        self.posted[i].insert(j);
                    }
                    Err(e) => problems.push(format!("posting agent message {j} to {i}: {e}")),
                }
                self.next[i] += 1;
            }
        }
    }

    /// When the next post is due (soon, for a chat not known yet).
    pub(crate) fn next_due(
        &self,
        started: Instant,
        now: Instant,
        known: impl Fn(usize) -> bool,
    ) -> Option<Instant> {
        (0..self.times.len())
            .filter_map(|i| {
                let due = started + *self.times[i].get(self.next[i])?;
                Some(if known(i) {
                    due
                } else {
                    due.max(now + UNKNOWN_CHAT_RETRY)
                })
            })
            .min()
    }

    /// Whether every post was made.
    pub(crate) fn done(&self) -> bool {
        (0..self.times.len()).all(|i| self.next[i] >= self.times[i].len())
    }

    /// The numbers the emulator accepted for customer `i`.
    pub(crate) fn posted(&self, i: usize) -> &BTreeSet<u64> {
        &self.posted[i]
    }
}

/// One customer's post times: `count` seeded instants in `[from, until)`, in order.
fn plan(seed: u64, customer: usize, count: u64, from: Duration, until: Duration) -> Vec<Duration> {
    let mut rng =
        fastrand::Rng::with_seed(seed.wrapping_mul(0x9e37_79b9) ^ customer as u64 ^ 0xa6e7);
    let span = until.saturating_sub(from).as_millis().max(1) as u64;
    let mut times: Vec<Duration> = (0..count)
        .map(|_| from + Duration::from_millis(rng.u64(0..span)))
        .collect();
    times.sort();
    times
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_are_seeded_per_customer_and_in_order() {
        let (from, until) = (Duration::from_secs(1), Duration::from_secs(5));
        let p = plan(3, 1, 10, from, until);
        assert_eq!(p.len(), 10);
        assert!(p.windows(2).all(|w| w[0] <= w[1]));
        assert!(p.iter().all(|t| *t >= from && *t < until));
        assert_eq!(p, plan(3, 1, 10, from, until));
        assert_ne!(p, plan(3, 2, 10, from, until));
    }

    #[test]
    fn a_post_waits_for_its_chat_and_nothing_is_left_once_all_are_made() {
        let agent = Agent::new("crash", 1, 2, 3, Duration::ZERO, Duration::from_secs(1));
        assert!(!agent.done());
        let now = Instant::now();
        let due = agent.next_due(now, now, |_| false).unwrap();
        assert!(due >= now + UNKNOWN_CHAT_RETRY);
        assert!(agent.posted(0).is_empty());
    }
}
