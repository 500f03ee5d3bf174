//! Lambda function for `GET /keys/{keyId}/events`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    apikeys::http::lambda::run_endpoint(apikeys::http::Endpoint::ListKeyEvents).await
}
