//! Workflows with their immutable versions, API keys and connections on
//! PostgreSQL. Versions are race-free across nodes: a workflow's row is
//! created with `ON CONFLICT DO NOTHING` and locked (`FOR UPDATE`) before a
//! new version is numbered, and `(workflow_id, version)` is the primary key.

use super::notify::Note;
use super::{PgStore, from_json, pg};
use crate::store::columns::workflow_status;
use crate::store::decisions::{StoredHead, plan_apply};
use crate::store::{
    ApiKeyRow, ApplyOutcome, ConnectionRow, ConnectionWrite, NewApiKey, Result, StoreError,
    WorkflowApply, WorkflowRow,
};
use crate::store::{ApiKeys, Connections, Registry};
use crate::workflow::WorkflowStatus;
use async_trait::async_trait;
use serde_json::Value;
use tokio_postgres::Row;

const WF_COLUMNS: &str = "id, name, status, latest_version, created_at, updated_at";
const CONN_COLUMNS: &str =
    "id, provider, name, status, is_default, config, secret, created_at, updated_at";
const KEY_COLUMNS: &str = "id, name, scopes, created_at, revoked_at";

fn workflow(r: &Row) -> Result<WorkflowRow> {
    Ok(WorkflowRow {
        id: r.get(0),
        name: r.get(1),
        status: workflow_status(r.get(2))?,
        latest_version: r.get(3),
        created_at: r.get(4),
        updated_at: r.get(5),
    })
}

fn connection(r: &Row) -> Result<ConnectionRow> {
    Ok(ConnectionRow {
        id: r.get(0),
        provider: crate::store::columns::connection_provider(r.get(1))?,
        name: r.get(2),
        status: crate::store::columns::connection_status(r.get(3))?,
        is_default: r.get(4),
        config: from_json(Some(r.get(5)))?,
        secret: r.get(6),
        created_at: r.get(7),
        updated_at: r.get(8),
    })
}

fn api_key(r: &Row) -> ApiKeyRow {
    let scopes: String = r.get(2);
    ApiKeyRow {
        id: r.get(0),
        name: r.get(1),
        scopes: scopes
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        created_at: r.get(3),
        revoked_at: r.get(4),
    }
}

#[async_trait]
impl Registry for PgStore {
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
        let text = definition.to_string();
        let concurrency = concurrency.map(|n| n as i32);
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let first = plan_apply(None, &definition, status);
        let created = tx
            .execute(
                "INSERT INTO workflows (id, name, status, latest_version, created_at, updated_at, concurrency) \
                 VALUES ($1, $2, $3, $4, flowctl_now_ms(), flowctl_now_ms(), $5) ON CONFLICT (id) DO NOTHING",
                &[&id, &name, &first.status.as_str(), &first.version, &concurrency],
            )
            .await
            .map_err(pg)?;
        if created == 1 {
            tx.execute(
                "INSERT INTO workflow_versions (workflow_id, version, definition, created_at) \
                 VALUES ($1, $2, $3, flowctl_now_ms())",
                &[&id, &first.version, &text],
            )
            .await
            .map_err(pg)?;
            tx.commit().await.map_err(pg)?;
            self.notifier().send(Note::Workflows);
            return Ok(ApplyOutcome {
                version: first.version,
                status: first.status,
                result: first.result,
            });
        }
        let head = tx
            .query_one(
                "SELECT w.latest_version, w.status, v.definition FROM workflows w \
                 JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.latest_version \
                 WHERE w.id = $1 FOR UPDATE OF w",
                &[&id],
            )
            .await
            .map_err(pg)?;
        let (latest, old_status, latest_def): (i64, String, String) =
            (head.get(0), head.get(1), head.get(2));
        let head = StoredHead {
            latest_version: latest,
            status: workflow_status(&old_status)?,
            definition: &latest_def,
        };
        let plan = plan_apply(Some(head), &definition, status);
        if plan.new_version {
            tx.execute(
                "INSERT INTO workflow_versions (workflow_id, version, definition, created_at) \
                 VALUES ($1, $2, $3, flowctl_now_ms())",
                &[&id, &plan.version, &text],
            )
            .await
            .map_err(pg)?;
        }
        if plan.write_head {
            tx.execute(
                "UPDATE workflows SET name = $2, status = $3, latest_version = $4, updated_at = flowctl_now_ms(), \
                 concurrency = $5 WHERE id = $1",
                &[&id, &name, &plan.status.as_str(), &plan.version, &concurrency],
            )
            .await
            .map_err(pg)?;
        }
        tx.commit().await.map_err(pg)?;
        if plan.result != crate::store::decisions::ApplyResult::Unchanged {
            self.notifier().send(Note::Workflows);
        }
        Ok(ApplyOutcome {
            version: plan.version,
            status: plan.status,
            result: plan.result,
        })
    }

    async fn get_workflow(&self, id: String) -> Result<WorkflowRow> {
        let c = self.client().await?;
        let sql = format!("SELECT {WF_COLUMNS} FROM workflows WHERE id = $1");
        let stmt = c.prepare_cached(&sql).await.map_err(pg)?;
        c.query_opt(&stmt, &[&id])
            .await
            .map_err(pg)?
            .map(|r| workflow(&r))
            .transpose()?
            .ok_or(StoreError::NotFound("workflow"))
    }

    async fn list_workflows(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<WorkflowRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {WF_COLUMNS} FROM workflows WHERE $1::TEXT IS NULL OR id > $1 ORDER BY id LIMIT $2"
                ),
                &[&after, &(limit as i64)],
            )
            .await
            .map_err(pg)?;
        rows.iter().map(workflow).collect()
    }

    async fn workflow_version(&self, id: String, version: i64) -> Result<(Value, i64)> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT definition, created_at FROM workflow_versions WHERE workflow_id = $1 AND version = $2",
                &[&id, &version],
            )
            .await
            .map_err(pg)?
            .ok_or(StoreError::NotFound("workflow version"))?;
        Ok((from_json(Some(row.get(0)))?, row.get(1)))
    }

    async fn set_workflow_status(&self, id: String, status: WorkflowStatus) -> Result<WorkflowRow> {
        let c = self.client().await?;
        c.query_opt(
            &format!(
                "UPDATE workflows SET status = $2, updated_at = flowctl_now_ms() WHERE id = $1 RETURNING {WF_COLUMNS}"
            ),
            &[&id, &status.as_str()],
        )
        .await
        .map_err(pg)?
        .map(|r| {
            self.notifier().send(Note::Workflows);
            workflow(&r)
        })
        .transpose()?
        .ok_or(StoreError::NotFound("workflow"))
    }
}

#[async_trait]
impl ApiKeys for PgStore {
    async fn create_api_key(&self, key: NewApiKey) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO api_keys (id, name, key_hash, scopes, created_at) VALUES ($1, $2, $3, $4, flowctl_now_ms())",
            &[&key.id, &key.name, &key.key_hash, &key.scopes.join(",")],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn api_key_by_hash(&self, hash: String) -> Result<Option<ApiKeyRow>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
        );
        let stmt = c.prepare_cached(&sql).await.map_err(pg)?;
        let r = c.query_opt(&stmt, &[&hash]).await.map_err(pg);
        Ok(self.seen(r)?.map(|r| api_key(&r)))
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"),
                &[],
            )
            .await
            .map_err(pg)?;
        Ok(rows.iter().map(api_key).collect())
    }

    async fn revoke_api_key(&self, id: String) -> Result<()> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE api_keys SET revoked_at = flowctl_now_ms() WHERE id = $1 AND revoked_at IS NULL",
                &[&id],
            )
            .await
            .map_err(pg)?;
        if n == 0 {
            return Err(StoreError::NotFound("active API key"));
        }
        Ok(())
    }
}

#[async_trait]
impl Connections for PgStore {
    /// Create or replace (`true` = created); a new default clears the
    /// provider's other default in the same transaction.
    async fn put_connection(&self, w: ConnectionWrite) -> Result<(ConnectionRow, bool)> {
        let config = w.config.to_string();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        if w.is_default {
            tx.execute(
                "UPDATE connections SET is_default = FALSE WHERE provider = $1 AND id <> $2",
                &[&w.provider.as_str(), &w.id],
            )
            .await
            .map_err(pg)?;
        }
        // `xmax = 0` only on a row this statement inserted.
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO connections AS c (id, provider, name, status, is_default, config, secret, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, flowctl_now_ms(), flowctl_now_ms()) \
                     ON CONFLICT (id) DO UPDATE SET provider = EXCLUDED.provider, name = EXCLUDED.name, \
                     status = EXCLUDED.status, is_default = EXCLUDED.is_default, config = EXCLUDED.config, \
                     secret = COALESCE(EXCLUDED.secret, c.secret), updated_at = EXCLUDED.updated_at \
                     RETURNING {CONN_COLUMNS}, (xmax = 0)"
                ),
                &[&w.id, &w.provider.as_str(), &w.name, &w.status.as_str(), &w.is_default, &config, &w.secret],
            )
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok((connection(&row)?, row.get(9)))
    }

    async fn list_connections(&self) -> Result<Vec<ConnectionRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!("SELECT {CONN_COLUMNS} FROM connections ORDER BY provider, id"),
                &[],
            )
            .await
            .map_err(pg)?;
        rows.iter().map(connection).collect()
    }

    async fn get_connection(&self, id: String) -> Result<ConnectionRow> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!("SELECT {CONN_COLUMNS} FROM connections WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(pg)?
            .ok_or(StoreError::NotFound("connection"))?;
        connection(&row)
    }

    async fn delete_connection(&self, id: String) -> Result<()> {
        let c = self.client().await?;
        let n = c
            .execute("DELETE FROM connections WHERE id = $1", &[&id])
            .await
            .map_err(pg)?;
        if n == 0 {
            return Err(StoreError::NotFound("connection"));
        }
        Ok(())
    }
}
