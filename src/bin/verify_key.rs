//! Lambda function for `POST /keys/verify`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    apikeys::entry::lambda::run_endpoint(apikeys::entry::http::Endpoint::VerifyKey).await
}
