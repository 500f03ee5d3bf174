//! Lambda function behind the `Custom::RootKey` resource: mints a company's root key into Secrets Manager.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    apikeys::entry::root_key_resource::run().await
}
