//! The outbox on PostgreSQL (placeholder until the SQL lands).

use super::PgStore;
use crate::store::{
    AttemptWrite, DeliveryClaim, DeliveryRow, EndpointRow, NewEndpoint, Outbox, Result, StoreError,
};
use async_trait::async_trait;

fn todo<T>() -> Result<T> {
    Err(StoreError::Backend(
        "outbound notifications are not yet available on PostgreSQL".into(),
    ))
}

#[async_trait]
impl Outbox for PgStore {
    async fn create_endpoint(&self, _e: NewEndpoint) -> Result<EndpointRow> {
        todo()
    }
    async fn list_endpoints(&self) -> Result<Vec<EndpointRow>> {
        Ok(vec![])
    }
    async fn get_endpoint(&self, _id: String) -> Result<EndpointRow> {
        Err(StoreError::NotFound("webhook endpoint"))
    }
    async fn delete_endpoint(&self, _id: String) -> Result<()> {
        Err(StoreError::NotFound("webhook endpoint"))
    }
    async fn enable_endpoint(&self, _id: String) -> Result<EndpointRow> {
        Err(StoreError::NotFound("webhook endpoint"))
    }
    async fn list_deliveries(&self, _id: String, _limit: usize) -> Result<Vec<DeliveryRow>> {
        Err(StoreError::NotFound("webhook endpoint"))
    }
    async fn redeliver(&self, _id: String) -> Result<DeliveryRow> {
        Err(StoreError::NotFound("delivery"))
    }
    async fn claim_deliveries(
        &self,
        _o: String,
        _l: usize,
        _ms: i64,
    ) -> Result<Vec<DeliveryClaim>> {
        Ok(vec![])
    }
    async fn record_attempt(&self, _w: AttemptWrite) -> Result<bool> {
        Ok(false)
    }
    async fn outbox_backlog(&self) -> Result<i64> {
        Ok(0)
    }
    async fn next_delivery_due(&self) -> Result<Option<i64>> {
        Ok(None)
    }
}
