//! Lambda function for `POST /keys`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    apikeys::http::lambda::run_endpoint(apikeys::http::Endpoint::CreateKey).await
}
