//! The stream thread: one blocking event-stream read at a time (a long poll, a WebSocket
//! read, a disconnection probe), whose answers it posts into the loop's input channel, so
//! that a read that blocks for a whole hold time never blocks the loop.

use std::sync::mpsc::{Receiver, Sender};

use chat_core::{PollOutcome, Request, RequestKind, TransportError};

use crate::driver::Input;
use crate::transport::{Cancel, EventTransport};

/// One poll or probe for the stream thread.
pub(crate) struct Job {
    pub(crate) request: Request,
    pub(crate) cancel: Cancel,
    /// Drop the persistent connection first (the previous poll was aborted or failed).
    pub(crate) reset: bool,
}

/// Runs the jobs until the loop drops its sender (at stop).
pub(crate) fn stream_thread(
    jobs: &Receiver<Job>,
    events: &mut dyn EventTransport,
    probes: &mut dyn EventTransport,
    tx: &Sender<Input>,
) {
    // Ends when the loop drops its sender (at stop).
    while let Ok(job) = jobs.recv() {
        let id = job.request.id;
        let input = if job.cancel.is_cancelled() {
            Input::Poll(id, PollOutcome::Failed(TransportError::Disconnected))
        } else if job.request.kind == RequestKind::Probe {
            Input::Probe(id, probes.poll(job.request, &job.cancel))
        } else {
            if job.reset {
                events.reset();
            }
            tracing::trace!(transport = events.name(), "poll");
            Input::Poll(id, events.poll(job.request, &job.cancel))
        };
        if tx.send(input).is_err() {
            break;
        }
    }
    events.reset();
    probes.reset();
}
