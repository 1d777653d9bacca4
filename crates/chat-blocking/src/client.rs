//! The handles: [`Client`], [`Engagement`], [`HistoryPager`] and [`HistoryPages`].

use std::sync::Arc;
use std::time::Duration;

use chat_core::wire::{
    DisconnectReason, EngagementStatus, MappedData, Participant, ShutdownReason,
};
use chat_core::{
    DialogId, EngagementId, EngagementInfo, HistoryPage, Message, MessageId, PageLink, ReplyValue,
    Resumption, SessionId, StreamState, Token, UserContext,
};

use crate::Error;
use chat_net::Call;

use crate::driver::{Answer, Command, Shared};

/// A connected chat session: a cheap [`Clone`] handle, [`Send`] and [`Sync`].
///
/// Every command blocks until chat-core has its answer (a REST call's reply, or at once for
/// local state), and drives the client while it waits, so it may be called from any thread,
/// including the one reading the [`Connection`](crate::Connection).
///
/// The client stops when [`shutdown`](Self::shutdown) completes, when the session ends by
/// itself (idle grace period), or when every handle and the connection are dropped; in every
/// case the requests in flight are cancelled and every thread it started is joined. Dropping
/// everything does not delete the session on the server: it can be resumed later from
/// [`resumption`](Self::resumption).
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
    pub(crate) context: Arc<UserContext>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session_id", &self.context.session_id)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder; see [`ClientBuilder`](crate::ClientBuilder).
    pub fn builder(
        host: impl Into<String>,
        integration_id: impl Into<String>,
        appkey: impl AsRef<str>,
    ) -> crate::ClientBuilder {
        crate::ClientBuilder::new(host, integration_id, appkey)
    }

    fn reply(&self, call: Call) -> Result<ReplyValue, Error> {
        match self.shared.call(Command::Call(call))? {
            Answer::Reply(v) => Ok(*v),
            Answer::Done => Err(Error::Closed),
        }
    }

    fn done(&self, command: Command) -> Result<(), Error> {
        self.shared.call(command).map(|_| ())
    }

    /// What `init` returned (also delivered as the `INITIALIZED` event).
    pub fn user_context(&self) -> &UserContext {
        &self.context
    }

    /// The session's id.
    pub fn session_id(&self) -> &SessionId {
        &self.context.session_id
    }

    /// Starts a new chat (`createEngagement`). It is PENDING until `ENGAGEMENT_ACTIVE`.
    pub fn create_engagement(&self, parameters: MappedData) -> Result<Engagement, Error> {
        match self.reply(Call::CreateEngagement(parameters))? {
            ReplyValue::Engagement(info) => Ok(self.engagement_handle(info)),
            _ => Err(Error::Closed),
        }
    }

    /// The customer's ongoing engagements across all their sessions (`getEngagements`),
    /// after bringing the local state up to date from the server.
    pub fn list_engagements(&self) -> Result<Vec<Engagement>, Error> {
        match self.reply(Call::ListEngagements)? {
            ReplyValue::Engagements(list) => Ok(list
                .into_iter()
                .map(|info| self.engagement_handle(info))
                .collect()),
            _ => Err(Error::Closed),
        }
    }

    /// An engagement this session knows (`getEngagementById`), without a network call.
    pub fn engagement(&self, id: &EngagementId) -> Result<Option<Engagement>, Error> {
        let info = self.local(|st| st.engagement(id))?;
        Ok(info.map(|i| self.engagement_handle(i)))
    }

    /// Every engagement this session knows, without a network call.
    pub fn engagements(&self) -> Result<Vec<Engagement>, Error> {
        let list = self.local(|st| st.session.engagements().cloned().collect::<Vec<_>>())?;
        Ok(list
            .into_iter()
            .map(|info| self.engagement_handle(info))
            .collect())
    }

    fn local<R>(&self, f: impl FnOnce(&mut crate::driver::State) -> R) -> Result<R, Error> {
        self.shared.with(|st| {
            if st.stopped {
                Err(Error::Closed)
            } else {
                Ok(f(st))
            }
        })
    }

    /// A handle on an engagement from its snapshot (for instance from the `INITIALIZED`
    /// event's user context).
    pub fn engagement_handle(&self, info: EngagementInfo) -> Engagement {
        Engagement {
            client: self.clone(),
            info,
        }
    }

    /// Replaces the chat token (`setJwtToken`, the push style): no network call; later
    /// requests carry it, the expiry timers restart, and a stream paused by a 401 resumes.
    pub fn set_token(&self, token: &str) -> Result<(), Error> {
        let token = Token::parse(token)?;
        self.done(Command::SetToken(token))
    }

    /// Asks the [`TokenProvider`](crate::TokenProvider) for a new token now and sets it
    /// (single-flight with the automatic refreshes).
    pub fn refresh_token(&self) -> Result<(), Error> {
        self.done(Command::RefreshToken)
    }

    /// Retries the event stream now (`retryConnection`): after `RECONNECTION_TIMEOUT`, or to
    /// cut a backoff short. ACS-318 otherwise.
    pub fn retry_connection(&self) -> Result<(), Error> {
        self.done(Command::RetryConnection)
    }

    /// Customer activity: restarts the idle timer and cancels a grace period
    /// (`resetIdleTimeout`).
    pub fn reset_idle_timeout(&self) -> Result<(), Error> {
        self.done(Command::ResetIdleTimeout)
    }

    /// The event stream's state.
    pub fn stream_state(&self) -> Result<StreamState, Error> {
        self.local(|st| st.stream_state())
    }

    /// What to keep to resume this session later (the official SDK's `sessionStorage`), see
    /// [`ClientBuilder::resume`](crate::ClientBuilder::resume). Free of secrets.
    pub fn resumption(&self) -> Result<Resumption, Error> {
        self.local(|st| st.session.resumption())?
            .ok_or(Error::Closed)
    }

    /// Ends the session (`shutdown`): deletes it on the server, emits `SHUTDOWN`, and
    /// returns once every thread the client started has been joined. Engagements are not
    /// disconnected.
    pub fn shutdown(&self, reason: Option<ShutdownReason>) -> Result<(), Error> {
        self.done(Command::Call(Call::Shutdown(reason)))?;
        // SHUTDOWN comes once the requests in flight have settled; the loop then stops and
        // joins its threads.
        let _ = self.shared.wait_for(None, |st| st.stopped.then_some(()));
        Ok(())
    }

    /// Moves this client's protocol clock forward by `by`, for test rigs: chat-core's timers
    /// (reconnection timeout, idle and grace periods, backoff, the token reminder and
    /// expiry) and the token refresh see that much more time pass at once. Request timeouts
    /// stay on the real clock, as the server's answers do. The next call that drives the
    /// client fires what is due.
    pub fn advance_clock(&self, by: Duration) {
        self.shared.with(|st| st.skew += by);
    }

    /// Whether the client has stopped.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().stopped
    }

    /// Threads the client has started and not joined yet: the stream thread, REST calls and
    /// a token refresh in flight; 0 once it has stopped.
    pub fn thread_count(&self) -> usize {
        self.shared.lock().threads()
    }

    fn fetch_history(
        &self,
        engagement: &EngagementId,
        page: Option<PageLink>,
    ) -> Result<HistoryPage, Error> {
        let call = Call::FetchHistory {
            engagement: engagement.clone(),
            page,
        };
        match self.reply(call)? {
            ReplyValue::History(page) => Ok(page),
            _ => Err(Error::Closed),
        }
    }
}

/// One engagement (chat) of the session: the official SDK's Engagement object.
///
/// Holds a snapshot ([`info`](Self::info)) taken when the handle was made; the live status
/// and participants come from [`status`](Self::status) and
/// [`participants`](Self::participants).
#[derive(Debug, Clone)]
pub struct Engagement {
    client: Client,
    info: EngagementInfo,
}

impl Engagement {
    /// The engagement's id.
    pub fn id(&self) -> &EngagementId {
        &self.info.engagement_id
    }

    /// Its dialog's id.
    pub fn dialog_id(&self) -> &DialogId {
        &self.info.dialog_id
    }

    /// The snapshot this handle was made from.
    pub fn info(&self) -> &EngagementInfo {
        &self.info
    }

    /// The current state as this session knows it; `None` once it is over and forgotten.
    pub fn current(&self) -> Result<Option<EngagementInfo>, Error> {
        self.client.local(|st| st.engagement(self.id()))
    }

    /// The SDK status (`engagementStatus`): TERMINATED once the engagement is over.
    pub fn status(&self) -> Result<EngagementStatus, Error> {
        Ok(self
            .current()?
            .map_or(EngagementStatus::Terminated, |i| i.status))
    }

    /// Who is in it now (`participants`); ACS-314 once it is over.
    pub fn participants(&self) -> Result<Vec<Participant>, Error> {
        match self.current()? {
            Some(i)
                if !matches!(
                    i.status,
                    EngagementStatus::Terminated | EngagementStatus::Terminating
                ) =>
            {
                Ok(i.participants)
            }
            _ => Err(chat_core::ChatError::EngagementNotFound.into()),
        }
    }

    /// Joins an engagement started elsewhere (`join`); it becomes ACTIVE with
    /// `ENGAGEMENT_ACTIVE`.
    pub fn join(&self) -> Result<EngagementInfo, Error> {
        match self.client.reply(Call::Join(self.id().clone()))? {
            ReplyValue::Engagement(info) => Ok(info),
            _ => Err(Error::Closed),
        }
    }

    /// Sends a text message (`sendMessage`), optionally in answer to `parent`. Returns the
    /// message as stored; it also comes back as `MESSAGE_DELIVERED`.
    pub fn send_message(&self, text: &str, parent: Option<&MessageId>) -> Result<Message, Error> {
        let call = Call::Send {
            engagement: self.id().clone(),
            text: text.to_owned(),
            parent: parent.cloned(),
        };
        match self.client.reply(call)? {
            ReplyValue::MessageSent(m) => Ok(m),
            _ => Err(Error::Closed),
        }
    }

    /// Leaves the engagement (`disconnect`): TERMINATING now, TERMINATED with
    /// `ENGAGEMENT_TERMINATED`.
    pub fn disconnect(&self, reason: Option<DisconnectReason>) -> Result<(), Error> {
        let call = Call::Disconnect {
            engagement: self.id().clone(),
            reason,
        };
        self.client.reply(call).map(|_| ())
    }

    /// The message history as a pager over pages of `page_size` messages, newest first
    /// (`getMessages`). Allowed before joining.
    pub fn history(&self, page_size: usize) -> Result<HistoryPager, Error> {
        let first = self.client.fetch_history(self.id(), None)?;
        let mut pager = chat_core::history::HistoryPager::new(page_size);
        pager.add_page(first);
        Ok(HistoryPager {
            engagement: self.clone(),
            pager,
        })
    }

    /// The message history as an iterator of pages, newest page first, each newest first;
    /// each step may fetch from the server (and blocks while it does).
    pub fn history_pages(&self, page_size: usize) -> HistoryPages {
        HistoryPages {
            engagement: self.clone(),
            page_size,
            pager: None,
            done: false,
        }
    }
}

/// Message history of one engagement, paged locally like the official `PageIterator`.
#[derive(Debug, Clone)]
pub struct HistoryPager {
    engagement: Engagement,
    pager: chat_core::history::HistoryPager,
}

/// Server pages fetched at most for one move.
const MAX_FETCHES: usize = 100;

impl HistoryPager {
    /// The messages of the current page, newest first.
    pub fn items(&self) -> &[Message] {
        self.pager.items()
    }

    /// The page size.
    pub fn page_size(&self) -> usize {
        self.pager.page_size()
    }

    /// Moves to the next older page, fetching from the server as needed (`previous()`).
    /// Returns whether it moved. Errors are ACS-317.
    pub fn older(&mut self) -> Result<bool, Error> {
        for _ in 0..MAX_FETCHES {
            let Some(link) = self.pager.wants_fetch().cloned() else {
                break;
            };
            let page = self
                .engagement
                .client
                .fetch_history(self.engagement.id(), Some(link))?;
            self.pager.add_page(page);
        }
        Ok(self.pager.older())
    }

    /// Moves to the next newer page (`next()`); never fetches. Returns whether it moved.
    pub fn newer(&mut self) -> bool {
        self.pager.newer()
    }

    /// Whether older messages exist, loaded or on the server (`hasPrevious()`).
    pub fn has_older(&self) -> bool {
        self.pager.has_older()
    }

    /// Whether newer messages are loaded (`hasNext()`).
    pub fn has_newer(&self) -> bool {
        self.pager.has_newer()
    }
}

/// The pages of an engagement's history, newest first: from
/// [`Engagement::history_pages`]. Ends after the oldest page, or after the first error.
#[derive(Debug)]
pub struct HistoryPages {
    engagement: Engagement,
    page_size: usize,
    pager: Option<HistoryPager>,
    done: bool,
}

impl Iterator for HistoryPages {
    type Item = Result<Vec<Message>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let moved = match &mut self.pager {
            None => self.engagement.history(self.page_size).map(|p| {
                self.pager = Some(p);
                true
            }),
            Some(p) => p.older(),
        };
        match moved {
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
            Ok(false) => {
                self.done = true;
                None
            }
            Ok(true) => {
                let pager = self.pager.as_ref()?;
                let items = pager.items().to_vec();
                if items.is_empty() && !pager.has_older() {
                    self.done = true;
                    return None;
                }
                Some(Ok(items))
            }
        }
    }
}
