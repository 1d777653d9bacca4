//! In-process control of a running emulator: statistics, the contact-center side, faults.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chat_core::wire::{
    EngagementErrorBody, EngagementStatus, MessageBody, Participant, ParticipantType, RestMessage,
    ServerEventType,
};
use chat_core::{DialogId, EngagementId, MessageId, ParticipantId, SessionId};
use serde::Serialize;

use crate::agent::AgentMode;
use crate::faults::{FaultAction, FaultsView, Route};
use crate::live::{Change, ChangeKind, StreamState};
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
    /// When it was created (ISO-8601).
    pub created_at: String,
    /// When it last changed (ISO-8601).
    pub last_updated_at: String,
    /// The participant the simulated agent speaks as, once it joined (and until it leaves).
    pub simulated_agent: Option<Participant>,
    /// Whether the simulated agent answers in this engagement (see
    /// [`Control::set_engagement_agent`]).
    pub simulated_agent_on: bool,
}

/// A chat session as the control API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SessionInfo {
    /// The session.
    pub session_id: SessionId,
    /// The integration it belongs to.
    pub integration_id: String,
    /// The customer's id (from their token).
    pub customer_id: String,
    /// Whether the customer is verified (false: a guest).
    pub verified_customer: bool,
    /// The display name of the session.
    pub display_name: Option<String>,
    /// How its events are being read now.
    pub stream: StreamState,
    /// When it last had a poll or a WebSocket open (ISO-8601), if ever.
    pub last_seen: Option<String>,
    /// When the latest chat token the customer presented expires (ISO-8601).
    pub token_expires_at: Option<String>,
    /// Whether that token expired, or was expired or revoked through the control API.
    pub token_refused: bool,
    /// Events queued and not yet acknowledged by the client.
    pub pending_events: usize,
    /// The engagements it receives the events of, oldest first.
    pub engagements: Vec<EngagementId>,
}

/// A message of a transcript, with its delivery to the customer's sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TranscriptEntry {
    /// The message, in the chat API's flat REST form.
    #[serde(flatten)]
    pub message: RestMessage,
    /// Its `MESSAGE` event in each member session of the engagement.
    pub delivery: Vec<Delivery>,
}

/// Where a message's event is in one session's queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Delivery {
    /// The session.
    pub session_id: SessionId,
    /// True once the client acknowledged the event (`lastEventId` at or past it); false
    /// while it waits in the queue.
    pub acknowledged: bool,
}

/// A chat integration of the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct IntegrationInfo {
    /// Its id (a UUID).
    pub integration_id: String,
    /// Its name.
    pub name: String,
    /// Its settings object.
    pub settings: serde_json::Value,
    /// When it was created (ISO-8601).
    pub created_at: String,
    /// Whether it is the one provisioned at start.
    pub default: bool,
}

/// The emulator's settings and credentials, with the client secret masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SettingsInfo {
    /// The base URL of the APIs (`hostURL`).
    #[serde(rename = "hostURL")]
    pub host_url: String,
    /// The account id.
    pub account_id: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The OAuth client secret's first 4 characters and `…` (never the whole secret).
    pub client_secret_masked: String,
    /// The appkey, which chat apps send with every request.
    pub appkey: String,
    /// The integration provisioned at start.
    pub default_integration_id: String,
    /// The agent simulation for new engagements.
    pub agent_mode: AgentMode,
    /// Whether the APIs are served over HTTPS.
    pub tls: bool,
    /// The long-poll hold time in milliseconds.
    pub hold_time_ms: u64,
}

/// Everything the control API can list, at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Snapshot {
    /// Settings and (masked) credentials.
    pub settings: SettingsInfo,
    /// Counters.
    pub stats: Stats,
    /// Sessions, by customer id.
    pub sessions: Vec<SessionInfo>,
    /// Engagements, oldest first.
    pub engagements: Vec<EngagementInfo>,
    /// Integrations.
    pub integrations: Vec<IntegrationInfo>,
    /// Faults armed and fired.
    pub faults: FaultsView,
}

/// The live feed of changes ([`Control::changes`]).
#[derive(Debug)]
pub struct Changes {
    rx: tokio::sync::broadcast::Receiver<Change>,
}

impl Changes {
    /// The next change. A watcher too slow to keep up gets one [`ChangeKind::Resync`] in
    /// place of the notifications it missed. `None` once the emulator is gone.
    pub async fn recv(&mut self) -> Option<Change> {
        use tokio::sync::broadcast::error::RecvError;
        match self.rx.recv().await {
            Ok(change) => Some(change),
            Err(RecvError::Lagged(_)) => Some(Change::new(ChangeKind::Resync)),
            Err(RecvError::Closed) => None,
        }
    }
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
    /// No message with that id in the engagement.
    #[error("message not found")]
    MessageNotFound,
    /// The participant cannot do that (the customer cannot be handed over, SYSTEM posts
    /// through its type).
    #[error("not possible for this participant")]
    WrongParticipant,
    /// The message text is empty or longer than 4096 UTF-16 code units (the unit the
    /// protocol counts).
    #[error("message text must be 1 to 4096 UTF-16 code units")]
    InvalidText,
    /// An integration name must be 1 to 128 characters.
    #[error("name must be 1 to 128 characters")]
    InvalidName,
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
        self.arm_fault(route, session.map(|s| s.as_str().to_owned()), action, count);
    }

    /// Arms a fault (every `fail_next…`, `hang…`, `drop…` and `lose…` method, and the control
    /// API's `POST /emulator/v1/faults`); its id, or `None` for a count of 0.
    pub(crate) fn arm_fault(
        &self,
        route: Route,
        session: Option<String>,
        action: FaultAction,
        count: u32,
    ) -> Option<u64> {
        let id = self.inner.faults().add(route, session, action, count);
        self.notify(Change::new(ChangeKind::Faults));
        id
    }

    fn notify(&self, change: Change) {
        self.inner.world().feed.send(change);
    }

    /// The faults armed, the standing delays, the outage in progress and the recent firings.
    pub fn faults(&self) -> FaultsView {
        self.inner.faults().view()
    }

    /// Disarms one fault by its id ([`FaultsView::armed`]); false if it is not armed (any
    /// more).
    pub fn remove_fault(&self, id: u64) -> bool {
        let removed = self.inner.faults().remove(id);
        if removed {
            self.notify(Change::new(ChangeKind::Faults));
        }
        removed
    }

    /// A whole outage: for `duration`, every request of every route (OAuth, the token API,
    /// the chat API and its events, provisioning) answers `status` with `Retry-After` the
    /// seconds left. Polls already held and open WebSockets are not cut. A new outage
    /// replaces the one in progress.
    pub fn outage(&self, duration: Duration, status: u16) {
        self.inner.faults().start_outage(status, duration);
        self.notify(Change::new(ChangeKind::Faults));
        // Tell the watchers when it is over.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let inner = std::sync::Arc::downgrade(&self.inner);
            runtime.spawn(async move {
                let Some(strong) = inner.upgrade() else {
                    return;
                };
                tokio::select! {
                    () = tokio::time::sleep(duration) => {}
                    () = strong.shutting_down() => return,
                }
                strong.world().feed.send(Change::new(ChangeKind::Faults));
            });
        }
    }

    /// Ends the outage in progress; false if none was.
    pub fn end_outage(&self) -> bool {
        let ended = self.inner.faults().end_outage();
        self.notify(Change::new(ChangeKind::Faults));
        ended
    }

    /// A feed of every change of the state from now on.
    pub fn changes(&self) -> Changes {
        Changes {
            rx: self.inner.world().feed.subscribe(),
        }
    }

    /// The sessions alive now, by customer id, then session id.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let world = self.inner.world();
        let mut list: Vec<SessionInfo> = world
            .sessions
            .values()
            .map(|s| {
                let streams = world.streams.get(&s.id).cloned().unwrap_or_default();
                let exp = world.token_expiry.get(&s.customer).copied();
                let mut engagements: Vec<&EngagementState> = world
                    .engagements
                    .values()
                    .filter(|e| e.members.contains(&s.id))
                    .collect();
                engagements.sort_by_key(|e| e.seq);
                SessionInfo {
                    session_id: s.id.clone(),
                    integration_id: s.customer.integration_id.clone(),
                    customer_id: s.customer.customer_id.clone(),
                    verified_customer: s.customer.verified,
                    display_name: s.display_name.clone(),
                    stream: streams.state(),
                    last_seen: streams.last_seen.clone(),
                    token_expires_at: exp
                        .map(|e| crate::util::iso_from_unix_millis(e.saturating_mul(1000))),
                    token_refused: exp.is_some_and(|e| e <= crate::util::now_unix()),
                    pending_events: s.events.len(),
                    engagements: engagements.iter().map(|e| e.id.clone()).collect(),
                }
            })
            .collect();
        list.sort_by(|a, b| {
            (&a.customer_id, a.session_id.as_str()).cmp(&(&b.customer_id, b.session_id.as_str()))
        });
        list
    }

    /// The messages of an engagement, oldest first, each with its delivery to the member
    /// sessions.
    pub fn transcript(
        &self,
        engagement: &EngagementId,
    ) -> Result<Vec<TranscriptEntry>, ControlError> {
        let world = self.inner.world();
        let state = world
            .engagements
            .get(engagement)
            .ok_or(ControlError::EngagementNotFound)?;
        Ok(state
            .messages
            .iter()
            .map(|m| TranscriptEntry {
                message: m.clone(),
                delivery: state
                    .members
                    .iter()
                    .filter_map(|sid| world.sessions.get(sid))
                    .map(|session| Delivery {
                        session_id: session.id.clone(),
                        acknowledged: !session.events.iter().any(|q| {
                            q.event
                                .message
                                .as_ref()
                                .is_some_and(|e| e.message_id == m.message_id)
                        }),
                    })
                    .collect(),
            })
            .collect())
    }

    /// The integrations of the account, by id.
    pub fn integrations(&self) -> Vec<IntegrationInfo> {
        crate::provisioning::list_integrations(&self.inner)
    }

    /// Provisions an integration (as the provisioning API's `POST …/integrations` does).
    /// The name must be 1 to 128 characters.
    pub fn create_integration(&self, name: &str) -> Result<IntegrationInfo, ControlError> {
        crate::provisioning::create_integration(
            &self.inner,
            &serde_json::Value::String(name.to_owned()),
            None,
        )
        .map_err(|_| ControlError::InvalidName)
    }

    /// Deletes an integration (as the provisioning API's `DELETE …/integrations/{id}`
    /// does): its sessions end and its engagements terminate. False if unknown.
    pub fn delete_integration(&self, integration_id: &str) -> bool {
        crate::provisioning::delete_integration(&self.inner, integration_id)
    }

    /// The settings and credentials, the client secret masked.
    pub fn settings(&self) -> SettingsInfo {
        let inner = &self.inner;
        SettingsInfo {
            host_url: inner.settings.base_url.clone(),
            account_id: inner.secrets.account_id.clone(),
            client_id: inner.secrets.client_id.clone(),
            client_secret_masked: mask(&inner.secrets.client_secret),
            appkey: inner.secrets.appkey.clone(),
            default_integration_id: inner.secrets.integration_id.clone(),
            agent_mode: inner.world().agent_mode,
            tls: inner.settings.scheme == "https",
            hold_time_ms: inner.settings.hold_time.as_millis() as u64,
        }
    }

    /// Everything at once: settings, counters, sessions, engagements, integrations, faults.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            settings: self.settings(),
            stats: self.stats(),
            sessions: self.sessions(),
            engagements: self.engagements(),
            integrations: self.integrations(),
            faults: self.faults(),
        }
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
        self.notify(Change::new(ChangeKind::Faults));
    }

    /// Removes every pending fault and delay, and ends an outage.
    pub fn clear_faults(&self) {
        self.inner.faults().clear();
        self.notify(Change::new(ChangeKind::Faults));
    }

    /// Every OAuth access token issued so far is refused (401) from now on.
    pub fn revoke_access_tokens(&self) {
        let mut world = self.inner.world();
        world.access_tokens.clear();
        world.feed.send(Change::new(ChangeKind::Tokens));
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
        // The customers' latest tokens are now refused.
        let now = crate::util::now_unix();
        for exp in world.token_expiry.values_mut() {
            *exp = (*exp).min(now);
        }
        world.feed.send(Change::new(ChangeKind::Tokens));
    }

    /// Sets the agent simulation for engagements created from now on.
    pub fn set_agent_mode(&self, mode: AgentMode) {
        let mut world = self.inner.world();
        world.agent_mode = mode;
        world.feed.send(Change::new(ChangeKind::Agent));
    }

    /// Turns the simulated agent off or on for one engagement. Off: it stays in the chat
    /// but answers nothing (a person answers through [`post_message`](Self::post_message)).
    /// On: it answers again; if it never joined (the mode was off when the engagement was
    /// created) or has left, it joins now and greets, as an AGENT (or a BOT in `Bot` mode).
    pub fn set_engagement_agent(
        &self,
        engagement: &EngagementId,
        on: bool,
    ) -> Result<(), ControlError> {
        let needs_agent = {
            let mut world = self.inner.world();
            let state = ongoing(&mut world, engagement)?;
            let present = state
                .auto_agent
                .as_ref()
                .is_some_and(|a| state.participants.contains(a));
            world.agent_override.insert(engagement.clone(), on);
            world
                .feed
                .send(Change::engagement(ChangeKind::Engagement, engagement));
            on && !present
        };
        if needs_agent {
            crate::agent::join_now(&self.inner, engagement);
        }
        Ok(())
    }

    /// Hands an engagement over from one participant (an agent, bot or supervisor) to a new
    /// AGENT named `to_name`: PARTICIPANT_ADDED for the new agent, then
    /// PARTICIPANT_DISCONNECTED for the one leaving. Handing over from the simulated agent
    /// leaves the chat to the person (the simulation does not follow).
    pub fn hand_over(
        &self,
        engagement: &EngagementId,
        from: &ParticipantId,
        to_name: &str,
    ) -> Result<Participant, ControlError> {
        {
            let mut world = self.inner.world();
            let state = ongoing(&mut world, engagement)?;
            let leaving = state
                .participants
                .iter()
                .find(|p| &p.participant_id == from)
                .ok_or(ControlError::ParticipantNotFound)?;
            if matches!(
                leaving.participant_type,
                ParticipantType::Customer | ParticipantType::System
            ) {
                return Err(ControlError::WrongParticipant);
            }
        }
        let joined = self.add_participant(engagement, ParticipantType::Agent, to_name)?;
        self.remove_participant(engagement, from)?;
        Ok(joined)
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
                created_at: e.created_at.clone(),
                last_updated_at: e.last_updated_at.clone(),
                simulated_agent: e.auto_agent.clone().filter(|a| e.participants.contains(a)),
                simulated_agent_on: world.agent_on(&e.id),
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
        self.post_reply(engagement, sender, text, None)
    }

    /// [`post_message`](Self::post_message) as a reply: `parent` (a message of the
    /// engagement) becomes its `parentMessageId`.
    pub fn post_reply(
        &self,
        engagement: &EngagementId,
        sender: ParticipantType,
        text: &str,
        parent: Option<&MessageId>,
    ) -> Result<RestMessage, ControlError> {
        check_text(text)?;
        let mut world = self.inner.world();
        let state = ongoing(&mut world, engagement)?;
        check_parent(state, parent)?;
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
                parent.cloned(),
            )
            .ok_or(ControlError::EngagementNotFound)
    }

    /// Posts a message as one participant of the engagement (an agent, bot, supervisor or
    /// the customer), optionally as a reply to `parent`.
    pub fn post_message_as(
        &self,
        engagement: &EngagementId,
        participant: &ParticipantId,
        text: &str,
        parent: Option<&MessageId>,
    ) -> Result<RestMessage, ControlError> {
        check_text(text)?;
        let mut world = self.inner.world();
        let state = ongoing(&mut world, engagement)?;
        check_parent(state, parent)?;
        let sender = state
            .participants
            .iter()
            .find(|p| &p.participant_id == participant)
            .cloned()
            .ok_or(ControlError::ParticipantNotFound)?;
        world
            .add_message(
                engagement,
                &sender,
                MessageBody::plain_text(text),
                parent.cloned(),
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

fn check_text(text: &str) -> Result<(), ControlError> {
    let len = text.encode_utf16().count();
    if (1..=4096).contains(&len) {
        Ok(())
    } else {
        Err(ControlError::InvalidText)
    }
}

fn check_parent(state: &EngagementState, parent: Option<&MessageId>) -> Result<(), ControlError> {
    match parent {
        Some(id) if !state.messages.iter().any(|m| &m.message_id == id) => {
            Err(ControlError::MessageNotFound)
        }
        _ => Ok(()),
    }
}

/// A secret's first 4 characters and `…`; only `…` for a secret shorter than 12.
pub(crate) fn mask(secret: &str) -> String {
    if secret.chars().count() < 12 {
        "…".to_owned()
    } else {
        let head: String = secret.chars().take(4).collect();
        format!("{head}…")
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
