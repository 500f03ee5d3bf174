//! The local server's usage counting: it has no log group for a subscription filter, so verify
//! hands each verification to a queue, and one task counts whatever has arrived as one batch
//! with the aggregator's own counting (`domain::usage::count_verifications`), then lets the
//! next batch gather for half a second. The lag is that, and one batch's writes.

use tokio::sync::mpsc;

use crate::domain::usage::count_verifications;
use crate::model::usage::Verification;
use crate::store::UsageHistory;

/// Verifications the local server counts in process, as the subscription filter and the
/// aggregator do in AWS.
#[derive(Debug, Clone)]
pub struct LocalFeed(mpsc::Sender<Verification>);

/// How long the counting task lets verifications gather after each batch.
const GATHER: std::time::Duration = std::time::Duration::from_millis(500);

/// The most verifications waiting to be counted locally; more are dropped (and logged).
const LOCAL_QUEUE: usize = 10_000;

impl LocalFeed {
    /// Starts the counting task on `store` (on the current tokio runtime).
    pub fn start<S: UsageHistory + Send + 'static>(store: S) -> Self {
        let (sender, mut receiver) = mpsc::channel::<Verification>(LOCAL_QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while receiver.recv_many(&mut batch, LOCAL_QUEUE).await > 0 {
                let name = format!("local-{}", uuid::Uuid::now_v7().simple());
                if let Err(e) = count_verifications(&store, &name, &batch).await {
                    tracing::error!(error = %e, verifications = batch.len(), "local usage batch not counted");
                }
                batch.clear();
                // Gathers what arrives meanwhile into the next batch, as a log group gathers
                // lines: one transaction per pause rather than one per verify.
                tokio::time::sleep(GATHER).await;
            }
        });
        Self(sender)
    }

    /// Queues one verification; a full queue drops it.
    pub fn send(&self, verification: Verification) {
        if self.0.try_send(verification).is_err() {
            tracing::warn!("local usage queue full: a verification is not counted");
        }
    }
}
