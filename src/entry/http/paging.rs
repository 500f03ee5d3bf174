//! Paging as HTTP: a domain page becomes the list envelope, with its neighbours as links. The
//! other layers' paging: `model::page` (the request), `domain::paging` (the page and its
//! neighbours), `store::paging` (the window) and `store::dynamo::paging` (the queries).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};

use crate::domain::paging::{Page, PreviousPage};
use crate::model::{Cursor, PageRequest};

use super::error::json_response;

/// The list envelope: `{status, total, count, nextUrl, previousUrl, data}`, links relative to
/// the API root.
pub(super) fn page_response<T>(
    page: &PageRequest,
    path: &str,
    listed: &Page<T>,
    data: &impl serde::Serialize,
) -> Response<Body> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Envelope<'a, D> {
        status: u16,
        total: u64,
        count: usize,
        next_url: Option<String>,
        previous_url: Option<String>,
        data: &'a D,
    }
    let link = |cursor: &Cursor| page.link(path, cursor);
    let body = Envelope {
        status: 200,
        total: listed.total,
        count: listed.items.len(),
        next_url: listed.next.as_ref().map(link),
        previous_url: listed.previous.as_ref().map(|previous| match previous {
            PreviousPage::Cursor(cursor) => link(cursor),
            PreviousPage::Offset(offset) => page.offset_link(path, *offset),
        }),
        data,
    };
    json_response(StatusCode::OK, &body)
}
