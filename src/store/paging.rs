//! Which items a page reads (`PageWindow`) and what a list answers (`PageOutcome`): the types
//! of the listing traits. The DynamoDB adapter reads a window in `dynamo::paging`.

use crate::model::{Cursor, KeyId, PageRequest};

/// Which items a page reads: `take` after `start` (exclusive) in the given direction, less the
/// first `skip`.
#[derive(Debug, Clone, Copy)]
pub struct PageWindow<'a> {
    /// The item the page continues after (exclusive); `None`: from the newest.
    pub start: Option<&'a KeyId>,
    /// Newest first (a page forward), or oldest first (a page back, from a `before` cursor).
    pub newest_first: bool,
    /// Items passed over before the page, from the request's offset.
    pub skip: u32,
    /// Items read: the page's limit and one more, to know if another page follows.
    pub take: u32,
}

impl<'a> PageWindow<'a> {
    /// The window of a page request: one item more than the page, to know if another follows.
    pub fn of(page: &'a PageRequest) -> Self {
        let (start, newest_first) = match &page.cursor {
            Cursor::Newest => (None, true),
            Cursor::After(id) => (Some(id), true),
            Cursor::Before(id) => (Some(id), false),
        };
        Self { start, newest_first, skip: page.offset, take: page.limit + 1 }
    }
}

/// What a list read answers.
#[derive(Debug)]
pub enum PageOutcome<T> {
    /// `total` counts every item of the list, not just this page.
    Listed {
        /// Every item of the list, whatever the window.
        total: u64,
        /// The window's items, in its direction.
        items: Vec<T>,
    },
    /// `start` is not an item of this list.
    UnknownStart,
    /// The list belongs to something that does not exist (a key's events, without the key).
    UnknownOwner,
}
