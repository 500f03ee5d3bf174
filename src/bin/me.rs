//! Lambda function for `GET /me`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    apikeys::http::lambda::run_endpoint(apikeys::http::Endpoint::Me).await
}
