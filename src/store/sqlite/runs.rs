//! Runs, their step results and idempotency keys. Every state change of a run
//! is one job (one savepoint in a group-committed transaction).

use super::{SqliteStore, from_json, to_json};
use crate::engine::{RunStatus, StepRecord, StepStatus};
use crate::store::Runs;
use crate::store::columns::decode_output;
use crate::store::decisions::{cancel_unheld, listed_by_default_sql, settled_steps_sql};
use crate::store::{NewRun, Result, RunFilter, RunRow, StoreError, TriggerOutcome, TriggerType};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

pub(super) const RUN_COLUMNS: &str = "seq, id, workflow_id, workflow_version, status, input, output, error, \
     idempotency_key, connection_id, created_at, started_at, completed_at, cancel_requested, trigger_type, \
     parent_run_id, parent_step_id, root_run_id, depth, child_key, deadline_at, redrive_count";

/// A run row with its undecoded text columns (status, input, output,
/// error): decoding happens off the writer thread.
pub(super) type RawRun = (RunRow, String, [Option<String>; 3]);

pub(super) fn row_to_run(r: &rusqlite::Row) -> rusqlite::Result<RawRun> {
    Ok((
        RunRow {
            seq: r.get(0)?,
            id: r.get(1)?,
            workflow_id: r.get(2)?,
            workflow_version: r.get(3)?,
            status: RunStatus::Pending,
            input: Value::Null,
            output: Value::Null,
            error: None,
            idempotency_key: r.get(8)?,
            connection_id: r.get(9)?,
            created_at: r.get(10)?,
            started_at: r.get(11)?,
            completed_at: r.get(12)?,
            cancel_requested: r.get::<_, i64>(13)? != 0,
            trigger_type: TriggerType::parse(&r.get::<_, String>(14)?).unwrap_or_default(),
            steps: vec![],
            family: crate::store::Family {
                parent_run_id: r.get(15)?,
                parent_step_id: r.get(16)?,
                root_run_id: r.get(17)?,
                depth: r.get(18)?,
                key: r.get(19)?,
                deadline_at: r.get(20)?,
                children: None,
                redrive_count: r.get(21)?,
            },
            recoveries: 0,
        },
        r.get(4)?,
        [r.get(5)?, r.get(6)?, r.get(7)?],
    ))
}

pub(super) fn decode((mut run, status, [input, output, error]): RawRun) -> Result<RunRow> {
    run.status = RunStatus::parse(&status)
        .ok_or_else(|| StoreError::Decode(format!("unknown run status '{status}'")))?;
    run.input = from_json(input)?;
    run.output = from_json(output)?;
    run.error = decode_error(error)?;
    Ok(run)
}

pub(super) use crate::store::columns::{decode_error, encode_error};

/// A step row with its undecoded text columns.
pub(super) type RawStep = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
);

pub(super) fn load_steps(c: &Connection, seq: i64) -> Result<Vec<StepRecord>> {
    decode_steps(raw_steps(c, seq)?)
}

/// The step rows of one run, not decoded (a claim decodes them after its transaction).
pub(super) fn raw_steps(c: &Connection, seq: i64) -> Result<Vec<RawStep>> {
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
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn decode_steps(rows: Vec<RawStep>) -> Result<Vec<StepRecord>> {
    let mut out = vec![];
    for row in rows {
        let (idx, step_id, status, output, error, warnings, attempts, started_at, completed_at) =
            row;
        let warnings = match warnings {
            Some(w) => serde_json::from_str(&w)?,
            None => vec![],
        };
        let status = StepStatus::parse(&status)
            .ok_or_else(|| StoreError::Decode(format!("unknown step status '{status}'")))?;
        let (output, skip_reason) = decode_output(status, output)?;
        out.push(StepRecord {
            idx: idx as usize,
            step_id,
            status,
            output,
            skip_reason,
            error: decode_error(error)?,
            warnings,
            attempts,
            started_at,
            completed_at,
        });
    }
    Ok(out)
}

pub(super) fn run_by_id(c: &Connection, id: &str, with_steps: bool) -> Result<Option<RunRow>> {
    let found = c
        .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))?
        .query_row([id], row_to_run)
        .optional()?;
    let Some(found) = found else { return Ok(None) };
    let mut run = decode(found)?;
    if with_steps {
        run.steps = load_steps(c, run.seq)?;
        run.family.children = super::children::counts(c, &run.id)?;
    }
    Ok(Some(run))
}

#[async_trait]
impl Runs for SqliteStore {
    /// Insert a run, or return the run an unexpired idempotency key already
    /// names. Race-free: the check and the insert share one writer transaction.
    async fn create_run(&self, new: NewRun) -> Result<TriggerOutcome> {
        let input_json = to_json(&new.input);
        let created_at = crate::time::now_ms();
        self.write(move |c| {
            if let Some(at) = new.scheduled_at
                && let Some(run) = super::schedules::claim_occurrence(c, &new.workflow_id, at, &new.id, created_at)?
            {
                return Ok(TriggerOutcome::Replayed(run));
            }
            if let Some(key) = &new.idempotency_key {
                let existing: Option<String> = c
                    .prepare_cached(
                        "SELECT run_id FROM idempotency_keys WHERE workflow_id = ?1 AND key = ?2 AND expires_at > ?3",
                    )?
                    .query_row(params![new.workflow_id, key, created_at], |r| r.get(0))
                    .optional()?;
                if let Some(run_id) = existing
                    && let Some(run) = run_by_id(c, &run_id, false)?
                {
                    return Ok(TriggerOutcome::Replayed(run));
                }
                c.prepare_cached(
                    "INSERT OR REPLACE INTO idempotency_keys (workflow_id, key, run_id, expires_at) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![new.workflow_id, key, new.id, created_at + new.idempotency_ttl_ms])?;
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
                created_at,
                new.trigger_type.as_str(),
                created_at + new.delay_ms
            ])?;
            Ok(TriggerOutcome::Created(new.into_pending(c.last_insert_rowid(), created_at)))
        })
        .await
    }

    async fn get_run(&self, id: String) -> Result<RunRow> {
        self.read(move |c| run_by_id(c, &id, true)?.ok_or(StoreError::NotFound("run")))
            .await
    }

    /// Newest first; `before_seq` is the cursor of the previous page.
    async fn list_runs(&self, f: RunFilter) -> Result<Vec<RunRow>> {
        let status = f.status.map(RunStatus::as_str);
        self.read(move |c| {
            // A parent's children (10 000 items of a loop) are found by their index,
            // not by scanning every run for them.
            let parent = if f.parent_run_id.is_some() {
                "parent_run_id = ?6"
            } else {
                "?6 IS NULL"
            };
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE {parent} AND (?1 IS NULL OR workflow_id = ?1) AND (?2 IS NULL OR status = ?2) \
                 AND (?3 IS NULL OR seq < ?3) AND (?5 IS NULL OR trigger_type = ?5) \
                 AND (?6 IS NOT NULL OR ?7 OR {}) \
                 ORDER BY seq DESC LIMIT ?4",
                listed_by_default_sql()
            ))?;
            let rows = stmt.query_map(
                params![f.workflow_id, status, f.before_seq, f.limit as i64, f.trigger_type.map(TriggerType::as_str), f.parent_run_id, f.include_children],
                row_to_run,
            )?;
            rows.map(|r| decode(r?)).collect()
        })
        .await
    }

    /// Cancel, recorded in the store: a run no worker executes (queued,
    /// parked, or claimed but still pending) ends now; a claimed running one
    /// is flagged, and its holder's next commit answers `Cancelled`.
    /// Finished runs are left as they are.
    async fn cancel_run(&self, id: String) -> Result<RunRow> {
        let now = crate::time::now_ms();
        let cancel = cancel_unheld();
        let error = encode_error(&Some(cancel.error));
        self.write(move |c| {
            let run = run_by_id(c, &id, false)?.ok_or(StoreError::NotFound("run"))?;
            if !run.is_finished() {
                let ended = c.execute(
                    "UPDATE runs SET status = ?4, error = ?2, completed_at = ?3, ready = 0, \
                     lease_until = NULL, lease_owner = NULL, lease_token = lease_token + 1 \
                     WHERE seq = ?1 AND (ready = 1 OR status = 'pending' OR lease_until IS NULL)",
                    params![run.seq, error, now, cancel.status.as_str()],
                )?;
                if ended > 0 {
                    c.execute(
                        &format!(
                            "UPDATE steps SET status = ?2 WHERE run_seq = ?1 AND status NOT IN ({})",
                            settled_steps_sql()
                        ),
                        params![run.seq, cancel.unsettled_steps_become.as_str()],
                    )?;
                    super::outbox::on_ended(c, run.seq, cancel.status, now)?;
                    super::children::on_finished(c, run.seq)?;
                } else {
                    c.execute(
                        "UPDATE runs SET cancel_requested = 1 WHERE seq = ?1 AND status = 'running'",
                        params![run.seq],
                    )?;
                }
                super::children::cancel_children(c, &id, now, &error)?;
            }
            run_by_id(c, &id, true)?.ok_or(StoreError::NotFound("run"))
        })
        .await
    }

    /// Delete up to `batch` finished runs older than `cutoff` and expired
    /// idempotency keys; returns how many runs went. Small batches keep the
    /// writer free for triggers.
    async fn purge(&self, cutoff: i64, batch: usize) -> Result<usize> {
        let now = crate::time::now_ms();
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
            let gone = c.execute(
                "DELETE FROM runs WHERE seq IN (SELECT seq FROM runs WHERE completed_at IS NOT NULL AND completed_at < ?1 LIMIT ?2)",
                params![cutoff, batch as i64],
            )?;
            super::fanout::purge(c, batch)?;
            Ok(gone)
        })
        .await
    }

    async fn count_runs_by_status(&self) -> Result<Vec<(RunStatus, i64)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT status, COUNT(*) FROM runs GROUP BY status")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
            let mut out = vec![];
            for row in rows {
                let (status, n) = row?;
                let status = RunStatus::parse(&status)
                    .ok_or_else(|| StoreError::Decode(format!("unknown run status '{status}'")))?;
                out.push((status, n));
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl crate::store::ports::Redrives for SqliteStore {
    async fn redrive_run(&self, id: String) -> Result<Option<RunRow>> {
        self.write(move |c| {
            let run = run_by_id(c, &id, false)?.ok_or(StoreError::NotFound("run"))?;
            if !super::children::redrive(c, run.seq, crate::time::now_ms())? {
                return Ok(None);
            }
            run_by_id(c, &id, true)
        })
        .await
    }
}
