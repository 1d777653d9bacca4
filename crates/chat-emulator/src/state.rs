//! The emulator's state: integrations, access tokens, sessions with their event queues,
//! engagements with their messages. One mutex guards it; it is never held across an await.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chat_core::wire::{
    Dialog, Engagement, EngagementStatus, MappedData, Participant, ParticipantType, RestMessage,
    ServerEvent, ServerEventType, Session,
};
use chat_core::{DialogId, EngagementId, ParticipantId, SessionId};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::agent::AgentMode;
use crate::faults::Faults;
use crate::jwt::Signer;
use crate::live::{Change, ChangeKind, Feed, Streams};
use crate::util::iso_now;

/// Unacknowledged events kept per session; older ones are dropped beyond this.
pub(crate) const MAX_QUEUED_EVENTS: usize = 10_000;

/// Settings fixed at start.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) hold_time: Duration,
    pub(crate) allow_short_token_ttl: bool,
    pub(crate) chat_token_ttl: Option<Duration>,
    pub(crate) access_token_ttl: Duration,
    pub(crate) join_delay: Duration,
    pub(crate) reply_delay: Duration,
    pub(crate) ws_ping_interval: Duration,
    pub(crate) base_url: String,
    pub(crate) scheme: &'static str,
}

/// Account-level secrets and ids.
#[derive(Clone)]
pub(crate) struct Secrets {
    pub(crate) account_id: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) appkey: String,
    pub(crate) integration_id: String,
    pub(crate) control_key: String,
}

/// Counters behind [`crate::Stats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) oauth_calls: AtomicU64,
    pub(crate) token_calls: AtomicU64,
    pub(crate) tokens_minted: AtomicU64,
    pub(crate) polls: AtomicU64,
    pub(crate) ws_connections: AtomicU64,
    pub(crate) chat_requests: AtomicU64,
    pub(crate) events_delivered: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Everything shared by the handlers, the agent and the control handle.
pub(crate) struct Inner {
    pub(crate) settings: Settings,
    pub(crate) secrets: Secrets,
    pub(crate) signer: Signer,
    pub(crate) world: Mutex<World>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) counters: Counters,
    pub(crate) shutdown: watch::Sender<bool>,
}

impl Inner {
    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves when the emulator shuts down.
    pub(crate) async fn shutting_down(&self) {
        let mut rx = self.shutdown.subscribe();
        // An error means the sender is gone, which also means shutdown.
        let _ = rx.wait_for(|down| *down).await;
    }
}

/// A provisioned chat integration.
#[derive(Debug, Clone)]
pub(crate) struct Integration {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) settings: serde_json::Value,
    pub(crate) created_at: String,
}

/// Who a customer is: the same id *and* the same verified flag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CustomerKey {
    pub(crate) integration_id: String,
    pub(crate) customer_id: String,
    pub(crate) verified: bool,
}

/// One queued event.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    pub(crate) seq: u64,
    pub(crate) event: ServerEvent,
}

/// A chat session and its event queue.
#[derive(Debug)]
pub(crate) struct SessionState {
    pub(crate) id: SessionId,
    pub(crate) customer: CustomerKey,
    pub(crate) display_name: Option<String>,
    pub(crate) session_parameters: Option<MappedData>,
    pub(crate) events: VecDeque<Queued>,
    pub(crate) notify: Arc<Notify>,
    /// The live feed, told when the client acknowledges events.
    pub(crate) feed: Feed,
}

impl SessionState {
    /// Drops the events `seq <= upto`: the client has acknowledged them.
    pub(crate) fn acknowledge(&mut self, upto: u64) {
        let before = self.events.len();
        while self.events.front().is_some_and(|q| q.seq <= upto) {
            self.events.pop_front();
        }
        if self.events.len() != before {
            self.feed.send(Change {
                session_id: Some(self.id.clone()),
                ..Change::new(ChangeKind::Message)
            });
        }
    }

    /// The queued events after `after`, in order.
    pub(crate) fn events_after(&self, after: u64) -> Vec<&Queued> {
        self.events.iter().filter(|q| q.seq > after).collect()
    }
}

/// An engagement (one chat) with its single dialog.
#[derive(Debug)]
pub(crate) struct EngagementState {
    pub(crate) id: EngagementId,
    pub(crate) dialog_id: DialogId,
    pub(crate) customer: CustomerKey,
    pub(crate) customer_participant: Participant,
    pub(crate) participants: Vec<Participant>,
    pub(crate) status: EngagementStatus,
    /// Sessions that created or joined it and receive its events.
    pub(crate) members: Vec<SessionId>,
    pub(crate) messages: Vec<RestMessage>,
    pub(crate) created_at: String,
    pub(crate) last_updated_at: String,
    pub(crate) seq: u64,
    pub(crate) parameters: MappedData,
    /// The participant the agent simulation speaks as, once it joined.
    pub(crate) auto_agent: Option<Participant>,
}

impl EngagementState {
    pub(crate) fn ongoing(&self) -> bool {
        self.status != EngagementStatus::Terminated
    }

    pub(crate) fn to_wire(&self) -> Engagement {
        Engagement {
            engagement_id: self.id.clone(),
            dialogs: vec![Dialog {
                dialog_id: self.dialog_id.clone(),
                dialog_status: self.status,
                participants: self.participants.clone(),
                created_at: Some(self.created_at.clone()),
                last_updated_at: Some(self.last_updated_at.clone()),
            }],
        }
    }

    pub(crate) fn touch(&mut self) {
        self.last_updated_at = iso_now();
    }

    /// A bare event about this engagement; the id is assigned when it is queued.
    pub(crate) fn event(&self, event_type: ServerEventType) -> ServerEvent {
        ServerEvent {
            event_id: String::new(),
            event_type,
            engagement_id: Some(self.id.clone()),
            dialog_id: Some(self.dialog_id.clone()),
            event_date: Some(iso_now()),
            session_id: None,
            message: None,
            participant: None,
            error: None,
        }
    }
}

/// The mutable state.
pub(crate) struct World {
    pub(crate) integrations: BTreeMap<String, Integration>,
    /// OAuth access token → its expiry.
    pub(crate) access_tokens: HashMap<String, Instant>,
    pub(crate) sessions: HashMap<SessionId, SessionState>,
    pub(crate) engagements: HashMap<EngagementId, EngagementState>,
    /// Chat tokens whose `gen` claim is below this are refused (expired or revoked).
    pub(crate) min_token_generation: u64,
    /// Why tokens below `min_token_generation` are refused.
    pub(crate) revocation_detail: &'static str,
    pub(crate) next_seq: u64,
    pub(crate) agent_mode: AgentMode,
    /// Engagements whose simulated agent was turned off (it stays, but answers nothing) or
    /// on, whatever the mode.
    pub(crate) agent_override: HashMap<EngagementId, bool>,
    /// The live change feed.
    pub(crate) feed: Feed,
    /// Open long polls and WebSockets per session.
    pub(crate) streams: HashMap<SessionId, Streams>,
    /// The expiry (`exp`) of the latest chat token each customer presented.
    pub(crate) token_expiry: HashMap<CustomerKey, u64>,
}

impl World {
    pub(crate) fn new(agent_mode: AgentMode) -> Self {
        Self {
            integrations: BTreeMap::new(),
            access_tokens: HashMap::new(),
            sessions: HashMap::new(),
            engagements: HashMap::new(),
            min_token_generation: 0,
            revocation_detail: "Token revoked",
            next_seq: 1,
            agent_mode,
            agent_override: HashMap::new(),
            feed: Feed::default(),
            streams: HashMap::new(),
            token_expiry: HashMap::new(),
        }
    }

    /// Whether the simulated agent answers in this engagement: as turned on or off for it,
    /// else as the mode says.
    pub(crate) fn agent_on(&self, engagement: &EngagementId) -> bool {
        self.agent_override
            .get(engagement)
            .copied()
            .unwrap_or(self.agent_mode != AgentMode::Off)
    }

    fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Queues `event` for one session and wakes its pollers.
    pub(crate) fn push_event(&mut self, session: &SessionId, mut event: ServerEvent) {
        let seq = self.next_seq();
        let Some(state) = self.sessions.get_mut(session) else {
            return;
        };
        event.event_id = seq.to_string();
        event.session_id = Some(session.clone());
        let kind = if event.message.is_some() {
            ChangeKind::Message
        } else {
            ChangeKind::Engagement
        };
        let change = match &event.engagement_id {
            Some(engagement) => Change::engagement(kind, engagement),
            None => Change::session(session),
        };
        self.feed.send(change);
        state.events.push_back(Queued { seq, event });
        while state.events.len() > MAX_QUEUED_EVENTS {
            state.events.pop_front();
        }
        state.notify.notify_waiters();
    }

    /// Queues `event` for every member session of an engagement.
    pub(crate) fn broadcast(&mut self, engagement: &EngagementId, event: ServerEvent) {
        let members = self
            .engagements
            .get(engagement)
            .map(|e| e.members.clone())
            .unwrap_or_default();
        for sid in members {
            self.push_event(&sid, event.clone());
        }
    }

    /// The wire form of a session: the customer's ongoing engagements, across their sessions.
    pub(crate) fn session_wire(&self, session: &SessionState) -> Session {
        let mut engagements: Vec<&EngagementState> = self
            .engagements
            .values()
            .filter(|e| e.customer == session.customer && e.ongoing())
            .collect();
        engagements.sort_by_key(|e| e.seq);
        Session {
            session_id: session.id.clone(),
            display_name: session.display_name.clone(),
            session_parameters: session.session_parameters.clone(),
            engagements: engagements.iter().map(|e| e.to_wire()).collect(),
        }
    }

    /// Appends a message to an engagement and queues its MESSAGE event to the members.
    pub(crate) fn add_message(
        &mut self,
        engagement: &EngagementId,
        sender: &Participant,
        body: chat_core::wire::MessageBody,
        parent: Option<chat_core::MessageId>,
    ) -> Option<RestMessage> {
        let state = self.engagements.get_mut(engagement)?;
        let now = iso_now();
        let message = RestMessage {
            message_id: chat_core::MessageId::new(crate::util::new_uuid()),
            dialog_id: state.dialog_id.clone(),
            engagement_id: state.id.clone(),
            body,
            message_index: state.messages.len() as u64 + 1,
            parent_message_id: parent,
            sender_participant_id: sender.participant_id.clone(),
            participant_type: sender.participant_type,
            display_name: sender.display_name.clone(),
            received_at: Some(now.clone()),
            last_updated_at: Some(now),
        };
        state.messages.push(message.clone());
        state.touch();
        let mut event = state.event(ServerEventType::Message);
        event.message = Some(chat_core::wire::EventMessage {
            message_id: message.message_id.clone(),
            parent_message_id: message.parent_message_id.clone(),
            message_index: message.message_index,
            received_at: message.received_at.clone(),
            last_updated_at: message.last_updated_at.clone(),
            body: message.body.clone(),
        });
        event.participant = Some(sender.clone());
        self.broadcast(engagement, event);
        Some(message)
    }

    /// Adds a participant and queues PARTICIPANT_ADDED; an agent or bot activates the dialog.
    pub(crate) fn add_participant(
        &mut self,
        engagement: &EngagementId,
        participant_type: ParticipantType,
        display_name: Option<String>,
    ) -> Option<Participant> {
        let state = self.engagements.get_mut(engagement)?;
        let participant = Participant {
            participant_id: ParticipantId::new(crate::util::new_uuid()),
            participant_type,
            display_name,
        };
        state.participants.push(participant.clone());
        if state.status == EngagementStatus::Pending
            && matches!(
                participant_type,
                ParticipantType::Agent | ParticipantType::Bot | ParticipantType::Supervisor
            )
        {
            state.status = EngagementStatus::Active;
        }
        state.touch();
        let mut event = state.event(ServerEventType::ParticipantAdded);
        event.participant = Some(participant.clone());
        self.broadcast(engagement, event);
        Some(participant)
    }

    /// Ends an engagement from the contact-center side: everyone else leaves, then the customer.
    pub(crate) fn end_engagement(&mut self, engagement: &EngagementId) -> bool {
        let Some(state) = self.engagements.get_mut(engagement) else {
            return false;
        };
        if !state.ongoing() {
            return false;
        }
        let others: Vec<Participant> = state
            .participants
            .iter()
            .filter(|p| p.participant_id != state.customer_participant.participant_id)
            .cloned()
            .collect();
        let customer = state.customer_participant.clone();
        let mut events = Vec::new();
        for p in others.into_iter().chain(std::iter::once(customer)) {
            let mut event = state.event(ServerEventType::ParticipantDisconnected);
            event.participant = Some(p);
            events.push(event);
        }
        state.participants.clear();
        state.status = EngagementStatus::Terminated;
        state.touch();
        for event in events {
            self.broadcast(engagement, event);
        }
        true
    }

    /// Removes a session everywhere and wakes its pollers (they then answer "Session not found").
    pub(crate) fn remove_session(&mut self, session: &SessionId) -> bool {
        let Some(state) = self.sessions.remove(session) else {
            return false;
        };
        for engagement in self.engagements.values_mut() {
            engagement.members.retain(|m| m != session);
        }
        state.notify.notify_waiters();
        self.feed.send(Change::session(session));
        true
    }

    pub(crate) fn new_engagement_seq(&mut self) -> u64 {
        self.next_seq()
    }
}
