//! Runs, their step results and idempotency keys on PostgreSQL. A trigger
//! with an idempotency key is race-free across nodes through the key's
//! primary key and `ON CONFLICT`, never a check-then-insert.

use super::notify::Note;
use super::writer::InsertCmd;
use super::{Db, PgStore, from_json, pg};
use crate::engine::{RunStatus, StepRecord, StepStatus};
use crate::store::Runs;
use crate::store::columns::decode_output;
use crate::store::decisions::listed_by_default_sql;
use crate::store::{NewRun, Result, RunFilter, RunRow, StoreError, TriggerOutcome, TriggerType};
use async_trait::async_trait;
use std::collections::HashMap;
use tokio_postgres::Row;

pub(super) const RUN_COLUMNS: &str = "seq, id, workflow_id, workflow_version, status, input, output, error, \
     idempotency_key, connection_id, created_at, started_at, completed_at, cancel_requested, trigger_type, \
     parent_run_id, parent_step_id, root_run_id, depth, child_key, deadline_at, redrive_count";

pub(super) fn run_from_row(r: &Row) -> Result<RunRow> {
    let status: String = r.get(4);
    Ok(RunRow {
        seq: r.get(0),
        id: r.get(1),
        workflow_id: r.get(2),
        workflow_version: r.get(3),
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Decode(format!("unknown run status '{status}'")))?,
        input: from_json(r.get(5))?,
        output: from_json(r.get(6))?,
        error: decode_error(r.get(7))?,
        idempotency_key: r.get(8),
        connection_id: r.get(9),
        created_at: r.get(10),
        started_at: r.get(11),
        completed_at: r.get(12),
        cancel_requested: r.get(13),
        trigger_type: TriggerType::parse(r.get::<_, &str>(14)).unwrap_or_default(),
        steps: vec![],
        family: crate::store::Family {
            parent_run_id: r.get(15),
            parent_step_id: r.get(16),
            root_run_id: r.get(17),
            depth: r.get(18),
            key: r.get(19),
            deadline_at: r.get(20),
            children: None,
            redrive_count: r.get(21),
        },
        recoveries: 0,
    })
}

use crate::store::columns::decode_error;
pub(super) use crate::store::columns::{StepColumns as StepRow, encode_error};

/// Step records of these runs, in order.
pub(super) async fn steps_for(
    db: &Db<'_, '_>,
    seqs: &[i64],
) -> Result<HashMap<i64, Vec<StepRecord>>> {
    let rows = db
        .query(
            "SELECT run_seq, idx, step_id, status, output, error, warnings, attempts, started_at, completed_at \
             FROM steps WHERE run_seq = ANY($1) ORDER BY run_seq, idx",
            &[&seqs],
        )
        .await?;
    let mut out: HashMap<i64, Vec<StepRecord>> = HashMap::new();
    for r in rows {
        let status: String = r.get(3);
        let warnings: Option<String> = r.get(6);
        let status = StepStatus::parse(&status)
            .ok_or_else(|| StoreError::Decode(format!("unknown step status '{status}'")))?;
        let (output, skip_reason) = decode_output(status, r.get(4))?;
        let record = StepRecord {
            idx: r.get::<_, i32>(1) as usize,
            step_id: r.get(2),
            status,
            output,
            skip_reason,
            error: decode_error(r.get(5))?,
            warnings: match warnings {
                Some(w) => serde_json::from_str(&w)?,
                None => vec![],
            },
            attempts: r.get(7),
            started_at: r.get(8),
            completed_at: r.get(9),
        };
        out.entry(r.get(0)).or_default().push(record);
    }
    Ok(out)
}

pub(super) async fn run_by_id(
    db: &Db<'_, '_>,
    id: &str,
    with_steps: bool,
) -> Result<Option<RunRow>> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
    let Some(row) = db.query_opt(&sql, &[&id]).await? else {
        return Ok(None);
    };
    let mut run = run_from_row(&row)?;
    if with_steps {
        run.steps = steps_for(db, &[run.seq])
            .await?
            .remove(&run.seq)
            .unwrap_or_default();
        run.family.children = Some(super::children::counts(db, &run.id).await?);
    }
    Ok(Some(run))
}

/// Insert the run and its queue row in one statement.
async fn insert_run(db: &Db<'_, '_>, new: &NewRun, input: &str) -> Result<(i64, i64)> {
    let row = db
        .query_one(
            "WITH r AS (INSERT INTO runs (id, workflow_id, workflow_version, status, input, idempotency_key, connection_id, created_at, trigger_type) \
               VALUES ($1, $2, $3, 'pending', $4, $5, $6, flowctl_now_ms(), $7) RETURNING seq, workflow_id, created_at), \
             q AS (INSERT INTO run_queue (seq, workflow_id, not_before) SELECT seq, workflow_id, created_at + $8 FROM r) \
             SELECT seq, created_at FROM r",
            &[
                &new.id,
                &new.workflow_id,
                &new.workflow_version,
                &input,
                &new.idempotency_key,
                &new.connection_id,
                &new.trigger_type.as_str(),
                &new.delay_ms,
            ],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

impl PgStore {
    async fn create_run_inner(&self, new: NewRun) -> Result<TriggerOutcome> {
        let input = new.input.to_string();
        if new.idempotency_key.is_none() && new.scheduled_at.is_none() {
            // The common trigger: through the node's writer, batched.
            let (seq, created_at) = self
                .writer()
                .insert(InsertCmd {
                    id: new.id.clone(),
                    workflow_id: new.workflow_id.clone(),
                    workflow_version: new.workflow_version,
                    input,
                    connection_id: new.connection_id.clone(),
                    trigger_type: new.trigger_type.as_str(),
                    delay_ms: new.delay_ms,
                })
                .await?;
            return Ok(created(new, seq, created_at));
        }
        let mut c = self.client().await?;
        let (seq, created_at) = match &new.idempotency_key {
            None => {
                let tx = c.transaction().await.map_err(pg)?;
                if let Some(run) = super::schedules::claim_occurrence(&tx, &new).await? {
                    tx.commit().await.map_err(pg)?;
                    return Ok(TriggerOutcome::Replayed(run));
                }
                let ids = insert_run(&Db::Tx(&tx), &new, &input).await?;
                tx.commit().await.map_err(pg)?;
                ids
            }
            Some(key) => {
                let tx = c.transaction().await.map_err(pg)?;
                if let Some(run) = super::schedules::claim_occurrence(&tx, &new).await? {
                    tx.commit().await.map_err(pg)?;
                    return Ok(TriggerOutcome::Replayed(run));
                }
                // Own the key (new, or replacing an expired one), or learn
                // whose it is; concurrent triggers wait on the key's row.
                let owned = tx
                    .query_opt(
                        "INSERT INTO idempotency_keys (workflow_id, key, run_id, expires_at) \
                         VALUES ($1, $2, $3, flowctl_now_ms() + $4) \
                         ON CONFLICT (workflow_id, key) DO UPDATE SET run_id = EXCLUDED.run_id, expires_at = EXCLUDED.expires_at \
                         WHERE idempotency_keys.expires_at <= flowctl_now_ms() RETURNING run_id",
                        &[&new.workflow_id, key, &new.id, &new.idempotency_ttl_ms],
                    )
                    .await
                    .map_err(pg)?;
                if owned.is_none() {
                    let holder: String = tx
                        .query_one(
                            "SELECT run_id FROM idempotency_keys WHERE workflow_id = $1 AND key = $2",
                            &[&new.workflow_id, key],
                        )
                        .await
                        .map_err(pg)?
                        .get(0);
                    if let Some(run) = run_by_id(&Db::Tx(&tx), &holder, false).await? {
                        tx.commit().await.map_err(pg)?;
                        return Ok(TriggerOutcome::Replayed(run));
                    }
                    // The named run was purged: the key passes to this one.
                    tx.execute(
                        "UPDATE idempotency_keys SET run_id = $3, expires_at = flowctl_now_ms() + $4 \
                         WHERE workflow_id = $1 AND key = $2",
                        &[&new.workflow_id, key, &new.id, &new.idempotency_ttl_ms],
                    )
                    .await
                    .map_err(pg)?;
                }
                let ids = insert_run(&Db::Tx(&tx), &new, &input).await?;
                tx.commit().await.map_err(pg)?;
                ids
            }
        };
        Ok(created(new, seq, created_at))
    }
}

fn created(new: NewRun, seq: i64, created_at: i64) -> TriggerOutcome {
    TriggerOutcome::Created(new.into_pending(seq, created_at))
}

#[async_trait]
impl Runs for PgStore {
    async fn create_run(&self, new: NewRun) -> Result<TriggerOutcome> {
        let r = self.create_run_inner(new).await;
        if matches!(r, Ok(TriggerOutcome::Created(_))) {
            self.notifier().send(Note::Queued);
        }
        self.seen(r)
    }

    async fn get_run(&self, id: String) -> Result<RunRow> {
        let c = self.client().await?;
        let r = run_by_id(&Db::Client(&c), &id, true).await;
        self.seen(r)?.ok_or(StoreError::NotFound("run"))
    }

    /// Newest first; `before_seq` is the cursor of the previous page.
    async fn list_runs(&self, f: RunFilter) -> Result<Vec<RunRow>> {
        let status = f.status.map(RunStatus::as_str);
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE ($1::TEXT IS NULL OR workflow_id = $1) \
                 AND ($2::TEXT IS NULL OR status = $2) AND ($3::BIGINT IS NULL OR seq < $3) \
                 AND ($5::TEXT IS NULL OR trigger_type = $5) \
                 AND ($6::TEXT IS NULL OR parent_run_id = $6) AND ($6::TEXT IS NOT NULL OR $7 OR {}) \
                 ORDER BY seq DESC LIMIT $4",
                listed_by_default_sql()
            ))
            .await
            .map_err(pg)?;
        let rows = c
            .query(
                &stmt,
                &[
                    &f.workflow_id,
                    &status,
                    &f.before_seq,
                    &(f.limit as i64),
                    &f.trigger_type.map(TriggerType::as_str),
                    &f.parent_run_id,
                    &f.include_children,
                ],
            )
            .await
            .map_err(pg)?;
        rows.iter().map(run_from_row).collect()
    }

    /// Cancel, recorded in the database: a run no node executes (queued,
    /// parked, suspended, or claimed but still pending) ends now; a claimed
    /// running one is flagged, its holder told through a notification (and
    /// its next heartbeat or commit), wherever it runs. Every unfinished
    /// descendant is cancelled the same way in the same transaction.
    async fn cancel_run(&self, id: String) -> Result<RunRow> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let run = run_by_id(&Db::Tx(&tx), &id, false)
            .await?
            .ok_or(StoreError::NotFound("run"))?;
        let mut changed = super::children::Cancelled::default();
        if !run.is_finished() {
            changed = super::children::cancel_tree(&Db::Tx(&tx), run.seq).await?;
        }
        let run = run_by_id(&Db::Tx(&tx), &id, true)
            .await?
            .ok_or(StoreError::NotFound("run"))?;
        tx.commit().await.map_err(pg)?;
        if !changed.ended.is_empty() {
            // A waiting parent may have been queued by its child's cancel.
            self.notifier().send(Note::Queued);
        }
        for id in changed.ended {
            self.notifier().send(Note::Finished(id));
        }
        for id in changed.flagged {
            self.notifier().send(Note::Cancel(id));
        }
        Ok(run)
    }

    /// Delete up to `batch` finished runs older than `cutoff` and expired
    /// idempotency keys; returns how many runs went.
    async fn purge(&self, cutoff: i64, batch: usize) -> Result<usize> {
        let c = self.client().await?;
        c.execute(
            "DELETE FROM idempotency_keys WHERE (workflow_id, key) IN \
             (SELECT workflow_id, key FROM idempotency_keys WHERE expires_at <= flowctl_now_ms() LIMIT $1)",
            &[&(batch as i64)],
        )
        .await
        .map_err(pg)?;
        // Handled occurrences lie behind their schedule's next one for good.
        c.execute(
            "DELETE FROM schedule_fires WHERE (workflow_id, scheduled_at) IN \
             (SELECT workflow_id, scheduled_at FROM schedule_fires WHERE fired_at < $1 LIMIT $2)",
            &[&cutoff, &(batch as i64)],
        )
        .await
        .map_err(pg)?;
        let n = c
            .execute(
                "DELETE FROM runs WHERE seq IN (SELECT seq FROM runs WHERE completed_at IS NOT NULL \
                 AND completed_at < $1 LIMIT $2)",
                &[&cutoff, &(batch as i64)],
            )
            .await
            .map_err(pg)?;
        Ok(n as usize)
    }

    async fn count_runs_by_status(&self) -> Result<Vec<(RunStatus, i64)>> {
        let c = self.client().await?;
        let rows = c
            .query("SELECT status, COUNT(*) FROM runs GROUP BY status", &[])
            .await
            .map_err(pg)?;
        rows.iter()
            .map(|r| {
                let status: String = r.get(0);
                let status = RunStatus::parse(&status)
                    .ok_or_else(|| StoreError::Decode(format!("unknown run status '{status}'")))?;
                Ok((status, r.get(1)))
            })
            .collect()
    }
}
