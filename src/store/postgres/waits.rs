//! Approvals, decisions and callbacks on PostgreSQL (`store::waits`), the
//! same rules as the SQLite store. Every write that can meet another about
//! one run (a suspend commit, a decision, a callback) locks that run's queue
//! row first, so they serialise: a callback that arrives while the run is
//! being suspended is seen by one of the two, never lost between them; 50
//! decisions on one approval, on any number of nodes, record exactly one.
//! Times come from the database clock.

use super::notify::Note;
use super::runs::{StepRow, encode_error};
use super::{PgStore, pg};
use crate::engine::{RunStatus, WaitingFor};
use crate::store::columns::opt_json;
use crate::store::waits::*;
use crate::store::{ClaimRef, CommitOutcome, Result, RunWrite, StoreError};
use async_trait::async_trait;
use deadpool_postgres::Transaction;
use serde_json::{Value, json};
use tokio_postgres::types::ToSql;

/// The parked commit of a run (fenced by its token, as in `queue.rs`), with
/// the run `suspended`: `$1` seq, `$2` token, `$3..$7` the run's columns,
/// `$8` cancelling, `$9` due at, `$10..$18` the changed steps.
const SUSPEND_SQL: &str = "WITH q AS (UPDATE run_queue SET lease_until = NULL, lease_owner = NULL, not_before = $9 \
       WHERE seq = $1 AND lease_token = $2 AND lease_until IS NOT NULL AND (NOT cancel_requested OR $8) \
       RETURNING seq), \
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
     SELECT id FROM r";

/// A commit that suspends a run, in one transaction of its own (suspensions
/// are rare; the hot path keeps its group commit): the run's state, then the
/// approval and its tokens, or a callback that came early.
pub(super) async fn commit_suspended(
    store: &PgStore,
    claim: ClaimRef,
    w: RunWrite,
) -> Result<CommitOutcome> {
    let Some(sw) = w.suspension.clone() else {
        return Err(StoreError::Backend("not a suspension".into()));
    };
    let rows: Vec<StepRow> = w.steps.iter().map(StepRow::from).collect();
    let params: Vec<Box<dyn ToSql + Send + Sync>> = vec![
        Box::new(claim.seq),
        Box::new(claim.token),
        Box::new(w.status.as_str()),
        Box::new(w.started_at),
        Box::new(w.completed_at),
        Box::new(opt_json(&w.output)),
        Box::new(encode_error(&w.error)),
        Box::new(w.status == RunStatus::Cancelled),
        Box::new(w.park_until.unwrap_or(0)),
        Box::new(rows.iter().map(|r| r.idx as i32).collect::<Vec<i32>>()),
        Box::new(rows.iter().map(|r| r.step_id.clone()).collect::<Vec<_>>()),
        Box::new(rows.iter().map(|r| r.status).collect::<Vec<&'static str>>()),
        Box::new(rows.iter().map(|r| r.output.clone()).collect::<Vec<_>>()),
        Box::new(rows.iter().map(|r| r.error.clone()).collect::<Vec<_>>()),
        Box::new(rows.iter().map(|r| r.warnings.clone()).collect::<Vec<_>>()),
        Box::new(rows.iter().map(|r| r.attempts).collect::<Vec<i64>>()),
        Box::new(rows.iter().map(|r| r.started_at).collect::<Vec<_>>()),
        Box::new(rows.iter().map(|r| r.completed_at).collect::<Vec<_>>()),
    ];
    let p: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let mut c = store.client().await?;
    let tx = c.transaction().await.map_err(pg)?;
    let saved = tx.query_opt(SUSPEND_SQL, &p).await.map_err(pg)?;
    let Some(row) = saved else {
        // Refused by the fence: a recorded cancel, or the lease is gone.
        let now = tx
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
    let run_id: String = row.get(0);
    let now = db_now(&tx).await?;
    if let Some(a) = &sw.approval {
        let added = tx
            .execute(
                "INSERT INTO approvals (run_id, step_id, workflow_id, reason, approvers, required, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                &[
                    &run_id,
                    &sw.step_id,
                    &a.workflow_id,
                    &a.reason,
                    &serde_json::to_string(&a.approvers)?,
                    &a.required,
                    &now,
                    &a.expires_at,
                ],
            )
            .await
            .map_err(pg)?;
        if added > 0 {
            for t in &a.tokens {
                let due = t.sealed.as_ref().map(|_| now);
                tx.execute(
                    "INSERT INTO approval_tokens (token_hash, run_id, step_id, approver, sealed, mail_due) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &[&t.token_hash, &run_id, &sw.step_id, &t.approver, &t.sealed, &due],
                )
                .await
                .map_err(pg)?;
            }
        }
    }
    let mut queued = false;
    if sw.waiting_for == WaitingFor::Callback
        && let Some(got) = stored_callback(&tx, &run_id, &sw.step_id).await?
    {
        put_on_step(&tx, claim.seq, &sw.step_id, "callback", &got).await?;
        queue(&tx, claim.seq, now).await?;
        queued = true;
    }
    tx.commit().await.map_err(pg)?;
    if queued || w.park_until.is_some() {
        store.notifier().send(Note::Queued);
    }
    Ok(CommitOutcome::Saved)
}

async fn db_now(tx: &Transaction<'_>) -> Result<i64> {
    Ok(tx
        .query_one("SELECT flowctl_now_ms()", &[])
        .await
        .map_err(pg)?
        .get(0))
}

async fn stored_callback(
    tx: &Transaction<'_>,
    run_id: &str,
    step_id: &str,
) -> Result<Option<Value>> {
    let row = tx
        .query_opt(
            "SELECT body, headers, received_at FROM callbacks WHERE run_id = $1 AND step_id = $2",
            &[&run_id, &step_id],
        )
        .await
        .map_err(pg)?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(json!({
        "body": crate::store::columns::from_json(row.get(0))?,
        "headers": crate::store::columns::from_json(row.get(1))?,
        "receivedAt": crate::time::rfc3339(row.get(2)),
    })))
}

/// Set `key` of the waiting step's output to `value`; whether it was waiting.
async fn put_on_step(
    tx: &Transaction<'_>,
    seq: i64,
    step_id: &str,
    key: &str,
    value: &Value,
) -> Result<bool> {
    Ok(tx
        .execute(
            "UPDATE steps SET output = (COALESCE(output, '{}')::jsonb || jsonb_build_object($3::TEXT, $4::TEXT::jsonb))::TEXT \
             WHERE run_seq = $1 AND step_id = $2 AND status = 'waiting'",
            &[&seq, &step_id, &key, &value.to_string()],
        )
        .await
        .map_err(pg)?
        > 0)
}

/// A suspended run no worker holds is due now.
async fn queue(tx: &Transaction<'_>, seq: i64, now: i64) -> Result<()> {
    tx.execute(
        "UPDATE run_queue SET not_before = LEAST(not_before, $2) WHERE seq = $1 AND lease_until IS NULL \
         AND EXISTS (SELECT 1 FROM runs WHERE seq = $1 AND status = 'suspended')",
        &[&seq, &now],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// The run's seq and status, and whether a worker holds it (`None`: no such
/// run), with its queue row locked: the order every write about a run takes.
async fn lock_run(tx: &Transaction<'_>, run_id: &str) -> Result<Option<(i64, String, bool)>> {
    let Some(row) = tx
        .query_opt("SELECT seq, status FROM runs WHERE id = $1", &[&run_id])
        .await
        .map_err(pg)?
    else {
        return Ok(None);
    };
    let seq: i64 = row.get(0);
    let held = tx
        .query_opt(
            "SELECT lease_until IS NOT NULL FROM run_queue WHERE seq = $1 FOR UPDATE",
            &[&seq],
        )
        .await
        .map_err(pg)?
        .map(|r| r.get::<_, bool>(0))
        .unwrap_or(false);
    // Read again under the lock: a commit that held it may have changed it.
    let status: String = tx
        .query_one("SELECT status FROM runs WHERE seq = $1", &[&seq])
        .await
        .map_err(pg)?
        .get(0);
    Ok(Some((seq, status, held)))
}

async fn decisions(
    tx: &Transaction<'_>,
    run_id: &str,
    step_id: &str,
) -> Result<Vec<DecisionRecord>> {
    let rows = tx
        .query(
            "SELECT decided_by, decision, comment, decided_at FROM approval_decisions \
             WHERE run_id = $1 AND step_id = $2 ORDER BY decided_at, n",
            &[&run_id, &step_id],
        )
        .await
        .map_err(pg)?;
    Ok(rows
        .iter()
        .map(|r| DecisionRecord {
            by: r.get(0),
            decision: r.get(1),
            comment: r.get(2),
            at: r.get(3),
        })
        .collect())
}

async fn decide(tx: &Transaction<'_>, req: DecisionRequest) -> Result<DecisionOutcome> {
    let (run_id, step_id, by) = match req.by {
        Decider::Token(hash) => {
            let found = tx
                .query_opt(
                    "SELECT run_id, step_id, approver FROM approval_tokens WHERE token_hash = $1",
                    &[&hash],
                )
                .await
                .map_err(pg)?;
            match found {
                Some(r) => (
                    r.get::<_, String>(0),
                    r.get::<_, String>(1),
                    r.get::<_, String>(2),
                ),
                None => {
                    return Ok(DecisionOutcome::NotFound(
                        "this approval link is not known (mistyped, or its run was deleted)".into(),
                    ));
                }
            }
        }
        Decider::Key {
            run_id,
            step_id,
            name,
        } => (run_id, step_id, name),
    };
    let Some((seq, status, held)) = lock_run(tx, &run_id).await? else {
        return Ok(DecisionOutcome::NotFound(format!("run {run_id} not found")));
    };
    let now = db_now(tx).await?;
    let Some(a) = tx
        .query_opt(
            "SELECT status, resolution, expires_at, required FROM approvals \
             WHERE run_id = $1 AND step_id = $2 FOR UPDATE",
            &[&run_id, &step_id],
        )
        .await
        .map_err(pg)?
    else {
        return Ok(DecisionOutcome::NotWaiting(format!(
            "step '{step_id}' of run {run_id} is not waiting for an approval"
        )));
    };
    let (a_status, resolution, expires_at, required): (String, Option<String>, i64, i64) =
        (a.get(0), a.get(1), a.get(2), a.get(3));
    let previous = tx
        .query_opt(
            "SELECT decision, comment, decided_at FROM approval_decisions \
             WHERE run_id = $1 AND step_id = $2 AND decided_by = $3",
            &[&run_id, &step_id, &by],
        )
        .await
        .map_err(pg)?
        .map(|p| DecisionRecord {
            by: by.clone(),
            decision: p.get(0),
            comment: p.get(1),
            at: p.get(2),
        });
    let found = crate::store::decisions::ApprovalAsFound {
        run_id: &run_id,
        step_id: &step_id,
        status: &a_status,
        resolution: resolution.as_deref(),
        expires_at,
        run_status: &status,
        run_parked: !held,
    };
    if let Some(answer) =
        crate::store::decisions::judge_decision(&found, &req.decision, previous, now)?
    {
        return Ok(answer);
    }
    tx.execute(
        "INSERT INTO approval_decisions (run_id, step_id, decided_by, decision, comment, decided_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&run_id, &step_id, &by, &req.decision, &req.comment, &now],
    )
    .await
    .map_err(pg)?;
    let record = DecisionRecord {
        by,
        decision: req.decision.clone(),
        at: now,
        comment: req.comment,
    };
    tx.execute(
        "UPDATE steps SET output = jsonb_set(COALESCE(output, '{}')::jsonb, '{decisions}', \
           COALESCE(COALESCE(output, '{}')::jsonb -> 'decisions', '[]'::jsonb) || jsonb_build_array($3::TEXT::jsonb))::TEXT \
         WHERE run_seq = $1 AND step_id = $2 AND status = 'waiting'",
        &[&seq, &step_id, &record.to_value().to_string()],
    )
    .await
    .map_err(pg)?;
    let approvals: i64 = tx
        .query_one(
            "SELECT COUNT(*) FROM approval_decisions WHERE run_id = $1 AND step_id = $2 AND decision = 'approve'",
            &[&run_id, &step_id],
        )
        .await
        .map_err(pg)?
        .get(0);
    let settled = crate::store::decisions::settled_by(&req.decision, approvals, required);
    let resolved = settled.is_some();
    if let Some(settled) = settled {
        let res = record.to_value();
        tx.execute(
            "UPDATE approvals SET status = $3, resolution = $4, decided_at = $5 WHERE run_id = $1 AND step_id = $2",
            &[&run_id, &step_id, &settled, &res.to_string(), &now],
        )
        .await
        .map_err(pg)?;
        put_on_step(tx, seq, &step_id, "resolution", &res).await?;
        queue(tx, seq, now).await?;
    }
    Ok(DecisionOutcome::Decided {
        run_id,
        step_id,
        record,
        resolved,
    })
}

const APPROVAL_COLUMNS: &str = "a.run_id, a.step_id, a.workflow_id, a.reason, a.approvers, a.required, \
     a.status, a.created_at, a.expires_at, r.status";

async fn approval_row(tx: &Transaction<'_>, r: &tokio_postgres::Row) -> Result<ApprovalRow> {
    let run_id: String = r.get(0);
    let step_id: String = r.get(1);
    let approvers: String = r.get(4);
    let run_status: String = r.get(9);
    Ok(ApprovalRow {
        decisions: decisions(tx, &run_id, &step_id).await?,
        run_id,
        step_id,
        workflow_id: r.get(2),
        reason: r.get(3),
        approvers: serde_json::from_str(&approvers)?,
        required: r.get(5),
        status: r.get(6),
        created_at: r.get(7),
        expires_at: r.get(8),
        run_status: RunStatus::parse(&run_status)
            .ok_or_else(|| StoreError::Decode(format!("unknown run status '{run_status}'")))?,
    })
}

async fn receive(tx: &Transaction<'_>, cb: CallbackIn) -> Result<(CallbackOutcome, bool)> {
    let Some((seq, status, held)) = lock_run(tx, &cb.run_id).await? else {
        return Ok((
            CallbackOutcome::NotFound(format!("run {} not found", cb.run_id)),
            false,
        ));
    };
    let now = db_now(tx).await?;
    let exists = tx
        .query_opt(
            "SELECT 1 FROM callbacks WHERE run_id = $1 AND step_id = $2",
            &[&cb.run_id, &cb.step_id],
        )
        .await
        .map_err(pg)?
        .is_some();
    if exists {
        return Ok((CallbackOutcome::AlreadyReceived, false));
    }
    if RunStatus::parse(&status).is_some_and(RunStatus::is_terminal) {
        return Ok((
            CallbackOutcome::Expired(format!(
                "run {} is {status}; it takes no callback any more",
                cb.run_id
            )),
            false,
        ));
    }
    let step = tx
        .query_opt(
            "SELECT status, output FROM steps WHERE run_seq = $1 AND step_id = $2",
            &[&seq, &cb.step_id],
        )
        .await
        .map_err(pg)?;
    let mut waiting = false;
    if let Some(row) = step {
        let step_status: String = row.get(0);
        let output: Option<String> = row.get(1);
        match step_status.as_str() {
            "waiting" => {
                let expires = output
                    .as_deref()
                    .and_then(|o| serde_json::from_str::<Value>(o).ok())
                    .and_then(|o| o.get("expiresAt").and_then(Value::as_str).map(String::from))
                    .and_then(|t| crate::time::parse_rfc3339(&t));
                if expires.is_some_and(|e| now >= e) || held {
                    return Ok((
                        CallbackOutcome::Expired(format!(
                            "step '{}' stopped waiting for its callback",
                            cb.step_id
                        )),
                        false,
                    ));
                }
                waiting = true;
            }
            "completed" | "failed" | "skipped" => {
                return Ok((
                    CallbackOutcome::Expired(format!(
                        "step '{}' is {step_status}; it takes no callback any more",
                        cb.step_id
                    )),
                    false,
                ));
            }
            _ => {}
        }
    }
    tx.execute(
        "INSERT INTO callbacks (run_id, step_id, body, headers, received_at) VALUES ($1, $2, $3, $4, $5)",
        &[
            &cb.run_id,
            &cb.step_id,
            &cb.body.to_string(),
            &cb.headers.to_string(),
            &now,
        ],
    )
    .await
    .map_err(pg)?;
    let mut queued = false;
    if waiting {
        let got = json!({
            "body": cb.body,
            "headers": cb.headers,
            "receivedAt": crate::time::rfc3339(now),
        });
        queued = put_on_step(tx, seq, &cb.step_id, "callback", &got).await?;
        queue(tx, seq, now).await?;
    }
    Ok((
        CallbackOutcome::Received {
            queued,
            received_at: now,
        },
        queued,
    ))
}

#[async_trait]
impl Waits for PgStore {
    async fn decide(&self, req: DecisionRequest) -> Result<DecisionOutcome> {
        let r = async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(pg)?;
            let out = decide(&tx, req).await?;
            tx.commit().await.map_err(pg)?;
            if matches!(out, DecisionOutcome::Decided { resolved: true, .. }) {
                self.notifier().send(Note::Queued);
            }
            Ok(out)
        }
        .await;
        self.seen(r)
    }

    async fn approval_by_token(&self, token_hash: String) -> Result<Option<TokenApproval>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let Some(t) = tx
            .query_opt(
                "SELECT run_id, step_id, approver FROM approval_tokens WHERE token_hash = $1",
                &[&token_hash],
            )
            .await
            .map_err(pg)?
        else {
            return Ok(None);
        };
        let (run_id, step_id, approver): (String, String, String) = (t.get(0), t.get(1), t.get(2));
        let Some(row) = tx
            .query_opt(
                &format!(
                    "SELECT {APPROVAL_COLUMNS} FROM approvals a JOIN runs r ON r.id = a.run_id \
                     WHERE a.run_id = $1 AND a.step_id = $2"
                ),
                &[&run_id, &step_id],
            )
            .await
            .map_err(pg)?
        else {
            return Ok(None);
        };
        let approval = approval_row(&tx, &row).await?;
        tx.commit().await.map_err(pg)?;
        Ok(Some(TokenApproval { approval, approver }))
    }

    async fn list_approvals(&self, f: ApprovalFilter) -> Result<Vec<ApprovalRow>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let rows = tx
            .query(
                &format!(
                    "SELECT {APPROVAL_COLUMNS} FROM approvals a JOIN runs r ON r.id = a.run_id \
                     WHERE (NOT $1 OR (a.status = 'pending' AND r.status = 'suspended')) \
                     AND ($2::TEXT IS NULL OR a.run_id = $2) ORDER BY a.created_at DESC LIMIT $3"
                ),
                &[&f.pending_only, &f.run_id, &(f.limit as i64)],
            )
            .await
            .map_err(pg)?;
        let mut out = vec![];
        for r in &rows {
            out.push(approval_row(&tx, r).await?);
        }
        tx.commit().await.map_err(pg)?;
        Ok(out)
    }

    async fn receive_callback(&self, cb: CallbackIn) -> Result<CallbackOutcome> {
        let r = async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(pg)?;
            let (out, queued) = receive(&tx, cb).await?;
            tx.commit().await.map_err(pg)?;
            if queued {
                self.notifier().send(Note::Queued);
            }
            Ok(out)
        }
        .await;
        self.seen(r)
    }

    async fn claim_approval_mails(&self, lease_ms: i64, limit: usize) -> Result<Vec<ApprovalMail>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "WITH due AS (SELECT token_hash FROM approval_tokens \
                   WHERE mail_due IS NOT NULL AND mail_due <= flowctl_now_ms() AND sealed IS NOT NULL \
                   ORDER BY mail_due LIMIT $2 FOR UPDATE SKIP LOCKED), \
                 t AS (UPDATE approval_tokens t SET mail_due = flowctl_now_ms() + $1, \
                   mail_attempts = t.mail_attempts + 1 FROM due WHERE t.token_hash = due.token_hash \
                   RETURNING t.token_hash, t.run_id, t.step_id, t.approver, t.sealed, t.mail_attempts) \
                 SELECT t.token_hash, t.run_id, t.step_id, t.approver, t.sealed, a.reason, a.expires_at, \
                   r.connection_id, t.mail_attempts - 1 FROM t \
                 JOIN approvals a ON a.run_id = t.run_id AND a.step_id = t.step_id \
                 JOIN runs r ON r.id = t.run_id",
                &[&lease_ms, &(limit as i64)],
            )
            .await
            .map_err(pg)?;
        Ok(rows
            .iter()
            .map(|r| ApprovalMail {
                token_hash: r.get(0),
                run_id: r.get(1),
                step_id: r.get(2),
                approver: r.get(3),
                sealed: r.get(4),
                reason: r.get(5),
                expires_at: r.get(6),
                connection_id: r.get(7),
                attempts: r.get(8),
            })
            .collect())
    }

    async fn approval_mail_done(&self, token_hash: String, retry_at: Option<i64>) -> Result<()> {
        let c = self.client().await?;
        match retry_at {
            None => c
                .execute(
                    "UPDATE approval_tokens SET sealed = NULL, mail_due = NULL WHERE token_hash = $1",
                    &[&token_hash],
                )
                .await
                .map_err(pg)?,
            Some(at) => c
                .execute(
                    "UPDATE approval_tokens SET mail_due = $2 WHERE token_hash = $1",
                    &[&token_hash, &at],
                )
                .await
                .map_err(pg)?,
        };
        Ok(())
    }
}
