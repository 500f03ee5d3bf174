//! The one definition of the table: attribute names, indexes, TTL and stream. The store, the
//! local stack, the tests and the template check (tests/template.rs) all read it from here.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};

/// The table's partition key attribute (a string).
pub const PARTITION_KEY: &str = "pk";
/// The table's sort key attribute (a string).
pub const SORT_KEY: &str = "sk";
/// Epoch seconds after which DynamoDB may delete an item (retention, lapsed idempotency records).
pub const TTL_ATTRIBUTE: &str = "ttl";
/// The stream carries old images: the stream function reads a TTL-removed key's company and status.
pub const STREAM_VIEW: &str = "NEW_AND_OLD_IMAGES";

/// A global secondary index: its name and key attributes (both strings), projecting all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    /// The index's name, as queries give it.
    pub name: &'static str,
    /// Its partition key attribute.
    pub partition_key: &'static str,
    /// Its sort key attribute.
    pub sort_key: &'static str,
}

/// A company's keys by creation time, all statuses; and, under another partition, its identities.
pub const COMPANY_INDEX: Index = Index { name: "gsi1", partition_key: "gsi1pk", sort_key: "gsi1sk" };
/// A company's keys of one status by creation time.
pub const STATUS_INDEX: Index = Index { name: "gsi2", partition_key: "gsi2pk", sort_key: "gsi2sk" };
/// An identity's keys of one status by creation time: sparse, only keys that name an identity
/// and are not deleted carry its attributes.
pub const IDENTITY_INDEX: Index = Index { name: "gsi3", partition_key: "gsi3pk", sort_key: "gsi3sk" };
/// Every index of the table, as created and as template.yaml declares them.
pub const INDEXES: [Index; 3] = [COMPANY_INDEX, STATUS_INDEX, IDENTITY_INDEX];

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder().attribute_name(name).key_type(kind).build().expect("name and type are set")
}

fn string_attribute(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("name and type are set")
}

/// Creates the table as template.yaml declares it (on-demand, both indexes, stream, TTL) and
/// waits until it is active. Used by `make run` and by every test for its own table.
pub async fn create_table(client: &Client, name: &str) -> Result<(), aws_sdk_dynamodb::Error> {
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PARTITION_KEY, KeyType::Hash))
        .key_schema(key(SORT_KEY, KeyType::Range))
        .attribute_definitions(string_attribute(PARTITION_KEY))
        .attribute_definitions(string_attribute(SORT_KEY))
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(STREAM_VIEW))
                .build()
                .expect("enabled is set"),
        );
    for index in INDEXES {
        request = request
            .attribute_definitions(string_attribute(index.partition_key))
            .attribute_definitions(string_attribute(index.sort_key))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index.name)
                    .key_schema(key(index.partition_key, KeyType::Hash))
                    .key_schema(key(index.sort_key, KeyType::Range))
                    .projection(Projection::builder().projection_type(ProjectionType::All).build())
                    .build()
                    .expect("name and keys are set"),
            );
    }
    // A create retried after its first attempt went through (a timeout on a slow DynamoDB
    // Local) finds the table there: it is the same table, so carry on.
    let retried = match request.send().await {
        Ok(_) => false,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => true,
        Err(e) => return Err(e.into()),
    };
    let ttl = client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build()
                .expect("fields are set"),
        )
        .send()
        .await;
    match ttl {
        // TTL may already be on, if the first attempt got that far too.
        Err(_) if retried => Ok(()),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

/// Creates the table unless it exists, for `make run` against a long-lived DynamoDB Local.
pub async fn ensure_table(client: &Client, name: &str) -> Result<(), aws_sdk_dynamodb::Error> {
    match client.describe_table().table_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
            create_table(client, name).await
        }
        Err(e) => Err(e.into()),
    }
}
