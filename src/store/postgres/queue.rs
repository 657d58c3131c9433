//! The run queue and the lease protocol on PostgreSQL. `run_queue` holds one
//! row per unfinished run: queued (`lease_until IS NULL`, due at
//! `not_before`) or claimed (owner, deadline, token). A claim is one
//! statement (`FOR UPDATE SKIP LOCKED`, so nodes never wait on each other's
//! candidates); every write of a holder is fenced by its token; the row goes
//! when the run ends. Deadlines and due times use the database clock.

use super::children::{RECORD_FINISHED, SUSPENDED, spawn_statements};
use super::notify::Note;
use super::runs::{RUN_COLUMNS, StepRow, run_from_row, steps_for};
use super::writer::{CommitCmd, Pending, Stmt, in_order};
use super::{Db, PgStore, opt_json, pg};
use crate::engine::RunStatus;
use crate::store::RunQueue;
use crate::store::admission::{self, Caps};
use crate::store::decisions::{QueueChange, queue_change};
use crate::store::{Claim, ClaimRef, CommitOutcome, HeartbeatReport, Result, RunWrite};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::LazyLock;
use tokio_postgres::types::ToSql;

/// Claims of capped workflows are serialised on this transaction-scoped
/// advisory lock, so two nodes never both take the last free slot.
const CAP_LOCK: i64 = 0x0066_6c6f_7763_6170;

/// A commit's statement by what happens to the queue row
/// (`decisions::queue_change`): the run ended (row deleted), parked (queued
/// again), suspended (unleased, due never) or runs on (row kept). `$1` seq,
/// `$2` token, `$3..$7` the run's columns, `$8` a cancel is being
/// finished, `$9` park until, `$10..$18` the changed step records.
static COMMIT_SQL: LazyLock<[String; 4]> = LazyLock::new(|| {
    let fence = "seq = $1 AND lease_token = $2 AND lease_until IS NOT NULL AND (NOT cancel_requested OR $8)";
    [
        format!("DELETE FROM run_queue WHERE {fence} AND $9::BIGINT = $9::BIGINT RETURNING seq"),
        format!(
            "UPDATE run_queue SET lease_until = NULL, lease_owner = NULL, not_before = $9 \
             WHERE {fence} RETURNING seq"
        ),
        format!(
            "UPDATE run_queue SET lease_until = NULL, lease_owner = NULL, not_before = {SUSPENDED} \
             WHERE {fence} AND $9::BIGINT = $9::BIGINT RETURNING seq"
        ),
        format!(
            "UPDATE run_queue SET lease_token = lease_token WHERE {fence} AND $9::BIGINT = $9::BIGINT \
             RETURNING seq"
        ),
    ]
    .map(|queue_change| {
        format!(
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
        )
    })
});

static CLAIM_SQL: LazyLock<String> = LazyLock::new(claim_sql);

/// The admission rule of `store::admission` (skip full workflows, give each
/// capped one at most its free slots) in one statement, so that it holds
/// atomically under `CAP_LOCK` without a round trip per step.
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
         RETURNING {cols}, q.lease_token, q.lease_until, q.recoveries"
    )
}

impl PgStore {
    async fn claim_inner(&self, owner: String, limit: usize, lease_ms: i64) -> Result<Vec<Claim>> {
        let c = self.client().await?;
        let claim = c.prepare_cached(&CLAIM_SQL).await.map_err(pg)?;
        let lock = c
            .prepare_cached(
                "SELECT pg_advisory_xact_lock($1) FROM workflows WHERE concurrency IS NOT NULL LIMIT 1",
            )
            .await
            .map_err(pg)?;
        let limit = limit as i64;
        let client: &tokio_postgres::Client = &c;
        let lock_params: [&(dyn ToSql + Sync); 1] = [&CAP_LOCK];
        let claim_params: [&(dyn ToSql + Sync); 3] = [&owner, &limit, &lease_ms];
        // One round trip: the whole transaction is sent before its answers
        // come back. The advisory lock is taken before the claim's snapshot,
        // so the counts it reads include every claim committed by the node
        // that held the lock before.
        let mut tx: Vec<Pending<'_>> = vec![];
        tx.push(Box::pin(async move {
            client.batch_execute("BEGIN").await.map(|_| vec![])
        }));
        tx.push(Box::pin(client.query(&lock, &lock_params)));
        tx.push(Box::pin(client.query(&claim, &claim_params)));
        tx.push(Box::pin(async move {
            client.batch_execute("COMMIT").await.map(|_| vec![])
        }));
        let answers = in_order(tx).await;
        let mut rows = vec![];
        for (i, a) in answers.into_iter().enumerate() {
            // After a failed statement the server answers COMMIT with a rollback.
            let a = a.map_err(pg)?;
            if i == 2 {
                rows = a;
            }
        }
        let n = RUN_COLUMNS.split(", ").count();
        let mut claims = Vec::with_capacity(rows.len());
        // Decoded one run at a time: a row that cannot be read fails that run alone.
        let mut unreadable = vec![];
        for row in &rows {
            let key = ClaimRef {
                seq: row.get(0),
                token: row.get(n),
            };
            match run_from_row(row) {
                Ok(mut run) => {
                    run.recoveries = u32::try_from(row.get::<_, i32>(n + 2)).unwrap_or(0);
                    claims.push(Claim {
                        run,
                        token: key.token,
                        lease_until: row.get(n + 1),
                    });
                }
                Err(e) => unreadable.push((key, e)),
            }
        }
        // Only a run that started before can have step results to resume from.
        let started: Vec<i64> = claims
            .iter()
            .filter(|c| c.run.started_at.is_some())
            .map(|c| c.run.seq)
            .collect();
        if !started.is_empty() {
            // Read after the claim committed: the lease keeps other writers out.
            let db = Db::Client(&c);
            match steps_for(&db, &started).await {
                Ok(mut steps) => {
                    for claim in &mut claims {
                        if let Some(s) = steps.remove(&claim.run.seq) {
                            claim.run.steps = s;
                        }
                    }
                }
                Err(e) if e.is_unavailable() => return Err(e),
                // Some run's steps cannot be read: find which, one run at a time.
                Err(_) => {
                    let mut kept = Vec::with_capacity(claims.len());
                    for mut claim in claims {
                        if claim.run.started_at.is_none() {
                            kept.push(claim);
                            continue;
                        }
                        match steps_for(&db, &[claim.run.seq]).await {
                            Ok(mut s) => {
                                claim.run.steps = s.remove(&claim.run.seq).unwrap_or_default();
                                kept.push(claim);
                            }
                            Err(e) if e.is_unavailable() => return Err(e),
                            Err(e) => unreadable.push((claim.key(), e)),
                        }
                    }
                    claims = kept;
                }
            }
        }
        drop(c);
        for (key, e) in unreadable {
            tracing::error!(seq = key.seq, error = %e, "a claimed run cannot be read; failing it");
            let write = RunWrite::unreadable(&e, crate::time::now_ms());
            if let Err(e) = self.commit(key, write).await {
                tracing::error!(seq = key.seq, error = %e, "cannot fail an unreadable run");
            }
        }
        claims.sort_by_key(|c| c.run.seq);
        Ok(claims)
    }

    /// One statement through the node's writer (which commits it together
    /// with the other writes waiting at that moment): the queue row fenced
    /// by the token, the run, and the changed step records.
    async fn commit_inner(&self, claim: ClaimRef, w: RunWrite) -> Result<CommitOutcome> {
        let rows: Vec<StepRow> = w.steps.iter().map(StepRow::from).collect();
        // The one mapping from the engine's state to the queue row: gone when
        // the run ends, queued again when it parks, due never while it waits
        // for its children, kept while it runs.
        let change = queue_change(&w);
        let sql = &COMMIT_SQL[match change {
            QueueChange::Ended => 0,
            QueueChange::Parked(_) => 1,
            QueueChange::Suspended => 2,
            QueueChange::Held => 3,
        }];
        let ends = change == QueueChange::Ended;
        let mut then = vec![];
        if let Some(sp) = &w.spawn {
            then.extend(spawn_statements(claim.seq, claim.token, sp));
        }
        if ends {
            // A waited-for child's finish reaches its parent in this transaction.
            then.push(Stmt {
                sql: &RECORD_FINISHED,
                params: vec![Box::new(claim.seq)],
            });
        }
        let params: Vec<Box<dyn ToSql + Send + Sync>> = vec![
            Box::new(claim.seq),
            Box::new(claim.token),
            Box::new(w.status.as_str()),
            Box::new(w.started_at),
            Box::new(w.completed_at),
            Box::new(opt_json(&w.output)),
            Box::new(super::runs::encode_error(&w.error)),
            Box::new(w.status == RunStatus::Cancelled),
            Box::new(w.park_until.unwrap_or(0)),
            Box::new(rows.iter().map(|r| r.idx as i32).collect::<Vec<i32>>()),
            Box::new(
                rows.iter()
                    .map(|r| r.step_id.clone())
                    .collect::<Vec<String>>(),
            ),
            Box::new(rows.iter().map(|r| r.status).collect::<Vec<&'static str>>()),
            Box::new(
                rows.iter()
                    .map(|r| r.output.clone())
                    .collect::<Vec<Option<String>>>(),
            ),
            Box::new(
                rows.iter()
                    .map(|r| r.error.clone())
                    .collect::<Vec<Option<String>>>(),
            ),
            Box::new(
                rows.iter()
                    .map(|r| r.warnings.clone())
                    .collect::<Vec<Option<String>>>(),
            ),
            Box::new(rows.iter().map(|r| r.attempts).collect::<Vec<i64>>()),
            Box::new(
                rows.iter()
                    .map(|r| r.started_at)
                    .collect::<Vec<Option<i64>>>(),
            ),
            Box::new(
                rows.iter()
                    .map(|r| r.completed_at)
                    .collect::<Vec<Option<i64>>>(),
            ),
        ];
        let updated = self
            .writer()
            .commit(CommitCmd {
                seq: claim.seq,
                sql,
                params,
                then,
                lock_parent: ends,
            })
            .await?;
        let Some(updated) = updated else {
            // Refused by the fence: find out why (rare, so a round trip of its own).
            let c = self.client().await?;
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
            self.notifier().send(Note::Finished(updated));
            // A slot of a capped workflow may have come free on any node.
            self.notifier().send(Note::Queued);
        }
        Ok(CommitOutcome::Saved)
    }
}

#[async_trait]
impl RunQueue for PgStore {
    async fn claim(&self, owner: &str, limit: usize, lease_ms: i64) -> Result<Vec<Claim>> {
        let r = self.claim_inner(owner.to_string(), limit, lease_ms).await;
        self.seen(r)
    }

    async fn commit(&self, claim: ClaimRef, w: RunWrite) -> Result<CommitOutcome> {
        // Parked, or a child queued: any node may take it.
        let parked = !w.status.is_terminal() && (w.park_until.is_some() || w.spawn.is_some());
        let r = self.commit_inner(claim, w).await;
        if parked && matches!(r, Ok(CommitOutcome::Saved)) {
            self.notifier().send(Note::Queued);
        }
        self.seen(r)
    }

    async fn heartbeat(
        &self,
        owner: &str,
        claims: Vec<ClaimRef>,
        lease_ms: i64,
    ) -> Result<HeartbeatReport> {
        let seqs: Vec<i64> = claims.iter().map(|c| c.seq).collect();
        let tokens: Vec<i64> = claims.iter().map(|c| c.token).collect();
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "WITH mine AS (SELECT q.seq FROM run_queue q \
                   JOIN UNNEST($1::BIGINT[], $2::BIGINT[]) AS c(seq, token) \
                     ON q.seq = c.seq AND q.lease_token = c.token \
                   WHERE q.lease_owner = $4 AND q.lease_until IS NOT NULL \
                   ORDER BY q.seq FOR UPDATE OF q) \
                 UPDATE run_queue q SET lease_until = flowctl_now_ms() + $3 FROM mine \
                 WHERE q.seq = mine.seq \
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

    async fn release(&self, claims: Vec<ClaimRef>) -> Result<()> {
        let seqs: Vec<i64> = claims.iter().map(|c| c.seq).collect();
        let tokens: Vec<i64> = claims.iter().map(|c| c.token).collect();
        let c = self.client().await?;
        c.execute(
            "WITH mine AS (SELECT q.seq FROM run_queue q \
               JOIN UNNEST($1::BIGINT[], $2::BIGINT[]) AS c(seq, token) \
                 ON q.seq = c.seq AND q.lease_token = c.token \
               WHERE q.lease_until IS NOT NULL ORDER BY q.seq FOR UPDATE OF q) \
             UPDATE run_queue q SET lease_until = NULL, lease_owner = NULL, lease_token = q.lease_token + 1 \
             FROM mine WHERE q.seq = mine.seq",
            &[&seqs, &tokens],
        )
        .await
        .map_err(pg)?;
        self.notifier().send(Note::Queued);
        Ok(())
    }

    /// Rescue: any live node puts runs whose lease ran out (their holder
    /// died, hung or lost the database) back in the queue.
    async fn sweep_expired(&self) -> Result<usize> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "WITH gone AS (SELECT seq FROM run_queue \
                   WHERE lease_until IS NOT NULL AND lease_until < flowctl_now_ms() \
                   ORDER BY seq FOR UPDATE SKIP LOCKED) \
                 UPDATE run_queue q SET lease_until = NULL, lease_owner = NULL, lease_token = q.lease_token + 1, \
                 recoveries = q.recoveries + 1 \
                 FROM gone WHERE q.seq = gone.seq",
            )
            .await
            .map_err(pg)?;
        let n = c.execute(&stmt, &[]).await.map_err(pg)? as usize;
        if n > 0 {
            self.notifier().send(Note::Queued);
        }
        Ok(n)
    }

    /// The earliest due time of a queued run that a claim could take
    /// (`admission::next_due`: runs of a workflow at its cap wait for a
    /// slot, not for a time), on this node's clock (the worker sleeps on
    /// it): the database clock's distance to it is added to the local time.
    async fn next_due(&self) -> Result<Option<i64>> {
        let c = self.client().await?;
        let caps = c
            .prepare_cached(
                "SELECT w.id, w.concurrency::BIGINT, (SELECT COUNT(*) FROM run_queue f \
                 WHERE f.workflow_id = w.id AND f.lease_until IS NOT NULL) \
                 FROM workflows w WHERE w.concurrency IS NOT NULL",
            )
            .await
            .map_err(pg)?;
        let caps = Caps::new(c.query(&caps, &[]).await.map_err(pg)?.iter().map(|r| {
            (
                r.get::<_, String>(0),
                r.get::<_, i64>(1),
                r.get::<_, i64>(2),
            )
        }));
        let earliest = c
            .prepare_cached(&format!(
                "SELECT q.workflow_id, q.not_before - flowctl_now_ms() FROM run_queue q \
                     WHERE q.lease_until IS NULL AND q.not_before < {SUSPENDED} \
                     AND NOT (q.workflow_id = ANY($1)) ORDER BY q.not_before, q.seq LIMIT 1"
            ))
            .await
            .map_err(pg)?;
        let rows = c.query(&earliest, &[&caps.full()]).await.map_err(pg)?;
        let now = crate::time::now_ms();
        Ok(admission::next_due(
            rows.iter()
                .map(|r| (r.get::<_, String>(0), now + r.get::<_, i64>(1))),
            &caps,
        ))
    }

    async fn queue_depth(&self) -> Result<i64> {
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
