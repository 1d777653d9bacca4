//! The event stream: start and stop, polls, probes, backoff and reconnection (reference 6.8).

use std::time::Instant;

use super::{Pending, Phase, Session, Slot, urls};
use crate::TransportError;
use crate::event::{Event, StreamFailure, StreamFailureReason};
use crate::request::{Method, RequestKind};
use crate::stream::{InFlight, Probing, StreamState};
use crate::timer::Timer;
use crate::wire::{Problem, SESSION_NOT_FOUND};

/// What a stream response means, whatever the state.
enum Answer {
    Events(Vec<crate::wire::ServerEvent>),
    Refused(StreamFailureReason),
    SessionGone,
    /// A failure; `probe` when it was a bad status (worth probing), not a network failure.
    Failed {
        reason: StreamFailureReason,
        probe: bool,
    },
}

impl Session {
    /// Starts or stops the stream so that it runs exactly while this session takes part in an
    /// engagement. Called after anything that may change that.
    pub(super) fn update_stream(&mut self, now: Instant) {
        let wanted = self.phase == Phase::Ready && self.engagements.iter().any(|e| e.attached);
        match (wanted, self.stream) {
            (true, StreamState::Closed) => {
                self.stream = StreamState::Connecting;
                self.backoff.reset();
                self.cursor.forget_seen();
                self.emit(Event::EventStreamConnecting);
                self.send_poll();
            }
            (false, StreamState::Closed) | (true, _) => {}
            (false, _) => self.stop_stream(now),
        }
    }

    pub(super) fn stop_stream(&mut self, now: Instant) {
        if let Some(f) = self.in_flight.take() {
            self.abort(f.id());
        }
        self.probing = None;
        self.stream = StreamState::Closed;
        self.timers.stop(Timer::Backoff);
        self.backoff.reset();
        self.cursor.forget_seen();
        // Unlike the official SDK, a stopped stream leaves no reconnection timer behind (no
        // spurious RECONNECTION_TIMEOUT), and the idle timer takes its slot back.
        if self.slot == Slot::Reconnection && self.phase == Phase::Ready {
            self.start_idle(now);
        }
        self.emit(Event::EventStreamClosed);
    }

    pub(super) fn send_poll(&mut self) {
        let Some(url) = self.events_url() else {
            return;
        };
        let last = self.cursor.last_event_id().map(str::to_owned);
        let id = self.transmit(
            Method::Get,
            url,
            None,
            RequestKind::Poll {
                last_event_id: last,
            },
            Pending::Poll,
        );
        self.in_flight = Some(InFlight::Poll(id));
    }

    /// `…/sessions/{id}/events?lastEventId=…` for the current cursor; the fixed part is built
    /// once per session.
    fn events_url(&mut self) -> Option<String> {
        let sid = self.session_id.as_ref()?;
        let events = self
            .events_url
            .get_or_insert_with(|| urls::events(&self.base, sid, None));
        Some(urls::events_after(events, self.cursor.last_event_id()))
    }

    fn send_probe(&mut self) {
        let Some(url) = self.events_url() else {
            return;
        };
        let id = self.transmit(Method::Get, url, None, RequestKind::Probe, Pending::Probe);
        self.in_flight = Some(InFlight::Probe(id));
    }

    /// One reconnection attempt from Retry: announced, then polled.
    pub(super) fn attempt_reconnection(&mut self) {
        self.emit(Event::EventStreamConnecting);
        self.send_poll();
    }

    pub(super) fn on_poll(&mut self, now: Instant, result: Result<(u16, &[u8]), TransportError>) {
        self.in_flight = None;
        let answer = classify(result);
        match (self.stream, answer) {
            (_, Answer::SessionGone) => self.session_gone(now),
            (StreamState::Connecting | StreamState::Connected, Answer::Events(batch)) => {
                let first = self.stream == StreamState::Connecting;
                self.stream = StreamState::Connected;
                if first {
                    self.emit(Event::EventStreamConnected);
                }
                self.connected(now, batch);
            }
            (StreamState::Retry | StreamState::Failed, Answer::Events(batch)) => {
                self.stream = StreamState::Connected;
                self.timers.stop(Timer::Backoff);
                self.backoff.reset();
                self.start_idle(now);
                self.emit(Event::EventStreamConnected);
                self.connected(now, batch);
            }
            (StreamState::Connecting | StreamState::Connected, Answer::Refused(reason)) => {
                self.pause(reason);
            }
            (StreamState::Retry | StreamState::Failed, Answer::Refused(reason)) => {
                self.backoff.reset();
                self.start_idle(now);
                self.pause(reason);
            }
            (
                StreamState::Connecting | StreamState::Connected,
                Answer::Failed { reason, probe },
            ) => {
                if probe {
                    self.probing = Some(Probing { failed: 0, reason });
                    self.send_probe();
                } else {
                    self.enter_retry(now, reason);
                }
            }
            (StreamState::Retry, Answer::Failed { .. }) => {
                self.emit_retrying(StreamFailureReason::ServerUnreachable);
                self.schedule_attempt(now);
            }
            (StreamState::Failed, Answer::Failed { .. }) => {
                self.emit(Event::EventStreamFailed(StreamFailure {
                    reason: StreamFailureReason::ServerUnreachable,
                    retry_after: None,
                }));
            }
            // Closed or Paused: an answer nobody waits for any more.
            (StreamState::Closed | StreamState::Paused, _) => {}
        }
    }

    pub(super) fn on_probe(&mut self, now: Instant, result: Result<(u16, &[u8]), TransportError>) {
        self.in_flight = None;
        let Some(mut probing) = self.probing.take() else {
            return;
        };
        if !matches!(
            self.stream,
            StreamState::Connecting | StreamState::Connected
        ) {
            return;
        }
        // 200, 401 or 403 means the service is there: carry on polling; the next poll will
        // tell what is what. The probe's body is not read, as in the official SDK.
        if matches!(result, Ok((200 | 401 | 403, _))) {
            self.send_poll();
            return;
        }
        probing.failed += 1;
        if probing.failed < super::PROBE_COUNT {
            self.probing = Some(probing);
            self.send_probe();
        } else {
            self.enter_retry(now, probing.reason);
        }
    }

    fn connected(&mut self, now: Instant, batch: Vec<crate::wire::ServerEvent>) {
        if std::mem::take(&mut self.interrupted) {
            self.start_catch_ups();
        }
        let fresh = self.cursor.admit(batch);
        for event in fresh {
            self.dispatch(event);
        }
        self.update_stream(now);
        if self.stream == StreamState::Connected && self.in_flight.is_none() {
            self.send_poll();
        }
    }

    fn pause(&mut self, reason: StreamFailureReason) {
        self.stream = StreamState::Paused;
        self.interrupted = true;
        self.timers.stop(Timer::Backoff);
        self.emit(Event::EventStreamFailed(StreamFailure {
            reason,
            retry_after: None,
        }));
    }

    fn enter_retry(&mut self, now: Instant, reason: StreamFailureReason) {
        self.stream = StreamState::Retry;
        self.interrupted = true;
        self.start_reconnection_timer(now);
        self.emit_retrying(reason);
        self.schedule_attempt(now);
    }

    fn emit_retrying(&mut self, reason: StreamFailureReason) {
        self.emit(Event::EventStreamFailed(StreamFailure {
            reason,
            retry_after: Some(self.backoff.base()),
        }));
    }

    fn schedule_attempt(&mut self, now: Instant) {
        let sleep = self.backoff.next_sleep();
        self.timers.set(Timer::Backoff, now + sleep);
    }

    /// "Session not found": the stream closes for good and the session is invalid.
    pub(super) fn session_gone(&mut self, now: Instant) {
        if self.stream != StreamState::Closed {
            self.stop_stream(now);
        }
        self.emit(Event::EventStreamFailed(StreamFailure {
            reason: StreamFailureReason::ClientSessionInvalidated,
            retry_after: None,
        }));
        self.phase = Phase::Invalidated;
        self.slot = Slot::None;
        self.timers.stop(Timer::Activity);
    }
}

fn classify(result: Result<(u16, &[u8]), TransportError>) -> Answer {
    let (status, body) = match result {
        Ok(r) => r,
        Err(_) => return network_failure(),
    };
    match status {
        200 => match super::dispatch::decode_batch(body) {
            Some(batch) => Answer::Events(batch),
            // An unreadable answer counts as a network failure, as in the official SDK.
            None => network_failure(),
        },
        401 => Answer::Refused(StreamFailureReason::Unauthorized),
        403 => Answer::Refused(StreamFailureReason::Forbidden),
        404 if is_session_not_found(body) => Answer::SessionGone,
        500 => bad_status(StreamFailureReason::ServerError),
        501 => bad_status(StreamFailureReason::ServerUnreachable),
        _ => bad_status(StreamFailureReason::UnexpectedError),
    }
}

fn network_failure() -> Answer {
    Answer::Failed {
        reason: StreamFailureReason::ServerUnreachable,
        probe: false,
    }
}

fn bad_status(reason: StreamFailureReason) -> Answer {
    Answer::Failed {
        reason,
        probe: true,
    }
}

pub(super) fn is_session_not_found(body: &[u8]) -> bool {
    serde_json::from_slice::<Problem>(body)
        .ok()
        .and_then(|p| p.detail)
        .is_some_and(|d| d == SESSION_NOT_FOUND)
}
