//! The commands: checked synchronously, completed later by a [`Reply`](crate::Reply).

use std::time::{Instant, SystemTime};

use super::{Pending, Phase, Resumption, Session, ShutdownState, Slot, urls};
use crate::engagement::MessageOrder;
use crate::event::EndReason;
use crate::event::PageLink;
use crate::ids::{DialogId, EngagementId, MessageId, RequestId, SessionId};
use crate::request::{Method, RequestKind};
use crate::stream::{Cursor, StreamState};
use crate::wire::{
    CLIENT_TYPE_WEB, CreateEngagementRequest, CreateSessionRequest, DisconnectEngagementRequest,
    DisconnectReason, EngagementStatus, JoinEngagementRequest, MappedData, MessageBody,
    SendMessageRequest, ShutdownReason,
};
use crate::{ChatError, validate};

impl Session {
    /// Creates the session on the server (`POST …/sessions`). Completes with
    /// [`ReplyValue::Initialized`](crate::ReplyValue::Initialized), after the `INITIALIZED`
    /// event. May be called again after a failed attempt.
    pub fn init(&mut self, now: Instant, wall: SystemTime) -> Result<RequestId, ChatError> {
        self.begin_init(now, wall, None)
    }

    /// Resumes an existing session (`GET …/sessions/{id}`), as a page reload does. The
    /// engagements in `resumption` that the server still lists come back ACTIVE, and the event
    /// stream restarts for them.
    pub fn resume(
        &mut self,
        now: Instant,
        wall: SystemTime,
        resumption: Resumption,
    ) -> Result<RequestId, ChatError> {
        self.begin_init(now, wall, Some(resumption))
    }

    pub(super) fn begin_init(
        &mut self,
        now: Instant,
        wall: SystemTime,
        resume: Option<Resumption>,
    ) -> Result<RequestId, ChatError> {
        let now = self.tick(now);
        match self.phase {
            Phase::Created => {}
            Phase::Initializing | Phase::ShuttingDown => return Err(ChatError::InProgress),
            Phase::Ready => return Err(ChatError::AlreadyInitialized),
            Phase::Ended => {
                return Err(self
                    .require_ready()
                    .err()
                    .unwrap_or(ChatError::NotInitialized));
            }
        }
        self.anchor = Some((now, wall));
        if self
            .token
            .as_ref()
            .is_some_and(|t| t.remaining(wall).is_zero())
        {
            return Err(ChatError::token_not_live());
        }
        self.phase = Phase::Initializing;
        if let Some(r) = &resume {
            self.order = MessageOrder::with_last_indexes(r.last_message_indexes.iter().cloned());
            self.cursor = Cursor::default();
        }
        let id = self.new_id();
        if self.token.is_some() {
            self.send_init(id, resume);
        } else {
            // The first token comes from the provider; the session request follows it.
            self.init_after_token(now, id, resume);
        }
        Ok(id)
    }

    /// `POST …/sessions`, or `GET …/sessions/{id}` to resume, under the id `init` returned.
    pub(super) fn send_init(&mut self, id: RequestId, resume: Option<Resumption>) {
        match resume {
            None => {
                let body = CreateSessionRequest {
                    display_name: self.display_name.clone(),
                    client_type: CLIENT_TYPE_WEB.to_owned(),
                    session_parameters: self.session_parameters.clone(),
                };
                let url = urls::sessions(&self.base);
                self.transmit_as(
                    id,
                    Method::Post,
                    url,
                    Some(json(&body)),
                    RequestKind::Rest,
                    Pending::Init { resume: None },
                );
            }
            Some(r) => {
                let url = urls::session(&self.base, &r.session_id);
                self.transmit_as(
                    id,
                    Method::Get,
                    url,
                    None,
                    RequestKind::Rest,
                    Pending::Init { resume: Some(r) },
                );
            }
        }
    }

    /// Creates an engagement (a new chat). It starts PENDING and becomes ACTIVE when the
    /// server reports the customer in it (`ENGAGEMENT_ACTIVE`).
    pub fn create_engagement(
        &mut self,
        now: Instant,
        parameters: MappedData,
    ) -> Result<RequestId, ChatError> {
        let now = self.tick(now);
        let sid = self.require_ready()?.clone();
        validate::mapped_data(&parameters)?;
        self.activity(now);
        let body = CreateEngagementRequest {
            session_id: sid,
            engagement_parameters: parameters,
        };
        let url = urls::engagements(&self.base);
        Ok(self.transmit(
            Method::Post,
            url,
            Some(json(&body)),
            RequestKind::Rest,
            Pending::CreateEngagement,
        ))
    }

    /// Asks the server for the customer's ongoing engagements across all their sessions, and
    /// brings the local ones up to date.
    pub fn list_engagements(&mut self, now: Instant) -> Result<RequestId, ChatError> {
        self.tick(now);
        let sid = self.require_ready()?.clone();
        let url = urls::session(&self.base, &sid);
        Ok(self.transmit(
            Method::Get,
            url,
            None,
            RequestKind::Rest,
            Pending::ListEngagements,
        ))
    }

    /// Joins an engagement started elsewhere (ACS-314 if it is over or unknown, ACS-315 if
    /// already active). It becomes ACTIVE when the server reports the customer in it.
    pub fn join(
        &mut self,
        now: Instant,
        engagement: &EngagementId,
    ) -> Result<RequestId, ChatError> {
        let now = self.tick(now);
        let sid = self.require_ready()?.clone();
        let e = self.usable(engagement)?;
        if e.info.status == EngagementStatus::Active {
            return Err(ChatError::EngagementAlreadyActive);
        }
        let body = JoinEngagementRequest {
            dialog_id: e.info.dialog_id.clone(),
            session_id: sid,
        };
        self.activity(now);
        let url = urls::engagement_action(&self.base, engagement, "join");
        Ok(self.transmit(
            Method::Post,
            url,
            Some(json(&body)),
            RequestKind::Rest,
            Pending::Join(engagement.clone()),
        ))
    }

    /// Sends a text message (1–4096 UTF-16 units), optionally in answer to `parent`.
    /// Completes with the message as stored; it also comes back as `MESSAGE_DELIVERED`.
    ///
    /// With the outbox ([`Config::outbox`](crate::Config::outbox)) the sends of one
    /// engagement go out one at a time, in the order they were made, so that they are stored
    /// in that order whatever fails in between.
    pub fn send_message(
        &mut self,
        now: Instant,
        engagement: &EngagementId,
        text: &str,
        parent: Option<&MessageId>,
    ) -> Result<RequestId, ChatError> {
        let now = self.tick(now);
        let sid = self.require_ready()?.clone();
        let e = self.usable(engagement)?;
        if e.info.status != EngagementStatus::Active {
            return Err(ChatError::EngagementNotActive);
        }
        let dialog_id = e.info.dialog_id.clone();
        validate::message_text(text)?;
        if let Some(p) = parent {
            MessageId::parse(p.as_str()).map_err(|_| {
                ChatError::constraint("parentMessageId should be a valid UUID string")
            })?;
        }
        if self.config.write_ahead && self.outbox.is_full() {
            // Not held, it would not be kept: refused, rather than accepted and then lost.
            return Err(ChatError::constraint(
                "the outbox holds 256 sends already: wait for some to be delivered",
            ));
        }
        self.activity(now);
        if self.config.outbox.is_some() {
            return Ok(self.queue_send(now, engagement, text, parent));
        }
        Ok(self.post_message(engagement, dialog_id, sid, text, parent))
    }

    /// `POST …/messages`: a send, or the outbox's next attempt at one.
    pub(super) fn post_message(
        &mut self,
        engagement: &EngagementId,
        dialog_id: DialogId,
        session_id: SessionId,
        text: &str,
        parent: Option<&MessageId>,
    ) -> RequestId {
        let body = SendMessageRequest {
            dialog_id,
            session_id,
            parent_message_id: parent.cloned(),
            body: MessageBody::plain_text(text),
        };
        let url = urls::messages(&self.base, engagement);
        self.transmit(
            Method::Post,
            url,
            Some(json(&body)),
            RequestKind::Rest,
            Pending::Send(engagement.clone()),
        )
    }

    /// Fetches a page of history, newest first: the first page when `page` is `None`, else
    /// the page a previous reply linked to. Allowed on a PENDING engagement (to preview it
    /// before joining). Not an activity.
    pub fn fetch_history(
        &mut self,
        now: Instant,
        engagement: &EngagementId,
        page: Option<&PageLink>,
    ) -> Result<RequestId, ChatError> {
        self.tick(now);
        let sid = self.require_ready()?.clone();
        let e = self.usable(engagement)?;
        let url = match page {
            None => urls::first_history_page(&self.base, engagement, &sid, &e.info.dialog_id),
            Some(link) => link.0.clone(),
        };
        Ok(self.transmit(
            Method::Get,
            url,
            None,
            RequestKind::Rest,
            Pending::History {
                engagement: engagement.clone(),
                first: page.is_none(),
            },
        ))
    }

    /// Leaves an ACTIVE engagement. It becomes TERMINATING, and TERMINATED when the server
    /// reports the customer gone (`ENGAGEMENT_TERMINATED`).
    pub fn disconnect(
        &mut self,
        now: Instant,
        engagement: &EngagementId,
        reason: Option<DisconnectReason>,
    ) -> Result<RequestId, ChatError> {
        let now = self.tick(now);
        let sid = self.require_ready()?.clone();
        let e = self.usable(engagement)?;
        if e.info.status != EngagementStatus::Active {
            return Err(ChatError::EngagementNotActive);
        }
        let body = DisconnectEngagementRequest {
            dialog_id: e.info.dialog_id.clone(),
            session_id: sid,
            reason,
        };
        self.activity(now);
        let url = urls::engagement_action(&self.base, engagement, "disconnect");
        Ok(self.transmit(
            Method::Post,
            url,
            Some(json(&body)),
            RequestKind::Rest,
            Pending::Disconnect(engagement.clone()),
        ))
    }

    /// Retries the event stream now: after `RECONNECTION_TIMEOUT` (Failed) one immediate
    /// attempt; while backing off (Retry) the wait is cut short and the backoff restarts.
    /// ACS-318 in any other state.
    pub fn retry_connection(&mut self, now: Instant) -> Result<(), ChatError> {
        self.tick(now);
        self.require_ready()?;
        match self.stream {
            StreamState::Failed => {
                // One attempt at a time: a second press while one runs changes nothing.
                if self.in_flight.is_none() {
                    self.send_poll();
                }
                Ok(())
            }
            StreamState::Retry => {
                self.backoff.reset();
                if self.in_flight.is_none() {
                    self.timers.stop(crate::timer::Timer::Backoff);
                    self.attempt_reconnection();
                }
                Ok(())
            }
            _ => Err(ChatError::RetryNotAllowed),
        }
    }

    /// Customer activity: restarts the idle timer (and cancels a running grace period).
    /// Does nothing before `init` or while the stream is reconnecting.
    pub fn reset_idle_timeout(&mut self, now: Instant) {
        let now = self.tick(now);
        if self.phase == Phase::Ready {
            self.activity(now);
        }
    }

    /// Ends the session: `DELETE …/sessions/{id}`, then `SHUTDOWN` once every request in
    /// flight has settled. Engagements are not disconnected: the chats go on and can be joined
    /// from another session. The outcome of the delete is only logged.
    pub fn shutdown(
        &mut self,
        now: Instant,
        reason: Option<ShutdownReason>,
    ) -> Result<RequestId, ChatError> {
        let now = self.tick(now);
        match self.phase {
            Phase::Initializing | Phase::ShuttingDown => Err(ChatError::InProgress),
            Phase::Created => Err(ChatError::NotInitialized),
            Phase::Ended => Err(self
                .require_ready()
                .err()
                .unwrap_or(ChatError::NotInitialized)),
            Phase::Ready => Ok(self.begin_shutdown(reason, false, now)),
        }
    }

    pub(super) fn begin_shutdown(
        &mut self,
        reason: Option<ShutdownReason>,
        automatic: bool,
        now: Instant,
    ) -> RequestId {
        if self.stream != StreamState::Closed {
            self.stop_stream(now);
        }
        // Catch-ups are internal: nobody waits for them.
        let catch_ups: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|r| matches!(r.pending, Pending::CatchUp(_)))
            .map(|r| r.id)
            .collect();
        for id in catch_ups {
            self.abort(id);
        }
        self.catch_ups.clear();
        self.stop_outbox_checks(now);
        self.drop_token_waiters(&ChatError::NotInitialized);
        self.timers.stop_all();
        self.slot = Slot::None;
        self.engagements.clear();
        self.phase = Phase::ShuttingDown;
        let url = match &self.session_id {
            Some(sid) => urls::delete_session(&self.base, sid, reason),
            None => urls::sessions(&self.base),
        };
        let id = self.transmit(
            Method::Delete,
            url,
            None,
            RequestKind::Rest,
            Pending::Shutdown,
        );
        self.shutdown = Some(ShutdownState {
            id,
            reason,
            automatic,
            deleted: false,
        });
        // Held sends that wait fail now; those in flight when their answer comes.
        self.pump_outbox(now);
        id
    }

    /// Ends the session at once: every request is abandoned, and whatever waits for one
    /// (commands, held sends, token refreshes) fails with `error`.
    pub(super) fn end_session(&mut self, reason: EndReason, error: &ChatError) {
        self.snapshot_changed();
        for sent in std::mem::take(&mut self.requests) {
            self.out.push_back(crate::Output::Abort(sent.id));
            let answered_by_outbox = self.outbox.sending(sent.id).is_some();
            if (sent.pending.is_command() || matches!(sent.pending, Pending::Send(_)))
                && !answered_by_outbox
            {
                self.reply(sent.id, Err(error.clone()));
            }
        }
        self.in_flight = None;
        self.probing = None;
        self.catch_ups.clear();
        self.drop_token_waiters(error);
        self.fail_outbox(error);
        for (_, id) in std::mem::take(&mut self.save_waiters) {
            self.reply(id, Err(error.clone()));
        }
        if let Some(s) = self.shutdown.take() {
            if !s.automatic {
                self.reply(s.id, Err(error.clone()));
            }
        }
        self.timers.stop_all();
        self.slot = Slot::None;
        self.engagements.clear();
        self.phase = Phase::Ended;
        self.end = Some(reason);
    }

    /// The engagement, if it exists and is neither TERMINATING nor TERMINATED (else ACS-314).
    fn usable(&self, id: &EngagementId) -> Result<&crate::engagement::EngagementState, ChatError> {
        self.find(id)
            .map(|i| &self.engagements[i])
            .filter(|e| !e.is_over())
            .ok_or(ChatError::EngagementNotFound)
    }
}

pub(super) fn json<T: serde::Serialize>(body: &T) -> String {
    // Serializing these plain structs of strings and maps cannot fail.
    serde_json::to_string(body).unwrap_or_default()
}
