//! [`EventStream`]: the client's events, handed out by
//! [`ClientBuilder::connect`](crate::ClientBuilder::connect).

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use chat_driver::{ChatEvent, RecvTimeoutError, TryRecvError};
use futures::Stream;

use crate::driver::{Shared, now};

/// The client's events, in order: [`recv`](Self::recv), [`try_recv`](Self::try_recv),
/// [`recv_timeout`](Self::recv_timeout), [`recv_deadline`](Self::recv_deadline) (the same
/// methods as chat-blocking's), and a [`futures::Stream`].
///
/// chat-blocking's `EventStream::run_until` has no twin here: the client's own task drives
/// the protocol whether or not anybody reads.
///
/// The queue is bounded ([`ClientBuilder::event_capacity`](crate::ClientBuilder::event_capacity),
/// 1024 by default). **When the application falls behind** nothing is dropped: once the queue
/// is full the client stops taking in event-stream answers until there is room, and the
/// events wait on the server, which keeps them until a later poll acknowledges them.
/// Commands, replies and timers go on meanwhile. What the application has taken is what
/// [`Client::resumption`](crate::Client::resumption) counts as seen.
///
/// The stream ends after `SHUTDOWN`, or after the last events of a session the server no
/// longer knows ([`Client::closed`](crate::Client::closed) says why). Dropping it is
/// allowed: the client goes on and discards its events; it stops when every handle and the
/// stream are dropped.
pub struct EventStream {
    pub(crate) shared: Arc<Shared>,
    /// The wait of `poll_next`, kept between polls. Only `poll_next` (with `&mut self`)
    /// touches it; the mutex makes the stream `Sync`, so that a `recv(&self)` future is
    /// `Send`.
    waiting: Mutex<Option<Waiting>>,
}

type Waiting = Pin<Box<dyn std::future::Future<Output = Option<ChatEvent>> + Send>>;

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.shared.lock().driver.fmt_event_stream(f)
    }
}

impl EventStream {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            waiting: Mutex::new(None),
        }
    }

    /// The next event; `None` once the client has stopped and every event was taken.
    /// Cancel-safe.
    pub async fn recv(&self) -> Option<ChatEvent> {
        next(&self.shared).await
    }

    /// An event if one is queued, without waiting.
    pub fn try_recv(&self) -> Result<ChatEvent, TryRecvError> {
        match take(&self.shared) {
            Taken::Event(e) => Ok(*e),
            Taken::Nothing => Err(TryRecvError::Empty),
            Taken::Finished => Err(TryRecvError::Closed),
        }
    }

    /// The next event, waiting at most `timeout` (by tokio's clock, so paused time in tests
    /// controls it).
    pub async fn recv_timeout(&self, timeout: Duration) -> Result<ChatEvent, RecvTimeoutError> {
        match tokio::time::timeout(timeout, self.recv()).await {
            Ok(Some(e)) => Ok(e),
            Ok(None) => Err(RecvTimeoutError::Closed),
            Err(_) => Err(RecvTimeoutError::Timeout),
        }
    }

    /// The next event, waiting until `deadline` at most: [`recv_timeout`](Self::recv_timeout)
    /// for the time left until then (a deadline already past only takes a queued event).
    pub async fn recv_deadline(&self, deadline: Instant) -> Result<ChatEvent, RecvTimeoutError> {
        self.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .await
    }

    /// Events queued now.
    pub fn queued(&self) -> usize {
        self.shared.lock().driver.queued()
    }
}

enum Taken {
    Event(Box<ChatEvent>),
    Nothing,
    Finished,
}

fn take(shared: &Shared) -> Taken {
    let mut st = shared.lock();
    let holding = st.driver.is_holding();
    match st.driver.take_event(now()) {
        Some(e) => {
            if holding {
                // The answer held back by backpressure went in: its actions are the task's.
                shared.wake.notify_one();
            }
            Taken::Event(Box::new(e))
        }
        None if st.driver.is_finished() || *shared.stopped.borrow() => Taken::Finished,
        None => Taken::Nothing,
    }
}

async fn next(shared: &Shared) -> Option<ChatEvent> {
    loop {
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        // Registered before looking, so that nothing queued in between is missed.
        changed.as_mut().enable();
        match take(shared) {
            Taken::Event(e) => return Some(*e),
            Taken::Finished => return None,
            Taken::Nothing => changed.await,
        }
    }
}

impl Stream for EventStream {
    type Item = ChatEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChatEvent>> {
        let this = self.get_mut();
        let shared = Arc::clone(&this.shared);
        let slot = this
            .waiting
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let waiting = slot.get_or_insert_with(|| Box::pin(async move { next(&shared).await }));
        let ready = waiting.as_mut().poll(cx);
        if ready.is_ready() {
            *slot = None;
        }
        ready
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.events_gone = true;
        st.driver.close_events(now());
        drop(st);
        self.shared.wake.notify_one();
    }
}
