//! The handles: [`Client`], [`Engagement`], [`HistoryPager`] and [`HistoryPages`].

use std::sync::Arc;
use std::time::Instant;

use chat_core::wire::{DisconnectReason, EngagementStatus, MappedData, ShutdownReason};
use chat_core::{
    EndReason, EngagementId, EngagementInfo, HistoryPage, Message, MessageId, PageLink, UserContext,
};
use chat_driver::{Call, Driver, Error, Reply, Transcript, from_reply};

use crate::ClientBuilder;
use crate::driver::{Shared, State, Ticket};

/// A connected chat session: a cheap [`Clone`] handle, [`Send`] and [`Sync`].
///
/// Every command blocks until it has its result, and drives the client while it waits, so
/// it may be called from any thread, including the one reading the
/// [`EventStream`](crate::EventStream). Reads of local state
/// ([`engagement`](Self::engagement), [`stream_state`](Self::stream_state),
/// [`resumption`](Self::resumption)…) never wait.
///
/// The client stops when [`shutdown`](Self::shutdown) completes, when the session ends by
/// itself (the idle grace period, or the server forgetting it: see [`closed`](Self::closed)),
/// or when every handle and the event stream are dropped; in every case the requests in
/// flight are cancelled and every thread it started is joined. Dropping everything does not
/// delete the session on the server: it can be resumed later from
/// [`resumption`](Self::resumption).
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    context: Arc<UserContext>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session_id", &self.context.session_id)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub(crate) fn new(shared: Arc<Shared>, context: UserContext) -> Self {
        Self {
            shared,
            context: Arc::new(context),
        }
    }

    chat_driver::client_local_methods!();

    fn context(&self) -> &UserContext {
        &self.context
    }

    fn read<R>(&self, f: impl FnOnce(&Driver<Ticket>) -> R) -> R {
        f(&self.shared.lock().driver)
    }

    fn command<R>(&self, f: impl FnOnce(&mut Driver<Ticket>, Instant) -> R) -> R {
        self.shared.with(|st| {
            let now = st.now();
            f(&mut st.driver, now)
        })
    }

    fn call<T: Reply>(&self, call: Call) -> Result<T, Error> {
        from_reply(self.shared.call(call))
    }

    fn state<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.shared.lock())
    }

    /// Starts a new chat (`createEngagement`). It is PENDING until `ENGAGEMENT_ACTIVE`; see
    /// [`Engagement::wait_active`].
    pub fn create_engagement(&self) -> Result<Engagement, Error> {
        self.create_engagement_with(MappedData::new())
    }

    /// Starts a new chat with engagement parameters (at most 20 × 64-character keys →
    /// 256-character values), the context the contact center routes by.
    pub fn create_engagement_with(&self, parameters: MappedData) -> Result<Engagement, Error> {
        let info = self.call(Call::CreateEngagement(parameters))?;
        Ok(self.engagement_handle(info))
    }

    /// The customer's ongoing engagements across all their sessions (`getEngagements`),
    /// after bringing the local state up to date from the server.
    pub fn list_engagements(&self) -> Result<Vec<Engagement>, Error> {
        let list: Vec<EngagementInfo> = self.call(Call::ListEngagements)?;
        Ok(list
            .into_iter()
            .map(|i| self.engagement_handle(i))
            .collect())
    }

    /// Asks the [`TokenProvider`](crate::TokenProvider) for a new token now and sets it
    /// (single-flight with the automatic refreshes).
    pub fn refresh_token(&self) -> Result<(), Error> {
        self.call(Call::RefreshToken)
    }

    /// Blocks until the session's store holds every send accepted so far: from then on
    /// each is delivered exactly once even if this process is killed, by whichever process
    /// resumes the session. At once for a client without a store. A send is *handed over*
    /// when this returns after it was made (sends of a chat still go one at a time, in
    /// order).
    pub fn saved(&self) -> Result<(), Error> {
        self.call(Call::WaitSaved)
    }

    /// Ends the session (`shutdown`): deletes it on the server, emits `SHUTDOWN`, and
    /// returns once every thread the client started has been joined. Engagements are not
    /// disconnected.
    pub fn shutdown(&self, reason: Option<ShutdownReason>) -> Result<(), Error> {
        let () = self.call(Call::Shutdown(reason))?;
        self.closed();
        Ok(())
    }

    /// Blocks until the client has stopped, driving it meanwhile, and says why: shut down
    /// (by the application or after the idle grace period), or the session invalidated by
    /// the server (ACS-320): start a new session then.
    pub fn closed(&self) -> EndReason {
        let _ = self.shared.wait_for(None, |st| st.stopped.then_some(()));
        self.end_reason().unwrap_or(EndReason::Shutdown(None))
    }

    /// Whether the client has stopped.
    pub fn is_closed(&self) -> bool {
        self.state(|st| st.stopped)
    }

    /// Moves this client's protocol clock forward by `by`, for test rigs: chat-core's timers
    /// (reconnection, idle and grace periods, backoff, the token reminder, expiry and
    /// refresh) see that much more time pass at once. The requests in flight keep their
    /// timeouts, as the server answers them in real time. The next call that drives the
    /// client fires what is due.
    #[cfg(feature = "test-util")]
    pub fn advance_clock(&self, by: std::time::Duration) {
        self.shared.with(|st| {
            st.skew += by;
            st.driver.defer_request_timeouts(by);
        });
    }

    /// Threads the client has started and not joined yet: the stream thread, REST calls and
    /// a token provider call in flight; 0 once it has stopped. For tests.
    #[cfg(feature = "test-util")]
    pub fn thread_count(&self) -> usize {
        self.state(State::threads)
    }

    fn fetch_history(
        &self,
        engagement: &EngagementId,
        page: Option<PageLink>,
    ) -> Result<HistoryPage, Error> {
        let engagement = engagement.clone();
        self.call(Call::FetchHistory { engagement, page })
    }
}

chat_driver::engagement_handle!();

impl Engagement {
    /// Waits until the engagement is ACTIVE (the server has reported the customer in it),
    /// when messages can be sent: right after [`Client::create_engagement`] or
    /// [`join`](Self::join) it is still PENDING, and a send fails with ACS-313. ACS-314 if
    /// it ends first. Takes no event from the event stream.
    pub fn wait_active(&self) -> Result<(), Error> {
        let status = self.client.shared.wait_for(None, |st| {
            let status = st.driver.engagement(self.id()).map(|i| i.status);
            match status {
                Some(EngagementStatus::Pending) if !st.stopped => None,
                other => Some(other),
            }
        });
        match status.flatten() {
            Some(EngagementStatus::Active) => Ok(()),
            _ => Err(chat_core::ChatError::EngagementNotFound.into()),
        }
    }

    /// Joins an engagement started elsewhere (`join`); it becomes ACTIVE with
    /// `ENGAGEMENT_ACTIVE` (see [`wait_active`](Self::wait_active)).
    pub fn join(&self) -> Result<Engagement, Error> {
        let info = self.client.call(Call::Join(self.id().clone()))?;
        Ok(self.client.engagement_handle(info))
    }

    /// Sends a text message (`sendMessage`, 1–4096 UTF-16 code units). Returns the message
    /// as stored; it also comes back as `MESSAGE_DELIVERED`.
    pub fn send_message(&self, text: &str) -> Result<Message, Error> {
        self.send(text, None)
    }

    /// Starts sending `text` at once and returns without waiting for it: the send is in
    /// the client (in its outbox, with a store) when this returns, so a
    /// [`Client::saved`] after it covers it. Wait for the outcome with
    /// [`QueuedMessage::delivered`], or drop the handle (the send goes on; its outcome comes
    /// as `MESSAGE_DELIVERED`).
    pub fn queue_message(&self, text: &str) -> Result<QueuedMessage, Error> {
        let call = Call::Send {
            engagement: self.id().clone(),
            text: text.to_owned(),
            parent: None,
        };
        let ticket = self.client.shared.start_call(call)?;
        Ok(QueuedMessage {
            shared: Arc::clone(&self.client.shared),
            ticket: Some(ticket),
        })
    }

    /// Sends a text message in answer to `parent`.
    pub fn send_reply(&self, parent: &MessageId, text: &str) -> Result<Message, Error> {
        self.send(text, Some(parent.clone()))
    }

    fn send(&self, text: &str, parent: Option<MessageId>) -> Result<Message, Error> {
        let call = Call::Send {
            engagement: self.id().clone(),
            text: text.to_owned(),
            parent,
        };
        self.client.call(call)
    }

    /// Leaves the engagement (`disconnect`): TERMINATING now, TERMINATED with
    /// `ENGAGEMENT_TERMINATED`.
    pub fn disconnect(&self, reason: Option<DisconnectReason>) -> Result<(), Error> {
        let engagement = self.id().clone();
        self.client.call(Call::Disconnect { engagement, reason })
    }

    /// The message history as a pager over pages of `page_size` messages (1 to 50), newest
    /// first (`getMessages`). Allowed before joining.
    pub fn history(&self, page_size: usize) -> Result<HistoryPager, Error> {
        let mut pager = chat_core::HistoryPager::new(page_size)?;
        pager.add_page(self.client.fetch_history(self.id(), None)?);
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

    /// The whole transcript, oldest first, each message once (the history as the server
    /// has it now; live messages come as events).
    pub fn transcript(&self) -> Result<Vec<Message>, Error> {
        let mut transcript = Transcript::default();
        let mut link = None;
        loop {
            let page = self.client.fetch_history(self.id(), link)?;
            match transcript.add(page) {
                Some(next) => link = Some(next),
                None => return Ok(transcript.into_messages()),
            }
        }
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
        let page = match moved {
            Err(e) => Some(Err(e)),
            Ok(false) => None,
            Ok(true) => self
                .pager
                .as_ref()
                .filter(|p| !p.items().is_empty() || p.has_older())
                .map(|p| Ok(p.items().to_vec())),
        };
        self.done = !matches!(page, Some(Ok(_)));
        page
    }
}

chat_driver::history_pager!();

impl HistoryPager {
    /// Moves to the next older page, fetching from the server as needed (`previous()`).
    /// Returns whether it moved. Errors are ACS-317.
    pub fn older(&mut self) -> Result<bool, Error> {
        while let Some(link) = self.pager.wants_fetch().cloned() {
            let id = self.engagement.id().clone();
            let page = self.engagement.client.fetch_history(&id, Some(link))?;
            self.pager.add_page(page);
        }
        Ok(self.pager.older())
    }
}

/// A send started with [`Engagement::queue_message`].
#[must_use = "dropping it is fine (the send goes on), but then its outcome is only an event"]
pub struct QueuedMessage {
    shared: Arc<Shared>,
    ticket: Option<crate::driver::Ticket>,
}

impl std::fmt::Debug for QueuedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedMessage").finish_non_exhaustive()
    }
}

impl QueuedMessage {
    /// Blocks until the message is delivered (the message as stored) or the send fails.
    pub fn delivered(mut self) -> Result<Message, Error> {
        let ticket = self.ticket.take().ok_or(Error::Closed(None))?;
        from_reply(self.shared.finish(ticket))
    }
}

impl Drop for QueuedMessage {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.shared.forget(ticket);
        }
    }
}
