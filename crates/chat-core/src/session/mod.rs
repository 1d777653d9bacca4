//! [`Session`]: one chat session as a state machine. Commands and inputs go in, with the time;
//! requests, events, replies and the next deadline come out of [`Session::poll_output`].

mod commands;
mod dispatch;
mod durable;
mod outbox;
mod replies;
mod stream_loop;
mod timers;
mod tokens;
mod urls;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;
use crate::engagement::{EngagementState, MessageOrder};
use crate::event::{EndReason, EngagementInfo, Event, Output, Reply, ReplyValue};
use crate::ids::{EngagementId, RequestId, SessionId};
use crate::outbox::Outbox;
use crate::request::{Method, Request, RequestKind};
use crate::stream::{Cursor, InFlight, Probing, StreamState};
use crate::timer::TimerTable;
use crate::wire::{MappedData, ServerEvent, ShutdownReason};
use crate::{ChatError, Config, InitParams, Token};

use self::tokens::Tokens;

/// How long before `exp` the `TOKEN_EXPIRY_REMINDER` fires.
pub const TOKEN_WARNING: Duration = Duration::from_secs(180);
/// Disconnection probes sent before a failed poll is reported.
pub const PROBE_COUNT: u8 = 3;
/// Rounds in a row of "the poll failed but a probe answered": past this, the stream is
/// treated as failing (Retry, with backoff and events) instead of polling and probing on as
/// fast as the server answers.
const MAX_PROBE_PASSES: u8 = 3;
/// Server events kept for engagements not yet known (their create or join reply is late).
pub const MAX_ORPHANS: usize = 64;
/// Live messages held back during catch-ups past which no poll goes out until a catch-up
/// ends: a server that floods the stream while the history is slow cannot make the session
/// hold without bound (one batch may still go past it).
pub const MAX_HELD_MESSAGES: usize = 1024;
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
    /// from history as soon as the session is resumed.
    #[serde(default)]
    pub last_message_indexes: Vec<(EngagementId, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Created,
    Initializing,
    Ready,
    ShuttingDown,
    /// Over: shut down, or the server forgot the session ([`Session::end_reason`]).
    Ended,
}

/// How much a [`Session`] holds of what the server sends, as
/// [`Session::footprint`] counts it: every count is bounded whatever the server sends, which
/// is what a hostile-server test asserts, and what a process holding many sessions may watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Footprint {
    /// Outputs queued, not yet taken with [`Session::poll_output`].
    pub outputs: usize,
    /// Requests in flight.
    pub requests: usize,
    /// Server events kept for engagements not yet known (at most [`MAX_ORPHANS`]).
    pub orphans: usize,
    /// Live messages held back while missed ones are fetched from history: no poll goes
    /// out past [`MAX_HELD_MESSAGES`], so at most that and one batch.
    pub held_messages: usize,
    /// Event ids remembered to drop a batch delivered again (those of the last batch).
    pub seen_event_ids: usize,
    /// Engagements known.
    pub engagements: usize,
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
    /// A chat joined again by the new session that replaced a lost one: no reply is due.
    Rejoin(EngagementId),
    Shutdown,
    Poll,
    Probe,
    CatchUp(EngagementId),
}

impl Pending {
    /// A command of the application's, answered by a [`Reply`] under the request's id.
    fn is_command(&self) -> bool {
        matches!(
            self,
            Self::Init { .. }
                | Self::CreateEngagement
                | Self::ListEngagements
                | Self::Join(_)
                | Self::History { .. }
                | Self::Disconnect(_)
        )
    }
}

/// A request in flight: what it is for, when the core stops waiting for it, and what it
/// takes to send it again after a token refresh (a REST call refused with 401).
#[derive(Debug)]
struct Sent {
    id: RequestId,
    pending: Pending,
    /// `None` only if no input has carried a time yet, which cannot happen: every command
    /// and input takes `now` before it can send anything.
    deadline: Option<Instant>,
    resend: Option<Box<Resend>>,
    /// The `Authorization` it went out with: a 401 to a token already replaced says nothing
    /// about the token in use.
    bearer: Arc<str>,
}

#[derive(Debug)]
struct Resend {
    method: Method,
    url: String,
    body: Option<String>,
    /// Sent once more already: a second 401 is the answer.
    replayed: bool,
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
/// # Driving it
///
/// The methods come in four groups, as in `quinn-proto`:
///
/// - **reads** on `&self` ([`session_id`](Self::session_id), [`engagement`](Self::engagement),
///   [`stream_state`](Self::stream_state), [`resumption`](Self::resumption), …);
/// - **inputs** from the network and the clock, each with `now` first:
///   [`handle_response`](Self::handle_response) and [`handle_failure`](Self::handle_failure) for
///   REST calls and probes, [`handle_poll`](Self::handle_poll) for the event stream,
///   [`handle_token`](Self::handle_token) for the token provider, and
///   [`handle_timeout`](Self::handle_timeout) at the deadline;
/// - **commands** of the application ([`init`](Self::init),
///   [`create_engagement`](Self::create_engagement), [`send_message`](Self::send_message), …),
///   checked at once (a typed `ACS-3xx` error) and completed later by a [`Reply`] under the
///   [`RequestId`] they return;
/// - **outputs**: after every input or command, call [`poll_output`](Self::poll_output) until
///   it returns [`Output::Wait`], carrying out each output.
///
/// `now` is a monotonic instant and never goes backwards (an earlier one is taken as the
/// latest seen); inputs that concern the token also carry the wall-clock time. Every rule of
/// the protocol lives here: request timeouts (the core aborts a request that ran past its
/// timeout and fails it itself), the token's refresh through a provider and the replay of a
/// call refused with 401 ([`Config::token_refresh`]), the stream's states, probes and backoff,
/// the outbox. Many sessions may live in one process: there is no global state.
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
    token: Option<Token>,
    bearer: Arc<str>,
    appkey: Arc<str>,
    user_agent: Arc<str>,
    display_name: Option<String>,
    session_parameters: Option<MappedData>,

    phase: Phase,
    end: Option<EndReason>,
    session_id: Option<SessionId>,
    /// `…/sessions/{id}/events`, built once.
    events_url: Option<String>,
    engagements: Vec<EngagementState>,
    order: MessageOrder,
    orphans: VecDeque<ServerEvent>,
    catch_ups: Vec<CatchUp>,
    shutdown: Option<ShutdownState>,
    outbox: Outbox,
    tokens: Tokens,

    stream: StreamState,
    in_flight: Option<InFlight>,
    probing: Option<Probing>,
    /// Polls in a row that failed although a probe then answered (see `MAX_PROBE_PASSES`).
    probe_passes: u8,
    /// The application is behind ([`Session::hold_stream`]): no poll goes out.
    stream_held: bool,
    /// A poll was due while the stream was held.
    poll_wanted: bool,
    cursor: Cursor,
    backoff: Backoff,
    /// The jitter of the backoff and of the outbox's retries.
    rng: fastrand::Rng,
    /// The stream was interrupted since it last delivered: catch up from history on connect.
    interrupted: bool,

    slot: Slot,
    timers: TimerTable,
    /// A monotonic instant and the wall-clock time at that instant, from the last input
    /// that carried both.
    anchor: Option<(Instant, SystemTime)>,
    /// The latest `now` seen: time never runs backwards inside the core.
    last_now: Option<Instant>,

    requests: Vec<Sent>,
    next_id: u64,
    out: VecDeque<Output>,

    /// See [`Session::snapshot_version`].
    version: u64,
    /// The latest snapshot version the store holds ([`Session::handle_saved`]).
    saved: u64,
    /// Restored from a snapshot: a session the server forgot is replaced, not ended.
    recover: bool,
    /// The chats the replacing session joins once it exists.
    rejoin: Vec<EngagementId>,
    /// A lost session (kept in a store) is being replaced: its init has no caller.
    replacing: bool,
    /// `wait_saved` calls, each with the snapshot version it waits for.
    save_waiters: Vec<(u64, RequestId)>,
}

impl Session {
    /// A session for these parameters and configuration, checked (ACS-302, ACS-303).
    /// Nothing is sent until [`init`](Self::init) or [`resume`](Self::resume).
    pub fn new(params: InitParams, config: Config) -> Result<Self, ChatError> {
        config.validate()?;
        let host = params.validate()?;
        if params.token.is_none() && config.token_refresh.is_none() {
            return Err(ChatError::init_param(
                "a token, or a token provider (Config::token_refresh), is required",
            ));
        }
        let base = urls::base(&host, &params.integration_id);
        let seed = config.jitter_seed.unwrap_or_else(crate::backoff::os_seed);
        Ok(Self {
            bearer: params.token.as_ref().map_or_else(|| Arc::from(""), bearer),
            appkey: params.appkey.shared_text(),
            user_agent: match &params.user_agent {
                Some(product) => Arc::from(format!("{} {product}", crate::request::USER_AGENT)),
                None => Arc::from(crate::request::USER_AGENT),
            },
            token: params.token,
            display_name: params.display_name,
            session_parameters: params.session_parameters,
            config,
            base,
            phase: Phase::Created,
            end: None,
            session_id: None,
            events_url: None,
            engagements: Vec::new(),
            order: MessageOrder::default(),
            orphans: VecDeque::new(),
            catch_ups: Vec::new(),
            shutdown: None,
            outbox: Outbox::default(),
            tokens: Tokens::default(),
            stream: StreamState::Closed,
            in_flight: None,
            probing: None,
            probe_passes: 0,
            stream_held: false,
            poll_wanted: false,
            cursor: Cursor::default(),
            backoff: Backoff::default(),
            rng: fastrand::Rng::with_seed(seed),
            interrupted: false,
            slot: Slot::None,
            timers: TimerTable::default(),
            anchor: None,
            last_now: None,
            requests: Vec::new(),
            next_id: 0,
            out: VecDeque::new(),
            version: 0,
            saved: 0,
            recover: false,
            rejoin: Vec::new(),
            replacing: false,
            save_waiters: Vec::new(),
        })
    }

    // -----------------------------------------------------------------------------------------
    // Outputs
    // -----------------------------------------------------------------------------------------

    /// The next thing to do. Call it until it returns [`Output::Wait`] after every command and
    /// input: outputs are queued, never dropped.
    #[must_use]
    pub fn poll_output(&mut self) -> Output {
        self.out
            .pop_front()
            .unwrap_or_else(|| Output::Wait(self.poll_timeout()))
    }

    /// The next deadline: the earliest timer, or the timeout of a request in flight.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let requests = self.requests.iter().filter_map(|r| r.deadline).min();
        match (self.timers.next(), requests) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // -----------------------------------------------------------------------------------------
    // State
    // -----------------------------------------------------------------------------------------

    /// The session id, once created or resumed.
    pub fn session_id(&self) -> Option<&SessionId> {
        self.session_id.as_ref()
    }

    /// Whether the session is initialized and not over.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Whether the session is over: shut down (`SHUTDOWN` was emitted), or invalidated by the
    /// server. [`end_reason`](Self::end_reason) says which; nothing follows.
    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// Why the session ended, once it has.
    pub fn end_reason(&self) -> Option<EndReason> {
        self.end
    }

    /// The event stream's state.
    pub fn stream_state(&self) -> StreamState {
        self.stream
    }

    /// How much this session holds now of what the server sent (see [`Footprint`]).
    pub fn footprint(&self) -> Footprint {
        Footprint {
            outputs: self.out.len(),
            requests: self.requests.len(),
            orphans: self.orphans.len(),
            held_messages: self.order.held(),
            seen_event_ids: self.cursor.seen(),
            engagements: self.engagements.len(),
        }
    }

    /// The token in use (`None` before the provider gave the first one).
    pub fn token(&self) -> Option<&Token> {
        self.token.as_ref()
    }

    /// An engagement known to this session (the official `getEngagementById`).
    pub fn engagement(&self, id: &EngagementId) -> Option<&EngagementInfo> {
        self.find(id).map(|e| &self.engagements[e].info)
    }

    /// Every engagement known to this session.
    pub fn engagements(&self) -> impl Iterator<Item = &EngagementInfo> {
        self.engagements.iter().map(|e| &e.info)
    }

    /// What to keep to [`resume`](Self::resume) this session later, once it exists and while
    /// it is not over. The positions are those of the messages this session has emitted
    /// (an adapter that queues events for the application lowers them to what it has taken).
    pub fn resumption(&self) -> Option<Resumption> {
        if self.phase == Phase::Ended {
            return None;
        }
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

    /// Takes `now` (never earlier than an earlier input's), fires the timers due by then and
    /// times out the requests past their deadline.
    fn tick(&mut self, now: Instant) -> Instant {
        let now = self.last_now.map_or(now, |last| now.max(last));
        self.last_now = Some(now);
        self.fire_due(now);
        self.expire_requests(now);
        now
    }

    /// The wall-clock time at `now`, from the anchor. Only called after an input that set it.
    fn wall_at(&self, now: Instant) -> SystemTime {
        match self.anchor {
            Some((at, wall)) => wall + now.saturating_duration_since(at),
            None => SystemTime::UNIX_EPOCH,
        }
    }

    /// How long the token has left at `now` (zero without one).
    fn token_remaining(&self, now: Instant) -> Duration {
        self.token
            .as_ref()
            .map_or(Duration::ZERO, |t| t.remaining(self.wall_at(now)))
    }

    fn find(&self, id: &EngagementId) -> Option<usize> {
        self.engagements
            .iter()
            .position(|e| &e.info.engagement_id == id)
    }

    fn emit(&mut self, event: Event) {
        // The events that say the snapshot changed: a session made or over, a chat that
        // became active or ended.
        if matches!(
            event,
            Event::Initialized(_)
                | Event::EngagementActive(_)
                | Event::EngagementTerminated(_)
                | Event::EngagementError { .. }
                | Event::Shutdown { .. }
        ) {
            self.snapshot_changed();
        }
        self.out.push_back(Output::Event(event));
    }

    fn reply(&mut self, id: RequestId, result: Result<ReplyValue, ChatError>) {
        self.out.push_back(Output::Reply(Reply { id, result }));
    }

    fn new_id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId(self.next_id)
    }

    fn transmit(
        &mut self,
        method: Method,
        url: String,
        body: Option<String>,
        kind: RequestKind,
        pending: Pending,
    ) -> RequestId {
        let id = self.new_id();
        self.transmit_as(id, method, url, body, kind, pending);
        id
    }

    /// Sends a request under `id` (a new one, or one sent again after a token refresh).
    fn transmit_as(
        &mut self,
        id: RequestId,
        method: Method,
        url: String,
        body: Option<String>,
        kind: RequestKind,
        pending: Pending,
    ) {
        let timeout = match kind {
            RequestKind::Poll { .. } | RequestKind::Probe => self.config.poll_timeout,
            RequestKind::Rest => self.config.request_timeout,
        };
        let route = match kind {
            RequestKind::Probe => self.session_id.clone(),
            _ => None,
        };
        // What it takes to send a REST call once more after a token refresh: only a
        // session with a token provider needs it; a refused delete ends the session anyway.
        let resend = (self.config.token_refresh.is_some()
            && kind == RequestKind::Rest
            && !matches!(pending, Pending::Shutdown))
        .then(|| {
            Box::new(Resend {
                method,
                url: url.clone(),
                body: body.clone(),
                replayed: false,
            })
        });
        self.requests.push(Sent {
            id,
            pending,
            deadline: self.last_now.map(|now| now + timeout),
            resend,
            bearer: Arc::clone(&self.bearer),
        });
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
            user_agent: Arc::clone(&self.user_agent),
        }));
    }

    fn abort(&mut self, id: RequestId) {
        if let Some(at) = self.requests.iter().position(|r| r.id == id) {
            self.requests.swap_remove(at);
            self.out.push_back(Output::Abort(id));
        }
    }

    fn take_sent(&mut self, id: RequestId) -> Option<Sent> {
        let at = self.requests.iter().position(|r| r.id == id)?;
        Some(self.requests.swap_remove(at))
    }

    fn require_ready(&self) -> Result<&SessionId, ChatError> {
        match (self.phase, &self.session_id) {
            (Phase::Ready, Some(sid)) => Ok(sid),
            (Phase::Ended, _) if self.end == Some(EndReason::SessionInvalidated) => {
                Err(ChatError::SessionNotFound)
            }
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
            .field("end", &self.end)
            .field("session_id", &self.session_id)
            .field("token", &self.token)
            .field("stream", &self.stream)
            .field("engagements", &self.engagements)
            .field("requests", &self.requests.len())
            .field("next_deadline", &self.poll_timeout())
            .finish_non_exhaustive()
    }
}

fn bearer(token: &Token) -> Arc<str> {
    Arc::from(format!("Bearer {}", token.expose()))
}
