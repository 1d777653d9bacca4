//! The tokio glue around [`chat_driver::Driver`]: one task per client carries out its
//! actions (requests, aborts, token provider calls, completions) and feeds back what
//! happened and the passing of tokio's clock. Handles and the event stream reach the driver
//! through one mutex, never held across an await.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use chat_core::{PollOutcome, ReplyValue, Request, RequestId, RequestKind, TransportError};
use chat_driver::{Action, BoxError, Driver, Error, SaveError, SaveTicket, StoreLink};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use crate::TokenProvider;
use crate::transport::{EventTransport, HttpTransport, Response};

/// Where a call's result goes.
pub(crate) type Waiter = oneshot::Sender<Result<ReplyValue, Error>>;

/// What the handles, the event stream and the task share.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the task: an input came that may have produced actions.
    pub(crate) wake: Notify,
    /// Wakes readers: events were queued, state changed, or the client stopped.
    pub(crate) changed: Notify,
    /// `true` once the task has stopped.
    pub(crate) stopped: watch::Sender<bool>,
}

pub(crate) struct State {
    pub(crate) driver: Driver<Waiter>,
    /// Every `Client` handle is gone.
    pub(crate) handles_gone: bool,
    /// The `EventStream` is gone.
    pub(crate) events_gone: bool,
}

/// tokio's clock, as the driver takes it.
pub(crate) fn now() -> std::time::Instant {
    Instant::now().into_std()
}

impl Shared {
    pub(crate) fn new(driver: Driver<Waiter>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                driver,
                handles_gone: false,
                events_gone: false,
            }),
            wake: Notify::new(),
            changed: Notify::new(),
            stopped: watch::Sender::new(false),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the driver, then lets the task carry out what it produced.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Driver<Waiter>) -> R) -> R {
        let r = f(&mut self.lock().driver);
        self.wake.notify_one();
        r
    }

    /// Starts a call and waits for its result.
    pub(crate) async fn call(&self, call: chat_driver::Call) -> Result<ReplyValue, Error> {
        let (tx, rx) = oneshot::channel();
        self.with(|d| d.call(now(), call, tx)).map_err(|(_, e)| e)?;
        rx.await.unwrap_or_else(|_| Err(self.closed()))
    }

    /// The error of a call made on a client that has stopped.
    pub(crate) fn closed(&self) -> Error {
        Error::Closed(self.lock().driver.end_reason())
    }
}

/// What the task owns: the transports and what is in flight on them.
pub(crate) struct Io {
    pub(crate) http: Arc<dyn HttpTransport>,
    pub(crate) stream: Arc<tokio::sync::Mutex<Box<dyn EventTransport>>>,
    pub(crate) provider: Option<Arc<dyn TokenProvider>>,
    /// The store the session is kept in, if any.
    pub(crate) store: Option<Arc<StoreLink>>,
}

/// A store call's outcome (made on a blocking thread: stores block).
enum Stored {
    Saved(SaveTicket, Result<(), SaveError>),
    Renewed(Result<(), SaveError>),
}

enum Done {
    Rest(Result<Response, TransportError>),
    Poll(PollOutcome),
    Token(Result<String, BoxError>),
}

/// The task: carries out the driver's actions until the session ends or nobody is left.
pub(crate) async fn run(shared: Arc<Shared>, io: Io) {
    let mut tasks: JoinSet<(RequestId, Done)> = JoinSet::new();
    let mut in_flight: std::collections::HashMap<RequestId, (AbortHandle, bool)> =
        std::collections::HashMap::new();
    let mut reset_stream = false;
    // Store calls are never aborted: a save that started finishes, even at the end.
    let mut store_calls: JoinSet<Stored> = JoinSet::new();
    loop {
        let deadline = {
            let mut st = shared.lock();
            let deadline = loop {
                match st.driver.poll_action() {
                    Action::Transmit(request) => {
                        let id = request.id;
                        let stream = matches!(request.kind, RequestKind::Poll { .. });
                        tracing::trace!(?request, "transmit");
                        let handle = if stream {
                            let reset = std::mem::take(&mut reset_stream);
                            tasks.spawn(poll(Arc::clone(&io.stream), request, reset))
                        } else {
                            let http = Arc::clone(&io.http);
                            tasks.spawn(async move { (id, Done::Rest(http.send(request).await)) })
                        };
                        in_flight.insert(id, (handle, stream));
                    }
                    Action::Abort(id) => {
                        if let Some((handle, stream)) = in_flight.remove(&id) {
                            handle.abort();
                            reset_stream |= stream;
                        }
                    }
                    Action::FetchToken(id) => {
                        let provider = io.provider.clone();
                        let handle = tasks.spawn(async move {
                            let token = match provider {
                                Some(p) => p.token().await,
                                None => Err("no token provider".into()),
                            };
                            (id, Done::Token(token))
                        });
                        in_flight.insert(id, (handle, false));
                    }
                    Action::Complete(waiter, result) => {
                        let _ = waiter.send(result);
                    }
                    Action::Save(ticket, record) => {
                        if let Some(link) = io.store.clone() {
                            store_calls.spawn_blocking(move || {
                                Stored::Saved(ticket, link.save(record.as_deref()))
                            });
                        }
                    }
                    Action::RenewLease => {
                        if let Some(link) = io.store.clone() {
                            store_calls.spawn_blocking(move || Stored::Renewed(link.renew()));
                        }
                    }
                    Action::Wait(deadline) => break deadline,
                }
            };
            shared.changed.notify_waiters();
            let finished = st.driver.session().is_ended();
            if finished || (st.handles_gone && st.events_gone) {
                for (waiter, e) in st.driver.stop() {
                    let _ = waiter.send(Err(e));
                }
                break;
            }
            deadline.map(Instant::from_std)
        };
        tokio::select! {
            biased;
            () = shared.wake.notified() => {}
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                // An aborted task joins as an error: nothing to feed.
                let Ok((id, done)) = joined else { continue };
                if in_flight.remove(&id).is_none() {
                    continue; // aborted or timed out meanwhile
                }
                let now = now();
                let mut st = shared.lock();
                match done {
                    Done::Rest(Ok(r)) => st.driver.handle_response(now, id, r.status, &r.body),
                    Done::Rest(Err(e)) => st.driver.handle_failure(now, id, e),
                    Done::Poll(outcome) => {
                        reset_stream |= matches!(outcome, PollOutcome::Failed(_));
                        st.driver.handle_poll(now, id, outcome);
                    }
                    Done::Token(token) => st.driver.handle_token(now, id, token),
                }
            }
            Some(joined) = store_calls.join_next(), if !store_calls.is_empty() => {
                let Ok(stored) = joined else { continue };
                let mut st = shared.lock();
                match stored {
                    Stored::Saved(ticket, result) => st.driver.handle_saved(now(), ticket, result),
                    Stored::Renewed(result) => st.driver.handle_renewed(now(), result),
                }
            }
            () = sleep_until(deadline) => shared.lock().driver.handle_timeout(now()),
        }
    }
    // Stop every request in flight and wait for them: no task outlives the client.
    tasks.shutdown().await;
    // The last saves land; a session not over is given up for the next process to take.
    while store_calls.join_next().await.is_some() {}
    let over = shared.lock().driver.session().is_ended();
    if let (Some(link), false) = (io.store.clone(), over) {
        let _ = tokio::task::spawn_blocking(move || link.release()).await;
    }
    shared.stopped.send_replace(true);
    shared.changed.notify_waiters();
}

async fn poll(
    stream: Arc<tokio::sync::Mutex<Box<dyn EventTransport>>>,
    request: Request,
    reset: bool,
) -> (RequestId, Done) {
    let id = request.id;
    let mut transport = stream.lock_owned().await;
    if reset {
        transport.reset().await;
    }
    (id, Done::Poll(transport.poll(request).await))
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The wall clock, once, at the client's start.
pub(crate) fn wall() -> SystemTime {
    SystemTime::now()
}
