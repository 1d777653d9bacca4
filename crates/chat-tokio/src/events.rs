//! The event stream handed out by [`ClientBuilder::connect`](crate::ClientBuilder::connect).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::SystemTime;

use chat_core::Event;
use futures::Stream;
use tokio::sync::mpsc;

/// One event of the official SDK's 16, with the time the client produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatEvent {
    /// The event.
    pub event: Event,
    /// When the client produced it (the official `eventDate` of client-side events), by the
    /// wall clock as of the client's start plus tokio's monotonic clock since.
    pub at: SystemTime,
}

impl ChatEvent {
    /// The official name, such as `"MESSAGE_ARRIVED"`.
    pub fn name(&self) -> &'static str {
        self.event.name()
    }
}

pub(crate) type Overflow = Arc<Mutex<VecDeque<ChatEvent>>>;

/// The client's events, in order, as a [`futures::Stream`].
///
/// The buffer is bounded ([`ClientBuilder::event_capacity`](crate::ClientBuilder::event_capacity),
/// 1024 by default). **When the application falls behind**, the client applies backpressure
/// instead of dropping anything: once the buffer and a second queue of the same size are full,
/// it stops feeding new event-stream responses to the protocol core until there is room.
/// This is safe because the server only discards events that a later poll acknowledges: the
/// events simply wait on the server. Commands, replies and timers keep working meanwhile.
///
/// The stream ends after `SHUTDOWN` (or when the client has stopped). Dropping it is allowed:
/// the client goes on and discards its events; the client stops when every handle and the
/// stream are dropped.
pub struct EventStream {
    pub(crate) rx: mpsc::Receiver<Box<ChatEvent>>,
    pub(crate) overflow: Overflow,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("buffered", &self.rx.len())
            .finish_non_exhaustive()
    }
}

impl EventStream {
    /// The next event; `None` once the client has stopped. Cancel-safe.
    pub async fn recv(&mut self) -> Option<ChatEvent> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<ChatEvent>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(e)) => Poll::Ready(Some(*e)),
            Poll::Ready(None) => Poll::Ready(
                self.overflow
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pop_front(),
            ),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Stream for EventStream {
    type Item = ChatEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChatEvent>> {
        self.get_mut().poll_event(cx)
    }
}
