//! [`EventStream`]: the client's events, as a blocking iterator.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_driver::{ChatEvent, RecvTimeoutError, TryRecvError};

use crate::driver::Shared;

/// The client's events, in order: a blocking [`Iterator`], with [`recv`](Self::recv),
/// [`try_recv`](Self::try_recv) and [`recv_timeout`](Self::recv_timeout), the same methods
/// as chat-tokio's.
///
/// **Reading events is what drives the client.** There is no background runtime: the thread
/// blocked here (or in a command) carries the protocol forward, feeding responses and timers
/// to the protocol core; with nobody blocked, nothing happens, and due timers fire on the
/// next call. Keep one thread reading (`for event in &events`) for as long as the chat runs;
/// commands may be called from any thread, this one included.
///
/// The queue is bounded ([`ClientBuilder::event_capacity`](crate::ClientBuilder::event_capacity),
/// 1024 by default). When the application falls behind, nothing is dropped: once the queue is
/// full the client stops polling until there is room, and the events wait on the server,
/// which keeps them until a later poll acknowledges them. What the application has taken is
/// what [`Client::resumption`](crate::Client::resumption) counts as seen.
///
/// The iteration ends after `SHUTDOWN`, or after the last events of a session the server no
/// longer knows ([`Client::closed`](crate::Client::closed) says why). Dropping the stream
/// is allowed: the client goes on and discards its events; it stops when every handle and
/// the stream are dropped.
pub struct EventStream {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.shared.lock().driver.fmt_event_stream(f)
    }
}

impl EventStream {
    /// The next event, blocking; `None` once the client has stopped and every event was taken.
    pub fn recv(&self) -> Option<ChatEvent> {
        self.recv_until(None).ok()
    }

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<ChatEvent, RecvTimeoutError> {
        self.recv_until(Some(Instant::now() + timeout))
    }

    /// The next event, waiting until `deadline` at most.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<ChatEvent, RecvTimeoutError> {
        self.recv_until(Some(deadline))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<ChatEvent, RecvTimeoutError> {
        let got = self.shared.wait_for(deadline, |st| {
            let now = st.now();
            match st.driver.take_event(now) {
                Some(e) => Some(Ok(e)),
                None if st.stopped || st.driver.is_finished() => {
                    Some(Err(RecvTimeoutError::Closed))
                }
                None => None,
            }
        });
        got.unwrap_or(Err(RecvTimeoutError::Timeout))
    }

    /// An event if one is ready, after taking in whatever input has already arrived;
    /// never blocks on the network.
    pub fn try_recv(&self) -> Result<ChatEvent, TryRecvError> {
        match self.recv_deadline(Instant::now()) {
            Ok(e) => Ok(e),
            Err(RecvTimeoutError::Timeout) => Err(TryRecvError::Empty),
            Err(_) => Err(TryRecvError::Closed),
        }
    }

    /// Drives the client until `deadline` without taking any event: for a thread that only
    /// wants the protocol to go on (timers, reconnection) while events stay queued.
    pub fn run_until(&self, deadline: Instant) {
        let _ = self
            .shared
            .wait_for(Some(deadline), |st| st.stopped.then_some(()));
    }

    /// Events queued now, without blocking or driving.
    pub fn queued(&self) -> usize {
        self.shared.lock().driver.queued()
    }
}

impl Iterator for EventStream {
    type Item = ChatEvent;

    fn next(&mut self) -> Option<ChatEvent> {
        self.recv()
    }
}

impl Iterator for &EventStream {
    type Item = ChatEvent;

    fn next(&mut self) -> Option<ChatEvent> {
        self.recv()
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        let now = st.now();
        st.driver.close_events(now);
        st.drain();
    }
}
