//! The trigger use case: the one way a run is created, whatever asked for it
//! (the API today; schedules, webhooks, replay and batch call the same
//! function). It checks the workflow is active, applies the input schema
//! (defaults and violations), refuses a run whose connections cannot
//! resolve, and creates the run under its idempotency key.

use crate::catalog::Catalog;
use crate::engine::{ConnectionRef, ResolveError, check_trigger};
use crate::events::Events;
use crate::store::{ConnectionRow, NewRun, RunRow, Store, StoreError, TriggerOutcome, TriggerType};
use crate::workflow::{CompiledWorkflow, InputViolation, StepKind};
use serde_json::Value;

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone)]
pub struct TriggerRequest {
    pub workflow_id: String,
    /// A JSON object (the caller checked the shape of its own wire format).
    pub input: Value,
    pub connection_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub trigger_type: TriggerType,
}

#[derive(Debug)]
pub struct Triggered {
    pub run: RunRow,
    /// An unexpired idempotency key named this existing run; nothing started.
    pub replayed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("Workflow must be active to run. Current status: {0}")]
    NotActive(String),
    #[error("Input validation failed")]
    InvalidInput(Vec<InputViolation>),
    #[error("{0}")]
    InvalidRequest(String),
    #[error(
        "Step '{step_id}' needs an active {provider} connection: create one (flowctl connections create --provider {provider} …) or pass connectionId"
    )]
    ConnectionRequired { provider: String, step_id: String },
    #[error("{0}")]
    InvalidConnection(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Create a run (or find the one its idempotency key names).
pub async fn trigger(
    catalog: &Catalog,
    store: &Store,
    events: &Events,
    req: TriggerRequest,
) -> Result<Triggered, TriggerError> {
    let (row, wf) = catalog.head(&req.workflow_id).await?;
    if row.status != "active" {
        return Err(TriggerError::NotActive(row.status));
    }
    check_idempotency_key(req.idempotency_key.as_deref())?;
    let input = match &wf.input_schema {
        None => req.input,
        Some(schema) => schema
            .apply(req.input)
            .map_err(TriggerError::InvalidInput)?,
    };
    check_connections(store, &wf, req.connection_id.as_deref()).await?;
    let outcome = store
        .create_run(NewRun {
            id: crate::ids::run_id(),
            workflow_id: row.id,
            workflow_version: row.latest_version,
            input,
            idempotency_key: req.idempotency_key,
            connection_id: req.connection_id,
            trigger_type: req.trigger_type,
            idempotency_ttl_ms: IDEMPOTENCY_TTL_MS,
        })
        .await?;
    Ok(match outcome {
        TriggerOutcome::Created(run) => {
            events.run_queued();
            Triggered {
                run,
                replayed: false,
            }
        }
        TriggerOutcome::Replayed(run) => Triggered {
            run,
            replayed: true,
        },
    })
}

fn check_idempotency_key(key: Option<&str>) -> Result<(), TriggerError> {
    match key {
        Some(k) if k.is_empty() || k.chars().count() > 255 || k.chars().any(char::is_control) => {
            Err(TriggerError::InvalidRequest(
                "idempotencyKey must be 1 to 255 printable characters".into(),
            ))
        }
        _ => Ok(()),
    }
}

/// A run that could not get its connections is never queued.
async fn check_connections(
    store: &Store,
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
    let all = store.list_connections().await?;
    let refs: Vec<ConnectionRef> = all.iter().map(ConnectionRow::as_ref).collect();
    check_trigger(wf, run_connection, &refs).map_err(|e| match e {
        ResolveError::Invalid(m) => TriggerError::InvalidConnection(m),
        ResolveError::Required { provider, step_id } => {
            TriggerError::ConnectionRequired { provider, step_id }
        }
    })
}
