//! Paging through an engagement's history, as the official `PageIterator` does, without I/O.

use crate::event::{HistoryPage, Message, PageLink};

/// Default page size (the official SDK's).
pub const DEFAULT_PAGE_SIZE: usize = 10;
/// Largest page size.
pub const MAX_PAGE_SIZE: usize = 50;

/// Local paging over accumulated history pages, newest first.
///
/// The server is always asked for pages of 50; the pager hands them out in pages of the
/// size the application chose. An adapter drives it:
///
/// ```
/// # use chat_core::HistoryPager;
/// # use chat_core::HistoryPage;
/// let mut pager = HistoryPager::new(10)?;
/// pager.add_page(HistoryPage { messages: vec![], next: None }); // the first page
/// while let Some(_link) = pager.wants_fetch() {
///     // fetch `_link` with `Session::fetch_history` and `add_page` the reply
/// #   break;
/// }
/// let moved = pager.older();
/// # assert!(!moved);
/// # Ok::<(), chat_core::ChatError>(())
/// ```
#[derive(Debug, Clone)]
pub struct HistoryPager {
    page_size: usize,
    loaded: Vec<Message>,
    index: usize,
    next: Option<PageLink>,
    /// Server pages added since the last move: a server that links page after page of
    /// nothing cannot keep a move fetching for ever.
    fetched: usize,
}

/// Server pages fetched at most for one move of the pager.
pub const MAX_FETCHES_PER_MOVE: usize = 100;

impl HistoryPager {
    /// A pager with pages of `page_size` messages, 1 to 50 (ACS-322 otherwise: the official
    /// SDK silently pages by 10 instead, which hides the caller's mistake).
    pub fn new(page_size: usize) -> Result<Self, crate::ChatError> {
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(crate::ChatError::constraint(
                "the history page size should be 1 to 50 messages",
            ));
        }
        Ok(Self {
            page_size,
            loaded: Vec::new(),
            index: 0,
            next: None,
            fetched: 0,
        })
    }

    /// The page size in use.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Adds a server page. Messages already loaded, and messages newer than the newest loaded
    /// one (pages shift when new messages arrive), are skipped.
    pub fn add_page(&mut self, page: HistoryPage) {
        let newest = self.loaded.first().map(|m| m.message_index);
        for message in page.messages {
            let known = self
                .loaded
                .iter()
                .any(|m| m.message_id == message.message_id);
            let too_new = newest.is_some_and(|n| message.message_index > n);
            if !known && !too_new {
                self.loaded.push(message);
            }
        }
        self.next = page.next;
        self.fetched += 1;
    }

    /// The messages of the current page, newest first.
    pub fn items(&self) -> &[Message] {
        let end = (self.index + self.page_size).min(self.loaded.len());
        &self.loaded[self.index.min(end)..end]
    }

    /// The server page to fetch before [`older`](Self::older) can show a full page.
    pub fn wants_fetch(&self) -> Option<&PageLink> {
        if self.fetched >= MAX_FETCHES_PER_MOVE {
            return None;
        }
        let target = (self.index + self.page_size).min(self.loaded.len());
        (self.loaded.len() - target < self.page_size)
            .then_some(self.next.as_ref())
            .flatten()
    }

    /// Moves to the next older page, if there is one loaded (the official `previous()`).
    /// Returns whether it moved.
    pub fn older(&mut self) -> bool {
        self.fetched = 0;
        let target = (self.index + self.page_size).min(self.loaded.len());
        let moved = target < self.loaded.len();
        if moved {
            self.index = target;
        }
        moved
    }

    /// Moves to the next newer page (the official `next()`). Returns whether it moved.
    pub fn newer(&mut self) -> bool {
        let moved = self.index > 0;
        self.index = self.index.saturating_sub(self.page_size);
        moved
    }

    /// Whether older messages exist, loaded or on the server.
    pub fn has_older(&self) -> bool {
        self.next.is_some() || self.index + self.page_size < self.loaded.len()
    }

    /// Whether newer messages are loaded.
    pub fn has_newer(&self) -> bool {
        self.index > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::event::test_message as msg;

    fn page(range: std::ops::RangeInclusive<u64>, next: Option<&str>) -> HistoryPage {
        HistoryPage {
            messages: range.rev().map(msg).collect(),
            next: next.map(|n| PageLink(n.to_owned())),
        }
    }

    fn indexes(p: &HistoryPager) -> Vec<u64> {
        p.items().iter().map(|m| m.message_index).collect()
    }

    #[test]
    fn pages_locally_and_asks_for_more_when_short() {
        let mut p = HistoryPager::new(4).unwrap();
        p.add_page(page(55..=60, Some("https://h/p2")));
        assert_eq!(indexes(&p), [60, 59, 58, 57]);
        assert!(p.has_older());
        assert!(!p.has_newer());
        assert_eq!(p.wants_fetch().map(PageLink::as_str), Some("https://h/p2"));
        // A new message shifted the server's pages: 55 comes again, and 61 is too new.
        p.add_page(HistoryPage {
            messages: [61, 55, 54, 53, 52, 51].into_iter().map(msg).collect(),
            next: None,
        });
        assert_eq!(p.wants_fetch(), None);
        assert!(p.older());
        assert_eq!(indexes(&p), [56, 55, 54, 53]);
        assert!(p.older());
        assert_eq!(indexes(&p), [52, 51]);
        assert!(!p.has_older());
        assert!(!p.older());
        assert!(p.newer());
        assert_eq!(indexes(&p), [56, 55, 54, 53]);
    }

    #[test]
    fn a_server_linking_empty_pages_for_ever_cannot_hold_a_move() {
        let mut p = HistoryPager::new(10).unwrap();
        let mut fetches = 0;
        let nothing = || HistoryPage {
            messages: Vec::new(),
            next: Some(PageLink("https://h/again".into())),
        };
        p.add_page(nothing());
        while p.wants_fetch().is_some() {
            fetches += 1;
            p.add_page(nothing());
        }
        assert_eq!(fetches, MAX_FETCHES_PER_MOVE - 1);
        assert!(!p.older());
    }

    #[test]
    fn empty_first_page_with_a_next_link_still_works() {
        for bad in [0, 51] {
            assert_eq!(HistoryPager::new(bad).unwrap_err().code(), "ACS-322");
        }
        let mut p = HistoryPager::new(DEFAULT_PAGE_SIZE).unwrap();
        p.add_page(HistoryPage {
            messages: Vec::new(),
            next: Some(PageLink("https://h/p2".into())),
        });
        assert!(p.wants_fetch().is_some());
        p.add_page(page(1..=3, None));
        assert_eq!(indexes(&p), [3, 2, 1]);
    }
}
