//! Lambda REQUEST authorizer (payload 2.0, simple responses) for every management route.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    apikeys::http::lambda::run_authorizer().await
}
