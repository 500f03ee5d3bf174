//! Lambda function for `POST /keys/verify`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    apikeys::http::lambda::run_endpoint(apikeys::http::Endpoint::VerifyKey).await
}
