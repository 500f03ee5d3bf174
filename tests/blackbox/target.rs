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
    /// A root key of a third company, whose settings (its key prefix) a check may change
    /// without touching the keys the other checks make (`APIKEYS_THIRD_ROOT_KEY`; optional).
    pub third_root_key: Option<String>,
    /// The key that signs secret scanning reports the server trusts, and its identifier (the
    /// in-process server trusts one made here; `APIKEYS_SCANNING_SIGNING_KEY` as hex of the
    /// P-256 secret scalar and `APIKEYS_SCANNING_KEY_ID` for another; optional).
    pub scanner: Option<(p256::ecdsa::SigningKey, String)>,
}

/// The public half of a P-256 key as GitHub's public-keys document lists it (SPKI PEM).
pub fn trusted_keys_document(key: &p256::ecdsa::SigningKey, id: &str) -> String {
    use base64::Engine;
    let mut der = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").expect("hex");
    der.extend_from_slice(key.verifying_key().to_sec1_point(false).as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|line| std::str::from_utf8(line).expect("base64")).collect();
    let pem = format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"));
    serde_json::json!({ "public_keys": [{ "key_identifier": id, "key": pem, "is_current": true }] }).to_string()
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
        third_root_key: std::env::var("APIKEYS_THIRD_ROOT_KEY").ok().filter(|v| !v.is_empty()),
        scanner: std::env::var("APIKEYS_SCANNING_SIGNING_KEY").ok().and_then(|raw| {
            let key = p256::ecdsa::SigningKey::from_slice(&hex::decode(raw.trim()).ok()?).ok()?;
            Some((key, std::env::var("APIKEYS_SCANNING_KEY_ID").unwrap_or_default()))
        }),
    }
}

/// The local server on 127.0.0.1 and a free port, on a fresh table of DYNAMODB_ENDPOINT, in a
/// thread of its own (each test has its own runtime; the server outlives them all).
fn start_local_server() -> Target {
    assert!(
        std::env::var("DYNAMODB_ENDPOINT").is_ok(),
        "without APIKEYS_BASE_URL the suite starts the local server on DynamoDB Local: run it with `make test`, or set DYNAMODB_ENDPOINT"
    );
    let scanner = std::iter::repeat_with(rand::random::<[u8; 32]>)
        .find_map(|bytes| p256::ecdsa::SigningKey::from_slice(&bytes).ok())
        .expect("a P-256 key");
    let scanner_id = "blackbox-scanner".to_owned();
    let document = trusted_keys_document(&scanner, &scanner_id);
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime for the local server");
        runtime.block_on(async move {
            let settings = apikeys::settings::Settings::from_env().expect("the test environment's settings");
            let client = aws_sdk_dynamodb::Client::new(&sdk_config(&settings.database).await);
            let table = format!("blackbox-{}", uuid::Uuid::now_v7().simple());
            create_table(&client, &table).await.expect("create the suite's table");
            let mut app = App::new(DynamoStore::new(client, &table), Arc::new(SystemClock));
            // As SECRET_SCANNING_PUBLIC_KEYS holding the suite's scanner key would set it.
            let trusted = apikeys::model::secret_scanning::TrustedKeys::parse(&document).expect("the document");
            app.scanning_keys = Some(Arc::new(trusted));
            let mut root_keys = Vec::new();
            for company in ["blackbox-one", "blackbox-two", "blackbox-three"] {
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
    let third_root_key = root_keys.pop();
    let other_root_key = root_keys.pop().expect("two root keys");
    let root_key = root_keys.pop().expect("two root keys");
    let scanner = Some((scanner, scanner_id));
    Target { base_url, root_key, other_root_key, served_by: ServedBy::Local, third_root_key, scanner }
}
