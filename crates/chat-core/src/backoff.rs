//! Reconnection backoff: Fibonacci base delays 1, 2, 3, 5, 8… s, uncapped, plus jitter in
//! [0, 1) s from a seeded generator so that schedules are reproducible.
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
    rng: fastrand::Rng,
}

impl Backoff {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            current: 1,
            next: 2,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

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
    pub(crate) fn next_sleep(&mut self) -> Duration {
        let jitter = Duration::from_nanos(self.rng.u64(0..1_000_000_000));
        let sleep = self.base() + jitter;
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
    fn fibonacci_with_bounded_jitter() {
        let mut b = Backoff::new(7);
        let mut bases = Vec::new();
        for _ in 0..8 {
            let base = b.base();
            let sleep = b.next_sleep();
            assert!(sleep >= base && sleep < base + Duration::from_secs(1));
            bases.push(base.as_secs());
        }
        assert_eq!(bases, [1, 2, 3, 5, 8, 13, 21, 34]);
        b.reset();
        assert_eq!(b.base(), Duration::from_secs(1));
    }

    #[test]
    fn same_seed_same_schedule() {
        let (mut a, mut b) = (Backoff::new(3), Backoff::new(3));
        for _ in 0..5 {
            assert_eq!(a.next_sleep(), b.next_sleep());
        }
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::new(1);
        for _ in 0..200 {
            b.next_sleep();
        }
        assert!(b.base().as_secs() <= MAX_BASE_SECS);
        assert!(b.base().as_secs() > 900);
    }
}
