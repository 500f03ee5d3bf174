//! The operator CLI: `apikeys root-key create --company <companyId> [--description TEXT]`, and
//! `apikeys smoke --url <ApiUrl> --root-key <key>`, the check of a served API.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    apikeys::entry::cli::run(std::env::args().skip(1).collect()).await
}
