//! The server's accept loop (hyper, HTTP/1.1): a header-read timeout, an idle timeout and a cap
//! on open connections, so that idle or slow clients cannot starve real ones.
//!
//! Every connection is in one of three phases:
//!
//! - *head*: from accept, or from the first byte of the next request on a keep-alive
//!   connection, until its request head is complete. Closed when that takes longer than the
//!   header-read timeout.
//! - *busy*: a request is in flight (from its head until its response body has been written).
//!   Never closed by a timer.
//! - *idle*: a keep-alive connection between requests. Closed after the idle timeout.
//!
//! When the cap is reached, the connection that has been waiting longest in the head or idle
//! phase is closed to admit the new one; when every connection is busy, accepting pauses (one
//! accepted socket waits, the rest stay in the kernel's backlog) until one is released or
//! becomes idle. The same eviction runs when `accept` fails for want of file descriptors.
//!
//! The timers are ours rather than hyper's `header_read_timeout`: hyper restarts that timer as
//! soon as a keep-alive connection goes idle, which would make the idle timeout equal to the
//! header timeout. (The chat emulator has the same loop, with TLS and upgrades; the two crates
//! share no code.)

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The connection limits of [`serve`] (and of `axp-token-server`: `header_read_timeout_ms`,
/// `idle_timeout_ms` and `max_connections` in its configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a connection may take to deliver a whole request head, counted from accept or
    /// from the first byte of a later request on a keep-alive connection (default 10 s).
    pub header_read_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request (default 60 s).
    pub idle_timeout: Duration,
    /// At most this many open connections (default 1,024; at least 1). At the cap, the
    /// connection that has waited longest without a request in flight is closed to admit a
    /// new one.
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// The default header-read timeout.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default idle timeout.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// The default connection cap.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Serves `app` on `listener` with `limits` until `shutdown` completes; then stops accepting,
/// closes the connections without a request in flight, lets in-flight requests finish and
/// returns once every connection has closed. Dropping the future closes them all at once.
///
/// Use it instead of `axum::serve`, which has neither timeouts nor a connection cap:
///
/// ```no_run
/// # async fn run(app: axum::Router) -> std::io::Result<()> {
/// use token_client::server::{ConnectionLimits, serve};
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// serve(listener, app, ConnectionLimits::default(), async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await;
/// # Ok(())
/// # }
/// ```
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut signal = pin!(shutdown);
    let (stop, stopped) = watch::channel(false);
    let shared = Arc::new(Shared {
        limits: ConnectionLimits {
            max_connections: limits.max_connections.max(1),
            ..limits
        },
        table: Mutex::new(Table::default()),
        changed: Notify::new(),
    });
    let mut tasks = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = &mut signal => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) if is_out_of_files(&e) => {
                // Free a descriptor by closing the longest-waiting idle or slow connection.
                let shed = shared.shed();
                tracing::debug!(shed, "accept failed: {e}");
                tokio::select! {
                    () = shared.changed.notified(), if shed => {}
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
                continue;
            }
            Err(e) => {
                tracing::debug!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = tokio::select! {
            slot = shared.admit() => slot,
            () = &mut signal => break,
        };
        tasks.spawn(http(tcp, peer, slot, app.clone(), stopped.clone()));
    }
    drop(listener);
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
}

/// Serves HTTP/1.1 on `io` until it closes, times out or is evicted.
async fn http<T>(
    io: T,
    peer: SocketAddr,
    slot: Slot,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = slot.conn.clone();
    let shared = slot.shared.clone();
    let limits = shared.limits;
    let service = Tracking {
        inner: TowerToHyperService::new(router),
        conn: conn.clone(),
        shared,
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // No hyper timer: the timeouts are ours (see the module documentation).
    builder.header_read_timeout(None::<Duration>);
    let io = TokioIo::new(Tracked { io, slot });
    let mut served = pin!(builder.serve_connection(io, service));
    let mut draining = false;
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
                return;
            }
            () = sleep_until(conn.deadline(&limits)) => if let Some(what) = conn.expired_phase(&limits) {
                tracing::debug!(%peer, "closing connection: {what} timeout");
                return;
            },
            () = conn.wake.notified() => if conn.is_evicted() {
                tracing::debug!(%peer, "connection closed to admit another");
                return;
            },
            _ = shutdown.wait_for(|down| *down), if !draining => {
                // Without a request in flight there is nothing to finish: close now (hyper's
                // graceful shutdown would wait for a half-sent head to complete).
                if !conn.is_busy() {
                    return;
                }
                draining = true;
                served.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// `EMFILE` or `ENFILE` (the same numbers on Linux and the BSDs, macOS included).
fn is_out_of_files(e: &io::Error) -> bool {
    cfg!(unix) && matches!(e.raw_os_error(), Some(23 | 24))
}

/// The state every connection task and the accept loop share.
struct Shared {
    limits: ConnectionLimits,
    table: Mutex<Table>,
    /// Notified when a connection is released or becomes evictable (idle).
    changed: Notify,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Arc<Conn>>,
    /// Connections told to close that have not closed yet.
    evicting: usize,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a new connection: at once while under the cap; else after evicting the
    /// longest-waiting idle or slow connection, or, when every one is busy, once one frees up.
    async fn admit(self: &Arc<Self>) -> Slot {
        loop {
            let changed = self.changed.notified();
            {
                let mut table = self.table();
                if table.open.len() < self.limits.max_connections {
                    let id = table.next_id;
                    table.next_id += 1;
                    let conn = Arc::new(Conn::new());
                    table.open.insert(id, conn.clone());
                    return Slot {
                        id,
                        conn,
                        shared: self.clone(),
                    };
                }
                Self::shed_locked(&mut table);
            }
            changed.await;
        }
    }

    /// Tells the longest-waiting idle or slow connection to close, unless one is already
    /// closing. False when none can be closed.
    fn shed(&self) -> bool {
        Self::shed_locked(&mut self.table())
    }

    fn shed_locked(table: &mut Table) -> bool {
        if table.evicting > 0 {
            return true;
        }
        let victim = table
            .open
            .values()
            .filter_map(|conn| conn.evictable_since().map(|since| (since, conn)))
            .min_by_key(|(since, _)| *since)
            .map(|(_, conn)| conn.clone());
        match victim {
            Some(conn) => {
                conn.evicted.store(true, Ordering::Release);
                conn.wake.notify_one();
                table.evicting += 1;
                true
            }
            None => false,
        }
    }
}

/// A place in the table, held for as long as the connection's socket is open.
struct Slot {
    id: u64,
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        {
            let mut table = self.shared.table();
            table.open.remove(&self.id);
            if self.conn.is_evicted() {
                table.evicting = table.evicting.saturating_sub(1);
            }
        }
        self.shared.changed.notify_one();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Busy,
    Idle,
}

struct State {
    phase: Phase,
    /// When the current phase began.
    since: Instant,
    in_flight: u32,
}

/// One connection's phase, and how its task is told to look again.
struct Conn {
    state: Mutex<State>,
    evicted: AtomicBool,
    /// Notified when the deadline may have moved earlier, or on eviction.
    wake: Notify,
}

impl Conn {
    fn new() -> Self {
        Self {
            state: Mutex::new(State {
                phase: Phase::Head,
                since: Instant::now(),
                in_flight: 0,
            }),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// A request in flight.
    fn is_busy(&self) -> bool {
        matches!(self.state().phase, Phase::Busy)
    }

    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        let state = self.state();
        match state.phase {
            Phase::Head => state.since.checked_add(limits.header_read_timeout),
            Phase::Idle => state.since.checked_add(limits.idle_timeout),
            Phase::Busy => None,
        }
    }

    /// Which timeout has run out, if one has.
    fn expired_phase(&self, limits: &ConnectionLimits) -> Option<&'static str> {
        let what = match self.state().phase {
            Phase::Head => "header-read",
            Phase::Idle => "idle",
            Phase::Busy => return None,
        };
        self.deadline(limits)
            .is_some_and(|deadline| deadline <= Instant::now())
            .then_some(what)
    }

    fn evictable_since(&self) -> Option<Instant> {
        if self.is_evicted() {
            return None;
        }
        let state = self.state();
        matches!(state.phase, Phase::Head | Phase::Idle).then_some(state.since)
    }

    /// Bytes arrived: on an idle connection, the next request head has begun.
    fn on_bytes(&self) {
        let mut state = self.state();
        if state.phase == Phase::Idle {
            state.phase = Phase::Head;
            state.since = Instant::now();
            drop(state);
            self.wake.notify_one();
        }
    }

    fn begin_request(&self) {
        let mut state = self.state();
        state.in_flight += 1;
        state.phase = Phase::Busy;
    }

    /// The response has been written (or abandoned). True when the connection became idle.
    fn end_request(&self) -> bool {
        let mut state = self.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight > 0 || state.phase != Phase::Busy {
            return false;
        }
        state.phase = Phase::Idle;
        state.since = Instant::now();
        drop(state);
        self.wake.notify_one();
        true
    }
}

/// The socket, noting when bytes of a new request arrive; it holds the connection's slot.
struct Tracked<T> {
    io: T,
    slot: Slot,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.slot.conn.on_bytes();
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The router as a hyper service that marks its connection busy from a request's head until
/// its response body is done.
struct Tracking {
    inner: TowerToHyperService<Router>,
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<TrackedBody>, Infallible>> + Send>>;

impl Service<Request<Incoming>> for Tracking {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.conn.begin_request();
        let guard = RequestGuard {
            conn: self.conn.clone(),
            shared: self.shared.clone(),
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| TrackedBody {
                body,
                _guard: guard,
            }))
        })
    }
}

/// Ends its request when dropped: with the response body, or with the call if it never
/// answered.
struct RequestGuard {
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.conn.end_request() {
            self.shared.changed.notify_one();
        }
    }
}

/// A response body that ends its request when hyper drops it (once written).
struct TrackedBody {
    body: Body,
    _guard: RequestGuard,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
