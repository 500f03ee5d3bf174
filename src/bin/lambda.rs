//! Every Lambda function of the service: the one its `FUNCTION` names (a route, the console, the
//! table's stream or the root-key resource; see `apikeys::entry::lambda::run`). Built once, as
//! `bootstrap`, for all of them.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    apikeys::entry::lambda::run().await
}
