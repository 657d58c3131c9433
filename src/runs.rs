//! Run use cases the REST API and the dashboard share: cancel a run, and
//! replay one (a new run through the trigger use case). Each has its own
//! error type; `http/error.rs` maps them to statuses once. Depends on
//! `store` (ports), `events` and `trigger`; knows nothing of HTTP.

use crate::events::Events;
use crate::store::{RunRow, Store, StoreError, TriggerOutcome, TriggerType};
use crate::trigger::{TriggerError, TriggerRequest, Triggers};

#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// No such run, or storage failed (`StoreError::NotFound("run")` is the former).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Record a cancel in the store (it reaches every unfinished descendant in
/// the same write), then wake the waiters of each run it ended (queued,
/// parked or suspended) or the worker of each run it flagged (executing: the
/// step in flight is aborted). Cancelling a finished run changes nothing.
pub async fn cancel(store: &Store, events: &Events, id: String) -> Result<RunRow, CancelError> {
    let run = store.cancel_run(id.clone()).await?;
    signal(events, &run);
    if run.family.children.is_some_and(|n| n.total > 0) {
        signal_descendants(store, events, &run.id).await;
    }
    Ok(run)
}

fn signal(events: &Events, run: &RunRow) {
    if run.is_finished() {
        events.run_finished(&run.id);
    } else {
        events.cancel(&run.id);
    }
}

/// Most descendants a cancel signals on this node (the store's cancel
/// reached them all; a worker that is not signalled stops at its next write).
const MAX_SIGNALLED: usize = 10_000;

/// The signals for a cancelled run's descendants, read back from the store
/// breadth first. Best effort: a read that fails leaves the rest to the
/// store's flag.
async fn signal_descendants(store: &Store, events: &Events, root: &str) {
    let mut parents = std::collections::VecDeque::from([root.to_string()]);
    let mut seen = 0;
    while let Some(parent) = parents.pop_front() {
        let mut before_seq = None;
        loop {
            let filter = crate::store::RunFilter {
                parent_run_id: Some(parent.clone()),
                before_seq,
                limit: 100,
                ..Default::default()
            };
            let Ok(kids) = store.list_runs(filter).await else {
                return;
            };
            for kid in &kids {
                signal(events, kid);
                parents.push_back(kid.id.clone());
                seen += 1;
                if seen >= MAX_SIGNALLED {
                    return;
                }
            }
            match kids.last() {
                Some(last) if kids.len() == 100 => before_seq = Some(last.seq),
                _ => break,
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The original run cannot be read (not found, or storage failed).
    #[error(transparent)]
    Original(StoreError),
    /// The new run was refused like any trigger (workflow not active, input
    /// no longer valid, connection gone).
    #[error(transparent)]
    Trigger(#[from] TriggerError),
}

/// A new run of the same workflow (its latest version, which must be
/// active) with the same input and connection as `run_id`.
pub async fn replay(triggers: &Triggers, run_id: &str) -> Result<TriggerOutcome, ReplayError> {
    let original = triggers
        .store
        .get_run(run_id.to_string())
        .await
        .map_err(ReplayError::Original)?;
    let mut req = TriggerRequest::new(original.workflow_id, original.input, TriggerType::Replay);
    req.connection_id = original.connection_id;
    Ok(triggers.trigger_run(req).await?)
}
