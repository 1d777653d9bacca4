//! In-process control of a running emulator: statistics, the contact-center side, faults.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chat_core::ids::{DialogId, EngagementId, ParticipantId, SessionId};
use chat_core::wire::{
    EngagementErrorBody, EngagementStatus, MessageBody, Participant, ParticipantType, RestMessage,
    ServerEventType,
};
use serde::Serialize;

use crate::agent::AgentMode;
use crate::faults::{FaultAction, Route};
use crate::state::{EngagementState, Inner, World};

/// Counters of a running emulator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Stats {
    /// Requests received by the OAuth token endpoint (injected failures included).
    pub oauth_calls: u64,
    /// Requests received by the Generate JWT Token API (injected failures included).
    pub token_calls: u64,
    /// Chat tokens actually minted (by the API or [`Control::mint_token`]).
    pub tokens_minted: u64,
    /// Requests received by the events resource (long polls and WebSocket upgrades).
    pub polls: u64,
    /// WebSocket connections accepted on the events resource.
    pub ws_connections: u64,
    /// Requests received by the chat API, the events resource included.
    pub chat_requests: u64,
    /// Events handed out in poll answers and WebSocket frames (re-deliveries included).
    pub events_delivered: u64,
    /// Sessions alive now.
    pub sessions: u64,
    /// Engagements not yet terminated.
    pub ongoing_engagements: u64,
    /// The emulator process's resident memory in KiB, where /proc is available.
    pub rss_kib: Option<u64>,
    /// The emulator's process id.
    pub pid: u32,
}

/// An engagement as the control API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct EngagementInfo {
    /// The engagement.
    pub engagement_id: EngagementId,
    /// Its single dialog.
    pub dialog_id: DialogId,
    /// The integration it belongs to.
    pub integration_id: String,
    /// The customer's id (from their token).
    pub customer_id: String,
    /// Whether the customer is verified.
    pub verified_customer: bool,
    /// The dialog status.
    pub status: EngagementStatus,
    /// Everyone in it now.
    pub participants: Vec<Participant>,
    /// Messages posted so far.
    pub message_count: usize,
    /// Sessions that receive its events.
    pub sessions: Vec<SessionId>,
    /// The `engagementParameters` it was created with.
    pub parameters: chat_core::wire::MappedData,
}

/// Why a control operation could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No engagement with that id.
    #[error("engagement not found")]
    EngagementNotFound,
    /// The engagement is already terminated.
    #[error("engagement already terminated")]
    EngagementEnded,
    /// No participant with that id in the engagement.
    #[error("participant not found")]
    ParticipantNotFound,
    /// The message text is empty or longer than 4096 characters.
    #[error("message text must be 1 to 4096 characters")]
    InvalidText,
}

/// A cheap, cloneable handle to drive a running emulator from tests.
#[derive(Clone)]
pub struct Control {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("base_url", &self.inner.settings.base_url)
            .finish_non_exhaustive()
    }
}

impl Control {
    /// Current counters.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        let world = self.inner.world();
        Stats {
            oauth_calls: c.oauth_calls.load(Ordering::Relaxed),
            token_calls: c.token_calls.load(Ordering::Relaxed),
            tokens_minted: c.tokens_minted.load(Ordering::Relaxed),
            polls: c.polls.load(Ordering::Relaxed),
            ws_connections: c.ws_connections.load(Ordering::Relaxed),
            chat_requests: c.chat_requests.load(Ordering::Relaxed),
            events_delivered: c.events_delivered.load(Ordering::Relaxed),
            sessions: world.sessions.len() as u64,
            ongoing_engagements: world.engagements.values().filter(|e| e.ongoing()).count() as u64,
            rss_kib: crate::util::rss_kib(),
            pid: std::process::id(),
        }
    }

    fn add_fault(
        &self,
        route: Route,
        session: Option<&SessionId>,
        action: FaultAction,
        count: u32,
    ) {
        self.inner
            .faults()
            .add(route, session.map(|s| s.as_str().to_owned()), action, count);
    }

    /// The next `count` requests of `route` answer `status` with a problem body.
    pub fn fail_next(&self, route: Route, status: u16, count: u32) {
        let action = FaultAction::Status {
            status,
            retry_after: None,
        };
        self.add_fault(route, None, action, count);
    }

    /// Like [`fail_next`](Self::fail_next), with a `Retry-After: secs` header.
    pub fn fail_next_with_retry_after(&self, route: Route, status: u16, count: u32, secs: u64) {
        let action = FaultAction::Status {
            status,
            retry_after: Some(secs),
        };
        self.add_fault(route, None, action, count);
    }

    /// Like [`fail_next`](Self::fail_next), for requests whose path names `session` only
    /// (its events, get and delete).
    pub fn fail_next_for_session(
        &self,
        session: &SessionId,
        route: Route,
        status: u16,
        count: u32,
    ) {
        let action = FaultAction::Status {
            status,
            retry_after: None,
        };
        self.add_fault(route, Some(session), action, count);
    }

    /// The next `count` polls are held for `hold` (e.g. past the client's 40 s abort) before
    /// being served normally.
    pub fn hang_next_polls(&self, count: u32, hold: Duration) {
        self.add_fault(Route::Events, None, FaultAction::Hang(hold), count);
    }

    /// Like [`hang_next_polls`](Self::hang_next_polls), for one session's polls only.
    pub fn hang_next_polls_for_session(&self, session: &SessionId, count: u32, hold: Duration) {
        self.add_fault(Route::Events, Some(session), FaultAction::Hang(hold), count);
    }

    /// Like [`drop_next_polls`](Self::drop_next_polls), for one session's polls only.
    pub fn drop_next_polls_for_session(&self, session: &SessionId, count: u32) {
        self.add_fault(Route::Events, Some(session), FaultAction::Drop, count);
    }

    /// The next `count` requests of `route` are held for `hold`, then served.
    pub fn hang_next(&self, route: Route, count: u32, hold: Duration) {
        self.add_fault(route, None, FaultAction::Hang(hold), count);
    }

    /// The next `count` polls lose their connection before an answer body.
    pub fn drop_next_polls(&self, count: u32) {
        self.add_fault(Route::Events, None, FaultAction::Drop, count);
    }

    /// The next `count` requests of `route` lose their connection before an answer body.
    pub fn drop_next(&self, route: Route, count: u32) {
        self.add_fault(route, None, FaultAction::Drop, count);
    }

    /// The next `count` requests of `route` are served — their effects happen, a message is
    /// stored and broadcast — but the connection closes before the answer's body: the client
    /// sees a network error and cannot tell the request was done.
    pub fn lose_next_answers(&self, route: Route, count: u32) {
        self.add_fault(route, None, FaultAction::LoseAnswer, count);
    }

    /// Delays every request of `route` by `delay` (`None` or zero removes the delay).
    pub fn delay_responses(&self, route: Route, delay: Option<Duration>) {
        self.inner.faults().set_delay(route, delay);
    }

    /// Removes every pending fault and delay.
    pub fn clear_faults(&self) {
        self.inner.faults().clear();
    }

    /// Every OAuth access token issued so far is refused (401) from now on.
    pub fn revoke_access_tokens(&self) {
        self.inner.world().access_tokens.clear();
    }

    /// Removes a session: its polls then answer 404 "Session not found". False if unknown.
    pub fn invalidate_session(&self, session: &SessionId) -> bool {
        self.inner.world().remove_session(session)
    }

    /// Every chat token minted so far is refused with 401 "Token expired".
    pub fn expire_tokens(&self) {
        self.bump_generation("Token expired");
    }

    /// Every chat token minted so far is refused with 401 "Token revoked".
    pub fn revoke_chat_tokens(&self) {
        self.bump_generation("Token revoked");
    }

    fn bump_generation(&self, detail: &'static str) {
        let mut world = self.inner.world();
        world.min_token_generation += 1;
        world.revocation_detail = detail;
        // Wake WebSocket connections so that they notice and close.
        for session in world.sessions.values() {
            session.notify.notify_waiters();
        }
    }

    /// Sets the agent simulation for engagements created from now on.
    pub fn set_agent_mode(&self, mode: AgentMode) {
        self.inner.world().agent_mode = mode;
    }

    /// All engagements, oldest first.
    pub fn engagements(&self) -> Vec<EngagementInfo> {
        let world = self.inner.world();
        let mut list: Vec<_> = world.engagements.values().collect();
        list.sort_by_key(|e| e.seq);
        list.into_iter()
            .map(|e| EngagementInfo {
                engagement_id: e.id.clone(),
                dialog_id: e.dialog_id.clone(),
                integration_id: e.customer.integration_id.clone(),
                customer_id: e.customer.customer_id.clone(),
                verified_customer: e.customer.verified,
                status: e.status,
                participants: e.participants.clone(),
                message_count: e.messages.len(),
                sessions: e.members.clone(),
                parameters: e.parameters.clone(),
            })
            .collect()
    }

    /// Posts a message into an engagement as someone of `sender` type: the customer, the
    /// engagement's first participant of that type (one is added, with PARTICIPANT_ADDED, if
    /// there is none), or SYSTEM (not a listed participant).
    pub fn post_message(
        &self,
        engagement: &EngagementId,
        sender: ParticipantType,
        text: &str,
    ) -> Result<RestMessage, ControlError> {
        let len = text.encode_utf16().count();
        if !(1..=4096).contains(&len) {
            return Err(ControlError::InvalidText);
        }
        let mut world = self.inner.world();
        let state = ongoing(&mut world, engagement)?;
        let existing = match sender {
            ParticipantType::Customer => Some(state.customer_participant.clone()),
            ParticipantType::System => Some(Participant {
                participant_id: ParticipantId::new("00000000-0000-4000-8000-000000000000"),
                participant_type: ParticipantType::System,
                display_name: Some("System".to_owned()),
            }),
            kind => state
                .participants
                .iter()
                .find(|p| p.participant_type == kind)
                .cloned(),
        };
        let participant = match existing {
            Some(p) => p,
            None => world
                .add_participant(engagement, sender, Some(default_name(sender).to_owned()))
                .ok_or(ControlError::EngagementNotFound)?,
        };
        world
            .add_message(
                engagement,
                &participant,
                MessageBody::plain_text(text),
                None,
            )
            .ok_or(ControlError::EngagementNotFound)
    }

    /// Adds a participant (PARTICIPANT_ADDED to the engagement's sessions).
    pub fn add_participant(
        &self,
        engagement: &EngagementId,
        kind: ParticipantType,
        display_name: &str,
    ) -> Result<Participant, ControlError> {
        let mut world = self.inner.world();
        ongoing(&mut world, engagement)?;
        world
            .add_participant(engagement, kind, Some(display_name.to_owned()))
            .ok_or(ControlError::EngagementNotFound)
    }

    /// Removes a participant (PARTICIPANT_DISCONNECTED). Removing the customer ends the
    /// engagement.
    pub fn remove_participant(
        &self,
        engagement: &EngagementId,
        participant: &ParticipantId,
    ) -> Result<(), ControlError> {
        let mut world = self.inner.world();
        let state = ongoing(&mut world, engagement)?;
        let index = state
            .participants
            .iter()
            .position(|p| &p.participant_id == participant)
            .ok_or(ControlError::ParticipantNotFound)?;
        let removed = state.participants.remove(index);
        if removed.participant_id == state.customer_participant.participant_id {
            state.status = EngagementStatus::Terminated;
        }
        if state.auto_agent.as_ref() == Some(&removed) {
            state.auto_agent = None;
        }
        state.touch();
        let mut event = state.event(ServerEventType::ParticipantDisconnected);
        event.participant = Some(removed);
        world.broadcast(engagement, event);
        Ok(())
    }

    /// Ends an engagement from the contact-center side: PARTICIPANT_DISCONNECTED for each
    /// non-customer participant, then for the customer; the dialog becomes TERMINATED.
    pub fn end_engagement(&self, engagement: &EngagementId) -> Result<(), ControlError> {
        let mut world = self.inner.world();
        ongoing(&mut world, engagement)?;
        world.end_engagement(engagement);
        Ok(())
    }

    /// Queues `ENGAGEMENT_ERROR` with this title and detail; the engagement is over.
    pub fn raise_engagement_error(
        &self,
        engagement: &EngagementId,
        title: &str,
        detail: &str,
    ) -> Result<(), ControlError> {
        let mut world = self.inner.world();
        let state = ongoing(&mut world, engagement)?;
        let mut event = state.event(ServerEventType::EngagementError);
        event.error = Some(EngagementErrorBody {
            error_type: Some("about:blank".to_owned()),
            title: Some(title.to_owned()),
            detail: Some(detail.to_owned()),
        });
        state.status = EngagementStatus::Terminated;
        state.participants.clear();
        state.touch();
        world.broadcast(engagement, event);
        Ok(())
    }

    /// Posts the same message into every ongoing engagement (load tests); returns how many.
    pub fn broadcast_message(&self, sender: ParticipantType, text: &str) -> usize {
        let ids: Vec<EngagementId> = {
            let world = self.inner.world();
            world
                .engagements
                .values()
                .filter(|e| e.ongoing())
                .map(|e| e.id.clone())
                .collect()
        };
        ids.iter()
            .filter(|id| self.post_message(id, sender, text).is_ok())
            .count()
    }

    /// Mints a chat token for the default integration without HTTP (no field rules apply).
    pub fn mint_token(&self, customer_id: &str, verified: bool, ttl: Duration) -> String {
        let integration = self.inner.default_integration();
        self.mint_token_for(&integration, customer_id, verified, ttl)
    }

    /// Signs a chat token with any account id and any expiry (`exp`, Unix seconds), for
    /// authorization tests: another account's token, or one already expired, without waiting.
    pub fn forge_token(
        &self,
        account_id: &str,
        integration_id: &str,
        customer_id: &str,
        verified: bool,
        exp: u64,
    ) -> String {
        crate::auth_api::forge(
            &self.inner,
            account_id,
            integration_id,
            customer_id,
            verified,
            exp,
        )
    }

    /// Mints a chat token for a given integration without HTTP.
    pub fn mint_token_for(
        &self,
        integration_id: &str,
        customer_id: &str,
        verified: bool,
        ttl: Duration,
    ) -> String {
        crate::auth_api::mint(
            &self.inner,
            integration_id,
            customer_id,
            None,
            verified,
            None,
            ttl,
        )
    }
}

fn default_name(kind: ParticipantType) -> &'static str {
    match kind {
        ParticipantType::Agent => "Alex (agent)",
        ParticipantType::Bot => "Virtual assistant",
        ParticipantType::Supervisor => "Sam (supervisor)",
        ParticipantType::System => "System",
        ParticipantType::Customer => "Customer",
        _ => "Participant",
    }
}

/// The engagement, if it exists and is not over.
fn ongoing<'w>(
    world: &'w mut World,
    engagement: &EngagementId,
) -> Result<&'w mut EngagementState, ControlError> {
    let state = world
        .engagements
        .get_mut(engagement)
        .ok_or(ControlError::EngagementNotFound)?;
    if state.ongoing() {
        Ok(state)
    } else {
        Err(ControlError::EngagementEnded)
    }
}
