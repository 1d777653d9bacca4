//! The client's own threads, and keeping reqwest's blocking client on them.
//!
//! reqwest's blocking client panics when it is built or used (and, in some versions, dropped)
//! on a thread that is inside a tokio runtime's context, as a caller's thread is when it
//! calls this crate from an `async fn` or `#[tokio::main]`. So everything reqwest does runs
//! on a thread this crate started: the REST workers, the stream thread and the token thread
//! are marked as such, and [`on_own_thread`] runs anything else on a short-lived thread.

use std::cell::Cell;
use std::io;
use std::thread::JoinHandle;

thread_local! {
    static OWN: Cell<bool> = const { Cell::new(false) };
}

/// Starts a named thread of the client's own.
pub(crate) fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            OWN.with(|own| own.set(true));
            f();
        })
}

/// Whether this thread is one the client started.
fn is_own() -> bool {
    OWN.with(Cell::get)
}

/// Runs `f` on this thread if it is one of the client's, else on a short-lived thread of the
/// client's, waiting for it. `None` if no thread could be started or `f` panicked there.
pub(crate) fn on_own_thread<T: Send>(f: impl FnOnce() -> T + Send) -> Option<T> {
    if is_own() {
        return Some(f());
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("chat-blocking-rest".to_owned())
            .spawn_scoped(scope, || {
                OWN.with(|own| own.set(true));
                f()
            })
            .ok()?
            .join()
            .ok()
    })
}

/// The threads a client has started and not yet joined: its stream thread, and the REST and
/// token workers, each short-lived.
pub(crate) struct Workers(Vec<JoinHandle<()>>);

impl Workers {
    pub(crate) fn new(stream: JoinHandle<()>) -> Self {
        Self(vec![stream])
    }

    /// Starts a worker, first joining those that have finished, so that the list stays
    /// short.
    pub(crate) fn spawn(
        &mut self,
        name: &str,
        f: impl FnOnce() + Send + 'static,
    ) -> io::Result<()> {
        let (done, running): (Vec<_>, Vec<_>) = self.0.drain(..).partition(JoinHandle::is_finished);
        self.0 = running;
        for handle in done {
            let _ = handle.join();
        }
        self.0.push(spawn(name, f)?);
        Ok(())
    }

    /// Waits for every thread. Threads never take the client's state lock, so this cannot
    /// deadlock under it.
    pub(crate) fn join_all(&mut self) {
        for handle in self.0.drain(..) {
            let _ = handle.join();
        }
    }

    /// How many are not yet joined (for tests).
    #[cfg(feature = "test-util")]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}
