//! The live change feed: a broadcast of what changed in the emulator's state (sessions,
//! engagements and their messages and participants, faults armed and fired, integrations,
//! tokens, the agent), for [`Control::changes`](crate::Control::changes), the control API's
//! `GET /emulator/v1/changes` and the console.
//!
//! A notification says *what* changed, not the new state: a watcher reads the state it shows
//! again ([`Control::snapshot`](crate::Control::snapshot), a transcript). Sending costs next to
//! nothing when nobody listens.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use chat_core::{EngagementId, SessionId};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::state::Inner;

/// Notifications kept for a slow watcher before it is told it lagged.
const FEED_CAPACITY: usize = 1024;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ChangeKind {
    /// A session was created or removed, or its event stream started or stopped.
    Session,
    /// An engagement changed: created, a participant joined or left, it ended, or its
    /// simulated agent was turned on or off.
    Engagement,
    /// A message was posted into an engagement, or a session acknowledged events.
    Message,
    /// A fault or delay was armed, fired or cleared, or an outage began or ended.
    Faults,
    /// An integration was created or deleted.
    Integrations,
    /// Chat tokens were expired or revoked, or OAuth access tokens revoked.
    Tokens,
    /// The agent simulation's mode changed.
    Agent,
    /// Notifications were missed (the watcher was too slow): read everything again.
    Resync,
}

/// One notification of the live feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Change {
    /// What changed.
    pub kind: ChangeKind,
    /// The engagement concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engagement_id: Option<EngagementId>,
    /// The session concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
}

impl Change {
    pub(crate) fn new(kind: ChangeKind) -> Self {
        Self {
            kind,
            engagement_id: None,
            session_id: None,
        }
    }

    pub(crate) fn engagement(kind: ChangeKind, engagement: &EngagementId) -> Self {
        Self {
            engagement_id: Some(engagement.clone()),
            ..Self::new(kind)
        }
    }

    pub(crate) fn session(session: &SessionId) -> Self {
        Self {
            session_id: Some(session.clone()),
            ..Self::new(ChangeKind::Session)
        }
    }
}

/// The sending side of the feed, kept in the world.
#[derive(Debug, Clone)]
pub(crate) struct Feed {
    sender: broadcast::Sender<Change>,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(FEED_CAPACITY).0,
        }
    }
}

impl Feed {
    /// Tells the watchers, if any.
    pub(crate) fn send(&self, change: Change) {
        let _ = self.sender.send(change);
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.sender.subscribe()
    }
}

/// How a session's events are being read now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum StreamState {
    /// Nothing reads the events now (between two polls, or no client).
    Idle,
    /// A long poll is held.
    LongPoll,
    /// A WebSocket is open.
    WebSocket,
}

/// Open event readers of one session.
#[derive(Debug, Default, Clone)]
pub(crate) struct Streams {
    pub(crate) polls: u32,
    pub(crate) websockets: u32,
    /// When the session last had a poll or a WebSocket (ISO-8601).
    pub(crate) last_seen: Option<String>,
}

impl Streams {
    pub(crate) fn state(&self) -> StreamState {
        if self.websockets > 0 {
            StreamState::WebSocket
        } else if self.polls > 0 {
            StreamState::LongPoll
        } else {
            StreamState::Idle
        }
    }
}

/// Which kind of reader a [`StreamGuard`] stands for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reader {
    LongPoll,
    WebSocket,
}

/// Counts an open long poll or WebSocket of a session while it lives, and tells the feed
/// when the session's stream state changes.
pub(crate) struct StreamGuard {
    inner: Weak<Inner>,
    session: SessionId,
    reader: Reader,
}

impl StreamGuard {
    pub(crate) fn open(inner: &Arc<Inner>, session: &SessionId, reader: Reader) -> Self {
        update(inner, session, |s| match reader {
            Reader::LongPoll => s.polls += 1,
            Reader::WebSocket => s.websockets += 1,
        });
        Self {
            inner: Arc::downgrade(inner),
            session: session.clone(),
            reader,
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            let reader = self.reader;
            update(&inner, &self.session, |s| match reader {
                Reader::LongPoll => s.polls = s.polls.saturating_sub(1),
                Reader::WebSocket => s.websockets = s.websockets.saturating_sub(1),
            });
        }
    }
}

fn update(inner: &Inner, session: &SessionId, f: impl FnOnce(&mut Streams)) {
    let mut world = inner.world();
    let streams: &mut HashMap<SessionId, Streams> = &mut world.streams;
    let entry = streams.entry(session.clone()).or_default();
    let before = entry.state();
    f(entry);
    entry.last_seen = Some(crate::util::iso_now());
    let after = entry.state();
    if entry.polls == 0 && entry.websockets == 0 && !world.sessions.contains_key(session) {
        world.streams.remove(session);
    }
    if before != after {
        world.feed.send(Change::session(session));
    }
}
