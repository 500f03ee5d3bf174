//! What the suite talks to: a base URL, two companies' root keys and which server it is, from
//! the environment, or the local server started here in process when no URL is given.

use std::sync::{Arc, OnceLock};

use apikeys::domain::SystemClock;
use apikeys::domain::keys::create_root_key;
use apikeys::entry::config::{App, sdk_config};
use apikeys::model::CompanyId;
use apikeys::store::DynamoStore;
use apikeys::store::table::create_table;

use crate::differences::ServedBy;

#[derive(Debug)]
pub struct Target {
    /// Without a trailing slash; paths are appended to it.
    pub base_url: String,
    /// A root key (`keys:*`) of one company.
    pub root_key: String,
    /// A root key (`keys:*`) of another company.
    pub other_root_key: String,
    pub served_by: ServedBy,
}

/// The one target of this run, set up on first use.
pub fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| match std::env::var("APIKEYS_BASE_URL") {
        Ok(url) if !url.is_empty() => from_env(url),
        _ => start_local_server(),
    })
}

fn from_env(url: String) -> Target {
    let required = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| panic!("APIKEYS_BASE_URL is set: set {name} too"))
    };
    Target {
        base_url: url.trim_end_matches('/').to_owned(),
        root_key: required("APIKEYS_ROOT_KEY"),
        other_root_key: required("APIKEYS_OTHER_ROOT_KEY"),
        served_by: ServedBy::parse(&std::env::var("APIKEYS_SERVED_BY").unwrap_or_else(|_| "deployed".into())),
    }
}

/// The local server on 127.0.0.1 and a free port, on a fresh table of DYNAMODB_ENDPOINT, in a
/// thread of its own (each test has its own runtime; the server outlives them all).
fn start_local_server() -> Target {
    assert!(
        std::env::var("DYNAMODB_ENDPOINT").is_ok(),
        "without APIKEYS_BASE_URL the suite starts the local server on DynamoDB Local: run it with `make test`, or set DYNAMODB_ENDPOINT"
    );
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime for the local server");
        runtime.block_on(async move {
            let settings = apikeys::settings::Settings::from_env().expect("the test environment's settings");
            let client = aws_sdk_dynamodb::Client::new(&sdk_config(&settings.database).await);
            let table = format!("blackbox-{}", uuid::Uuid::now_v7().simple());
            create_table(&client, &table).await.expect("create the suite's table");
            let app = App::new(DynamoStore::new(client, &table), Arc::new(SystemClock));
            let mut root_keys = Vec::new();
            for company in ["blackbox-one", "blackbox-two"] {
                let company = CompanyId::parse(company, "company").expect("a company id");
                let created = create_root_key(&app.store, company, Some("black-box suite".into()), app.clock.now())
                    .await
                    .expect("a root key");
                root_keys.push(created.plaintext.expect("a new key's secret").expose().to_owned());
            }
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
            let url = format!("http://{}", listener.local_addr().expect("the port"));
            sender.send((url, root_keys)).expect("the suite waits for the server");
            apikeys::entry::local::serve(app, listener, std::future::pending()).await.expect("the local server");
        });
    });
    let (base_url, mut root_keys) = receiver.recv().expect("the local server started");
    let other_root_key = root_keys.pop().expect("two root keys");
    let root_key = root_keys.pop().expect("two root keys");
    Target { base_url, root_key, other_root_key, served_by: ServedBy::Local }
}
