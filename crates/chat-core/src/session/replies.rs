//! Responses and transport failures: routed to the request they answer.

use std::time::Instant;

use serde::de::DeserializeOwned;

use super::stream_loop::StreamAnswer;
use super::{CatchUp, MAX_CATCH_UP_PAGES, Pending, Phase, Resumption, Sent, Session, urls};
use crate::engagement::EngagementState;
use crate::event::{
    EndReason, Event, HistoryPage, Message, Output, PageLink, ReplyValue, UserContext,
};
use crate::ids::{EngagementId, RequestId};
use crate::request::{Method, PollOutcome, RequestKind};
use crate::wire::{self, EngagementStatus, Problem};
use crate::{ChatError, TransportError};

pub(super) type Outcome<'a> = Result<(u16, &'a [u8]), TransportError>;

impl Session {
    /// Feeds the response to a request: its status and whole body. A long poll's answer may
    /// come this way too (it is sorted as [`PollOutcome::from_http`] does).
    ///
    /// Responses to requests that were aborted, already answered or never made are ignored.
    pub fn handle_response(&mut self, now: Instant, id: RequestId, status: u16, body: &[u8]) {
        let now = self.tick(now);
        if let Some(sent) = self.take_sent(id) {
            self.settle(now, sent, Ok((status, body)));
        }
    }

    /// Feeds the failure of a request that got no response.
    pub fn handle_failure(&mut self, now: Instant, id: RequestId, error: TransportError) {
        let now = self.tick(now);
        if let Some(sent) = self.take_sent(id) {
            self.settle(now, sent, Err(error));
        }
    }

    /// Feeds how a turn of the event stream ended (a poll, [`RequestKind::Poll`]). An outcome
    /// for any other request is taken as the HTTP answer it stands for.
    pub fn handle_poll(&mut self, now: Instant, id: RequestId, outcome: &PollOutcome) {
        let now = self.tick(now);
        let Some(sent) = self.take_sent(id) else {
            return;
        };
        if matches!(sent.pending, Pending::Poll) {
            self.on_poll(now, StreamAnswer::of(outcome));
            self.after_input(now);
            return;
        }
        let unauthorized = br#"{"title":"Unauthorized"}"#;
        let forbidden = br#"{"title":"Forbidden"}"#;
        let gone = br#"{"detail":"Session not found"}"#;
        let outcome: Outcome<'_> = match outcome {
            PollOutcome::Events(body) => Ok((200, body)),
            PollOutcome::Unauthorized => Ok((401, unauthorized)),
            PollOutcome::Forbidden => Ok((403, forbidden)),
            PollOutcome::SessionGone => Ok((404, gone)),
            PollOutcome::Status { status, body } => Ok((*status, body)),
            PollOutcome::Failed(e) => Err(*e),
        };
        self.settle(now, sent, outcome);
    }

    /// Times out every request past its deadline: aborted, then failed as `Timeout`.
    pub(super) fn expire_requests(&mut self, now: Instant) {
        while let Some(at) = self
            .requests
            .iter()
            .position(|r| r.deadline.is_some_and(|d| d <= now))
        {
            let sent = self.requests.swap_remove(at);
            tracing::debug!(id = %sent.id, "request timed out");
            self.out.push_back(Output::Abort(sent.id));
            self.settle(now, sent, Err(TransportError::Timeout));
        }
    }

    /// Moves the timeouts of the requests in flight `by` later: for a test rig that jumps its
    /// clock forward to pass long protocol waits at once, while the server answers in real
    /// time (so requests in flight must not time out because of the jump).
    pub fn defer_request_timeouts(&mut self, by: std::time::Duration) {
        for sent in &mut self.requests {
            sent.deadline = sent.deadline.map(|d| d + by);
        }
    }

    /// A call held for a new token that will not come: its 401 is the answer.
    pub(super) fn settle_refused(&mut self, now: Instant, mut sent: Sent) {
        if let Some(r) = sent.resend.as_mut() {
            r.replayed = true;
        }
        self.settle(now, sent, Ok((401, b"")));
    }

    /// Routes the outcome of a request to what it was for.
    fn settle(&mut self, now: Instant, sent: Sent, outcome: Outcome<'_>) {
        let id = sent.id;
        if matches!(outcome, Ok((200..=299, _))) && !matches!(sent.pending, Pending::Probe) {
            self.token_accepted();
        }
        let sent = if matches!(outcome, Ok((401, _))) {
            match self.park_for_token(now, sent) {
                Ok(()) => return,
                Err(sent) => sent,
            }
        } else {
            sent
        };
        // A command answered "Session not found" learns what a poll would: the session is
        // gone (ACS-320), not the engagement, and the stream says so.
        let session_gone =
            matches!(outcome, Ok((404, body)) if crate::wire::is_session_not_found(body));
        match sent.pending {
            Pending::CreateEngagement
            | Pending::ListEngagements
            | Pending::Join(_)
            | Pending::Send(_)
            | Pending::History { .. }
            | Pending::Disconnect(_)
                if session_gone =>
            {
                match self.outbox.sending(id) {
                    // Kept in a store: the session is replaced and the send goes there (the
                    // 404 says it was not stored).
                    Some(at) if self.config.write_ahead => {
                        self.outbox.held[at].step = crate::outbox::Step::Waiting { retry_at: now };
                    }
                    Some(at) => self.settle_held(at, Err(ChatError::SessionNotFound)),
                    None => self.reply(id, Err(ChatError::SessionNotFound)),
                }
            }
            Pending::Poll => self.on_poll(now, StreamAnswer::of_http(outcome)),
            Pending::Probe => self.on_probe(now, outcome),
            Pending::CatchUp(engagement) => self.on_catch_up(engagement, outcome),
            Pending::Shutdown => {
                if let Err(e) = rest(outcome) {
                    tracing::info!(error = %e, "session delete failed; shut down locally");
                }
                if let Some(s) = &mut self.shutdown {
                    s.deleted = true;
                }
            }
            Pending::Init { resume } => self.on_init(now, id, resume, outcome),
            Pending::CreateEngagement => {
                let result = rest(outcome).and_then(decode::<wire::Engagement>);
                let result = result.and_then(|e| self.adopt(e, true));
                self.reply(id, result.map(ReplyValue::Engagement));
            }
            Pending::Join(engagement) => {
                let result = rest_engagement_call(outcome)
                    .and_then(decode::<wire::Engagement>)
                    .and_then(|e| self.adopt(e, false));
                if result == Err(ChatError::EngagementNotFound) {
                    self.forget(&engagement);
                }
                self.reply(id, result.map(ReplyValue::Engagement));
            }
            Pending::Rejoin(engagement) => {
                let result = rest_engagement_call(outcome)
                    .and_then(decode::<wire::Engagement>)
                    .and_then(|e| self.adopt(e, false));
                match result {
                    Ok(_) => self.start_catch_ups(),
                    Err(e) => {
                        tracing::warn!(%engagement, error = %e, "a stored chat could not be joined again");
                        if e == ChatError::EngagementNotFound {
                            self.forget(&engagement);
                        }
                    }
                }
            }
            Pending::Send(_) if self.on_held_send(now, id, outcome) => {}
            Pending::Send(engagement) => {
                let result = send_result(outcome);
                match &result {
                    Ok(m) => self.note_delivered(m),
                    Err(ChatError::EngagementNotFound) => self.forget(&engagement),
                    Err(_) => {}
                }
                self.reply(id, result.map(ReplyValue::MessageSent));
            }
            Pending::OutboxCheck => self.on_outbox_check(now, id, outcome),
            Pending::Disconnect(engagement) => {
                let result = rest(outcome).map(|_| {
                    if let Some(at) = self.find(&engagement) {
                        self.engagements[at].info.status = EngagementStatus::Terminating;
                    }
                    ReplyValue::Disconnected
                });
                self.reply(id, result);
            }
            Pending::ListEngagements => {
                let result = rest(outcome)
                    .and_then(decode::<wire::Session>)
                    .map(|s| ReplyValue::Engagements(self.sync_engagements(s.engagements)));
                self.reply(id, result);
            }
            Pending::History { engagement, first } => {
                let result = rest(outcome)
                    .and_then(decode::<wire::MessagePage>)
                    .map(|page| ReplyValue::History(self.history_page(&engagement, page)));
                let result = if first {
                    result
                } else {
                    result.map_err(|e| ChatError::HistoryFailed(Box::new(e)))
                };
                self.reply(id, result);
            }
        }
        if session_gone && self.phase == Phase::Ready {
            self.session_gone(now);
        }
        self.after_input(now);
    }

    /// What may follow any answer: the stream started or stopped, the outbox moved on, the
    /// shutdown completed.
    fn after_input(&mut self, now: Instant) {
        self.update_stream(now);
        self.pump_outbox(now);
        self.finish_shutdown_if_settled();
    }

    fn on_init(
        &mut self,
        now: Instant,
        id: RequestId,
        resume: Option<Resumption>,
        outcome: Outcome<'_>,
    ) {
        let result = match (&resume, outcome) {
            (Some(r), Ok((404, _))) if self.recover_with_new_session(id, r) => return,
            // A session the server no longer knows: say so, rather than ACS-304.
            (Some(_), Ok((404, _))) => Err(ChatError::SessionNotFound),
            (_, outcome) => rest(outcome).and_then(decode::<wire::Session>),
        };
        let session = match result {
            Ok(s) => s,
            Err(e) if self.replacement_failed(now, &e) => return,
            Err(e) => {
                self.phase = Phase::Created;
                self.reply(id, Err(e));
                return;
            }
        };
        self.replacing = false;
        let active = resume
            .as_ref()
            .map(|r| r.active_engagements.as_slice())
            .unwrap_or_default();
        self.phase = Phase::Ready;
        self.recover = false;
        self.session_id = Some(session.session_id.clone());
        self.engagements = session
            .engagements
            .into_iter()
            .filter_map(|e| {
                let status = e.dialogs.first()?.dialog_status;
                if matches!(
                    status,
                    EngagementStatus::Terminating | EngagementStatus::Terminated
                ) {
                    return None;
                }
                let mut state = EngagementState::from_wire(e, EngagementStatus::Pending)?;
                if active.contains(&state.info.engagement_id) {
                    state.info.status = EngagementStatus::Active;
                    state.attached = true;
                }
                Some(state)
            })
            .collect();
        // Positions are kept only for engagements that are still there.
        let known: Vec<EngagementId> = self
            .engagements
            .iter()
            .map(|e| e.info.engagement_id.clone())
            .collect();
        self.order.retain(|id| known.contains(id));
        self.start_idle(now);
        self.arm_token_timers(now);
        self.schedule_refresh(now);
        let context = UserContext {
            session_id: session.session_id,
            display_name: session.display_name,
            session_parameters: session.session_parameters,
            engagements: self.engagements.iter().map(|e| e.info.clone()).collect(),
        };
        self.emit(Event::Initialized(context.clone()));
        self.reply(id, Ok(ReplyValue::Initialized(context)));
        // After a resume, messages may have been missed while nobody listened: fetch them
        // now, not when the first poll is answered (a quiet stream answers after the
        // server's hold time).
        if resume.is_some() {
            self.start_catch_ups();
        }
        self.send_rejoins();
    }

    /// The new session that replaced a lost one joins its chats again.
    fn send_rejoins(&mut self) {
        let Some(sid) = self.session_id.clone() else {
            return;
        };
        for engagement in std::mem::take(&mut self.rejoin) {
            let Some(at) = self.find(&engagement) else {
                tracing::info!(%engagement, "a stored chat is over: not joined again");
                self.outbox.forget(&engagement);
                continue;
            };
            let body = wire::JoinEngagementRequest {
                dialog_id: self.engagements[at].info.dialog_id.clone(),
                session_id: sid.clone(),
            };
            let url = urls::engagement_action(&self.base, &engagement, "join");
            self.transmit(
                Method::Post,
                url,
                Some(super::commands::json(&body)),
                RequestKind::Rest,
                Pending::Rejoin(engagement),
            );
        }
    }

    /// Takes an engagement this session created or joined: it now drives the stream.
    fn adopt(
        &mut self,
        engagement: wire::Engagement,
        created: bool,
    ) -> Result<crate::EngagementInfo, ChatError> {
        let id = engagement.engagement_id.clone();
        let at = match self.find(&id) {
            Some(at) if !created => {
                if let Some(dialog) = engagement.dialogs.into_iter().next() {
                    self.engagements[at].refresh(dialog);
                }
                at
            }
            known => {
                let state = EngagementState::from_wire(engagement, EngagementStatus::Pending)
                    .ok_or_else(|| unexpected_body("engagement without a dialog"))?;
                match known {
                    Some(at) => {
                        self.engagements[at] = state;
                        at
                    }
                    None => {
                        self.engagements.push(state);
                        self.engagements.len() - 1
                    }
                }
            }
        };
        if self.phase == Phase::Ready {
            self.engagements[at].attached = true;
            self.snapshot_changed();
        }
        let before = self.engagements[at].info.clone();
        self.adopt_orphans(&id);
        // Replayed events may have ended it already.
        Ok(match self.find(&id) {
            Some(at) => self.engagements[at].info.clone(),
            None => crate::EngagementInfo {
                status: EngagementStatus::Terminated,
                ..before
            },
        })
    }

    /// The server no longer knows the engagement (404 on join or send).
    pub(super) fn forget(&mut self, id: &EngagementId) {
        if let Some(at) = self.find(id) {
            self.engagements.remove(at);
            self.snapshot_changed();
        }
        self.outbox.forget(id);
    }

    /// Brings local engagements in line with the server's list (reference 2.5), without the
    /// official SDK's ACS-314 failure when one of them is ending.
    fn sync_engagements(&mut self, listed: Vec<wire::Engagement>) -> Vec<crate::EngagementInfo> {
        let mut seen = Vec::with_capacity(listed.len());
        for engagement in listed {
            let id = engagement.engagement_id.clone();
            let Some(dialog) = engagement.dialogs.first() else {
                continue;
            };
            let over = matches!(
                dialog.dialog_status,
                EngagementStatus::Terminating | EngagementStatus::Terminated
            );
            match self.find(&id) {
                Some(at) if over => {
                    self.engagements.remove(at);
                }
                Some(at) => {
                    if let Some(d) = engagement.dialogs.into_iter().next() {
                        self.engagements[at].refresh(d);
                    }
                    seen.push(id);
                }
                None if over => {}
                None => {
                    if let Some(state) =
                        EngagementState::from_wire(engagement, EngagementStatus::Pending)
                    {
                        self.engagements.push(state);
                        seen.push(id);
                    }
                }
            }
        }
        self.engagements
            .retain(|e| seen.contains(&e.info.engagement_id));
        self.engagements.iter().map(|e| e.info.clone()).collect()
    }

    fn history_page(&self, engagement: &EngagementId, page: wire::MessagePage) -> HistoryPage {
        HistoryPage {
            messages: page.messages.into_iter().map(Message::from_rest).collect(),
            next: self.own_link(engagement, page.links.next),
        }
    }

    pub(super) fn own_link(&self, engagement: &EngagementId, next: String) -> Option<PageLink> {
        if next.is_empty() {
            return None;
        }
        if urls::is_own_history_link(&self.base, engagement, &next) {
            Some(PageLink(next))
        } else {
            tracing::warn!("history link to another host or resource not followed");
            None
        }
    }

    // -----------------------------------------------------------------------------------------
    // Catching up from history after an interruption
    // -----------------------------------------------------------------------------------------

    pub(super) fn start_catch_ups(&mut self) {
        let Some(sid) = self.session_id.clone() else {
            return;
        };
        let due: Vec<_> = self
            .engagements
            .iter()
            .filter(|e| e.attached && !self.order.is_holding(&e.info.engagement_id))
            .filter(|e| self.order.last_index(&e.info.engagement_id).is_some())
            .map(|e| (e.info.engagement_id.clone(), e.info.dialog_id.clone()))
            .collect();
        for (engagement, dialog) in due {
            self.order.hold(&engagement);
            let url = urls::first_history_page(&self.base, &engagement, &sid, &dialog);
            self.transmit(
                Method::Get,
                url,
                None,
                RequestKind::Rest,
                Pending::CatchUp(engagement.clone()),
            );
            self.catch_ups.push(CatchUp {
                engagement,
                fetched: Vec::new(),
                pages: 1,
            });
        }
    }

    fn on_catch_up(&mut self, engagement: EngagementId, outcome: Outcome<'_>) {
        let Some(at) = self
            .catch_ups
            .iter()
            .position(|c| c.engagement == engagement)
        else {
            return;
        };
        let last = self.order.last_index(&engagement).unwrap_or(0);
        let page = rest(outcome).and_then(decode::<wire::MessagePage>);
        let next = match page {
            Ok(page) => {
                let reached_known = page.messages.is_empty()
                    || page.messages.iter().any(|m| m.message_index <= last);
                let catch_up = &mut self.catch_ups[at];
                catch_up.fetched.extend(
                    page.messages
                        .into_iter()
                        .filter(|m| m.message_index > last)
                        .map(Message::from_rest),
                );
                let link = self.own_link(&engagement, page.links.next);
                let catch_up = &mut self.catch_ups[at];
                match link {
                    Some(link) if !reached_known && catch_up.pages < MAX_CATCH_UP_PAGES => {
                        catch_up.pages += 1;
                        Some(link)
                    }
                    _ => None,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "catching up from history failed; live messages go on");
                None
            }
        };
        match next {
            Some(link) => {
                self.transmit(
                    Method::Get,
                    link.0,
                    None,
                    RequestKind::Rest,
                    Pending::CatchUp(engagement),
                );
            }
            None => {
                let catch_up = self.catch_ups.swap_remove(at);
                for message in self.order.release(&engagement, catch_up.fetched) {
                    self.emit(super::dispatch::message_event(message));
                }
                // A poll held back by the messages it held may go now.
                self.send_wanted_poll();
            }
        }
    }

    fn finish_shutdown_if_settled(&mut self) {
        let Some(s) = self.shutdown else {
            return;
        };
        if self.phase != Phase::ShuttingDown || !s.deleted || !self.requests.is_empty() {
            return;
        }
        self.phase = Phase::Ended;
        self.end = Some(EndReason::Shutdown(s.reason));
        self.timers.stop_all();
        self.emit(Event::Shutdown { reason: s.reason });
        if !s.automatic {
            self.reply(s.id, Ok(ReplyValue::Shutdown));
        }
    }
}

/// The status rules of every REST call (reference 6.4): 2xx is success (204 without a body),
/// 401 is ACS-305, anything else ACS-304; no answer is ACS-306.
pub(super) fn rest(outcome: Outcome<'_>) -> Result<&[u8], ChatError> {
    match outcome {
        Err(e) => Err(ChatError::Unreachable(e)),
        Ok((200..=299, body)) => Ok(body),
        Ok((status, body)) => Err(status_error(status, body)),
    }
}

/// The error of a status that is not a success: 401 is ACS-305, anything else ACS-304.
fn status_error(status: u16, body: &[u8]) -> ChatError {
    match status {
        401 => ChatError::InvalidToken {
            detail: problem_detail(body),
        },
        _ => ChatError::ServerUnexpected {
            status: Some(status),
            detail: problem_detail(body),
        },
    }
}

/// Join and send: 404 means the engagement is gone (ACS-314).
fn rest_engagement_call(outcome: Outcome<'_>) -> Result<&[u8], ChatError> {
    match outcome {
        Ok((404, _)) => Err(ChatError::EngagementNotFound),
        other => rest(other),
    }
}

/// A send without the outbox: a lost answer says that the message may have been stored.
fn send_result(outcome: Outcome<'_>) -> Result<Message, ChatError> {
    let maybe_delivered = |e: TransportError| match e {
        // The connection was never made: nothing arrived.
        TransportError::Connect | TransportError::Certificate => ChatError::Unreachable(e),
        e => ChatError::MaybeDelivered(e),
    };
    match outcome {
        Err(e) => Err(maybe_delivered(e)),
        Ok((200..=299, body)) => decode::<wire::RestMessage>(body)
            .map(Message::from_rest)
            .map_err(|_| maybe_delivered(TransportError::Protocol)),
        Ok((404, _)) => Err(ChatError::EngagementNotFound),
        Ok((status, body)) => Err(status_error(status, body)),
    }
}

pub(super) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ChatError> {
    serde_json::from_slice(body).map_err(|e| unexpected_body(&e.to_string()))
}

fn unexpected_body(why: &str) -> ChatError {
    ChatError::ServerUnexpected {
        status: None,
        detail: Some(format!("unusable response body: {why}")),
    }
}

pub(super) fn problem_detail(body: &[u8]) -> Option<String> {
    let p: Problem = serde_json::from_slice(body).ok()?;
    p.detail.or(p.title)
}
