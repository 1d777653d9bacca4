//! Timer expiries: idle, grace, reconnection, token reminder and expiry, backoff.

use std::time::Instant;

use super::{Phase, Session, Slot, TOKEN_WARNING};
use crate::Token;
use crate::event::{Event, StreamFailure, StreamFailureReason};
use crate::stream::StreamState;
use crate::timer::Timer;
use crate::wire::ShutdownReason;

impl Session {
    /// Feeds the passing of time: fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
    }

    pub(super) fn on_timer(&mut self, timer: Timer, now: Instant) {
        match timer {
            Timer::Replace => self.send_replacement(),
            Timer::Activity => match self.slot {
                Slot::Idle => {
                    self.slot = Slot::Grace;
                    let grace = self.config.idle_shutdown_grace_timeout;
                    self.timers.set(Timer::Activity, now + grace);
                    self.emit(Event::IdleTimeoutExpired {
                        grace_period: grace,
                    });
                }
                Slot::Grace => {
                    self.slot = Slot::None;
                    if self.phase == Phase::Ready {
                        self.begin_shutdown(Some(ShutdownReason::UserInactive), true, now);
                    }
                }
                Slot::Reconnection => {
                    self.slot = Slot::None;
                    if self.stream == StreamState::Retry {
                        self.give_up_reconnecting();
                    }
                }
                Slot::None => {}
            },
            Timer::TokenReminder => {
                let Some(expires_at) = self.token.as_ref().map(Token::expires_at) else {
                    return;
                };
                let exp_at = self.token_expiry_instant(now);
                self.timers.set(Timer::TokenExpiry, exp_at);
                self.emit(Event::TokenExpiryReminder {
                    expires_at,
                    expires_in: exp_at.saturating_duration_since(now),
                });
            }
            Timer::TokenExpiry => {
                if let Some(expired_at) = self.token.as_ref().map(Token::expires_at) {
                    self.emit(Event::TokenExpired { expired_at });
                }
            }
            Timer::TokenRefresh => self.request_token(now),
            Timer::TokenFetch => {
                tracing::warn!("the token provider did not answer in time");
                self.fetch_failed(now);
            }
            Timer::Backoff => {
                if self.stream == StreamState::Retry && self.in_flight.is_none() {
                    self.attempt_reconnection();
                }
            }
            Timer::Outbox => self.pump_outbox(now),
        }
    }

    fn give_up_reconnecting(&mut self) {
        self.stream = StreamState::Failed;
        self.timers.stop(Timer::Backoff);
        if let Some(f) = self.in_flight.take() {
            self.abort(f.id());
        }
        self.probing = None;
        self.emit(Event::EventStreamFailed(StreamFailure {
            reason: StreamFailureReason::ReconnectionTimeout,
            retry_after: None,
        }));
    }

    /// Customer activity: restarts the idle timer if it (or grace) is what runs.
    pub(super) fn activity(&mut self, now: Instant) {
        if matches!(self.slot, Slot::Idle | Slot::Grace) {
            self.start_idle(now);
        }
    }

    pub(super) fn start_idle(&mut self, now: Instant) {
        match self.config.idle_timeout {
            Some(idle) => {
                self.slot = Slot::Idle;
                self.timers.set(Timer::Activity, now + idle);
            }
            None => {
                self.slot = Slot::None;
                self.timers.stop(Timer::Activity);
            }
        }
    }

    pub(super) fn start_reconnection_timer(&mut self, now: Instant) {
        self.slot = Slot::Reconnection;
        self.timers
            .set(Timer::Activity, now + self.config.reconnection_timeout);
    }

    /// `exp` as a monotonic instant, by the wall clock of the last anchor.
    fn token_expiry_instant(&self, now: Instant) -> Instant {
        now + self.token_remaining(now)
    }

    /// Reminder at `exp − 180 s` (at once if less is left), then expiry at `exp`.
    pub(super) fn arm_token_timers(&mut self, now: Instant) {
        let exp_at = self.token_expiry_instant(now);
        let reminder_at = exp_at
            .checked_sub(TOKEN_WARNING)
            .map_or(now, |at| at.max(now));
        self.timers.stop(Timer::TokenExpiry);
        self.timers.set(Timer::TokenReminder, reminder_at);
        // "At once" means now, not at the next input.
        self.fire_due(now);
    }

    pub(super) fn fire_due(&mut self, now: Instant) {
        while let Some(timer) = self.timers.take_due(now) {
            self.on_timer(timer, now);
        }
    }
}
