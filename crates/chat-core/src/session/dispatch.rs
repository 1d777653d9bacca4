//! Server events: decoding a batch, and turning each event into state changes and app events
//! in the official order (reference 3.3 and 6.9).

use super::{MAX_ORPHANS, Session};
use crate::event::{Event, Message, ParticipantChange};
use crate::wire::{EngagementStatus, ParticipantType, ServerEvent, ServerEventType};

/// Decodes an events response. `None` if it is not a JSON array at all; an element that does
/// not decode is kept as an `Unknown` event when its `eventId` can be read (so the cursor moves
/// past it and it is not asked for again), and dropped otherwise.
pub(crate) fn decode_batch(body: &[u8]) -> Option<Vec<ServerEvent>> {
    if let Ok(batch) = serde_json::from_slice::<Vec<ServerEvent>>(body) {
        return Some(batch);
    }
    let values: Vec<serde_json::Value> = serde_json::from_slice(body).ok()?;
    Some(
        values
            .into_iter()
            .filter_map(|value| {
                let id = value.get("eventId")?.as_str()?.to_owned();
                serde_json::from_value(value).ok().or_else(|| {
                    tracing::warn!(event_id = %id, "malformed server event skipped");
                    Some(ServerEvent::new(id, ServerEventType::Unknown))
                })
            })
            .collect(),
    )
}

impl Session {
    pub(super) fn dispatch(&mut self, event: ServerEvent) {
        match event.event_type {
            ServerEventType::Message => self.on_message(event),
            ServerEventType::ParticipantAdded => self.on_participant_added(event),
            ServerEventType::ParticipantDisconnected => self.on_participant_disconnected(event),
            ServerEventType::EngagementError => self.on_engagement_error(event),
            ServerEventType::EngagementCreated => {
                tracing::debug!(engagement = ?event.engagement_id, "engagement created");
            }
            ServerEventType::Unknown => {
                tracing::debug!("unknown server event skipped");
            }
        }
    }

    fn on_message(&mut self, event: ServerEvent) {
        if self.known(&event).is_none() {
            // Its engagement may become known (a late create or join reply); if not, the
            // event is dropped with the oldest orphans, and no state is kept for it.
            return self.keep_orphan(event);
        }
        let (Some(engagement_id), Some(dialog_id), Some(m), Some(sender)) = (
            event.engagement_id,
            event.dialog_id,
            event.message,
            event.participant,
        ) else {
            tracing::warn!("MESSAGE event without its message skipped");
            return;
        };
        let message = Message {
            message_id: m.message_id,
            engagement_id,
            dialog_id,
            message_index: m.message_index,
            parent_message_id: m.parent_message_id,
            sender,
            body: m.body,
            received_at: m.received_at,
            last_updated_at: m.last_updated_at,
            event_date: event.event_date,
        };
        if let Some(message) = self.order.admit(message) {
            self.emit(message_event(message));
        }
    }

    fn on_participant_added(&mut self, event: ServerEvent) {
        let Some(at) = self.known(&event) else {
            return self.keep_orphan(event);
        };
        let Some(participant) = event.participant else {
            return;
        };
        let e = &mut self.engagements[at];
        e.upsert_participant(&participant);
        let became_active = participant.participant_type == ParticipantType::Customer
            && e.info.status == EngagementStatus::Pending;
        if became_active {
            e.info.status = EngagementStatus::Active;
            e.attached = true;
        }
        let engagement = e.reference();
        if became_active {
            self.emit(Event::EngagementActive(engagement.clone()));
        }
        self.emit(Event::ParticipantAdded(ParticipantChange {
            engagement,
            event_date: event.event_date,
            participant,
        }));
    }

    fn on_participant_disconnected(&mut self, event: ServerEvent) {
        let Some(at) = self.known(&event) else {
            return self.keep_orphan(event);
        };
        let Some(participant) = event.participant else {
            return;
        };
        let e = &mut self.engagements[at];
        e.remove_participant(&participant.participant_id);
        let engagement = e.reference();
        let customer_left = participant.participant_type == ParticipantType::Customer;
        if customer_left {
            self.engagements.remove(at);
        }
        self.emit(Event::ParticipantDisconnected(ParticipantChange {
            engagement: engagement.clone(),
            event_date: event.event_date,
            participant,
        }));
        if customer_left {
            self.emit(Event::EngagementTerminated(engagement));
        }
    }

    fn on_engagement_error(&mut self, event: ServerEvent) {
        let Some(at) = self.known(&event) else {
            return self.keep_orphan(event);
        };
        let e = self.engagements.remove(at);
        self.emit(Event::EngagementError {
            engagement: e.reference(),
            event_date: event.event_date,
            error: event.error.unwrap_or_default(),
        });
    }

    fn known(&self, event: &ServerEvent) -> Option<usize> {
        event.engagement_id.as_ref().and_then(|id| self.find(id))
    }

    /// An event for an engagement this session does not know yet: its create or join reply
    /// may still be on its way while another engagement's stream delivers. Kept (bounded) and
    /// replayed when the engagement becomes known; the official SDK drops it.
    fn keep_orphan(&mut self, event: ServerEvent) {
        tracing::debug!(engagement = ?event.engagement_id, "ACS-319: event for an unknown engagement kept");
        if self.orphans.len() == MAX_ORPHANS {
            self.orphans.pop_front();
        }
        self.orphans.push_back(event);
    }

    /// Replays the kept events of an engagement that has just become known.
    pub(super) fn adopt_orphans(&mut self, id: &crate::EngagementId) {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.orphans)
            .into_iter()
            .partition(|e| e.engagement_id.as_ref() == Some(id));
        self.orphans = rest.into();
        for event in mine {
            self.dispatch(event);
        }
    }
}

pub(super) fn message_event(message: Message) -> Event {
    if message.sender.participant_type == ParticipantType::Customer {
        Event::MessageDelivered(message)
    } else {
        Event::MessageArrived(message)
    }
}
