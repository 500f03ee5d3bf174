//! Lambda function on the table's stream: keeps company counters exact when TTL removes keys.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    apikeys::entry::stream::run().await
}
