//! A TCP proxy in front of the emulator that can cut a session's event-stream sockets: the
//! "dropped socket" fault, for any transport and any adapter, without touching the server.
//!
//! Each accepted connection is tagged with the session id of its first request when that
//! request is on the events resource (`…/sessions/{sid}/events`): a WebSocket, or the
//! connection the lean long poll keeps for its polls. [`Proxy::cut`] aborts those
//! connections' pipes, which closes both sockets at once, mid-stream.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

#[derive(Default)]
struct Table {
    next: u64,
    /// Connection id → the session its first request named (events connections only).
    sessions: HashMap<u64, String>,
    /// Connection id → its pipe's task.
    pipes: HashMap<u64, AbortHandle>,
}

/// The proxy; dropping it stops accepting (open pipes run to their end).
pub(crate) struct Proxy {
    addr: SocketAddr,
    table: Arc<Mutex<Table>>,
    accept: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub(crate) async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let table = Arc::new(Mutex::new(Table::default()));
        let shared = Arc::clone(&table);
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let _ = inbound.set_nodelay(true);
                pipe(inbound, upstream, Arc::clone(&shared));
            }
        });
        Ok(Self {
            addr,
            table,
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
    use super::events_session;

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
