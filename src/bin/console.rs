//! Lambda function for `GET /console` and `GET /console/{asset}`: the key console's page.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    apikeys::entry::lambda::run_console().await
}
