//! The operator CLI and the local server's start-up: the two entry points that are not Lambda.

use std::process::ExitCode;

use crate::domain::keys::create_root_key;
use crate::entry::config;
use crate::model::{CompanyId, PlaintextKey};
use crate::store::table::ensure_table;

const USAGE: &str = "usage: apikeys root-key create --company <companyId> [--description TEXT]
       APIKEYS_ROOT_KEY=<key> apikeys smoke --url <ApiUrl>

root-key create: creates a root key (ACL keys:*) for a company and prints it as JSON, with its
plaintext `key`, on stdout. Reads TABLE_NAME (default apikeys) and DYNAMODB_ENDPOINT (DynamoDB
Local; then the table is created if missing, and region and credentials default to dummies).

smoke: walks one key (description \"smoke <time>\") through create, get, list, verify, patch,
roll and delete against the API at <ApiUrl>, one line per request with its status and latency;
exits 1 at the first answer that breaks the contract, after deleting the key. Prints no secret.
The root key comes from APIKEYS_ROOT_KEY (or --root-key, which other users of the machine can
see in its process list); plain http only to this machine.";

struct RootKeyArgs {
    company: CompanyId,
    description: Option<String>,
}

/// Where `apikeys smoke` reads its root key.
const ROOT_KEY_VARIABLE: &str = "APIKEYS_ROOT_KEY";

struct SmokeArgs {
    url: String,
    root_key: String,
}

/// `--flag value` pairs into (flag, value), or what is wrong with them.
fn flags<'a>(rest: &[&'a str]) -> Result<Vec<(&'a str, &'a str)>, String> {
    rest.chunks(2)
        .map(|pair| match pair {
            [flag, value] => Ok((*flag, *value)),
            flag => Err(format!("{} needs a value", flag.concat())),
        })
        .collect()
}

fn parse_smoke_args(rest: &[&str]) -> Result<SmokeArgs, String> {
    let (mut url, mut root_key) = (None, None);
    for (flag, value) in flags(rest)? {
        match flag {
            "--url" => url = Some(value.to_owned()),
            "--root-key" => root_key = Some(value.to_owned()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    // The environment keeps the key out of the process list.
    let root_key = root_key.or_else(|| std::env::var(ROOT_KEY_VARIABLE).ok().filter(|k| !k.is_empty()));
    Ok(SmokeArgs {
        url: url.ok_or("--url is required")?,
        root_key: root_key.ok_or(format!("{ROOT_KEY_VARIABLE} (or --root-key) is required"))?,
    })
}

fn parse_args(args: &[String]) -> Result<RootKeyArgs, String> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let ["root-key", "create", rest @ ..] = words.as_slice() else {
        return Err("unknown command".into());
    };
    let (mut company, mut description) = (None, None);
    for (flag, value) in flags(rest)? {
        match flag {
            "--company" => company = Some(CompanyId::parse(value, "--company").map_err(|e| e.message)?),
            "--description" => description = Some(value.to_owned()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(RootKeyArgs { company: company.ok_or("--company is required")?, description })
}

pub async fn run(args: Vec<String>) -> ExitCode {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if args.first().is_some_and(|a| a == "smoke") {
        let words: Vec<&str> = args[1..].iter().map(String::as_str).collect();
        // An argument may be the root key (an empty `$URL` unquoted shifts it into a flag's
        // place, or the two are swapped): a problem is printed with anything key-like taken out.
        return match parse_smoke_args(&words) {
            Ok(parsed) => smoke(&parsed).await,
            Err(problem) => usage_error(&crate::entry::smoke::redacted(&problem, "")),
        };
    }
    let parsed = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(problem) => return usage_error(&problem),
    };
    let (settings, app) = match config::start().await {
        Ok(started) => started,
        Err(e) => {
            eprintln!("apikeys: {e}");
            return ExitCode::from(2);
        }
    };
    if settings.database.endpoint.is_some()
        && let Err(e) = ensure_table(app.store.client(), app.store.table()).await
    {
        eprintln!("apikeys: cannot reach or create table {}: {e}", app.store.table());
        return ExitCode::FAILURE;
    }
    match create_root_key(&app.store, parsed.company, parsed.description, app.clock.now()).await {
        Ok(created) => {
            // As a JSON tree, so with its fields in alphabetical order, as it has always printed.
            let shown = serde_json::to_value(created.view()).unwrap_or_default();
            println!("{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("apikeys: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(problem: &str) -> ExitCode {
    eprintln!("apikeys: {problem}\n\n{USAGE}");
    ExitCode::from(2)
}

/// `apikeys smoke`: 0 when every answer kept the contract, 1 at the first that did not, 2 when
/// the check could not start (a bad URL).
async fn smoke(args: &SmokeArgs) -> ExitCode {
    match crate::entry::smoke::run(&args.url, &args.root_key, &mut std::io::stdout()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(problem) => usage_error(&crate::entry::smoke::redacted(&problem, &args.root_key)),
    }
}

/// `make run`: table, demo root key (for `DEMO_COMPANY`), then serve on `PORT` until Ctrl-C.
pub async fn run_local_server() -> ExitCode {
    let (settings, app) = match config::start().await {
        Ok(started) => started,
        Err(e) => {
            eprintln!("local server: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = ensure_table(app.store.client(), app.store.table()).await {
        eprintln!("local server: cannot reach or create table {}: {e}", app.store.table());
        return ExitCode::FAILURE;
    }
    let port = settings.port;
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("local server: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(company) = settings.demo_company {
        match create_root_key(&app.store, company.clone(), Some("demo root key from make run".into()), app.clock.now())
            .await
        {
            Ok(created) => {
                let key = created.plaintext.as_ref().map(PlaintextKey::expose).unwrap_or_default();
                println!("\nA root key for company '{company}':\n\n  export ROOT_KEY={key}\n");
                println!("The key console: http://127.0.0.1:{port}/console (sign in with that root key)\n");
                println!(
                    "Try it:\n\n  curl -s -X POST http://127.0.0.1:{port}/keys -H \"Authorization: Bearer $ROOT_KEY\" \\\n    -H 'content-type: application/json' -d '{{\"userId\":\"user-1\"}}'\n"
                );
            }
            Err(e) => eprintln!("local server: could not create the demo root key: {e}"),
        }
    }
    println!(
        "Serving the API on http://127.0.0.1:{port} and the console on http://127.0.0.1:{port}/console (Ctrl-C stops)"
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let served = crate::entry::local::serve(app, listener, shutdown).await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("local server: {e}");
            ExitCode::FAILURE
        }
    }
}
