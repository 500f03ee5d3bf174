//! Lambda function for `POST /keys/{keyId}/roll`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    apikeys::http::lambda::run_endpoint(apikeys::http::Endpoint::RollKey).await
}
