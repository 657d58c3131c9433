//! Side-effecting steps: resolves the step's connection (the engine's
//! resolution rules), decrypts its secret only for the call, runs the action
//! within the time limit the engine gave, and reports failures as
//! `RunError`s marked retryable or not.

use super::Worker;
use crate::actions::{ActionContext, ActionError, ActionKind, ResolvedConnection};
use crate::engine::{ConnectionRef, ResolveError, RunError, resolve};
use crate::store::ConnectionRow;
use crate::template::CompiledValue;
use crate::workflow::CompiledStep;
use serde_json::Value;
use std::time::Duration;

pub(crate) struct StepError {
    pub error: RunError,
    pub retryable: bool,
    pub retry_after_ms: Option<u64>,
}

impl StepError {
    fn fatal(code: &str, message: String) -> StepError {
        StepError {
            error: RunError::step(code, message),
            retryable: false,
            retry_after_ms: None,
        }
    }
}

/// The run an action belongs to.
pub(crate) struct RunRef<'a> {
    pub id: &'a str,
    pub connection_id: Option<&'a str>,
}

pub(crate) async fn run_action(
    worker: &Worker,
    run: &RunRef<'_>,
    step: &CompiledStep,
    kind: ActionKind,
    config: &Value,
    timeout_ms: u64,
) -> Result<Value, StepError> {
    let conn = connection_for(worker, run, step, kind).await?;
    let timeout = Duration::from_millis(timeout_ms);
    let ctx = ActionContext {
        run_id: run.id,
        step_id: &step.id,
        timeout,
    };
    // The action honours the timeout itself; this outer bound is a backstop.
    let outcome = tokio::time::timeout(
        timeout + Duration::from_secs(1),
        worker.actions.execute(kind, config, conn.as_ref(), &ctx),
    )
    .await
    .unwrap_or_else(|_| Err(ActionError::timeout(timeout)));
    outcome.map_err(|e| {
        let mut message = format!("step '{}' ({}): {}", step.id, kind.as_str(), e.message);
        if let Some(source) = empty_field_template(step, &e) {
            message.push_str(&format!(" — it is rendered from the template \"{source}\""));
        }
        StepError {
            error: RunError::step(&e.code, message),
            retryable: e.retryable,
            // Saturating: a `Retry-After` of centuries is still only "long".
            retry_after_ms: e
                .retry_after
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    })
}

/// For "'to' is empty"-style errors: the template that produced the field.
fn empty_field_template(step: &CompiledStep, e: &ActionError) -> Option<String> {
    let field = e.empty_field?;
    let CompiledValue::Object(fields) = &step.config else {
        return None;
    };
    fields.iter().find_map(|(name, value)| match value {
        CompiledValue::Template(t) if name == field => Some(t.source().to_string()),
        _ => None,
    })
}

async fn connection_for(
    worker: &Worker,
    run: &RunRef<'_>,
    step: &CompiledStep,
    kind: ActionKind,
) -> Result<Option<ResolvedConnection>, StepError> {
    let all = worker
        .connections
        .list_connections()
        .await
        .map_err(|e| StepError {
            error: RunError::internal(format!("cannot read connections: {e}")),
            retryable: true,
            retry_after_ms: None,
        })?;
    let refs: Vec<ConnectionRef> = all.iter().map(ConnectionRow::as_ref).collect();
    let chosen = match resolve(
        kind.provider(),
        run.connection_id,
        step.connection.as_deref(),
        &refs,
    ) {
        Ok(Some(id)) => id.to_string(),
        Ok(None) if kind.requires_connection() => {
            return Err(StepError::fatal(
                "CONNECTION_REQUIRED",
                format!(
                    "step '{}' needs an active {} connection",
                    step.id,
                    kind.provider()
                ),
            ));
        }
        Ok(None) => return Ok(None),
        Err(ResolveError::Invalid(m)) => {
            return Err(StepError::fatal(
                "INVALID_CONNECTION",
                format!("step '{}': {m}", step.id),
            ));
        }
        Err(ResolveError::Required { provider, .. }) => {
            return Err(StepError::fatal(
                "CONNECTION_REQUIRED",
                format!("step '{}' needs an active {provider} connection", step.id),
            ));
        }
    };
    let Some(row) = all.into_iter().find(|c| c.id == chosen) else {
        return Ok(None);
    };
    let secret = match &row.secret {
        None => None,
        Some(blob) => Some(worker.secrets.decrypt(blob).map_err(|_| {
            StepError::fatal(
                "INVALID_CONNECTION",
                format!("the secret of connection '{}' cannot be decrypted with this server's key (FLOWCTL_SECRET_KEY or the key file changed?)", row.id),
            )
        })?),
    };
    Ok(Some(ResolvedConnection {
        id: row.id,
        provider: row.provider,
        config: row.config,
        secret,
    }))
}
