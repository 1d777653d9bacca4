//! Retry policy (bounded attempts, exponential backoff with full jitter, `Retry-After`) and the
//! injectable [`Clock`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// How failed calls are retried.
///
/// Connection errors, HTTP 5xx and HTTP 429 are retried; other failures (4xx, timeouts, bad
/// responses) are returned at once. Before retry number `n` (starting at 0) the client sleeps a
/// random duration in `0..=min(max_delay, base_delay * 2^n)` ("full jitter"), or, when the
/// service sent `Retry-After: <seconds>`, that many seconds capped at `max_retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts per call, the first included (1 disables retries).
    pub max_attempts: u32,
    /// Backoff base delay.
    pub base_delay: Duration,
    /// Upper bound of one backoff delay.
    pub max_delay: Duration,
    /// Upper bound on an honoured `Retry-After`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The delay before retry number `retry` (0-based), given the service's `Retry-After`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_retry_after);
        }
        let factor = 1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX);
        let ceiling = self
            .base_delay
            .saturating_mul(factor)
            .min(self.max_delay)
            .as_nanos();
        let ceiling = u64::try_from(ceiling).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=ceiling))
    }
}

/// Parses a `Retry-After` header given in delta-seconds (HTTP-dates are ignored).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A boxed sleep future.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The time source of a [`TokenClient`](crate::TokenClient): access-token expiry is measured with
/// [`Clock::now`], and retry backoff waits with [`Clock::sleep`].
///
/// The default is [`SystemClock`]. Tests inject their own to expire tokens or skip backoff delays
/// without waiting.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current monotonic time.
    fn now(&self) -> Instant;
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> Sleep;
}

/// The real clock: [`Instant::now`] and [`tokio::time::sleep`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_is_bounded_and_retry_after_is_capped() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(5),
        };
        for _ in 0..200 {
            assert!(p.delay(0, None) <= Duration::from_millis(100));
            assert!(p.delay(1, None) <= Duration::from_millis(200));
            assert!(p.delay(7, None) <= Duration::from_millis(300));
            assert!(p.delay(u32::MAX, None) <= Duration::from_millis(300));
        }
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(120))),
            Duration::from_secs(5)
        );
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
