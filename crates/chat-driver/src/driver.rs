//! [`Driver`]: a [`Session`] with what every client adds around it, still without I/O.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use chat_core::{
    ChatError, EndReason, EngagementId, EngagementInfo, Footprint, Output, PollOutcome, ReplyValue,
    Request, RequestId, Resumption, Session, SessionId, Snapshot, StreamState, Token,
    TransportError,
};

use crate::events::EventQueue;
use crate::saving::{LeaseClock, SAVE_RETRY, SaveError, SaveTicket, Saving};
use crate::{BoxError, Call, ChatEvent, Error, ProviderError};

/// What the adapter does next; see [`Driver::poll_action`].
#[derive(Debug)]
pub enum Action<W> {
    /// Send this request: a poll ([`RequestKind::Poll`](chat_core::RequestKind::Poll)) on
    /// the event stream's transport, reported with [`Driver::handle_poll`]; anything else
    /// over HTTP, reported with [`Driver::handle_response`] or [`Driver::handle_failure`].
    Transmit(Request),
    /// Abandon a request sent earlier (the driver has settled it already): cancel it, and
    /// drop the stream's persistent connection if it was the poll.
    Abort(RequestId),
    /// Call the token provider, then report with [`Driver::handle_token`].
    FetchToken(RequestId),
    /// A call has completed: hand the result to whoever waits on `W`.
    Complete(W, Result<ReplyValue, Error>),
    /// Write the session's snapshot to the store (`Some`, JSON), or remove it (`None`: the
    /// session is over), then report with [`Driver::handle_saved`]. Only for a driver
    /// [`keep_in_store`](Driver::keep_in_store) was called on; one at a time.
    Save(SaveTicket, Option<String>),
    /// Renew the store's lease on the session, then report with
    /// [`Driver::handle_renewed`]. Due every third of the lease's time; a process that could
    /// not renew in time stops driving the session before another may take it over.
    RenewLease,
    /// Nothing more to do now: call [`Driver::handle_timeout`] at this instant (if any), or
    /// sooner when an input comes.
    Wait(Option<Instant>),
}

enum LeaseStep {
    Renew,
    Lost,
    Wait(Option<Instant>),
}

/// A chat session and everything a client keeps around it, with no I/O: the ledger of calls
/// waiting for their reply (each with the adapter's waiter `W`, a oneshot sender or a
/// ticket), the event queue with its timestamps, its backpressure on the event stream and
/// the position of what the application has taken, and the provider's errors kept for the
/// callers they concern.
///
/// Drive it as the core: after every input (a command, a response, a token, the time, an
/// event taken), call [`poll_action`](Self::poll_action) until it returns
/// [`Action::Wait`], carrying out each action. Every rule of the protocol (timeouts, token
/// refresh, 401 replay, reconnection) is chat-core's; the driver adds none.
///
/// ```
/// use std::time::{Instant, SystemTime};
/// use chat_driver::{Action, Call, Driver, Options};
///
/// # fn main() -> Result<(), chat_driver::Error> {
/// let mut options = Options::new(
///     "https://na.api.avayacloud.com",
///     "123e4567-e89b-12d3-a456-426614174000",
///     "my-appkey",
/// );
/// options.token = Some("jwt.e30.eyJleHAiOjQwMDAwMDAwMDB9.sig".to_owned());
/// # #[allow(clippy::disallowed_methods)]
/// let (now, wall) = (Instant::now(), SystemTime::now());
/// let mut driver: Driver<&str> = Driver::new(now, wall, options.session(false)?, options.capacity);
/// driver.call(now, Call::Init(None), "init waiter").map_err(|(_, e)| e)?;
/// let Action::Transmit(request) = driver.poll_action() else { unreachable!() };
/// let answer = br#"{"sessionId":"5e55e55e-0000-4000-8000-000000000001","engagements":[]}"#;
/// driver.handle_response(now, request.id, 201, answer);
/// loop {
///     match driver.poll_action() {
///         Action::Complete(waiter, result) => assert!(waiter == "init waiter" && result.is_ok()),
///         Action::Wait(_) => break,
///         _ => {}
///     }
/// }
/// assert_eq!(driver.take_event(now).map(|e| e.name()), Some("INITIALIZED"));
/// # Ok(())
/// # }
/// ```
pub struct Driver<W> {
    session: Session,
    waiting: HashMap<RequestId, W>,
    events: EventQueue,
    /// The queue is full: the session holds its event stream back.
    holding: bool,
    /// The monotonic instant and wall-clock time the client started at.
    clock: (Instant, SystemTime),
    last_now: Instant,
    /// Why the provider's last call failed, for the callers it fails.
    provider_error: Option<ProviderError>,
    completions: VecDeque<(W, Result<ReplyValue, Error>)>,
    /// With a store: what was saved, what is due.
    saving: Option<Saving>,
}

impl<W> std::fmt::Debug for Driver<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("session", &self.session)
            .field("waiting", &self.waiting.len())
            .field("queued", &self.events.len())
            .field("holding", &self.holding)
            .finish_non_exhaustive()
    }
}

impl<W> Driver<W> {
    /// A driver starting at `now` (the wall clock then reads `wall`) for `session`, its event
    /// queue `capacity` long.
    pub fn new(now: Instant, wall: SystemTime, session: Session, capacity: usize) -> Self {
        Self {
            session,
            waiting: HashMap::new(),
            events: EventQueue::new(capacity),
            holding: false,
            clock: (now, wall),
            last_now: now,
            provider_error: None,
            completions: VecDeque::new(),
            saving: None,
        }
    }

    /// Keeps the session in a store: from now on [`poll_action`](Self::poll_action) asks
    /// for the snapshot to be saved whenever it changed ([`Action::Save`]). `customer` is
    /// the application's label for whom the session belongs to, written into every
    /// snapshot. The session's configuration should have
    /// [`write_ahead`](chat_core::Config::write_ahead) on, so that no send goes out before
    /// it is saved.
    pub fn keep_in_store(&mut self, customer: Option<String>) {
        self.saving = Some(Saving {
            customer,
            ..Saving::default()
        });
    }

    /// The store holds the session under `lease`, claimed at `since` (when the claim was
    /// sent) for `ttl`: the driver renews it ([`Action::RenewLease`]) and stops the session
    /// ([`Session::abandon`]) if a renewal did not succeed before the lease may have lapsed.
    pub fn hold_lease(&mut self, since: Instant, lease: chat_store::Lease, ttl: Duration) {
        if let Some(saving) = &mut self.saving {
            saving.lease = Some(LeaseClock::new(since, lease, ttl));
        }
    }

    /// The store's lease this client holds the session under, while it holds it: what an
    /// application's own transaction checks (`chat_store::sqlite::fence`) before it records
    /// a position itself.
    pub fn lease(&self) -> Option<&chat_store::Lease> {
        self.saving
            .as_ref()
            .and_then(|s| s.lease.as_ref())
            .map(|l| &l.lease)
    }

    /// The store's answer to [`Action::RenewLease`].
    pub fn handle_renewed(&mut self, now: Instant, result: Result<(), SaveError>) {
        let (now, _) = self.at(now);
        let Some(lease) = self.saving.as_mut().and_then(|s| s.lease.as_mut()) else {
            return;
        };
        let started = lease.renewing.take().unwrap_or(now);
        match result {
            Ok(()) => {
                lease.valid_until = started + lease.ttl;
                lease.next_renewal = started + lease.ttl / 3;
            }
            Err(SaveError::LeaseLost) => self.lose_lease(now),
            Err(SaveError::Failed(e)) => {
                tracing::warn!(error = %e, "renewing the store's lease failed; trying again");
                lease.next_renewal = now + SAVE_RETRY;
            }
        }
    }

    fn lose_lease(&mut self, now: Instant) {
        tracing::warn!("the store's lease is lost: another process may drive the session now");
        self.saving = None;
        self.session.abandon(now);
    }

    /// A renewal due now, the lease run out, or when to look again.
    fn lease_step(&mut self, now: Instant) -> LeaseStep {
        let Some(lease) = self.saving.as_mut().and_then(|s| s.lease.as_mut()) else {
            return LeaseStep::Wait(None);
        };
        if now >= lease.valid_until {
            self.lose_lease(now);
            return LeaseStep::Lost;
        }
        if lease.renewing.is_none() && now >= lease.next_renewal {
            lease.renewing = Some(now);
            return LeaseStep::Renew;
        }
        LeaseStep::Wait(Some(match lease.renewing {
            Some(_) => lease.valid_until,
            None => lease.next_renewal.min(lease.valid_until),
        }))
    }

    /// The application records the positions of what it takes itself, in its own
    /// transaction (the exactly-once recipe): the record keeps the positions the session was
    /// restored with (`restored`), and taking an event never moves them, so that the record
    /// can never be ahead of the application's own commit. Call after
    /// [`keep_in_store`](Self::keep_in_store).
    pub fn positions_by_app(&mut self, restored: Vec<(EngagementId, u64)>) {
        if let Some(saving) = &mut self.saving {
            saving.positions_by_app = Some(restored);
        }
    }

    /// What the store should hold now: the core's snapshot, its positions lowered to what
    /// the application has taken (or those it was restored with, when the application
    /// records positions itself), with the customer's label.
    pub fn snapshot(&self) -> Snapshot {
        let mut snapshot = self.session.snapshot();
        if let Some(r) = &mut snapshot.resumption {
            match self
                .saving
                .as_ref()
                .and_then(|s| s.positions_by_app.as_ref())
            {
                Some(restored) => r.last_message_indexes.clone_from(restored),
                None => self.events.lower_to_taken(r),
            }
        }
        snapshot.customer = self.saving.as_ref().and_then(|s| s.customer.clone());
        snapshot
    }

    /// The store's answer to [`Action::Save`]. A lost lease stops the session at once
    /// ([`Session::abandon`]): another process drives it now. Any other failure is tried
    /// again shortly; the sends that wait for it wait on.
    pub fn handle_saved(
        &mut self,
        now: Instant,
        ticket: SaveTicket,
        result: Result<(), SaveError>,
    ) {
        let (now, _) = self.at(now);
        let Some(saving) = &mut self.saving else {
            return;
        };
        saving.in_flight = None;
        match result {
            Ok(()) => {
                saving.saved = Some(ticket);
                saving.retry_at = None;
                if ticket.taken == saving.taken {
                    saving.positions_since = None;
                }
                self.session.handle_saved(now, ticket.version);
            }
            Err(SaveError::LeaseLost) => self.lose_lease(now),
            Err(SaveError::Failed(e)) => {
                tracing::warn!(error = %e, "saving the session failed; trying again");
                saving.retry_at = Some(now + SAVE_RETRY);
            }
        }
    }

    /// The save due now, if any, else when the next one is due.
    fn next_save(&mut self, now: Instant) -> Result<Action<W>, Option<Instant>> {
        let version = self.session.snapshot_version();
        let over = self.session.is_ended();
        let Some(saving) = &self.saving else {
            return Err(None);
        };
        // Nothing is written before the session exists: a restored session's id comes with
        // the resume's answer, and a snapshot saved before it would replace what the store
        // holds (the session, its chats, their positions) with nothing, so that a process
        // killed then, or a connect that fails, would leave the next one a fresh start.
        if !over && self.session.resumption().is_none() {
            return Err(None);
        }
        let due = saving.due(now, version).ok_or(None)?;
        if due > now {
            return Err(Some(due));
        }
        let ticket = SaveTicket {
            version,
            taken: saving.taken,
        };
        let record = (!over).then(|| self.snapshot().to_json());
        if let Some(saving) = &mut self.saving {
            saving.in_flight = Some(ticket);
        }
        Ok(Action::Save(ticket, record))
    }

    fn wall(&self, now: Instant) -> SystemTime {
        self.clock.1 + now.saturating_duration_since(self.clock.0)
    }

    fn at(&mut self, now: Instant) -> (Instant, SystemTime) {
        let now = now.max(self.last_now);
        self.last_now = now;
        (now, self.wall(now))
    }

    // -----------------------------------------------------------------------------------------
    // Commands
    // -----------------------------------------------------------------------------------------

    /// Starts a call; its result comes as [`Action::Complete`] with `waiter`. A call refused
    /// at once gives the waiter back with the error.
    pub fn call(&mut self, now: Instant, call: Call, waiter: W) -> Result<(), (W, Error)> {
        let (now, wall) = self.at(now);
        if let Some(reason) = self.session.end_reason() {
            return Err((waiter, Error::Closed(Some(reason))));
        }
        match call.start(&mut self.session, now, wall) {
            Ok(id) => {
                self.waiting.insert(id, waiter);
                Ok(())
            }
            Err(e) => Err((waiter, Error::Chat(e))),
        }
    }

    /// Replaces the token (`setJwtToken`): no network call.
    pub fn set_token(&mut self, now: Instant, token: &str) -> Result<(), Error> {
        let (now, wall) = self.at(now);
        let token = Token::parse(token)?;
        self.closed_error()?;
        Ok(self.session.set_token(now, wall, token)?)
    }

    /// Retries the event stream now (`retryConnection`).
    pub fn retry_connection(&mut self, now: Instant) -> Result<(), Error> {
        let (now, _) = self.at(now);
        self.closed_error()?;
        Ok(self.session.retry_connection(now)?)
    }

    /// Customer activity (`resetIdleTimeout`); [`Error::Closed`] once the session is over.
    pub fn reset_idle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        let (now, _) = self.at(now);
        self.closed_error()?;
        self.session.reset_idle_timeout(now);
        Ok(())
    }

    fn closed_error(&self) -> Result<(), Error> {
        match self.session.end_reason() {
            Some(reason) => Err(Error::Closed(Some(reason))),
            None => Ok(()),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Inputs
    // -----------------------------------------------------------------------------------------

    /// The response to a REST call or probe.
    pub fn handle_response(&mut self, now: Instant, id: RequestId, status: u16, body: &[u8]) {
        let (now, _) = self.at(now);
        self.session.handle_response(now, id, status, body);
    }

    /// A REST call or probe got no response.
    pub fn handle_failure(&mut self, now: Instant, id: RequestId, error: TransportError) {
        let (now, _) = self.at(now);
        self.session.handle_failure(now, id, error);
    }

    /// How a poll ended.
    pub fn handle_poll(&mut self, now: Instant, id: RequestId, outcome: PollOutcome) {
        let (now, _) = self.at(now);
        self.session.handle_poll(now, id, &outcome);
    }

    /// The token provider's answer to [`Action::FetchToken`].
    pub fn handle_token(&mut self, now: Instant, id: RequestId, token: Result<String, BoxError>) {
        let (now, wall) = self.at(now);
        match token {
            Ok(text) => {
                if let Err(e) = self.session.handle_token(now, wall, id, &text) {
                    self.provider_error = Some(ProviderError::message(format!(
                        "it gave an unusable token: {e}"
                    )));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "the token provider failed");
                self.provider_error = Some(ProviderError::new(e));
                self.session.handle_token_failure(now, id);
            }
        }
    }

    /// A test rig's clock jump: see [`Session::defer_request_timeouts`].
    pub fn defer_request_timeouts(&mut self, by: std::time::Duration) {
        self.session.defer_request_timeouts(by);
    }

    /// The passing of time.
    pub fn handle_timeout(&mut self, now: Instant) {
        let (now, _) = self.at(now);
        self.session.handle_timeout(now);
    }

    // -----------------------------------------------------------------------------------------
    // Outputs
    // -----------------------------------------------------------------------------------------

    /// The next thing to do; call it until it returns [`Action::Wait`].
    #[must_use]
    pub fn poll_action(&mut self) -> Action<W> {
        loop {
            if let Some((w, result)) = self.completions.pop_front() {
                return Action::Complete(w, result);
            }
            match self.session.poll_output() {
                Output::Transmit(request) => return Action::Transmit(request),
                Output::Abort(id) => return Action::Abort(id),
                Output::FetchToken(id) => {
                    self.provider_error = None;
                    return Action::FetchToken(id);
                }
                Output::Reply(reply) => {
                    let Some(waiter) = self.waiting.remove(&reply.id) else {
                        continue;
                    };
                    let result = reply.result.map_err(|e| self.error_of(e));
                    return Action::Complete(waiter, result);
                }
                Output::Event(event) => {
                    let at = self.wall(self.last_now);
                    self.events.push(ChatEvent { event, at });
                    if self.events.is_full() && !self.holding {
                        // Backpressure: no poll goes out until the application takes an
                        // event; the server keeps what is not acknowledged.
                        self.holding = true;
                        self.session.hold_stream(self.last_now, true);
                    }
                }
                Output::Wait(deadline) => {
                    let now = self.last_now;
                    let lease = match self.lease_step(now) {
                        LeaseStep::Renew => return Action::RenewLease,
                        // The session stopped: its last outputs come first.
                        LeaseStep::Lost => continue,
                        LeaseStep::Wait(at) => at,
                    };
                    let save = match self.next_save(now) {
                        Ok(save) => return save,
                        Err(at) => at,
                    };
                    let earliest = [deadline, lease, save].into_iter().flatten().min();
                    return Action::Wait(earliest);
                }
            }
        }
    }

    fn error_of(&self, e: ChatError) -> Error {
        match e {
            ChatError::TokenUnavailable => Error::TokenProvider(
                self.provider_error
                    .clone()
                    .unwrap_or_else(|| ProviderError::message("it did not answer in time")),
            ),
            e => Error::Chat(e),
        }
    }

    /// The next event for the application, if one is queued. Taking it moves the position
    /// [`resumption`](Self::resumption) reports, and may let a held stream answer in.
    pub fn take_event(&mut self, now: Instant) -> Option<ChatEvent> {
        let event = self.events.pop()?;
        if let Some(saving) = self
            .saving
            .as_mut()
            .filter(|s| s.positions_by_app.is_none())
        {
            if matches!(
                event.event,
                chat_core::Event::MessageArrived(_) | chat_core::Event::MessageDelivered(_)
            ) {
                saving.taken += 1;
                let now = now.max(self.last_now);
                saving.positions_since.get_or_insert(now);
            }
        }
        self.release(now);
        Some(event)
    }

    fn release(&mut self, now: Instant) {
        if self.holding && !self.events.is_full() {
            self.holding = false;
            let (now, _) = self.at(now);
            self.session.hold_stream(now, false);
        }
    }

    /// Whether the event stream is held back by a full queue: taking an event then lets it
    /// go on, and the adapter must drain the actions that follow.
    pub fn is_holding(&self) -> bool {
        self.holding
    }

    /// Events queued for the application.
    pub fn queued(&self) -> usize {
        self.events.len()
    }

    /// Writes the `Debug` form of an adapter's event receiver: how many events are queued,
    /// and whether the stream is held back for want of room.
    pub fn fmt_event_stream(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("queued", &self.queued())
            .field("holding", &self.holding)
            .finish_non_exhaustive()
    }

    /// The application's receiver is gone: events are no longer kept, and the stream is no
    /// longer held back.
    pub fn close_events(&mut self, now: Instant) {
        self.events.close();
        self.release(now);
    }

    /// Whether the session is over and every event has been taken: nothing more will come.
    pub fn is_finished(&self) -> bool {
        self.session.is_ended() && self.events.len() == 0
    }

    /// Stops: every call still waiting is given back, to be answered with
    /// [`Error::Closed`]. For an adapter that stops before the session has ended (every
    /// handle dropped).
    pub fn stop(&mut self) -> Vec<(W, Error)> {
        let reason = self.session.end_reason();
        self.completions
            .drain(..)
            .map(|(w, _)| (w, Error::Closed(reason)))
            .chain(
                self.waiting
                    .drain()
                    .map(|(_, w)| (w, Error::Closed(reason))),
            )
            .collect()
    }

    // -----------------------------------------------------------------------------------------
    // Reads
    // -----------------------------------------------------------------------------------------

    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session id, once created.
    pub fn session_id(&self) -> Option<&SessionId> {
        self.session.session_id()
    }

    /// An engagement this session knows.
    pub fn engagement(&self, id: &EngagementId) -> Option<EngagementInfo> {
        self.session.engagement(id).cloned()
    }

    /// Every engagement this session knows.
    pub fn engagements(&self) -> Vec<EngagementInfo> {
        self.session.engagements().cloned().collect()
    }

    /// The event stream's state.
    pub fn stream_state(&self) -> StreamState {
        self.session.stream_state()
    }

    /// How much the session holds of what the server sent (see [`Footprint`]); the events
    /// queued for the application are [`queued`](Self::queued).
    pub fn footprint(&self) -> Footprint {
        self.session.footprint()
    }

    /// Why the session ended, once it has.
    pub fn end_reason(&self) -> Option<EndReason> {
        self.session.end_reason()
    }

    /// What to keep to resume the session later: positions of what the application has
    /// *taken*, so that a message still queued when it is saved comes again after the
    /// resume. `None` once the session is over.
    pub fn resumption(&self) -> Option<Resumption> {
        let mut r = self.session.resumption()?;
        self.events.lower_to_taken(&mut r);
        Some(r)
    }
}
