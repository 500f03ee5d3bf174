//! Paging: `limit`, the cursors `startingAfter` / `endingBefore` behind `nextUrl` and
//! `previousUrl`, and `offset`. A key list is shared with every other check running at the same
//! time (and, on a deployed stack, with anyone), so checks on it look at the order of the
//! check's own keys among others; a key's audit trail is the check's alone, so its pages are
//! checked exactly.

use serde_json::{Value, json};

use crate::client::{Answer, Check, ids, unique};

/// Pages from `first`, following `link` (`nextUrl` or `previousUrl`), until `wanted` are all
/// seen or there is no further page: the ids in the order seen. Every page is checked.
async fn walk(check: &Check, first: &str, link: &str, limit: usize, wanted: &[String]) -> Vec<String> {
    let mut seen = Vec::new();
    let mut next = Some(first.to_owned());
    while let Some(path) = next {
        let page = check.get(&path).await;
        assert_page(&page, limit);
        let on_page = ids(&page.body);
        for id in on_page {
            assert!(!seen.contains(&id), "{id} on two pages");
            seen.push(id);
        }
        if wanted.iter().all(|w| seen.contains(w)) {
            break;
        }
        next = page.body[link].as_str().map(str::to_owned);
        assert!(seen.len() < 5_000, "walked 5,000 keys without seeing every key of the check");
    }
    seen
}

fn assert_page(page: &Answer, limit: usize) {
    assert_eq!(page.status, 200, "{page:?}");
    let data = page.body["data"].as_array().unwrap();
    assert!(data.len() <= limit, "{} keys on a page of {limit}", data.len());
    assert_eq!((&page.body["status"], &page.body["count"]), (&json!(200), &json!(data.len())), "{:?}", page.body);
    assert!(page.body["total"].is_u64(), "{:?}", page.body);
    for link in ["nextUrl", "previousUrl"] {
        let url = &page.body[link];
        assert!(url.is_null() || url.as_str().unwrap().starts_with("/keys"), "{link}: {url}");
    }
}

/// The check's own ids in the order `seen` holds them.
fn own_order(seen: &[String], own: &[String]) -> Vec<String> {
    seen.iter().filter(|id| own.contains(id)).cloned().collect()
}

async fn five_keys(check: &Check) -> Vec<String> {
    let user = unique("paging");
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(check.create(json!({ "userId": user })).await.id);
    }
    made
}

#[tokio::test]
async fn next_url_walks_the_list_newest_first_limit_keys_a_page() {
    let check = Check::new();
    let made = five_keys(&check).await;
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    let first = check.get("/keys?limit=2").await;
    assert_eq!(first.body["previousUrl"], Value::Null, "the first page has no previous page");
    assert!(first.body["total"].as_u64().unwrap() >= 6, "five keys and the root key: {:?}", first.body["total"]);
    let seen = walk(&check, "/keys?limit=2", "nextUrl", 2, &made).await;
    assert_eq!(own_order(&seen, &made), newest_first);
    check.done().await;
}

#[tokio::test]
async fn starting_after_and_ending_before_page_from_a_key() {
    let check = Check::new();
    let made = five_keys(&check).await;
    let after = walk(&check, &format!("/keys?limit=2&startingAfter={}", made[4]), "nextUrl", 2, &made[..4]).await;
    assert_eq!(
        own_order(&after, &made),
        [made[3].clone(), made[2].clone(), made[1].clone(), made[0].clone()],
        "older keys, newest first"
    );
    assert!(!after.contains(&made[4]), "the cursor's own key is not on its page");
    let before = walk(&check, &format!("/keys?limit=2&endingBefore={}", made[0]), "previousUrl", 2, &made[1..]).await;
    let (mut got, mut newer) = (own_order(&before, &made), made[1..].to_vec());
    got.sort();
    newer.sort();
    assert_eq!(got, newer, "previousUrl reaches every newer key, each once");
    let page = check.get(&format!("/keys?limit=100&endingBefore={}", made[0])).await;
    assert_eq!(
        own_order(&ids(&page.body), &made),
        [made[4].clone(), made[3].clone(), made[2].clone(), made[1].clone()],
        "newest first on the page"
    );
    assert!(page.body["nextUrl"].is_string(), "a page before a key has a next page: {:?}", page.body);
    check.done().await;
}

#[tokio::test]
async fn the_limit_defaults_to_25_and_reaches_100() {
    let check = Check::new();
    for (query, most) in [("", 25), ("?limit=1", 1), ("?limit=100", 100)] {
        let page = check.get(&format!("/keys{query}")).await;
        assert_page(&page, most);
    }
}

/// A key's audit trail, one event per change and the check's alone: its pages exactly.
#[tokio::test]
async fn an_audit_trail_pages_exactly_by_limit_cursor_and_offset() {
    let check = Check::new();
    let made = check.create(json!({ "userId": "paging" })).await;
    let path = format!("/keys/{}", made.id);
    for n in 0..6 {
        let answer = check.call("PATCH", &path).json(&json!({ "description": format!("v{n}") })).send().await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let all = check.get(&format!("{path}/events?limit=100")).await;
    let events = ids(&all.body);
    assert_eq!((events.len(), &all.body["total"]), (7, &json!(7)), "created and six updates");
    let first = check.get(&format!("{path}/events?limit=3")).await;
    assert_eq!((ids(&first.body), &first.body["previousUrl"]), (events[..3].to_vec(), &Value::Null));
    let second = check.get(first.body["nextUrl"].as_str().expect("a next page")).await;
    assert_eq!(ids(&second.body), events[3..6]);
    let third = check.get(second.body["nextUrl"].as_str().expect("a next page")).await;
    assert_eq!((ids(&third.body), &third.body["nextUrl"]), (events[6..].to_vec(), &Value::Null));
    let back = check.get(third.body["previousUrl"].as_str().expect("a previous page")).await;
    assert_eq!(ids(&back.body), events[3..6], "previousUrl leads back");
    let offset = check.get(&format!("{path}/events?limit=2&offset=4")).await;
    assert_eq!((ids(&offset.body), &offset.body["total"]), (events[4..6].to_vec(), &json!(7)));
    let beyond = check.get(&format!("{path}/events?offset=7")).await;
    assert_eq!((beyond.status, ids(&beyond.body).len()), (200, 0));
    let after = check.get(&format!("{path}/events?limit=2&startingAfter={}", events[1])).await;
    assert_eq!(ids(&after.body), events[2..4]);
    let before = check.get(&format!("{path}/events?limit=2&endingBefore={}", events[4])).await;
    assert_eq!(ids(&before.body), events[2..4]);
    check.done().await;
}
