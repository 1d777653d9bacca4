//! Reconnection backoff: Fibonacci base delays 1, 2, 3, 5, 8… s, uncapped, plus jitter from
//! a seeded generator.
//!
//! The official SDK adds [0, 1) s to each delay. That spreads a crowd of clients that lost
//! the same server at the same instant by well under a second per attempt, so after an
//! outage they come back in a burst. Here the jitter grows with the delay: [0, max(1 s,
//! base / 2)), so each attempt lies in [base, 1.5 × base) and the crowd spreads as the
//! outage lasts. The wait is never shorter than `retryAfter` (the base), as the official
//! SDK promises.
//!
//! "Uncapped" in the official SDK; here the sequence stops growing at a day, which the
//! reconnection timeout (at most 900 s) never lets it reach, so that no deadline arithmetic
//! can overflow.

use std::time::Duration;

const MAX_BASE_SECS: u64 = 86_400;

#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    current: u64,
    next: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            current: 1,
            next: 2,
        }
    }
}

/// A random duration in [0, `up_to`).
pub(crate) fn jitter(rng: &mut fastrand::Rng, up_to: Duration) -> Duration {
    let nanos = u64::try_from(up_to.as_nanos()).unwrap_or(u64::MAX).max(1);
    Duration::from_nanos(rng.u64(0..nanos))
}

/// A seed from the operating system's randomness (std's hash keys are drawn from it).
pub(crate) fn os_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x5eed);
    hasher.finish()
}

impl Backoff {
    /// Back to the first delay (after a successful or refused reconnection, a manual retry,
    /// or a stream start or stop).
    pub(crate) fn reset(&mut self) {
        self.current = 1;
        self.next = 2;
    }

    /// The base delay the next sleep will use: the `retryAfter` of `EVENT_STREAM_FAILED`.
    pub(crate) fn base(&self) -> Duration {
        Duration::from_secs(self.current)
    }

    /// The next sleep (base plus jitter); advances the sequence.
    pub(crate) fn next_sleep(&mut self, rng: &mut fastrand::Rng) -> Duration {
        let spread = self.base().div_f32(2.0).max(Duration::from_secs(1));
        let sleep = self.base() + jitter(rng, spread);
        if self.next <= MAX_BASE_SECS {
            let after = self.current + self.next;
            self.current = self.next;
            self.next = after;
        }
        sleep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fibonacci_with_jitter_growing_with_the_delay() {
        let mut b = Backoff::default();
        let mut rng = fastrand::Rng::with_seed(7);
        let mut bases = Vec::new();
        for _ in 0..8 {
            let base = b.base();
            let sleep = b.next_sleep(&mut rng);
            let spread = (base / 2).max(Duration::from_secs(1));
            assert!(
                sleep >= base && sleep < base + spread,
                "{sleep:?} for {base:?}"
            );
            bases.push(base.as_secs());
        }
        assert_eq!(bases, [1, 2, 3, 5, 8, 13, 21, 34]);
        b.reset();
        assert_eq!(b.base(), Duration::from_secs(1));
    }

    #[test]
    fn same_seed_same_schedule_and_os_seeds_differ() {
        let (mut a, mut b) = (Backoff::default(), Backoff::default());
        let (mut ra, mut rb) = (fastrand::Rng::with_seed(3), fastrand::Rng::with_seed(3));
        for _ in 0..5 {
            assert_eq!(a.next_sleep(&mut ra), b.next_sleep(&mut rb));
        }
        assert_ne!(os_seed(), os_seed());
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::default();
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..200 {
            b.next_sleep(&mut rng);
        }
        assert!(b.base().as_secs() <= MAX_BASE_SECS);
        assert!(b.base().as_secs() > 900);
    }
}
