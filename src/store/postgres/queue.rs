//! The run queue and the lease protocol on PostgreSQL. `run_queue` holds one
//! row per unfinished run: queued (`lease_until IS NULL`, due at
//! `not_before`) or claimed (owner, deadline, token). A claim is one
//! statement (`FOR UPDATE SKIP LOCKED`, so nodes never wait on each other's
//! candidates); every write of a holder is fenced by its token; the row goes
//! when the run ends. Deadlines and due times use the database clock.

use super::notify::Note;
use super::runs::{RUN_COLUMNS, StepRow, run_from_row, steps_for};
use super::{Db, PgStore, opt_json, pg};
use crate::engine::RunStatus;
use crate::store::{Claim, ClaimRef, CommitOutcome, HeartbeatReport, Result, RunWrite};
use std::collections::HashMap;

/// Claims of capped workflows are serialised on this transaction-scoped
/// advisory lock, so two nodes never both take the last free slot.
const CAP_LOCK: i64 = 0x0066_6c6f_7763_6170;

fn claim_sql() -> String {
    let cols = RUN_COLUMNS
        .split(", ")
        .map(|c| format!("r.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "WITH caps AS ( \
           SELECT w.id, w.concurrency - (SELECT COUNT(*) FROM run_queue f \
             WHERE f.workflow_id = w.id AND f.lease_until IS NOT NULL) AS free \
           FROM workflows w WHERE w.concurrency IS NOT NULL), \
         cand AS ( \
           SELECT q.seq, q.workflow_id, q.not_before FROM run_queue q \
           WHERE q.lease_until IS NULL AND q.not_before <= flowctl_now_ms() \
             AND NOT EXISTS (SELECT 1 FROM caps WHERE caps.id = q.workflow_id AND caps.free <= 0) \
           ORDER BY q.not_before, q.seq LIMIT $2 FOR UPDATE SKIP LOCKED), \
         ranked AS ( \
           SELECT cand.seq, caps.free, ROW_NUMBER() OVER \
             (PARTITION BY cand.workflow_id ORDER BY cand.not_before, cand.seq) AS n \
           FROM cand LEFT JOIN caps ON caps.id = cand.workflow_id) \
         UPDATE run_queue q SET lease_owner = $1, lease_until = flowctl_now_ms() + $3, \
           lease_token = q.lease_token + 1 \
         FROM ranked, runs r \
         WHERE q.seq = ranked.seq AND (ranked.free IS NULL OR ranked.n <= ranked.free) AND r.seq = q.seq \
         RETURNING {cols}, q.lease_token, q.lease_until"
    )
}

impl PgStore {
    pub async fn claim(&self, owner: String, limit: usize, lease_ms: i64) -> Result<Vec<Claim>> {
        let r = self.claim_inner(owner, limit, lease_ms).await;
        self.seen(r)
    }

    async fn claim_inner(&self, owner: String, limit: usize, lease_ms: i64) -> Result<Vec<Claim>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        // Taken before the claim's snapshot, so the counts it reads include
        // every claim committed by the node that held the lock before.
        tx.execute(
            "SELECT pg_advisory_xact_lock($1) FROM workflows WHERE concurrency IS NOT NULL LIMIT 1",
            &[&CAP_LOCK],
        )
        .await
        .map_err(pg)?;
        let stmt = tx.prepare_cached(&claim_sql()).await.map_err(pg)?;
        let rows = tx
            .query(&stmt, &[&owner, &(limit as i64), &lease_ms])
            .await
            .map_err(pg)?;
        let n = RUN_COLUMNS.split(", ").count();
        let mut claims = Vec::with_capacity(rows.len());
        for row in &rows {
            claims.push(Claim {
                run: run_from_row(row)?,
                token: row.get(n),
                lease_until: row.get(n + 1),
            });
        }
        // Only a run that started before can have step results to resume from.
        let started: Vec<i64> = claims
            .iter()
            .filter(|c| c.run.started_at.is_some())
            .map(|c| c.run.seq)
            .collect();
        if !started.is_empty() {
            let mut steps = steps_for(&Db::Tx(&tx), &started).await?;
            for claim in &mut claims {
                if let Some(s) = steps.remove(&claim.run.seq) {
                    claim.run.steps = s;
                }
            }
        }
        tx.commit().await.map_err(pg)?;
        claims.sort_by_key(|c| c.run.seq);
        Ok(claims)
    }

    pub async fn commit(&self, claim: ClaimRef, w: RunWrite) -> Result<CommitOutcome> {
        let parked = !w.status.is_terminal() && w.park_until.is_some();
        let r = self.commit_inner(claim, w).await;
        if parked && matches!(r, Ok(CommitOutcome::Saved)) {
            self.notifier().send(Note::Queued);
        }
        self.seen(r)
    }

    /// One statement (so one round trip and one atomic commit): the queue
    /// row fenced by the token, the run, and the changed step records.
    async fn commit_inner(&self, claim: ClaimRef, w: RunWrite) -> Result<CommitOutcome> {
        let rows: Vec<StepRow> = w.steps.iter().map(StepRow::from).collect();
        let output = opt_json(&w.output);
        let error = super::runs::encode_error(&w.error);
        let status = w.status.as_str();
        let cancelling = w.status == RunStatus::Cancelled;
        // One mapping from the engine's state to the queue row: gone when the
        // run ends, queued again when it parks, kept while it runs.
        let queue_change = if w.status.is_terminal() {
            "DELETE FROM run_queue WHERE seq = $1 AND lease_token = $2 AND lease_until IS NOT NULL \
             AND (NOT cancel_requested OR $8) AND $9::BIGINT = $9::BIGINT RETURNING seq"
        } else if w.park_until.is_some() {
            "UPDATE run_queue SET lease_until = NULL, lease_owner = NULL, not_before = $9 \
             WHERE seq = $1 AND lease_token = $2 AND lease_until IS NOT NULL \
             AND (NOT cancel_requested OR $8) RETURNING seq"
        } else {
            "UPDATE run_queue SET lease_token = lease_token WHERE seq = $1 AND lease_token = $2 \
             AND lease_until IS NOT NULL AND (NOT cancel_requested OR $8) AND $9::BIGINT = $9::BIGINT \
             RETURNING seq"
        };
        let sql = format!(
            "WITH q AS ({queue_change}), \
             r AS (UPDATE runs SET status = $3, started_at = COALESCE(runs.started_at, $4), \
               completed_at = $5, output = $6, error = $7 FROM q WHERE runs.seq = q.seq \
               RETURNING runs.seq, runs.id), \
             s AS (INSERT INTO steps (run_seq, idx, step_id, status, output, error, warnings, attempts, started_at, completed_at) \
               SELECT r.seq, u.* FROM r, UNNEST($10::INT[], $11::TEXT[], $12::TEXT[], $13::TEXT[], $14::TEXT[], \
                 $15::TEXT[], $16::BIGINT[], $17::BIGINT[], $18::BIGINT[]) \
                 AS u(idx, step_id, status, output, error, warnings, attempts, started_at, completed_at) \
               ON CONFLICT (run_seq, idx) DO UPDATE SET step_id = EXCLUDED.step_id, status = EXCLUDED.status, \
               output = EXCLUDED.output, error = EXCLUDED.error, warnings = EXCLUDED.warnings, \
               attempts = EXCLUDED.attempts, started_at = EXCLUDED.started_at, completed_at = EXCLUDED.completed_at) \
             SELECT id FROM r"
        );
        let park = w.park_until.unwrap_or(0);
        let idx: Vec<i32> = rows.iter().map(|r| r.idx).collect();
        let step_id: Vec<&str> = rows.iter().map(|r| r.step_id.as_str()).collect();
        let step_status: Vec<&str> = rows.iter().map(|r| r.status).collect();
        let step_output: Vec<Option<&str>> = rows.iter().map(|r| r.output.as_deref()).collect();
        let step_error: Vec<Option<&str>> = rows.iter().map(|r| r.error.as_deref()).collect();
        let warnings: Vec<Option<&str>> = rows.iter().map(|r| r.warnings.as_deref()).collect();
        let attempts: Vec<i64> = rows.iter().map(|r| r.attempts).collect();
        let started: Vec<Option<i64>> = rows.iter().map(|r| r.started_at).collect();
        let completed: Vec<Option<i64>> = rows.iter().map(|r| r.completed_at).collect();
        let c = self.client().await?;
        let stmt = c.prepare_cached(&sql).await.map_err(pg)?;
        let updated = c
            .query_opt(
                &stmt,
                &[
                    &claim.seq,
                    &claim.token,
                    &status,
                    &w.started_at,
                    &w.completed_at,
                    &output,
                    &error,
                    &cancelling,
                    &park,
                    &idx,
                    &step_id,
                    &step_status,
                    &step_output,
                    &step_error,
                    &warnings,
                    &attempts,
                    &started,
                    &completed,
                ],
            )
            .await
            .map_err(pg)?;
        let Some(updated) = updated else {
            let now = c
                .query_opt(
                    "SELECT lease_token, lease_until IS NOT NULL, cancel_requested FROM run_queue WHERE seq = $1",
                    &[&claim.seq],
                )
                .await
                .map_err(pg)?;
            return Ok(match now {
                Some(r)
                    if r.get::<_, i64>(0) == claim.token
                        && r.get::<_, bool>(1)
                        && r.get::<_, bool>(2) =>
                {
                    CommitOutcome::Cancelled
                }
                _ => CommitOutcome::LeaseLost,
            });
        };
        if w.status.is_terminal() {
            self.notifier().send(Note::Finished(updated.get(0)));
            // A slot of a capped workflow may have come free on any node.
            self.notifier().send(Note::Queued);
        }
        Ok(CommitOutcome::Saved)
    }

    pub async fn heartbeat(
        &self,
        owner: String,
        claims: Vec<ClaimRef>,
        lease_ms: i64,
    ) -> Result<HeartbeatReport> {
        let seqs: Vec<i64> = claims.iter().map(|c| c.seq).collect();
        let tokens: Vec<i64> = claims.iter().map(|c| c.token).collect();
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "UPDATE run_queue q SET lease_until = flowctl_now_ms() + $3 \
                 FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS c(seq, token) \
                 WHERE q.seq = c.seq AND q.lease_token = c.token AND q.lease_owner = $4 \
                 AND q.lease_until IS NOT NULL \
                 RETURNING q.seq, q.cancel_requested, q.lease_until",
            )
            .await
            .map_err(pg)?;
        let r = c
            .query(&stmt, &[&seqs, &tokens, &lease_ms, &owner])
            .await
            .map_err(pg);
        let rows = self.seen(r)?;
        let mut kept: HashMap<i64, bool> = HashMap::new();
        let mut report = HeartbeatReport::default();
        for row in rows {
            kept.insert(row.get(0), row.get(1));
            report.lease_until = row.get(2);
        }
        for claim in claims {
            match kept.get(&claim.seq) {
                None => report.lost.push(claim),
                Some(true) => report.cancelled.push(claim),
                Some(false) => {}
            }
        }
        Ok(report)
    }

    pub async fn release(&self, claims: Vec<ClaimRef>) -> Result<()> {
        let seqs: Vec<i64> = claims.iter().map(|c| c.seq).collect();
        let tokens: Vec<i64> = claims.iter().map(|c| c.token).collect();
        let c = self.client().await?;
        c.execute(
            "UPDATE run_queue q SET lease_until = NULL, lease_owner = NULL, lease_token = q.lease_token + 1 \
             FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS c(seq, token) \
             WHERE q.seq = c.seq AND q.lease_token = c.token AND q.lease_until IS NOT NULL",
            &[&seqs, &tokens],
        )
        .await
        .map_err(pg)?;
        self.notifier().send(Note::Queued);
        Ok(())
    }

    /// Rescue: any live node puts runs whose lease ran out (their holder
    /// died, hung or lost the database) back in the queue.
    pub async fn sweep_expired(&self) -> Result<usize> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "UPDATE run_queue SET lease_until = NULL, lease_owner = NULL, lease_token = lease_token + 1 \
                 WHERE lease_until IS NOT NULL AND lease_until < flowctl_now_ms()",
            )
            .await
            .map_err(pg)?;
        let n = c.execute(&stmt, &[]).await.map_err(pg)? as usize;
        if n > 0 {
            self.notifier().send(Note::Queued);
        }
        Ok(n)
    }

    /// The earliest due time of a queued run that a claim could take (runs
    /// of a workflow at its cap wait for a slot, not for a time), on this
    /// node's clock (the worker sleeps on it): the database clock's distance
    /// to it is added to the local time.
    pub async fn next_due(&self) -> Result<Option<i64>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT MIN(q.not_before) - flowctl_now_ms() FROM run_queue q WHERE q.lease_until IS NULL \
                 AND q.workflow_id NOT IN (SELECT w.id FROM workflows w WHERE w.concurrency IS NOT NULL \
                   AND w.concurrency <= (SELECT COUNT(*) FROM run_queue f \
                     WHERE f.workflow_id = w.id AND f.lease_until IS NOT NULL))",
            )
            .await
            .map_err(pg)?;
        let row = c.query_one(&stmt, &[]).await.map_err(pg)?;
        Ok(row
            .get::<_, Option<i64>>(0)
            .map(|d| crate::time::now_ms() + d))
    }

    pub async fn queue_depth(&self) -> Result<i64> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "SELECT COUNT(*) FROM run_queue WHERE lease_until IS NULL AND not_before <= flowctl_now_ms()",
                &[],
            )
            .await
            .map_err(pg)?;
        Ok(row.get(0))
    }
}
