//! The run queue: claiming due runs, saving each run's progress (step results
//! and run state in one commit), parking, and start-up recovery.

use super::runs::{RUN_COLUMNS, decode, load_steps, opt_json, row_to_run};
use super::{Result, RunRow, StepRecord, Store};
use rusqlite::params;
use serde_json::Value;

/// How a run changes along with the step results saved with it.
#[derive(Debug, Clone, Default)]
pub struct RunUpdate {
    /// Final status, output and error: the run leaves the queue for good.
    pub finish: Option<(String, Value, Value)>,
    /// Park the run (a `wait` step or a pending retry): back in the queue,
    /// claimable from this time, holding no worker meanwhile.
    pub park_until: Option<i64>,
}

/// A step record as its columns.
struct StepRow {
    idx: i64,
    step_id: String,
    status: &'static str,
    output: Option<String>,
    error: Option<String>,
    warnings: Option<String>,
    attempts: i64,
    started_at: Option<i64>,
    completed_at: Option<i64>,
}

impl From<&StepRecord> for StepRow {
    fn from(s: &StepRecord) -> StepRow {
        StepRow {
            idx: s.idx as i64,
            step_id: s.step_id.clone(),
            status: s.status.as_str(),
            output: opt_json(&s.output),
            error: opt_json(&s.error),
            warnings: (!s.warnings.is_empty()).then(|| serde_json::json!(s.warnings).to_string()),
            attempts: s.attempts,
            started_at: s.started_at,
            completed_at: s.completed_at,
        }
    }
}

impl Store {
    /// Claim up to `limit` runs that are due, oldest first, with a lease.
    pub async fn claim_runs(&self, limit: usize, now: i64, lease_ms: i64) -> Result<Vec<RunRow>> {
        let claimed = self
            .write(move |c| {
                let mut pick = c.prepare_cached(&format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE ready = 1 AND not_before <= ?1 \
                     ORDER BY not_before, seq LIMIT ?2"
                ))?;
                let picked = pick
                    .query_map(params![now, limit as i64], row_to_run)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                // A claim takes the run out of the queue; it stays `pending` until
                // its worker's first write says it started.
                let mut mark =
                    c.prepare_cached("UPDATE runs SET ready = 0, lease_until = ?2 WHERE seq = ?1")?;
                let mut out = Vec::with_capacity(picked.len());
                for (mut run, json) in picked {
                    mark.execute(params![run.seq, now + lease_ms])?;
                    // Only a run that started before can have step results to resume from.
                    if run.started_at.is_some() {
                        run.steps = load_steps(c, run.seq)?;
                    }
                    out.push((run, json));
                }
                Ok(out)
            })
            .await?;
        // JSON is decoded here, off the single writer thread.
        claimed.into_iter().map(decode).collect()
    }

    /// The earliest time a parked run becomes due, if any is parked.
    pub async fn next_due(&self) -> Result<Option<i64>> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT MIN(not_before) FROM runs WHERE ready = 1")?
                    .query_row([], |r| r.get(0))?,
            )
        })
        .await
    }

    /// Save step results and the run's progress in one commit. Every save
    /// marks the run started (`running`, `startedAt`) unless it finishes it.
    /// Returns `false`, writing nothing, when the run was cancelled meanwhile.
    pub async fn save_progress(
        &self,
        seq: i64,
        started_at: i64,
        steps: Vec<StepRecord>,
        update: RunUpdate,
    ) -> Result<bool> {
        // Serialized here so the single writer thread only executes SQL.
        let rows: Vec<StepRow> = steps.iter().map(StepRow::from).collect();
        let finish = update
            .finish
            .map(|(status, output, error)| (status, opt_json(&output), opt_json(&error)));
        let park_until = update.park_until;
        let now = crate::time::now_ms();
        self.write(move |c| {
            let live = if let Some((status, output, error)) = &finish {
                c.prepare_cached(
                    "UPDATE runs SET status = ?2, output = ?3, error = ?4, completed_at = ?5, ready = 0, lease_until = NULL, \
                     started_at = COALESCE(started_at, ?6) WHERE seq = ?1 AND status != 'cancelled'",
                )?
                .execute(params![seq, status, output, error, now, started_at])?
            } else if let Some(at) = park_until {
                c.prepare_cached(
                    "UPDATE runs SET status = 'running', ready = 1, not_before = ?2, lease_until = NULL, \
                     started_at = COALESCE(started_at, ?3) WHERE seq = ?1 AND status != 'cancelled'",
                )?
                .execute(params![seq, at, started_at])?
            } else {
                c.prepare_cached(
                    "UPDATE runs SET status = 'running', started_at = COALESCE(started_at, ?2) \
                     WHERE seq = ?1 AND status != 'cancelled'",
                )?
                .execute(params![seq, started_at])?
            };
            if live == 0 {
                return Ok(false);
            }
            let mut put = c.prepare_cached(
                "INSERT OR REPLACE INTO steps (run_seq, idx, step_id, status, output, error, warnings, attempts, started_at, completed_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for r in &rows {
                put.execute(params![
                    seq,
                    r.idx,
                    r.step_id,
                    r.status,
                    r.output,
                    r.error,
                    r.warnings,
                    r.attempts,
                    r.started_at,
                    r.completed_at
                ])?;
            }
            Ok(true)
        })
        .await
    }

    /// Start-up recovery: the previous process is gone (the data dir lock
    /// proves it), so every run it held goes back to the queue.
    pub async fn requeue_in_flight(&self) -> Result<usize> {
        self.write(|c| {
            Ok(c.execute(
                "UPDATE runs SET ready = 1, lease_until = NULL WHERE ready = 0 AND status IN ('pending', 'running')",
                [],
            )?)
        })
        .await
    }

    /// Give back runs that were claimed but never handed to a worker
    /// (shutdown with a prefetched buffer): they are due again at once.
    pub async fn unclaim(&self, seqs: Vec<i64>) -> Result<()> {
        self.write(move |c| {
            let mut stmt = c.prepare_cached(
                "UPDATE runs SET ready = 1, lease_until = NULL \
                 WHERE seq = ?1 AND ready = 0 AND status IN ('pending', 'running')",
            )?;
            for seq in seqs {
                stmt.execute([seq])?;
            }
            Ok(())
        })
        .await
    }

    /// Runs due now and waiting for a worker.
    pub async fn queue_depth(&self, now: i64) -> Result<i64> {
        self.read(move |c| {
            Ok(
                c.prepare_cached("SELECT COUNT(*) FROM runs WHERE ready = 1 AND not_before <= ?1")?
                    .query_row([now], |r| r.get(0))?,
            )
        })
        .await
    }
}
