//! The run queue and the lease protocol in SQL. Queue states are columns:
//! `ready = 1` queued (due at `not_before`); `ready = 0` with a lease
//! claimed (`lease_owner`, `lease_until`, `lease_token`); `ready = 0` with a
//! terminal status finished. Every write for a claimed run is fenced by
//! `lease_token`, which grows on each claim, expiry and release.

use super::SqliteStore;
use super::runs::{RUN_COLUMNS, RawRun, decode, decode_steps, raw_steps, row_to_run};
use crate::engine::RunStatus;
use crate::store::admission::{self, Caps};
use crate::store::columns::{StepColumns as StepRow, encode_error, opt_json};
use crate::store::decisions::{QueueChange, queue_change, unfinished_sql};
use crate::store::{Claim, ClaimRef, CommitOutcome, HeartbeatReport, Result, RunQueue, RunWrite};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

/// Each capped workflow's cap and claimed runs, for the admission rule
/// (`store::admission`). Parked runs are `ready = 1`, so they never count.
fn caps(c: &Connection) -> Result<Caps> {
    let mut stmt = c.prepare_cached(
        "SELECT w.id, w.concurrency, (SELECT COUNT(*) FROM runs r WHERE r.workflow_id = w.id \
         AND r.ready = 0 AND r.lease_until IS NOT NULL) FROM workflows w WHERE w.concurrency IS NOT NULL",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    Ok(Caps::new(rows.collect::<rusqlite::Result<Vec<_>>>()?))
}

fn pick(c: &Connection, now: i64, limit: usize) -> Result<Vec<RawRun>> {
    let mut caps = caps(c)?;
    let full = caps.full();
    let picked = if full.is_empty() {
        c.prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE ready = 1 AND not_before <= ?1 \
             ORDER BY not_before, seq LIMIT ?2"
        ))?
        .query_map(params![now, limit as i64], row_to_run)?
        .collect::<rusqlite::Result<Vec<_>>>()?
    } else {
        let full = serde_json::to_string(&full)?;
        c.prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE ready = 1 AND not_before <= ?1 \
             AND workflow_id NOT IN (SELECT value FROM json_each(?3)) \
             ORDER BY not_before, seq LIMIT ?2"
        ))?
        .query_map(params![now, limit as i64, full], row_to_run)?
        .collect::<rusqlite::Result<Vec<_>>>()?
    };
    Ok(caps.admit(picked, |(run, _, _)| run.workflow_id.as_str()))
}

#[async_trait]
impl RunQueue for SqliteStore {
    async fn claim(&self, owner: &str, limit: usize, lease_ms: i64) -> Result<Vec<Claim>> {
        let owner = owner.to_string();
        let now = crate::time::now_ms();
        let lease_until = now + lease_ms;
        let claimed = self
            .write(move |c| {
                let picked = pick(c, now, limit)?;
                // No `RETURNING`: SQLite buffers returned rows in an ephemeral
                // table, opened and closed per claimed run (it showed in profiles).
                let mut mark = c.prepare_cached(
                    "UPDATE runs SET ready = 0, lease_owner = ?2, lease_until = ?3, \
                     lease_token = lease_token + 1 WHERE seq = ?1",
                )?;
                let mut token_of =
                    c.prepare_cached("SELECT lease_token, recoveries FROM runs WHERE seq = ?1")?;
                let mut out = Vec::with_capacity(picked.len());
                for (mut run, status, json) in picked {
                    mark.execute(params![run.seq, owner, lease_until])?;
                    let (token, recoveries): (i64, i64) =
                        token_of.query_row([run.seq], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    run.recoveries = u32::try_from(recoveries).unwrap_or(u32::MAX);
                    // Only a run that started before can have step results to resume from.
                    let steps = if run.started_at.is_some() {
                        raw_steps(c, run.seq)?
                    } else {
                        vec![]
                    };
                    out.push(((run, status, json), steps, token));
                }
                Ok(out)
            })
            .await?;
        // JSON is decoded here, off the single writer thread and outside the claim's
        // transaction, one run at a time: a row that cannot be read fails that run alone.
        let mut claims = Vec::with_capacity(claimed.len());
        for (raw, steps, token) in claimed {
            let seq = raw.0.seq;
            let decoded = decode(raw).and_then(|mut run| {
                run.steps = decode_steps(steps)?;
                Ok(run)
            });
            match decoded {
                Ok(run) => claims.push(Claim {
                    run,
                    token,
                    lease_until,
                }),
                Err(e) => self.fail_unreadable(ClaimRef { seq, token }, e).await,
            }
        }
        Ok(claims)
    }

    async fn commit(&self, claim: ClaimRef, w: RunWrite) -> Result<CommitOutcome> {
        let rows: Vec<StepRow> = w.steps.iter().map(StepRow::from).collect();
        let output = opt_json(&w.output);
        let error = encode_error(&w.error);
        let status = w.status.as_str();
        let terminal = w.status.is_terminal();
        let cancelling = w.status == RunStatus::Cancelled;
        let now = crate::time::now_ms();
        self.write(move |c| {
            // The one mapping from the engine's state to the queue columns.
            let (ready, not_before_park, keep_lease) = match queue_change(&w) {
                QueueChange::Ended => (0, None, false),
                QueueChange::Parked(at) => (1, Some(at), false),
                QueueChange::Suspended => (0, None, false),
                QueueChange::Held => (0, None, true),
            };
            let n = c
                .prepare_cached(
                    &format!(
"UPDATE runs SET status = ?3, started_at = COALESCE(started_at, ?4), completed_at = ?5, \
                     output = ?6, error = ?7, ready = ?8, not_before = COALESCE(?9, not_before), \
                     lease_until = CASE WHEN ?10 THEN lease_until END, \
                     lease_owner = CASE WHEN ?10 THEN lease_owner END \
                     WHERE seq = ?1 AND lease_token = ?2 AND ready = 0 \
                     AND status IN ({}) AND (cancel_requested = 0 OR ?11)",
 unfinished_sql()
),
                )?
                .execute(params![
                    claim.seq,
                    claim.token,
                    status,
                    w.started_at,
                    w.completed_at,
                    output,
                    error,
                    ready,
                    not_before_park,
                    keep_lease,
                    cancelling
                ])?;
            if n == 0 {
                let now: Option<(i64, i64, String, i64)> = c
                    .prepare_cached(
                        "SELECT lease_token, ready, status, cancel_requested FROM runs WHERE seq = ?1",
                    )?
                    .query_row([claim.seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .optional()?;
                return Ok(match now {
                    Some((token, 0, status, 1))
                        if token == claim.token && matches!(status.as_str(), "pending" | "running") =>
                    {
                        CommitOutcome::Cancelled
                    }
                    _ => CommitOutcome::LeaseLost,
                });
            }
            let mut put = c.prepare_cached(
                "INSERT OR REPLACE INTO steps (run_seq, idx, step_id, status, output, error, warnings, attempts, started_at, completed_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for r in &rows {
                put.execute(params![
                    claim.seq,
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
            if let Some(sp) = &w.spawn {
                super::children::spawn(c, claim.seq, sp, now)?;
            }
            if terminal {
                super::children::on_finished(c, claim.seq)?;
            }
            Ok(CommitOutcome::Saved)
        })
        .await
    }

    async fn heartbeat(
        &self,
        owner: &str,
        claims: Vec<ClaimRef>,
        lease_ms: i64,
    ) -> Result<HeartbeatReport> {
        let owner = owner.to_string();
        let lease_until = crate::time::now_ms() + lease_ms;
        self.write(move |c| {
            let mut renew = c.prepare_cached(&format!(
                "UPDATE runs SET lease_until = ?4 WHERE seq = ?1 AND lease_token = ?2 \
                 AND lease_owner = ?3 AND ready = 0 AND status IN ({}) \
                 RETURNING cancel_requested",
                unfinished_sql()
            ))?;
            let mut report = HeartbeatReport {
                lease_until,
                ..Default::default()
            };
            for claim in claims {
                match renew
                    .query_row(params![claim.seq, claim.token, owner, lease_until], |r| {
                        r.get::<_, i64>(0)
                    })
                    .optional()?
                {
                    None => report.lost.push(claim),
                    Some(1) => report.cancelled.push(claim),
                    Some(_) => {}
                }
            }
            Ok(report)
        })
        .await
    }

    async fn release(&self, claims: Vec<ClaimRef>) -> Result<()> {
        self.write(move |c| {
            let mut stmt = c.prepare_cached(
                &format!(
"UPDATE runs SET ready = 1, lease_until = NULL, lease_owner = NULL, lease_token = lease_token + 1 \
                 WHERE seq = ?1 AND lease_token = ?2 AND ready = 0 AND status IN ({})",
 unfinished_sql()
),
            )?;
            for claim in claims {
                stmt.execute(params![claim.seq, claim.token])?;
            }
            Ok(())
        })
        .await
    }

    async fn sweep_expired(&self) -> Result<usize> {
        let now = crate::time::now_ms();
        self.write(move |c| {
            Ok(c.prepare_cached(
                &format!(
                    "UPDATE runs SET ready = 1, lease_until = NULL, lease_owner = NULL, lease_token = lease_token + 1, \
                     recoveries = recoveries + 1 \
                     WHERE ready = 0 AND lease_until IS NOT NULL AND lease_until < ?1 AND status IN ({})",
                    unfinished_sql()
                ),
            )?
            .execute([now])?)
        })
        .await
    }

    /// The earliest due time of a queued run a claim may take
    /// (`admission::next_due`): runs behind a full cap wait for a slot.
    async fn next_due(&self) -> Result<Option<i64>> {
        self.read(|c| {
            let caps = caps(c)?;
            let mut stmt = c.prepare_cached(
                "SELECT workflow_id, not_before FROM runs WHERE ready = 1 \
                 AND workflow_id NOT IN (SELECT value FROM json_each(?1)) \
                 ORDER BY not_before, seq LIMIT 1",
            )?;
            let full = serde_json::to_string(&caps.full())?;
            let rows = stmt
                .query_map([full], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(admission::next_due(rows, &caps))
        })
        .await
    }

    async fn queue_depth(&self) -> Result<i64> {
        let now = crate::time::now_ms();
        self.read(move |c| {
            Ok(
                c.prepare_cached("SELECT COUNT(*) FROM runs WHERE ready = 1 AND not_before <= ?1")?
                    .query_row([now], |r| r.get(0))?,
            )
        })
        .await
    }
}

impl SqliteStore {
    /// Fails a claimed run whose stored state cannot be decoded (logged; if even that write
    /// fails, the lease runs out and the next claim tries again).
    async fn fail_unreadable(&self, claim: ClaimRef, e: crate::store::StoreError) {
        tracing::error!(seq = claim.seq, error = %e, "a claimed run cannot be read; failing it");
        let write = RunWrite::unreadable(&e, crate::time::now_ms());
        if let Err(e) = self.commit(claim, write).await {
            tracing::error!(seq = claim.seq, error = %e, "cannot fail an unreadable run");
        }
    }

    /// Start-up recovery for a server holding the file lock: no other
    /// process can hold a lease, so every claimed run goes back to the queue
    /// at once instead of after its lease.
    pub async fn requeue_all_claimed(&self) -> Result<usize> {
        self.write(|c| {
            Ok(c.execute(
                &format!(
"UPDATE runs SET ready = 1, lease_until = NULL, lease_owner = NULL, lease_token = lease_token + 1, \
                 recoveries = recoveries + 1 \
                 WHERE ready = 0 AND lease_until IS NOT NULL AND status IN ({})",
 unfinished_sql()
),
                [],
            )?)
        })
        .await
    }
}
