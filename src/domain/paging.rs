//! The domain's paging: what a store's page window read becomes as a page of a list, newest
//! first, with where its neighbouring pages start. The query a client sends is the model's
//! (`model::page`), the window a store reads is the store's (`store::PageWindow`), and the
//! envelope and links of an answer are the http layer's: this module only decides the page.

use crate::model::{Cursor, FieldError, KeyId, PageRequest};
use crate::store::PageOutcome;

use super::DomainError;

/// A page of a list with where its neighbours start, so an entry point can link to them.
#[derive(Debug)]
pub struct Page<T> {
    /// How many items the whole list holds (with its filter), not just this page.
    pub total: u64,
    /// This page's items, newest first.
    pub items: Vec<T>,
    /// Where the next (older) page starts; `None` on the last page.
    pub next: Option<Cursor>,
    /// Where the previous (newer) page starts; `None` on the first page.
    pub previous: Option<PreviousPage>,
}

/// Where a page's previous page starts. A page reached by `offset` has no item to start
/// before, so its previous page is another offset; a page reached by a cursor has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviousPage {
    /// The page that ends before (is newer than) a given item.
    Cursor(Cursor),
    /// The page that starts this many items from the newest.
    Offset(u32),
}

/// Turns what a page window read into a page, newest first, with its neighbours' starts.
/// `what` names an item of this list for the error of a cursor that names none of them; `id`
/// is an item's id, the cursor its neighbours are given by.
pub(super) fn page<T>(
    page: &PageRequest,
    outcome: PageOutcome<T>,
    what: &str,
    id: impl Fn(&T) -> KeyId,
) -> Result<Page<T>, DomainError> {
    let (total, mut items) = match outcome {
        PageOutcome::Listed { total, items } => (total, items),
        PageOutcome::UnknownOwner => return Err(DomainError::NotFound),
        PageOutcome::UnknownStart => {
            let parameter = page.cursor.parameter();
            return Err(FieldError::invalid(parameter, format!("{parameter} is not {what}")).into());
        }
    };
    let more = items.len() > page.limit as usize;
    items.truncate(page.limit as usize);
    if matches!(page.cursor, Cursor::Before(_)) {
        items.reverse();
    }
    let newest = items.first().map(&id);
    let oldest = items.last().map(&id);
    let (next, previous) = match &page.cursor {
        Cursor::Newest => (
            oldest.filter(|_| more).map(Cursor::After),
            (page.offset > 0).then(|| PreviousPage::Offset(page.offset.saturating_sub(page.limit))),
        ),
        Cursor::After(start) => (
            oldest.filter(|_| more).map(Cursor::After),
            Some(PreviousPage::Cursor(Cursor::Before(newest.unwrap_or_else(|| start.clone())))),
        ),
        Cursor::Before(start) => (
            Some(Cursor::After(oldest.unwrap_or_else(|| start.clone()))),
            newest.filter(|_| more).map(|id| PreviousPage::Cursor(Cursor::Before(id))),
        ),
    };
    Ok(Page { total, items, next, previous })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(raw: &str) -> KeyId {
        KeyId::parse(raw, "id").unwrap()
    }

    fn request(pairs: &[(&str, &str)]) -> PageRequest {
        PageRequest::parse(pairs.iter().copied()).unwrap()
    }

    fn listed(ids: &[&str]) -> PageOutcome<KeyId> {
        PageOutcome::Listed { total: 10, items: ids.iter().map(|raw| id(raw)).collect() }
    }

    #[test]
    fn an_offset_page_links_back_to_an_offset_and_on_to_a_cursor() {
        let request = request(&[("limit", "2"), ("offset", "3")]);
        let page = page(&request, listed(&["k4", "k5", "k6"]), "a key", KeyId::clone).unwrap();
        assert_eq!(page.items, [id("k4"), id("k5")], "one more than the limit is read to know there is more");
        assert_eq!(page.next, Some(Cursor::After(id("k5"))));
        assert_eq!(page.previous, Some(PreviousPage::Offset(1)));
        let first = super::page(&PageRequest::default(), listed(&["k1"]), "a key", KeyId::clone).unwrap();
        assert_eq!((first.next, first.previous), (None, None), "the only page has no neighbour");
    }

    #[test]
    fn a_page_before_an_item_is_read_oldest_first_and_shown_newest_first() {
        let request = request(&[("limit", "2"), ("endingBefore", "k9")]);
        let page = page(&request, listed(&["k8", "k7", "k6"]), "a key", KeyId::clone).unwrap();
        assert_eq!(page.items, [id("k7"), id("k8")]);
        assert_eq!(page.next, Some(Cursor::After(id("k8"))));
        assert_eq!(page.previous, Some(PreviousPage::Cursor(Cursor::Before(id("k7")))));
    }

    #[test]
    fn an_empty_page_after_an_item_still_links_back_to_it() {
        let request = request(&[("startingAfter", "k3")]);
        let page = page(&request, listed(&[]), "a key", KeyId::clone).unwrap();
        assert_eq!(page.next, None);
        assert_eq!(page.previous, Some(PreviousPage::Cursor(Cursor::Before(id("k3")))));
    }

    #[test]
    fn an_unknown_start_names_its_parameter() {
        let request = request(&[("endingBefore", "k3")]);
        let err =
            page(&request, PageOutcome::<KeyId>::UnknownStart, "a key of this company", KeyId::clone).unwrap_err();
        assert!(matches!(&err, DomainError::Invalid(e) if e.field == "endingBefore"), "{err:?}");
    }
}
