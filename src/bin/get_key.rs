//! Lambda function for `GET /keys/{keyId}`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    apikeys::entry::lambda::run_endpoint(apikeys::entry::http::Endpoint::GetKey).await
}
