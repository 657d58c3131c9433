//! Runs, their step results and idempotency keys. Every state change of a run
//! is one job (one savepoint in a group-committed transaction).

use super::{Result, Store, StoreError, from_json, to_json};
pub use crate::engine::StepRecord;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct NewRun {
    pub id: String,
    pub workflow_id: String,
    pub workflow_version: i64,
    pub input: Value,
    pub idempotency_key: Option<String>,
    pub connection_id: Option<String>,
    pub created_at: i64,
    /// How long the idempotency key is remembered.
    pub idempotency_ttl_ms: i64,
    /// `api`, `schedule`, `webhook`, `replay` or `batch`.
    pub trigger_type: &'static str,
    /// A schedule's occurrence (ms): recorded in the same transaction, once.
    pub scheduled_at: Option<i64>,
    /// No worker starts the run before this (a schedule's jitter).
    pub not_before: i64,
}

#[derive(Debug, Clone)]
pub enum TriggerOutcome {
    Created(RunRow),
    Replayed(RunRow),
}

#[derive(Debug, Clone)]
pub struct RunRow {
    pub seq: i64,
    pub id: String,
    pub workflow_id: String,
    pub workflow_version: i64,
    pub status: String,
    pub input: Value,
    pub output: Value,
    pub error: Value,
    pub idempotency_key: Option<String>,
    pub connection_id: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub cancel_requested: bool,
    pub trigger_type: String,
    pub steps: Vec<StepRecord>,
}

impl RunRow {
    pub fn is_finished(&self) -> bool {
        matches!(
            self.status.as_str(),
            "completed" | "failed" | "cancelled" | "timed_out"
        )
    }
}

#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub workflow_id: Option<String>,
    pub status: Option<String>,
    pub trigger_type: Option<String>,
    pub before_seq: Option<i64>,
    pub limit: usize,
}

pub(super) const RUN_COLUMNS: &str = "seq, id, workflow_id, workflow_version, status, input, output, error, \
     idempotency_key, connection_id, created_at, started_at, completed_at, cancel_requested, trigger_type";

pub(super) fn row_to_run(r: &rusqlite::Row) -> rusqlite::Result<(RunRow, [Option<String>; 3])> {
    Ok((
        RunRow {
            seq: r.get(0)?,
            id: r.get(1)?,
            workflow_id: r.get(2)?,
            workflow_version: r.get(3)?,
            status: r.get(4)?,
            input: Value::Null,
            output: Value::Null,
            error: Value::Null,
            idempotency_key: r.get(8)?,
            connection_id: r.get(9)?,
            created_at: r.get(10)?,
            started_at: r.get(11)?,
            completed_at: r.get(12)?,
            cancel_requested: r.get::<_, i64>(13)? != 0,
            trigger_type: r.get(14)?,
            steps: vec![],
        },
        [r.get(5)?, r.get(6)?, r.get(7)?],
    ))
}

pub(super) fn decode(
    (mut run, [input, output, error]): (RunRow, [Option<String>; 3]),
) -> Result<RunRow> {
    run.input = from_json(input)?;
    run.output = from_json(output)?;
    run.error = from_json(error)?;
    Ok(run)
}

pub(super) fn load_steps(c: &Connection, seq: i64) -> Result<Vec<StepRecord>> {
    let mut stmt = c.prepare_cached(
        "SELECT idx, step_id, status, output, error, warnings, attempts, started_at, completed_at \
         FROM steps WHERE run_seq = ?1 ORDER BY idx",
    )?;
    let rows = stmt.query_map([seq], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, i64>(6)?,
            r.get::<_, Option<i64>>(7)?,
            r.get::<_, Option<i64>>(8)?,
        ))
    })?;
    let mut out = vec![];
    for row in rows {
        let (idx, step_id, status, output, error, warnings, attempts, started_at, completed_at) =
            row?;
        let warnings = match warnings {
            Some(w) => serde_json::from_str(&w)?,
            None => vec![],
        };
        let status = crate::engine::StepStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown step status '{status}'")))?;
        out.push(StepRecord {
            idx: idx as usize,
            step_id,
            status,
            output: from_json(output)?,
            error: from_json(error)?,
            warnings,
            attempts,
            started_at,
            completed_at,
        });
    }
    Ok(out)
}

fn run_by_id(c: &Connection, id: &str, with_steps: bool) -> Result<Option<RunRow>> {
    let found = c
        .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))?
        .query_row([id], row_to_run)
        .optional()?;
    let Some(found) = found else { return Ok(None) };
    let mut run = decode(found)?;
    if with_steps {
        run.steps = load_steps(c, run.seq)?;
    }
    Ok(Some(run))
}

/// Record a schedule's occurrence for `run_id`, or find the run that already
/// has it. An occurrence that was waiting (overlap `queue`, no run yet) is
/// taken by the first run that claims it.
fn claim_occurrence(
    c: &Connection,
    workflow_id: &str,
    scheduled_at: i64,
    run_id: &str,
    now: i64,
) -> Result<Option<RunRow>> {
    let claimed = c
        .prepare_cached(
            "INSERT INTO schedule_fires (workflow_id, scheduled_at, run_id, fired_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (workflow_id, scheduled_at) DO UPDATE SET run_id = excluded.run_id, fired_at = excluded.fired_at \
             WHERE schedule_fires.run_id IS NULL",
        )?
        .execute(params![workflow_id, scheduled_at, run_id, now])?;
    if claimed == 1 {
        return Ok(None);
    }
    let existing: Option<String> = c
        .prepare_cached(
            "SELECT run_id FROM schedule_fires WHERE workflow_id = ?1 AND scheduled_at = ?2",
        )?
        .query_row(params![workflow_id, scheduled_at], |r| r.get(0))?;
    match existing {
        Some(id) => run_by_id(c, &id, false)?
            .map(Some)
            .ok_or(StoreError::NotFound("run")),
        None => Err(StoreError::Corrupt(
            "schedule occurrence without a run".into(),
        )),
    }
}

pub(super) fn opt_json(v: &Value) -> Option<String> {
    (!v.is_null()).then(|| to_json(v))
}

impl Store {
    /// Insert a run, or return the run an unexpired idempotency key already
    /// names. Race-free: the check and the insert share one writer transaction.
    pub async fn create_run(&self, new: NewRun) -> Result<TriggerOutcome> {
        let input_json = to_json(&new.input);
        self.write(move |c| {
            if let Some(at) = new.scheduled_at
                && let Some(run) = claim_occurrence(c, &new.workflow_id, at, &new.id, new.created_at)?
            {
                return Ok(TriggerOutcome::Replayed(run));
            }
            if let Some(key) = &new.idempotency_key {
                let existing: Option<String> = c
                    .prepare_cached(
                        "SELECT run_id FROM idempotency_keys WHERE workflow_id = ?1 AND key = ?2 AND expires_at > ?3",
                    )?
                    .query_row(params![new.workflow_id, key, new.created_at], |r| r.get(0))
                    .optional()?;
                if let Some(run_id) = existing
                    && let Some(run) = run_by_id(c, &run_id, false)?
                {
                    return Ok(TriggerOutcome::Replayed(run));
                }
                c.prepare_cached(
                    "INSERT OR REPLACE INTO idempotency_keys (workflow_id, key, run_id, expires_at) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![new.workflow_id, key, new.id, new.created_at + new.idempotency_ttl_ms])?;
            }
            c.prepare_cached(
                "INSERT INTO runs (id, workflow_id, workflow_version, status, input, idempotency_key, connection_id, created_at, not_before, trigger_type) \
                 VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?9, ?8)",
            )?
            .execute(params![
                new.id,
                new.workflow_id,
                new.workflow_version,
                input_json,
                new.idempotency_key,
                new.connection_id,
                new.created_at,
                new.trigger_type,
                new.not_before
            ])?;
            Ok(TriggerOutcome::Created(RunRow {
                seq: c.last_insert_rowid(),
                id: new.id,
                workflow_id: new.workflow_id,
                workflow_version: new.workflow_version,
                status: "pending".into(),
                input: new.input,
                output: Value::Null,
                error: Value::Null,
                idempotency_key: new.idempotency_key,
                connection_id: new.connection_id,
                created_at: new.created_at,
                started_at: None,
                completed_at: None,
                cancel_requested: false,
                trigger_type: new.trigger_type.into(),
                steps: vec![],
            }))
        })
        .await
    }

    pub async fn get_run(&self, id: String) -> Result<RunRow> {
        self.read(move |c| run_by_id(c, &id, true)?.ok_or(StoreError::NotFound("run")))
            .await
    }

    /// Newest first; `before_seq` is the cursor of the previous page.
    pub async fn list_runs(&self, f: RunFilter) -> Result<Vec<RunRow>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE (?1 IS NULL OR workflow_id = ?1) AND (?2 IS NULL OR status = ?2) \
                 AND (?3 IS NULL OR seq < ?3) AND (?5 IS NULL OR trigger_type = ?5) ORDER BY seq DESC LIMIT ?4"
            ))?;
            let rows = stmt.query_map(
                params![f.workflow_id, f.status, f.before_seq, f.limit as i64, f.trigger_type],
                row_to_run,
            )?;
            rows.map(|r| decode(r?)).collect()
        })
        .await
    }

    /// Cancel: a run no worker has started (queued, parked, or claimed but
    /// still pending) ends now; a running one is flagged and its worker stops it
    /// before its next step. Finished runs are left as they are.
    pub async fn cancel_run(&self, id: String, now: i64) -> Result<RunRow> {
        self.write(move |c| {
            let run = run_by_id(c, &id, false)?.ok_or(StoreError::NotFound("run"))?;
            if !run.is_finished() {
                let error = serde_json::json!({"code": "CANCELLED", "message": "Run was cancelled"}).to_string();
                c.execute(
                    "UPDATE runs SET status = 'cancelled', error = ?2, completed_at = ?3, ready = 0 \
                     WHERE seq = ?1 AND (ready = 1 OR status = 'pending')",
                    params![run.seq, error, now],
                )?;
                c.execute(
                    "UPDATE runs SET cancel_requested = 1 WHERE seq = ?1 AND status = 'running' AND ready = 0",
                    params![run.seq],
                )?;
            }
            run_by_id(c, &id, true)?.ok_or(StoreError::NotFound("run"))
        })
        .await
    }

    /// Delete up to `batch` finished runs older than `cutoff` and expired
    /// idempotency keys; returns how many runs went. Small batches keep the
    /// writer free for triggers.
    pub async fn purge(&self, cutoff: i64, now: i64, batch: usize) -> Result<usize> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM idempotency_keys WHERE (workflow_id, key) IN \
                 (SELECT workflow_id, key FROM idempotency_keys WHERE expires_at <= ?1 LIMIT ?2)",
                params![now, batch as i64],
            )?;
            // Handled occurrences lie behind their schedule's next one for good.
            c.execute(
                "DELETE FROM schedule_fires WHERE (workflow_id, scheduled_at) IN \
                 (SELECT workflow_id, scheduled_at FROM schedule_fires WHERE fired_at < ?1 LIMIT ?2)",
                params![cutoff, batch as i64],
            )?;
            Ok(c.execute(
                "DELETE FROM runs WHERE seq IN (SELECT seq FROM runs WHERE completed_at IS NOT NULL AND completed_at < ?1 LIMIT ?2)",
                params![cutoff, batch as i64],
            )?)
        })
        .await
    }

    pub async fn count_runs_by_status(&self) -> Result<Vec<(String, i64)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT status, COUNT(*) FROM runs GROUP BY status")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }
}
