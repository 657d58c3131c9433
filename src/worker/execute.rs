//! Executes one claimed run to its end or to a park (wait step, pending
//! retry): every non-pure step's start and outcome is committed before the
//! next step begins; consecutive pure transforms commit together.

use super::Worker;
use super::steps::{StepError, run_action};
use crate::actions::ActionKind;
use crate::engine::{
    self, FailureDecision, Next, Prepared, RunFacts, RunStatus, Scope, StepRecord, StepStatus,
};
use crate::store::{RunRow, RunUpdate};
use crate::time::{now_ms, parse_rfc3339, rfc3339};
use crate::workflow::{CompiledStep, CompiledWorkflow, StepKind};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::watch;
use tracing::Instrument;

/// How a run's execution in this claim ended.
enum Exit {
    Finished,
    Parked,
    /// Persisting failed; the run stays claimed and is recovered on restart.
    Abandoned,
}

struct RunExec {
    worker: Worker,
    run: RunRow,
    wf: Arc<CompiledWorkflow>,
    records: Vec<Option<StepRecord>>,
    unsaved: Vec<StepRecord>,
    cancel: watch::Receiver<bool>,
    /// When this run first started (now, unless it is being resumed).
    started_at: i64,
}

impl Worker {
    pub(crate) async fn execute(&self, run: RunRow) {
        let span = tracing::info_span!("run", run_id = %run.id);
        let run_id = run.id.clone();
        let cancel = self.events.cancel_signal(&run_id);
        async {
            let wf = match self.catalog.version(&run.workflow_id, run.workflow_version).await {
                Ok(wf) => wf,
                Err(e) => {
                    tracing::error!(error = %e, "cannot load the run's workflow version");
                    let error = json!({"code": "INTERNAL", "message": "the run's workflow version cannot be loaded"});
                    let update = RunUpdate { finish: Some((RunStatus::Failed.as_str().into(), Value::Null, error)), park_until: None };
                    let started = run.started_at.unwrap_or_else(now_ms);
                    if let Ok(true) = self.store.save_progress(run.seq, started, vec![], update).await {
                        self.events.run_finished(&run.id);
                    }
                    return;
                }
            };
            let mut records = vec![None; wf.steps.len()];
            for r in &run.steps {
                if let Some(slot) = records.get_mut(r.idx) {
                    *slot = Some(r.clone());
                }
            }
            let started_at = run.started_at.unwrap_or_else(now_ms);
            let mut exec = RunExec { worker: self.clone(), run, wf, records, unsaved: vec![], cancel, started_at };
            if let Exit::Finished = exec.drive().await {
                self.events.run_finished(&exec.run.id);
            }
        }
        .instrument(span)
        .await;
        self.events.release_cancel_signal(&run_id);
    }
}

impl RunExec {
    async fn drive(&mut self) -> Exit {
        let started_at = self.started_at;
        let facts = RunFacts {
            run_id: &self.run.id,
            workflow_id: &self.run.workflow_id,
            workflow_name: &self.wf.name,
            workflow_version: self.run.workflow_version,
            started_at: &rfc3339(started_at),
            input: &self.run.input,
        };
        let settled: Vec<StepRecord> = self.records.iter().flatten().cloned().collect();
        let mut scope = Scope::new(&facts, &settled);
        let wf = self.wf.clone();
        loop {
            if self.run.cancel_requested || *self.cancel.borrow() {
                return self
                    .finish(
                        RunStatus::Cancelled,
                        Value::Null,
                        json!({"code": "CANCELLED", "message": "Run was cancelled"}),
                    )
                    .await;
            }
            if let Some(limit) = wf.timeout_ms
                && now_ms() - started_at > limit as i64
            {
                let error = json!({"code": "RUN_TIMEOUT", "message": format!("run exceeded its timeoutMs of {limit} ms")});
                return self.finish(RunStatus::TimedOut, Value::Null, error).await;
            }
            match engine::next(&wf, &self.records) {
                Next::Finish => {
                    let now = rfc3339(now_ms());
                    let ctx = scope.context(&self.run.input, &wf.variables, &now);
                    return match engine::run_output(&wf, &self.records, &ctx) {
                        Ok((output, _)) => {
                            self.finish(RunStatus::Completed, output, Value::Null).await
                        }
                        Err(error) => self.finish(RunStatus::Failed, Value::Null, error).await,
                    };
                }
                Next::Fail(i) => {
                    let failed = self.records[i]
                        .clone()
                        .unwrap_or_else(|| blank(&wf.steps[i], i));
                    return self
                        .finish(
                            RunStatus::Failed,
                            Value::Null,
                            engine::step_failure(&failed),
                        )
                        .await;
                }
                Next::Step(i) => {
                    let step = &wf.steps[i];
                    let now_text = rfc3339(now_ms());
                    let prepared = engine::prepare(
                        step,
                        &scope.context(&self.run.input, &wf.variables, &now_text),
                    );
                    let outcome = self.step(i, step, prepared).await;
                    match outcome {
                        StepDone::Settled(record) => {
                            if let (Some(start), Some(end)) =
                                (record.started_at, record.completed_at)
                            {
                                let secs = (end - start).max(0) as f64 / 1000.0;
                                self.worker.metrics.observe_step(
                                    step.kind.type_name(),
                                    record.status.as_str(),
                                    secs,
                                );
                            }
                            scope.record(&record);
                            self.records[i] = Some(record.clone());
                            self.unsaved.push(record);
                        }
                        StepDone::Exit(exit) => return exit,
                    }
                }
            }
        }
    }

    async fn step(&mut self, i: usize, step: &CompiledStep, prepared: Prepared) -> StepDone {
        let prev = self.records[i].clone();
        let mut rec = prev.clone().unwrap_or_else(|| blank(step, i));
        let now = now_ms();
        rec.started_at.get_or_insert(now);
        match prepared {
            Prepared::Skip { warnings } => {
                rec.status = StepStatus::Skipped;
                rec.warnings = warnings;
                rec.completed_at = Some(now);
            }
            Prepared::TemplateFailed { error } => {
                rec.attempts += 1;
                rec.status = StepStatus::Failed;
                rec.error = error;
                rec.completed_at = Some(now);
            }
            Prepared::Execute { config, warnings } => {
                rec.warnings = warnings;
                match &step.kind {
                    StepKind::Transform => {
                        rec.attempts += 1;
                        rec.status = StepStatus::Completed;
                        rec.output = engine::transform_output(&config);
                        rec.completed_at = Some(now);
                    }
                    StepKind::Wait => return self.wait_step(rec, prev, &config, now).await,
                    StepKind::Action(kind) => {
                        return self.action_step(rec, step, *kind, config).await;
                    }
                }
            }
        }
        StepDone::Settled(rec)
    }

    async fn wait_step(
        &mut self,
        mut rec: StepRecord,
        prev: Option<StepRecord>,
        config: &Value,
        now: i64,
    ) -> StepDone {
        let started = rec.started_at.unwrap_or(now);
        let due = match prev.as_ref().filter(|p| p.status == StepStatus::Waiting) {
            Some(p) => p
                .output
                .get("resumeAt")
                .and_then(Value::as_str)
                .and_then(parse_rfc3339),
            None => match (
                config.get("durationMs").and_then(Value::as_u64),
                config.get("until"),
            ) {
                (Some(ms), _) => Some(started + ms as i64),
                (None, Some(Value::String(s))) => parse_rfc3339(s),
                _ => None,
            },
        };
        let Some(due) = due else {
            rec.attempts += 1;
            rec.status = StepStatus::Failed;
            rec.error = json!({"code": "INVALID_CONFIG", "message": format!("step '{}': wait needs durationMs (milliseconds) or until (RFC 3339)", rec.step_id)});
            rec.completed_at = Some(now);
            return StepDone::Settled(rec);
        };
        if due <= now {
            rec.attempts = rec.attempts.max(1);
            rec.status = StepStatus::Completed;
            rec.output = json!({"waitedMs": now - started});
            rec.completed_at = Some(now);
            return StepDone::Settled(rec);
        }
        rec.status = StepStatus::Waiting;
        rec.output = json!({"resumeAt": rfc3339(due)});
        StepDone::Exit(self.park(rec, due).await)
    }

    async fn action_step(
        &mut self,
        mut rec: StepRecord,
        step: &CompiledStep,
        kind: ActionKind,
        config: Value,
    ) -> StepDone {
        rec.attempts += 1;
        rec.status = StepStatus::Running;
        rec.error = Value::Null;
        // The attempt is on record before its side effect starts.
        let mut batch = std::mem::take(&mut self.unsaved);
        batch.push(rec.clone());
        if let Err(exit) = self.save(batch, RunUpdate::default()).await {
            return StepDone::Exit(exit);
        }
        let result = tokio::select! {
            r = run_action(&self.worker, &self.run, step, kind, &config) => r,
            _ = cancelled(self.cancel.clone()) => Err(StepError { error: json!({"code": "CANCELLED", "message": "step aborted: the run was cancelled"}), retryable: false, retry_after_ms: None }),
        };
        let now = now_ms();
        match result {
            Ok(output) => {
                rec.status = StepStatus::Completed;
                rec.output = output;
                rec.completed_at = Some(now);
                StepDone::Settled(rec)
            }
            Err(e) => {
                rec.error = e.error;
                let jitter: f64 = rand::random();
                match engine::on_step_error(
                    step,
                    rec.attempts as u32,
                    e.retryable,
                    e.retry_after_ms,
                    now,
                    jitter,
                ) {
                    FailureDecision::RetryAt(at) => {
                        rec.status = StepStatus::Retrying;
                        StepDone::Exit(self.park(rec, at).await)
                    }
                    FailureDecision::Continue | FailureDecision::FailRun => {
                        rec.status = StepStatus::Failed;
                        rec.completed_at = Some(now);
                        StepDone::Settled(rec)
                    }
                }
            }
        }
    }

    async fn park(&mut self, rec: StepRecord, until: i64) -> Exit {
        let mut batch = std::mem::take(&mut self.unsaved);
        batch.push(rec);
        match self
            .save(
                batch,
                RunUpdate {
                    finish: None,
                    park_until: Some(until),
                },
            )
            .await
        {
            Ok(()) => {
                self.worker.events.run_queued();
                Exit::Parked
            }
            Err(exit) => exit,
        }
    }

    async fn finish(&mut self, status: RunStatus, output: Value, error: Value) -> Exit {
        // A run that ends early leaves no step looking as if it might still run.
        if status != RunStatus::Completed {
            for (i, step) in self.wf.steps.iter().enumerate() {
                if self.records[i]
                    .as_ref()
                    .is_none_or(|r| !r.status.is_settled())
                {
                    let mut r = self.records[i].clone().unwrap_or_else(|| blank(step, i));
                    r.status = StepStatus::Skipped;
                    self.unsaved.push(r);
                }
            }
        }
        let batch = std::mem::take(&mut self.unsaved);
        let update = RunUpdate {
            finish: Some((status.as_str().into(), output, error)),
            park_until: None,
        };
        match self.save(batch, update).await {
            Ok(()) | Err(Exit::Finished) => Exit::Finished,
            Err(exit) => exit,
        }
    }

    /// Persist progress. `Err(Exit::Finished)`: the run was cancelled while it
    /// waited for a worker, so it stops here; `Err(Exit::Abandoned)`: the store
    /// failed, and the run resumes after a restart.
    async fn save(&self, batch: Vec<StepRecord>, update: RunUpdate) -> Result<(), Exit> {
        match self
            .worker
            .store
            .save_progress(self.run.seq, self.started_at, batch, update)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(Exit::Finished),
            Err(e) => {
                tracing::error!(error = %e, "cannot persist run progress; the run resumes after a restart");
                Err(Exit::Abandoned)
            }
        }
    }
}

enum StepDone {
    Settled(StepRecord),
    Exit(Exit),
}

fn blank(step: &CompiledStep, idx: usize) -> StepRecord {
    StepRecord {
        idx,
        step_id: step.id.clone(),
        status: StepStatus::Pending,
        output: Value::Null,
        error: Value::Null,
        warnings: vec![],
        attempts: 0,
        started_at: None,
        completed_at: None,
    }
}

async fn cancelled(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
