//! The loop: one thread per client runs [`run`] on a single-threaded [`LocalExecutor`]. It
//! carries out the [`Driver`]'s actions, each request as a task of its own, and feeds back
//! what happened: a task's outcome, a command from the handles, the passing of time.
//!
//! The handles ([`Client`](crate::Client), [`EventStream`](crate::EventStream)) may live on
//! any thread: they reach the driver through one mutex, never held across an `.await`, and
//! ring the loop's [`Bell`] after each input.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use chat_core::{PollOutcome, ReplyValue, RequestId, RequestKind, TransportError};
use chat_driver::{Action, BoxError, Call, Driver, Error};
use chat_net::Response;
use smol::channel::{Receiver, Sender};
use smol::{LocalExecutor, Task, Timer, future};

use crate::TokenProvider;
use crate::net::{Kept, Net};

/// Where a call's result goes: a one-shot channel.
pub(crate) type Waiter = Sender<Result<ReplyValue, Error>>;

/// A wake-up that is never lost: ringing while nobody waits leaves it rung (a channel of one
/// slot; rings in a row count as one).
pub(crate) struct Bell(Sender<()>, Receiver<()>);

impl Bell {
    fn new() -> Self {
        let (tx, rx) = smol::channel::bounded(1);
        Self(tx, rx)
    }

    pub(crate) fn ring(&self) {
        let _ = self.0.try_send(());
    }

    pub(crate) async fn wait(&self) {
        let _ = self.1.recv().await;
    }
}

/// What the handles and the loop share.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the loop: an input came that may have produced actions.
    pub(crate) wake: Bell,
    /// Wakes the event reader: the loop has run (events may be queued).
    pub(crate) changed: Bell,
    /// Closed when the loop has stopped (its only sender is the loop's).
    pub(crate) stopped: Receiver<()>,
}

pub(crate) struct State {
    pub(crate) driver: Driver<Waiter>,
    /// Every `Client` handle is gone.
    pub(crate) handles_gone: bool,
    /// The `EventStream` is gone.
    pub(crate) events_gone: bool,
}

/// The clock the driver is fed: the monotonic clock, as async-io's timers use it.
pub(crate) fn now() -> Instant {
    Instant::now()
}

impl Shared {
    /// The shared state, and the sender whose drop says the loop has stopped.
    pub(crate) fn new(driver: Driver<Waiter>) -> (Arc<Self>, Sender<()>) {
        let (stop, stopped) = smol::channel::bounded(1);
        let state = State {
            driver,
            handles_gone: false,
            events_gone: false,
        };
        let shared = Self {
            state: Mutex::new(state),
            wake: Bell::new(),
            changed: Bell::new(),
            stopped,
        };
        (Arc::new(shared), stop)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the driver, then lets the loop carry out what it produced.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Driver<Waiter>) -> R) -> R {
        let r = f(&mut self.lock().driver);
        self.wake.ring();
        r
    }

    /// Starts a call and waits for its result.
    pub(crate) async fn call(&self, call: Call) -> Result<ReplyValue, Error> {
        let (tx, rx) = smol::channel::bounded(1);
        self.with(|d| d.call(now(), call, tx)).map_err(|(_, e)| e)?;
        rx.recv().await.unwrap_or_else(|_| Err(self.closed()))
    }

    /// The error of a call made on a client that has stopped.
    pub(crate) fn closed(&self) -> Error {
        Error::Closed(self.lock().driver.end_reason())
    }

    /// Waits until the loop has stopped.
    pub(crate) async fn wait_stopped(&self) {
        let _ = self.stopped.recv().await;
    }
}

/// How a request's task ended.
enum Done {
    Rest(Result<Response, TransportError>),
    /// The poll's outcome, and its connection if it may carry the next poll.
    Poll(PollOutcome, Option<Kept>),
    Token(Result<String, BoxError>),
}

/// What wakes the loop.
enum Input {
    Done(RequestId, Done),
    Woken,
    Time,
}

/// Starts the client's thread: a [`LocalExecutor`] under [`smol::block_on`], which also
/// drives async-io's reactor while the thread has nothing else to do.
pub(crate) fn start<P: TokenProvider>(
    shared: Arc<Shared>,
    net: Net,
    provider: P,
    stop: Sender<()>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("chat-smol".to_owned())
        .spawn(move || {
            let ex = LocalExecutor::new();
            smol::block_on(ex.run(run(&ex, &shared, net, provider)));
            // Every task (every request in flight) is dropped with the executor, then the
            // handles learn that the client has stopped.
            drop(ex);
            drop(stop);
            shared.changed.ring();
        })
        .map(drop)
}

/// The loop: drain the driver's actions until `Wait`, then wait for the first input, feed
/// it, and again, until the session ends or nobody is left.
async fn run<P: TokenProvider>(ex: &LocalExecutor<'_>, shared: &Shared, net: Net, provider: P) {
    let (net, provider) = (Rc::new(net), Rc::new(provider));
    let (done_tx, done_rx) = smol::channel::unbounded::<(RequestId, Done)>();
    // Dropping a task cancels it: that is all an abort takes.
    let mut in_flight: HashMap<RequestId, Task<()>> = HashMap::new();
    // The event stream's connection between two polls; a poll's task owns it meanwhile.
    let mut kept: Option<Kept> = None;
    loop {
        let deadline = {
            let mut st = shared.lock();
            let deadline = loop {
                match st.driver.poll_action() {
                    Action::Transmit(request) => {
                        let (id, done, net) = (request.id, done_tx.clone(), Rc::clone(&net));
                        let task = if matches!(request.kind, RequestKind::Poll { .. }) {
                            let conn = kept.take();
                            ex.spawn(async move {
                                let (outcome, conn) = net.poll(&request, conn).await;
                                let _ = done.try_send((id, Done::Poll(outcome, conn)));
                            })
                        } else {
                            ex.spawn(async move {
                                let response = net.send(&request).await;
                                let _ = done.try_send((id, Done::Rest(response)));
                            })
                        };
                        in_flight.insert(id, task);
                    }
                    // A timed-out or superseded request: cancelled, and the stream's
                    // connection with it if it was the poll.
                    Action::Abort(id) => drop(in_flight.remove(&id)),
                    Action::FetchToken(id) => {
                        let (done, provider) = (done_tx.clone(), Rc::clone(&provider));
                        let task = ex.spawn(async move {
                            let token = provider.token().await;
                            let _ = done.try_send((id, Done::Token(token)));
                        });
                        in_flight.insert(id, task);
                    }
                    Action::Complete(waiter, result) => drop(waiter.try_send(result)),
                    // No store here: `connect` refuses one, so the driver never asks.
                    Action::Save(..) | Action::RenewLease => {}
                    Action::Wait(deadline) => break deadline,
                }
            };
            shared.changed.ring();
            if st.driver.session().is_ended() || (st.handles_gone && st.events_gone) {
                for (waiter, e) in st.driver.stop() {
                    let _ = waiter.try_send(Err(e));
                }
                return;
            }
            deadline
        };
        let done = async {
            done_rx
                .recv()
                .await
                .map_or(Input::Woken, |(i, d)| Input::Done(i, d))
        };
        let woken = async {
            shared.wake.wait().await;
            Input::Woken
        };
        let time = async {
            deadline.map_or_else(Timer::never, Timer::at).await;
            Input::Time
        };
        let input = future::or(done, future::or(woken, time)).await;
        let mut st = shared.lock();
        match input {
            Input::Done(id, done) => {
                if in_flight.remove(&id).is_none() {
                    continue; // aborted after it had finished: the driver has settled it
                }
                match done {
                    Done::Rest(Ok(r)) => st.driver.handle_response(now(), id, r.status, &r.body),
                    Done::Rest(Err(e)) => st.driver.handle_failure(now(), id, e),
                    Done::Poll(outcome, conn) => {
                        kept = conn;
                        st.driver.handle_poll(now(), id, outcome);
                    }
                    Done::Token(token) => st.driver.handle_token(now(), id, token),
                }
            }
            Input::Time => st.driver.handle_timeout(now()),
            Input::Woken => {}
        }
    }
}
