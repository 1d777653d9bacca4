//! [`Connection`]: the client's events, as a blocking iterator.

use std::sync::Arc;
use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant, SystemTime};

use chat_core::Event;

use crate::driver::Shared;

/// One event of the official SDK's 16, with the time the client produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatEvent {
    /// The event.
    pub event: Event,
    /// When the client produced it (the official `eventDate` of client-side events), by the
    /// wall clock as of the client's start plus the monotonic clock since.
    pub at: SystemTime,
}

impl ChatEvent {
    /// The official name, such as `"MESSAGE_ARRIVED"`.
    pub fn name(&self) -> &'static str {
        self.event.name()
    }
}

/// The client's events, in order: a blocking [`Iterator`], with [`recv`](Self::recv),
/// [`recv_timeout`](Self::recv_timeout) and [`try_recv`](Self::try_recv).
///
/// **Reading events is what drives the client.** There is no background runtime: the thread
/// blocked here (or in a command) carries the protocol forward, feeding responses and timers
/// to chat-core; with nobody blocked, nothing happens, and due timers fire on the next call.
/// Keep one thread reading (`for event in connection`) for as long as the chat runs;
/// commands may be called from any thread, this one included.
///
/// The queue is bounded ([`ClientBuilder::event_capacity`](crate::ClientBuilder::event_capacity),
/// 1024 by default). When the application falls behind, nothing is dropped: once the queue is
/// full the client stops feeding event-stream answers to the protocol core until there is
/// room, and the events wait on the server, which keeps them until a later poll acknowledges
/// them.
///
/// The iteration ends after `SHUTDOWN` (or when the client has stopped). Dropping the
/// connection is allowed: the client goes on and discards its events; it stops when every
/// handle and the connection are dropped.
pub struct Connection {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("queued", &self.shared.lock().events.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// The next event, blocking; `None` once the client has stopped and every event was read.
    pub fn recv(&self) -> Option<ChatEvent> {
        self.shared
            .wait_for(None, |st| match st.events.pop_front() {
                Some(e) => Some(Some(e)),
                None => st.stopped.then_some(None),
            })
            .flatten()
    }

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<ChatEvent, RecvTimeoutError> {
        self.recv_deadline(Instant::now() + timeout)
    }

    /// The next event, waiting until `deadline` at most.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<ChatEvent, RecvTimeoutError> {
        let got = self
            .shared
            .wait_for(Some(deadline), |st| match st.events.pop_front() {
                Some(e) => Some(Ok(e)),
                None => st.stopped.then_some(Err(RecvTimeoutError::Disconnected)),
            });
        got.unwrap_or(Err(RecvTimeoutError::Timeout))
    }

    /// An event if one is ready, after taking in whatever input has already arrived;
    /// never blocks on the network.
    pub fn try_recv(&self) -> Result<ChatEvent, TryRecvError> {
        match self.recv_deadline(Instant::now()) {
            Ok(e) => Ok(e),
            Err(RecvTimeoutError::Timeout) => Err(TryRecvError::Empty),
            Err(RecvTimeoutError::Disconnected) => Err(TryRecvError::Disconnected),
        }
    }

    /// Drives the client until `deadline` without taking any event: for a thread that only
    /// wants the protocol to go on (timers, reconnection) while events stay queued.
    pub fn run_until(&self, deadline: Instant) {
        let _ = self
            .shared
            .wait_for(Some(deadline), |st| st.stopped.then_some(()));
    }

    /// Events already queued, without blocking or driving.
    pub fn queued(&self) -> usize {
        self.shared.lock().events.len()
    }
}

impl Iterator for Connection {
    type Item = ChatEvent;

    fn next(&mut self) -> Option<ChatEvent> {
        self.recv()
    }
}

impl Iterator for &Connection {
    type Item = ChatEvent;

    fn next(&mut self) -> Option<ChatEvent> {
        self.recv()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.events_open = false;
        st.events.clear();
        st.release_held();
    }
}
