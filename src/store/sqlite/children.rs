//! Child runs in SQL: created once per `(parent, step, key)` in the commit of
//! the parent's new state; a waited-for child's finish is recorded on the
//! parent's step and queues the parent in the commit that finishes the child;
//! a cancel reaches every descendant.

use crate::engine::RunStatus;
use crate::store::decisions::{child_record, count_child, redrivable_sql};
use crate::store::{ChildCounts, ChildSpawn, Result, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

/// Insert the child of the parent `parent_seq` unless it exists already (a
/// spawn repeated after a crash). If that child has finished meanwhile, its
/// finish is recorded on the parent again: the parent's own write may have
/// just replaced the step record that held it.
pub(super) fn spawn(c: &Connection, parent_seq: i64, sp: &ChildSpawn, now: i64) -> Result<()> {
    let parent_id: String = c
        .prepare_cached("SELECT id FROM runs WHERE seq = ?1")?
        .query_row([parent_seq], |r| r.get(0))?;
    c.prepare_cached(
        "INSERT OR IGNORE INTO runs (id, workflow_id, workflow_version, status, input, connection_id, \
         created_at, not_before, trigger_type, parent_run_id, parent_step_id, root_run_id, depth, child_key, \
         parent_waits, deadline_at) \
         VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?6, ?14, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        sp.id,
        sp.workflow_id,
        sp.workflow_version,
        sp.input.to_string(),
        sp.connection_id,
        now,
        parent_id,
        sp.parent_step_id,
        sp.root_run_id,
        sp.depth,
        sp.key,
        sp.wait as i64,
        sp.deadline_at,
        sp.trigger_type.as_str()
    ])?;
    let child: Option<i64> = c
        .prepare_cached(
            "SELECT seq FROM runs WHERE parent_run_id = ?1 AND parent_step_id = ?2 AND child_key = ?3",
        )?
        .query_row(params![parent_id, sp.parent_step_id, sp.key], |r| r.get(0))
        .optional()?;
    if let Some(seq) = child {
        on_finished(c, seq)?;
    }
    Ok(())
}

/// When run `seq` has finished and its parent waits for it: put the child's
/// status, output and error on the parent's waiting step and queue the
/// parent, which the engine then settles. Nothing for a run still going.
pub(super) fn on_finished(c: &Connection, seq: i64) -> Result<()> {
    type Row = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        i64,
    );
    let row: Option<Row> = c
        .prepare_cached(
            "SELECT id, status, output, error, parent_run_id, parent_step_id, parent_waits FROM runs WHERE seq = ?1",
        )?
        .query_row([seq], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
        })
        .optional()?;
    let Some((id, status, output, error, Some(parent), Some(step), waits @ 1..=2)) = row else {
        return Ok(());
    };
    let status = RunStatus::parse(&status)
        .ok_or_else(|| StoreError::Decode(format!("unknown run status '{status}'")))?;
    if !status.is_terminal() {
        return Ok(());
    }
    if waits == 2 {
        // A loop item or a parallel branch: its block counts it.
        return super::fanout::child_finished(c, &parent, &step, status.as_str());
    }
    let child = child_record(
        &id,
        status,
        crate::store::columns::from_json(output)?,
        crate::store::columns::from_json(error)?,
    );
    let recorded = c
        .prepare_cached(
            "UPDATE steps SET output = json_set(COALESCE(output, '{}'), '$.child', json(?3)) \
             WHERE run_seq = (SELECT seq FROM runs WHERE id = ?1) AND step_id = ?2 AND status = 'waiting'",
        )?
        .execute(params![parent, step, child.to_string()])?;
    if recorded > 0 {
        // A suspended parent (or one parked until its deadline) is due now;
        // one that is claimed right now sees the record when its next spawn
        // commit repeats this.
        c.prepare_cached(
            "UPDATE runs SET ready = 1, not_before = 0 WHERE id = ?1 \
             AND lease_until IS NULL AND status IN ('pending', 'running')",
        )?
        .execute([parent])?;
    }
    Ok(())
}

/// Cancel every unfinished descendant of `parent_id`: one no worker holds
/// ends now, a claimed one is flagged and stops at its holder's next write.
pub(super) fn cancel_children(
    c: &Connection,
    parent_id: &str,
    now: i64,
    error: &Option<String>,
) -> Result<()> {
    let kids: Vec<(i64, String)> = c
        .prepare_cached(&format!(
            "SELECT seq, id FROM runs WHERE parent_run_id = ?1 AND status IN ({})",
            crate::store::decisions::unfinished_sql()
        ))?
        .query_map([parent_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (seq, id) in kids {
        cancel_child(c, seq, &id, now, error)?;
    }
    Ok(())
}

/// Cancel one child run and its own descendants: unheld, it ends now (its
/// steps skipped, its `run.cancelled` event recorded) and `true` is
/// returned; held, it is flagged and stops at its holder's next write.
pub(super) fn cancel_child(
    c: &Connection,
    seq: i64,
    id: &str,
    now: i64,
    error: &Option<String>,
) -> Result<bool> {
    let ended = c.execute(
        "UPDATE runs SET status = 'cancelled', error = ?2, completed_at = ?3, ready = 0, \
         lease_until = NULL, lease_owner = NULL, lease_token = lease_token + 1 \
         WHERE seq = ?1 AND (ready = 1 OR status = 'pending' OR lease_until IS NULL)",
        params![seq, error, now],
    )? > 0;
    if ended {
        c.execute(
            "UPDATE steps SET status = 'skipped' WHERE run_seq = ?1 \
             AND status NOT IN ('completed', 'failed', 'skipped')",
            [seq],
        )?;
        super::outbox::on_ended(c, seq, crate::engine::RunStatus::Cancelled, now)?;
    } else {
        c.execute(
            "UPDATE runs SET cancel_requested = 1 WHERE seq = ?1 AND status = 'running'",
            [seq],
        )?;
    }
    cancel_children(c, id, now, error)?;
    Ok(ended)
}

/// A run's children by status.
pub(super) fn counts(c: &Connection, id: &str) -> Result<Option<ChildCounts>> {
    let mut stmt = c.prepare_cached(
        "SELECT status, COUNT(*) FROM runs WHERE parent_run_id = ?1 GROUP BY status",
    )?;
    let rows = stmt.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut n = ChildCounts::default();
    for row in rows {
        let (status, k) = row?;
        let status = RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Decode(format!("unknown run status '{status}'")))?;
        count_child(&mut n, status, k);
    }
    Ok(Some(n))
}

/// Redrive run `seq` if it ended `failed`, `timed_out` or `cancelled`: its
/// non-completed step records go (they run again), the run is queued as new
/// with `redrive_count` one higher, and its waited-for children that did not
/// complete are redriven too (their ids are fixed, so the parent's repeated
/// spawn finds them). Returns whether anything changed.
///
/// A run that had started restarts its clock at `now` (its `timeoutMs` counts from
/// there) but keeps a start time: a claim reads the step results only of a run that
/// started, and the completed ones must be kept, not run again.
pub(super) fn redrive(c: &Connection, seq: i64, now: i64) -> Result<bool> {
    let n = c
        .prepare_cached(&format!(
            "UPDATE runs SET status = 'pending', output = NULL, error = NULL, \
             started_at = CASE WHEN started_at IS NULL THEN NULL ELSE ?2 END, \
             completed_at = NULL, ready = 1, not_before = 0, cancel_requested = 0, \
             lease_until = NULL, lease_owner = NULL, lease_token = lease_token + 1, \
             redrive_count = redrive_count + 1 \
             WHERE seq = ?1 AND status IN ({})",
            redrivable_sql()
        ))?
        .execute(params![seq, now])?;
    if n == 0 {
        return Ok(false);
    }
    c.prepare_cached("DELETE FROM steps WHERE run_seq = ?1 AND status <> 'completed'")?
        .execute([seq])?;
    let id: String = c
        .prepare_cached("SELECT id FROM runs WHERE seq = ?1")?
        .query_row([seq], |r| r.get(0))?;
    super::fanout::reset(c, &id)?;
    let kids: Vec<i64> = c
        .prepare_cached(&format!(
            "SELECT k.seq FROM runs k JOIN runs p ON k.parent_run_id = p.id WHERE p.seq = ?1 \
             AND k.parent_waits = 1 AND k.status IN ({})",
            redrivable_sql()
        ))?
        .query_map([seq], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for kid in kids {
        redrive(c, kid, now)?;
    }
    Ok(true)
}
