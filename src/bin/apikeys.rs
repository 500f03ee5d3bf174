//! The operator CLI: `apikeys root-key create --company <companyId> [--description TEXT]`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    apikeys::entry::cli::run(std::env::args().skip(1).collect()).await
}
