//! The interpreter of one claimed run: `advance` → commit the new state
//! (fenced by the claim's token) → perform the effect → feed its outcome back
//! to `advance`, until the run parks or finishes. It decides nothing: every
//! status, error and due time comes from the engine. `LeaseLost` stops it;
//! `Cancelled` becomes the engine's `CancelRequested` event, applied to the
//! last state the store accepted (the refused one was never written).

use super::Worker;
use super::lease::Held;
use super::steps::{RunRef, StepError, run_action};
use crate::engine::{self, Effect, Event, RunState, StepRecord, Transition};
use crate::store::{ChildSpawn, Claim, CommitOutcome, RunWrite, StoreError};
use crate::time::now_ms;
use crate::workflow::{CompiledWorkflow, StepKind};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

/// Commits that fail for storage reasons are retried while the lease lasts,
/// with this much margin before its deadline.
const LEASE_MARGIN_MS: i64 = 1_000;
const MAX_COMMIT_BACKOFF: Duration = Duration::from_secs(2);

/// Why a run stops in this worker without a park or finish.
enum Stop {
    LeaseLost,
    /// Writes kept failing until the lease ran out; the sweep re-queues it.
    StoreFailing,
}

impl Worker {
    pub(crate) async fn execute(&self, claim: Claim, held: Arc<Held>) {
        let span = tracing::info_span!("run", run_id = %claim.run.id);
        let run_id = claim.run.id.clone();
        let cancel = self.events.cancel_signal(&run_id);
        async {
            match self.interpret(claim, &held, cancel).await {
                Ok(()) => {}
                Err(Stop::LeaseLost) => tracing::warn!("lease lost; another worker holds the run"),
                Err(Stop::StoreFailing) => tracing::error!(
                    "cannot persist run progress; the run resumes when its lease expires and storage is back"
                ),
            }
        }
        .instrument(span)
        .await;
        self.events.release_cancel_signal(&run_id);
        self.claims.drop_claim(held.key.seq);
    }

    async fn interpret(
        &self,
        claim: Claim,
        held: &Held,
        mut cancel: watch::Receiver<bool>,
    ) -> Result<(), Stop> {
        let run = claim.run;
        let (wf, mut event) = match self
            .catalog
            .version(&run.workflow_id, run.workflow_version)
            .await
        {
            Ok(wf) => (wf, Event::Claimed),
            Err(e) if e.is_unavailable() => return Err(Stop::StoreFailing),
            Err(e) => {
                tracing::error!(error = %e, "cannot load the run's workflow version");
                let wf = Arc::new(engine::placeholder_workflow(&run.workflow_id));
                (wf, Event::DefinitionUnavailable)
            }
        };
        let mut state = RunState::new(
            &wf,
            run.id.clone(),
            run.workflow_version,
            run.input,
            run.status,
            run.started_at,
            run.cancel_requested,
            run.steps,
        )
        .with_limits(self.limits, run.recoveries);
        state.depth = run.family.depth;
        state.deadline_at = run.family.deadline_at;
        let root_run_id = run
            .family
            .root_run_id
            .clone()
            .unwrap_or_else(|| run.id.clone());
        let mut lost = held.lost.subscribe();
        // `state` is always what the store holds: a refused transition is
        // dropped, never built upon.
        loop {
            let cancelling = matches!(event, Event::CancelRequested);
            let t = engine::advance(&wf, &state, event, now_ms(), rand::random());
            let mut write = write_for(&state, &t);
            // The worker performs a spawn the engine decided: it checks the
            // target, and the child is created in the parent's commit.
            let mut spawn_failed = None;
            if let Effect::Spawn(sp) = &t.effect {
                match self
                    .child_for(sp, &root_run_id, run.connection_id.clone())
                    .await
                {
                    Ok(child) => {
                        write.suspend = sp.wait;
                        write.spawn = Some(child);
                    }
                    Err(Err(e)) if e.is_unavailable() => return Err(Stop::StoreFailing),
                    Err(Err(e)) => spawn_failed = Some(engine::RunError::internal(e.to_string())),
                    Err(Ok(error)) => spawn_failed = Some(error),
                }
            }
            match self.commit(held, write).await? {
                CommitOutcome::Saved => {}
                // The store accepts a cancel's finish from the holder; a
                // refusal of that means it no longer agrees the run is ours.
                CommitOutcome::Cancelled if cancelling => return Err(Stop::LeaseLost),
                CommitOutcome::Cancelled => {
                    event = Event::CancelRequested;
                    continue;
                }
                CommitOutcome::LeaseLost => return Err(Stop::LeaseLost),
            }
            self.observe_settled(&wf, &state, &t);
            state = t.state;
            let (idx, config, timeout_ms) = match t.effect {
                Effect::Finish { .. } => {
                    self.events.run_finished(&state.run_id);
                    // A slot of a capped workflow may have come free, or the
                    // commit queued a waiting parent.
                    self.events.run_queued();
                    return Ok(());
                }
                Effect::Spawn(sp) => {
                    if let Some(error) = spawn_failed {
                        event = Event::StepFailed {
                            idx: sp.idx,
                            error,
                            retryable: false,
                            retry_after_ms: None,
                        };
                        continue;
                    }
                    self.events.run_queued();
                    if sp.wait {
                        // Suspended: the child's finish queues the run again.
                        return Ok(());
                    }
                    event = Event::StepSucceeded {
                        idx: sp.idx,
                        output: serde_json::json!({"runId": sp.child_run_id}),
                    };
                    continue;
                }
                Effect::Park { .. } => {
                    self.events.run_queued();
                    return Ok(());
                }
                Effect::Execute {
                    idx,
                    config,
                    timeout_ms,
                } => (idx, config, timeout_ms),
            };
            let step = &wf.steps[idx];
            let StepKind::Action(kind) = step.kind else {
                unreachable!("the engine executes only action steps");
            };
            let run = RunRef {
                id: &state.run_id,
                connection_id: run.connection_id.as_deref(),
            };
            let result = tokio::select! {
                r = run_action(self, &run, step, kind, &config, timeout_ms) => r,
                _ = wait_true(&mut cancel) => Err(StepError {
                    error: engine::RunError::step_aborted(),
                    retryable: false,
                    retry_after_ms: None,
                }),
                _ = wait_true(&mut lost) => return Err(Stop::LeaseLost),
            };
            event = if *cancel.borrow() {
                Event::CancelRequested
            } else {
                match result {
                    Ok(output) => Event::StepSucceeded { idx, output },
                    Err(e) => Event::StepFailed {
                        idx,
                        error: e.error,
                        retryable: e.retryable,
                        retry_after_ms: e.retry_after_ms,
                    },
                }
            };
        }
    }

    /// Commit, retrying storage failures with backoff while the lease
    /// lasts: once space is back the run goes on where it was.
    async fn commit(&self, held: &Held, write: RunWrite) -> Result<CommitOutcome, Stop> {
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.store.commit(held.key, write.clone()).await {
                Ok(outcome) => return Ok(outcome),
                Err(e) => {
                    let until = held.lease_until.load(Ordering::Relaxed) - LEASE_MARGIN_MS;
                    if now_ms() + backoff.as_millis() as i64 >= until {
                        tracing::error!(error = %e, "giving the run up: its lease runs out");
                        return Err(Stop::StoreFailing);
                    }
                    tracing::warn!(error = %e, "cannot commit run progress; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_COMMIT_BACKOFF);
                }
            }
        }
    }

    /// Step durations for the steps this transition settled.
    fn observe_settled(&self, wf: &CompiledWorkflow, before: &RunState, t: &Transition) {
        for (i, rec) in t.state.steps.iter().enumerate() {
            let was_settled = before.steps.get(i).is_some_and(|r| r.status.is_settled());
            if was_settled || !rec.status.is_settled() {
                continue;
            }
            if let (Some(start), Some(end), Some(step)) =
                (rec.started_at, rec.completed_at, wf.steps.get(i))
            {
                let secs = (end - start).max(0) as f64 / 1000.0;
                self.metrics
                    .observe_step(step.kind.type_name(), rec.status.as_str(), secs);
            }
        }
    }
}

/// The store write for a transition: the run's columns and the changed steps.
fn write_for(before: &RunState, t: &Transition) -> RunWrite {
    let s = &t.state;
    let steps: Vec<StepRecord> = s
        .steps
        .iter()
        .zip(before.steps.iter().map(Some).chain(std::iter::repeat(None)))
        .filter(|(new, old)| old.is_none_or(|o| o != *new))
        .map(|(new, _)| new.clone())
        .collect();
    RunWrite {
        status: s.status,
        started_at: s.started_at,
        completed_at: s.completed_at,
        output: s.output.clone(),
        error: s.error.clone(),
        park_until: s.park_until,
        steps,
        spawn: None,
        suspend: false,
    }
}

impl Worker {
    /// The child run a `workflow` step asked for: its target is active, the
    /// version exists and the input fits the target's schema. `Err(Ok(_))`
    /// fails the step with that error; `Err(Err(_))` is the store's.
    async fn child_for(
        &self,
        sp: &engine::Spawn,
        root_run_id: &str,
        connection_id: Option<String>,
    ) -> Result<ChildSpawn, Result<engine::RunError, StoreError>> {
        let fail = |code: &str, message: String| {
            let mut e = engine::RunError::step(code, message);
            e.step_id = Some(sp.step_id.clone());
            Err(Ok(e))
        };
        let (row, head) = match self.catalog.head(&sp.workflow_id).await {
            Ok(found) => found,
            Err(StoreError::NotFound(_)) => {
                return fail(
                    "NOT_FOUND",
                    format!("workflow '{}' does not exist", sp.workflow_id),
                );
            }
            Err(e) => return Err(Err(e)),
        };
        if row.status != crate::workflow::WorkflowStatus::Active {
            return fail(
                "INVALID_STATUS",
                format!(
                    "workflow '{}' is {}, not active",
                    sp.workflow_id,
                    row.status.as_str()
                ),
            );
        }
        let version = sp.version.unwrap_or(row.latest_version);
        let wf = if version == row.latest_version {
            head
        } else if version < 1 || version > row.latest_version {
            return fail(
                "NOT_FOUND",
                format!("workflow '{}' has no version {version}", sp.workflow_id),
            );
        } else {
            self.catalog
                .version(&sp.workflow_id, version)
                .await
                .map_err(Err)?
        };
        let input = match &wf.input_schema {
            None => sp.input.clone(),
            Some(schema) => match schema.apply(sp.input.clone()) {
                Ok(v) => v,
                Err(violations) => {
                    let details: Vec<String> = violations
                        .into_iter()
                        .map(|v| format!("{}: {}", Value::from(v.path), v.message))
                        .collect();
                    return fail(
                        "VALIDATION_ERROR",
                        format!(
                            "input for workflow '{}' does not fit its inputSchema: {}",
                            sp.workflow_id,
                            details.join("; ")
                        ),
                    );
                }
            },
        };
        Ok(ChildSpawn {
            id: sp.child_run_id.clone(),
            workflow_id: sp.workflow_id.clone(),
            workflow_version: version,
            input,
            connection_id,
            parent_step_id: sp.step_id.clone(),
            key: sp.key.clone(),
            root_run_id: root_run_id.to_string(),
            depth: sp.depth,
            wait: sp.wait,
            deadline_at: sp.deadline_at,
            trigger_type: crate::store::TriggerType::Workflow,
        })
    }
}

async fn wait_true(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await;
    }
}
