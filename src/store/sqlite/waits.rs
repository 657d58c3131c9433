//! Approvals, decisions and callbacks in SQL (`store::waits`). A decision or
//! a callback is one writer job: the conditional insert, its record on the
//! waiting step's output (`decisions`, `resolution`, `callback`) and the run
//! back in the queue. The suspend commit of a run finds a callback that came
//! early and queues the run at once.

use super::SqliteStore;
use crate::engine::{RunStatus, WaitingFor};
use crate::store::waits::*;
use crate::store::{Result, StoreError};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

/// In the commit that suspends run `seq`: record a new approval and its
/// tokens (once), or use a callback that arrived before the run got here.
pub(super) fn on_suspend(c: &Connection, seq: i64, sw: &SuspendWrite, now: i64) -> Result<()> {
    let run_id: String = c
        .prepare_cached("SELECT id FROM runs WHERE seq = ?1")?
        .query_row([seq], |r| r.get(0))?;
    if let Some(a) = &sw.approval {
        let added = c
            .prepare_cached(
                "INSERT OR IGNORE INTO approvals (run_id, step_id, workflow_id, reason, approvers, required, \
                 created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                run_id,
                sw.step_id,
                a.workflow_id,
                a.reason,
                serde_json::to_string(&a.approvers)?,
                a.required,
                now,
                a.expires_at
            ])?;
        if added > 0 {
            let mut put = c.prepare_cached(
                "INSERT OR IGNORE INTO approval_tokens (token_hash, run_id, step_id, approver, sealed, mail_due) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for t in &a.tokens {
                let due = t.sealed.as_ref().map(|_| now);
                put.execute(params![
                    t.token_hash,
                    run_id,
                    sw.step_id,
                    t.approver,
                    t.sealed,
                    due
                ])?;
            }
        }
    }
    if sw.waiting_for == WaitingFor::Callback
        && let Some(got) = stored_callback(c, &run_id, &sw.step_id)?
    {
        put_on_step(c, seq, &sw.step_id, "$.callback", &got)?;
        queue(c, &run_id, now)?;
    }
    Ok(())
}

fn stored_callback(c: &Connection, run_id: &str, step_id: &str) -> Result<Option<Value>> {
    let row: Option<(Option<String>, Option<String>, i64)> = c
        .prepare_cached(
            "SELECT body, headers, received_at FROM callbacks WHERE run_id = ?1 AND step_id = ?2",
        )?
        .query_row(params![run_id, step_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((body, headers, at)) = row else {
        return Ok(None);
    };
    Ok(Some(json!({
        "body": crate::store::columns::from_json(body)?,
        "headers": crate::store::columns::from_json(headers)?,
        "receivedAt": crate::time::rfc3339(at),
    })))
}

/// Set `path` of the waiting step's output to `value` (JSON); whether it was waiting.
fn put_on_step(c: &Connection, seq: i64, step_id: &str, path: &str, value: &Value) -> Result<bool> {
    Ok(c.prepare_cached(
        "UPDATE steps SET output = json_set(COALESCE(output, '{}'), ?3, json(?4)) \
         WHERE run_seq = ?1 AND step_id = ?2 AND status = 'waiting'",
    )?
    .execute(params![seq, step_id, path, value.to_string()])?
        > 0)
}

/// A suspended run no worker holds is due now.
fn queue(c: &Connection, run_id: &str, now: i64) -> Result<()> {
    c.prepare_cached(
        "UPDATE runs SET not_before = MIN(not_before, ?2) WHERE id = ?1 AND status = 'suspended' AND ready = 1",
    )?
    .execute(params![run_id, now])?;
    Ok(())
}

type RunFacts = (i64, String, i64);

fn run_facts(c: &Connection, run_id: &str) -> Result<Option<RunFacts>> {
    Ok(
        c.prepare_cached("SELECT seq, status, ready FROM runs WHERE id = ?1")?
            .query_row([run_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?,
    )
}

fn decision_of(
    c: &Connection,
    run_id: &str,
    step_id: &str,
    by: &str,
) -> Result<Option<DecisionRecord>> {
    Ok(c.prepare_cached(
        "SELECT decision, comment, decided_at FROM approval_decisions \
             WHERE run_id = ?1 AND step_id = ?2 AND decided_by = ?3",
    )?
    .query_row(params![run_id, step_id, by], |r| {
        Ok(DecisionRecord {
            by: by.to_string(),
            decision: r.get(0)?,
            comment: r.get(1)?,
            at: r.get(2)?,
        })
    })
    .optional()?)
}

fn decisions(c: &Connection, run_id: &str, step_id: &str) -> Result<Vec<DecisionRecord>> {
    let mut stmt = c.prepare_cached(
        "SELECT decided_by, decision, comment, decided_at FROM approval_decisions \
         WHERE run_id = ?1 AND step_id = ?2 ORDER BY decided_at, rowid",
    )?;
    let rows = stmt.query_map(params![run_id, step_id], |r| {
        Ok(DecisionRecord {
            by: r.get(0)?,
            decision: r.get(1)?,
            comment: r.get(2)?,
            at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn decide(c: &Connection, req: DecisionRequest, now: i64) -> Result<DecisionOutcome> {
    let (run_id, step_id, by) = match req.by {
        Decider::Token(hash) => {
            let found: Option<(String, String, String)> = c
                .prepare_cached(
                    "SELECT run_id, step_id, approver FROM approval_tokens WHERE token_hash = ?1",
                )?
                .query_row([hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            match found {
                Some(f) => f,
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
    let Some((seq, status, ready)) = run_facts(c, &run_id)? else {
        return Ok(DecisionOutcome::NotFound(format!("run {run_id} not found")));
    };
    let approval: Option<(String, Option<String>, i64, i64)> = c
        .prepare_cached(
            "SELECT status, resolution, expires_at, required FROM approvals WHERE run_id = ?1 AND step_id = ?2",
        )?
        .query_row(params![run_id, step_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((a_status, resolution, expires_at, required)) = approval else {
        return Ok(DecisionOutcome::NotWaiting(format!(
            "step '{step_id}' of run {run_id} is not waiting for an approval"
        )));
    };
    let found = crate::store::decisions::ApprovalAsFound {
        run_id: &run_id,
        step_id: &step_id,
        status: &a_status,
        resolution: resolution.as_deref(),
        expires_at,
        run_status: &status,
        run_parked: ready == 1,
    };
    let previous = decision_of(c, &run_id, &step_id, &by)?;
    if let Some(answer) =
        crate::store::decisions::judge_decision(&found, &req.decision, previous, now)?
    {
        return Ok(answer);
    }
    c.prepare_cached(
        "INSERT INTO approval_decisions (run_id, step_id, decided_by, decision, comment, decided_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![run_id, step_id, by, req.decision, req.comment, now])?;
    let record = DecisionRecord {
        by,
        decision: req.decision.clone(),
        at: now,
        comment: req.comment,
    };
    c.prepare_cached(
        "UPDATE steps SET output = json_insert(COALESCE(output, '{}'), '$.decisions[#]', json(?3)) \
         WHERE run_seq = ?1 AND step_id = ?2 AND status = 'waiting'",
    )?
    .execute(params![seq, step_id, record.to_value().to_string()])?;
    let approvals: i64 = c
        .prepare_cached(
            "SELECT COUNT(*) FROM approval_decisions WHERE run_id = ?1 AND step_id = ?2 AND decision = 'approve'",
        )?
        .query_row(params![run_id, step_id], |r| r.get(0))?;
    let settled = crate::store::decisions::settled_by(&req.decision, approvals, required);
    let resolved = settled.is_some();
    if let Some(settled) = settled {
        let res = record.to_value();
        c.prepare_cached(
            "UPDATE approvals SET status = ?3, resolution = ?4, decided_at = ?5 WHERE run_id = ?1 AND step_id = ?2",
        )?
        .execute(params![run_id, step_id, settled, res.to_string(), now])?;
        put_on_step(c, seq, &step_id, "$.resolution", &res)?;
        queue(c, &run_id, now)?;
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

fn approval_row(c: &Connection, r: &rusqlite::Row) -> Result<ApprovalRow> {
    let run_id: String = r.get(0)?;
    let step_id: String = r.get(1)?;
    let approvers: String = r.get(4)?;
    let run_status: String = r.get(9)?;
    Ok(ApprovalRow {
        decisions: decisions(c, &run_id, &step_id)?,
        run_id,
        step_id,
        workflow_id: r.get(2)?,
        reason: r.get(3)?,
        approvers: serde_json::from_str(&approvers)?,
        required: r.get(5)?,
        status: r.get(6)?,
        created_at: r.get(7)?,
        expires_at: r.get(8)?,
        run_status: RunStatus::parse(&run_status)
            .ok_or_else(|| StoreError::Decode(format!("unknown run status '{run_status}'")))?,
    })
}

fn receive(c: &Connection, cb: CallbackIn, now: i64) -> Result<CallbackOutcome> {
    let Some((seq, status, ready)) = run_facts(c, &cb.run_id)? else {
        return Ok(CallbackOutcome::NotFound(format!(
            "run {} not found",
            cb.run_id
        )));
    };
    let exists: bool = c
        .prepare_cached("SELECT 1 FROM callbacks WHERE run_id = ?1 AND step_id = ?2")?
        .query_row(params![cb.run_id, cb.step_id], |_| Ok(()))
        .optional()?
        .is_some();
    if exists {
        return Ok(CallbackOutcome::AlreadyReceived);
    }
    let finished = RunStatus::parse(&status).is_some_and(RunStatus::is_terminal);
    if finished {
        return Ok(CallbackOutcome::Expired(format!(
            "run {} is {status}; it takes no callback any more",
            cb.run_id
        )));
    }
    let step: Option<(String, Option<String>)> = c
        .prepare_cached("SELECT status, output FROM steps WHERE run_seq = ?1 AND step_id = ?2")?
        .query_row(params![seq, cb.step_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let mut waiting = false;
    if let Some((step_status, output)) = step {
        match step_status.as_str() {
            "waiting" => {
                let expires = output
                    .as_deref()
                    .and_then(|o| serde_json::from_str::<Value>(o).ok())
                    .and_then(|o| o.get("expiresAt").and_then(Value::as_str).map(String::from))
                    .and_then(|t| crate::time::parse_rfc3339(&t));
                if expires.is_some_and(|e| now >= e) || ready != 1 {
                    return Ok(CallbackOutcome::Expired(format!(
                        "step '{}' stopped waiting for its callback",
                        cb.step_id
                    )));
                }
                waiting = true;
            }
            "completed" | "failed" | "skipped" => {
                return Ok(CallbackOutcome::Expired(format!(
                    "step '{}' is {step_status}; it takes no callback any more",
                    cb.step_id
                )));
            }
            _ => {}
        }
    }
    c.prepare_cached(
        "INSERT INTO callbacks (run_id, step_id, body, headers, received_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        cb.run_id,
        cb.step_id,
        cb.body.to_string(),
        cb.headers.to_string(),
        now
    ])?;
    let mut queued = false;
    if waiting {
        let got = json!({
            "body": cb.body,
            "headers": cb.headers,
            "receivedAt": crate::time::rfc3339(now),
        });
        queued = put_on_step(c, seq, &cb.step_id, "$.callback", &got)?;
        queue(c, &cb.run_id, now)?;
    }
    Ok(CallbackOutcome::Received {
        queued,
        received_at: now,
    })
}

#[async_trait]
impl Waits for SqliteStore {
    async fn decide(&self, req: DecisionRequest) -> Result<DecisionOutcome> {
        let now = crate::time::now_ms();
        self.write(move |c| decide(c, req, now)).await
    }

    async fn approval_by_token(&self, token_hash: String) -> Result<Option<TokenApproval>> {
        self.read(move |c| {
            let found: Option<(String, String, String)> = c
                .prepare_cached(
                    "SELECT run_id, step_id, approver FROM approval_tokens WHERE token_hash = ?1",
                )?
                .query_row([token_hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let Some((run_id, step_id, approver)) = found else {
                return Ok(None);
            };
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {APPROVAL_COLUMNS} FROM approvals a JOIN runs r ON r.id = a.run_id \
                 WHERE a.run_id = ?1 AND a.step_id = ?2"
            ))?;
            let mut rows = stmt.query(params![run_id, step_id])?;
            let Some(row) = rows.next()? else {
                return Ok(None);
            };
            Ok(Some(TokenApproval {
                approval: approval_row(c, row)?,
                approver,
            }))
        })
        .await
    }

    async fn list_approvals(&self, f: ApprovalFilter) -> Result<Vec<ApprovalRow>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {APPROVAL_COLUMNS} FROM approvals a JOIN runs r ON r.id = a.run_id \
                 WHERE (?1 = 0 OR (a.status = 'pending' AND r.status = 'suspended')) \
                 AND (?2 IS NULL OR a.run_id = ?2) ORDER BY a.created_at DESC LIMIT ?3"
            ))?;
            let mut rows = stmt.query(params![f.pending_only as i64, f.run_id, f.limit as i64])?;
            let mut out = vec![];
            while let Some(row) = rows.next()? {
                out.push(approval_row(c, row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn receive_callback(&self, cb: CallbackIn) -> Result<CallbackOutcome> {
        let now = crate::time::now_ms();
        self.write(move |c| receive(c, cb, now)).await
    }

    async fn claim_approval_mails(&self, lease_ms: i64, limit: usize) -> Result<Vec<ApprovalMail>> {
        let now = crate::time::now_ms();
        self.write(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT t.token_hash, t.run_id, t.step_id, t.approver, t.sealed, a.reason, a.expires_at, \
                 r.connection_id, t.mail_attempts FROM approval_tokens t \
                 JOIN approvals a ON a.run_id = t.run_id AND a.step_id = t.step_id \
                 JOIN runs r ON r.id = t.run_id \
                 WHERE t.mail_due IS NOT NULL AND t.mail_due <= ?1 AND t.sealed IS NOT NULL \
                 ORDER BY t.mail_due LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![now, limit as i64], |r| {
                    Ok(ApprovalMail {
                        token_hash: r.get(0)?,
                        run_id: r.get(1)?,
                        step_id: r.get(2)?,
                        approver: r.get(3)?,
                        sealed: r.get(4)?,
                        reason: r.get(5)?,
                        expires_at: r.get(6)?,
                        connection_id: r.get(7)?,
                        attempts: r.get(8)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut hide = c.prepare_cached(
                "UPDATE approval_tokens SET mail_due = ?2, mail_attempts = mail_attempts + 1 WHERE token_hash = ?1",
            )?;
            for m in &rows {
                hide.execute(params![m.token_hash, now + lease_ms])?;
            }
            Ok(rows)
        })
        .await
    }

    async fn approval_mail_done(&self, token_hash: String, retry_at: Option<i64>) -> Result<()> {
        self.write(move |c| {
            match retry_at {
                None => c.execute(
                    "UPDATE approval_tokens SET sealed = NULL, mail_due = NULL WHERE token_hash = ?1",
                    [token_hash],
                )?,
                Some(at) => c.execute(
                    "UPDATE approval_tokens SET mail_due = ?2 WHERE token_hash = ?1",
                    params![token_hash, at],
                )?,
            };
            Ok(())
        })
        .await
    }
}
