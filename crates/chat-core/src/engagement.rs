//! Engagements as this session knows them, and the order in which their messages reach the
//! application.

use std::collections::{BTreeMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use crate::event::{EngagementInfo, EngagementRef, Message};
use crate::ids::{EngagementId, ParticipantId};
use crate::wire::{self, EngagementStatus, Participant};

/// One engagement: its image, and whether this session takes part in it (which is what keeps
/// the event stream running).
#[derive(Debug, Clone)]
pub(crate) struct EngagementState {
    pub(crate) info: EngagementInfo,
    pub(crate) attached: bool,
}

impl EngagementState {
    /// From the server's description; `None` when it has no dialog (nothing can be done with
    /// such an engagement).
    pub(crate) fn from_wire(e: wire::Engagement, status: EngagementStatus) -> Option<Self> {
        let dialog = e.dialogs.into_iter().next()?;
        Some(Self {
            info: EngagementInfo {
                engagement_id: e.engagement_id,
                dialog_id: dialog.dialog_id,
                status,
                participants: dialog.participants,
                created_at: dialog.created_at,
                last_updated_at: dialog.last_updated_at,
            },
            attached: false,
        })
    }

    pub(crate) fn reference(&self) -> EngagementRef {
        EngagementRef {
            engagement_id: self.info.engagement_id.clone(),
            dialog_id: self.info.dialog_id.clone(),
        }
    }

    pub(crate) fn is_over(&self) -> bool {
        matches!(
            self.info.status,
            EngagementStatus::Terminating | EngagementStatus::Terminated
        )
    }

    /// Adds a participant, or updates the display name of a known one.
    pub(crate) fn upsert_participant(&mut self, p: &Participant) {
        match self
            .info
            .participants
            .iter_mut()
            .find(|q| q.participant_id == p.participant_id)
        {
            Some(known) => known.display_name.clone_from(&p.display_name),
            None => self.info.participants.push(p.clone()),
        }
    }

    pub(crate) fn remove_participant(&mut self, id: &ParticipantId) {
        self.info.participants.retain(|q| &q.participant_id != id);
    }

    /// Takes the server's newer description (from a join or a listing), keeping our status.
    pub(crate) fn refresh(&mut self, dialog: wire::Dialog) {
        self.info.participants = dialog.participants;
        if dialog.last_updated_at.is_some() {
            self.info.last_updated_at = dialog.last_updated_at;
        }
    }
}

/// Where each engagement's messages stand: the highest `messageIndex` handed to the
/// application, and messages held back while missed ones are fetched from history.
#[derive(Debug, Default, Clone)]
pub(crate) struct MessageOrder {
    lanes: BTreeMap<EngagementId, Lane>,
}

#[derive(Debug, Default, Clone)]
struct Lane {
    last_index: Option<u64>,
    /// The position a resumed session started from: what the application had taken. A
    /// message at or below it is a repeat (the server sends again what it had not seen
    /// acknowledged), never a late one, since no id of this process can tell them apart.
    floor: Option<u64>,
    holding: bool,
    held: Vec<Message>,
    /// Hashes of the ids of the latest messages passed on, to tell a message that arrives
    /// late (a new id below the last index) from a repeat.
    recent: VecDeque<u64>,
}

/// Message ids remembered per engagement to tell late messages from repeats.
const RECENT_IDS: usize = 128;

impl MessageOrder {
    pub(crate) fn with_last_indexes(known: impl IntoIterator<Item = (EngagementId, u64)>) -> Self {
        Self {
            lanes: known
                .into_iter()
                .map(|(id, last)| {
                    (
                        id,
                        Lane {
                            last_index: Some(last),
                            floor: Some(last),
                            ..Lane::default()
                        },
                    )
                })
                .collect(),
        }
    }

    pub(crate) fn last_index(&self, id: &EngagementId) -> Option<u64> {
        self.lanes.get(id).and_then(|l| l.last_index)
    }

    pub(crate) fn last_indexes(&self) -> impl Iterator<Item = (&EngagementId, u64)> {
        self.lanes
            .iter()
            .filter_map(|(id, l)| l.last_index.map(|i| (id, i)))
    }

    /// Keeps the lanes of the engagements `keep` says to (the others are gone).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&EngagementId) -> bool) {
        self.lanes.retain(|id, _| keep(id));
    }

    /// Passes a message on if it is new, holds it during a catch-up, drops a repeat.
    pub(crate) fn admit(&mut self, message: Message) -> Option<Message> {
        let lane = self.lanes.entry(message.engagement_id.clone()).or_default();
        if lane.holding {
            lane.held.push(message);
            return None;
        }
        lane.pass(message)
    }

    /// Starts holding live messages of `id` back while its history is fetched.
    pub(crate) fn hold(&mut self, id: &EngagementId) {
        self.lanes.entry(id.clone()).or_default().holding = true;
    }

    /// Live messages held back, over every engagement.
    pub(crate) fn held(&self) -> usize {
        self.lanes.values().map(|l| l.held.len()).sum()
    }

    pub(crate) fn is_holding(&self, id: &EngagementId) -> bool {
        self.lanes.get(id).is_some_and(|l| l.holding)
    }

    /// Abandons a catch-up: the live messages held are dropped, not passed on, so that the
    /// next catch-up from the same position fetches them with the rest of the gap.
    pub(crate) fn drop_held(&mut self, id: &EngagementId) {
        if let Some(lane) = self.lanes.get_mut(id) {
            lane.holding = false;
            lane.held.clear();
        }
    }

    /// Ends a catch-up: `fetched` (from history, any order) and the held live messages are
    /// merged, and the new ones come out in `messageIndex` order, each once.
    pub(crate) fn release(&mut self, id: &EngagementId, fetched: Vec<Message>) -> Vec<Message> {
        let lane = self.lanes.entry(id.clone()).or_default();
        lane.holding = false;
        // History at or below the last index passed on is what the application has: only
        // live messages may arrive late.
        let last = lane.last_index;
        let mut all = fetched;
        all.retain(|m| last.is_none_or(|l| m.message_index > l));
        all.append(&mut lane.held);
        all.sort_by_key(|m| m.message_index);
        all.into_iter().filter_map(|m| lane.pass(m)).collect()
    }
}

impl Lane {
    fn pass(&mut self, message: Message) -> Option<Message> {
        if self
            .floor
            .is_some_and(|floor| message.message_index <= floor)
        {
            return None;
        }
        let id = id_hash(&message);
        if let Some(last) = self.last_index {
            if message.message_index <= last {
                if self.recent.contains(&id) {
                    return None;
                }
                // A message the server stored before the last one passed on, but sent
                // later: new to the application, so it is delivered rather than lost.
                tracing::warn!(
                    index = message.message_index,
                    last,
                    "a message arrived after later ones; delivered out of order"
                );
                self.remember(id);
                return Some(message);
            }
        }
        self.last_index = Some(message.message_index);
        self.remember(id);
        Some(message)
    }

    fn remember(&mut self, id: u64) {
        if self.recent.len() == RECENT_IDS {
            self.recent.pop_front();
        }
        self.recent.push_back(id);
    }
}

fn id_hash(message: &Message) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(message.message_id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::event::test_message as msg;

    #[test]
    fn repeats_are_dropped() {
        let mut order = MessageOrder::default();
        assert!(order.admit(msg(1)).is_some());
        assert!(order.admit(msg(2)).is_some());
        assert!(order.admit(msg(2)).is_none());
        assert!(order.admit(msg(1)).is_none());
        assert_eq!(order.last_index(&EngagementId::new("e")), Some(2));
    }

    #[test]
    fn after_a_resume_what_the_application_had_taken_is_never_delivered_again() {
        let e = EngagementId::new("e");
        let mut order = MessageOrder::with_last_indexes([(e.clone(), 5)]);
        // Sent again by the server (its ids are new to this process): repeats, not late.
        assert!(order.admit(msg(4)).is_none());
        assert!(order.admit(msg(5)).is_none());
        assert!(order.admit(msg(6)).is_some());
        // Held during a catch-up and released: the same rule.
        order.hold(&e);
        assert!(order.admit(msg(3)).is_none());
        assert!(order.admit(msg(7)).is_none(), "held");
        let out: Vec<u64> = order
            .release(&e, vec![msg(5), msg(6), msg(7)])
            .iter()
            .map(|m| m.message_index)
            .collect();
        assert_eq!(out, [7]);
    }

    #[test]
    fn a_late_message_with_a_new_id_is_delivered_once() {
        let mut order = MessageOrder::default();
        assert!(order.admit(msg(5)).is_some());
        let mut late = msg(3);
        late.message_id = crate::ids::MessageId::new("late");
        assert!(
            order.admit(late.clone()).is_some(),
            "new id below the last index"
        );
        assert!(order.admit(late).is_none(), "but only once");
        assert_eq!(order.last_index(&EngagementId::new("e")), Some(5));
    }

    #[test]
    fn after_a_resume_a_message_at_or_below_its_position_is_a_repeat() {
        // The process before took 1..=4 and died before acknowledging their events: the
        // server sends them again to the resumed session, whose `recent` ids are empty.
        let id = EngagementId::new("e");
        let mut order = MessageOrder::with_last_indexes([(id.clone(), 4)]);
        for index in 1..=4 {
            assert!(order.admit(msg(index)).is_none(), "{index} again");
        }
        order.hold(&id);
        assert!(order.admit(msg(3)).is_none());
        assert!(order.admit(msg(5)).is_none(), "held during the catch-up");
        let out = order.release(&id, vec![msg(4), msg(5)]);
        let indexes: Vec<u64> = out.iter().map(|m| m.message_index).collect();
        assert_eq!(indexes, [5]);
        // Above the position, a late message is still delivered once.
        assert!(order.admit(msg(7)).is_some());
        let mut late = msg(6);
        late.message_id = crate::ids::MessageId::new("late");
        assert!(order.admit(late.clone()).is_some());
        assert!(order.admit(late).is_none());
    }

    #[test]
    fn catch_up_merges_history_and_held_in_order_once() {
        let id = EngagementId::new("e");
        let mut order = MessageOrder::with_last_indexes([(id.clone(), 2)]);
        order.hold(&id);
        assert!(order.admit(msg(6)).is_none());
        assert!(order.admit(msg(5)).is_none());
        let out = order.release(&id, vec![msg(5), msg(4), msg(3), msg(2), msg(1)]);
        let indexes: Vec<u64> = out.iter().map(|m| m.message_index).collect();
        assert_eq!(indexes, [3, 4, 5, 6]);
        assert!(order.admit(msg(6)).is_none());
        assert!(order.admit(msg(7)).is_some());
    }
}
