//! The customer app of the crash and failover soaks, what both of its forms share
//! ([`crate::app_tokio`] on chat-tokio, [`crate::app_blocking`] on chat-blocking): who it
//! is, where its session is kept, its pace, and how its run ends.
//!
//! The app keeps nothing in memory that a restart would need: it connects with its store
//! (resuming the session, its chat, its held sends and its position), finds its chat (the
//! one the session holds, else the customer's ongoing one from the server, else a new one),
//! finds the next number to send from the SDK's held sends and the transcript, sends the
//! rest one after the other (each handed over once `saved()` returned after it), and takes
//! every agent message into its own table with the exactly-once recipe ([`crate::inbox`]).
//! It is done once all its numbers are delivered and its table holds every agent message
//! the run posts to it; then it shuts the session down.

use std::time::Duration;

use chat_core::Config;

use crate::adapter::{Secret, Transport};

/// Who the app is and what it does.
#[derive(Debug, Clone)]
pub(crate) struct Customer {
    /// The customer's number in the run (in its message texts and its lines).
    pub(crate) index: usize,
    /// `crash` or `failover`: the first word of its texts.
    pub(crate) mode: &'static str,
    /// Where the chat API is (the soak's proxy in front of the emulator).
    pub(crate) base_url: String,
    /// The integration.
    pub(crate) integration_id: String,
    /// The appkey.
    pub(crate) appkey: Secret,
    /// A chat token for the customer, minted by the parent for the whole run.
    pub(crate) token: Secret,
    /// The event-stream transport.
    pub(crate) transport: Transport,
    /// The session's key in the store.
    pub(crate) key: String,
    /// Who claims it: the same name across a crash child's restarts (so that it takes over
    /// from its dead self at once), one per gateway process in the failover soak.
    pub(crate) owner: String,
    /// The store's lease.
    pub(crate) lease_ttl: Duration,
    /// Numbers to send, 1..=messages.
    pub(crate) messages: u64,
    /// Agent messages the run posts to this customer: the app is done once it took them all.
    pub(crate) agent_messages: u64,
    /// The mean pause before each send.
    pub(crate) pace: Duration,
    /// The seed of the pauses.
    pub(crate) seed: u64,
}

/// How an app's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Everything sent and taken; the session is shut down.
    Done,
    /// Another process holds the session (at connect, or it took the session over since).
    Held,
    /// It could not go on (the reason, one line).
    Failed(String),
}

/// How one connected client's drive ended.
#[derive(Debug)]
pub(crate) enum Step {
    /// Everything sent and taken: shut the session down.
    Done,
    /// The client stopped by itself (the server forgot the session): connect again from
    /// what the store holds.
    Again,
    /// Another process holds the session now.
    Lost,
    /// It could not go on.
    Failed(String),
}

impl Step {
    /// The step after a client stopped by itself, for `why`.
    pub(crate) fn after_end(why: Option<chat_core::EndReason>) -> Self {
        match why {
            Some(chat_core::EndReason::Abandoned) => Self::Lost,
            _ => Self::Again,
        }
    }
}

/// Whether a store error at connect may pass (the connect is tried again): the store could
/// not be reached, or (unless `leave_held`) another owner's lease is still live.
pub(crate) fn passing(e: &chat_store::StoreError, leave_held: bool) -> bool {
    match e {
        chat_store::StoreError::Unreachable { .. } => true,
        chat_store::StoreError::Held { .. } => !leave_held,
        _ => false,
    }
}

/// How many times a step (connect, finding the chat, reading the transcript) is tried before
/// the app gives up: a minute and a half of faults at least.
pub(crate) const ATTEMPTS: u32 = 120;

/// The pause before attempt `attempt` (from 1) of a step: 250 ms, growing to 1 s.
pub(crate) fn retry_pause(attempt: u32) -> Duration {
    Duration::from_millis(250 * u64::from(attempt.clamp(1, 4)))
}

/// How long a chat the session holds may stay PENDING after connect before the app joins
/// it itself (and tells the parent, which counts it as a problem: the SDK joins the chats of
/// a session it replaced, and resumes those of a session it resumed).
pub(crate) const REJOIN_PATIENCE: Duration = Duration::from_secs(15);

/// What the app tells when its chat stayed PENDING after connect.
pub(crate) fn stuck(status: &chat_core::wire::EngagementStatus) -> String {
    format!(
        "its chat was still {status:?} {} s after connect: the app joined it itself",
        REJOIN_PATIENCE.as_secs()
    )
}

impl Customer {
    /// chat-core's configuration: short poll and request timeouts (the faults hang polls
    /// past them), no idle timeout, the jitter seeded. The outbox is the store's default
    /// (an hour: a held send outlives every restart of the run).
    pub(crate) fn config(&self) -> Config {
        Config {
            poll_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            reconnection_timeout: Duration::from_secs(300),
            idle_timeout: None,
            jitter_seed: Some(self.seed ^ (self.index as u64).wrapping_mul(0x2545_f491)),
            ..Config::default()
        }
    }

    /// The pause before send `k`: from half to one and a half times the pace, the same for
    /// `k` whichever process sends it.
    pub(crate) fn pause_before(&self, k: u64) -> Duration {
        let mut rng = fastrand::Rng::with_seed(
            self.seed ^ (self.index as u64).wrapping_mul(0x9e37_79b9) ^ k.wrapping_mul(0x85eb),
        );
        self.pace.mul_f64(0.5 + rng.f64())
    }

    /// The text of send `k`.
    pub(crate) fn text(&self, k: u64) -> String {
        crate::numbered::text(self.mode, self.index, crate::numbered::Way::Customer, k)
    }

    /// The number of a message of this customer, if it is one.
    pub(crate) fn number(&self, text: &str) -> Option<(crate::numbered::Way, u64)> {
        crate::numbered::parse(self.mode, self.index, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer() -> Customer {
        Customer {
            index: 2,
            mode: "crash",
            base_url: "http://127.0.0.1:1".into(),
            integration_id: "i".into(),
            appkey: Secret("k".into()),
            token: Secret("t".into()),
            transport: Transport::LongPoll,
            key: "c2".into(),
            owner: "crash-c2".into(),
            lease_ttl: Duration::from_secs(15),
            messages: 10,
            agent_messages: 10,
            pace: Duration::from_millis(100),
            seed: 7,
        }
    }

    #[test]
    fn pauses_are_seeded_per_number_and_around_the_pace() {
        let c = customer();
        assert_eq!(c.pause_before(3), customer().pause_before(3));
        for k in 1..50 {
            let p = c.pause_before(k);
            assert!(
                p >= Duration::from_millis(50) && p <= Duration::from_millis(150),
                "{p:?}"
            );
        }
        assert_eq!(c.text(4), "crash c2 n4");
        assert_eq!(
            c.number("crash c2 a4"),
            Some((crate::numbered::Way::Agent, 4))
        );
    }
}
