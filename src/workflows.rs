//! Workflow use cases the REST API and the dashboard share: change a
//! workflow's status (the catalog forgets its cached head at once), and the
//! next occurrence of its schedule. Depends on `store` (ports), `catalog`
//! and `schedule`; knows nothing of HTTP.

use crate::catalog::Catalog;
use crate::store::{Store, StoreError, WorkflowRow};
use crate::workflow::WorkflowStatus;

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// No such workflow, or storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Activate, pause or archive a workflow. The schedule runner notices the
/// change on its next pass; this node's triggers see it at once.
pub async fn set_status(
    store: &Store,
    catalog: &Catalog,
    id: String,
    status: WorkflowStatus,
) -> Result<WorkflowRow, StatusError> {
    let row = store.set_workflow_status(id.clone(), status).await?;
    // The head is read again and the webhook index updated in place.
    if let Err(e) = catalog.workflow_changed(&id).await {
        // Done all the same: the index catches up within its refresh.
        tracing::warn!(workflow_id = %id, error = %e, "cannot refresh the webhook index");
    }
    Ok(row)
}

/// The schedule's next occurrence after `now`, if the workflow has a live
/// schedule (none when paused or archived, or when its definition cannot be
/// read).
pub async fn next_run_at(catalog: &Catalog, row: &WorkflowRow, now: i64) -> Option<i64> {
    let wf = catalog.version(&row.id, row.latest_version).await.ok()?;
    crate::schedule::next_run_at(row.status, &wf.trigger, now)
}
