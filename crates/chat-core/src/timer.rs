//! The timer table: one deadline per kind, the earliest of which is the next wake-up.

use std::time::Instant;

/// Every timer the core runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The one "activity" slot of the official SDK: idle, grace or reconnection.
    Activity,
    /// `TOKEN_EXPIRY_REMINDER` is due.
    TokenReminder,
    /// `TOKEN_EXPIRED` is due.
    TokenExpiry,
    /// The backoff sleep before the next reconnection attempt is over.
    Backoff,
    /// A send held in the outbox is due for another attempt, or has run out of time.
    Outbox,
    /// Time to ask the token provider for a new token (ahead of expiry, or again after a
    /// failed call).
    TokenRefresh,
    /// The token provider has not answered in time.
    TokenFetch,
    /// A session kept in a store that the server forgot: time to try making its replacement
    /// again.
    Replace,
}

const ALL: [Timer; 8] = [
    Timer::Activity,
    Timer::TokenReminder,
    Timer::TokenExpiry,
    Timer::Backoff,
    Timer::Outbox,
    Timer::TokenRefresh,
    Timer::TokenFetch,
    Timer::Replace,
];

#[derive(Debug, Default, Clone)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; ALL.len()],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer as usize] = Some(at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = None;
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer as usize]
    }

    pub(crate) fn stop_all(&mut self) {
        self.deadlines = [None; ALL.len()];
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Takes the earliest timer that is due at `now`, stopping it.
    pub(crate) fn take_due(&mut self, now: Instant) -> Option<Timer> {
        let timer = ALL
            .into_iter()
            .filter(|t| self.get(*t).is_some_and(|at| at <= now))
            .min_by_key(|t| self.get(*t))?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    #[allow(clippy::disallowed_methods)] // a base instant; nothing here waits on the clock
    fn due_timers_come_out_earliest_first() {
        let t0 = Instant::now();
        let mut table = TimerTable::default();
        table.set(Timer::Backoff, t0 + Duration::from_secs(2));
        table.set(Timer::Activity, t0 + Duration::from_secs(1));
        table.set(Timer::TokenExpiry, t0 + Duration::from_secs(9));
        assert_eq!(table.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(table.take_due(t0), None);
        let now = t0 + Duration::from_secs(3);
        assert_eq!(table.take_due(now), Some(Timer::Activity));
        assert_eq!(table.take_due(now), Some(Timer::Backoff));
        assert_eq!(table.take_due(now), None);
        assert_eq!(table.next(), Some(t0 + Duration::from_secs(9)));
    }
}
