//! The root-key resource's retries: a redelivered request gets its key back, and the record
//! that makes that possible opens only with the seal the request carried, never with its
//! header (a CloudFormation RequestId) alone.

use super::*;
use crate::domain::SealMaterial;
use crate::domain::keys::create_root_key_once;
use crate::model::IdempotencyKey;

fn header() -> IdempotencyKey {
    IdempotencyKey::parse("cloudformation-6f1d0e7c-2d6e-4a3b-9a55-3f0c1d2e4b5a").expect("a valid header")
}

fn seal() -> SealMaterial {
    SealMaterial::of("https://bucket.s3.amazonaws.com/response?X-Amz-Signature=abc123")
}

async fn mint(store: &MemoryStore, seal: SealMaterial) -> Result<keys::WrittenKey, DomainError> {
    create_root_key_once(store, company(), Some("minted".into()), now(), Some((header(), seal))).await
}

#[tokio::test]
async fn a_redelivered_request_gets_the_same_root_key_and_makes_no_second() {
    let store = MemoryStore::new();
    let first = mint(&store, seal()).await.expect("the root key is made");
    let again = mint(&store, seal()).await.expect("the redelivery is answered");
    assert_eq!(again.key.id, first.key.id);
    assert_eq!(again.plaintext.as_ref().map(|p| p.expose()), first.plaintext.as_ref().map(|p| p.expose()));
    assert_eq!(store.snapshot().keys.len(), 1);
}

#[tokio::test]
async fn the_header_without_the_requests_seal_opens_nothing_and_makes_nothing() {
    let store = MemoryStore::new();
    mint(&store, seal()).await.expect("the root key is made");
    let before = store.snapshot();
    for other in [SealMaterial::default(), SealMaterial::of("a guess")] {
        let refused = mint(&store, other).await;
        assert!(matches!(refused, Err(DomainError::RequestInProgress)), "{refused:?}");
    }
    assert_eq!(store.snapshot(), before, "nothing written");
}
