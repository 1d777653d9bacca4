//! The loop that drives chat-core, run by whichever caller thread is blocked.
//!
//! The [`Session`] lives in [`State`] behind one mutex. The I/O threads (the stream thread,
//! short-lived REST workers, the token refresh) never touch it: they post their results into
//! one input channel. A caller that waits for something (an event, a command's reply) takes
//! the channel's receiver if nobody holds it and becomes the *leader* for one step: it waits
//! for an input or the next deadline without the lock, feeds it to the session, carries out
//! the outputs, and hands the receiver back. Callers that find the receiver taken wait on
//! the condition variable, which every step notifies. So any thread may call anything, and
//! nothing is left running when nobody calls.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use chat_core::{
    ChatError, EngagementId, EngagementInfo, Event, Output, Reply, ReplyValue, Request, RequestId,
    RequestKind, Session, StreamFailureReason, StreamState, Token, TransportError,
};

use chat_net::{Call, MAX_AUTH_REFRESHES, PROVIDER_RETRY, PROVIDER_TIMEOUT};

use crate::threads;
use crate::transport::{Cancel, EventTransport, HttpTransport, Response};
use crate::{ChatEvent, Error, TokenProvider};

/// A command from a handle.
#[derive(Debug, Clone)]
pub(crate) enum Command {
    /// Completed by the session's reply.
    Call(Call),
    SetToken(Token),
    RetryConnection,
    ResetIdleTimeout,
    RefreshToken,
}

/// What a command produced.
#[derive(Debug)]
pub(crate) enum Answer {
    Reply(Box<ReplyValue>),
    Done,
}

/// What the I/O threads post.
pub(crate) enum Input {
    Io(RequestId, Result<Response, TransportError>),
    /// A token refresh ended (its generation, its outcome).
    Token(u64, Result<Token, Error>),
    /// A command changed the session: recompute the deadline.
    Wake,
}

/// One poll or probe for the stream thread.
pub(crate) struct Job {
    pub(crate) request: Request,
    pub(crate) cancel: Cancel,
    /// Drop the persistent connection first (the previous poll was aborted or failed).
    pub(crate) reset: bool,
}

type Ticket = u64;

struct Waiting {
    ticket: Ticket,
    /// The command, kept to send it again once after a token refresh (401).
    replay: Option<Call>,
}

struct InFlight {
    deadline: Instant,
    /// Polls and probes can be interrupted; REST calls run to their timeout.
    cancel: Option<Cancel>,
}

/// Everything the loop owns, behind [`Shared::state`].
pub(crate) struct State {
    pub(crate) session: Session,
    /// The input channel's receiver; `None` while a leader waits on it.
    rx: Option<Receiver<Input>>,
    tx: Sender<Input>,
    pub(crate) events: VecDeque<ChatEvent>,
    capacity: usize,
    /// The [`Connection`](crate::Connection) is alive: keep events for it.
    pub(crate) events_open: bool,
    /// A stream response kept back while the application is behind (backpressure).
    held: Option<(RequestId, Result<Response, TransportError>)>,
    in_flight: HashMap<RequestId, InFlight>,
    reset_stream: bool,
    core_deadline: Option<Instant>,
    waiting: HashMap<RequestId, Waiting>,
    answers: HashMap<Ticket, Result<Answer, Error>>,
    next_ticket: Ticket,

    provider: Option<Arc<dyn TokenProvider>>,
    refresh_lead: Duration,
    refresh_at: Option<Instant>,
    /// The refresh running: its generation and when it counts as failed.
    refreshing: Option<(u64, Instant)>,
    refresh_generation: u64,
    refresh_waiters: Vec<Ticket>,
    replays: Vec<(Call, Ticket)>,
    auth_refreshes: u32,

    http: Option<Arc<dyn HttpTransport>>,
    stream_jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    pub(crate) stopped: bool,
    start: (Instant, SystemTime),
    /// How far this client's clock is ahead of the real one ([`Client::advance_clock`]).
    ///
    /// [`Client::advance_clock`]: crate::Client::advance_clock
    pub(crate) skew: Duration,
}

/// What the handles share.
pub(crate) struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    wake: Mutex<Sender<Input>>,
}

pub(crate) struct Parts {
    pub(crate) session: Session,
    pub(crate) capacity: usize,
    pub(crate) http: Arc<dyn HttpTransport>,
    pub(crate) events: Box<dyn EventTransport>,
    pub(crate) probes: Box<dyn EventTransport>,
    pub(crate) provider: Option<Arc<dyn TokenProvider>>,
    pub(crate) refresh_lead: Duration,
}

impl Shared {
    /// Starts the stream thread; nothing else runs until a caller drives.
    pub(crate) fn start(parts: Parts) -> std::io::Result<Arc<Self>> {
        let (tx, rx) = mpsc::channel();
        let (jobs_tx, jobs) = mpsc::channel();
        let stream_tx = tx.clone();
        let (mut events, mut probes) = (parts.events, parts.probes);
        let stream = threads::spawn("chat-blocking-stream", move || {
            stream_thread(&jobs, &mut *events, &mut *probes, &stream_tx);
        })?;
        let state = State {
            session: parts.session,
            rx: Some(rx),
            tx: tx.clone(),
            events: VecDeque::new(),
            capacity: parts.capacity,
            events_open: true,
            held: None,
            in_flight: HashMap::new(),
            reset_stream: false,
            core_deadline: None,
            waiting: HashMap::new(),
            answers: HashMap::new(),
            next_ticket: 0,
            provider: parts.provider,
            refresh_lead: parts.refresh_lead,
            refresh_at: None,
            refreshing: None,
            refresh_generation: 0,
            refresh_waiters: Vec::new(),
            replays: Vec::new(),
            auth_refreshes: 0,
            http: Some(parts.http),
            stream_jobs: Some(jobs_tx),
            threads: vec![stream],
            stopped: false,
            start: (Instant::now(), SystemTime::now()),
            skew: Duration::ZERO,
        };
        Ok(Arc::new(Self {
            state: Mutex::new(state),
            changed: Condvar::new(),
            wake: Mutex::new(tx),
        }))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a command and blocks until its answer, driving the loop meanwhile.
    pub(crate) fn call(&self, command: Command) -> Result<Answer, Error> {
        let ticket = {
            let mut st = self.lock();
            if st.stopped {
                return Err(Error::Closed);
            }
            let ticket = st.new_ticket();
            st.command(command, ticket, true);
            st.drain();
            ticket
        };
        self.wake_leader();
        self.wait_for(None, |st| {
            st.answers
                .remove(&ticket)
                .or_else(|| st.stopped.then_some(Err(Error::Closed)))
        })
        .unwrap_or(Err(Error::Closed))
    }

    /// Reads or changes local state, without waiting.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = {
            let mut st = self.lock();
            let r = f(&mut st);
            st.drain();
            r
        };
        self.wake_leader();
        r
    }

    fn wake_leader(&self) {
        let tx = self.wake.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = tx.send(Input::Wake);
    }

    /// Blocks until `ready` gives something or `deadline` passes (then `None`), driving the
    /// loop whenever no other caller does. With a deadline already past, it still takes one
    /// step of whatever input is waiting.
    pub(crate) fn wait_for<R>(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut(&mut State) -> Option<R>,
    ) -> Option<R> {
        let mut st = self.lock();
        let mut stepped = false;
        loop {
            if let Some(r) = ready(&mut st) {
                // Taking an event may have made room for the stream answer held back.
                if st.release_held() {
                    self.changed.notify_all();
                }
                return Some(r);
            }
            let expired = deadline.is_some_and(|d| Instant::now() >= d);
            if expired && stepped {
                return None;
            }
            if st.stopped {
                // Nothing will change any more.
                return None;
            }
            match st.rx.take() {
                Some(rx) => {
                    // The session's deadlines are by the client's clock, the caller's by the
                    // real one.
                    let core = st.next_wait();
                    let caller = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                    let wait = match (core, caller) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    drop(st);
                    let first = receive(&rx, wait);
                    st = self.lock();
                    st.step(first, &rx);
                    st.rx = Some(rx);
                    stepped = true;
                    self.changed.notify_all();
                }
                None if expired => return None,
                None => {
                    st = match deadline {
                        Some(d) => {
                            let left = d.saturating_duration_since(Instant::now());
                            self.changed
                                .wait_timeout(st, left)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0
                        }
                        None => self
                            .changed
                            .wait(st)
                            .unwrap_or_else(PoisonError::into_inner),
                    };
                }
            }
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last handle and the connection are gone: stop every thread, without deleting
        // the session (it can be resumed).
        let st = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        st.stop();
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The next input, or `None` after `wait`.
fn receive(rx: &Receiver<Input>, wait: Option<Duration>) -> Option<Input> {
    match wait {
        None => rx.recv().ok(),
        Some(left) if left.is_zero() => rx.try_recv().ok(),
        Some(left) => rx.recv_timeout(left).ok(),
    }
}

fn stream_thread(
    jobs: &Receiver<Job>,
    events: &mut dyn EventTransport,
    probes: &mut dyn EventTransport,
    tx: &Sender<Input>,
) {
    // Ends when the loop drops its sender (at stop).
    while let Ok(job) = jobs.recv() {
        let id = job.request.id;
        let result = if job.cancel.is_cancelled() {
            Err(TransportError::Disconnected)
        } else if job.request.kind == RequestKind::Probe {
            probes.poll(job.request, &job.cancel)
        } else {
            if job.reset {
                events.reset();
            }
            tracing::trace!(transport = events.name(), "poll");
            events.poll(job.request, &job.cancel)
        };
        if tx.send(Input::Io(id, result)).is_err() {
            break;
        }
    }
    events.reset();
    probes.reset();
}

impl State {
    /// This client's monotonic clock: the real one plus the skew.
    pub(crate) fn now(&self) -> Instant {
        Instant::now() + self.skew
    }

    fn new_ticket(&mut self) -> Ticket {
        self.next_ticket += 1;
        self.next_ticket
    }

    fn answer(&mut self, ticket: Ticket, result: Result<Answer, Error>) {
        self.answers.insert(ticket, result);
    }

    /// How long the leader may wait at most: until the core's deadline or the token
    /// refresh (by the client's clock), or a request's timeout (by the real clock, as the
    /// transports' own timeouts are).
    fn next_wait(&self) -> Option<Duration> {
        let now = self.now();
        let mut at = self.core_deadline;
        at = earliest(at, self.refresh_at.filter(|_| self.refreshing.is_none()));
        at = earliest(at, self.refreshing.map(|(_, d)| d));
        let mut wait = at.map(|t| t.saturating_duration_since(now));
        let real = Instant::now();
        for f in self.in_flight.values() {
            let left = f.deadline.saturating_duration_since(real);
            wait = Some(wait.map_or(left, |w| w.min(left)));
        }
        wait
    }

    /// Feeds `first` and every input already waiting, fires what is due, and carries out
    /// the outputs.
    fn step(&mut self, first: Option<Input>, rx: &Receiver<Input>) {
        let mut next = first;
        while let Some(input) = next {
            self.input(input);
            self.drain();
            next = rx.try_recv().ok();
        }
        self.fire_due();
        self.drain();
    }

    fn input(&mut self, input: Input) {
        match input {
            Input::Io(id, result) => self.completed(id, result),
            Input::Token(generation, result) => {
                if self.refreshing.is_some_and(|(g, _)| g == generation) {
                    self.refreshing = None;
                    self.refreshed(result);
                }
            }
            Input::Wake => {}
        }
    }

    fn fire_due(&mut self) {
        let now = self.now();
        let real = Instant::now();
        let expired: Vec<RequestId> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.deadline <= real)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(f) = self.in_flight.remove(&id) {
                if let Some(c) = f.cancel {
                    c.cancel();
                    self.reset_stream = true;
                }
                self.session
                    .handle_failure(now, id, TransportError::Timeout);
                self.drain();
            }
        }
        if self.core_deadline.is_some_and(|d| d <= now) {
            self.core_deadline = None;
            self.session.handle_timeout(now);
            self.drain();
        }
        if self.refreshing.is_some_and(|(_, d)| d <= now) {
            self.refreshing = None;
            self.refreshed(Err(Error::TokenProvider("timed out".to_owned())));
        } else if self.refreshing.is_none() && self.refresh_at.is_some_and(|d| d <= now) {
            self.refresh_at = None;
            self.start_refresh();
        }
    }

    fn wall(&self) -> SystemTime {
        self.start.1 + self.now().saturating_duration_since(self.start.0)
    }

    /// Feeds the stream answer held back by backpressure once the queue has room again.
    pub(crate) fn release_held(&mut self) -> bool {
        if self.held.is_some() && self.events.len() < self.capacity {
            self.drain();
            true
        } else {
            false
        }
    }

    /// Carries out the core's outputs until it waits; stops everything once it has ended.
    pub(crate) fn drain(&mut self) {
        loop {
            if self.held.is_some() && self.events.len() < self.capacity {
                if let Some((id, result)) = self.held.take() {
                    self.feed(id, result);
                }
            }
            match self.session.poll_output() {
                Output::Transmit(request) => self.transmit(request),
                Output::Abort(id) => {
                    if let Some(f) = self.in_flight.remove(&id) {
                        if let Some(c) = f.cancel {
                            c.cancel();
                            self.reset_stream = true;
                        }
                    }
                    if self.held.as_ref().is_some_and(|(h, _)| *h == id) {
                        self.held = None;
                    }
                }
                Output::Reply(reply) => self.reply(reply),
                Output::Event(event) => self.event(event),
                Output::Wait(deadline) => {
                    self.core_deadline = deadline;
                    if self.held.is_some() && self.events.len() < self.capacity {
                        continue;
                    }
                    break;
                }
            }
        }
        if self.session.is_ended() && !self.stopped {
            self.stop();
        }
    }

    fn transmit(&mut self, request: Request) {
        let id = request.id;
        let now = self.now();
        // Requests time out by the real clock: the server and the transports know no other.
        let deadline = Instant::now() + request.timeout;
        tracing::trace!(?request, "transmit");
        if self.stopped {
            return;
        }
        if matches!(request.kind, RequestKind::Poll { .. } | RequestKind::Probe) {
            let cancel = Cancel::new();
            let job = Job {
                request,
                cancel: cancel.clone(),
                reset: std::mem::take(&mut self.reset_stream),
            };
            let sent = self
                .stream_jobs
                .as_ref()
                .is_some_and(|j| j.send(job).is_ok());
            if sent {
                self.in_flight.insert(
                    id,
                    InFlight {
                        deadline,
                        cancel: Some(cancel),
                    },
                );
            } else {
                self.session
                    .handle_failure(now, id, TransportError::Disconnected);
            }
            return;
        }
        let Some(http) = self.http.clone() else {
            self.session
                .handle_failure(now, id, TransportError::Disconnected);
            return;
        };
        let tx = self.tx.clone();
        self.reap();
        let spawned = threads::spawn("chat-blocking-rest", move || {
            let result = http.send(request);
            let _ = tx.send(Input::Io(id, result));
        });
        match spawned {
            Ok(handle) => {
                self.threads.push(handle);
                self.in_flight.insert(
                    id,
                    InFlight {
                        deadline,
                        cancel: None,
                    },
                );
            }
            Err(_) => self
                .session
                .handle_failure(now, id, TransportError::Connect),
        }
    }

    /// Joins the threads that have finished, so that the list stays short.
    fn reap(&mut self) {
        let (done, running): (Vec<_>, Vec<_>) =
            self.threads.drain(..).partition(JoinHandle::is_finished);
        self.threads = running;
        for handle in done {
            let _ = handle.join();
        }
    }

    fn completed(&mut self, id: RequestId, result: Result<Response, TransportError>) {
        let Some(f) = self.in_flight.remove(&id) else {
            return;
        };
        let stream = f.cancel.is_some();
        if stream && result.is_err() {
            self.reset_stream = true;
        }
        if stream && self.events_open && self.events.len() >= self.capacity {
            // Backpressure: the server keeps these events until a later poll acknowledges
            // them.
            self.held = Some((id, result));
            return;
        }
        self.feed(id, result);
    }

    fn feed(&mut self, id: RequestId, result: Result<Response, TransportError>) {
        let now = self.now();
        match result {
            Ok(r) => self.session.handle_response(now, id, r.status, &r.body),
            Err(e) => self.session.handle_failure(now, id, e),
        }
    }

    fn event(&mut self, event: Event) {
        match &event {
            Event::EventStreamFailed(f)
                if f.reason == StreamFailureReason::Unauthorized
                    && self.provider.is_some()
                    && self.auth_refreshes < MAX_AUTH_REFRESHES =>
            {
                self.auth_refreshes += 1;
                self.start_refresh();
            }
            Event::EventStreamConnected => self.auth_refreshes = 0,
            _ => {}
        }
        if self.events_open {
            let at = self.wall();
            self.events.push_back(ChatEvent { event, at });
        }
    }

    fn reply(&mut self, reply: Reply) {
        let Some(waiting) = self.waiting.remove(&reply.id) else {
            return;
        };
        let is_init = waiting.replay.as_ref().is_some_and(Call::is_init);
        match reply.result {
            Err(ChatError::InvalidToken) if self.provider.is_some() && waiting.replay.is_some() => {
                if let Some(command) = waiting.replay {
                    self.replays.push((command, waiting.ticket));
                }
                self.start_refresh();
            }
            result => {
                if result.is_ok() {
                    self.auth_refreshes = 0;
                }
                if is_init && result.is_ok() {
                    self.schedule_refresh();
                }
                self.answer(
                    waiting.ticket,
                    result
                        .map(|v| Answer::Reply(Box::new(v)))
                        .map_err(Error::from),
                );
            }
        }
    }

    /// Gives the command to the session; its answer is filed under `ticket`, at once or
    /// when the reply comes.
    fn command(&mut self, command: Command, ticket: Ticket, replayable: bool) {
        let now = self.now();
        let s = &mut self.session;
        match command {
            Command::Call(call) => self.call(call, ticket, replayable),
            Command::SetToken(token) => {
                let result = s.set_token(token, now, SystemTime::now());
                if result.is_ok() {
                    self.schedule_refresh();
                }
                self.answer(ticket, result.map(|()| Answer::Done).map_err(Error::from));
            }
            Command::RetryConnection => {
                let result = s.retry_connection(now);
                self.answer(ticket, result.map(|()| Answer::Done).map_err(Error::from));
            }
            Command::ResetIdleTimeout => {
                s.reset_idle_timeout(now);
                self.answer(ticket, Ok(Answer::Done));
            }
            Command::RefreshToken => {
                if self.provider.is_none() {
                    let e = Error::TokenProvider("no token provider configured".to_owned());
                    self.answer(ticket, Err(e));
                } else {
                    self.refresh_waiters.push(ticket);
                    self.start_refresh();
                }
            }
        }
    }

    /// Starts a call; its answer is filed under `ticket` when the reply comes (and, if
    /// `replayable`, the call is kept to be made once more after a refresh should the reply
    /// be a 401).
    fn call(&mut self, call: Call, ticket: Ticket, replayable: bool) {
        let now = self.now();
        match call.start(&mut self.session, now, SystemTime::now()) {
            Ok(id) => {
                let replay = replayable.then_some(call);
                self.waiting.insert(id, Waiting { ticket, replay });
            }
            Err(e) => self.answer(ticket, Err(Error::from(e))),
        }
    }

    /// Arms the proactive refresh: `refresh_lead` before `exp`, but never sooner than half
    /// the token's remaining life (so that short-lived tokens do not refresh in a loop).
    fn schedule_refresh(&mut self) {
        if self.provider.is_none() {
            return;
        }
        let remaining = self.session.token().remaining(SystemTime::now());
        let wait = remaining
            .saturating_sub(self.refresh_lead)
            .max(remaining / 2);
        self.refresh_at = Some(self.now() + wait);
    }

    fn start_refresh(&mut self) {
        if self.refreshing.is_some() || self.stopped {
            return;
        }
        let Some(provider) = self.provider.clone() else {
            return;
        };
        self.refresh_at = None;
        self.refresh_generation += 1;
        let generation = self.refresh_generation;
        let tx = self.tx.clone();
        tracing::debug!("refreshing the chat token");
        self.reap();
        let spawned = threads::spawn("chat-blocking-token", move || {
            let token = fetch_token(provider.as_ref());
            let _ = tx.send(Input::Token(generation, token));
        });
        match spawned {
            Ok(handle) => {
                self.threads.push(handle);
                self.refreshing = Some((generation, self.now() + PROVIDER_TIMEOUT));
            }
            Err(_) => self.refreshed(Err(Error::TokenProvider("no thread".to_owned()))),
        }
    }

    fn refreshed(&mut self, token: Result<Token, Error>) {
        let result = token.and_then(|t| {
            if self.session.is_ended() {
                return Err(Error::Closed);
            }
            self.session
                .set_token(t, self.now(), SystemTime::now())
                .map_err(Error::from)
        });
        match &result {
            Ok(()) => {
                tracing::debug!("chat token refreshed");
                self.schedule_refresh();
            }
            Err(e) => {
                tracing::warn!(error = %e, "token refresh failed");
                if !self.session.token().remaining(SystemTime::now()).is_zero() {
                    self.refresh_at = Some(self.now() + PROVIDER_RETRY);
                }
            }
        }
        for ticket in std::mem::take(&mut self.refresh_waiters) {
            self.answer(ticket, result.clone().map(|()| Answer::Done));
        }
        for (call, ticket) in std::mem::take(&mut self.replays) {
            if result.is_ok() {
                self.call(call, ticket, false);
            } else {
                self.answer(ticket, Err(Error::Chat(ChatError::InvalidToken)));
            }
        }
    }

    /// Stops every thread this client started and waits for them. Threads never take the
    /// state lock, so joining under it cannot deadlock; a REST call in flight is waited for
    /// (at most its timeout), a poll is interrupted.
    pub(crate) fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        for (_, f) in self.in_flight.drain() {
            if let Some(c) = f.cancel {
                c.cancel();
            }
        }
        self.stream_jobs = None;
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
        // The last user of reqwest's blocking client: dropping it joins reqwest's thread (on a
        // thread of the client's own, see `ReqwestTransport`).
        self.http = None;
        for (_, w) in self.waiting.drain() {
            self.answers.insert(w.ticket, Err(Error::Closed));
        }
        for ticket in std::mem::take(&mut self.refresh_waiters) {
            self.answers.insert(ticket, Err(Error::Closed));
        }
        for (_, ticket) in std::mem::take(&mut self.replays) {
            self.answers.insert(ticket, Err(Error::Closed));
        }
        self.held = None;
        self.refreshing = None;
        self.refresh_at = None;
    }

    pub(crate) fn engagement(&self, id: &EngagementId) -> Option<EngagementInfo> {
        self.session.engagement(id).cloned()
    }

    pub(crate) fn stream_state(&self) -> StreamState {
        self.session.stream_state()
    }

    /// Threads this client has started and not yet joined (for tests).
    pub(crate) fn threads(&self) -> usize {
        self.threads.len()
    }
}

/// [`fetch_token`] on a thread of the client's own (a provider may well use reqwest's
/// blocking client, which must not run on a caller's thread inside a tokio runtime).
pub(crate) fn fetch_token_off_thread(provider: &dyn TokenProvider) -> Result<Token, Error> {
    threads::on_own_thread(|| fetch_token(provider)).unwrap_or_else(|| {
        Err(Error::TokenProvider(
            "the token provider panicked".to_owned(),
        ))
    })
}

/// Asks the provider and checks that what it gave is a live token.
fn fetch_token(provider: &dyn TokenProvider) -> Result<Token, Error> {
    let text = provider
        .token()
        .map_err(|e| Error::TokenProvider(e.to_string()))?;
    let token = Token::parse(&text)?;
    if token.remaining(SystemTime::now()).is_zero() {
        return Err(Error::TokenProvider("the token has expired".to_owned()));
    }
    Ok(token)
}
