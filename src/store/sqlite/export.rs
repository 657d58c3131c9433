//! The SQLite side of `flowctl db copy`: every table a deployment needs, read
//! in one read transaction on a read-only connection (one snapshot, while a
//! server may keep writing), in the column order `postgres/import.rs`
//! writes. Unfinished runs also yield their queue rows, with leases reset
//! (the fencing token bumped) so the new nodes may claim them at once.

use super::migrations;
use crate::store::copy::{Cell, Chunk, Row};
use crate::store::{Result, StoreError};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// Target table and the query that reads it, parents before children.
const TABLES: &[(&str, &str)] = &[
    (
        "workflows",
        "SELECT id, name, status, latest_version, created_at, updated_at, concurrency \
         FROM workflows ORDER BY id",
    ),
    (
        "workflow_versions",
        "SELECT workflow_id, version, definition, created_at FROM workflow_versions \
         ORDER BY workflow_id, version",
    ),
    (
        "runs",
        "SELECT seq, id, workflow_id, workflow_version, status, input, output, error, \
         idempotency_key, connection_id, created_at, started_at, completed_at, \
         cancel_requested, trigger_type, parent_run_id, parent_step_id, root_run_id, depth, \
         child_key, parent_waits, deadline_at, redrive_count FROM runs ORDER BY seq",
    ),
    // A claimed run's holder is gone from the new store's point of view:
    // queued again, due at once; a parked one keeps its due time; a
    // suspended one (waiting for its children: unclaimed, not queued) stays
    // suspended.
    (
        "run_queue",
        "SELECT seq, workflow_id, CASE WHEN ready = 1 THEN not_before \
         WHEN lease_until IS NULL THEN {suspended} ELSE 0 END, \
         lease_token + 1, cancel_requested FROM runs \
         WHERE status IN ({unfinished}) ORDER BY seq",
    ),
    (
        "steps",
        "SELECT run_seq, idx, step_id, status, output, error, warnings, attempts, \
         started_at, completed_at FROM steps ORDER BY run_seq, idx",
    ),
    // What suspended runs wait on: approvals (tokens, decisions) and callbacks.
    (
        "approvals",
        "SELECT run_id, step_id, workflow_id, reason, approvers, required, status, resolution, \
         created_at, expires_at, decided_at FROM approvals ORDER BY run_id, step_id",
    ),
    (
        "approval_tokens",
        "SELECT token_hash, run_id, step_id, approver, sealed, mail_due, mail_attempts \
         FROM approval_tokens ORDER BY token_hash",
    ),
    (
        "approval_decisions",
        "SELECT run_id, step_id, decided_by, decision, comment, decided_at \
         FROM approval_decisions ORDER BY decided_at, run_id, step_id",
    ),
    (
        "callbacks",
        "SELECT run_id, step_id, body, headers, received_at FROM callbacks ORDER BY run_id, step_id",
    ),
    (
        "idempotency_keys",
        "SELECT workflow_id, key, run_id, expires_at FROM idempotency_keys",
    ),
    (
        "api_keys",
        "SELECT id, name, key_hash, scopes, created_at, revoked_at FROM api_keys ORDER BY id",
    ),
    (
        "connections",
        "SELECT id, provider, name, status, is_default, config, secret, created_at, updated_at \
         FROM connections ORDER BY id",
    ),
    (
        "schedules",
        "SELECT workflow_id, version, next_at, updated_at FROM schedules",
    ),
    (
        "schedule_fires",
        "SELECT workflow_id, scheduled_at, run_id, fired_at FROM schedule_fires",
    ),
    (
        "ui_sessions",
        "SELECT id_hash, key_id, csrf_token, created_at, expires_at FROM ui_sessions",
    ),
];

/// Stream every table of the database at `path` to `send`, `batch` rows at
/// a time. `send` returning false (the writer gave up) stops the read.
pub fn export(path: &Path, batch: usize, mut send: impl FnMut(Chunk) -> bool) -> Result<()> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Open {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let version = migrations::check_not_newer(&conn)?;
    if version != migrations::LATEST {
        return Err(StoreError::Open {
            path: path.display().to_string(),
            reason: format!(
                "its schema is version {version}, this flowctl copies version {}: start \
                 `flowctl serve` of this version on it once (it upgrades the file), then copy",
                migrations::LATEST
            ),
        });
    }
    // A deferred transaction: the snapshot is taken by the first read and
    // holds for every table after it.
    conn.execute_batch("BEGIN")?;
    for (table, sql) in TABLES {
        if !send(Chunk::Table(table)) {
            return Ok(());
        }
        // The unfinished statuses come from their one list.
        let sql = sql
            .replace("{unfinished}", &crate::store::decisions::unfinished_sql())
            .replace("{suspended}", &crate::store::SUSPENDED_DUE.to_string());
        let mut stmt = conn.prepare(&sql)?;
        let width = stmt.column_count();
        let mut rows = stmt.query([])?;
        let mut pending: Vec<Row> = Vec::with_capacity(batch);
        while let Some(r) = rows.next()? {
            let mut row = Vec::with_capacity(width);
            for i in 0..width {
                row.push(match r.get_ref(i)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(n) => Cell::Int(n),
                    ValueRef::Real(x) => Cell::Real(x),
                    ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
                });
            }
            pending.push(row);
            if pending.len() >= batch && !send(Chunk::Rows(std::mem::take(&mut pending))) {
                return Ok(());
            }
        }
        if !pending.is_empty() && !send(Chunk::Rows(pending)) {
            return Ok(());
        }
    }
    conn.execute_batch("COMMIT")?;
    Ok(())
}

/// Whether a `flowctl serve` holds the file (its exclusive lock, `lock.rs`).
pub fn in_use(path: &Path) -> bool {
    match std::fs::File::open(path) {
        Ok(f) => matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}
