//! Approvals, decisions and callbacks on PostgreSQL (`store::waits`).

use super::PgStore;
use crate::store::waits::*;
use crate::store::{Result, StoreError};
use async_trait::async_trait;

fn unsupported<T>() -> Result<T> {
    Err(StoreError::Backend(
        "approvals and callbacks are not available on PostgreSQL yet".into(),
    ))
}

#[async_trait]
impl Waits for PgStore {
    async fn decide(&self, _req: DecisionRequest) -> Result<DecisionOutcome> {
        unsupported()
    }
    async fn approval_by_token(&self, _token_hash: String) -> Result<Option<TokenApproval>> {
        unsupported()
    }
    async fn list_approvals(&self, _filter: ApprovalFilter) -> Result<Vec<ApprovalRow>> {
        unsupported()
    }
    async fn receive_callback(&self, _cb: CallbackIn) -> Result<CallbackOutcome> {
        unsupported()
    }
    async fn claim_approval_mails(
        &self,
        _lease_ms: i64,
        _limit: usize,
    ) -> Result<Vec<ApprovalMail>> {
        Ok(vec![])
    }
    async fn approval_mail_done(&self, _token_hash: String, _retry_at: Option<i64>) -> Result<()> {
        Ok(())
    }
}
