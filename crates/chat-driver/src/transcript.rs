//! [`Transcript`]: the whole history of an engagement, oldest first, each message once.

use std::collections::HashSet;

use chat_core::{HistoryPage, Message, MessageId, PageLink};

/// History pages read at most for one transcript (100,000 messages).
const MAX_PAGES: usize = 2000;

/// Gathers an engagement's history pages into its transcript: oldest first, each message
/// once (pages shift while new messages arrive, so the same message can come twice). An
/// adapter feeds it the pages `links.next` leads to, starting from the newest:
///
/// ```
/// # use chat_driver::Transcript;
/// let mut transcript = Transcript::default();
/// let next = transcript.add(chat_core::HistoryPage { messages: vec![], next: None });
/// assert!(next.is_none()); // nothing more to fetch
/// assert!(transcript.into_messages().is_empty());
/// ```
#[derive(Debug, Default)]
pub struct Transcript {
    messages: Vec<Message>,
    seen: HashSet<MessageId>,
    pages: usize,
}

impl Transcript {
    /// Adds a page; returns the next (older) page to fetch, if any. Past 2,000 pages it
    /// asks for no more.
    pub fn add(&mut self, page: HistoryPage) -> Option<PageLink> {
        self.pages += 1;
        for m in page.messages {
            if self.seen.insert(m.message_id.clone()) {
                self.messages.push(m);
            }
        }
        if self.pages >= MAX_PAGES {
            tracing::warn!("history longer than {MAX_PAGES} pages: the transcript stops there");
            return None;
        }
        page.next
    }

    /// The messages, oldest first.
    pub fn into_messages(mut self) -> Vec<Message> {
        self.messages.sort_by_key(|m| m.message_index);
        self.messages
    }
}
