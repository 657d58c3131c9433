//! Decisions both stores make, written once as pure functions; each store's
//! SQL only carries them out (and `store/contract.rs` checks both agree):
//! what applying a definition does to the version and status, what a
//! cancel of a run no worker holds writes, what a commit does to the queue,
//! how child runs are counted, recorded on their parent, listed and
//! redriven, what a decision on an approval answers, and the status lists
//! SQL `IN` clauses are built from.

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

/// What a commit does to a claimed run's place in the queue, from the
/// engine's state: the one mapping both stores' commit statements follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueChange {
    /// Finished: out of the queue for good, the lease ends.
    Ended,
    /// Parked (a `wait` step, a pending retry): queued again, due at this
    /// time, holding no worker and no `concurrency` slot.
    Parked(i64),
    /// Waiting for its children with no deadline: out of the claimable
    /// queue, holding no worker and no slot, until a child's finish queues
    /// it again. (With a deadline it is `Parked` until then, and a child's
    /// finish makes it due at once.)
    Suspended,
    /// Runs on: the holder keeps its lease.
    Held,
}

pub fn queue_change(w: &super::RunWrite) -> QueueChange {
    match (w.status.is_terminal(), w.park_until) {
        (true, _) => QueueChange::Ended,
        (false, Some(at)) => QueueChange::Parked(at),
        (false, None) if w.suspend => QueueChange::Suspended,
        (false, None) => QueueChange::Held,
    }
}

/// The runs redrive continues as the same run.
pub const REDRIVABLE: [RunStatus; 3] =
    [RunStatus::Failed, RunStatus::TimedOut, RunStatus::Cancelled];

pub fn redrivable(status: RunStatus) -> bool {
    REDRIVABLE.contains(&status)
}

/// `'failed', 'timed_out', 'cancelled'`.
pub fn redrivable_sql() -> String {
    sql_list(&REDRIVABLE, RunStatus::as_str)
}

/// How a child's status counts in its parent's `children`: `completed`, a
/// failure (`failed`, `cancelled`, `timed_out`), or still `running`.
pub fn count_child(counts: &mut super::ChildCounts, status: RunStatus, n: i64) {
    counts.total += n;
    match status {
        RunStatus::Completed => counts.completed += n,
        RunStatus::Failed | RunStatus::Cancelled | RunStatus::TimedOut => counts.failed += n,
        RunStatus::Pending | RunStatus::Running | RunStatus::Suspended => counts.running += n,
    }
}

/// The record of a finished child that its finish puts on the parent's
/// waiting step (`output.child`), which the engine settles the step from.
/// PostgreSQL builds the same object in SQL (`postgres/children.rs`) with
/// these keys in this order; the contract checks both.
pub fn child_record(run_id: &str, status: RunStatus, output: Value, error: Value) -> Value {
    serde_json::json!({"runId": run_id, "status": status.as_str(), "output": output, "error": error})
}

/// Whether a run appears in `GET /api/v1/runs` without `parentRunId` or
/// `includeChildren`: runs started from outside and the children of
/// `workflow` steps (`triggerType: "workflow"`) do; the children that run a
/// block's body (a loop's items, parallel branches) do not.
pub fn listed_by_default(has_parent: bool, trigger_type: super::TriggerType) -> bool {
    !has_parent || trigger_type == super::TriggerType::Workflow
}

/// `listed_by_default` as a SQL condition on a `runs` row.
pub fn listed_by_default_sql() -> String {
    format!(
        "(parent_run_id IS NULL OR trigger_type = '{}')",
        super::TriggerType::Workflow.as_str()
    )
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

/// An approval as a decision finds it (its row and its run), read under the
/// store's lock before anything is written.
pub struct ApprovalAsFound<'a> {
    pub run_id: &'a str,
    pub step_id: &'a str,
    /// `pending`, `approved` or `rejected`.
    pub status: &'a str,
    /// The decision that settled it (JSON), once settled.
    pub resolution: Option<&'a str>,
    pub expires_at: i64,
    /// The run's status, and whether it sits parked with no worker holding it.
    pub run_status: &'a str,
    pub run_parked: bool,
}

/// What a decision answers before anything is written, the same on both
/// stores: the decider's earlier decision again is a replay, a different one
/// (or any on a settled approval) a conflict, a run no longer suspended or an
/// approval past its deadline is expired; `None`: record the decision.
pub fn judge_decision(
    a: &ApprovalAsFound,
    decision: &str,
    previous: Option<super::DecisionRecord>,
    now: i64,
) -> super::Result<Option<super::DecisionOutcome>> {
    use super::{DecisionOutcome, DecisionRecord, StoreError};
    if let Some(prev) = previous {
        return Ok(Some(if prev.decision == decision {
            DecisionOutcome::Replayed {
                run_id: a.run_id.to_string(),
                step_id: a.step_id.to_string(),
                record: prev,
            }
        } else {
            DecisionOutcome::AlreadyDecided { recorded: prev }
        }));
    }
    if a.status != "pending" {
        let recorded = a
            .resolution
            .and_then(|r| serde_json::from_str::<Value>(r).ok())
            .and_then(|v| DecisionRecord::from_value(&v))
            .ok_or_else(|| StoreError::Decode("an approval's resolution".into()))?;
        return Ok(Some(DecisionOutcome::AlreadyDecided { recorded }));
    }
    if a.run_status != RunStatus::Suspended.as_str() || !a.run_parked {
        return Ok(Some(DecisionOutcome::Expired(format!(
            "run {} is {}; this approval no longer decides anything",
            a.run_id, a.run_status
        ))));
    }
    if now >= a.expires_at {
        return Ok(Some(DecisionOutcome::Expired(format!(
            "the approval expired at {}",
            crate::time::rfc3339(a.expires_at)
        ))));
    }
    Ok(None)
}

/// The status a recorded decision settles its approval with: any rejection
/// settles it at once, approvals count up to `required`; `None`: still open.
pub fn settled_by(decision: &str, approvals: i64, required: i64) -> Option<&'static str> {
    if decision == "reject" {
        Some("rejected")
    } else if approvals >= required {
        Some("approved")
    } else {
        None
    }
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
        assert_eq!(redrivable_sql(), "'failed', 'timed_out', 'cancelled'");
        assert!(REDRIVABLE.iter().all(|s| s.is_terminal()));
        assert!(!redrivable(RunStatus::Completed));
    }

    #[test]
    fn a_commit_ends_parks_suspends_or_keeps_the_lease() {
        use super::super::RunWrite;
        let w = |status: RunStatus, park_until: Option<i64>, suspend: bool| RunWrite {
            status,
            started_at: None,
            completed_at: None,
            output: Value::Null,
            error: None,
            park_until,
            steps: vec![],
            spawn: None,
            suspend,
            fanout: None,
            break_loop: false,
            suspension: None,
        };
        assert_eq!(
            queue_change(&w(RunStatus::Completed, None, false)),
            QueueChange::Ended
        );
        // A finish wins over a park or a suspension.
        assert_eq!(
            queue_change(&w(RunStatus::Failed, Some(5), true)),
            QueueChange::Ended
        );
        assert_eq!(
            queue_change(&w(RunStatus::Running, Some(5), false)),
            QueueChange::Parked(5)
        );
        assert_eq!(
            queue_change(&w(RunStatus::Running, None, true)),
            QueueChange::Suspended
        );
        assert_eq!(
            queue_change(&w(RunStatus::Running, None, false)),
            QueueChange::Held
        );
    }

    #[test]
    fn children_count_by_outcome_and_only_block_children_are_hidden() {
        use super::super::{ChildCounts, TriggerType};
        let mut n = ChildCounts::default();
        for s in [
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::Cancelled,
            RunStatus::TimedOut,
            RunStatus::Pending,
            RunStatus::Running,
        ] {
            count_child(&mut n, s, 1);
        }
        assert_eq!(
            n,
            ChildCounts {
                total: 6,
                completed: 1,
                failed: 3,
                running: 2
            }
        );
        assert!(listed_by_default(false, TriggerType::Api));
        assert!(listed_by_default(true, TriggerType::Workflow));
        assert!(!listed_by_default(true, TriggerType::Batch));
        assert_eq!(
            listed_by_default_sql(),
            "(parent_run_id IS NULL OR trigger_type = 'workflow')"
        );
        let rec = child_record(
            "run_1",
            RunStatus::Failed,
            Value::Null,
            json!({"code": "X"}),
        );
        assert_eq!(
            rec.to_string(),
            r#"{"runId":"run_1","status":"failed","output":null,"error":{"code":"X"}}"#
        );
    }

    #[test]
    fn a_decision_is_judged_the_same_on_both_stores() {
        use crate::store::{DecisionOutcome, DecisionRecord};
        let open = ApprovalAsFound {
            run_id: "run_1",
            step_id: "ask",
            status: "pending",
            resolution: None,
            expires_at: 100,
            run_status: "suspended",
            run_parked: true,
        };
        assert!(matches!(
            judge_decision(&open, "approve", None, 50),
            Ok(None)
        ));
        let mine = DecisionRecord {
            by: "ana".into(),
            decision: "approve".into(),
            comment: None,
            at: 10,
        };
        assert!(matches!(
            judge_decision(&open, "approve", Some(mine.clone()), 50),
            Ok(Some(DecisionOutcome::Replayed { .. }))
        ));
        assert!(matches!(
            judge_decision(&open, "reject", Some(mine.clone()), 50),
            Ok(Some(DecisionOutcome::AlreadyDecided { .. }))
        ));
        let settled = mine.to_value().to_string();
        let done = ApprovalAsFound {
            status: "approved",
            resolution: Some(&settled),
            ..open
        };
        assert!(matches!(
            judge_decision(&done, "reject", None, 50),
            Ok(Some(DecisionOutcome::AlreadyDecided { .. }))
        ));
        let held = ApprovalAsFound {
            run_parked: false,
            ..open
        };
        assert!(matches!(
            judge_decision(&held, "approve", None, 50),
            Ok(Some(DecisionOutcome::Expired(_)))
        ));
        assert!(matches!(
            judge_decision(&open, "approve", None, 100),
            Ok(Some(DecisionOutcome::Expired(_)))
        ));
        assert_eq!(settled_by("reject", 0, 2), Some("rejected"));
        assert_eq!(settled_by("approve", 1, 2), None);
        assert_eq!(settled_by("approve", 2, 2), Some("approved"));
    }
}
