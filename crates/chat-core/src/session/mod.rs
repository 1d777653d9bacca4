//! [`Session`]: one chat session as a state machine. Commands and inputs go in, with the time;
//! requests, events, replies and the next deadline come out of [`Session::poll_output`].

mod commands;
mod dispatch;
mod outbox;
mod replies;
mod stream_loop;
mod timers;
mod urls;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;
use crate::engagement::{EngagementState, MessageOrder};
use crate::event::{EngagementInfo, Event, Output, Reply, ReplyValue};
use crate::ids::{EngagementId, RequestId, SessionId};
use crate::outbox::Outbox;
use crate::request::{Method, Request, RequestKind};
use crate::stream::{Cursor, InFlight, Probing, StreamState};
use crate::timer::TimerTable;
use crate::wire::{MappedData, ServerEvent, ShutdownReason};
use crate::{ChatError, Config, InitParams, Token};

/// How long before `exp` the `TOKEN_EXPIRY_REMINDER` fires.
pub const TOKEN_WARNING: Duration = Duration::from_secs(180);
/// Disconnection probes sent before a failed poll is reported.
pub const PROBE_COUNT: u8 = 3;
/// Server events kept for engagements not yet known (their create or join reply is late).
const MAX_ORPHANS: usize = 64;
/// History pages fetched at most to fill one gap after a reconnection.
const MAX_CATCH_UP_PAGES: u32 = 20;

/// What the application keeps to resume a session later (the official SDK keeps it in
/// `sessionStorage`). Serializable, and free of secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resumption {
    /// The session to resume.
    pub session_id: SessionId,
    /// Engagements this session had joined and saw become active.
    #[serde(default)]
    pub active_engagements: Vec<EngagementId>,
    /// The last `messageIndex` delivered per engagement: missed messages after it are fetched
    /// from history once the stream is back.
    #[serde(default)]
    pub last_message_indexes: Vec<(EngagementId, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Created,
    Initializing,
    Ready,
    /// The server no longer knows the session.
    Invalidated,
    ShuttingDown,
    Ended,
}

/// What occupies the official SDK's single activity timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    None,
    Idle,
    Grace,
    Reconnection,
}

/// What a request in flight is for.
#[derive(Debug, Clone)]
enum Pending {
    Init {
        resume: Option<Resumption>,
    },
    CreateEngagement,
    ListEngagements,
    Join(EngagementId),
    Send(EngagementId),
    /// A history page read for a send held in the outbox.
    OutboxCheck,
    History {
        engagement: EngagementId,
        first: bool,
    },
    Disconnect(EngagementId),
    Shutdown,
    Poll,
    Probe,
    CatchUp(EngagementId),
}

#[derive(Debug)]
struct CatchUp {
    engagement: EngagementId,
    fetched: Vec<crate::Message>,
    pages: u32,
}

#[derive(Debug, Clone, Copy)]
struct ShutdownState {
    id: RequestId,
    reason: Option<ShutdownReason>,
    /// Started by the grace timer, not by a command: no reply is due.
    automatic: bool,
    deleted: bool,
}

/// One AXP chat session: its engagements, event stream, token and timers. No I/O.
///
/// Drive it like this: call a command or feed an input, then call
/// [`poll_output`](Self::poll_output) until it returns [`Output::Wait`], carrying out each
/// output; call [`handle_timeout`](Self::handle_timeout) at the deadline of the `Wait`.
/// Every input carries `now`, a monotonic instant; inputs that concern the token also carry
/// the wall-clock time. Many sessions may live in one process: there is no global state.
///
/// ```
/// use std::time::{Instant, SystemTime};
/// use chat_core::{AppKey, Config, InitParams, Output, Session, Token};
///
/// // A token whose payload is {"exp":4000000000}.
/// let token = Token::parse("jwt.e30.eyJleHAiOjQwMDAwMDAwMDB9.sig")?;
/// let params = InitParams::new(
///     "https://na.api.avayacloud.com",
///     "123e4567-e89b-12d3-a456-426614174000",
///     token,
///     AppKey::new("my-appkey"),
/// )?;
/// let mut session = Session::new(params, Config::default())?;
/// let init = session.init(Instant::now(), SystemTime::now())?;
/// match session.poll_output() {
///     Output::Transmit(request) => {
///         assert_eq!(request.id, init);
///         assert!(request.url.ends_with("/sdk/digital/chat/v1/integrations/123e4567-e89b-12d3-a456-426614174000/sessions"));
///         // ... send it, then: session.handle_response(now, request.id, status, &body)
///     }
///     other => panic!("expected a request, got {other:?}"),
/// }
/// # Ok::<(), chat_core::ChatError>(())
/// ```
pub struct Session {
    config: Config,
    base: String,
    token: Token,
    bearer: Arc<str>,
    appkey: Arc<str>,
    display_name: Option<String>,
    session_parameters: Option<MappedData>,

    phase: Phase,
    session_id: Option<SessionId>,
    /// `…/sessions/{id}/events`, built once.
    events_url: Option<String>,
    engagements: Vec<EngagementState>,
    order: MessageOrder,
    orphans: VecDeque<ServerEvent>,
    catch_ups: Vec<CatchUp>,
    shutdown: Option<ShutdownState>,
    outbox: Outbox,

    stream: StreamState,
    in_flight: Option<InFlight>,
    probing: Option<Probing>,
    cursor: Cursor,
    backoff: Backoff,
    /// The stream was interrupted since it last delivered: catch up from history on connect.
    interrupted: bool,

    slot: Slot,
    timers: TimerTable,
    /// A monotonic instant and the wall-clock time at that instant, from the last input
    /// that carried both.
    anchor: Option<(Instant, SystemTime)>,
    /// The latest `now` seen: time never runs backwards inside the core.
    last_now: Option<Instant>,

    pending: Vec<(RequestId, Pending)>,
    next_id: u64,
    out: VecDeque<Output>,
}

impl Session {
    /// A session for these parameters and configuration, checked (ACS-302, ACS-303).
    /// Nothing is sent until [`init`](Self::init) or [`resume`](Self::resume).
    pub fn new(params: InitParams, config: Config) -> Result<Self, ChatError> {
        config.validate()?;
        let host = params.validate()?;
        let base = urls::base(&host, &params.integration_id);
        let backoff = Backoff::new(config.jitter_seed);
        Ok(Self {
            bearer: bearer(&params.token),
            appkey: params.appkey.shared_text(),
            token: params.token,
            display_name: params.display_name,
            session_parameters: params.session_parameters,
            config,
            base,
            phase: Phase::Created,
            session_id: None,
            events_url: None,
            engagements: Vec::new(),
            order: MessageOrder::default(),
            orphans: VecDeque::new(),
            catch_ups: Vec::new(),
            shutdown: None,
            outbox: Outbox::default(),
            stream: StreamState::Closed,
            in_flight: None,
            probing: None,
            cursor: Cursor::default(),
            backoff,
            interrupted: false,
            slot: Slot::None,
            timers: TimerTable::default(),
            anchor: None,
            last_now: None,
            pending: Vec::new(),
            next_id: 0,
            out: VecDeque::new(),
        })
    }

    // -----------------------------------------------------------------------------------------
    // Outputs
    // -----------------------------------------------------------------------------------------

    /// The next thing to do. Call it until it returns [`Output::Wait`] after every command and
    /// input: outputs are queued, never dropped.
    pub fn poll_output(&mut self) -> Output {
        self.out
            .pop_front()
            .unwrap_or_else(|| Output::Wait(self.poll_timeout()))
    }

    /// The next deadline, if any timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    // -----------------------------------------------------------------------------------------
    // State
    // -----------------------------------------------------------------------------------------

    /// The session id, once created or resumed.
    pub fn session_id(&self) -> Option<&SessionId> {
        self.session_id.as_ref()
    }

    /// Whether the session is initialized and not shut down.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Whether the session has shut down (`SHUTDOWN` was emitted).
    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// The event stream's state.
    pub fn stream_state(&self) -> StreamState {
        self.stream
    }

    /// The token in use.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// An engagement known to this session (the official `getEngagementById`).
    pub fn engagement(&self, id: &EngagementId) -> Option<&EngagementInfo> {
        self.find(id).map(|e| &self.engagements[e].info)
    }

    /// Every engagement known to this session.
    pub fn engagements(&self) -> impl Iterator<Item = &EngagementInfo> {
        self.engagements.iter().map(|e| &e.info)
    }

    /// What to keep to [`resume`](Self::resume) this session later, once it exists.
    pub fn resumption(&self) -> Option<Resumption> {
        let session_id = self.session_id.clone()?;
        Some(Resumption {
            session_id,
            active_engagements: self
                .engagements
                .iter()
                .filter(|e| e.attached)
                .map(|e| e.info.engagement_id.clone())
                .collect(),
            last_message_indexes: self
                .order
                .last_indexes()
                .map(|(id, i)| (id.clone(), i))
                .collect(),
        })
    }

    // -----------------------------------------------------------------------------------------
    // Plumbing shared by the submodules
    // -----------------------------------------------------------------------------------------

    /// Takes `now` (never earlier than an earlier input's) and fires the timers due by then.
    fn tick(&mut self, now: Instant) -> Instant {
        let now = self.last_now.map_or(now, |last| now.max(last));
        self.last_now = Some(now);
        self.fire_due(now);
        now
    }

    /// The wall-clock time at `now`, from the anchor. Only called after an input that set it.
    fn wall_at(&self, now: Instant) -> SystemTime {
        match self.anchor {
            Some((at, wall)) => wall + now.saturating_duration_since(at),
            None => SystemTime::UNIX_EPOCH,
        }
    }

    fn find(&self, id: &EngagementId) -> Option<usize> {
        self.engagements
            .iter()
            .position(|e| &e.info.engagement_id == id)
    }

    fn emit(&mut self, event: Event) {
        self.out.push_back(Output::Event(event));
    }

    fn reply(&mut self, id: RequestId, result: Result<ReplyValue, ChatError>) {
        self.out.push_back(Output::Reply(Reply { id, result }));
    }

    fn transmit(
        &mut self,
        method: Method,
        url: String,
        body: Option<String>,
        kind: RequestKind,
        pending: Pending,
    ) -> RequestId {
        self.next_id += 1;
        let id = RequestId(self.next_id);
        let timeout = match kind {
            RequestKind::Poll { .. } | RequestKind::Probe => self.config.poll_timeout,
            RequestKind::Rest => self.config.request_timeout,
        };
        let route = match kind {
            RequestKind::Probe => self.session_id.clone(),
            _ => None,
        };
        self.pending.push((id, pending));
        self.out.push_back(Output::Transmit(Request {
            id,
            method,
            url,
            body,
            timeout,
            kind,
            bearer: Arc::clone(&self.bearer),
            appkey: Arc::clone(&self.appkey),
            route,
        }));
        id
    }

    fn abort(&mut self, id: RequestId) {
        if let Some(at) = self.pending.iter().position(|(p, _)| *p == id) {
            self.pending.swap_remove(at);
            self.out.push_back(Output::Abort(id));
        }
    }

    fn take_pending(&mut self, id: RequestId) -> Option<Pending> {
        let at = self.pending.iter().position(|(p, _)| *p == id)?;
        Some(self.pending.swap_remove(at).1)
    }

    fn require_ready(&self) -> Result<&SessionId, ChatError> {
        match (self.phase, &self.session_id) {
            (Phase::Ready, Some(sid)) => Ok(sid),
            (Phase::Invalidated, _) => Err(ChatError::SessionNotFound),
            _ => Err(ChatError::NotInitialized),
        }
    }
}

impl std::fmt::Debug for Session {
    // By hand: the session holds the bearer header and the appkey, which must never show.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("base", &self.base)
            .field("phase", &self.phase)
            .field("session_id", &self.session_id)
            .field("token", &self.token)
            .field("stream", &self.stream)
            .field("engagements", &self.engagements)
            .field("pending", &self.pending)
            .field("next_deadline", &self.timers.next())
            .finish_non_exhaustive()
    }
}

fn bearer(token: &Token) -> Arc<str> {
    Arc::from(format!("Bearer {}", token.expose()))
}
