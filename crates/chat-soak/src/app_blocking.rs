//! The customer app ([`crate::app`]) on chat-blocking: the crash soak's blocking child. The
//! same steps as [`crate::app_tokio`], on threads: the main thread sends, a reader thread
//! takes the events (and drives the client while it waits for them).

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chat_blocking::{Client, Engagement, Error, EventStream, StreamTransport};
use chat_core::Event;
use chat_core::wire::EngagementStatus;
use chat_store::{Lease, SessionStore, StoreError};

use crate::adapter::Transport;
use crate::app::{ATTEMPTS, Customer, Outcome, REJOIN_PATIENCE, Step, passing, retry_pause, stuck};
use crate::inbox::{Inbox, InboxError};
use crate::lines::{Fact, Teller};
use crate::numbered::{Way, next_number};

/// How often, at most, a client is connected again in one process after it stopped by
/// itself before the app gives up.
const MAX_RECONNECTS: u32 = 50;

/// How often the app looks whether its held sends are all delivered once it has nothing
/// more to send (a send restored from the store settles without telling anyone).
const SETTLE_CHECK: Duration = Duration::from_millis(250);

/// Runs the app until it is done, another process holds the session, or it cannot go on;
/// tells the parent each step (see [`crate::app_tokio::run`]).
pub(crate) fn run(
    c: &Customer,
    store: Arc<dyn SessionStore>,
    inbox: Arc<dyn Inbox>,
    tell: Arc<Teller>,
    leave_held: bool,
) -> Outcome {
    let outcome = run_inner(c, &store, &inbox, &tell, leave_held);
    match &outcome {
        Outcome::Done => tell.tell(c.index, Fact::Done),
        Outcome::Held => tell.tell(c.index, Fact::Held),
        Outcome::Failed(why) => tell.tell(c.index, Fact::Problem(why.clone())),
    }
    outcome
}

fn run_inner(
    c: &Customer,
    store: &Arc<dyn SessionStore>,
    inbox: &Arc<dyn Inbox>,
    tell: &Arc<Teller>,
    leave_held: bool,
) -> Outcome {
    for _ in 0..MAX_RECONNECTS {
        let (client, events) = match connect(c, store, leave_held) {
            Ok(connected) => connected,
            Err(outcome) => return outcome,
        };
        match drive(c, &client, events, inbox, tell) {
            Step::Done => {
                return match client.shutdown(None) {
                    Ok(()) => Outcome::Done,
                    Err(e) => Outcome::Failed(format!("shutdown: {e}")),
                };
            }
            Step::Lost => return Outcome::Held,
            Step::Again => {}
            Step::Failed(why) => return Outcome::Failed(why),
        }
    }
    Outcome::Failed(format!("the client stopped {MAX_RECONNECTS} times"))
}

/// The step after a client stopped by itself.
fn ended(client: &Client) -> Step {
    Step::after_end(client.end_reason())
}

fn connect(
    c: &Customer,
    store: &Arc<dyn SessionStore>,
    leave_held: bool,
) -> Result<(Client, EventStream), Outcome> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(retry_pause(attempt));
        }
        let transport = match c.transport {
            Transport::LongPoll => StreamTransport::LongPoll,
            Transport::WebSocket => StreamTransport::WebSocket,
        };
        let connected = Client::builder(&c.base_url, &c.integration_id, &c.appkey.0)
            .token(c.token.0.clone())
            .config(c.config())
            .stream_transport(transport)
            .store(Arc::clone(store), &c.key)
            .customer(format!("customer {}", c.index))
            .lease_ttl(c.lease_ttl)
            .store_owner(&c.owner)
            .app_records_positions()
            .connect();
        match connected {
            Ok(connected) => return Ok(connected),
            Err(Error::Store(StoreError::Held { .. })) if leave_held => {
                return Err(Outcome::Held);
            }
            Err(Error::Store(e)) if !passing(&e, leave_held) => {
                return Err(Outcome::Failed(format!("connect: {e}")));
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(Outcome::Failed(format!(
        "connect failed {ATTEMPTS} times; the last: {last}"
    )))
}

/// What the reader thread has done, for the main thread's waits.
#[derive(Debug, Default)]
struct Reading {
    taken: u64,
    failed: Option<String>,
    lost: bool,
    ended: bool,
}

#[derive(Debug, Default)]
struct Progress {
    reading: Mutex<Reading>,
    changed: Condvar,
}

impl Progress {
    fn update(&self, f: impl FnOnce(&mut Reading)) {
        f(&mut self.reading.lock().unwrap_or_else(PoisonError::into_inner));
        self.changed.notify_all();
    }

    fn stopped(&self) -> Option<Step> {
        let r = self.reading.lock().unwrap_or_else(PoisonError::into_inner);
        if r.lost {
            return Some(Step::Lost);
        }
        r.failed.clone().map(Step::Failed)
    }

    /// Events taken so far.
    fn taken(&self) -> u64 {
        self.reading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .taken
    }

    /// Waits until the reader took another event than `seen`, or `timeout` passed.
    fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let r = self.reading.lock().unwrap_or_else(PoisonError::into_inner);
        let (r, _) = self
            .changed
            .wait_timeout_while(r, timeout, |r| r.taken == seen && !r.ended)
            .unwrap_or_else(PoisonError::into_inner);
        r.taken
    }
}

fn drive(
    c: &Customer,
    client: &Client,
    events: EventStream,
    inbox: &Arc<dyn Inbox>,
    tell: &Arc<Teller>,
) -> Step {
    tell.tell(c.index, Fact::Connected);
    tell.tell(
        c.index,
        Fact::Session(client.session_id().as_str().to_owned()),
    );
    let Some(lease) = client.lease() else {
        return ended(client);
    };
    let progress = Arc::new(Progress::default());
    let reader = {
        let (c, inbox, tell, progress) = (
            c.clone(),
            Arc::clone(inbox),
            Arc::clone(tell),
            Arc::clone(&progress),
        );
        // It ends when the event stream does: once the client has stopped.
        std::thread::Builder::new()
            .name("soak-reader".to_owned())
            .spawn(move || read(&c, &events, &lease, &*inbox, &tell, &progress))
    };
    if let Err(e) = reader {
        return Step::Failed(format!("no reader thread: {e}"));
    }
    let chat = match find_chat(c, client, &progress, tell) {
        Ok(chat) => chat,
        Err(step) => return step,
    };
    tell.tell(c.index, Fact::Engagement(chat.id().as_str().to_owned()));
    let mut next = match where_it_was(c, client, &chat, tell) {
        Ok(next) => next,
        Err(step) => return step,
    };
    let mut first = true;
    while next <= c.messages {
        // The first send of a connect goes at once: the pause before it was spent (in
        // part) before the restart, and the time from a restart to its first delivery
        // measures the SDK, not the pace.
        if !first {
            std::thread::sleep(c.pause_before(next));
        }
        first = false;
        if let Some(step) = progress.stopped() {
            return step;
        }
        tell.tell(c.index, Fact::Sending(next));
        match send(c, client, &chat, next, tell) {
            Ok(()) => next += 1,
            Err(_) if client.is_closed() => return ended(client),
            Err(e) => {
                tell.tell(c.index, Fact::Failed(next, e.code().to_owned()));
                next = match where_it_was(c, client, &chat, tell) {
                    Ok(next) => next,
                    Err(step) => return step,
                };
            }
        }
    }
    let mut seen = 0;
    loop {
        if let Some(step) = progress.stopped() {
            return step;
        }
        if client.is_closed() {
            return ended(client);
        }
        if client.pending_sends().is_empty() {
            match inbox.count(c.index) {
                Ok(n) if n >= c.agent_messages => return Step::Done,
                Ok(_) => {}
                Err(e) => return Step::Failed(format!("counting the app's table: {e}")),
            }
        }
        seen = progress.wait(seen, SETTLE_CHECK);
    }
}

/// The chat: the session's (active, or being joined again by the SDK), else the customer's
/// ongoing one, else a new one; once active (see [`crate::app_tokio`]).
fn find_chat(
    c: &Customer,
    client: &Client,
    progress: &Progress,
    tell: &Teller,
) -> Result<Engagement, Step> {
    let ongoing = |e: &Engagement| {
        !matches!(
            e.status(),
            EngagementStatus::Terminated | EngagementStatus::Terminating
        )
    };
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(retry_pause(attempt));
        }
        if client.is_closed() {
            return Err(ended(client));
        }
        let found = match client.engagements().into_iter().find(ongoing) {
            Some(chat) => {
                if pending_for(client, &chat, progress, REJOIN_PATIENCE) {
                    tell.tell(c.index, Fact::Problem(stuck(&chat.status())));
                    join(&chat)
                } else {
                    chat.wait_active().map(|()| chat)
                }
            }
            None => match client.list_engagements() {
                Ok(list) => match list.into_iter().find(ongoing) {
                    Some(chat) => join(&chat),
                    None => client
                        .create_engagement()
                        .and_then(|chat| chat.wait_active().map(|()| chat)),
                },
                Err(e) => Err(e),
            },
        };
        match found {
            Ok(chat) => return Ok(chat),
            Err(e) => last = e.to_string(),
        }
    }
    Err(Step::Failed(format!(
        "no chat after {ATTEMPTS} attempts; the last: {last}"
    )))
}

/// Whether `chat` is still PENDING after `patience` (chat-blocking's `wait_active` has no
/// timeout; the reader's progress wakes this wait at every event, `ENGAGEMENT_ACTIVE` among
/// them).
fn pending_for(
    client: &Client,
    chat: &Engagement,
    progress: &Progress,
    patience: Duration,
) -> bool {
    let deadline = Instant::now() + patience;
    let mut seen = progress.taken();
    while chat.status() == EngagementStatus::Pending && !client.is_closed() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        seen = progress.wait(seen, left);
    }
    false
}

/// Joins a chat of the customer's and waits until it is active.
fn join(chat: &Engagement) -> Result<Engagement, Error> {
    let joined = chat.join()?;
    joined.wait_active()?;
    Ok(joined)
}

/// The next number to send, from the held sends, then the transcript.
fn where_it_was(
    c: &Customer,
    client: &Client,
    chat: &Engagement,
    tell: &Teller,
) -> Result<u64, Step> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(retry_pause(attempt));
        }
        let pending: Vec<String> = client
            .pending_sends()
            .into_iter()
            .filter(|s| &s.engagement_id == chat.id())
            .map(|s| s.text)
            .collect();
        match chat.transcript() {
            Ok(transcript) => {
                let next = next_number(
                    c.mode,
                    c.index,
                    pending.iter().map(String::as_str),
                    transcript.iter().filter_map(|m| m.text()),
                );
                tell.tell(c.index, Fact::Next(next));
                return Ok(next);
            }
            Err(_) if client.is_closed() => return Err(ended(client)),
            Err(e) => last = e.to_string(),
        }
    }
    Err(Step::Failed(format!(
        "no transcript after {ATTEMPTS} attempts; the last: {last}"
    )))
}

/// Sends number `k`: queued (in the client when the call returns), handed over once
/// `saved()` returned after it, delivered with its answer.
fn send(
    c: &Customer,
    client: &Client,
    chat: &Engagement,
    k: u64,
    tell: &Teller,
) -> Result<(), Error> {
    let queued = chat.queue_message(&c.text(k))?;
    client.saved()?;
    tell.tell(c.index, Fact::Handed(k));
    queued.delivered()?;
    tell.tell(c.index, Fact::Delivered(k));
    Ok(())
}

/// Takes every event; each agent message goes into the app's table with the exactly-once
/// recipe before the next event is taken.
fn read(
    c: &Customer,
    events: &EventStream,
    lease: &Lease,
    inbox: &dyn Inbox,
    tell: &Teller,
    progress: &Progress,
) {
    while let Some(e) = events.recv() {
        match e.event {
            Event::MessageArrived(m) | Event::MessageDelivered(m) => {
                match m.text().and_then(|t| c.number(t)) {
                    Some((Way::Agent, j)) => match inbox.take(lease, &c.key, c.index, &m, j) {
                        Ok(()) => {}
                        Err(InboxError::Store(StoreError::LeaseLost { .. })) => {
                            progress.update(|r| r.lost = true);
                            return;
                        }
                        Err(e) => {
                            progress.update(|r| {
                                r.failed = Some(format!("taking agent message {j}: {e}"));
                            });
                            return;
                        }
                    },
                    Some((Way::Customer, k)) => tell.tell(c.index, Fact::Delivered(k)),
                    None => {}
                }
            }
            Event::EventStreamConnected => tell.tell(c.index, Fact::Stream(true)),
            Event::EventStreamFailed(_) => tell.tell(c.index, Fact::Stream(false)),
            _ => {}
        }
        progress.update(|r| r.taken += 1);
    }
    progress.update(|r| r.ended = true);
}
