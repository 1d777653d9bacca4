//! The blocking glue around [`chat_driver::Driver`], run by whichever caller thread is
//! blocked.
//!
//! The driver lives in [`State`] behind one mutex. The I/O threads (the stream thread,
//! short-lived REST workers, the token provider's) never touch it: they post their results
//! into one input channel. A caller that waits for something (an event, a command's result)
//! takes the channel's receiver if nobody holds it and becomes the *leader* for one step: it
//! waits for an input or the next deadline without the lock, feeds it to the driver, carries
//! out the actions, and hands the receiver back. Callers that find the receiver taken wait on
//! the condition variable, which every step notifies. So any thread may call anything, and
//! nothing is left running when nobody calls.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use chat_core::{PollOutcome, ReplyValue, Request, RequestId, RequestKind, TransportError};
use chat_driver::{Action, BoxError, Call, Driver, Error, StoreLink};

use crate::TokenProvider;
use crate::stream::{Job, stream_thread};
use crate::threads::{self, Workers};
use crate::transport::{Cancel, EventTransport, HttpTransport, Response};

pub(crate) type Ticket = u64;

/// What the I/O threads post.
pub(crate) enum Input {
    Rest(RequestId, Result<Response, TransportError>),
    Poll(RequestId, PollOutcome),
    /// A probe's answer: its failure says nothing about the stream's connection.
    Probe(RequestId, PollOutcome),
    Token(RequestId, Result<String, BoxError>),
    /// A command changed the driver: recompute the deadline.
    Wake,
}

/// Everything the loop owns, behind [`Shared::state`].
pub(crate) struct State {
    pub(crate) driver: Driver<Ticket>,
    /// The input channel's receiver; `None` while a leader waits on it.
    rx: Option<Receiver<Input>>,
    tx: Sender<Input>,
    /// Requests in flight; polls and probes can be interrupted.
    in_flight: HashMap<RequestId, Option<Cancel>>,
    reset_stream: bool,
    deadline: Option<Instant>,
    answers: HashMap<Ticket, Result<ReplyValue, Error>>,
    /// Calls whose answer nobody will take (a `QueuedMessage` dropped).
    forgotten: std::collections::HashSet<Ticket>,
    next_ticket: Ticket,
    provider: Option<Arc<dyn TokenProvider>>,
    http: Option<Arc<dyn HttpTransport>>,
    stream_jobs: Option<Sender<Job>>,
    workers: Workers,
    pub(crate) stopped: bool,
    /// How far this client's clock is ahead of the real one (`Client::advance_clock`).
    pub(crate) skew: Duration,
    /// The store the session is kept in, if any: its calls are made inline, by whichever
    /// thread drives.
    store: Option<Arc<StoreLink>>,
}

/// What the handles share.
pub(crate) struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    wake: Mutex<Sender<Input>>,
}

pub(crate) struct Parts {
    pub(crate) driver: Driver<Ticket>,
    pub(crate) http: Arc<dyn HttpTransport>,
    pub(crate) events: Box<dyn EventTransport>,
    pub(crate) probes: Box<dyn EventTransport>,
    pub(crate) provider: Option<Arc<dyn TokenProvider>>,
    pub(crate) store: Option<Arc<StoreLink>>,
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
            driver: parts.driver,
            rx: Some(rx),
            tx: tx.clone(),
            in_flight: HashMap::new(),
            reset_stream: false,
            deadline: None,
            answers: HashMap::new(),
            forgotten: std::collections::HashSet::new(),
            next_ticket: 0,
            provider: parts.provider,
            http: Some(parts.http),
            stream_jobs: Some(jobs_tx),
            workers: Workers::new(stream),
            stopped: false,
            skew: Duration::ZERO,
            store: parts.store,
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

    /// Starts a call and blocks until its result, driving the loop meanwhile.
    pub(crate) fn call(&self, call: Call) -> Result<ReplyValue, Error> {
        let ticket = self.start_call(call)?;
        self.finish(ticket)
    }

    /// Starts a call: it is in the driver when this returns; [`finish`](Self::finish)
    /// waits for its answer.
    pub(crate) fn start_call(&self, call: Call) -> Result<Ticket, Error> {
        let ticket = {
            let mut st = self.lock();
            if st.stopped {
                return Err(Error::Closed(st.driver.end_reason()));
            }
            st.next_ticket += 1;
            let ticket = st.next_ticket;
            let now = st.now();
            if let Err((_, e)) = st.driver.call(now, call, ticket) {
                return Err(e);
            }
            st.drain();
            ticket
        };
        self.wake_leader();
        Ok(ticket)
    }

    /// Waits for the answer of a call [`start_call`](Self::start_call)ed.
    pub(crate) fn finish(&self, ticket: Ticket) -> Result<ReplyValue, Error> {
        // Without a deadline the wait ends with the answer, or with nothing once the client
        // has stopped without one.
        self.wait_for(None, |st| st.answers.remove(&ticket))
            .unwrap_or_else(|| Err(self.closed()))
    }

    /// Nobody will wait for `ticket`'s answer: it is dropped, now or when it comes.
    pub(crate) fn forget(&self, ticket: Ticket) {
        let mut st = self.lock();
        if st.answers.remove(&ticket).is_none() {
            st.forgotten.insert(ticket);
        }
    }

    /// The error of a call made on a client that has stopped.
    pub(crate) fn closed(&self) -> Error {
        Error::Closed(self.lock().driver.end_reason())
    }

    /// Reads or changes local state, without waiting.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = {
            let mut st = self.lock();
            let r = f(&mut st);
            st.drain();
            r
        };
        self.changed.notify_all();
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
                // Taking an event may have let the stream go on: carry out what follows.
                st.drain();
                self.changed.notify_all();
                return Some(r);
            }
            let expired = deadline.is_some_and(|d| Instant::now() >= d);
            if (expired && stepped) || st.stopped {
                return None;
            }
            match st.rx.take() {
                Some(rx) => {
                    // The driver's deadline is by the client's clock, the caller's by the
                    // real one.
                    let now = st.now();
                    let core = st.deadline.map(|d| d.saturating_duration_since(now));
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
        // The last handle and the event stream are gone: stop every thread, without
        // deleting the session (it can be resumed).
        let st = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        st.stop();
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

impl State {
    /// This client's monotonic clock: the real one plus the skew.
    pub(crate) fn now(&self) -> Instant {
        Instant::now() + self.skew
    }

    /// Feeds `first` and every input already waiting, fires what is due, and carries out
    /// the actions.
    fn step(&mut self, first: Option<Input>, rx: &Receiver<Input>) {
        let mut next = first;
        while let Some(input) = next {
            self.input(input);
            self.drain();
            next = rx.try_recv().ok();
        }
        let now = self.now();
        if self.deadline.is_some_and(|d| d <= now) {
            self.driver.handle_timeout(now);
        }
        self.drain();
    }

    fn input(&mut self, input: Input) {
        let now = self.now();
        let (Input::Rest(id, _) | Input::Poll(id, _) | Input::Probe(id, _) | Input::Token(id, _)) =
            &input
        else {
            return; // a wake-up: the caller recomputes the deadline
        };
        // Not in flight any more: aborted after it had finished, the driver settled it.
        if self.in_flight.remove(id).is_none() && !matches!(input, Input::Token(..)) {
            return;
        }
        match input {
            Input::Rest(id, Ok(r)) => self.driver.handle_response(now, id, r.status, &r.body),
            Input::Rest(id, Err(e)) => self.driver.handle_failure(now, id, e),
            Input::Poll(id, outcome) => {
                self.reset_stream |= matches!(outcome, PollOutcome::Failed(_));
                self.driver.handle_poll(now, id, outcome);
            }
            Input::Probe(id, outcome) => self.driver.handle_poll(now, id, outcome),
            Input::Token(id, token) => self.driver.handle_token(now, id, token),
            Input::Wake => {}
        }
    }

    /// Carries out the driver's actions until it waits; stops everything once it has ended.
    pub(crate) fn drain(&mut self) {
        loop {
            match self.driver.poll_action() {
                Action::Transmit(request) => self.transmit(request),
                Action::Abort(id) => {
                    if let Some(Some(cancel)) = self.in_flight.remove(&id) {
                        cancel.cancel();
                        self.reset_stream = true;
                    }
                }
                Action::FetchToken(id) => self.fetch_token(id),
                Action::Complete(ticket, result) => {
                    if !self.forgotten.remove(&ticket) {
                        self.answers.insert(ticket, result);
                    }
                }
                Action::Save(ticket, record) => {
                    if let Some(link) = &self.store {
                        let result = link.save(record.as_deref());
                        let now = self.now();
                        self.driver.handle_saved(now, ticket, result);
                    }
                }
                Action::RenewLease => {
                    if let Some(link) = &self.store {
                        let result = link.renew();
                        let now = self.now();
                        self.driver.handle_renewed(now, result);
                    }
                }
                Action::Wait(deadline) => {
                    self.deadline = deadline;
                    break;
                }
            }
        }
        if self.driver.session().is_ended() && !self.stopped {
            self.stop();
        }
    }

    fn transmit(&mut self, request: Request) {
        let id = request.id;
        tracing::trace!(?request, "transmit");
        if self.stopped {
            return;
        }
        if matches!(request.kind, RequestKind::Poll { .. } | RequestKind::Probe) {
            let cancel = Cancel::new();
            let reset = std::mem::take(&mut self.reset_stream)
                && matches!(request.kind, RequestKind::Poll { .. });
            let job = Job {
                request,
                cancel: cancel.clone(),
                reset,
            };
            if self
                .stream_jobs
                .as_ref()
                .is_some_and(|j| j.send(job).is_ok())
            {
                self.in_flight.insert(id, Some(cancel));
            } else {
                self.fail(id, TransportError::Disconnected);
            }
            return;
        }
        let Some(http) = self.http.clone() else {
            return self.fail(id, TransportError::Disconnected);
        };
        let tx = self.tx.clone();
        self.spawn("chat-blocking-rest", id, move || {
            let result = http.send(request);
            let _ = tx.send(Input::Rest(id, result));
        });
    }

    /// The token provider, on a thread of its own: a slow backend never holds up events.
    fn fetch_token(&mut self, id: RequestId) {
        let Some(provider) = self.provider.clone() else {
            let now = self.now();
            self.driver
                .handle_token(now, id, Err("no token provider".into()));
            return;
        };
        let tx = self.tx.clone();
        tracing::debug!("asking the token provider for a new chat token");
        self.spawn("chat-blocking-token", id, move || {
            let token = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| provider.token()))
                .unwrap_or_else(|_| Err("the token provider panicked".into()));
            let _ = tx.send(Input::Token(id, token));
        });
    }

    fn spawn(&mut self, name: &str, id: RequestId, f: impl FnOnce() + Send + 'static) {
        if self.workers.spawn(name, f).is_ok() {
            self.in_flight.insert(id, None);
        } else {
            self.fail(id, TransportError::Connect);
        }
    }

    /// A request that could not even start.
    fn fail(&mut self, id: RequestId, error: TransportError) {
        let now = self.now();
        self.driver.handle_failure(now, id, error);
    }

    /// Stops every thread this client started and waits for them. Threads never take the
    /// state lock, so joining under it cannot deadlock; a REST call in flight is waited for
    /// (at most its timeout), a poll is interrupted.
    pub(crate) fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        for (_, cancel) in self.in_flight.drain() {
            if let Some(c) = cancel {
                c.cancel();
            }
        }
        self.stream_jobs = None;
        self.workers.join_all();
        // The last user of reqwest's blocking client: dropping it joins reqwest's thread (on a
        // thread of the client's own, see `ReqwestTransport`).
        self.http = None;
        for (ticket, e) in self.driver.stop() {
            self.answers.insert(ticket, Err(e));
        }
        // A session not over is given up for the next process to take at once.
        if let Some(link) = self.store.take() {
            if !self.driver.session().is_ended() {
                link.release();
            }
        }
    }

    /// Threads this client has started and not yet joined (for tests).
    #[cfg(feature = "test-util")]
    pub(crate) fn threads(&self) -> usize {
        self.workers.len()
    }
}

/// The wall clock, once, at the client's start.
pub(crate) fn wall() -> SystemTime {
    SystemTime::now()
}
