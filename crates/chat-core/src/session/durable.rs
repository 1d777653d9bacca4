//! What a session keeps across processes: its [`Snapshot`], when that changed, the store's
//! acknowledgement that lets held sends go (write-ahead), and the session restored from a
//! snapshot, with the recovery of a session the server no longer knows.

use std::time::{Instant, SystemTime};

use super::{Pending, Phase, Resumption, Session};
use crate::ChatError;
use crate::event::{EndReason, ReplyValue};
use crate::ids::RequestId;
use crate::outbox::{Outgoing, Step};
use crate::snapshot::{HeldSend, SNAPSHOT_FORMAT, Snapshot};
use crate::stream::StreamState;
use crate::timer::Timer;

impl Session {
    /// What to keep of this session across processes (see [`Snapshot`]): the session and
    /// its chats with the positions of the messages this session has emitted (an adapter
    /// that queues events lowers them to what the application has taken), and every send
    /// the outbox holds. Nothing secret.
    pub fn snapshot(&self) -> Snapshot {
        let sends = self
            .outbox
            .held
            .iter()
            .map(|o| HeldSend {
                engagement_id: o.engagement.clone(),
                text: o.text.clone(),
                parent_message_id: o.parent.clone(),
                baseline: o.baseline,
                give_up_at_ms: unix_ms(self.wall_at(o.deadline)),
            })
            .collect();
        Snapshot {
            format: SNAPSHOT_FORMAT,
            customer: None,
            resumption: self.resumption(),
            sends,
        }
    }

    /// A number that grows whenever [`snapshot`](Self::snapshot) changes for a reason
    /// other than a position: the session was created or ended, a chat was joined or left,
    /// a send was held or settled. An adapter with a store saves the snapshot when this
    /// moved past what it saved last.
    pub fn snapshot_version(&self) -> u64 {
        self.version
    }

    /// The store holds the snapshot of `version` ([`snapshot_version`](Self::snapshot_version)
    /// when it was taken): with [`Config::write_ahead`](crate::Config::write_ahead), the
    /// held sends it holds may go out now.
    pub fn handle_saved(&mut self, now: Instant, version: u64) {
        let now = self.tick(now);
        self.saved = self.saved.max(version);
        let saved = self.saved;
        for held in &mut self.outbox.held {
            if held.unsaved.is_some_and(|v| v <= saved) {
                held.unsaved = None;
            }
        }
        let (done, waiting) = std::mem::take(&mut self.save_waiters)
            .into_iter()
            .partition(|(v, _)| *v <= saved);
        self.save_waiters = waiting;
        for (_, id) in done {
            self.reply(id, Ok(ReplyValue::Saved));
        }
        self.pump_outbox(now);
    }

    /// Completes with [`ReplyValue::Saved`] once the store holds every send accepted so
    /// far (at once without [`Config::write_ahead`](crate::Config::write_ahead), or when
    /// nothing is waiting to be saved): the moment an application may count a send as
    /// handed over, whatever happens to this process next.
    pub fn wait_saved(&mut self, now: Instant) -> Result<RequestId, ChatError> {
        self.tick(now);
        self.require_ready()?;
        let id = self.new_id();
        let unsaved = self.outbox.held.iter().filter_map(|o| o.unsaved).max();
        match unsaved {
            Some(v) if self.config.write_ahead => self.save_waiters.push((v, id)),
            _ => self.reply(id, Ok(ReplyValue::Saved)),
        }
        Ok(id)
    }

    /// Restores a session from its snapshot, as another process saved it: resumes the
    /// session (`GET …/sessions/{id}`), catches up every chat from the position of what the
    /// application had taken, and takes the held sends back into the outbox, each checked
    /// against history before it is sent again (an attempt before the crash may have
    /// arrived). When the server no longer knows the session (ACS-320), a new one is made,
    /// the chats are joined again and caught up the same way, and the held sends go there.
    ///
    /// A snapshot without a session is a fresh [`init`](Self::init). Completes like
    /// `init`, under the id returned. The sends restored reply under ids nobody holds;
    /// their messages come as `MESSAGE_DELIVERED` (or fail, once the outbox gives up).
    pub fn restore(
        &mut self,
        now: Instant,
        wall: SystemTime,
        snapshot: Snapshot,
    ) -> Result<RequestId, ChatError> {
        let Some(mut resumption) = snapshot.resumption else {
            return self.init(now, wall);
        };
        if self.config.outbox.is_none() && !snapshot.sends.is_empty() {
            return Err(ChatError::config(
                "the stored session holds sends: the outbox is needed to send them",
            ));
        }
        // A chat whose position is unknown has had nothing taken: all of it is caught up.
        for e in &resumption.active_engagements {
            if !resumption
                .last_message_indexes
                .iter()
                .any(|(id, _)| id == e)
            {
                resumption.last_message_indexes.push((e.clone(), 0));
            }
        }
        let id = self.begin_init(now, wall, Some(resumption))?;
        self.recover = true;
        let now = self.last_now.unwrap_or(now);
        for send in snapshot.sends {
            let reply = self.new_id();
            self.outbox.held.push(Outgoing {
                reply,
                deadline: now + send.remaining(wall),
                engagement: send.engagement_id,
                text: send.text,
                parent: send.parent_message_id,
                baseline: send.baseline,
                // The process before may have sent it: look before sending again.
                uncertain: true,
                failures: 0,
                last_error: None,
                step: Step::Waiting { retry_at: now },
                unsaved: None,
            });
        }
        Ok(id)
    }

    /// Stops driving this session at once, without telling the server: another process
    /// has taken it over (the store's lease passed on) and must be the only one to send.
    /// Requests are abandoned; whatever waits fails with ACS-310; the end reason is
    /// [`EndReason::Abandoned`].
    pub fn abandon(&mut self, now: Instant) {
        self.tick(now);
        if self.phase != Phase::Ended {
            self.end_session(EndReason::Abandoned, &ChatError::NotInitialized);
        }
    }

    /// A session kept in a store (write-ahead) that the server forgot while it ran
    /// (ACS-320) is replaced in place rather than ended: its requests are abandoned (commands
    /// fail with ACS-320; held sends wait, each checked against history before it goes
    /// again), a new session is made, its chats are joined again and caught up from their
    /// positions. The application sees `EVENT_STREAM_CLOSED`, then `INITIALIZED` with the new
    /// session. `false` for a session without write-ahead: it ends, as in the official SDK.
    pub(super) fn replace_lost_session(&mut self, now: Instant) -> bool {
        if !self.config.write_ahead || self.phase != Phase::Ready {
            return false;
        }
        tracing::info!("the server forgot the session (ACS-320): replacing it");
        if self.stream != StreamState::Closed {
            self.stop_stream(now);
        }
        for sent in std::mem::take(&mut self.requests) {
            self.out.push_back(crate::Output::Abort(sent.id));
            if let Some(at) = self.outbox.sending(sent.id) {
                let held = &mut self.outbox.held[at];
                held.uncertain = true;
                held.step = Step::Waiting { retry_at: now };
            } else if let Some(at) = self.outbox.checking(sent.id) {
                self.outbox.held[at].step = Step::Waiting { retry_at: now };
            } else if sent.pending.is_command() || matches!(sent.pending, Pending::Send(_)) {
                self.reply(sent.id, Err(ChatError::SessionNotFound));
            }
        }
        self.in_flight = None;
        self.probing = None;
        for c in std::mem::take(&mut self.catch_ups) {
            self.order.drop_held(&c.engagement);
        }
        self.timers.stop_all();
        self.rejoin = self
            .engagements
            .iter()
            .filter(|e| e.attached)
            .map(|e| e.info.engagement_id.clone())
            .collect();
        self.phase = Phase::Initializing;
        self.replacing = true;
        // The new session has its own events resource, and its own event ids.
        self.events_url = None;
        self.cursor = crate::stream::Cursor::default();
        self.backoff.reset();
        self.send_replacement();
        true
    }

    /// `POST …/sessions` for the replacement of a lost session; no reply is due.
    pub(super) fn send_replacement(&mut self) {
        if self.replacing && self.phase == Phase::Initializing {
            let id = self.new_id();
            self.send_init(id, None);
        }
    }

    /// The replacement's `POST …/sessions` failed: tried again after the reconnection
    /// backoff (with jitter, so that sessions cut by one outage do not come back in step),
    /// until it succeeds or the session is shut down. `true` if it was the replacement.
    pub(super) fn replacement_failed(&mut self, now: Instant, error: &ChatError) -> bool {
        if !self.replacing {
            return false;
        }
        self.phase = Phase::Initializing;
        let wait = self.backoff.next_sleep(&mut self.rng);
        tracing::info!(error = %error, ?wait, "replacing the lost session failed; trying again");
        self.timers.set(Timer::Replace, now + wait);
        true
    }

    /// The snapshot changed (see [`snapshot_version`](Self::snapshot_version)).
    pub(super) fn snapshot_changed(&mut self) {
        self.version += 1;
    }

    /// A resume answered "Session not found" for a restored session: a new session takes
    /// its place, and its chats are joined again once it exists. `true` if so.
    pub(super) fn recover_with_new_session(
        &mut self,
        id: RequestId,
        resumption: &Resumption,
    ) -> bool {
        if !std::mem::take(&mut self.recover) {
            return false;
        }
        tracing::info!("the stored session is gone (ACS-320): starting a new one");
        self.rejoin = resumption.active_engagements.clone();
        self.send_init(id, None);
        true
    }
}

fn unix_ms(wall: SystemTime) -> u64 {
    let ms = wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX)
}
