//! Every endpoint and the console on one port, through the same handlers as the functions: `make run`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    apikeys::entry::cli::run_local_server().await
}
