//! The trigger use case: every way a run starts (the API, a schedule, a
//! webhook, a replay from `runs.rs`, a batch of the CLI) goes through `Triggers::trigger_run`,
//! so the status, input-schema (defaults and violations) and connection
//! checks and the idempotent durable insert are the same for all of them.
//! Depends on `store` (ports), `catalog`, `engine`, `workflow`; knows
//! nothing of HTTP.

use crate::api::ErrorDetail;
use crate::catalog::Catalog;
use crate::engine::{ConnectionRef, ResolveError, check_trigger};
use crate::events::Events;
use crate::store::{ConnectionRow, NewRun, Store, StoreError, TriggerOutcome, TriggerType};
use crate::workflow::{CompiledWorkflow, StepKind, WorkflowStatus};
use serde_json::Value;

/// The input a schedule gives its runs: the trigger's static `input`, then
/// `extra` on top (a person trying it may change fields), and the `schedule`
/// block; `manual: true` tells a run started by hand from a real occurrence.
/// `None` when the workflow has no schedule trigger.
pub fn schedule_input(wf: &CompiledWorkflow, extra: &Value, now_ms: i64) -> Option<Value> {
    let crate::workflow::TriggerDef::Schedule(def) = &wf.trigger else {
        return None;
    };
    let mut input = def.input.clone();
    if let Value::Object(m) = extra {
        for (k, v) in m {
            input.insert(k.clone(), v.clone());
        }
    }
    let at = crate::time::rfc3339(now_ms);
    input.insert(
        "schedule".into(),
        serde_json::json!({"name": wf.name, "scheduledAt": at, "firedAt": at, "manual": true}),
    );
    Some(Value::Object(input))
}

/// How long an API idempotency key is remembered (webhook event ids have
/// their own, longer window: `delivery::DEFAULT_DEDUPE_HOURS`).
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// What a trigger needs: the store, compiled definitions, and the signal
/// that wakes the workers.
#[derive(Clone)]
pub struct Triggers {
    pub store: Store,
    pub catalog: Catalog,
    pub events: Events,
}

#[derive(Debug, Clone)]
pub struct TriggerRequest {
    pub workflow_id: String,
    /// A JSON object (the caller checked the shape of its own wire format).
    pub input: Value,
    pub connection_id: Option<String>,
    pub idempotency_key: Option<String>,
    /// How long `idempotency_key` is remembered.
    pub idempotency_ttl_ms: i64,
    pub trigger_type: TriggerType,
    /// A schedule's occurrence, recorded with the run in one transaction.
    pub scheduled_at: Option<i64>,
    /// Start the run no sooner than this many milliseconds after it is created.
    pub delay_ms: u64,
}

impl TriggerRequest {
    pub fn new(workflow_id: impl Into<String>, input: Value, trigger_type: TriggerType) -> Self {
        TriggerRequest {
            workflow_id: workflow_id.into(),
            input,
            connection_id: None,
            idempotency_key: None,
            idempotency_ttl_ms: IDEMPOTENCY_TTL_MS,
            trigger_type,
            scheduled_at: None,
            delay_ms: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("Workflow must be active to run. Current status: {0}")]
    InvalidStatus(String),
    #[error("Input validation failed")]
    Validation(Vec<ErrorDetail>),
    #[error("{0}")]
    ConnectionRequired(String),
    #[error("{0}")]
    InvalidConnection(String),
    /// The input nests deeper than run state may (`limits::MAX_JSON_DEPTH`).
    #[error(
        "input is nested deeper than {} levels, the limit for run state",
        crate::limits::MAX_JSON_DEPTH
    )]
    TooDeep,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Triggers {
    /// Check and durably queue one run. `Replayed` means an unexpired
    /// idempotency key already named a run: nothing new started.
    pub async fn trigger_run(&self, req: TriggerRequest) -> Result<TriggerOutcome, TriggerError> {
        Ok(self.trigger_run_checked(req).await?.0)
    }

    /// `trigger_run`, also saying whether a replayed run's input differs from
    /// this request's (after schema defaults): the key was reused for
    /// something else, and the caller should hear about it.
    pub async fn trigger_run_checked(
        &self,
        req: TriggerRequest,
    ) -> Result<(TriggerOutcome, bool), TriggerError> {
        let (row, wf) = self.catalog.head(&req.workflow_id).await?;
        if row.status != WorkflowStatus::Active {
            return Err(TriggerError::InvalidStatus(row.status.as_str().into()));
        }
        // Whatever is stored must be readable back by every reader.
        if crate::limits::deeper_than(&req.input, crate::limits::MAX_JSON_DEPTH) {
            return Err(TriggerError::TooDeep);
        }
        let input = match &wf.input_schema {
            None => req.input,
            Some(schema) => schema.apply(req.input).map_err(|violations| {
                TriggerError::Validation(
                    violations
                        .into_iter()
                        .map(|v| ErrorDetail {
                            path: v.path,
                            message: v.message,
                        })
                        .collect(),
                )
            })?,
        };
        self.check_connections(&wf, req.connection_id.as_deref())
            .await?;
        let compared = req.idempotency_key.is_some().then(|| input.clone());
        let outcome = self
            .store
            .create_run(NewRun {
                id: crate::ids::run_id(),
                workflow_id: row.id,
                workflow_version: row.latest_version,
                input,
                idempotency_key: req.idempotency_key,
                connection_id: req.connection_id,
                trigger_type: req.trigger_type,
                idempotency_ttl_ms: req.idempotency_ttl_ms,
                scheduled_at: req.scheduled_at,
                delay_ms: i64::try_from(req.delay_ms).unwrap_or(0),
            })
            .await?;
        if matches!(outcome, TriggerOutcome::Created(_)) {
            self.events.run_queued();
        }
        let differs = match (&outcome, compared) {
            (TriggerOutcome::Replayed(run), Some(input)) => run.input != input,
            _ => false,
        };
        Ok((outcome, differs))
    }

    /// A run that could not get its connections is never queued.
    async fn check_connections(
        &self,
        wf: &CompiledWorkflow,
        run_connection: Option<&str>,
    ) -> Result<(), TriggerError> {
        let needs_any = run_connection.is_some()
            || wf
                .steps
                .iter()
                .any(|s| matches!(s.kind, StepKind::Action(_)));
        if !needs_any {
            return Ok(());
        }
        let all = self.store.list_connections().await?;
        let refs: Vec<ConnectionRef> = all.iter().map(ConnectionRow::as_ref).collect();
        check_trigger(wf, run_connection, &refs).map_err(|e| match e {
            ResolveError::Invalid(m) => TriggerError::InvalidConnection(m),
            ResolveError::Required { provider, step_id } => TriggerError::ConnectionRequired(format!(
                "Step '{step_id}' needs an active {provider} connection: create one (flowctl connections create --provider {provider} …) or pass connectionId"
            )),
        })
    }
}
