//! The customer app ([`crate::app`]) on chat-tokio: the crash soak's tokio child, and each
//! customer of a failover gateway.

use std::sync::Arc;
use std::time::Duration;

use chat_core::Event;
use chat_core::wire::EngagementStatus;
use chat_store::{Lease, SessionStore, StoreError};
use chat_tokio::{Client, Engagement, Error, EventStream, StreamTransport};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::adapter::Transport;
use crate::app::{ATTEMPTS, Customer, Outcome, REJOIN_PATIENCE, Step, passing, retry_pause, stuck};
use crate::inbox::Inbox;
use crate::lines::{Fact, Teller};
use crate::numbered::{Way, next_number};

/// How often, at most, a client is connected again in one process after it stopped by
/// itself (the server forgot the session) before the app gives up.
const MAX_RECONNECTS: u32 = 50;

/// How often the app looks whether its held sends are all delivered once it has nothing
/// more to send: a send restored from the store settles without telling anyone (its reply
/// has no caller), so there is nothing to wait on but the held sends themselves.
const SETTLE_CHECK: Duration = Duration::from_millis(250);

/// Runs the app until it is done, another process holds the session, or it cannot go on;
/// tells the parent each step. `leave_held`: a session another owner holds is left alone
/// (a gateway); otherwise the app waits for the lease to pass (a crash child restarts under
/// its own owner name, so that it takes over from its dead self at once).
pub(crate) async fn run(
    c: &Customer,
    store: Arc<dyn SessionStore>,
    inbox: Arc<dyn Inbox>,
    tell: Arc<Teller>,
    leave_held: bool,
) -> Outcome {
    let outcome = run_inner(c, store, inbox, &tell, leave_held).await;
    match &outcome {
        Outcome::Done => tell.tell(c.index, Fact::Done),
        Outcome::Held => tell.tell(c.index, Fact::Held),
        Outcome::Failed(why) => tell.tell(c.index, Fact::Problem(why.clone())),
    }
    outcome
}

async fn run_inner(
    c: &Customer,
    store: Arc<dyn SessionStore>,
    inbox: Arc<dyn Inbox>,
    tell: &Arc<Teller>,
    leave_held: bool,
) -> Outcome {
    for _ in 0..MAX_RECONNECTS {
        let (client, events) = match connect(c, &store, leave_held).await {
            Ok(connected) => connected,
            Err(outcome) => return outcome,
        };
        match drive(c, &client, events, &inbox, tell).await {
            Step::Done => {
                // The session ends on the server, and the store forgets it.
                return match client.shutdown(None).await {
                    Ok(()) => Outcome::Done,
                    Err(e) => Outcome::Failed(format!("shutdown: {e}")),
                };
            }
            Step::Lost => return Outcome::Held,
            // The client stopped by itself: connect again from what the store holds.
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

async fn connect(
    c: &Customer,
    store: &Arc<dyn SessionStore>,
    leave_held: bool,
) -> Result<(Client, EventStream), Outcome> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(retry_pause(attempt)).await;
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
            .connect()
            .await;
        match connected {
            Ok(connected) => return Ok(connected),
            Err(Error::Store(StoreError::Held { .. })) if leave_held => {
                return Err(Outcome::Held);
            }
            Err(Error::Store(e)) if !passing(&e, leave_held) => {
                return Err(Outcome::Failed(format!("connect: {e}")));
            }
            Err(e) => {
                crate::session::trace(|| format!("c{} connect: {e}", c.index));
                last = e.to_string();
            }
        }
    }
    Err(Outcome::Failed(format!(
        "connect failed {ATTEMPTS} times; the last: {last}"
    )))
}

/// What the event reader has done, for the app's waits.
#[derive(Debug, Default, Clone)]
struct Reading {
    /// Events taken so far.
    taken: u64,
    /// Why it stopped taking events before the stream ended.
    failed: Option<String>,
    /// The fence refused a message: another process holds the session.
    lost: bool,
}

/// Aborts the reader when the drive ends, which drops the event stream.
struct Reader(JoinHandle<()>);

impl Drop for Reader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn drive(
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
    let (reading, mut changes) = watch::channel(Reading::default());
    let _reader = Reader(tokio::spawn(read(
        c.clone(),
        events,
        lease,
        Arc::clone(inbox),
        Arc::clone(tell),
        reading,
    )));
    let chat = match find_chat(c, client, tell).await {
        Ok(chat) => chat,
        Err(step) => return step,
    };
    tell.tell(c.index, Fact::Engagement(chat.id().as_str().to_owned()));
    let mut next = match where_it_was(c, client, &chat, tell).await {
        Ok(next) => next,
        Err(step) => return step,
    };
    let mut first = true;
    while next <= c.messages {
        // The first send of a connect goes at once: the pause before it was spent (in
        // part) before the restart, and the time from a restart to its first delivery
        // measures the SDK, not the pace.
        if !first {
            tokio::time::sleep(c.pause_before(next)).await;
        }
        first = false;
        if let Some(step) = reader_stopped(&changes.borrow()) {
            return step;
        }
        tell.tell(c.index, Fact::Sending(next));
        match send(c, client, &chat, next, tell).await {
            Ok(()) => next += 1,
            Err(_) if client.is_closed() => return ended(client),
            Err(e) => {
                // The client goes on: the send may be stored all the same (an answer lost
                // past the outbox's patience); the transcript says.
                tell.tell(c.index, Fact::Failed(next, e.code().to_owned()));
                next = match where_it_was(c, client, &chat, tell).await {
                    Ok(next) => next,
                    Err(step) => return step,
                };
            }
        }
    }
    loop {
        if let Some(step) = reader_stopped(&changes.borrow_and_update()) {
            return step;
        }
        if client.is_closed() {
            return ended(client);
        }
        if client.pending_sends().is_empty() {
            let inbox = Arc::clone(inbox);
            let index = c.index;
            match tokio::task::spawn_blocking(move || inbox.count(index)).await {
                Ok(Ok(n)) if n >= c.agent_messages => return Step::Done,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Step::Failed(format!("counting the app's table: {e}")),
                Err(e) => return Step::Failed(format!("counting the app's table: {e}")),
            }
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = client.closed() => {}
            () = tokio::time::sleep(SETTLE_CHECK) => {}
        }
    }
}

fn reader_stopped(reading: &Reading) -> Option<Step> {
    if reading.lost {
        return Some(Step::Lost);
    }
    reading.failed.clone().map(Step::Failed)
}

/// The chat: the one the session holds (active, or being joined again by the SDK after it
/// replaced a forgotten session), else the customer's ongoing one on the server (created by
/// a process that died before its store knew), else a new one; once active.
async fn find_chat(c: &Customer, client: &Client, tell: &Teller) -> Result<Engagement, Step> {
    let ongoing = |e: &Engagement| {
        !matches!(
            e.status(),
            EngagementStatus::Terminated | EngagementStatus::Terminating
        )
    };
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(retry_pause(attempt)).await;
        }
        if client.is_closed() {
            return Err(ended(client));
        }
        let found = match client.engagements().into_iter().find(ongoing) {
            Some(chat) => match tokio::time::timeout(REJOIN_PATIENCE, chat.wait_active()).await {
                Ok(active) => active.map(|()| chat),
                Err(_) => {
                    // The SDK should have joined it: say so (the run fails on it), and join.
                    tell.tell(c.index, Fact::Problem(stuck(&chat.status())));
                    join(chat).await
                }
            },
            None => match client.list_engagements().await {
                Ok(list) => match list.into_iter().find(ongoing) {
                    Some(chat) => join(chat).await,
                    None => match client.create_engagement().await {
                        Ok(chat) => chat.wait_active().await.map(|()| chat),
                        Err(e) => Err(e),
                    },
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

/// Joins a chat of the customer's and waits until it is active.
async fn join(chat: Engagement) -> Result<Engagement, Error> {
    let joined = chat.join().await?;
    joined.wait_active().await?;
    Ok(joined)
}

/// The next number to send, from the SDK's held sends, then the transcript (never from
/// memory: this may be a new process).
async fn where_it_was(
    c: &Customer,
    client: &Client,
    chat: &Engagement,
    tell: &Teller,
) -> Result<u64, Step> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(retry_pause(attempt)).await;
        }
        let pending: Vec<String> = client
            .pending_sends()
            .into_iter()
            .filter(|s| &s.engagement_id == chat.id())
            .map(|s| s.text)
            .collect();
        match chat.transcript().await {
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
async fn send(
    c: &Customer,
    client: &Client,
    chat: &Engagement,
    k: u64,
    tell: &Teller,
) -> Result<(), Error> {
    let queued = chat.queue_message(&c.text(k))?;
    client.saved().await?;
    tell.tell(c.index, Fact::Handed(k));
    queued.delivered().await?;
    tell.tell(c.index, Fact::Delivered(k));
    Ok(())
}

/// Takes every event; each agent message goes into the app's table with the exactly-once
/// recipe before the next event is taken.
async fn read(
    c: Customer,
    events: EventStream,
    lease: Lease,
    inbox: Arc<dyn Inbox>,
    tell: Arc<Teller>,
    reading: watch::Sender<Reading>,
) {
    while let Some(e) = events.recv().await {
        match e.event {
            Event::MessageArrived(m) | Event::MessageDelivered(m) => {
                match m.text().and_then(|t| c.number(t)) {
                    Some((Way::Agent, j)) => {
                        let (inbox, lease, key) =
                            (Arc::clone(&inbox), lease.clone(), c.key.clone());
                        let index = c.index;
                        let taken = tokio::task::spawn_blocking(move || {
                            inbox.take(&lease, &key, index, &m, j)
                        })
                        .await;
                        let failed = match taken {
                            Ok(Ok(())) => None,
                            Ok(Err(crate::inbox::InboxError::Store(StoreError::LeaseLost {
                                ..
                            }))) => {
                                reading.send_modify(|r| r.lost = true);
                                return;
                            }
                            Ok(Err(e)) => Some(format!("taking agent message {j}: {e}")),
                            Err(e) => Some(format!("taking agent message {j}: {e}")),
                        };
                        if let Some(why) = failed {
                            reading.send_modify(|r| r.failed = Some(why));
                            return;
                        }
                    }
                    Some((Way::Customer, k)) => tell.tell(c.index, Fact::Delivered(k)),
                    None => {}
                }
            }
            Event::EventStreamConnected => tell.tell(c.index, Fact::Stream(true)),
            Event::EventStreamFailed(_) => tell.tell(c.index, Fact::Stream(false)),
            _ => {}
        }
        reading.send_modify(|r| r.taken += 1);
    }
}
