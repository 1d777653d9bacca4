//! The contact-center side: a simulated agent (or bot) that joins new engagements, greets the
//! customer and answers each of their messages after a short delay.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chat_core::EngagementId;
use chat_core::wire::{MessageBody, ParticipantType, RestMessage};
use serde::{Deserialize, Serialize};

use crate::state::Inner;

/// How the simulated contact center behaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AgentMode {
    /// An AGENT joins shortly after an engagement is created, greets, and answers each
    /// customer message.
    #[default]
    Agent,
    /// The same with a BOT participant.
    Bot,
    /// Nobody joins: tests drive the contact-center side through the control API.
    Off,
}

impl FromStr for AgentMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "agent" => Ok(Self::Agent),
            "bot" => Ok(Self::Bot),
            "off" | "none" => Ok(Self::Off),
            other => Err(format!(
                "unknown agent mode {other:?}: use agent, bot or off"
            )),
        }
    }
}

impl AgentMode {
    fn participant(self) -> Option<(ParticipantType, &'static str)> {
        match self {
            Self::Agent => Some((ParticipantType::Agent, "Alex (agent)")),
            Self::Bot => Some((ParticipantType::Bot, "Virtual assistant")),
            Self::Off => None,
        }
    }
}

/// Runs `f` after `delay` unless the emulator shuts down first.
fn after(inner: &Arc<Inner>, delay: Duration, f: impl FnOnce(&Inner) + Send + 'static) {
    let weak = Arc::downgrade(inner);
    let Some(strong) = weak.upgrade() else { return };
    tokio::spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = strong.shutting_down() => return,
        }
        f(&strong);
    });
}

/// Schedules the agent's arrival and greeting.
pub(crate) fn on_engagement_created(inner: &Arc<Inner>, engagement: &EngagementId) {
    let mode = inner.world().agent_mode;
    let Some((kind, name)) = mode.participant() else {
        return;
    };
    let engagement = engagement.clone();
    after(inner, inner.settings.join_delay, move |inner| {
        join(inner, &engagement, kind, name, false);
    });
}

/// The simulated agent joins an engagement at once and greets (turned on for one chat in
/// which it is not present): as the current mode's participant, an AGENT when the mode is off.
pub(crate) fn join_now(inner: &Inner, engagement: &EngagementId) {
    let mode = inner.world().agent_mode;
    let (kind, name) = mode
        .participant()
        .unwrap_or((ParticipantType::Agent, "Alex (agent)"));
    join(inner, engagement, kind, name, true);
}

fn join(inner: &Inner, engagement: &EngagementId, kind: ParticipantType, name: &str, rejoin: bool) {
    let mut world = inner.world();
    let wanted = world
        .engagements
        .get(engagement)
        .is_some_and(|e| e.ongoing() && (rejoin || e.auto_agent.is_none()))
        && world.agent_override.get(engagement) != Some(&false);
    if !wanted {
        return;
    }
    let Some(agent) = world.add_participant(engagement, kind, Some(name.to_owned())) else {
        return;
    };
    if let Some(state) = world.engagements.get_mut(engagement) {
        state.auto_agent = Some(agent.clone());
    }
    let greeting = match kind {
        ParticipantType::Bot => "Hello! I am a virtual assistant. How can I help you today?",
        _ => "Hello, my name is Alex. How can I help you today?",
    };
    world.add_message(engagement, &agent, MessageBody::plain_text(greeting), None);
}

/// Schedules the answer to a customer message. The text `/end` makes the agent end the chat.
pub(crate) fn on_customer_message(
    inner: &Arc<Inner>,
    engagement: &EngagementId,
    message: &RestMessage,
) {
    if !inner.world().agent_on(engagement) {
        return;
    }
    let engagement = engagement.clone();
    let text = message.body.text().unwrap_or_default().to_owned();
    let parent = message.message_id.clone();
    after(inner, inner.settings.reply_delay, move |inner| {
        let mut world = inner.world();
        if !world.agent_on(&engagement) {
            return;
        }
        let Some(agent) = world
            .engagements
            .get(&engagement)
            .filter(|e| e.ongoing())
            .and_then(|e| e.auto_agent.clone())
            .filter(|a| {
                world
                    .engagements
                    .get(&engagement)
                    .is_some_and(|e| e.participants.contains(a))
            })
        else {
            return;
        };
        if text.trim() == "/end" {
            world.add_message(
                &engagement,
                &agent,
                MessageBody::plain_text("Thank you for contacting us. Goodbye!"),
                None,
            );
            world.end_engagement(&engagement);
            return;
        }
        let reply = match agent.participant_type {
            ParticipantType::Bot => format!("You said: {text}"),
            _ => format!("Thanks, I received your message: \"{text}\""),
        };
        world.add_message(
            &engagement,
            &agent,
            MessageBody::plain_text(reply),
            Some(parent),
        );
    });
}
