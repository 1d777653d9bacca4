//! One soak session: the customer app (connect, create an engagement, send numbered
//! messages, read events, recover from an invalidated session) and the agent side posting
//! numbered messages through the emulator's control handle. Everything seen is logged in a
//! [`SessionLog`] for the report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chat_core::{EngagementId, Event, Message, SessionId};
use chat_emulator::Control;
use chat_tokio::ParticipantType;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::adapter::{Adapter, AdapterError, ConnectSpec, Connection, SoakClient, TimedEvent};

/// With `CHAT_SOAK_TRACE` set, prints a line of what a session or the fault scheduler does
/// on stderr (event names, message texts and ids, errors: no tokens, no appkey).
pub(crate) fn trace(line: impl FnOnce() -> String) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("CHAT_SOAK_TRACE").is_some()) {
        #[allow(clippy::print_stderr)] // asked for
        {
            eprintln!("{}", line());
        }
    }
}

/// How many times a setup step (connect, create, join, history) is tried.
const SETUP_ATTEMPTS: u32 = 40;
/// Pause between setup attempts.
const SETUP_PAUSE: Duration = Duration::from_millis(250);

/// Which way a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Dir {
    /// Sent by the customer through the SDK (`c{n}`).
    Customer,
    /// Posted by the agent side (`a{n}`).
    Agent,
}

/// The text of message `n` of session `session`.
pub(crate) fn text(session: usize, dir: Dir, n: usize) -> String {
    let d = match dir {
        Dir::Customer => 'c',
        Dir::Agent => 'a',
    };
    format!("soak s{session} {d}{n}")
}

/// Reads back [`text`]: `Some((dir, n))` for a message of `session`.
pub(crate) fn parse(session: usize, text: &str) -> Option<(Dir, usize)> {
    let rest = text.strip_prefix("soak s")?;
    let (s, m) = rest.split_once(' ')?;
    if s.parse::<usize>().ok()? != session {
        return None;
    }
    let dir = match m.as_bytes().first()? {
        b'c' => Dir::Customer,
        b'a' => Dir::Agent,
        _ => return None,
    };
    let n = m.get(1..)?.parse().ok()?;
    Some((dir, n))
}

/// How the customer app learned of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// `MESSAGE_ARRIVED` / `MESSAGE_DELIVERED` on the event stream.
    Stream,
    /// The history fetched after rejoining with a new session.
    History,
}

/// One sighting of a message by the customer app.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) dir: Dir,
    pub(crate) n: usize,
    pub(crate) index: u64,
    pub(crate) at: Instant,
    pub(crate) via: Via,
}

/// A customer send and how it ended.
#[derive(Debug, Clone)]
pub(crate) struct SendRecord {
    pub(crate) n: usize,
    pub(crate) started: Instant,
    /// `None`: it never ended (within the soak's patience).
    pub(crate) outcome: Option<(Instant, Result<u64, AdapterError>)>,
}

/// An agent post.
#[derive(Debug, Clone)]
pub(crate) struct PostRecord {
    pub(crate) n: usize,
    pub(crate) at: Instant,
    pub(crate) ok: bool,
}

/// Everything one session saw and did.
#[derive(Debug, Default)]
pub(crate) struct SessionLog {
    pub(crate) sends: Vec<SendRecord>,
    pub(crate) posts: Vec<PostRecord>,
    pub(crate) seen: Vec<Seen>,
    /// Messages both in the history fill and on the new session's stream (shown once).
    pub(crate) overlap: u64,
    /// Server truth at the end: the dialog's messages of this session, by index.
    pub(crate) dialog: Vec<(u64, Dir, usize)>,
    pub(crate) connected: u64,
    pub(crate) incarnations: u64,
    pub(crate) failures: BTreeMap<String, u64>,
    pub(crate) token_expired: u64,
    pub(crate) token_calls: u64,
    pub(crate) connect_attempts: u64,
    pub(crate) setup_retries: u64,
    pub(crate) recovered_from_history: u64,
    pub(crate) recoveries: u64,
    /// Why the session could not run or be checked (setup failed for good).
    pub(crate) problems: Vec<String>,
    pub(crate) foreign: u64,
    /// The engagement, once created.
    pub(crate) engagement: Option<EngagementId>,
    /// Recoveries started because the stream closed without `CLIENT_SESSION_INVALIDATED`.
    pub(crate) unsignalled: u64,
}

/// When things happen in a session, from the start of the run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) start: Duration,
    pub(crate) customer: Vec<Duration>,
    pub(crate) agent: Vec<Duration>,
}

impl Plan {
    /// Seeded: a start in the first tenth of the run, then `messages` sends and posts each at
    /// random times up to 85 % of it.
    pub(crate) fn new(seed: u64, session: usize, messages: usize, duration: Duration) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed.wrapping_mul(0x9e37_79b9) ^ session as u64);
        let total = duration.as_millis().max(10) as u64;
        let start = rng.u64(0..total / 10 + 1);
        let end = (total * 85 / 100).max(start + 1);
        let times = |rng: &mut fastrand::Rng| {
            let mut v: Vec<Duration> = (0..messages)
                .map(|_| Duration::from_millis(rng.u64(start..end)))
                .collect();
            v.sort();
            v
        };
        let customer = times(&mut rng);
        let agent = times(&mut rng);
        Self {
            start: Duration::from_millis(start),
            customer,
            agent,
        }
    }
}

/// Where a session stands, for the fault scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Starting,
    Active,
    Recovering,
    Done,
}

/// A session's entry in the run's registry.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) phase: Phase,
    pub(crate) session: Option<SessionId>,
    pub(crate) invalidated: bool,
    /// Whether its event stream is connected now (as the app last heard).
    pub(crate) stream_up: bool,
}

impl Default for Slot {
    fn default() -> Self {
        Self {
            phase: Phase::Starting,
            session: None,
            invalidated: false,
            stream_up: false,
        }
    }
}

/// The shared registry: one slot per session.
pub(crate) type Registry = Arc<Vec<Mutex<Slot>>>;

pub(crate) fn slot(registry: &Registry, index: usize) -> std::sync::MutexGuard<'_, Slot> {
    registry[index]
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// What a session needs from the run.
pub(crate) struct Context {
    pub(crate) index: usize,
    pub(crate) adapter: Arc<dyn Adapter>,
    pub(crate) spec: ConnectSpec,
    pub(crate) control: Control,
    pub(crate) started: Instant,
    pub(crate) plan: Plan,
    pub(crate) registry: Registry,
    /// How long after the last send and post the session waits for everything to arrive.
    pub(crate) drain: Duration,
    /// How long one send may take before it counts as vanished.
    pub(crate) send_patience: Duration,
}

/// The current connection, shared with the sender.
type Current = watch::Sender<(u64, Option<Arc<dyn SoakClient>>)>;

struct App {
    ctx: Arc<Context>,
    log: SessionLog,
    engagement: Option<EngagementId>,
    client: Option<Arc<dyn SoakClient>>,
    current: Current,
    active: watch::Sender<bool>,
    /// Indices the history fill showed, not yet seen on the new stream.
    filled: BTreeSet<u64>,
}

/// Runs one session to its end and returns its log.
pub(crate) async fn run(ctx: Context) -> SessionLog {
    let ctx = Arc::new(ctx);
    tokio::time::sleep_until(ctx.started + ctx.plan.start).await;
    let (current, _) = watch::channel((0, None));
    let (active, _) = watch::channel(false);
    let mut app = App {
        ctx: Arc::clone(&ctx),
        log: SessionLog::default(),
        engagement: None,
        client: None,
        current,
        active,
        filled: BTreeSet::new(),
    };
    let Some(mut events) = app.start().await else {
        finish(&ctx, Phase::Done);
        return app.log;
    };
    let Some(engagement) = app.engagement.clone() else {
        return app.log;
    };
    let sends = Arc::new(Mutex::new(Vec::new()));
    let posts = Arc::new(Mutex::new(Vec::new()));
    let mut sender = tokio::spawn(send_all(
        Arc::clone(&ctx),
        engagement.clone(),
        app.current.subscribe(),
        app.active.subscribe(),
        Arc::clone(&sends),
    ));
    let mut agent = tokio::spawn(post_all(
        Arc::clone(&ctx),
        engagement.clone(),
        app.active.subscribe(),
        Arc::clone(&posts),
    ));
    let (mut sender_done, mut agent_done) = (false, false);
    let mut expected: Option<usize> = None;
    let mut deadline: Option<Instant> = None;
    loop {
        if sender_done && agent_done && expected.is_none() {
            // Nothing is added to the dialog any more: wait until the app has shown as many
            // messages as it holds (the audit at the end checks which).
            finish(&ctx, Phase::Done);
            expected = Some(
                ctx.control
                    .engagements()
                    .iter()
                    .find(|e| e.engagement_id == engagement)
                    .map_or(0, |e| e.message_count),
            );
            deadline = Some(Instant::now() + ctx.drain);
        }
        if let Some(expected) = expected {
            let seen: BTreeSet<u64> = app.log.seen.iter().map(|s| s.index).collect();
            if seen.len() >= expected {
                break;
            }
        }
        let far = Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            e = events.recv() => match e {
                Some(e) => {
                    if let Some(next) = app.handle(e, &mut events).await {
                        events = next;
                    }
                }
                None => match app.recover("the event stream ended").await {
                    Some(next) => events = next,
                    None => break,
                },
            },
            _ = &mut sender, if !sender_done => sender_done = true,
            _ = &mut agent, if !agent_done => agent_done = true,
            () = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => break,
        }
    }
    if !sender_done {
        sender.abort();
    }
    if !agent_done {
        agent.abort();
    }
    finish(&ctx, Phase::Done);
    if let Some(client) = app.client.take() {
        client.shutdown().await;
    }
    app.log.token_calls = ctx.spec.tokens.calls();
    app.log.sends = std::mem::take(&mut *sends.lock().unwrap_or_else(PoisonError::into_inner));
    app.log.posts = std::mem::take(&mut *posts.lock().unwrap_or_else(PoisonError::into_inner));
    app.log
}

fn finish(ctx: &Context, phase: Phase) {
    slot(&ctx.registry, ctx.index).phase = phase;
}

/// Retries a setup step a few times, as an app would; counts the retries.
macro_rules! retry {
    ($app:expr, $what:expr, $step:expr) => {{
        let mut last = None;
        for attempt in 0..SETUP_ATTEMPTS {
            if attempt > 0 {
                $app.log.setup_retries += 1;
                tokio::time::sleep(SETUP_PAUSE).await;
            }
            match $step.await {
                Ok(v) => {
                    last = Some(Ok(v));
                    break;
                }
                Err(e) => last = Some(Err(e)),
            }
        }
        match last {
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => {
                $app.log.problems.push(format!("{} failed: {e}", $what));
                None
            }
            None => None,
        }
    }};
}

impl App {
    async fn connect(&mut self) -> Option<Connection> {
        let mut last = None;
        for attempt in 0..SETUP_ATTEMPTS {
            if attempt > 0 {
                self.log.setup_retries += 1;
                tokio::time::sleep(SETUP_PAUSE).await;
            }
            self.log.connect_attempts += 1;
            match self.ctx.adapter.connect(&self.ctx.spec).await {
                Ok(c) => {
                    last = Some(Ok(c));
                    break;
                }
                Err(e) => last = Some(Err(e)),
            }
        }
        match last {
            Some(Ok(c)) => {
                self.log.incarnations += 1;
                let sid = SessionId::new(c.client.session_id());
                slot(&self.ctx.registry, self.ctx.index).session = Some(sid);
                Some(c)
            }
            Some(Err(e)) => {
                self.log.problems.push(format!("connect failed: {e}"));
                None
            }
            None => None,
        }
    }

    /// Connects and creates the engagement; `None` if that failed for good.
    async fn start(&mut self) -> Option<tokio::sync::mpsc::UnboundedReceiver<TimedEvent>> {
        let connection = self.connect().await?;
        let client = Arc::clone(&connection.client);
        let engagement = retry!(self, "create engagement", client.create_engagement())?;
        self.engagement = Some(engagement.clone());
        self.log.engagement = Some(engagement);
        self.client = Some(Arc::clone(&client));
        self.current.send_replace((1, Some(client)));
        Some(connection.events)
    }

    /// Handles one event; returns the new event stream after a recovery.
    async fn handle(
        &mut self,
        e: TimedEvent,
        events: &mut tokio::sync::mpsc::UnboundedReceiver<TimedEvent>,
    ) -> Option<tokio::sync::mpsc::UnboundedReceiver<TimedEvent>> {
        trace(|| {
            let what = match &e.event {
                Event::MessageArrived(m) | Event::MessageDelivered(m) => {
                    format!("{} {:?} #{}", e.event.name(), m.text(), m.message_index)
                }
                other => format!("{other:?}"),
            };
            format!(
                "s{} {:?} {what}",
                self.ctx.index,
                self.ctx.started.elapsed()
            )
        });
        match e.event {
            Event::MessageArrived(m) | Event::MessageDelivered(m) => {
                self.saw(&m, e.at, Via::Stream)
            }
            Event::EngagementActive(_) if !*self.active.borrow() => {
                slot(&self.ctx.registry, self.ctx.index).phase = Phase::Active;
                self.active.send_replace(true);
            }
            Event::EventStreamConnected => {
                self.log.connected += 1;
                slot(&self.ctx.registry, self.ctx.index).stream_up = true;
            }
            Event::TokenExpired { .. } => self.log.token_expired += 1,
            Event::EventStreamFailed(f) => {
                slot(&self.ctx.registry, self.ctx.index).stream_up = false;
                *self
                    .log
                    .failures
                    .entry(f.reason.as_str().to_owned())
                    .or_default() += 1;
                if f.reason == chat_core::StreamFailureReason::ClientSessionInvalidated {
                    return self.recover("the session was invalidated").await;
                }
            }
            Event::EventStreamClosed if self.ours_open() => {
                slot(&self.ctx.registry, self.ctx.index).stream_up = false;
                // The app's chat is not over, yet the stream closed. CLIENT_SESSION_INVALIDATED
                // comes next if the session is gone; if nothing says why, the app starts
                // again all the same.
                let next = tokio::time::timeout(Duration::from_millis(500), events.recv()).await;
                match next {
                    Ok(Some(e)) if matches!(&e.event, Event::EventStreamFailed(f) if f.reason == chat_core::StreamFailureReason::ClientSessionInvalidated) =>
                    {
                        return Box::pin(self.handle(e, events)).await;
                    }
                    Ok(Some(e)) => {
                        self.log.unsignalled += 1;
                        if let Some(new) = Box::pin(self.handle(e, events)).await {
                            return Some(new);
                        }
                    }
                    _ => self.log.unsignalled += 1,
                }
                return self.recover("the event stream closed by itself").await;
            }
            Event::Shutdown { .. } => {
                return self.recover("the client shut down by itself").await;
            }
            _ => {}
        }
        None
    }

    /// Whether the app still has its engagement open (it never leaves it during a run).
    fn ours_open(&self) -> bool {
        self.engagement.is_some()
    }

    fn saw(&mut self, m: &Message, at: Instant, via: Via) {
        if Some(&m.engagement_id) != self.engagement.as_ref() {
            self.log.foreign += 1;
            return;
        }
        let Some((dir, n)) = m.text().and_then(|t| parse(self.ctx.index, t)) else {
            self.log.foreign += 1;
            return;
        };
        if via == Via::Stream && self.filled.remove(&m.message_index) {
            // Shown by the history fill already; the app shows it once.
            self.log.overlap += 1;
            return;
        }
        if via == Via::History {
            self.log.recovered_from_history += 1;
            self.filled.insert(m.message_index);
        }
        self.log.seen.push(Seen {
            dir,
            n,
            index: m.message_index,
            at,
            via,
        });
    }

    /// What a real app does when its session is gone: a new session, the same engagement
    /// rejoined, and what it missed fetched from history — every message after the newest
    /// message index it had shown. `None` if that failed for good.
    async fn recover(
        &mut self,
        why: &str,
    ) -> Option<tokio::sync::mpsc::UnboundedReceiver<TimedEvent>> {
        let engagement = self.engagement.clone()?;
        self.log.recoveries += 1;
        {
            let mut s = slot(&self.ctx.registry, self.ctx.index);
            if s.phase != Phase::Done {
                s.phase = Phase::Recovering;
            }
        }
        if let Some(old) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), old.shutdown()).await;
        }
        let shown = self.log.seen.iter().map(|s| s.index).max().unwrap_or(0);
        let connection = self.connect().await;
        let Some(connection) = connection else {
            self.log.problems.push(format!("no recovery after {why}"));
            return None;
        };
        let client = Arc::clone(&connection.client);
        retry!(self, "rejoin", client.join(&engagement))?;
        let mut history = retry!(self, "history", client.history(&engagement))?;
        history.sort_by_key(|m| m.message_index);
        let now = Instant::now();
        for m in history.iter().filter(|m| m.message_index > shown) {
            self.saw(m, now, Via::History);
        }
        self.client = Some(Arc::clone(&client));
        let incarnation = self.current.borrow().0 + 1;
        self.current.send_replace((incarnation, Some(client)));
        {
            let mut s = slot(&self.ctx.registry, self.ctx.index);
            if s.phase == Phase::Recovering {
                s.phase = Phase::Active;
            }
        }
        Some(connection.events)
    }
}

/// The customer's sends, one after the other at the planned times.
async fn send_all(
    ctx: Arc<Context>,
    engagement: EngagementId,
    mut current: watch::Receiver<(u64, Option<Arc<dyn SoakClient>>)>,
    mut active: watch::Receiver<bool>,
    out: Arc<Mutex<Vec<SendRecord>>>,
) {
    if active.wait_for(|a| *a).await.is_err() {
        return;
    }
    for (i, at) in ctx.plan.customer.iter().enumerate() {
        let n = i + 1;
        tokio::time::sleep_until(ctx.started + *at).await;
        let (incarnation, client) = current.borrow_and_update().clone();
        let Some(client) = client else { return };
        let started = Instant::now();
        let body = text(ctx.index, Dir::Customer, n);
        let outcome =
            match tokio::time::timeout(ctx.send_patience, client.send(&engagement, &body)).await {
                Ok(r) => Some((Instant::now(), r.map(|m| m.message_index))),
                Err(_) => None,
            };
        let gone = matches!(&outcome, Some((_, Err(e))) if e.session_gone() || e.code == "ACS-314");
        trace(|| {
            let result = outcome.as_ref().map(|o| &o.1);
            format!(
                "s{} {:?} send {body} -> {result:?}",
                ctx.index,
                ctx.started.elapsed()
            )
        });
        out.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(SendRecord {
                n,
                started,
                outcome,
            });
        if gone {
            // The app waits for its new session before the next message.
            let wait = current.wait_for(|(inc, _)| *inc > incarnation);
            let _ = tokio::time::timeout(Duration::from_secs(30), wait).await;
        }
    }
}

/// The agent's posts, at the planned times.
async fn post_all(
    ctx: Arc<Context>,
    engagement: EngagementId,
    mut active: watch::Receiver<bool>,
    out: Arc<Mutex<Vec<PostRecord>>>,
) {
    if active.wait_for(|a| *a).await.is_err() {
        return;
    }
    for (i, at) in ctx.plan.agent.iter().enumerate() {
        let n = i + 1;
        tokio::time::sleep_until(ctx.started + *at).await;
        let at = Instant::now();
        let ok = ctx
            .control
            .post_message(
                &engagement,
                ParticipantType::Agent,
                &text(ctx.index, Dir::Agent, n),
            )
            .is_ok();
        out.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(PostRecord { n, at, ok });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_read_back() {
        assert_eq!(
            parse(3, &text(3, Dir::Customer, 17)),
            Some((Dir::Customer, 17))
        );
        assert_eq!(parse(3, &text(3, Dir::Agent, 1)), Some((Dir::Agent, 1)));
        assert_eq!(parse(4, &text(3, Dir::Agent, 1)), None);
        for junk in [
            "",
            "soak s",
            "soak s3 ",
            "soak s3 x1",
            "soak s3 c",
            "hello",
            "soak s3 c1x",
        ] {
            assert_eq!(parse(3, junk), None, "{junk:?}");
        }
    }

    #[test]
    fn plans_are_seeded_and_within_the_run() {
        let d = Duration::from_secs(10);
        let a = Plan::new(1, 2, 20, d);
        let b = Plan::new(1, 2, 20, d);
        assert_eq!(a.customer, b.customer);
        assert_eq!(a.agent.len(), 20);
        assert!(a.customer.iter().all(|t| *t >= a.start && *t < d));
        assert_ne!(Plan::new(1, 3, 20, d).customer, a.customer);
    }
}
