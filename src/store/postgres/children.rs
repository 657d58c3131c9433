//! Child runs on PostgreSQL: created once per `(parent, step, key)` in the
//! transaction of the parent's commit; a waited-for child's finish recorded
//! on the parent's waiting step, which queues the parent, in the transaction
//! that finishes the child (on whichever node); a cancel reaching every
//! unfinished descendant; redrive. A waiting parent keeps its queue row,
//! unleased and due at `SUSPENDED` (never) or, with a deadline, parked until
//! then; so it holds no worker and no `concurrency` slot, and a cancel finds
//! it unheld.
//!
//! Lock order (as everywhere in this store): queue rows in `seq` order
//! first, then the rows of those runs. A parent's `seq` is below its
//! children's, so a child's finish has its parent's queue row locked at the
//! start of its batch (`writer::LOCK_SQL`), and a cancel locks the whole
//! tree's queue rows in one ordered statement before it changes any.

use super::Db;
use super::writer::Stmt;
use crate::store::decisions::{
    cancel_unheld, redrivable_sql, settled_steps_sql, terminal_sql, unfinished_sql,
};
use crate::store::{ChildCounts, ChildSpawn, Result, StoreError};
use std::sync::LazyLock;
use tokio_postgres::types::ToSql;

/// The due time of a suspended run's queue row: never (a claim, `next_due`
/// and the queue depth pass it by).
pub(super) const SUSPENDED: i64 = crate::store::SUSPENDED_DUE;

/// The child record put on the parent's step, built from the child's `runs`
/// row `p`: the object `decisions::child_record` makes, with its keys in
/// that order. Text, not `jsonb`: the child's output keeps its key order.
const CHILD_RECORD: &str = "'{\"runId\":' || to_json(p.id)::text || ',\"status\":' || \
     to_json(p.status)::text || ',\"output\":' || COALESCE(p.output, 'null') || \
     ',\"error\":' || COALESCE(p.error, 'null') || '}'";

/// Record the finished, waited-for children that `k` selects on their
/// parents' waiting steps (`output.child`, once) and make each parent that
/// no one holds (suspended, or parked until its deadline) due now. A claimed parent is left in the queue as it is: its own
/// spawn commit repeats this (`RECORD_SPAWNED`). Harmless wherever it runs:
/// it only writes what is true (a child finished).
fn record_sql(k: &str) -> String {
    format!(
        "WITH k AS ({k}), \
         p AS (SELECT pr.seq AS pseq, k.id, k.status, k.output, k.error, k.parent_step_id \
           FROM k JOIN runs pr ON pr.id = k.parent_run_id), \
         s AS (UPDATE steps SET output = CASE WHEN steps.output::jsonb = '{{}}'::jsonb \
             THEN '{{\"child\":' || {CHILD_RECORD} || '}}' \
             ELSE left(steps.output, length(steps.output) - 1) || ',\"child\":' || {CHILD_RECORD} || '}}' END \
           FROM p WHERE steps.run_seq = p.pseq AND steps.step_id = p.parent_step_id \
             AND steps.status = 'waiting' AND jsonb_typeof(steps.output::jsonb) = 'object' \
             AND NOT (steps.output::jsonb ? 'child') \
           RETURNING steps.run_seq) \
         UPDATE run_queue q SET not_before = 0 FROM s \
         WHERE q.seq = s.run_seq AND q.lease_until IS NULL \
         RETURNING q.seq"
    )
}

const CHILD_COLUMNS: &str = "id, status, output, error, parent_run_id, parent_step_id";

/// After a run's finish (`$1` its seq): record it on its waiting parent.
pub(super) static RECORD_FINISHED: LazyLock<String> = LazyLock::new(|| {
    record_sql(&format!(
        "SELECT {CHILD_COLUMNS} FROM runs WHERE seq = $1 AND parent_waits AND status IN ({})",
        terminal_sql()
    ))
});

/// After a spawn (`$1` the parent's seq, `$2` step, `$3` key): a child that
/// existed already (the spawn repeated after a redrive) and has finished is
/// recorded again, since the parent's commit just replaced the step record
/// that may have held it.
pub(super) static RECORD_SPAWNED: LazyLock<String> = LazyLock::new(|| {
    record_sql(&format!(
        "SELECT {CHILD_COLUMNS} FROM runs WHERE parent_run_id = (SELECT id FROM runs WHERE seq = $1) \
         AND parent_step_id = $2 AND child_key = $3 AND parent_waits AND status IN ({})",
        terminal_sql()
    ))
});

/// Create the child (`$3…$14`) of the parent `$1` if the parent's commit
/// just passed its fence (token `$2` still holds, no cancel recorded: the
/// commit statement before this one locked the row, so nothing changed it
/// in between) and the child does not exist yet.
static SPAWN_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH p AS (SELECT r.id FROM runs r JOIN run_queue q ON q.seq = r.seq \
           WHERE r.seq = $1 AND q.lease_token = $2 AND NOT q.cancel_requested \
             AND r.status IN ({})), \
         c AS (INSERT INTO runs (id, workflow_id, workflow_version, status, input, connection_id, \
             created_at, trigger_type, parent_run_id, parent_step_id, root_run_id, depth, child_key, \
             parent_waits, deadline_at) \
           SELECT $3, $4, $5, 'pending', $6, $7, flowctl_now_ms(), $14, p.id, $8, $9, $10, $11, $12, $13 \
           FROM p ON CONFLICT DO NOTHING RETURNING seq, workflow_id, created_at) \
         INSERT INTO run_queue (seq, workflow_id, not_before) SELECT seq, workflow_id, created_at FROM c",
        unfinished_sql()
    )
});

/// The statements that follow a parent's commit to spawn `sp`.
pub(super) fn spawn_statements(parent_seq: i64, token: i64, sp: &ChildSpawn) -> Vec<Stmt> {
    let spawn: Vec<Box<dyn ToSql + Send + Sync>> = vec![
        Box::new(parent_seq),
        Box::new(token),
        Box::new(sp.id.clone()),
        Box::new(sp.workflow_id.clone()),
        Box::new(sp.workflow_version),
        Box::new(sp.input.to_string()),
        Box::new(sp.connection_id.clone()),
        Box::new(sp.parent_step_id.clone()),
        Box::new(sp.root_run_id.clone()),
        Box::new(sp.depth),
        Box::new(sp.key.clone()),
        Box::new(sp.wait),
        Box::new(sp.deadline_at),
        Box::new(sp.trigger_type.as_str()),
    ];
    let mut out = vec![Stmt {
        sql: &SPAWN_SQL,
        params: spawn,
    }];
    if sp.wait {
        out.push(Stmt {
            sql: &RECORD_SPAWNED,
            params: vec![
                Box::new(parent_seq),
                Box::new(sp.parent_step_id.clone()),
                Box::new(sp.key.clone()),
            ],
        });
    }
    out
}

/// What a cancel changed: the runs it ended, the runs it flagged (their
/// holders stop at their next write), and whether it queued a parent.
#[derive(Debug, Default)]
pub(super) struct Cancelled {
    pub ended: Vec<String>,
    pub flagged: Vec<String>,
}

/// Cancel run `seq` and every unfinished descendant, in the caller's
/// transaction: queue rows locked in `seq` order (the run's waiting parent's
/// too, which the run's finish may queue); a run no worker executes (queued,
/// parked, suspended, or claimed but still pending) ends now with its
/// unsettled steps skipped (`decisions::cancel_unheld`), a held one is
/// flagged. The run's own finish is recorded on its waiting parent.
pub(super) async fn cancel_tree(db: &Db<'_, '_>, seq: i64) -> Result<Cancelled> {
    let cancel = cancel_unheld();
    let error = super::runs::encode_error(&Some(cancel.error));
    let unfinished = unfinished_sql();
    let tree_sql = format!(
        "WITH RECURSIVE t(seq, id) AS (SELECT seq, id FROM runs WHERE seq = $1 \
           UNION ALL SELECT k.seq, k.id FROM runs k JOIN t ON k.parent_run_id = t.id \
           WHERE k.status IN ({unfinished})) \
         SELECT q.seq FROM run_queue q WHERE q.seq IN (SELECT seq FROM t) ORDER BY q.seq"
    );
    let seqs =
        |rows: Vec<tokio_postgres::Row>| -> Vec<i64> { rows.iter().map(|r| r.get(0)).collect() };
    let mut locked = seqs(
        db.query(
            &format!(
                "WITH RECURSIVE t(seq, id) AS (SELECT seq, id FROM runs WHERE seq = $1 \
                   UNION ALL SELECT k.seq, k.id FROM runs k JOIN t ON k.parent_run_id = t.id \
                   WHERE k.status IN ({unfinished})) \
                 SELECT q.seq FROM run_queue q WHERE q.seq IN (SELECT seq FROM t \
                   UNION SELECT p.seq FROM runs k JOIN runs p ON p.id = k.parent_run_id \
                   WHERE k.seq = $1 AND k.parent_waits) \
                 ORDER BY q.seq FOR UPDATE OF q"
            ),
            &[&seq],
        )
        .await?,
    );
    // A child whose spawn committed while this waited for its parent's row
    // is not in the tree read before: read it again until nothing new
    // appears (a locked run, flagged or ended below, spawns nothing more).
    let runs = loop {
        let tree = seqs(db.query(&tree_sql, &[&seq]).await?);
        let new: Vec<i64> = tree
            .iter()
            .copied()
            .filter(|s| !locked.contains(s))
            .collect();
        if new.is_empty() {
            break tree;
        }
        locked.extend(seqs(
            db.query(
                "SELECT seq FROM run_queue WHERE seq = ANY($1) ORDER BY seq FOR UPDATE",
                &[&new],
            )
            .await?,
        ));
    };
    let ended: Vec<(i64, String)> = db
        .query(
            &format!(
                "WITH q AS (DELETE FROM run_queue q USING runs r WHERE q.seq = ANY($1) AND r.seq = q.seq \
                   AND (q.lease_until IS NULL OR r.status = 'pending') RETURNING q.seq) \
                 UPDATE runs SET status = $3, error = $2, completed_at = flowctl_now_ms() \
                 FROM q WHERE runs.seq = q.seq AND runs.status IN ({unfinished}) \
                 RETURNING runs.seq, runs.id"
            ),
            &[&runs, &error, &cancel.status.as_str()],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let ended_seqs: Vec<i64> = ended.iter().map(|(s, _)| *s).collect();
    if !ended.is_empty() {
        db.query(
            &format!(
                "UPDATE steps SET status = $2 WHERE run_seq = ANY($1) AND status NOT IN ({})",
                settled_steps_sql()
            ),
            &[&ended_seqs, &cancel.unsettled_steps_become.as_str()],
        )
        .await?;
    }
    let flagged: Vec<String> = db
        .query(
            "WITH q AS (UPDATE run_queue SET cancel_requested = TRUE WHERE seq = ANY($1) \
               AND NOT (seq = ANY($2)) RETURNING seq) \
             UPDATE runs SET cancel_requested = TRUE FROM q WHERE runs.seq = q.seq \
               AND runs.status = 'running' RETURNING runs.id",
            &[&runs, &ended_seqs],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if ended_seqs.contains(&seq) {
        db.query(&RECORD_FINISHED, &[&seq]).await?;
    }
    Ok(Cancelled {
        ended: ended.into_iter().map(|(_, id)| id).collect(),
        flagged,
    })
}

/// A run's children by status.
pub(super) async fn counts(db: &Db<'_, '_>, id: &str) -> Result<ChildCounts> {
    let mut n = ChildCounts::default();
    for r in db
        .query(
            "SELECT status, COUNT(*) FROM runs WHERE parent_run_id = $1 GROUP BY status",
            &[&id],
        )
        .await?
    {
        let status: String = r.get(0);
        let status = crate::engine::RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Decode(format!("unknown run status '{status}'")))?;
        crate::store::decisions::count_child(&mut n, status, r.get(1));
    }
    Ok(n)
}

/// Redrive run `seq` if it ended `failed`, `timed_out` or `cancelled`, with
/// its waited-for descendants that did not complete: their non-completed
/// step records go (they run again), each is queued as new with
/// `redrive_count` one higher (the children's ids are fixed, so the parent's
/// repeated spawn finds them). Finished runs have no queue rows, so the
/// `runs` rows are what is locked, in `seq` order. Returns whether the run
/// changed.
pub(super) async fn redrive(db: &Db<'_, '_>, seq: i64) -> Result<bool> {
    let redrivable = redrivable_sql();
    let tree: Vec<i64> = db
        .query(
            &format!(
                "WITH RECURSIVE t(seq, id) AS (SELECT seq, id FROM runs WHERE seq = $1 \
                   UNION ALL SELECT k.seq, k.id FROM runs k JOIN t ON k.parent_run_id = t.id \
                   WHERE k.parent_waits AND k.status IN ({redrivable})) \
                 SELECT seq FROM runs WHERE seq IN (SELECT seq FROM t) AND status IN ({redrivable}) \
                 ORDER BY seq FOR UPDATE"
            ),
            &[&seq],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !tree.contains(&seq) {
        return Ok(false);
    }
    db.query(
        "DELETE FROM steps WHERE run_seq = ANY($1) AND status <> 'completed'",
        &[&tree],
    )
    .await?;
    // A new queue row's token starts above any the run's old holders had (a
    // token never grows by the millisecond), so none of them can write. A run that
    // had started keeps a start time (now: its timeout counts from the redrive), so
    // the claim reads its completed steps back instead of running them again.
    db.query(
        "WITH r AS (UPDATE runs SET status = 'pending', output = NULL, error = NULL, \
           started_at = CASE WHEN started_at IS NULL THEN NULL ELSE flowctl_now_ms() END, \
           completed_at = NULL, cancel_requested = FALSE, redrive_count = redrive_count + 1 \
           WHERE seq = ANY($1) RETURNING seq, workflow_id) \
         INSERT INTO run_queue (seq, workflow_id, not_before, lease_token) \
         SELECT seq, workflow_id, 0, flowctl_now_ms() FROM r ON CONFLICT (seq) DO NOTHING",
        &[&tree],
    )
    .await?;
    Ok(true)
}
