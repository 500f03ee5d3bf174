//! The model's paging: the query of a list call, parsed once, and the links to its neighbouring
//! pages. Which page a window of items makes is the domain's (`domain::paging`), how the store
//! reads a window the store's (`store::PageWindow`), and the answer's envelope the http layer's.

use super::fields::bounded_text;
use super::{FieldError, IdentityId, KeyId, KeyStatus, MAX_EXTERNAL_ID_CHARS};

/// Items on a page when the query does not say.
pub const DEFAULT_LIMIT: u32 = 25;
/// The most items a page may ask for: a page is read in one query.
pub const MAX_LIMIT: u32 = 100;
/// DynamoDB has no server-side skip: an offset reads that many extra items, so it is capped.
pub const MAX_OFFSET: u32 = 1000;

/// Which keys a list shows; `all` reads the company index, the others the status index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFilter {
    /// Keys whose status is active: what a list shows by default.
    #[default]
    Active,
    /// Keys turned off, deleted ones included.
    Inactive,
    /// Every key of the company, whatever its status.
    All,
}

impl StatusFilter {
    /// The filter as the query spells it (`status=...`), for the links to other pages.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusFilter::Active => "active",
            StatusFilter::Inactive => "inactive",
            StatusFilter::All => "all",
        }
    }

    /// The one status the filter keeps, `None` for all of them.
    pub fn status(self) -> Option<KeyStatus> {
        match self {
            StatusFilter::Active => Some(KeyStatus::Active),
            StatusFilter::Inactive => Some(KeyStatus::Inactive),
            StatusFilter::All => None,
        }
    }
}

/// Where a page starts: after an item (older than it), or before one (newer than it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Cursor {
    /// The first page: the newest items.
    #[default]
    Newest,
    /// The page of items older than this one (`startingAfter`).
    After(KeyId),
    /// The page of items newer than this one (`endingBefore`).
    Before(KeyId),
}

impl Cursor {
    /// The query parameter that gave this cursor, to name it in an error.
    pub fn parameter(&self) -> &'static str {
        match self {
            Cursor::Before(_) => "endingBefore",
            _ => "startingAfter",
        }
    }
}

/// A list call's query, parsed: every parameter is checked once here, so nothing below reads
/// the raw query again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Which keys (always the default for lists without a status, such as a key's events).
    pub status: StatusFilter,
    /// How many items a page holds, 1 to `MAX_LIMIT`.
    pub limit: u32,
    /// Where the page starts.
    pub cursor: Cursor,
    /// Items skipped from the newest, 0 to `MAX_OFFSET` (the store reads every skipped item).
    pub offset: u32,
    /// `GET /keys?identityId=`: only the keys of this identity (of the status asked).
    pub identity: Option<IdentityId>,
    /// `GET /identities?externalId=`: only the identity with this `externalId` (one page).
    pub external_id: Option<String>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            status: StatusFilter::default(),
            limit: DEFAULT_LIMIT,
            cursor: Cursor::Newest,
            offset: 0,
            identity: None,
            external_id: None,
        }
    }
}

/// Which list a query is for: each takes the paging parameters and its own filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListOf {
    /// `GET /keys`: `status` and `identityId`.
    Keys,
    /// A key's audit events: paging only.
    Events,
    /// `GET /identities`: `externalId`.
    Identities,
}

impl PageRequest {
    /// From decoded query pairs; an unknown or repeated parameter is a 400 rather than ignored.
    pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, FieldError> {
        Self::parse_with(pairs, ListOf::Keys)
    }

    /// The same paging for a list that has no status (a key's audit events).
    pub fn parse_without_status<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, FieldError> {
        Self::parse_with(pairs, ListOf::Events)
    }

    /// The paging of the identity list, with `externalId` to find one (then no cursor or
    /// offset: the page is that identity or none).
    pub fn parse_identities<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, FieldError> {
        Self::parse_with(pairs, ListOf::Identities)
    }

    fn parse_with<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>, list: ListOf) -> Result<Self, FieldError> {
        let with_status = list == ListOf::Keys;
        let mut page = Self::default();
        let (mut after, mut before) = (None, None);
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in pairs {
            if seen.contains(&name) {
                return Err(FieldError::invalid(name, format!("{name} is given more than once")));
            }
            seen.push(name);
            match name {
                "status" if with_status => {
                    page.status = match value {
                        "active" => StatusFilter::Active,
                        "inactive" => StatusFilter::Inactive,
                        "all" => StatusFilter::All,
                        _ => return Err(FieldError::invalid(name, "status must be active, inactive or all")),
                    }
                }
                "limit" => page.limit = bounded(name, value, 1, MAX_LIMIT)?,
                "offset" => page.offset = bounded(name, value, 0, MAX_OFFSET)?,
                "startingAfter" => after = Some(KeyId::parse(value, name)?),
                "endingBefore" => before = Some(KeyId::parse(value, name)?),
                "identityId" if list == ListOf::Keys => page.identity = Some(IdentityId::parse(value, name)?),
                "externalId" if list == ListOf::Identities => {
                    page.external_id = Some(bounded_text(value.to_owned(), name, MAX_EXTERNAL_ID_CHARS, false)?);
                }
                other => return Err(FieldError::unknown(other)),
            }
        }
        // An identity's key list is read by cursor from its own index, which has no listing
        // entries to count an offset over; and it has no `all` (one index partition per status).
        if page.identity.is_some() {
            if seen.contains(&"offset") {
                return Err(FieldError::invalid("offset", "offset cannot be used with identityId: page by cursor"));
            }
            if page.status == StatusFilter::All {
                return Err(FieldError::invalid(
                    "status",
                    "status=all cannot be used with identityId: list its active and its inactive keys apart",
                ));
            }
        }
        // `externalId` finds one identity: a page of it or of none, with nothing to page through.
        if page.external_id.is_some()
            && let Some(name) = ["startingAfter", "endingBefore", "offset"].into_iter().find(|n| seen.contains(n))
        {
            return Err(FieldError::invalid(name, format!("{name} cannot be used with externalId")));
        }
        page.cursor = match (after, before) {
            (Some(_), Some(_)) => {
                return Err(FieldError::invalid(
                    "endingBefore",
                    "startingAfter and endingBefore cannot be used together",
                ));
            }
            (Some(id), None) => Cursor::After(id),
            (None, Some(id)) => Cursor::Before(id),
            (None, None) => Cursor::Newest,
        };
        Ok(page)
    }

    /// A link to another page of the same list, relative to the API root.
    pub fn link(&self, path: &str, cursor: &Cursor) -> String {
        let mut query = format!("{path}?limit={}", self.limit);
        if self.status != StatusFilter::default() {
            query.push_str(&format!("&status={}", self.status.as_str()));
        }
        if let Some(identity) = &self.identity {
            query.push_str(&format!("&identityId={identity}"));
        }
        match cursor {
            Cursor::After(id) => query.push_str(&format!("&startingAfter={id}")),
            Cursor::Before(id) => query.push_str(&format!("&endingBefore={id}")),
            Cursor::Newest => {}
        }
        query
    }

    /// The previous page of an offset page is another offset page.
    pub fn offset_link(&self, path: &str, offset: u32) -> String {
        let base = self.link(path, &Cursor::Newest);
        if offset == 0 { base } else { format!("{base}&offset={offset}") }
    }
}

fn bounded(name: &str, value: &str, min: u32, max: u32) -> Result<u32, FieldError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| FieldError::invalid(name, format!("{name} must be a whole number from {min} to {max}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<PageRequest, FieldError> {
        PageRequest::parse(pairs.iter().copied())
    }

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(parse(&[]).unwrap(), PageRequest::default());
        assert_eq!(parse(&[("limit", "100"), ("offset", "0")]).unwrap().limit, 100);
        for (name, value) in [("limit", "0"), ("limit", "101"), ("limit", "x"), ("offset", "-1"), ("offset", "1001")] {
            assert_eq!(parse(&[(name, value)]).unwrap_err().field, name);
        }
        assert_eq!(parse(&[("status", "deleted")]).unwrap_err().field, "status");
        assert_eq!(parse(&[("sort", "asc")]).unwrap_err().field, "sort");
        assert_eq!(parse(&[("limit", "1"), ("limit", "2")]).unwrap_err().field, "limit");
        assert_eq!(PageRequest::parse_without_status([("status", "all")]).unwrap_err().field, "status");
        assert_eq!(PageRequest::parse_without_status([("identityId", "x")]).unwrap_err().field, "identityId");
        assert_eq!(PageRequest::parse_identities([("status", "all")]).unwrap_err().field, "status");
        assert_eq!(PageRequest::parse_identities([("identityId", "x")]).unwrap_err().field, "identityId");
        assert_eq!(parse(&[("externalId", "x")]).unwrap_err().field, "externalId");
    }

    #[test]
    fn filters_refuse_what_their_lists_cannot_do() {
        let identity = "id_0190a5e4c3b27d5e9f1a2b3c4d5e6f70";
        let page = parse(&[("identityId", identity), ("status", "inactive"), ("limit", "2")]).unwrap();
        assert_eq!(page.identity.as_ref().map(IdentityId::as_str), Some(identity));
        let id = KeyId::parse("k1", "id").unwrap();
        assert_eq!(
            page.link("/keys", &Cursor::After(id)),
            format!("/keys?limit=2&status=inactive&identityId={identity}&startingAfter=k1")
        );
        assert_eq!(parse(&[("identityId", "nope")]).unwrap_err().field, "identityId");
        assert_eq!(parse(&[("identityId", identity), ("offset", "0")]).unwrap_err().field, "offset");
        assert_eq!(parse(&[("identityId", identity), ("status", "all")]).unwrap_err().field, "status");
        let found = PageRequest::parse_identities([("externalId", "cust_42"), ("limit", "5")]).unwrap();
        assert_eq!(found.external_id.as_deref(), Some("cust_42"));
        for name in ["startingAfter", "endingBefore", "offset"] {
            let value = if name == "offset" { "1" } else { "k1" };
            let err = PageRequest::parse_identities([("externalId", "c"), (name, value)]).unwrap_err();
            assert_eq!(err.field, name);
        }
        assert_eq!(PageRequest::parse_identities([("externalId", "")]).unwrap_err().field, "externalId");
    }

    #[test]
    fn both_cursors_together_are_refused() {
        let err = parse(&[("startingAfter", "a"), ("endingBefore", "b")]).unwrap_err();
        assert_eq!(err.field, "endingBefore");
        assert_eq!(parse(&[("startingAfter", "bad id")]).unwrap_err().field, "startingAfter");
    }

    #[test]
    fn links_keep_limit_and_status() {
        let page = parse(&[("limit", "7"), ("status", "all")]).unwrap();
        let id = KeyId::parse("k1", "id").unwrap();
        assert_eq!(page.link("/keys", &Cursor::After(id.clone())), "/keys?limit=7&status=all&startingAfter=k1");
        assert_eq!(page.link("/keys", &Cursor::Before(id)), "/keys?limit=7&status=all&endingBefore=k1");
        assert_eq!(page.offset_link("/keys", 3), "/keys?limit=7&status=all&offset=3");
    }
}
