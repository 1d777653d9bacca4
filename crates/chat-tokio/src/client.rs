//! The handles: [`Client`], [`Engagement`] and [`HistoryPager`].

use std::sync::{Arc, Mutex, PoisonError};

use chat_core::wire::{
    DisconnectReason, EngagementStatus, MappedData, Participant, ShutdownReason,
};
use chat_core::{
    DialogId, EngagementId, EngagementInfo, HistoryPage, Message, MessageId, PageLink, ReplyValue,
    Resumption, SessionId, StreamState, Token, UserContext,
};
use futures::Stream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::Error;
use crate::driver::{Answer, Command, Envelope};
use chat_net::Call;

pub(crate) struct Shared {
    pub(crate) context: UserContext,
    pub(crate) driver: Mutex<Option<JoinHandle<()>>>,
}

/// A connected chat session: a cheap [`Clone`] handle to the client's driver task.
///
/// Every method is a message to the driver, answered when chat-core has an answer (a REST
/// call's reply, or at once for local state). Methods are cancel-safe in the sense that
/// dropping their future never corrupts anything; a command already handed to the driver still
/// runs to completion, only its answer is discarded.
///
/// The client stops when [`shutdown`](Self::shutdown) completes, when the session ends by
/// itself (idle grace period), or when every handle and the [`EventStream`](crate::EventStream)
/// are dropped; in every case the requests in flight are cancelled and no task is left behind.
/// Dropping everything does not delete the session on the server: it can be resumed later
/// from [`resumption`](Self::resumption).
#[derive(Clone)]
pub struct Client {
    pub(crate) tx: mpsc::Sender<Box<Envelope>>,
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session_id", &self.shared.context.session_id)
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

    pub(crate) async fn call(&self, command: Command) -> Result<Answer, Error> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Box::new(Envelope { command, reply }))
            .await
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }

    async fn reply(&self, call: Call) -> Result<ReplyValue, Error> {
        match self.call(Command::Call(call)).await? {
            Answer::Reply(v) => Ok(v),
            _ => Err(Error::Closed),
        }
    }

    async fn done(&self, command: Command) -> Result<(), Error> {
        self.call(command).await.map(|_| ())
    }

    /// What `init` returned (also delivered as the `INITIALIZED` event).
    pub fn user_context(&self) -> &UserContext {
        &self.shared.context
    }

    /// The session's id.
    pub fn session_id(&self) -> &SessionId {
        &self.shared.context.session_id
    }

    /// Starts a new chat (`createEngagement`). It is PENDING until `ENGAGEMENT_ACTIVE`.
    pub async fn create_engagement(&self, parameters: MappedData) -> Result<Engagement, Error> {
        match self.reply(Call::CreateEngagement(parameters)).await? {
            ReplyValue::Engagement(info) => Ok(self.engagement_handle(info)),
            _ => Err(Error::Closed),
        }
    }

    /// The customer's ongoing engagements across all their sessions (`getEngagements`),
    /// after bringing the local state up to date from the server.
    pub async fn list_engagements(&self) -> Result<Vec<Engagement>, Error> {
        match self.reply(Call::ListEngagements).await? {
            ReplyValue::Engagements(list) => Ok(list
                .into_iter()
                .map(|info| self.engagement_handle(info))
                .collect()),
            _ => Err(Error::Closed),
        }
    }

    /// An engagement this session knows (`getEngagementById`), without a network call.
    pub async fn engagement(&self, id: &EngagementId) -> Result<Option<Engagement>, Error> {
        match self.call(Command::Engagement(id.clone())).await? {
            Answer::Engagement(info) => Ok(info.map(|i| self.engagement_handle(i))),
            _ => Err(Error::Closed),
        }
    }

    /// Every engagement this session knows, without a network call.
    pub async fn engagements(&self) -> Result<Vec<Engagement>, Error> {
        match self.call(Command::Engagements).await? {
            Answer::Engagements(list) => Ok(list
                .into_iter()
                .map(|info| self.engagement_handle(info))
                .collect()),
            _ => Err(Error::Closed),
        }
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
    pub async fn set_token(&self, token: &str) -> Result<(), Error> {
        let token = Token::parse(token)?;
        self.done(Command::SetToken(token)).await
    }

    /// Asks the [`TokenProvider`](crate::TokenProvider) for a new token now and sets it
    /// (single-flight with the automatic refreshes).
    pub async fn refresh_token(&self) -> Result<(), Error> {
        self.done(Command::RefreshToken).await
    }

    /// Retries the event stream now (`retryConnection`): after `RECONNECTION_TIMEOUT`, or to
    /// cut a backoff short. ACS-318 otherwise.
    pub async fn retry_connection(&self) -> Result<(), Error> {
        self.done(Command::RetryConnection).await
    }

    /// Customer activity: restarts the idle timer and cancels a grace period
    /// (`resetIdleTimeout`).
    pub async fn reset_idle_timeout(&self) -> Result<(), Error> {
        self.done(Command::ResetIdleTimeout).await
    }

    /// The event stream's state.
    pub async fn stream_state(&self) -> Result<StreamState, Error> {
        match self.call(Command::StreamState).await? {
            Answer::Stream(s) => Ok(s),
            _ => Err(Error::Closed),
        }
    }

    /// What to keep to resume this session later (the official SDK's `sessionStorage`), see
    /// [`ClientBuilder::resume`](crate::ClientBuilder::resume). Free of secrets.
    pub async fn resumption(&self) -> Result<Resumption, Error> {
        match self.call(Command::Resumption).await? {
            Answer::Resumption(Some(r)) => Ok(r),
            _ => Err(Error::Closed),
        }
    }

    /// Ends the session (`shutdown`): deletes it on the server, emits `SHUTDOWN`, ends the
    /// event stream, and returns once the driver task and all its I/O have stopped.
    /// Engagements are not disconnected.
    pub async fn shutdown(&self, reason: Option<ShutdownReason>) -> Result<(), Error> {
        self.done(Command::Call(Call::Shutdown(reason))).await?;
        self.closed().await;
        Ok(())
    }

    /// Waits until the driver task has stopped (after a shutdown, including the automatic
    /// one after the idle grace period).
    pub async fn closed(&self) {
        let handle = self
            .shared
            .driver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match handle {
            Some(h) => {
                let _ = h.await;
            }
            None => self.tx.closed().await,
        }
    }

    /// Whether the client has stopped.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    async fn fetch_history(
        &self,
        engagement: &EngagementId,
        page: Option<PageLink>,
    ) -> Result<HistoryPage, Error> {
        let call = Call::FetchHistory {
            engagement: engagement.clone(),
            page,
        };
        match self.reply(call).await? {
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
    pub async fn current(&self) -> Result<Option<EngagementInfo>, Error> {
        match self
            .client
            .call(Command::Engagement(self.id().clone()))
            .await?
        {
            Answer::Engagement(info) => Ok(info),
            _ => Err(Error::Closed),
        }
    }

    /// The SDK status (`engagementStatus`): TERMINATED once the engagement is over.
    pub async fn status(&self) -> Result<EngagementStatus, Error> {
        Ok(self
            .current()
            .await?
            .map_or(EngagementStatus::Terminated, |i| i.status))
    }

    /// Who is in it now (`participants`); ACS-314 once it is over.
    pub async fn participants(&self) -> Result<Vec<Participant>, Error> {
        match self.current().await? {
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
    pub async fn join(&self) -> Result<EngagementInfo, Error> {
        match self.client.reply(Call::Join(self.id().clone())).await? {
            ReplyValue::Engagement(info) => Ok(info),
            _ => Err(Error::Closed),
        }
    }

    /// Sends a text message (`sendMessage`), optionally in answer to `parent`. Returns the
    /// message as stored; it also comes back as `MESSAGE_DELIVERED`.
    pub async fn send_message(
        &self,
        text: &str,
        parent: Option<&MessageId>,
    ) -> Result<Message, Error> {
        let call = Call::Send {
            engagement: self.id().clone(),
            text: text.to_owned(),
            parent: parent.cloned(),
        };
        match self.client.reply(call).await? {
            ReplyValue::MessageSent(m) => Ok(m),
            _ => Err(Error::Closed),
        }
    }

    /// Leaves the engagement (`disconnect`): TERMINATING now, TERMINATED with
    /// `ENGAGEMENT_TERMINATED`.
    pub async fn disconnect(&self, reason: Option<DisconnectReason>) -> Result<(), Error> {
        let call = Call::Disconnect {
            engagement: self.id().clone(),
            reason,
        };
        self.client.reply(call).await.map(|_| ())
    }

    /// The message history as a pager over pages of `page_size` messages, newest first
    /// (`getMessages`). Allowed before joining.
    pub async fn history(&self, page_size: usize) -> Result<HistoryPager, Error> {
        let first = self.client.fetch_history(self.id(), None).await?;
        let mut pager = chat_core::history::HistoryPager::new(page_size);
        pager.add_page(first);
        Ok(HistoryPager {
            engagement: self.clone(),
            pager,
        })
    }

    /// The message history as a stream of pages, newest page first, each newest first.
    pub fn history_pages(
        &self,
        page_size: usize,
    ) -> impl Stream<Item = Result<Vec<Message>, Error>> + Send + 'static {
        let engagement = self.clone();
        futures::stream::try_unfold(None, move |pager: Option<HistoryPager>| {
            let engagement = engagement.clone();
            async move {
                let pager = match pager {
                    None => engagement.history(page_size).await?,
                    Some(mut p) => {
                        if !p.older().await? {
                            return Ok(None);
                        }
                        p
                    }
                };
                let items = pager.items().to_vec();
                if items.is_empty() && !pager.has_older() {
                    return Ok(None);
                }
                Ok(Some((items, Some(pager))))
            }
        })
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
    pub async fn older(&mut self) -> Result<bool, Error> {
        for _ in 0..MAX_FETCHES {
            let Some(link) = self.pager.wants_fetch().cloned() else {
                break;
            };
            let page = self
                .engagement
                .client
                .fetch_history(self.engagement.id(), Some(link))
                .await?;
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
