//! The key console in a real browser: Debian's chromium, headless, driven through chromedriver
//! (WebDriver) against the local server (`serve`, as `make run` runs it) on 127.0.0.1, with a
//! spawn_app() table on DynamoDB Local. `make test` installs chromium and chromium-driver; the
//! test is skipped, saying so, only where they cannot be found.
//!
//! CONSOLE_SCREENSHOTS=1 rewrites docs/console-*.png (docs/console.md's screenshots); other runs
//! leave the committed files alone.

use std::net::{Ipv4Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use apikeys::domain::Clock;
use apikeys::model::usage::Granularity;
use chrono::{DateTime, TimeDelta, Utc};
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::helpers::*;
use crate::lambda_harness::Function;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the page may take to show what an action leads to (a few API calls on DynamoDB Local).
const PATIENCE: Duration = Duration::from_secs(30);
const XSS: &str = "<img src=x onerror=alert(1)>";
/// Whether the element `arguments[0]` selects is shown and enabled.
/// Holds the answer of the next `endingBefore` page request until `RELEASE_THE_HELD_PAGE`, and
/// marks when the page has read it.
const HOLD_THE_NEXT_PREVIOUS_PAGE: &str = r#"
window.__held = [];
const realFetch = window.fetch;
window.fetch = (path, init) => {
  const answer = realFetch(path, init);
  if (!String(path).includes('endingBefore=')) return answer;
  window.fetch = realFetch;
  return new Promise((resolve) => window.__held.push(async () => {
    const response = await answer;
    const text = await response.text();
    const held = new Response(text, { status: response.status, headers: response.headers });
    held.text = async () => { window.__read = true; return text; };
    resolve(held);
  }));
};"#;

/// Lets the held answer through and returns once the page has read it and run every step that
/// follows without waiting (the render, when it renders): those are microtasks, done before the
/// next timer.
const RELEASE_THE_HELD_PAGE: &str = r#"
const done = arguments[arguments.length - 1];
window.__held[0]();
const wait = () => setTimeout(window.__read ? done : wait, 0);
wait();"#;

/// True once the table's first row is another key than `arguments[0]`: a new page has come.
const FIRST_ROW_IS_NOT: &str =
    "return [...document.querySelectorAll('#key-rows tr[data-key-id]')][0]?.dataset.keyId !== arguments[0]";

const READY: &str = "const e = document.querySelector(arguments[0]); return !!e && !e.disabled && e.checkVisibility()";

/// chromedriver on a free port, stopped (by its own PID) when dropped.
struct Driver {
    child: Child,
    url: String,
    profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
}

async fn start_driver() -> Driver {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let profile = std::env::temp_dir().join(unique("console-profile"));
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}"), profile };
    // Waits for chromedriver to listen: a process start, nothing a clock could stand in for.
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(started.elapsed() < PATIENCE, "chromedriver did not listen on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    driver
}

async fn browser(driver: &Driver) -> Client {
    let args = [
        "--headless=new".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--no-first-run".to_owned(),
        "--window-size=1360,900".to_owned(),
        format!("--user-data-dir={}", driver.profile.display()),
    ];
    let capabilities = json!({ "goog:chromeOptions": { "binary": CHROMIUM, "args": args } });
    let Value::Object(capabilities) = capabilities else { unreachable!() };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector).capabilities(capabilities).connect(&driver.url).await.expect("a chromium session")
}

/// Runs `script` (a function body) in the page and answers its value.
async fn js(client: &Client, script: &str, args: Vec<Value>) -> Value {
    client.execute(script, args).await.unwrap_or_else(|e| panic!("{script}: {e}"))
}

/// Waits until `script` answers something other than null/false/"", and answers it.
async fn until(client: &Client, what: &str, script: &str, args: Vec<Value>) -> Value {
    let started = Instant::now();
    loop {
        let value = js(client, script, args.clone()).await;
        if !matches!(&value, Value::Null | Value::Bool(false)) && value != json!("") {
            return value;
        }
        if started.elapsed() > PATIENCE {
            let page = js(client, "return document.body.innerText", vec![]).await;
            panic!("waited for {what}; the page shows:\n{}", page.as_str().unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn text_of(client: &Client, selector: &str) -> String {
    let value = js(
        client,
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : null",
        vec![json!(selector)],
    )
    .await;
    value.as_str().unwrap_or_default().to_owned()
}

/// Clicks the element once it is shown and enabled (a dialog opens after the API answers).
async fn click(client: &Client, selector: &str) {
    until(client, &format!("{selector} to be clickable"), READY, vec![json!(selector)]).await;
    client
        .find(Locator::Css(selector))
        .await
        .unwrap()
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {selector}: {e}"));
}

/// Types `value` into the input, once it is shown and enabled (in an opening dialog, say).
async fn fill(client: &Client, selector: &str, value: &str) {
    until(client, &format!("{selector} to take input"), READY, vec![json!(selector)]).await;
    let input = client.find(Locator::Css(selector)).await.unwrap_or_else(|e| panic!("{selector}: {e}"));
    input.clear().await.unwrap_or_else(|e| panic!("clear {selector}: {e}"));
    input.send_keys(value).await.unwrap_or_else(|e| panic!("type into {selector}: {e}"));
}

/// The ids of the rows the key table shows.
async fn row_ids(client: &Client) -> Vec<String> {
    let ids = js(
        client,
        "return [...document.querySelectorAll('#key-rows tr[data-key-id]')].map(r => r.dataset.keyId)",
        vec![],
    )
    .await;
    serde_json::from_value(ids).unwrap()
}

/// Waits for the list to show `total` in its total line.
async fn until_total(client: &Client, starts_with: &str) {
    let script = "return document.querySelector('#total').textContent.startsWith(arguments[0])";
    until(client, &format!("a total of {starts_with}"), script, vec![json!(starts_with)]).await;
}

fn row_button(id: &str, action: &str) -> String {
    format!("#key-rows tr[data-key-id='{id}'] button[aria-label='{action} {id}']")
}

async fn screenshot(client: &Client, name: &str) {
    if std::env::var("CONSOLE_SCREENSHOTS").is_err() {
        return;
    }
    let png = client.screenshot().await.expect("a screenshot");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join(format!("{name}.png"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, png).unwrap();
}

/// The secret the open secret dialog shows, and the key it belongs to.
async fn shown_secret(client: &Client) -> (String, String) {
    let secret = until(
        client,
        "the secret dialog",
        "const d = document.querySelector('#secret-dialog'); return d.open && document.querySelector('#secret-value').value",
        vec![],
    )
    .await;
    (text_of(client, "#secret-key-id").await, secret.as_str().unwrap().to_owned())
}

#[tokio::test]
async fn the_console_runs_the_whole_key_lifecycle_in_chromium() {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        eprintln!(
            "SKIPPED the console's browser test: {CHROMIUM} or {CHROMEDRIVER} is missing \
             (`make test` installs Debian's chromium and chromium-driver)"
        );
        return;
    }
    let app = spawn_app().await;
    // 30 keys to page through (3 pages of 10, with the root key a 4th), one of them inactive.
    let mut bulk = Vec::new();
    for n in 0..30 {
        bulk.push(app.create_key(&json!({ "userId": format!("bulk-{n:02}"), "description": "bulk key" })).await);
    }
    let inactive_id = bulk[7]["id"].as_str().unwrap().to_owned();
    let deactivated = app.patch_key(&inactive_id, &json!({ "status": "inactive" }), &[]).await;
    assert_eq!(deactivated.status, lambda_http::http::StatusCode::OK, "{:?}", deactivated.body);

    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(apikeys::entry::local::serve(app.app.clone(), listener, async {
        let _ = stopped.await;
    }));

    let driver = start_driver().await;
    let client = browser(&driver).await;
    // A failed step still ends the session (which stops chromium; killing chromedriver alone
    // would leave it running), then fails the test.
    let outcome = AssertUnwindSafe(scenario(&client, &app, &base, &inactive_id)).catch_unwind().await;
    let _ = client.close().await;
    drop(driver);
    let _ = stop.send(());
    let served = server.await;
    if let Err(failed) = outcome {
        std::panic::resume_unwind(failed);
    }
    served.unwrap().unwrap();
}

async fn scenario(client: &Client, app: &TestApp, base: &str, inactive_id: &str) {
    client.goto(&format!("{base}/console")).await.expect("the console loads");
    until(client, "the page's script", "return document.body.dataset.ready === 'true'", vec![]).await;
    // Any alert (or other script the data might smuggle in) is recorded.
    js(client, "window.__ran = []; window.alert = (m) => window.__ran.push(String(m));", vec![]).await;

    // Sign in: a wrong key shows the API's 401 message and is forgotten; the right one is kept
    // for this tab only, and the page says who it is.
    fill(client, "#signin-key", "sk_notakeyofanycompany1234567890").await;
    click(client, "#signin-form button[type=submit]").await;
    let refused = until(client, "the 401", "return document.querySelector('#signin-error').textContent", vec![]).await;
    assert!(refused.as_str().unwrap().contains("401 unauthenticated"), "{refused}");
    let kept = js(client, "return sessionStorage.getItem('apikeys.rootKey')", vec![]).await;
    assert_eq!(kept, Value::Null, "a refused key is not kept");
    fill(client, "#signin-key", &app.root_key).await;
    click(client, "#signin-form button[type=submit]").await;
    until(client, "signed in", "return !document.querySelector('#who').hidden", vec![]).await;
    assert_eq!(text_of(client, "#who-company").await, format!("company {}", app.company));
    assert_eq!(text_of(client, "#who-permissions").await, "keys:*");
    let stored = js(client, "return sessionStorage.getItem('apikeys.rootKey')", vec![]).await;
    assert_eq!(stored, json!(app.root_key));
    let local = js(client, "return localStorage.length + document.cookie.length", vec![]).await;
    assert_eq!(local, json!(0), "the key is only in sessionStorage");
    until_total(client, "30 active keys").await;

    // Page through the 30 active keys (and the root key) with next, then back with previous.
    let mut seen = row_ids(client).await;
    assert_eq!(seen.len(), 10);
    while js(client, "return document.querySelector('#next-page').disabled", vec![]).await == json!(false) {
        let before = row_ids(client).await;
        click(client, "#next-page").await;
        until(client, "the next page", FIRST_ROW_IS_NOT, vec![json!(before[0])]).await;
        seen.extend(row_ids(client).await);
    }
    let mut distinct = seen.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!((seen.len(), distinct.len()), (30, 30), "every active key once: {seen:?}");
    assert!(!seen.contains(&inactive_id.to_owned()));
    let last_page = row_ids(client).await;
    click(client, "#prev-page").await;
    until(client, "the previous page", FIRST_ROW_IS_NOT, vec![json!(last_page[0])]).await;
    assert_eq!(row_ids(client).await, seen[10..20]);

    // Filter: inactive shows the one inactive key, even when the answer of a page asked for
    // before comes after it: that answer is held back until the filter has answered.
    js(client, HOLD_THE_NEXT_PREVIOUS_PAGE, vec![]).await;
    click(client, "#prev-page").await;
    until(client, "the held previous page", "return window.__held.length === 1", vec![]).await;
    client.find(Locator::Css("#status-filter")).await.unwrap().select_by_value("inactive").await.unwrap();
    until_total(client, "1 inactive key").await;
    client.execute_async(RELEASE_THE_HELD_PAGE, vec![]).await.expect("the held page is let through");
    assert!(text_of(client, "#total").await.starts_with("1 inactive key"), "{}", text_of(client, "#total").await);
    assert_eq!(row_ids(client).await, vec![inactive_id.to_owned()]);
    client.find(Locator::Css("#status-filter")).await.unwrap().select_by_value("active").await.unwrap();
    until_total(client, "30 active keys").await;

    // Create a key whose description is markup: its secret is shown once, with a copy button.
    click(client, "#new-key").await;
    fill(client, "#f-description", XSS).await;
    fill(client, "#f-user", "console-user").await;
    fill(client, "#f-tags", "web, beta").await;
    fill(client, "#f-acl", r#"[{"permissions":["orders:read"]}]"#).await;
    // A field error from the API is shown next to its field: here a rate limit the API refuses.
    fill(client, "#f-rate", r#"{"limit":0,"periodSeconds":60}"#).await;
    click(client, "#key-save").await;
    let rate_error = until(
        client,
        "the rateLimit error",
        "return document.querySelector('[data-error-for=rateLimit]').textContent",
        vec![],
    )
    .await;
    assert!(rate_error.as_str().unwrap().contains("400"), "{rate_error}");
    fill(client, "#f-rate", r#"{"limit":100,"periodSeconds":60}"#).await;
    click(client, "#key-save").await;
    let (id, secret) = shown_secret(client).await;
    assert!(secret.starts_with("sk_"), "{secret}");
    assert!(text_of(client, "#secret-dialog").await.contains("You will not see it again"));
    until_total(client, "31 active keys").await;
    screenshot(client, "console-create-secret").await;
    click(client, "#secret-dialog button.close").await;
    // The dialog's close event (which clears it) runs as its own task: wait for it.
    let cleared =
        "return !document.querySelector('#secret-dialog').open && document.querySelector('#secret-value').value === ''";
    until(client, "the secret to be gone once the dialog closes", cleared, vec![]).await;

    // It is in the list, newest first; its description shows as text and ran nothing.
    assert_eq!(row_ids(client).await[0], id);
    let description = text_of(client, &format!("#key-rows tr[data-key-id='{id}'] td.description")).await;
    assert_eq!(description, XSS);
    let injected = js(client, "return document.querySelectorAll('#key-rows img').length", vec![]).await;
    assert_eq!(injected, json!(0), "no element was made from the description");
    screenshot(client, "console-list").await;
    fill(client, "#search", "console-user").await;
    until(client, "the search", "return document.querySelectorAll('#key-rows tr[data-key-id]').length === 1", vec![])
        .await;
    assert_eq!(row_ids(client).await, vec![id.clone()]);
    fill(client, "#search", "").await;
    js(client, "document.querySelector('#search').dispatchEvent(new Event('input'))", vec![]).await;

    // Edit with a stale version: someone else changes the key after the dialog opened.
    click(client, &row_button(&id, "Edit")).await;
    until(client, "the edit dialog", "return document.querySelector('#key-dialog').open", vec![]).await;
    let elsewhere = app.patch_key(&id, &json!({ "tags": ["changed-elsewhere"] }), &[]).await;
    assert_eq!(elsewhere.status, lambda_http::http::StatusCode::OK);
    fill(client, "#f-description", "edited in the console").await;
    click(client, "#key-save").await;
    let stale =
        until(client, "the 412", "return document.querySelector('#key-form .form-error').textContent", vec![]).await;
    assert!(stale.as_str().unwrap().contains("changed since you opened it"), "{stale}");
    assert!(stale.as_str().unwrap().contains("412"), "{stale}");
    assert_eq!(app.get_key(&id).await.body["description"], json!(XSS), "the stale edit wrote nothing");
    click(client, "#key-form button.close").await;

    // Roll with a grace period: the new secret, shown once.
    click(client, &row_button(&id, "Roll")).await;
    fill(client, "#roll-grace", "60").await;
    click(client, "#roll-form button[type=submit]").await;
    let (rolled_id, rolled) = shown_secret(client).await;
    assert_eq!(rolled_id, id);
    assert!(rolled.starts_with("sk_") && rolled != secret, "a new secret");
    click(client, "#secret-dialog button.close").await;

    // The verify playground: the new secret verifies.
    click(client, "#tab-verify").await;
    fill(client, "#verify-key", &rolled).await;
    fill(client, "#verify-permissions", "orders:read").await;
    click(client, "#verify-form button[type=submit]").await;
    let code =
        until(client, "the verify answer", "return document.querySelector('#verify-code').textContent", vec![]).await;
    assert_eq!(code, json!("200 VALID"));
    assert!(text_of(client, "#verify-answer").await.contains(&format!("\"keyId\": \"{id}\"")));
    click(client, "#tab-keys").await;

    // Delete, confirmed: it leaves the active list.
    click(client, &row_button(&id, "Delete")).await;
    click(client, "#delete-form button[type=submit]").await;
    until_total(client, "30 active keys").await;
    assert!(!row_ids(client).await.contains(&id));
    assert_eq!(app.get_key(&id).await.body["status"], json!("inactive"));

    // Its audit trail, from the list of all keys.
    client.find(Locator::Css("#status-filter")).await.unwrap().select_by_value("all").await.unwrap();
    until_total(client, "32 keys").await;
    click(client, &row_button(&id, "Audit")).await;
    let events = until(
        client,
        "the audit trail",
        "const e = [...document.querySelectorAll('#audit-events li strong')].map(s => s.textContent); return e.length ? e : null",
        vec![],
    )
    .await;
    assert_eq!(events, json!(["deleted", "rolled", "updated", "created"]), "newest first");
    assert_eq!(text_of(client, "#audit-total").await, "4 events, newest first");
    screenshot(client, "console-audit").await;
    click(client, "#audit-dialog button.close").await;

    // Create with a custom id: the key gets that id, its secret shown once.
    click(client, "#new-key").await;
    fill(client, "#f-id", "console-custom").await;
    fill(client, "#f-user", "custom-user").await;
    click(client, "#key-save").await;
    let (custom_id, custom_secret) = shown_secret(client).await;
    assert_eq!(custom_id, "console-custom");
    assert!(custom_secret.starts_with("sk_"));
    click(client, "#secret-dialog button.close").await;
    until_total(client, "33 keys").await;
    assert_eq!(row_ids(client).await[0], "console-custom");

    // Keyboard alone: Tab from the status filter goes to the search box, then New key, then the
    // first row's first button; Enter on New key opens the dialog with focus in it; Escape closes it.
    js(client, "document.querySelector('#status-filter').focus()", vec![]).await;
    let mut order = Vec::new();
    for _ in 0..3 {
        client.active_element().await.unwrap().send_keys("\u{E004}").await.unwrap();
        let focused =
            js(client, "const e = document.activeElement; return e.id || e.getAttribute('aria-label')", vec![]).await;
        order.push(focused.as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(order[..2], ["search", "new-key"], "{order:?}");
    assert!(order[2].starts_with("Edit "), "{order:?}");
    js(client, "document.querySelector('#new-key').focus()", vec![]).await;
    client.active_element().await.unwrap().send_keys("\u{E007}").await.unwrap();
    until(client, "the dialog by keyboard", "return document.activeElement.id === 'f-id'", vec![]).await;
    client.active_element().await.unwrap().send_keys("\u{E00C}").await.unwrap();
    until(client, "Escape to close it", "return !document.querySelector('#key-dialog').open", vec![]).await;

    // At a phone's width the table becomes one card per key and nothing needs scrolling sideways.
    client.set_window_size(390, 844).await.unwrap();
    let overflow = until(
        client,
        "the phone layout",
        "return window.innerWidth <= 420 && [document.documentElement.scrollWidth, window.innerWidth]",
        vec![],
    )
    .await;
    assert!(overflow[0].as_u64() <= overflow[1].as_u64(), "wider than the phone: {overflow}");
    let head = js(client, "return getComputedStyle(document.querySelector('#key-table thead')).display", vec![]).await;
    assert_eq!(head, json!("none"));
    screenshot(client, "console-phone").await;
    client.set_window_size(1360, 900).await.unwrap();

    identities(client).await;
    usage(client, app, base).await;
    // Last: it gives the company a key prefix (and takes it away again), which every key made
    // meanwhile carries.
    company(client, app).await;

    // Nothing any value from the API held ever ran.
    let ran = js(client, "return window.__ran", vec![]).await;
    assert_eq!(ran, json!([]), "script ran from data");

    // Sign-out forgets the key.
    click(client, "#sign-out").await;
    let forgotten = js(client, "return sessionStorage.getItem('apikeys.rootKey')", vec![]).await;
    assert_eq!(forgotten, Value::Null);
}

/// `GET /company`, 200 asserted: the settings and their ETag.
async fn company_of(app: &TestApp) -> (Value, String) {
    let answer = app.send(lambda_http::http::Method::GET, "/company", Some(&app.root_key), None, &[]).await;
    assert_eq!(answer.status, lambda_http::http::StatusCode::OK, "{:?}", answer.body);
    (answer.body.clone(), answer.header("etag").to_owned())
}

/// What the Company tab shows: the prefix (null for none), the policy and the two patterns.
const SHOWN_SETTINGS: &str = r#"
const prefix = document.querySelector('#company-prefix');
return {
  keyPrefix: prefix.querySelector('code')?.textContent ?? (prefix.textContent.startsWith('none') ? null : prefix.textContent),
  leakPolicy: document.querySelector('#company-policy').textContent,
  keyPatterns: {
    secret: document.querySelector('#company-secret-pattern').value,
    publishable: document.querySelector('#company-publishable-pattern').value,
  },
};"#;

/// Waits until the Company tab shows `settings` (the API's answer).
async fn until_shown(client: &Client, what: &str, settings: &Value) {
    let wanted = json!({
        "keyPrefix": settings["keyPrefix"], "leakPolicy": settings["leakPolicy"], "keyPatterns": settings["keyPatterns"],
    });
    let started = Instant::now();
    loop {
        let shown = js(client, SHOWN_SETTINGS, vec![]).await;
        if shown == wanted {
            return;
        }
        assert!(started.elapsed() < PATIENCE, "waited for {what}: {wanted}; the page shows {shown}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The Company tab: the settings as `GET /company` answers them; a unique prefix (and the
/// notify policy) saved, shown with its patterns and leading the secret of a key made in the
/// console; a bad prefix refused next to its field; a change made elsewhere meanwhile met with
/// the 412 and the current settings shown; the tab at a phone's width; back to no prefix.
async fn company(client: &Client, app: &TestApp) {
    let (before, etag) = company_of(app).await;
    assert_eq!((&before["keyPrefix"], &before["leakPolicy"], etag.as_str()), (&Value::Null, &json!("revoke"), "\"0\""));
    click(client, "#tab-company").await;
    until_shown(client, "the settings", &before).await;
    assert!(text_of(client, "#company-prefix").await.starts_with("none"));
    assert_eq!(js(client, "return document.querySelector('#c-prefix').value", vec![]).await, json!(""));

    let prefix = format!("c{}", &uuid::Uuid::now_v7().simple().to_string()[24..32]);
    fill(client, "#c-prefix", &prefix).await;
    client.find(Locator::Css("#c-policy")).await.unwrap().select_by_value("notify").await.unwrap();
    click(client, "#company-save").await;
    until(client, "the save", "return document.querySelector('#company-status').textContent === 'Saved.'", vec![])
        .await;
    let (saved, etag) = company_of(app).await;
    assert_eq!((&saved["keyPrefix"], &saved["leakPolicy"]), (&json!(prefix), &json!("notify")), "{saved}");
    assert_eq!(etag, "\"1\"", "one change, under the If-Match of the settings shown");
    until_shown(client, "the saved prefix", &saved).await;
    screenshot(client, "console-company").await;
    for (pattern, marker) in [("#company-secret-pattern", "sk"), ("#company-publishable-pattern", "pk")] {
        let shown = js(client, &format!("return document.querySelector('{pattern}').value"), vec![]).await;
        assert!(shown.as_str().unwrap().starts_with(&format!(r"\b{prefix}_{marker}_")), "{shown}");
        let read_only = js(client, &format!("return document.querySelector('{pattern}').readOnly"), vec![]).await;
        assert_eq!(read_only, json!(true));
    }

    // A key made in the console now reads <prefix>_sk_….
    click(client, "#tab-keys").await;
    click(client, "#new-key").await;
    fill(client, "#f-user", "prefixed-user").await;
    click(client, "#key-save").await;
    let (_, secret) = shown_secret(client).await;
    assert!(secret.starts_with(&format!("{prefix}_sk_")), "{secret}");
    click(client, "#secret-dialog button.close").await;

    // A bad prefix: the API's 400 is shown next to the field it names, and nothing changed.
    click(client, "#tab-company").await;
    until_shown(client, "the settings again", &saved).await;
    fill(client, "#c-prefix", "Bad!").await;
    click(client, "#company-save").await;
    let slot = "return document.querySelector('#company-form [data-error-for=keyPrefix]').textContent";
    let refused = until(client, "the keyPrefix error", slot, vec![]).await;
    let refused = refused.as_str().unwrap();
    assert!(refused.contains("keyPrefix") && refused.contains("400"), "{refused}");
    let invalid = js(client, "return document.querySelector('#c-prefix').getAttribute('aria-invalid')", vec![]).await;
    assert_eq!(invalid, json!("true"));
    assert_eq!(company_of(app).await, (saved.clone(), "\"1\"".to_owned()), "the refused change wrote nothing");

    // Changed elsewhere meanwhile: the save is refused (412) and the current settings are shown.
    let elsewhere = app
        .send(
            lambda_http::http::Method::PATCH,
            "/company",
            Some(&app.root_key),
            Some(&json!({ "leakPolicy": "revoke" })),
            &[],
        )
        .await;
    assert_eq!(elsewhere.status, lambda_http::http::StatusCode::OK, "{:?}", elsewhere.body);
    fill(client, "#c-prefix", "").await;
    click(client, "#company-save").await;
    let form_error = "return document.querySelector('#company-form .form-error').textContent";
    let stale = until(client, "the 412", form_error, vec![]).await;
    assert!(stale.as_str().unwrap().contains("412"), "{stale}");
    let (current, _) = company_of(app).await;
    assert_eq!((&current["keyPrefix"], &current["leakPolicy"]), (&json!(prefix), &json!("revoke")));
    until_shown(client, "the settings changed elsewhere", &current).await;
    // What was typed is kept; what was not is the current value, so saving again cannot undo
    // the other change.
    let form = js(
        client,
        "const f = document.querySelector('#company-form').elements; return [f.keyPrefix.value, f.leakPolicy.value]",
        vec![],
    )
    .await;
    assert_eq!(form, json!(["", "revoke"]));

    // At a phone's width the four tabs and the settings fit: nothing scrolls sideways.
    client.set_window_size(390, 844).await.unwrap();
    let widths = until(
        client,
        "the phone width",
        "return window.innerWidth <= 420 && [document.documentElement.scrollWidth, window.innerWidth, \
         Math.ceil(document.querySelector('#tab-company').getBoundingClientRect().right), \
         Math.ceil(document.querySelector('#company-publishable-pattern').getBoundingClientRect().right)]",
        vec![],
    )
    .await;
    let [scroll, window, tab, pattern] = [0, 1, 2, 3].map(|i| widths[i].as_u64().unwrap());
    assert!(scroll <= window && tab <= window && pattern <= window, "wider than the phone: {widths}");
    client.set_window_size(1360, 900).await.unwrap();

    // Saved again: back to no prefix (the emptied field), so keys read sk_… again.
    click(client, "#company-save").await;
    until(
        client,
        "no prefix",
        "return document.querySelector('#company-prefix').textContent.startsWith('none')",
        vec![],
    )
    .await;
    let (after, _) = company_of(app).await;
    assert_eq!((&after["keyPrefix"], &after["leakPolicy"]), (&Value::Null, &json!("revoke")), "{after}");
    until_shown(client, "the settings without a prefix", &after).await;
    assert!(app.create_key(&json!({ "userId": "unprefixed" })).await["key"].as_str().unwrap().starts_with("sk_"));
    click(client, "#tab-keys").await;
}

fn identity_button(id: &str, action: &str) -> String {
    format!("#identity-rows tr[data-identity-id='{id}'] button[aria-label='{action} {id}']")
}

/// Identities: one made with a named limit (a bad one refused by field), changed, given a key
/// from the key dialog, and its keys listed from its row.
async fn identities(client: &Client) {
    click(client, "#tab-identities").await;
    until(client, "the identity list", "return document.querySelector('#identity-total').textContent", vec![]).await;
    click(client, "#new-identity").await;
    fill(client, "#i-external", "console-cust").await;
    fill(client, "#i-meta", r#"{"plan":"<img src=x onerror=alert(1)>"}"#).await;
    fill(client, "#i-ratelimits", r#"[{"name":"Bad","limit":5,"periodSeconds":60}]"#).await;
    click(client, "#identity-save").await;
    let refused = "return document.querySelector('#identity-form [data-error-for=ratelimits]').textContent";
    let message = until(client, "the refused limit's message", refused, vec![]).await;
    assert!(message.as_str().unwrap().contains("ratelimits[0].name"), "{message}");
    fill(client, "#i-ratelimits", r#"[{"name":"requests","limit":5,"periodSeconds":60}]"#).await;
    click(client, "#identity-save").await;
    let row =
        "const r = document.querySelector('#identity-rows tr[data-identity-id]'); return r && r.dataset.identityId";
    let identity = until(client, "the new identity's row", row, vec![]).await.as_str().unwrap().to_owned();
    let shown = text_of(client, &format!("#identity-rows tr[data-identity-id='{identity}']")).await;
    assert!(shown.contains("console-cust") && shown.contains("requests 5/60s"), "{shown}");

    click(client, &identity_button(&identity, "Edit")).await;
    fill(client, "#i-meta", r#"{"plan":"gold"}"#).await;
    click(client, "#identity-save").await;
    let changed = "return document.querySelector('#identity-rows').textContent.includes('gold')";
    until(client, "the changed meta", changed, vec![]).await;

    click(client, "#tab-keys").await;
    click(client, "#new-key").await;
    fill(client, "#f-user", "cust-user").await;
    fill(client, "#f-identity", &identity).await;
    fill(client, "#f-ratelimits", r#"[{"name":"tokens","limit":1000,"periodSeconds":3600}]"#).await;
    click(client, "#key-save").await;
    let (key_id, _) = shown_secret(client).await;
    click(client, "#secret-dialog button.close").await;

    // The tab reloads the list: its rows are drawn anew before one is clicked.
    js(client, "window.__before = document.querySelector('#identity-rows tr')", vec![]).await;
    click(client, "#tab-identities").await;
    let redrawn = "const r = document.querySelector('#identity-rows tr'); return r !== null && r !== window.__before";
    until(client, "the identity list drawn again", redrawn, vec![]).await;
    click(client, &identity_button(&identity, "Keys")).await;
    until_total(client, "1 active key").await;
    assert_eq!(row_ids(client).await, vec![key_id.clone()]);
    assert_eq!(text_of(client, "#identity-filter-id").await, identity);
    let cell = text_of(client, &format!("#key-rows tr[data-key-id='{key_id}'] td[data-label=Identity]")).await;
    assert_eq!(cell, identity);
    screenshot(client, "console-identity-keys").await;
    click(client, "#clear-identity").await;
    until(client, "every key again", "return document.querySelector('#identity-filter').hidden", vec![]).await;
}

/// What a usage chart of the open dialog shows (`arguments[0]`: hour or day): its range, its bars
/// oldest first (start, and the counts it carries, none for an empty bar) and the totals beside
/// its legend (those not zero); null while it is not drawn.
const CHART: &str = r#"
const figure = document.querySelector(`#usage-dialog[open] figure[data-granularity=${arguments[0]}]`);
if (!figure) return null;
const counts = (bar) => Object.fromEntries([...bar.attributes]
  .filter((a) => a.name.startsWith('data-count-')).map((a) => [a.name.slice('data-count-'.length), Number(a.value)]));
const totals = [...figure.querySelectorAll('.legend li')]
  .map((li) => [li.dataset.outcome, Number(li.querySelector('strong').textContent)]).filter(([, n]) => n > 0);
return {
  from: figure.dataset.from, to: figure.dataset.to, totals: Object.fromEntries(totals),
  bars: [...figure.querySelectorAll('g.bar')].map((bar) => ({ start: bar.getAttribute('data-start'), counts: counts(bar) })),
};"#;

/// How far the usage dialog and its charts reach: [dialog scrollWidth, clientWidth, the
/// charts' right edge, the window's width], once both charts are drawn.
const USAGE_WIDTHS: &str = r#"
const d = document.querySelector('#usage-dialog');
const charts = [...d.querySelectorAll('svg')];
return charts.length === 2 && [d.scrollWidth, d.clientWidth,
  Math.ceil(Math.max(...charts.map((c) => c.getBoundingClientRect().right))), window.innerWidth];"#;

/// Verifies through the served API (`POST {base}/keys/verify`), as a caller would, so the local
/// server counts each one; answers the codes in order.
async fn verify_served(base: &str, root_key: &str, body: &Value, times: usize) -> Vec<String> {
    use http_body_util::{BodyExt, Full};
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let mut codes = Vec::new();
    for _ in 0..times {
        let request = lambda_http::http::Request::post(format!("{base}/keys/verify"))
            .header("authorization", format!("Bearer {root_key}"))
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from(body.to_string())))
            .unwrap();
        let answer = http.request(request).await.expect("the served API answers");
        let answer: Value = serde_json::from_slice(&answer.into_body().collect().await.unwrap().to_bytes()).unwrap();
        codes.push(answer["code"].as_str().unwrap_or_default().to_owned());
    }
    codes
}

/// `GET {path}/usage{query}`, 200 asserted.
async fn usage_of(app: &TestApp, path: &str, query: &str) -> Value {
    let answer =
        app.send(lambda_http::http::Method::GET, &format!("{path}/usage{query}"), Some(&app.root_key), None, &[]).await;
    assert_eq!(answer.status, lambda_http::http::StatusCode::OK, "{path}/usage{query}: {:?}", answer.body);
    answer.body
}

/// Waits (polling the API, bounded) until the local server has counted what was verified: its
/// counting runs a moment after each verify answers.
async fn until_counted(app: &TestApp, path: &str, query: &str, totals: &Value) {
    let started = Instant::now();
    loop {
        let usage = usage_of(app, path, query).await;
        if usage["totals"] == *totals {
            return;
        }
        assert!(started.elapsed() < PATIENCE, "{path}/usage{query} never reached {totals}: {usage}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The open usage dialog's two charts against the API's answers for the same ranges: the same
/// totals, a bar for every hour (day) of the range carrying the API's counts for it, zero where
/// the API left the bucket out, and the last bar the current hour (day), holding `current`.
async fn the_charts_show_the_apis_usage(client: &Client, app: &TestApp, path: &str, current: &Value) {
    let now = app.clock.now();
    for (granularity, bars) in [(Granularity::Hour, 25), (Granularity::Day, 30)] {
        let name = if granularity == Granularity::Hour { "hour" } else { "day" };
        let chart = until(client, &format!("the {name} chart of {path}"), CHART, vec![json!(name)]).await;
        let (from, to) = (chart["from"].as_str().unwrap(), chart["to"].as_str().unwrap());
        let api = usage_of(app, path, &format!("?granularity={name}&from={from}&to={to}")).await;
        assert_eq!(chart["totals"], api["totals"], "{name} totals of {path}");
        let drawn: Vec<&Value> =
            chart["bars"].as_array().unwrap().iter().filter(|b| b["counts"] != json!({})).collect();
        let counted: Vec<&Value> = api["buckets"].as_array().unwrap().iter().collect();
        assert_eq!(drawn, counted, "the {name} bars with counts of {path} are the API's buckets");
        let all = chart["bars"].as_array().unwrap();
        assert_eq!(all.len(), bars, "every {name} of the range, the empty ones too: {chart}");
        let this = granularity.start_of(now).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        assert_eq!(all[bars - 1], json!({ "start": this, "counts": current }), "the current {name}");
    }
    // The hours are the API's own last 24 hours: what `GET …/usage` answers by default.
    let chart = js(client, CHART, vec![json!("hour")]).await;
    let default = usage_of(app, path, "").await;
    assert_eq!((&chart["from"], &chart["to"]), (&default["from"], &default["to"]));
}

/// Usage: a key (rate limit 7 a minute) verified 9 times through the served API in the current
/// hour, 7 VALID and 2 RATE_LIMITED; another key of its identity verified over the days before
/// (some FORBIDDEN). Once the API counts them, the key's and the identity's charts show the
/// API's numbers, and fit a phone's width.
async fn usage(client: &Client, app: &TestApp, base: &str) {
    // Half an hour into the day, as a clock that is not frozen always is: the API's last 24
    // hours (which end at now) then hold the current hour.
    let now = app.clock.now() + TimeDelta::minutes(30);
    let set_clock = |at: DateTime<Utc>| app.clock.advance(at - app.clock.now());
    set_clock(now - TimeDelta::hours(50));
    let identity = app.create_identity("usage-cust").await["id"].as_str().unwrap().to_owned();
    let rate = json!({ "userId": "usage", "identityId": identity, "rateLimit": { "limit": 7, "periodSeconds": 60 } });
    let (key, secret) = app.create_key_pair(&rate).await;
    let acl = json!({ "userId": "usage-b", "identityId": identity, "acl": [{ "permissions": ["orders:read"] }] });
    let (_, other) = app.create_key_pair(&acl).await;
    // The other key's history: (hours before now, VALID, FORBIDDEN).
    let history = [(50, 4, 1), (26, 6, 0), (20, 3, 2), (9, 5, 1), (4, 2, 0)];
    for (hours, valid, forbidden) in history {
        set_clock(now - TimeDelta::hours(hours));
        let codes = verify_served(base, &app.root_key, &json!({ "key": other }), valid).await;
        assert!(codes.iter().all(|c| c == "VALID"), "{codes:?}");
        let asked = json!({ "key": other, "permissions": ["orders:write"] });
        let codes = verify_served(base, &app.root_key, &asked, forbidden).await;
        assert!(codes.iter().all(|c| c == "FORBIDDEN"), "{codes:?}");
    }
    set_clock(now);
    let codes = verify_served(base, &app.root_key, &json!({ "key": secret }), 9).await;
    assert_eq!(codes, [vec!["VALID"; 7], vec!["RATE_LIMITED"; 2]].concat());
    let current = json!({ "VALID": 7, "RATE_LIMITED": 2 });
    let (key_path, identity_path) = (format!("/keys/{key}"), format!("/identities/{identity}"));
    until_counted(app, &key_path, "", &current).await;
    let month_ago = (now - TimeDelta::days(29)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let days = format!("?granularity=day&from={month_ago}");
    let every = json!({ "VALID": 7 + 4 + 6 + 3 + 5 + 2, "RATE_LIMITED": 2, "FORBIDDEN": 4 });
    until_counted(app, &identity_path, &days, &every).await;

    // The identity's usage, from its row in the Identities view.
    js(client, "window.__before = document.querySelector('#identity-rows tr')", vec![]).await;
    click(client, "#tab-identities").await;
    let redrawn = "const r = document.querySelector('#identity-rows tr'); return r !== null && r !== window.__before";
    until(client, "the identity list drawn again", redrawn, vec![]).await;
    click(client, &identity_button(&identity, "Usage")).await;
    the_charts_show_the_apis_usage(client, app, &identity_path, &current).await;
    assert_eq!(text_of(client, "#usage-dialog .dialog-key").await, identity);
    screenshot(client, "console-usage").await;
    click(client, "#usage-dialog button.close").await;

    // The key's, from its row, among the identity's keys.
    click(client, &identity_button(&identity, "Keys")).await;
    until_total(client, "2 active keys").await;
    click(client, &row_button(&key, "Usage")).await;
    the_charts_show_the_apis_usage(client, app, &key_path, &current).await;
    click(client, "#usage-dialog button.close").await;

    // At a phone's width the charts are drawn to fit: nothing in the dialog scrolls sideways.
    client.set_window_size(390, 844).await.unwrap();
    until(client, "the phone width", "return window.innerWidth <= 420", vec![]).await;
    click(client, &row_button(&key, "Usage")).await;
    let widths = until(client, "the charts at a phone's width", USAGE_WIDTHS, vec![]).await;
    let [scroll, inner, right, window] = [0, 1, 2, 3].map(|i| widths[i].as_u64().unwrap());
    assert!(scroll <= inner && right <= window, "wider than the phone: {widths}");
    the_charts_show_the_apis_usage(client, app, &key_path, &current).await;
    click(client, "#usage-dialog button.close").await;
    client.set_window_size(1360, 900).await.unwrap();
    click(client, "#clear-identity").await;
    until(client, "every key again", "return document.querySelector('#identity-filter').hidden", vec![]).await;
}

/// The `console` and `me` binaries under a Lambda Runtime API, on their sample events: the
/// console answers its asset with its headers, `/me` the root key's company.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_and_me_functions_answer_their_events_under_the_lambda_runtime() {
    let app = spawn_app().await;
    let mut console = Function::start("console", &app.table, &[]).await;
    let answer = console.invoke(read_event("console")).await.expect("the console answers");
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(answer["headers"]["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(answer["headers"]["content-security-policy"], apikeys::entry::http::console::CONTENT_SECURITY_POLICY);
    assert_eq!(answer["headers"]["x-content-type-options"], "nosniff");
    assert_eq!(answer["headers"]["referrer-policy"], "no-referrer");
    assert!(answer["body"].as_str().is_some_and(|js| js.contains("sessionStorage")), "the script");
    console.stop().await;

    let event = with_root_key(read_event("me"), &app.root_key);
    let mut me = Function::start("me", &app.table, &[]).await;
    let (status, body) = me.call(event).await;
    assert_eq!((status, &body["companyId"]), (200, &json!(app.company.to_string())), "{body}");
    assert_eq!(body["permissions"], json!(["keys:*"]));
    me.stop().await;
}
