//! The outbox (`Config::outbox`): a send that failed for a passing reason is tried again
//! across reconnections, after a look at history when its answer may have been lost.
//!
//! Every held send ends with exactly one reply under the caller's id: the message as
//! delivered, or the last error once the limit passes, the engagement ends, the session is
//! shut down or the server forgets it.

use std::time::Instant;

use super::{Pending, Phase, Session, urls};
use crate::event::{EndReason, Message, ReplyValue};
use crate::ids::{EngagementId, MessageId, RequestId};
use crate::outbox::{Outgoing, Step};
use crate::request::{Method, RequestKind};
use crate::stream::StreamState;
use crate::timer::Timer;
use crate::wire::{self, EngagementStatus};
use crate::{ChatError, TransportError};

/// History pages read at most to find whether an earlier attempt of a send arrived: 10,000
/// messages. Past it the send fails with `MaybeDelivered` rather than risk a duplicate.
const MAX_CHECK_PAGES: u32 = 200;

/// What one attempt's outcome means for a held send.
enum Verdict {
    Delivered(Box<Message>),
    /// Try again; `maybe_arrived` when the server may have acted on it.
    Again {
        maybe_arrived: bool,
        error: ChatError,
    },
    Failed(ChatError),
}

impl Session {
    /// Queues a send in the outbox and returns the id its reply will carry. It goes out at
    /// once unless an earlier send of the engagement is still on its way.
    pub(super) fn queue_send(
        &mut self,
        now: Instant,
        engagement: &EngagementId,
        text: &str,
        parent: Option<&MessageId>,
    ) -> RequestId {
        let Some(limit) = self.config.outbox else {
            return self.new_id();
        };
        if self.outbox.is_full() {
            tracing::warn!("outbox full: this send fails at its first error");
            let (Some(sid), Some(e)) = (self.session_id.clone(), self.find(engagement)) else {
                return self.new_id();
            };
            let dialog = self.engagements[e].info.dialog_id.clone();
            return self.post_message(engagement, dialog, sid, text, parent);
        }
        let baseline = self
            .order
            .last_index(engagement)
            .max(self.outbox.highest_sent(engagement))
            .unwrap_or(0);
        let reply = self.new_id();
        self.snapshot_changed();
        let unsaved = self.config.write_ahead.then_some(self.version);
        self.outbox.held.push(Outgoing {
            reply,
            engagement: engagement.clone(),
            text: text.to_owned(),
            parent: parent.cloned(),
            deadline: now + limit,
            baseline,
            uncertain: false,
            failures: 0,
            last_error: None,
            step: Step::Waiting { retry_at: now },
            unsaved,
        });
        self.pump_outbox(now);
        reply
    }

    /// The answer to a send: true if it was a held send's attempt (then fully handled here).
    pub(super) fn on_held_send(
        &mut self,
        now: Instant,
        id: RequestId,
        outcome: Result<(u16, &[u8]), TransportError>,
    ) -> bool {
        let Some(at) = self.outbox.sending(id) else {
            return false;
        };
        let scouting = self.stream != StreamState::Connected;
        match verdict(outcome) {
            Verdict::Delivered(m) => {
                self.settle_held(at, Ok(*m));
                // The server is there: the sends waiting behind this one go now.
                self.outbox_recovered(now);
            }
            Verdict::Failed(e) => {
                if e == ChatError::EngagementNotFound {
                    let engagement = self.outbox.held[at].engagement.clone();
                    self.forget(&engagement);
                }
                self.settle_held(at, Err(e));
            }
            Verdict::Again {
                maybe_arrived,
                error,
            } => {
                let held = &mut self.outbox.held[at];
                tracing::debug!(error = %error, attempt = held.failures + 1, "send failed; held in the outbox");
                held.uncertain |= maybe_arrived;
                held.failures += 1;
                held.last_error = Some(error);
                held.wait_after_failure(now, &mut self.rng, scouting);
            }
        }
        true
    }

    /// A page of history read for a held send.
    pub(super) fn on_outbox_check(
        &mut self,
        now: Instant,
        id: RequestId,
        outcome: Result<(u16, &[u8]), TransportError>,
    ) {
        let Some(at) = self.outbox.checking(id) else {
            return;
        };
        let scouting = self.stream != StreamState::Connected;
        let page =
            super::replies::rest(outcome).and_then(super::replies::decode::<wire::MessagePage>);
        let page = match page {
            Ok(page) => page,
            Err(e) => {
                tracing::debug!(error = %e, "reading history for a held send failed");
                let held = &mut self.outbox.held[at];
                held.failures += 1;
                held.wait_after_failure(now, &mut self.rng, scouting);
                return;
            }
        };
        let held = &self.outbox.held[at];
        let reached_baseline = page.messages.is_empty()
            || page
                .messages
                .iter()
                .any(|m| m.message_index <= held.baseline);
        let engagement = held.engagement.clone();
        let found: Vec<Message> = page
            .messages
            .into_iter()
            .map(Message::from_rest)
            .filter(|m| held.may_be(m))
            .collect();
        let link = self.own_link(&engagement, page.links.next);
        let Step::Checking {
            candidates, pages, ..
        } = &mut self.outbox.held[at].step
        else {
            return;
        };
        candidates.extend(found);
        let pages = *pages;
        match link {
            Some(link) if !reached_baseline && pages < MAX_CHECK_PAGES => {
                let next = self.transmit(
                    Method::Get,
                    link.0,
                    None,
                    RequestKind::Rest,
                    Pending::OutboxCheck,
                );
                if let Step::Checking { request, pages, .. } = &mut self.outbox.held[at].step {
                    *request = next;
                    *pages += 1;
                }
            }
            Some(_) if !reached_baseline => {
                // Too much history to be sure: failing is better than sending twice, and the
                // error says the message may well be there.
                let error = ChatError::MaybeDelivered(self.last_transport_error(at));
                self.settle_held(at, Err(error));
            }
            _ => {
                let Step::Checking { candidates, .. } = &mut self.outbox.held[at].step else {
                    return;
                };
                let candidates = std::mem::take(candidates);
                let ours = candidates
                    .into_iter()
                    .filter(|m| !self.outbox.is_confirmed(m))
                    .min_by_key(|m| m.message_index);
                match ours {
                    Some(m) => self.settle_held(at, Ok(m)),
                    None => {
                        // No earlier attempt arrived: send again now.
                        let held = &mut self.outbox.held[at];
                        held.uncertain = false;
                        held.step = Step::Waiting { retry_at: now };
                    }
                }
            }
        }
    }

    /// Moves every waiting send on: gives up on those past help, tries those due, and arms
    /// the outbox timer for the next of either. Called after every input that can matter.
    ///
    /// The sends of one engagement go one at a time, oldest first, so that they are stored
    /// in order. While the stream is not connected only one send of the whole session is
    /// tried at a time: it finds out whether the server is back, and the others follow
    /// the moment it gets through.
    pub(super) fn pump_outbox(&mut self, now: Instant) {
        let mut at = 0;
        while at < self.outbox.held.len() {
            if matches!(self.outbox.held[at].step, Step::Waiting { .. }) {
                if let Some(error) = self.hopeless(at, now) {
                    self.settle_held(at, Err(error));
                    continue;
                }
            }
            at += 1;
        }
        let scouting = self.stream != StreamState::Connected;
        let mut busy: Vec<EngagementId> = self
            .outbox
            .held
            .iter()
            .filter(|o| !matches!(o.step, Step::Waiting { .. }))
            .map(|o| o.engagement.clone())
            .collect();
        // A send not yet in the store waits for it, and so do the sends behind it.
        let mut unsaved: Vec<EngagementId> = Vec::new();
        // The earliest moment a waiting send at the head of its engagement may go; sends
        // behind a busy one are moved on when it settles, not by the timer.
        let mut next: Option<Instant> = None;
        for at in 0..self.outbox.held.len() {
            let held = &self.outbox.held[at];
            let Step::Waiting { retry_at } = held.step else {
                continue;
            };
            let deadline = held.deadline;
            if held.unsaved.is_some() || unsaved.contains(&held.engagement) {
                unsaved.push(held.engagement.clone());
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
                continue;
            }
            if busy.contains(&held.engagement) || (scouting && !busy.is_empty()) {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
                continue;
            }
            // Whether it goes now or not, the sends behind it in its engagement wait.
            let engagement = held.engagement.clone();
            let ready = self.can_send(&engagement);
            busy.push(engagement);
            if retry_at <= now && ready {
                self.next_attempt(at);
            } else {
                let due = if ready {
                    retry_at.min(deadline)
                } else {
                    deadline
                };
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        self.outbox.prune();
        match next {
            Some(at) => self.timers.set(Timer::Outbox, at.max(now)),
            None => self.timers.stop(Timer::Outbox),
        }
    }

    /// The server is back (the stream connected, or a held send got through): every
    /// waiting send may go now rather than at the end of its backoff.
    pub(super) fn outbox_recovered(&mut self, now: Instant) {
        for held in &mut self.outbox.held {
            if let Step::Waiting { retry_at } = &mut held.step {
                *retry_at = (*retry_at).min(now);
            }
        }
    }

    /// At the end of the session: every held send fails with `error`.
    pub(super) fn fail_outbox(&mut self, error: &ChatError) {
        while !self.outbox.held.is_empty() {
            self.settle_held(0, Err(error.clone()));
        }
        self.timers.stop(Timer::Outbox);
    }

    /// At shutdown: history checks are dropped; their sends wait, and then fail.
    pub(super) fn stop_outbox_checks(&mut self, now: Instant) {
        let checks: Vec<RequestId> = self
            .outbox
            .held
            .iter()
            .filter_map(|o| match o.step {
                Step::Checking { request, .. } => Some(request),
                _ => None,
            })
            .collect();
        for id in checks {
            self.abort(id);
            if let Some(at) = self.outbox.checking(id) {
                self.outbox.held[at].step = Step::Waiting { retry_at: now };
            }
        }
    }

    /// Notes a send that was delivered without the outbox's help.
    pub(super) fn note_delivered(&mut self, m: &Message) {
        self.outbox.delivered(m);
    }

    /// The error to end a waiting send with, if nothing can help it any more.
    fn hopeless(&self, at: usize, now: Instant) -> Option<ChatError> {
        let held = &self.outbox.held[at];
        match self.phase {
            Phase::Ready => {}
            // Restored sends wait for the session being resumed or replaced.
            Phase::Initializing => return None,
            Phase::Ended if self.end == Some(EndReason::SessionInvalidated) => {
                return Some(ChatError::SessionNotFound);
            }
            _ => return Some(self.give_up_error(at)),
        }
        let alive = self.find(&held.engagement).is_some_and(|e| {
            let e = &self.engagements[e];
            !e.is_over()
        });
        if !alive {
            return Some(ChatError::EngagementNotFound);
        }
        (now >= held.deadline).then(|| self.give_up_error(at))
    }

    /// The reply of a send the outbox gives up on: if an attempt may have arrived, it says
    /// the message may have been stored.
    fn give_up_error(&self, at: usize) -> ChatError {
        let held = &self.outbox.held[at];
        if held.uncertain {
            return ChatError::MaybeDelivered(self.last_transport_error(at));
        }
        held.last_error
            .clone()
            .unwrap_or(ChatError::Unreachable(TransportError::Timeout))
    }

    fn last_transport_error(&self, at: usize) -> TransportError {
        match &self.outbox.held[at].last_error {
            Some(ChatError::Unreachable(e) | ChatError::MaybeDelivered(e)) => *e,
            _ => TransportError::Timeout,
        }
    }

    /// Whether a held send of `engagement` may be tried now: the session is up, its token
    /// not refused (a paused stream waits for a new one) and the engagement active. The
    /// stream need not be connected: on a quiet chat the first poll after an outage is
    /// answered only after the server's hold time, and the sends should not wait for it.
    fn can_send(&self, engagement: &EngagementId) -> bool {
        self.phase == Phase::Ready
            && self.stream != StreamState::Paused
            && self
                .find(engagement)
                .is_some_and(|e| self.engagements[e].info.status == EngagementStatus::Active)
    }

    fn next_attempt(&mut self, at: usize) {
        let Some(sid) = self.session_id.clone() else {
            return;
        };
        let held = &self.outbox.held[at];
        let engagement = held.engagement.clone();
        let Some(e) = self.find(&engagement) else {
            return;
        };
        let dialog = self.engagements[e].info.dialog_id.clone();
        if held.uncertain {
            let url = urls::first_history_page(&self.base, &engagement, &sid, &dialog);
            let request = self.transmit(
                Method::Get,
                url,
                None,
                RequestKind::Rest,
                Pending::OutboxCheck,
            );
            self.outbox.held[at].step = Step::Checking {
                request,
                candidates: Vec::new(),
                pages: 1,
            };
        } else {
            let text = held.text.clone();
            let parent = held.parent.clone();
            let request = self.post_message(&engagement, dialog, sid, &text, parent.as_ref());
            self.outbox.held[at].step = Step::Sending(request);
        }
    }

    /// Ends a held send with its one reply.
    pub(super) fn settle_held(&mut self, at: usize, result: Result<Message, ChatError>) {
        // `remove`, not `swap_remove`: the order of the held sends is the order they go in.
        let held = self.outbox.held.remove(at);
        self.snapshot_changed();
        if let Ok(m) = &result {
            self.outbox.delivered(m);
        }
        self.reply(held.reply, result.map(ReplyValue::MessageSent));
    }
}

fn verdict(outcome: Result<(u16, &[u8]), TransportError>) -> Verdict {
    let again = |maybe_arrived, error| Verdict::Again {
        maybe_arrived,
        error,
    };
    match outcome {
        // The connection was never made, or TLS refused the server before a byte of the
        // request went out: nothing arrived.
        Err(e @ (TransportError::Connect | TransportError::Certificate)) => {
            again(false, ChatError::Unreachable(e))
        }
        Err(e) => again(true, ChatError::Unreachable(e)),
        Ok((200..=299, body)) => match super::replies::decode::<wire::RestMessage>(body) {
            Ok(m) => Verdict::Delivered(Box::new(Message::from_rest(m))),
            // Accepted, but the answer is unusable: history will show it.
            Err(e) => again(true, e),
        },
        // Refused before anything was done: 401 goes back to the application (whose token
        // provider can refresh and send again), 404 means the engagement is gone.
        Ok((401, body)) => Verdict::Failed(ChatError::InvalidToken {
            detail: super::replies::problem_detail(body),
        }),
        Ok((404, _)) => Verdict::Failed(ChatError::EngagementNotFound),
        Ok((status @ (429 | 503), body)) => again(false, server_error(status, body)),
        Ok((status @ 500..=599, body)) => again(true, server_error(status, body)),
        Ok((status, body)) => Verdict::Failed(server_error(status, body)),
    }
}

fn server_error(status: u16, body: &[u8]) -> ChatError {
    ChatError::ServerUnexpected {
        status: Some(status),
        detail: super::replies::problem_detail(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maybe_arrived(outcome: Result<(u16, &[u8]), TransportError>) -> Option<bool> {
        match verdict(outcome) {
            Verdict::Again { maybe_arrived, .. } => Some(maybe_arrived),
            _ => None,
        }
    }

    #[test]
    fn only_a_request_that_may_have_gone_out_may_have_arrived() {
        assert_eq!(maybe_arrived(Err(TransportError::Connect)), Some(false));
        assert_eq!(maybe_arrived(Err(TransportError::Certificate)), Some(false));
        assert_eq!(maybe_arrived(Err(TransportError::Timeout)), Some(true));
        assert_eq!(maybe_arrived(Err(TransportError::Disconnected)), Some(true));
        assert_eq!(maybe_arrived(Err(TransportError::Protocol)), Some(true));
        assert_eq!(maybe_arrived(Ok((503, b""))), Some(false));
        assert_eq!(maybe_arrived(Ok((500, b""))), Some(true));
        assert_eq!(maybe_arrived(Ok((401, b""))), None);
    }
}
