//! The handles: [`Client`], [`Engagement`], [`HistoryPager`] and [`HistoryPages`].

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use chat_core::wire::{DisconnectReason, EngagementStatus, MappedData, ShutdownReason};
use chat_core::{
    EndReason, EngagementId, EngagementInfo, HistoryPage, Message, MessageId, PageLink, UserContext,
};
use chat_driver::{Call, Driver, Error, Reply, Transcript, from_reply};
use futures::Stream;
use tokio::task::JoinHandle;

use crate::ClientBuilder;
use crate::driver::{Shared, Waiter, now};

/// A connected chat session: a cheap [`Clone`] handle.
///
/// Commands that go to the server are `async` and return their own typed value; reads of
/// local state ([`engagement`](Self::engagement), [`stream_state`](Self::stream_state),
/// [`resumption`](Self::resumption)…) and [`set_token`](Self::set_token) are plain methods.
///
/// The client stops when [`shutdown`](Self::shutdown) completes, when the session ends by
/// itself (the idle grace period, or the server forgetting it: see [`closed`](Self::closed)),
/// or when every handle and the [`EventStream`](crate::EventStream) are dropped; in every
/// case the requests in flight are cancelled and its task ends. Dropping everything does not
/// delete the session on the server: it can be resumed later from
/// [`resumption`](Self::resumption).
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

/// Shared by every clone of a client: when the last one goes, the client may stop.
struct Handle {
    shared: Arc<Shared>,
    context: UserContext,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().handles_gone = true;
        self.shared.wake.notify_one();
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session_id", &self.handle.context.session_id)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub(crate) fn new(shared: Arc<Shared>, context: UserContext, task: JoinHandle<()>) -> Self {
        Self {
            handle: Arc::new(Handle {
                shared,
                context,
                task: Mutex::new(Some(task)),
            }),
        }
    }

    chat_driver::client_local_methods!();

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    fn context(&self) -> &UserContext {
        &self.handle.context
    }

    fn read<R>(&self, f: impl FnOnce(&Driver<Waiter>) -> R) -> R {
        f(&self.shared().lock().driver)
    }

    fn command<R>(&self, f: impl FnOnce(&mut Driver<Waiter>, Instant) -> R) -> R {
        self.shared().with(|d| f(d, now()))
    }

    async fn call<T: Reply>(&self, call: Call) -> Result<T, Error> {
        from_reply(self.shared().call(call).await)
    }

    /// Starts a new chat (`createEngagement`). It is PENDING until `ENGAGEMENT_ACTIVE`; see
    /// [`Engagement::wait_active`].
    pub async fn create_engagement(&self) -> Result<Engagement, Error> {
        self.create_engagement_with(MappedData::new()).await
    }

    /// Starts a new chat with engagement parameters (at most 20 × 64-character keys →
    /// 256-character values), the context the contact center routes by.
    pub async fn create_engagement_with(
        &self,
        parameters: MappedData,
    ) -> Result<Engagement, Error> {
        let info = self.call(Call::CreateEngagement(parameters)).await?;
        Ok(self.engagement_handle(info))
    }

    /// The customer's ongoing engagements across all their sessions (`getEngagements`),
    /// after bringing the local state up to date from the server.
    pub async fn list_engagements(&self) -> Result<Vec<Engagement>, Error> {
        let list: Vec<EngagementInfo> = self.call(Call::ListEngagements).await?;
        Ok(list
            .into_iter()
            .map(|i| self.engagement_handle(i))
            .collect())
    }

    /// Asks the [`TokenProvider`](crate::TokenProvider) for a new token now and sets it
    /// (single-flight with the automatic refreshes).
    pub async fn refresh_token(&self) -> Result<(), Error> {
        self.call(Call::RefreshToken).await
    }

    /// Returns once the session's store holds every send accepted so far: from then on
    /// each is delivered exactly once even if this process is killed, by whichever process
    /// resumes the session. At once for a client without a store. A send is *handed over*
    /// when this returns after it was made (sends of a chat still go one at a time, in
    /// order).
    pub async fn saved(&self) -> Result<(), Error> {
        self.call(Call::WaitSaved).await
    }

    /// Ends the session (`shutdown`): deletes it on the server, emits `SHUTDOWN`, ends the
    /// event stream, and returns once the client's task and all its I/O have stopped.
    /// Engagements are not disconnected.
    pub async fn shutdown(&self, reason: Option<ShutdownReason>) -> Result<(), Error> {
        let () = self.call(Call::Shutdown(reason)).await?;
        self.closed().await;
        Ok(())
    }

    /// Waits until the client has stopped, and says why: shut down (by the application or
    /// after the idle grace period), or the session invalidated by the server (ACS-320,
    /// after `EVENT_STREAM_FAILED(CLIENT_SESSION_INVALIDATED)`): start a new session then.
    pub async fn closed(&self) -> EndReason {
        let task = self
            .handle
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match task {
            Some(t) => {
                let _ = t.await;
            }
            None => {
                let mut stopped = self.shared().stopped.subscribe();
                let _ = stopped.wait_for(|s| *s).await;
            }
        }
        self.end_reason().unwrap_or(EndReason::Shutdown(None))
    }

    /// Whether the client has stopped.
    pub fn is_closed(&self) -> bool {
        *self.shared().stopped.borrow()
    }

    async fn fetch_history(
        &self,
        engagement: &EngagementId,
        page: Option<PageLink>,
    ) -> Result<HistoryPage, Error> {
        let engagement = engagement.clone();
        self.call(Call::FetchHistory { engagement, page }).await
    }
}

chat_driver::engagement_handle!();

impl Engagement {
    /// Waits until the engagement is ACTIVE (the server has reported the customer in it),
    /// when messages can be sent: right after [`Client::create_engagement`] or
    /// [`join`](Self::join) it is still PENDING, and a send fails with ACS-313. ACS-314 if
    /// it ends first. Takes no event from the event stream.
    pub async fn wait_active(&self) -> Result<(), Error> {
        let shared = self.client.shared();
        loop {
            let changed = shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.current().map(|i| i.status) {
                Some(EngagementStatus::Active) => return Ok(()),
                Some(EngagementStatus::Pending) if !self.client.is_closed() => changed.await,
                _ => return Err(chat_core::ChatError::EngagementNotFound.into()),
            }
        }
    }

    /// Joins an engagement started elsewhere (`join`); it becomes ACTIVE with
    /// `ENGAGEMENT_ACTIVE` (see [`wait_active`](Self::wait_active)).
    pub async fn join(&self) -> Result<Engagement, Error> {
        let info = self.client.call(Call::Join(self.id().clone())).await?;
        Ok(self.client.engagement_handle(info))
    }

    /// Sends a text message (`sendMessage`, 1–4096 UTF-16 code units). Returns the message
    /// as stored; it also comes back as `MESSAGE_DELIVERED`.
    pub async fn send_message(&self, text: &str) -> Result<Message, Error> {
        self.send(text, None).await
    }

    /// Starts sending `text` at once and returns without waiting for it: the send is in
    /// the client (in its outbox, with a store) when this returns, so a
    /// [`Client::saved`] after it covers it (a `send_message` future covers nothing until
    /// it is first polled). Wait for the outcome with [`QueuedMessage::delivered`], or drop
    /// the handle (the send goes on; its outcome comes as `MESSAGE_DELIVERED`).
    pub fn queue_message(&self, text: &str) -> Result<QueuedMessage, Error> {
        let call = Call::Send {
            engagement: self.id().clone(),
            text: text.to_owned(),
            parent: None,
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.client
            .shared()
            .with(|d| d.call(now(), call, tx))
            .map_err(|(_, e)| e)?;
        Ok(QueuedMessage {
            rx,
            client: self.client.clone(),
        })
    }

    /// Sends a text message in answer to `parent`.
    pub async fn send_reply(&self, parent: &MessageId, text: &str) -> Result<Message, Error> {
        self.send(text, Some(parent.clone())).await
    }

    async fn send(&self, text: &str, parent: Option<MessageId>) -> Result<Message, Error> {
        let call = Call::Send {
            engagement: self.id().clone(),
            text: text.to_owned(),
            parent,
        };
        self.client.call(call).await
    }

    /// Leaves the engagement (`disconnect`): TERMINATING now, TERMINATED with
    /// `ENGAGEMENT_TERMINATED`.
    pub async fn disconnect(&self, reason: Option<DisconnectReason>) -> Result<(), Error> {
        let engagement = self.id().clone();
        self.client
            .call(Call::Disconnect { engagement, reason })
            .await
    }

    /// The message history as a pager over pages of `page_size` messages (1 to 50), newest
    /// first (`getMessages`). Allowed before joining.
    pub async fn history(&self, page_size: usize) -> Result<HistoryPager, Error> {
        let mut pager = chat_core::HistoryPager::new(page_size)?;
        pager.add_page(self.client.fetch_history(self.id(), None).await?);
        Ok(HistoryPager {
            engagement: self.clone(),
            pager,
        })
    }

    /// The message history as a stream of pages, newest page first, each newest first.
    pub fn history_pages(&self, page_size: usize) -> HistoryPages {
        let engagement = self.clone();
        let pages = futures::stream::try_unfold(None, move |pager: Option<HistoryPager>| {
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
                Ok((!items.is_empty() || pager.has_older()).then_some((items, Some(pager))))
            }
        });
        HistoryPages(Box::pin(pages))
    }

    /// The whole transcript, oldest first, each message once (the history as the server
    /// has it now; live messages come as events).
    pub async fn transcript(&self) -> Result<Vec<Message>, Error> {
        let mut transcript = Transcript::default();
        let mut link = None;
        loop {
            let page = self.client.fetch_history(self.id(), link).await?;
            match transcript.add(page) {
                Some(next) => link = Some(next),
                None => return Ok(transcript.into_messages()),
            }
        }
    }
}

/// The pages of an engagement's history, newest first: from [`Engagement::history_pages`].
/// Ends after the oldest page, or after the first error.
pub struct HistoryPages(Pin<Box<dyn Stream<Item = Result<Vec<Message>, Error>> + Send>>);

impl std::fmt::Debug for HistoryPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HistoryPages")
    }
}

impl Stream for HistoryPages {
    type Item = Result<Vec<Message>, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.as_mut().poll_next(cx)
    }
}

chat_driver::history_pager!();

impl HistoryPager {
    /// Moves to the next older page, fetching from the server as needed (`previous()`).
    /// Returns whether it moved. Errors are ACS-317.
    pub async fn older(&mut self) -> Result<bool, Error> {
        while let Some(link) = self.pager.wants_fetch().cloned() {
            let id = self.engagement.id().clone();
            let page = self
                .engagement
                .client
                .fetch_history(&id, Some(link))
                .await?;
            self.pager.add_page(page);
        }
        Ok(self.pager.older())
    }
}

/// A send started with [`Engagement::queue_message`].
#[must_use = "dropping it is fine (the send goes on), but then its outcome is only an event"]
pub struct QueuedMessage {
    rx: tokio::sync::oneshot::Receiver<Result<chat_core::ReplyValue, Error>>,
    client: Client,
}

impl std::fmt::Debug for QueuedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedMessage").finish_non_exhaustive()
    }
}

impl QueuedMessage {
    /// Waits until the message is delivered (the message as stored) or the send fails.
    pub async fn delivered(self) -> Result<Message, Error> {
        let answer = self
            .rx
            .await
            .unwrap_or_else(|_| Err(self.client.shared().closed()));
        from_reply(answer)
    }
}
