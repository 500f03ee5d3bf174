//! Every endpoint on one port, through the real authorizer and handlers: `make run`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    apikeys::cli::run_local_server().await
}
