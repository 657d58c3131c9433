//! The outbox port: webhook endpoints, the events committed with the run
//! writes that cause them, their deliveries (claimed under a lease like
//! runs, so any node delivers and none twice at once) and every attempt.
//! Which events a write produces is decided by `notify::run_events` (pure);
//! the stores only append them in the same transaction.

use super::Result;
use crate::notify::{EndpointNext, Filter, Next};
use async_trait::async_trait;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub filter: Filter,
    /// The signing secret, sealed by the secret box.
    pub secret: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub filter: Filter,
    pub secret: Vec<u8>,
    pub enabled: bool,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
    /// The first failure since the last success.
    pub failing_since: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        match s {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// One attempt to POST an event to an endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRow {
    pub at: i64,
    pub status_code: Option<i64>,
    pub duration_ms: i64,
    /// The first bytes of the answer.
    pub response: Option<String>,
    /// Why no answer came (timeout, refused connection).
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub seq: i64,
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    /// The run (or, for system events, the endpoint) whose events are
    /// delivered in `sequence` order.
    pub subject: String,
    pub run_id: Option<String>,
    pub sequence: i64,
    pub occurred_at: i64,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_at: i64,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    /// Oldest first (filled by `list_deliveries`).
    pub attempt_log: Vec<AttemptRow>,
}

/// A delivery held by one node: everything needed to POST it.
#[derive(Debug, Clone)]
pub struct DeliveryClaim {
    pub delivery: DeliveryRow,
    pub token: i64,
    pub url: String,
    pub secret: Vec<u8>,
    /// The event's data as committed (a run event: `notify::snapshot`).
    pub data: Value,
    pub failing_since: Option<i64>,
}

/// The outcome of one attempt, fenced by the claim's token.
#[derive(Debug, Clone)]
pub struct AttemptWrite {
    pub seq: i64,
    pub token: i64,
    pub endpoint_id: String,
    pub attempt: AttemptRow,
    pub next: Next,
    pub endpoint: EndpointNext,
}

#[async_trait]
pub trait Outbox: Send + Sync {
    async fn create_endpoint(&self, e: NewEndpoint) -> Result<EndpointRow>;
    async fn list_endpoints(&self) -> Result<Vec<EndpointRow>>;
    async fn get_endpoint(&self, id: String) -> Result<EndpointRow>;
    /// Removes the endpoint with its deliveries and their attempts.
    async fn delete_endpoint(&self, id: String) -> Result<()>;
    /// Enabled again, its failure clock reset; its pending deliveries are due now.
    async fn enable_endpoint(&self, id: String) -> Result<EndpointRow>;
    /// Newest first, with each delivery's attempts.
    async fn list_deliveries(&self, endpoint_id: String, limit: usize) -> Result<Vec<DeliveryRow>>;
    /// A new delivery of the same event to the same endpoint (same event id), due now.
    async fn redeliver(&self, delivery_id: String) -> Result<DeliveryRow>;
    /// Up to `limit` due deliveries for `owner` under a lease of `lease_ms`:
    /// pending, due, of an enabled endpoint, with no earlier pending event of
    /// the same run for the same endpoint, and not held (or the holder's lease expired).
    async fn claim_deliveries(
        &self,
        owner: String,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<DeliveryClaim>>;
    /// Record attempts and their consequences, in one transaction; for each,
    /// `false` when its lease was lost (nothing written for it).
    async fn record_attempts(&self, w: Vec<AttemptWrite>) -> Result<Vec<bool>>;
    /// Deliveries not yet delivered nor failed for good.
    async fn outbox_backlog(&self) -> Result<i64>;
    /// The earliest time a pending delivery of an enabled endpoint is due.
    async fn next_delivery_due(&self) -> Result<Option<i64>>;
}
