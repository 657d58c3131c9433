//! Decisions both stores make, written once as pure functions; each store's
//! SQL only carries them out (and `store/contract.rs` checks both agree):
//! what applying a definition does to the version and status, what a
//! cancel of a run no worker holds writes, and the status lists SQL `IN`
//! clauses are built from.

use super::records::same_definition;
use crate::engine::{RunError, RunStatus, StepStatus};
use crate::workflow::WorkflowStatus;
use serde_json::Value;

/// What `apply` did to a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyResult {
    Created,
    /// A new version, or a new status, or both.
    Updated,
    Unchanged,
}

impl ApplyResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyResult::Created => "created",
            ApplyResult::Updated => "updated",
            ApplyResult::Unchanged => "unchanged",
        }
    }
}

/// The stored head of a workflow, as `plan_apply` compares it.
pub struct StoredHead<'a> {
    pub latest_version: i64,
    pub status: WorkflowStatus,
    /// The latest version's definition, as stored (JSON text).
    pub definition: &'a str,
}

/// What a store writes for one `apply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyPlan {
    pub version: i64,
    /// Insert `version` into `workflow_versions`.
    pub new_version: bool,
    /// Update the workflow row (status, latest version, name, concurrency).
    pub write_head: bool,
    pub status: WorkflowStatus,
    pub result: ApplyResult,
}

/// Applying a definition: a new workflow starts at version 1 with the file's
/// status (`active` when absent); an existing one gets a new version only
/// when the definition changed (key order aside), and a status from the
/// file is applied without a new version.
pub fn plan_apply(
    head: Option<StoredHead<'_>>,
    definition: &Value,
    status: Option<WorkflowStatus>,
) -> ApplyPlan {
    let Some(head) = head else {
        return ApplyPlan {
            version: 1,
            new_version: true,
            write_head: true,
            status: status.unwrap_or(WorkflowStatus::Active),
            result: ApplyResult::Created,
        };
    };
    let content_changed = !same_definition(head.definition, definition);
    let status = status.unwrap_or(head.status);
    let changed = content_changed || status != head.status;
    ApplyPlan {
        version: head.latest_version + i64::from(content_changed),
        new_version: content_changed,
        write_head: changed,
        status,
        result: if changed {
            ApplyResult::Updated
        } else {
            ApplyResult::Unchanged
        },
    }
}

/// What a cancel of a run no worker executes (queued, parked, or claimed
/// but not started) writes: the run ends `cancelled` with the cancel error,
/// and every step not yet settled becomes `skipped`, as `engine::advance`
/// would have finished it.
#[derive(Debug, Clone, PartialEq)]
pub struct UnheldCancel {
    pub status: RunStatus,
    pub error: RunError,
    pub unsettled_steps_become: StepStatus,
}

pub fn cancel_unheld() -> UnheldCancel {
    UnheldCancel {
        status: RunStatus::Cancelled,
        error: RunError::cancelled(),
        unsettled_steps_become: StepStatus::Skipped,
    }
}

/// `'a', 'b'` for a SQL `IN (…)` list, from the statuses' own names.
pub fn sql_list<T: Copy>(items: &[T], name: fn(T) -> &'static str) -> String {
    items
        .iter()
        .map(|s| format!("'{}'", name(*s)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `'pending', 'running', 'suspended'`.
pub fn unfinished_sql() -> String {
    sql_list(&RunStatus::UNFINISHED, RunStatus::as_str)
}

/// `'completed', 'failed', 'cancelled', 'timed_out'`.
pub fn terminal_sql() -> String {
    sql_list(&RunStatus::TERMINAL, RunStatus::as_str)
}

/// `'completed', 'failed', 'skipped'`.
pub fn settled_steps_sql() -> String {
    sql_list(&StepStatus::SETTLED, StepStatus::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn head(status: WorkflowStatus, def: &str) -> Option<StoredHead<'_>> {
        Some(StoredHead {
            latest_version: 3,
            status,
            definition: def,
        })
    }

    #[test]
    fn apply_creates_bumps_on_changed_content_only_and_keeps_status_unless_given() {
        use WorkflowStatus::{Active, Paused};
        let def = json!({"a": 1, "b": 2});
        let created = plan_apply(None, &def, None);
        assert_eq!((created.version, created.status), (1, Active));
        assert_eq!(created.result, ApplyResult::Created);
        assert_eq!(plan_apply(None, &def, Some(Paused)).status, Paused);

        // Key order aside, the same content: nothing to write.
        let same = plan_apply(head(Paused, r#"{"b":2,"a":1}"#), &def, None);
        assert_eq!(same.result, ApplyResult::Unchanged);
        let written = (same.version, same.new_version, same.write_head);
        assert_eq!(written, (3, false, false));
        assert_eq!(same.status, Paused);

        let changed = plan_apply(head(Paused, r#"{"a":1}"#), &def, None);
        assert_eq!((changed.version, changed.new_version), (4, true));
        assert_eq!(
            (changed.result, changed.status),
            (ApplyResult::Updated, Paused)
        );

        let status_only = plan_apply(head(Paused, r#"{"a":1,"b":2}"#), &def, Some(Active));
        assert_eq!((status_only.version, status_only.new_version), (3, false));
        assert_eq!(status_only.result, ApplyResult::Updated);
    }

    #[test]
    fn sql_lists_come_from_the_one_status_lists() {
        assert_eq!(unfinished_sql(), "'pending', 'running', 'suspended'");
        assert_eq!(
            terminal_sql(),
            "'completed', 'failed', 'cancelled', 'timed_out'"
        );
        assert_eq!(settled_steps_sql(), "'completed', 'failed', 'skipped'");
        let c = cancel_unheld();
        assert!(c.status.is_terminal());
        assert!(c.unsettled_steps_become.is_settled());
    }
}
