//! The driver task: owns the [`Session`], carries its requests, feeds back responses, timeouts
//! and commands, and hands events to the application.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime};

use chat_core::{
    ChatError, EngagementId, EngagementInfo, Event, Output, Reply, ReplyValue, Request, RequestId,
    RequestKind, Resumption, Session, StreamFailureReason, StreamState, Token, TransportError,
};
use chat_net::{Call, MAX_AUTH_REFRESHES, PROVIDER_RETRY, PROVIDER_TIMEOUT};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use crate::events::{ChatEvent, Overflow};
use crate::transport::{EventTransport, HttpTransport, Response};
use crate::{Error, TokenProvider};

/// A command from a handle.
#[derive(Debug, Clone)]
pub(crate) enum Command {
    /// Completed by the session's reply.
    Call(Call),
    SetToken(Token),
    RetryConnection,
    ResetIdleTimeout,
    Engagement(EngagementId),
    Engagements,
    StreamState,
    Resumption,
    RefreshToken,
}

/// What a command produced.
#[derive(Debug)]
pub(crate) enum Answer {
    Reply(ReplyValue),
    Done,
    Engagement(Option<EngagementInfo>),
    Engagements(Vec<EngagementInfo>),
    Stream(StreamState),
    Resumption(Option<Resumption>),
}

pub(crate) type Responder = oneshot::Sender<Result<Answer, Error>>;

pub(crate) struct Envelope {
    pub(crate) command: Command,
    pub(crate) reply: Responder,
}

type IoResult = (RequestId, Result<Response, TransportError>);
type Refresh = Pin<Box<dyn Future<Output = Result<Token, Error>> + Send>>;

struct Waiting {
    /// The command, kept to send it again once after a token refresh (401).
    replay: Option<Call>,
    reply: Responder,
}

pub(crate) struct Driver {
    pub(crate) session: Session,
    pub(crate) commands: mpsc::Receiver<Box<Envelope>>,
    pub(crate) events: mpsc::Sender<Box<ChatEvent>>,
    pub(crate) overflow: Overflow,
    pub(crate) capacity: usize,
    pub(crate) http: Arc<dyn HttpTransport>,
    pub(crate) stream: Arc<tokio::sync::Mutex<Box<dyn EventTransport>>>,
    pub(crate) provider: Option<Arc<dyn TokenProvider>>,
    pub(crate) refresh_lead: Duration,
    pub(crate) start: (Instant, SystemTime),
}

struct State {
    commands_open: bool,
    events_open: bool,
    backlog: VecDeque<Box<ChatEvent>>,
    /// A stream response kept back while the application is behind (backpressure).
    held: Option<IoResult>,
    io: JoinSet<IoResult>,
    tasks: HashMap<RequestId, (AbortHandle, bool)>,
    waiting: HashMap<RequestId, Waiting>,
    reset_stream: bool,
    deadline: Option<Instant>,
    refresh_at: Option<Instant>,
    refreshing: Option<Refresh>,
    refresh_waiters: Vec<Responder>,
    replays: Vec<(Call, Responder)>,
    auth_refreshes: u32,
}

fn now_std() -> std::time::Instant {
    Instant::now().into_std()
}

impl Driver {
    pub(crate) async fn run(mut self) {
        let mut st = State {
            commands_open: true,
            events_open: true,
            backlog: VecDeque::new(),
            held: None,
            io: JoinSet::new(),
            tasks: HashMap::new(),
            waiting: HashMap::new(),
            reset_stream: false,
            deadline: None,
            refresh_at: None,
            refreshing: None,
            refresh_waiters: Vec::new(),
            replays: Vec::new(),
            auth_refreshes: 0,
        };
        loop {
            self.drain(&mut st);
            if st.held.is_some() && st.backlog.len() < self.capacity {
                if let Some((id, result)) = st.held.take() {
                    self.feed(id, result);
                }
                continue;
            }
            if self.session.is_ended() || (!st.commands_open && !st.events_open) {
                break;
            }
            let deadline = st.deadline;
            let refresh_at = st.refresh_at.filter(|_| st.refreshing.is_none());
            tokio::select! {
                biased;
                envelope = self.commands.recv(), if st.commands_open => match envelope {
                    Some(e) => self.command(&mut st, e.command, e.reply, true),
                    None => st.commands_open = false,
                },
                Some(joined) = st.io.join_next(), if !st.io.is_empty() => {
                    if let Ok((id, result)) = joined {
                        self.completed(&mut st, id, result);
                    }
                }
                sent = deliver(&self.events, &mut st.backlog), if st.events_open && !st.backlog.is_empty() => {
                    if !sent {
                        st.events_open = false;
                        st.backlog.clear();
                    }
                }
                () = self.events.closed(), if st.events_open && st.backlog.is_empty() => {
                    st.events_open = false;
                }
                token = poll_refresh(&mut st.refreshing), if st.refreshing.is_some() => {
                    st.refreshing = None;
                    self.refreshed(&mut st, token);
                }
                () = sleep_until(refresh_at), if refresh_at.is_some() => {
                    st.refresh_at = None;
                    self.start_refresh(&mut st);
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    st.deadline = None;
                    self.session.handle_timeout(now_std());
                }
            }
        }
        // Stop every request in flight and wait for them: no task outlives the driver.
        st.io.shutdown().await;
        for (_, w) in st.waiting.drain() {
            let _ = w.reply.send(Err(Error::Closed));
        }
        for r in st.refresh_waiters.drain(..) {
            let _ = r.send(Err(Error::Closed));
        }
        for (_, r) in st.replays.drain(..) {
            let _ = r.send(Err(Error::Closed));
        }
        if st.events_open {
            // Whatever the application has not taken yet stays readable after the channel ends.
            let mut overflow = self.overflow.lock().unwrap_or_else(PoisonError::into_inner);
            for e in st.backlog.drain(..) {
                match self.events.try_send(e) {
                    Ok(()) => {}
                    Err(
                        mpsc::error::TrySendError::Full(e) | mpsc::error::TrySendError::Closed(e),
                    ) => {
                        overflow.push_back(*e);
                    }
                }
            }
        }
    }

    fn wall(&self) -> SystemTime {
        self.start.1 + Instant::now().saturating_duration_since(self.start.0)
    }

    /// Carries out the core's outputs until it waits.
    fn drain(&mut self, st: &mut State) {
        loop {
            match self.session.poll_output() {
                Output::Transmit(request) => self.transmit(st, request),
                Output::Abort(id) => {
                    if let Some((handle, stream)) = st.tasks.remove(&id) {
                        handle.abort();
                        st.reset_stream |= stream;
                    }
                    if st.held.as_ref().is_some_and(|(h, _)| *h == id) {
                        st.held = None;
                    }
                }
                Output::Reply(reply) => self.reply(st, reply),
                Output::Event(event) => self.event(st, event),
                Output::Wait(deadline) => {
                    st.deadline = deadline.map(Instant::from_std);
                    return;
                }
            }
        }
    }

    fn transmit(&mut self, st: &mut State, request: Request) {
        let id = request.id;
        let timeout = request.timeout;
        let is_poll = matches!(request.kind, RequestKind::Poll { .. });
        tracing::trace!(?request, "transmit");
        let handle = if is_poll {
            let transport = Arc::clone(&self.stream);
            let reset = std::mem::take(&mut st.reset_stream);
            st.io.spawn(async move {
                let mut transport = transport.lock_owned().await;
                if reset {
                    transport.reset().await;
                }
                let result = tokio::time::timeout(timeout, transport.poll(request))
                    .await
                    .unwrap_or(Err(TransportError::Timeout));
                (id, result)
            })
        } else {
            let http = Arc::clone(&self.http);
            st.io.spawn(async move {
                let result = tokio::time::timeout(timeout, http.send(request))
                    .await
                    .unwrap_or(Err(TransportError::Timeout));
                (id, result)
            })
        };
        st.tasks.insert(id, (handle, is_poll));
    }

    fn completed(
        &mut self,
        st: &mut State,
        id: RequestId,
        result: Result<Response, TransportError>,
    ) {
        let Some((_, is_poll)) = st.tasks.remove(&id) else {
            return;
        };
        if is_poll && result.is_err() {
            st.reset_stream = true;
        }
        if is_poll && st.backlog.len() >= self.capacity {
            // Backpressure: the server keeps these events until a later poll acknowledges them.
            st.held = Some((id, result));
            return;
        }
        self.feed(id, result);
    }

    fn feed(&mut self, id: RequestId, result: Result<Response, TransportError>) {
        let now = now_std();
        match result {
            Ok(r) => self.session.handle_response(now, id, r.status, &r.body),
            Err(e) => self.session.handle_failure(now, id, e),
        }
    }

    fn event(&mut self, st: &mut State, event: Event) {
        match &event {
            Event::EventStreamFailed(f)
                if f.reason == StreamFailureReason::Unauthorized
                    && self.provider.is_some()
                    && st.auth_refreshes < MAX_AUTH_REFRESHES =>
            {
                st.auth_refreshes += 1;
                self.start_refresh(st);
            }
            Event::EventStreamConnected => st.auth_refreshes = 0,
            _ => {}
        }
        if st.events_open {
            st.backlog.push_back(Box::new(ChatEvent {
                event,
                at: self.wall(),
            }));
        }
    }

    fn reply(&mut self, st: &mut State, reply: Reply) {
        let Some(waiting) = st.waiting.remove(&reply.id) else {
            return;
        };
        let is_init = waiting.replay.as_ref().is_some_and(Call::is_init);
        match reply.result {
            Err(ChatError::InvalidToken) if self.provider.is_some() && waiting.replay.is_some() => {
                if let Some(command) = waiting.replay {
                    st.replays.push((command, waiting.reply));
                }
                self.start_refresh(st);
            }
            result => {
                if result.is_ok() {
                    st.auth_refreshes = 0;
                }
                if is_init && result.is_ok() {
                    self.schedule_refresh(st);
                }
                let _ = waiting
                    .reply
                    .send(result.map(Answer::Reply).map_err(Error::from));
            }
        }
    }

    fn command(&mut self, st: &mut State, command: Command, reply: Responder, replayable: bool) {
        let now = now_std();
        let s = &mut self.session;
        match command {
            Command::Call(call) => self.call(st, call, reply, replayable),
            Command::SetToken(token) => {
                let result = s.set_token(token, now, SystemTime::now());
                if result.is_ok() {
                    self.schedule_refresh(st);
                }
                let _ = reply.send(result.map(|()| Answer::Done).map_err(Error::from));
            }
            Command::RetryConnection => {
                let result = s.retry_connection(now);
                let _ = reply.send(result.map(|()| Answer::Done).map_err(Error::from));
            }
            Command::ResetIdleTimeout => {
                s.reset_idle_timeout(now);
                let _ = reply.send(Ok(Answer::Done));
            }
            Command::Engagement(id) => {
                let _ = reply.send(Ok(Answer::Engagement(s.engagement(&id).cloned())));
            }
            Command::Engagements => {
                let _ = reply.send(Ok(Answer::Engagements(s.engagements().cloned().collect())));
            }
            Command::StreamState => {
                let _ = reply.send(Ok(Answer::Stream(s.stream_state())));
            }
            Command::Resumption => {
                let _ = reply.send(Ok(Answer::Resumption(s.resumption())));
            }
            Command::RefreshToken => {
                if self.provider.is_none() {
                    let _ = reply.send(Err(Error::TokenProvider(
                        "no token provider configured".to_owned(),
                    )));
                } else {
                    st.refresh_waiters.push(reply);
                    self.start_refresh(st);
                }
            }
        }
    }

    /// Starts a call; its responder waits for the session's reply (and, if `replayable`,
    /// the call is kept to be made once more after a refresh should the reply be a 401).
    fn call(&mut self, st: &mut State, call: Call, reply: Responder, replayable: bool) {
        match call.start(&mut self.session, now_std(), SystemTime::now()) {
            Ok(id) => {
                st.waiting.insert(
                    id,
                    Waiting {
                        replay: replayable.then_some(call),
                        reply,
                    },
                );
            }
            Err(e) => {
                let _ = reply.send(Err(Error::from(e)));
            }
        }
    }

    /// Arms the proactive refresh: `refresh_lead` before `exp`, but never sooner than half
    /// the token's remaining life (so that short-lived tokens do not refresh in a loop).
    fn schedule_refresh(&self, st: &mut State) {
        if self.provider.is_none() {
            return;
        }
        let remaining = self.session.token().remaining(SystemTime::now());
        let wait = remaining
            .saturating_sub(self.refresh_lead)
            .max(remaining / 2);
        st.refresh_at = Some(Instant::now() + wait);
    }

    fn start_refresh(&self, st: &mut State) {
        if st.refreshing.is_some() {
            return;
        }
        let Some(provider) = self.provider.clone() else {
            return;
        };
        st.refresh_at = None;
        tracing::debug!("refreshing the chat token");
        st.refreshing = Some(Box::pin(async move {
            let text = tokio::time::timeout(PROVIDER_TIMEOUT, provider.token())
                .await
                .map_err(|_| Error::TokenProvider("timed out".to_owned()))?
                .map_err(|e| Error::TokenProvider(e.to_string()))?;
            let token = Token::parse(&text)?;
            if token.remaining(SystemTime::now()).is_zero() {
                return Err(Error::TokenProvider("the token has expired".to_owned()));
            }
            Ok(token)
        }));
    }

    fn refreshed(&mut self, st: &mut State, token: Result<Token, Error>) {
        let result = token.and_then(|t| {
            if !self.session.is_ended() {
                self.session
                    .set_token(t, now_std(), SystemTime::now())
                    .map_err(Error::from)
            } else {
                Err(Error::Closed)
            }
        });
        match &result {
            Ok(()) => {
                tracing::debug!("chat token refreshed");
                self.schedule_refresh(st);
            }
            Err(e) => {
                tracing::warn!(error = %e, "token refresh failed");
                if !self.session.token().remaining(SystemTime::now()).is_zero() {
                    st.refresh_at = Some(Instant::now() + PROVIDER_RETRY);
                }
            }
        }
        for r in st.refresh_waiters.drain(..) {
            let _ = r.send(result.clone().map(|()| Answer::Done));
        }
        let replays = std::mem::take(&mut st.replays);
        for (call, reply) in replays {
            if result.is_ok() {
                self.call(st, call, reply, false);
            } else {
                let _ = reply.send(Err(Error::Chat(ChatError::InvalidToken)));
            }
        }
    }
}

/// Hands the oldest waiting event to the application once there is room. Cancel-safe.
async fn deliver(
    events: &mpsc::Sender<Box<ChatEvent>>,
    backlog: &mut VecDeque<Box<ChatEvent>>,
) -> bool {
    match events.reserve().await {
        Ok(permit) => {
            if let Some(e) = backlog.pop_front() {
                permit.send(e);
            }
            true
        }
        Err(_) => false,
    }
}

async fn poll_refresh(refresh: &mut Option<Refresh>) -> Result<Token, Error> {
    match refresh {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
