//! The token's lifecycle with a provider (`Config::token_refresh`): when to ask for a new
//! token, what to do with the answer, and the REST calls held while a refused token is
//! replaced.
//!
//! The rules, once for every adapter:
//! - ask ahead of expiry, `lead` before `exp` but never sooner than half the token's
//!   remaining life;
//! - ask after the server refused the token (a 401 on the stream or on a REST call), at most
//!   `max_in_a_row` times before the server accepts a token again;
//! - one call to the provider at a time; past `timeout` it counts as failed, and a failed
//!   call is tried again after `retry` while the token in use is still live;
//! - a REST call refused with 401 is held and sent once more, under its own id, with the new
//!   token; refused again, or with no new token to be had, it fails with ACS-305.

use std::time::{Instant, SystemTime};

use super::{Pending, Phase, Resend, Resumption, Sent, Session};
use crate::event::{Output, ReplyValue};
use crate::ids::RequestId;
use crate::stream::StreamState;
use crate::timer::Timer;
use crate::{ChatError, Token};

/// Where the token provider stands.
#[derive(Debug, Default)]
pub(super) struct Tokens {
    /// The provider call in flight (its deadline is `Timer::TokenFetch`).
    fetch: Option<RequestId>,
    /// Refreshes caused by 401s since the server last accepted a token.
    in_a_row: u32,
    /// `refresh_token` commands waiting for the call in flight.
    waiters: Vec<RequestId>,
    /// REST calls refused with 401, to send again with the new token.
    parked: Vec<Sent>,
    /// `init` (or `resume`) waiting for the first token: its id, and what it resumes.
    init: Option<(RequestId, Option<Resumption>)>,
}

impl Session {
    /// Asks the token provider for a new token now (single-flight with the automatic
    /// refreshes). Completes with [`ReplyValue::TokenRefreshed`] once the new token is in use,
    /// or with [`ChatError::TokenUnavailable`]. Needs [`Config::token_refresh`](crate::Config).
    pub fn refresh_token(&mut self, now: Instant) -> Result<RequestId, ChatError> {
        let now = self.tick(now);
        if self.config.token_refresh.is_none() {
            return Err(ChatError::constraint(
                "refreshing the token needs a token provider",
            ));
        }
        if matches!(self.phase, Phase::ShuttingDown | Phase::Ended) {
            return Err(self
                .require_ready()
                .err()
                .unwrap_or(ChatError::NotInitialized));
        }
        let id = self.new_id();
        self.tokens.waiters.push(id);
        self.request_token(now);
        Ok(id)
    }

    /// Feeds the token provider's answer to [`Output::FetchToken`]. A token that is not a
    /// live chat token counts as a failed call (and the error says why); an answer to a call
    /// that is no longer awaited (it timed out) is ignored.
    pub fn handle_token(
        &mut self,
        now: Instant,
        wall: SystemTime,
        id: RequestId,
        text: &str,
    ) -> Result<(), ChatError> {
        let now = self.tick(now);
        if self.tokens.fetch != Some(id) {
            return Ok(());
        }
        let token = Token::parse(text).and_then(|t| {
            if t.remaining(wall).is_zero() {
                Err(ChatError::token_not_live())
            } else {
                Ok(t)
            }
        });
        match token {
            Ok(token) => {
                tracing::debug!(exp = token.expires_at_unix(), "chat token refreshed");
                self.tokens.fetch = None;
                self.timers.stop(Timer::TokenFetch);
                self.install_token(now, wall, token);
                for waiter in std::mem::take(&mut self.tokens.waiters) {
                    self.reply(waiter, Ok(ReplyValue::TokenRefreshed));
                }
                self.after_new_token(now);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "the token provider gave an unusable token");
                self.fetch_failed(now);
                Err(e)
            }
        }
    }

    /// Feeds the failure of the token provider's call `id`.
    pub fn handle_token_failure(&mut self, now: Instant, id: RequestId) {
        let now = self.tick(now);
        if self.tokens.fetch == Some(id) {
            self.fetch_failed(now);
        }
    }

    /// Replaces the token (no network call): later requests carry it, the expiry timers are
    /// re-armed, and a stream paused by a 401 or 403 resumes. Works before `init` too.
    pub fn set_token(
        &mut self,
        now: Instant,
        wall: SystemTime,
        token: Token,
    ) -> Result<(), ChatError> {
        let now = self.tick(now);
        if token.remaining(wall).is_zero() {
            return Err(ChatError::token_not_live());
        }
        if matches!(self.phase, Phase::ShuttingDown | Phase::Ended) {
            return Err(self
                .require_ready()
                .err()
                .unwrap_or(ChatError::NotInitialized));
        }
        self.install_token(now, wall, token);
        self.after_new_token(now);
        Ok(())
    }

    fn install_token(&mut self, now: Instant, wall: SystemTime, token: Token) {
        self.anchor = Some((now, wall));
        self.bearer = super::bearer(&token);
        self.token = Some(token);
        // Before init the timers start with the session.
        if self.phase == Phase::Ready {
            self.arm_token_timers(now);
            self.schedule_refresh(now);
        }
    }

    /// What a new token unblocks: the first `init`, calls refused with 401, a paused stream,
    /// the outbox.
    fn after_new_token(&mut self, now: Instant) {
        if let Some((id, resume)) = self.tokens.init.take() {
            self.send_init(id, resume);
        }
        for sent in std::mem::take(&mut self.tokens.parked) {
            self.resend(sent);
        }
        if self.phase == Phase::Ready && self.stream == StreamState::Paused {
            // Resuming from Paused emits no EVENT_STREAM_CONNECTING, as in the official SDK.
            self.stream = StreamState::Connecting;
            self.send_poll();
        }
        self.pump_outbox(now);
    }

    /// Sends a parked call again, with the token now in use, under its own id.
    fn resend(&mut self, sent: Sent) {
        self.send_again(sent, true);
    }

    /// Sends `sent` again under its own id with the token in use; `replay` when that uses up
    /// its one replay after a 401 (a call refused for a token already replaced has not
    /// tried the one in use yet, so it keeps it).
    fn send_again(&mut self, sent: Sent, replay: bool) {
        let Some(resend) = sent.resend else {
            return;
        };
        let Resend {
            method,
            url,
            body,
            replayed,
        } = *resend;
        self.transmit_as(
            sent.id,
            method,
            url,
            body,
            crate::RequestKind::Rest,
            sent.pending,
        );
        if let Some(r) = self.requests.last_mut().and_then(|r| r.resend.as_mut()) {
            r.replayed = replayed || replay;
        }
    }

    /// Starts a provider call unless one runs. Only with a provider, and not once over.
    pub(super) fn request_token(&mut self, now: Instant) {
        let Some(refresh) = self.config.token_refresh else {
            return;
        };
        if self.tokens.fetch.is_some() || self.phase == Phase::Ended {
            return;
        }
        let id = self.new_id();
        self.tokens.fetch = Some(id);
        self.timers.stop(Timer::TokenRefresh);
        self.timers.set(Timer::TokenFetch, now + refresh.timeout);
        tracing::debug!("asking the token provider for a new chat token");
        self.out.push_back(Output::FetchToken(id));
    }

    /// The server refused the token: ask for a new one if the rules allow. `true` when a new
    /// token is on its way (a refused call may then wait for it).
    pub(super) fn refresh_after_refusal(&mut self, now: Instant) -> bool {
        let Some(refresh) = self.config.token_refresh else {
            return false;
        };
        if self.tokens.fetch.is_some() {
            return true;
        }
        if self.tokens.in_a_row >= refresh.max_in_a_row {
            tracing::warn!("the server keeps refusing fresh tokens; not asking for another");
            return false;
        }
        self.tokens.in_a_row += 1;
        self.request_token(now);
        self.tokens.fetch.is_some()
    }

    /// The server accepted the token in use.
    pub(super) fn token_accepted(&mut self) {
        self.tokens.in_a_row = 0;
    }

    /// Holds a REST call refused with 401 for the new token, if it may be sent again.
    /// Gives the call back when it may not.
    pub(super) fn park_for_token(&mut self, now: Instant, sent: Sent) -> Result<(), Sent> {
        if sent.resend.is_some() && sent.bearer != self.bearer && !self.bearer.is_empty() {
            // Refused a token replaced since it went out (several calls in flight when the
            // token lapsed): the new one is already here, try it without asking for another,
            // or each such call would count as a refusal of a fresh token.
            self.send_again(sent, false);
            return Ok(());
        }
        let replayable = sent.resend.as_ref().is_some_and(|r| !r.replayed);
        if replayable && self.refresh_after_refusal(now) {
            self.tokens.parked.push(sent);
            Ok(())
        } else {
            Err(sent)
        }
    }

    /// `init` without a token: sent once the provider gives the first one.
    pub(super) fn init_after_token(
        &mut self,
        now: Instant,
        id: RequestId,
        resume: Option<Resumption>,
    ) {
        self.tokens.init = Some((id, resume));
        self.request_token(now);
        if self.tokens.fetch.is_none() {
            // No provider call could start (cannot happen with a provider configured).
            self.tokens.init = None;
            self.phase = Phase::Created;
            self.reply(id, Err(ChatError::TokenUnavailable));
        }
    }

    /// Arms the proactive refresh: `lead` before `exp`, never sooner than half the token's
    /// remaining life.
    pub(super) fn schedule_refresh(&mut self, now: Instant) {
        let Some(refresh) = self.config.token_refresh else {
            return;
        };
        if self.tokens.fetch.is_some() {
            return;
        }
        let remaining = self.token_remaining(now);
        let wait = remaining.saturating_sub(refresh.lead).max(remaining / 2);
        self.timers.set(Timer::TokenRefresh, now + wait);
    }

    /// The provider call failed or timed out.
    pub(super) fn fetch_failed(&mut self, now: Instant) {
        self.tokens.fetch = None;
        self.timers.stop(Timer::TokenFetch);
        for waiter in std::mem::take(&mut self.tokens.waiters) {
            self.reply(waiter, Err(ChatError::TokenUnavailable));
        }
        for sent in std::mem::take(&mut self.tokens.parked) {
            self.settle_refused(now, sent);
        }
        if let Some((id, _)) = self.tokens.init.take() {
            self.phase = Phase::Created;
            self.reply(id, Err(ChatError::TokenUnavailable));
        }
        let retry = self.config.token_refresh.map(|r| r.retry);
        if let Some(retry) = retry {
            if self.phase == Phase::Ready && !self.token_remaining(now).is_zero() {
                self.timers.set(Timer::TokenRefresh, now + retry);
            }
        }
    }

    /// At the end of the session: nobody waits for a token any more.
    pub(super) fn drop_token_waiters(&mut self, error: &ChatError) {
        self.tokens.fetch = None;
        self.timers.stop(Timer::TokenFetch);
        self.timers.stop(Timer::TokenRefresh);
        for waiter in std::mem::take(&mut self.tokens.waiters) {
            self.reply(waiter, Err(error.clone()));
        }
        for sent in std::mem::take(&mut self.tokens.parked) {
            let answered = sent.pending.is_command() || matches!(sent.pending, Pending::Send(_));
            if answered && self.outbox.sending(sent.id).is_none() {
                self.reply(sent.id, Err(error.clone()));
            }
        }
        if let Some((id, _)) = self.tokens.init.take() {
            self.reply(id, Err(error.clone()));
        }
    }
}
