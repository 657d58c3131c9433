//! Workflows and their immutable versions.

use super::{SqliteStore, from_json};
use crate::store::Registry;
use crate::store::columns::workflow_status;
use crate::store::decisions::{StoredHead, plan_apply};
use crate::store::{ApplyOutcome, Result, StoreError, WorkflowApply, WorkflowRow};
use crate::workflow::WorkflowStatus;
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use serde_json::Value;

const COLUMNS: &str = "id, name, status, latest_version, created_at, updated_at";

fn row_to_workflow(r: &rusqlite::Row) -> rusqlite::Result<WorkflowRow> {
    let status: String = r.get(2)?;
    let status = workflow_status(&status).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(WorkflowRow {
        id: r.get(0)?,
        name: r.get(1)?,
        status,
        latest_version: r.get(3)?,
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
    })
}

#[async_trait]
impl Registry for SqliteStore {
    /// Store a new version when the definition differs (key order aside) from the
    /// latest; a status given in the file is applied without a new version.
    async fn apply_workflow(&self, apply: WorkflowApply) -> Result<ApplyOutcome> {
        let WorkflowApply {
            id,
            name,
            definition,
            status,
            concurrency,
        } = apply;
        let now = crate::time::now_ms();
        let text = definition.to_string();
        self.write(move |c| {
            let existing: Option<(i64, String)> = c
                .query_row(
                    "SELECT latest_version, status FROM workflows WHERE id = ?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((latest, old_status)) = existing else {
                let plan = plan_apply(None, &definition, status);
                c.execute(
                    "INSERT INTO workflows (id, name, status, latest_version, created_at, updated_at, concurrency) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
                    params![id, name, plan.status.as_str(), plan.version, now, concurrency],
                )?;
                c.execute(
                    "INSERT INTO workflow_versions (workflow_id, version, definition, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![id, plan.version, text, now],
                )?;
                return Ok(ApplyOutcome { version: plan.version, status: plan.status, result: plan.result });
            };
            let latest_def: String = c.query_row(
                "SELECT definition FROM workflow_versions WHERE workflow_id = ?1 AND version = ?2",
                params![id, latest],
                |r| r.get(0),
            )?;
            let head = StoredHead { latest_version: latest, status: workflow_status(&old_status)?, definition: &latest_def };
            let plan = plan_apply(Some(head), &definition, status);
            if plan.new_version {
                c.execute(
                    "INSERT INTO workflow_versions (workflow_id, version, definition, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![id, plan.version, text, now],
                )?;
            }
            if plan.write_head {
                c.execute(
                    "UPDATE workflows SET name = ?2, status = ?3, latest_version = ?4, updated_at = ?5, concurrency = ?6 WHERE id = ?1",
                    params![id, name, plan.status.as_str(), plan.version, now, concurrency],
                )?;
            }
            Ok(ApplyOutcome { version: plan.version, status: plan.status, result: plan.result })
        })
        .await
    }

    async fn get_workflow(&self, id: String) -> Result<WorkflowRow> {
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM workflows WHERE id = ?1"))?
                .query_row([&id], row_to_workflow)
                .optional()?
                .ok_or(StoreError::NotFound("workflow"))
        })
        .await
    }

    /// Newest first by id order; `after` is the last id of the previous page.
    async fn list_workflows(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<WorkflowRow>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM workflows WHERE ?1 IS NULL OR id > ?1 ORDER BY id LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![after, limit as i64], row_to_workflow)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn workflow_version(&self, id: String, version: i64) -> Result<(Value, i64)> {
        self.read(move |c| {
            let row: Option<(String, i64)> = c
                .prepare_cached(
                    "SELECT definition, created_at FROM workflow_versions WHERE workflow_id = ?1 AND version = ?2",
                )?
                .query_row(params![id, version], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let (def, at) = row.ok_or(StoreError::NotFound("workflow version"))?;
            Ok((from_json(Some(def))?, at))
        })
        .await
    }

    async fn set_workflow_status(&self, id: String, status: WorkflowStatus) -> Result<WorkflowRow> {
        let now = crate::time::now_ms();
        self.write(move |c| {
            let n = c.execute(
                "UPDATE workflows SET status = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, status.as_str(), now],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound("workflow"));
            }
            Ok(c.query_row(
                &format!("SELECT {COLUMNS} FROM workflows WHERE id = ?1"),
                [&id],
                row_to_workflow,
            )?)
        })
        .await
    }
}
