//! The event stream: start and stop, polls, probes, backoff and reconnection (reference 6.8).

use std::time::Instant;

use super::replies::Outcome;
use super::{MAX_HELD_MESSAGES, MAX_PROBE_PASSES, Pending, Phase, Session, Slot, urls};
use crate::ChatError;
use crate::event::{EndReason, Event, StreamFailure, StreamFailureReason};
use crate::request::{Method, PollOutcome, RequestKind};
use crate::stream::{InFlight, Probing, StreamState};
use crate::timer::Timer;

/// What a turn of the stream means, whatever the state and however it was carried.
pub(super) enum StreamAnswer {
    Events(Vec<crate::wire::ServerEvent>),
    Refused(StreamFailureReason),
    SessionGone,
    /// A failure; `probe` when it was a bad status (worth probing), not a network failure.
    Failed {
        reason: StreamFailureReason,
        probe: bool,
    },
}

impl StreamAnswer {
    /// A transport's typed outcome.
    pub(super) fn of(outcome: &PollOutcome) -> Self {
        match outcome {
            PollOutcome::Events(body) => batch(body),
            PollOutcome::Unauthorized => Self::Refused(StreamFailureReason::Unauthorized),
            PollOutcome::Forbidden => Self::Refused(StreamFailureReason::Forbidden),
            PollOutcome::SessionGone => Self::SessionGone,
            PollOutcome::Status { status, body } => status_answer(*status, body),
            PollOutcome::Failed(_) => network_failure(),
        }
    }

    /// A long poll's HTTP answer.
    pub(super) fn of_http(outcome: Outcome<'_>) -> Self {
        match outcome {
            Ok((status, body)) => status_answer(status, body),
            Err(_) => network_failure(),
        }
    }
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
        self.poll_wanted = false;
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

    /// Holds the event stream back while the application is behind (`hold` true): no poll
    /// goes out, so nothing more is acknowledged and the server keeps the events until there
    /// is room again (`hold` false), when the poll that was due goes out. Nothing times out
    /// meanwhile: a held poll is never sent. An adapter with a bounded event queue calls it
    /// as the queue fills and empties.
    pub fn hold_stream(&mut self, now: Instant, hold: bool) {
        self.tick(now);
        self.stream_held = hold;
        self.send_wanted_poll();
    }

    /// Sends the poll that was due while the stream was held back, if nothing holds it any
    /// more.
    pub(super) fn send_wanted_poll(&mut self) {
        let polling = matches!(
            self.stream,
            StreamState::Connecting
                | StreamState::Connected
                | StreamState::Retry
                | StreamState::Failed
        );
        if !self.poll_held()
            && std::mem::take(&mut self.poll_wanted)
            && self.in_flight.is_none()
            && polling
        {
            self.send_poll();
        }
    }

    /// Whether no poll may go out now: the application is behind, or a catch-up holds
    /// [`MAX_HELD_MESSAGES`] live messages back already (more would only pile up: the
    /// server keeps what is not acknowledged, and the poll goes out once the catch-up ends).
    fn poll_held(&self) -> bool {
        self.stream_held || self.order.held() >= MAX_HELD_MESSAGES
    }

    pub(super) fn send_poll(&mut self) {
        if self.poll_held() {
            self.poll_wanted = true;
            return;
        }
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

    pub(super) fn on_poll(&mut self, now: Instant, answer: StreamAnswer) {
        self.in_flight = None;
        match (self.stream, answer) {
            (_, StreamAnswer::SessionGone) => self.session_gone(now),
            (StreamState::Connecting | StreamState::Connected, StreamAnswer::Events(batch)) => {
                let first = self.stream == StreamState::Connecting;
                self.stream = StreamState::Connected;
                if first {
                    self.emit(Event::EventStreamConnected);
                    self.outbox_recovered(now);
                }
                self.connected(now, batch);
            }
            (StreamState::Retry | StreamState::Failed, StreamAnswer::Events(batch)) => {
                self.stream = StreamState::Connected;
                self.timers.stop(Timer::Backoff);
                self.backoff.reset();
                self.start_idle(now);
                self.emit(Event::EventStreamConnected);
                self.outbox_recovered(now);
                self.connected(now, batch);
            }
            (StreamState::Connecting | StreamState::Connected, StreamAnswer::Refused(reason)) => {
                self.pause(now, reason);
            }
            (StreamState::Retry | StreamState::Failed, StreamAnswer::Refused(reason)) => {
                self.backoff.reset();
                self.start_idle(now);
                self.pause(now, reason);
            }
            (
                StreamState::Connecting | StreamState::Connected,
                StreamAnswer::Failed { reason, probe },
            ) => {
                if probe && self.probe_passes < MAX_PROBE_PASSES {
                    self.probing = Some(Probing { failed: 0, reason });
                    self.send_probe();
                } else {
                    // A network failure; or a poll that keeps failing while the probes
                    // answer (a bad node behind a good one): back off rather than poll and
                    // probe as fast as the server answers.
                    self.probe_passes = 0;
                    self.enter_retry(now, reason);
                }
            }
            (StreamState::Retry, StreamAnswer::Failed { .. }) => {
                self.emit_retrying(StreamFailureReason::ServerUnreachable);
                self.schedule_attempt(now);
            }
            (StreamState::Failed, StreamAnswer::Failed { .. }) => {
                self.emit(Event::EventStreamFailed(StreamFailure {
                    reason: StreamFailureReason::ServerUnreachable,
                    retry_after: None,
                }));
            }
            // Closed or Paused: an answer nobody waits for any more.
            (StreamState::Closed | StreamState::Paused, _) => {}
        }
    }

    pub(super) fn on_probe(&mut self, now: Instant, result: Outcome<'_>) {
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
            self.probe_passes += 1;
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
        self.probe_passes = 0;
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

    fn pause(&mut self, now: Instant, reason: StreamFailureReason) {
        self.stream = StreamState::Paused;
        self.interrupted = true;
        self.timers.stop(Timer::Backoff);
        self.emit(Event::EventStreamFailed(StreamFailure {
            reason,
            retry_after: None,
        }));
        // With a token provider, a refused token is replaced: the new one resumes polling.
        if reason == StreamFailureReason::Unauthorized {
            self.refresh_after_refusal(now);
        }
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
        let sleep = self.backoff.next_sleep(&mut self.rng);
        self.timers.set(Timer::Backoff, now + sleep);
    }

    /// "Session not found": the stream closes for good, and the session is over. Everything
    /// still waiting fails with ACS-320 at once, and [`Session::end_reason`] says why: an
    /// application cannot do anything more with this session, so it must not look alive.
    pub(super) fn session_gone(&mut self, now: Instant) {
        if self.replace_lost_session(now) {
            return;
        }
        if self.stream != StreamState::Closed {
            self.stop_stream(now);
        }
        self.emit(Event::EventStreamFailed(StreamFailure {
            reason: StreamFailureReason::ClientSessionInvalidated,
            retry_after: None,
        }));
        self.end_session(EndReason::SessionInvalidated, &ChatError::SessionNotFound);
    }
}

fn status_answer(status: u16, body: &[u8]) -> StreamAnswer {
    match status {
        200 => batch(body),
        401 => StreamAnswer::Refused(StreamFailureReason::Unauthorized),
        403 => StreamAnswer::Refused(StreamFailureReason::Forbidden),
        404 if crate::wire::is_session_not_found(body) => StreamAnswer::SessionGone,
        500 => bad_status(StreamFailureReason::ServerError),
        501 => bad_status(StreamFailureReason::ServerUnreachable),
        _ => bad_status(StreamFailureReason::UnexpectedError),
    }
}

fn batch(body: &[u8]) -> StreamAnswer {
    match super::dispatch::decode_batch(body) {
        Some(batch) => StreamAnswer::Events(batch),
        // An unreadable answer counts as a network failure, as in the official SDK.
        None => network_failure(),
    }
}

fn network_failure() -> StreamAnswer {
    StreamAnswer::Failed {
        reason: StreamFailureReason::ServerUnreachable,
        probe: false,
    }
}

fn bad_status(reason: StreamFailureReason) -> StreamAnswer {
    StreamAnswer::Failed {
        reason,
        probe: true,
    }
}
