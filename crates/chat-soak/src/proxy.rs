//! A TCP proxy in front of the emulator that can cut a session's event-stream sockets (the
//! "dropped socket" fault) and take the whole server away (the "outage" fault and the
//! reconnect-storm benchmark), for any transport and any adapter, without touching the
//! server.
//!
//! Each accepted connection is tagged with the session id of its first request when that
//! request is on the events resource (`…/sessions/{sid}/events`): a WebSocket, or the
//! connection the lean long poll keeps for its polls. [`Proxy::cut`] aborts those
//! connections' pipes, which closes both sockets at once, mid-stream.
//!
//! [`Proxy::outage`] is a whole-server outage as the clients see one: every connection
//! through the proxy is cut at once (REST calls, polls and WebSockets alike), and the
//! listening socket is closed, so that every new connection is refused (`ECONNREFUSED`)
//! until the proxy listens again, on the same port, when the outage is over.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

/// Connections waiting to be accepted: enough for a thousand clients coming back at once.
const BACKLOG: u32 = 4096;

#[derive(Default)]
struct Table {
    next: u64,
    /// Connection id → the session its first request named (events connections only).
    sessions: HashMap<u64, String>,
    /// Connection id → its pipe's task.
    pipes: HashMap<u64, AbortHandle>,
}

impl Table {
    /// Aborts every open pipe; returns how many were open.
    fn cut_all(&mut self) -> usize {
        self.sessions.clear();
        let mut cut = 0;
        for (_, abort) in self.pipes.drain() {
            if !abort.is_finished() {
                abort.abort();
                cut += 1;
            }
        }
        cut
    }
}

/// Whether the proxy is listening, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status {
    /// True while connections are accepted; false during an outage.
    pub(crate) up: bool,
    /// When it last went up or down (by the wall clock, as chat events are stamped).
    pub(crate) since: SystemTime,
    /// Outages begun so far.
    pub(crate) outages: u64,
    /// Connections cut when the latest outage began.
    pub(crate) cut: usize,
}

/// The proxy; dropping it stops accepting (open pipes run to their end).
pub(crate) struct Proxy {
    addr: SocketAddr,
    table: Arc<Mutex<Table>>,
    /// Until when the server is to be unreachable (`None`: no outage ordered yet).
    down_until: watch::Sender<Option<Instant>>,
    status: watch::Receiver<Status>,
    accept: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A listening socket on `addr` with `SO_REUSEADDR`, so that the port can be listened on
/// again after an outage while connections of before it are in `TIME_WAIT`.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub(crate) async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        let table = Arc::new(Mutex::new(Table::default()));
        let (down_until, orders) = watch::channel(None);
        let (report, status) = watch::channel(Status {
            up: true,
            since: SystemTime::now(),
            outages: 0,
            cut: 0,
        });
        let accept = tokio::spawn(serve(
            listener,
            upstream,
            Arc::clone(&table),
            orders,
            report,
        ));
        Ok(Self {
            addr,
            table,
            down_until,
            status,
            accept,
        })
    }

    /// `http://127.0.0.1:port`, for the clients.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Cuts every open event-stream connection of `session`; returns how many.
    pub(crate) fn cut(&self, session: &str) -> usize {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let ids: Vec<u64> = table
            .sessions
            .iter()
            .filter(|(_, s)| *s == session)
            .map(|(id, _)| *id)
            .collect();
        let mut cut = 0;
        for id in &ids {
            table.sessions.remove(id);
            if let Some(abort) = table.pipes.remove(id) {
                if !abort.is_finished() {
                    abort.abort();
                    cut += 1;
                }
            }
        }
        cut
    }

    /// A whole-server outage of `length` from now: every connection is cut and new ones are
    /// refused until it is over. An outage ordered during another one lengthens it (to
    /// whichever ends last); it does not cut again.
    pub(crate) fn outage(&self, length: Duration) {
        let until = Instant::now() + length;
        self.down_until
            .send_modify(|current| *current = Some(current.map_or(until, |c| c.max(until))));
    }

    /// The proxy's state now.
    pub(crate) fn status(&self) -> Status {
        *self.status.borrow()
    }

    /// Waits until the proxy is down (`up` false) or up (`up` true), and returns its state
    /// then.
    pub(crate) async fn wait_until(&self, up: bool) -> Status {
        let mut status = self.status.clone();
        let seen = status.wait_for(|s| s.up == up).await.map(|s| *s);
        // The sender lives in the accept task, which only ends when the proxy is dropped.
        seen.unwrap_or_else(|_| self.status())
    }
}

/// The accept loop: forwards connections while up; during an outage holds no listening
/// socket, so that connections are refused, and listens again on the same address after.
async fn serve(
    listener: TcpListener,
    upstream: SocketAddr,
    table: Arc<Mutex<Table>>,
    mut orders: watch::Receiver<Option<Instant>>,
    report: watch::Sender<Status>,
) {
    let Ok(addr) = listener.local_addr() else {
        return;
    };
    let mut listener = Some(listener);
    loop {
        let until = *orders.borrow_and_update();
        let down = until.is_some_and(|u| u > Instant::now());
        match (&listener, down) {
            (Some(l), false) => {
                tokio::select! {
                    accepted = l.accept() => match accepted {
                        Ok((inbound, _)) => {
                            let _ = inbound.set_nodelay(true);
                            pipe(inbound, upstream, Arc::clone(&table));
                        }
                        // Out of file descriptors, most likely: the clients' next attempts
                        // will find room again.
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    },
                    changed = orders.changed() => if changed.is_err() { return },
                }
            }
            (Some(_), true) => {
                // Refuse first, then cut: nothing is accepted between the two.
                listener = None;
                let cut = table
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .cut_all();
                report.send_modify(|s| {
                    *s = Status {
                        up: false,
                        since: SystemTime::now(),
                        outages: s.outages + 1,
                        cut,
                    }
                });
            }
            (None, true) => {
                let until = until.unwrap_or_else(Instant::now);
                tokio::select! {
                    () = tokio::time::sleep_until(until) => {}
                    changed = orders.changed() => if changed.is_err() { return },
                }
            }
            (None, false) => match listen(addr) {
                Ok(l) => {
                    listener = Some(l);
                    report.send_modify(|s| {
                        s.up = true;
                        s.since = SystemTime::now();
                    });
                }
                // The port may be held for a moment by a refused client's socket (its
                // ephemeral port can be this one): try again shortly.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
        }
    }
}

/// The session id in a request's first line, if it is on the events resource.
fn events_session(head: &[u8]) -> Option<String> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let path = line.split(' ').nth(1)?;
    let path = path.split('?').next()?;
    let rest = path.split("/sessions/").nth(1)?;
    let (sid, tail) = rest.split_once('/')?;
    (tail == "events").then(|| sid.to_owned())
}

fn pipe(mut inbound: TcpStream, upstream: SocketAddr, table: Arc<Mutex<Table>>) {
    let id = {
        let mut t = table.lock().unwrap_or_else(PoisonError::into_inner);
        t.next += 1;
        t.next
    };
    let untag = Arc::clone(&table);
    let task = tokio::spawn(async move {
        let Ok(mut outbound) = TcpStream::connect(upstream).await else {
            return;
        };
        let _ = outbound.set_nodelay(true);
        let mut head = vec![0u8; 4096];
        let n = match inbound.read(&mut head).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if outbound.write_all(&head[..n]).await.is_err() {
            return;
        }
        if let Some(session) = events_session(&head[..n]) {
            let mut t = table.lock().unwrap_or_else(PoisonError::into_inner);
            t.sessions.insert(id, session);
        }
        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
    });
    let mut t = untag.lock().unwrap_or_else(PoisonError::into_inner);
    // Finished pipes are swept here.
    let Table {
        sessions, pipes, ..
    } = &mut *t;
    pipes.insert(id, task.abort_handle());
    pipes.retain(|_, abort| !abort.is_finished());
    sessions.retain(|id, _| pipes.contains_key(id));
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::{Proxy, events_session};

    /// An upstream that echoes every byte back.
    async fn echo() -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 256];
                    while let Ok(n @ 1..) = socket.read(&mut buf).await {
                        if socket.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(socket: &mut TcpStream, text: &[u8]) -> std::io::Result<Vec<u8>> {
        socket.write_all(text).await?;
        let mut back = vec![0u8; text.len()];
        socket.read_exact(&mut back).await?;
        Ok(back)
    }

    #[tokio::test]
    async fn an_outage_cuts_every_connection_refuses_new_ones_then_listens_again() {
        let proxy = Proxy::start(echo().await).await.expect("proxy");
        let addr = proxy.addr;
        let mut open = TcpStream::connect(addr).await.expect("connect");
        assert_eq!(
            round_trip(&mut open, b"GET / HTTP/1.1\r\n")
                .await
                .expect("echo"),
            b"GET / HTTP/1.1\r\n"
        );
        assert!(proxy.status().up);

        proxy.outage(Duration::from_millis(300));
        let down = proxy.wait_until(false).await;
        assert_eq!((down.up, down.outages, down.cut), (false, 1, 1));
        // The open connection is gone, mid-stream.
        let mut buf = [0u8; 8];
        assert!(matches!(open.read(&mut buf).await, Ok(0) | Err(_)));
        // A new one is refused, not held.
        let refused = TcpStream::connect(addr)
            .await
            .expect_err("refused during the outage");
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

        let up = proxy.wait_until(true).await;
        assert!(up.since >= down.since);
        let mut again = TcpStream::connect(addr)
            .await
            .expect("the same port after the outage");
        assert_eq!(
            round_trip(&mut again, b"ping").await.expect("echo"),
            b"ping"
        );
        assert_eq!(proxy.status().outages, 1);
    }

    #[tokio::test]
    async fn an_outage_ordered_during_another_lengthens_it() {
        let proxy = Proxy::start(echo().await).await.expect("proxy");
        proxy.outage(Duration::from_millis(100));
        let down = proxy.wait_until(false).await;
        proxy.outage(Duration::from_millis(400));
        let up = proxy.wait_until(true).await;
        let length = up.since.duration_since(down.since).unwrap_or_default();
        assert!(length >= Duration::from_millis(350), "{length:?}");
        assert_eq!(up.outages, 1);
    }

    #[test]
    fn the_session_of_an_events_request() {
        assert_eq!(
            events_session(
                b"GET /sdk/digital/chat/v1/integrations/i/sessions/s-1/events?lastEventId=3 HTTP/1.1\r\nHost: x\r\n"
            ),
            Some("s-1".to_owned())
        );
        assert_eq!(
            events_session(b"GET /sdk/digital/chat/v1/integrations/i/sessions/s-1 HTTP/1.1\r\n"),
            None
        );
        assert_eq!(
            events_session(b"POST /sdk/digital/chat/v1/integrations/i/engagements HTTP/1.1\r\n"),
            None
        );
        assert_eq!(events_session(b"\xff\xfe"), None);
    }
}
