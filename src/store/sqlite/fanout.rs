//! `loop` and `parallel` blocks in SQL. The commit that starts a block stores its
//! items and creates the first children (at most `max_concurrency`); the commit
//! that finishes a child counts it, creates the next child if the window has
//! room, and, once no child is unfinished and none is left to start, records the
//! children's results on the parent's waiting step (the join, in key order) and
//! queues the parent. So progress costs no commit of its own, a crash at any point
//! neither loses nor duplicates a child (one per key), and 10 000 items never mean
//! 10 000 queued runs.

use crate::engine::{RunError, child_run_id};
use crate::store::columns::{encode_error, from_json};
use crate::store::{FanOutWrite, Result};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

/// A block's window and counters.
struct Window {
    parent: String,
    step: String,
    total: i64,
    next_idx: i64,
    max_concurrency: i64,
    stop_on_failure: bool,
    stopped: bool,
    running: i64,
    completed: i64,
    failed: i64,
}

impl Window {
    fn done(&self) -> bool {
        self.running <= 0 && (self.stopped || self.next_idx >= self.total)
    }
}

fn load(c: &Connection, parent: &str, step: &str) -> Result<Option<Window>> {
    Ok(c.prepare_cached(
        "SELECT total, next_idx, max_concurrency, stop_on_failure, stopped, running, completed, failed \
         FROM fanouts WHERE parent_run_id = ?1 AND step_id = ?2",
    )?
    .query_row(params![parent, step], |r| {
        Ok(Window {
            parent: parent.to_string(),
            step: step.to_string(),
            total: r.get(0)?,
            next_idx: r.get(1)?,
            max_concurrency: r.get(2)?,
            stop_on_failure: r.get::<_, i64>(3)? != 0,
            stopped: r.get::<_, i64>(4)? != 0,
            running: r.get(5)?,
            completed: r.get(6)?,
            failed: r.get(7)?,
        })
    })
    .optional()?)
}

/// Store the counters, and show them on the parent's waiting step.
fn save(c: &Connection, w: &Window) -> Result<()> {
    c.prepare_cached(
        "UPDATE fanouts SET next_idx = ?3, stopped = ?4, running = ?5, completed = ?6, failed = ?7 \
         WHERE parent_run_id = ?1 AND step_id = ?2",
    )?
    .execute(params![
        w.parent,
        w.step,
        w.next_idx,
        w.stopped as i64,
        w.running,
        w.completed,
        w.failed
    ])?;
    let progress = json!({
        "total": w.total,
        "running": w.running.max(0),
        "completed": w.completed,
        "failed": w.failed,
    });
    c.prepare_cached(
        "UPDATE steps SET output = json_set(COALESCE(output, '{}'), '$.progress', json(?3)) \
         WHERE run_seq = (SELECT seq FROM runs WHERE id = ?1) AND step_id = ?2 AND status = 'waiting'",
    )?
    .execute(params![w.parent, w.step, progress.to_string()])?;
    Ok(())
}

/// The commit of a run that starts (or, after a crash or a redrive, resumes) a block.
pub(super) fn start(c: &Connection, parent_seq: i64, f: &FanOutWrite, now: i64) -> Result<()> {
    let parent: String = c
        .prepare_cached("SELECT id FROM runs WHERE seq = ?1")?
        .query_row([parent_seq], |r| r.get(0))?;
    let total = f.keys.len() as i64;
    let known: Option<i64> = c
        .prepare_cached("SELECT total FROM fanouts WHERE parent_run_id = ?1 AND step_id = ?2")?
        .query_row(params![parent, f.step_id], |r| r.get(0))
        .optional()?;
    match known {
        None => {
            c.prepare_cached(
                "INSERT INTO fanouts (parent_run_id, step_id, trigger_type, workflow_id, workflow_version, \
                 connection_id, root_run_id, depth, deadline_at, total, max_concurrency, stop_on_failure, scope) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                parent,
                f.step_id,
                f.trigger_type.as_str(),
                f.workflow_id,
                f.workflow_version,
                f.connection_id,
                f.root_run_id,
                f.depth,
                f.deadline_at,
                total,
                f.max_concurrency,
                f.stop_on_failure as i64,
                f.scope.to_string()
            ])?;
            put_items(c, &parent, f)?;
        }
        Some(known) => {
            // A redrive renders the block again; its scope (and collection) may differ.
            c.prepare_cached(
                "UPDATE fanouts SET scope = ?3, total = ?4, deadline_at = ?5 \
                 WHERE parent_run_id = ?1 AND step_id = ?2",
            )?
            .execute(params![
                parent,
                f.step_id,
                f.scope.to_string(),
                total,
                f.deadline_at
            ])?;
            if known != total {
                c.prepare_cached(
                    "DELETE FROM fanout_items WHERE parent_run_id = ?1 AND step_id = ?2",
                )?
                .execute(params![parent, f.step_id])?;
                put_items(c, &parent, f)?;
            }
        }
    }
    let Some(mut w) = load(c, &parent, &f.step_id)? else {
        return Ok(());
    };
    fill(c, &mut w, now)?;
    save(c, &w)?;
    if w.done() {
        join(c, &w)?;
    }
    Ok(())
}

fn put_items(c: &Connection, parent: &str, f: &FanOutWrite) -> Result<()> {
    let mut put = c.prepare_cached(
        "INSERT OR REPLACE INTO fanout_items (parent_run_id, step_id, idx, key, input) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (idx, (key, input)) in f.keys.iter().zip(&f.inputs).enumerate() {
        put.execute(params![
            parent,
            f.step_id,
            idx as i64,
            key,
            input.to_string()
        ])?;
    }
    Ok(())
}

/// Start children from the cursor while the window has room. A key whose child
/// completed (before a redrive) is passed over; one whose child failed runs again as
/// the same run (same id, same idempotency keys).
fn fill(c: &Connection, w: &mut Window, now: i64) -> Result<()> {
    while !w.stopped && w.running < w.max_concurrency && w.next_idx < w.total {
        let idx = w.next_idx;
        w.next_idx += 1;
        let Some((key, input)) = c
            .prepare_cached(
                "SELECT key, input FROM fanout_items WHERE parent_run_id = ?1 AND step_id = ?2 AND idx = ?3",
            )?
            .query_row(params![w.parent, w.step, idx], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?
        else {
            continue;
        };
        let existing: Option<(i64, String)> = c
            .prepare_cached(
                "SELECT seq, status FROM runs WHERE parent_run_id = ?1 AND parent_step_id = ?2 AND child_key = ?3",
            )?
            .query_row(params![w.parent, w.step, key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match existing {
            None => {
                let id = child_run_id(&w.parent, &w.step, &key);
                c.prepare_cached(
                    "INSERT INTO runs (id, workflow_id, workflow_version, status, input, connection_id, \
                     created_at, not_before, trigger_type, parent_run_id, parent_step_id, root_run_id, depth, \
                     child_key, parent_waits, deadline_at) \
                     SELECT ?1, workflow_id, workflow_version, 'pending', ?2, connection_id, ?3, ?3, trigger_type, \
                     parent_run_id, step_id, root_run_id, depth, ?4, 2, deadline_at \
                     FROM fanouts WHERE parent_run_id = ?5 AND step_id = ?6",
                )?
                .execute(params![id, input, now, key, w.parent, w.step])?;
                w.running += 1;
            }
            Some((seq, status))
                if matches!(status.as_str(), "failed" | "cancelled" | "timed_out") =>
            {
                super::children::redrive(c, seq, now)?;
                w.running += 1;
            }
            // Completed, or still going (counted when the window was reset).
            Some(_) => {}
        }
    }
    Ok(())
}

/// The commit that finished a child of block (`parent`, `step`) with `status`.
pub(super) fn child_finished(c: &Connection, parent: &str, step: &str, status: &str) -> Result<()> {
    let Some(mut w) = load(c, parent, step)? else {
        return Ok(());
    };
    let now = crate::time::now_ms();
    w.running -= 1;
    if status == "completed" {
        w.completed += 1;
    } else {
        w.failed += 1;
        if w.stop_on_failure && !w.stopped {
            w.stopped = true;
            cancel_siblings(c, &mut w, now)?;
        }
    }
    // A parent that ended meanwhile (cancelled, timed out) starts nothing more.
    let alive: bool = c
        .prepare_cached("SELECT status IN ('pending', 'running') FROM runs WHERE id = ?1")?
        .query_row([parent], |r| r.get(0))
        .optional()?
        .unwrap_or(false);
    if alive {
        fill(c, &mut w, now)?;
    }
    save(c, &w)?;
    if alive && w.done() {
        join(c, &w)?;
    }
    Ok(())
}

/// The first failure of a block that stops on failure: its unfinished children are
/// cancelled (one no worker holds ends now, a held one stops at its next write).
fn cancel_siblings(c: &Connection, w: &mut Window, now: i64) -> Result<()> {
    let error = encode_error(&Some(RunError::cancelled()));
    let kids: Vec<(i64, String)> = c
        .prepare_cached(
            "SELECT seq, id FROM runs WHERE parent_run_id = ?1 AND parent_step_id = ?2 \
             AND status IN ('pending', 'running')",
        )?
        .query_map(params![w.parent, w.step], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (seq, id) in kids {
        if super::children::cancel_child(c, seq, &id, now, &error)? {
            w.running -= 1;
            w.failed += 1;
        }
    }
    Ok(())
}

/// key, run id, status, output, error of one item (no run: never started).
type SlotRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Every child has finished (or will not start): record their results on the
/// parent's waiting step, in key order, and queue the parent.
fn join(c: &Connection, w: &Window) -> Result<()> {
    let rows: Vec<SlotRow> = c
        .prepare_cached(
            "SELECT i.key, r.id, r.status, r.output, r.error FROM fanout_items i \
             LEFT JOIN runs r ON r.parent_run_id = i.parent_run_id AND r.parent_step_id = i.step_id \
             AND r.child_key = i.key WHERE i.parent_run_id = ?1 AND i.step_id = ?2 ORDER BY i.idx",
        )?
        .query_map(params![w.parent, w.step], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut slots = Vec::with_capacity(rows.len());
    for (key, id, status, output, error) in rows {
        // A child still unfinished here was never started by this block's window
        // (a redrive reset it): it has no result yet.
        let finished = status
            .as_deref()
            .is_some_and(|s| matches!(s, "completed" | "failed" | "cancelled" | "timed_out"));
        slots.push(if finished {
            json!({
                "key": key,
                "runId": id,
                "status": status,
                "output": from_json(output)?,
                "error": from_json(error)?,
            })
        } else {
            json!({"key": key, "runId": id, "status": Value::Null})
        });
    }
    let recorded = c
        .prepare_cached(
            "UPDATE steps SET output = json_set(COALESCE(output, '{}'), '$.join', json(?3)) \
             WHERE run_seq = (SELECT seq FROM runs WHERE id = ?1) AND step_id = ?2 AND status = 'waiting'",
        )?
        .execute(params![w.parent, w.step, Value::Array(slots).to_string()])?;
    if recorded > 0 {
        c.prepare_cached(
            "UPDATE runs SET ready = 1, not_before = 0 WHERE id = ?1 AND ready = 0 \
             AND lease_until IS NULL AND status IN ('pending', 'running')",
        )?
        .execute([&w.parent])?;
    }
    Ok(())
}

/// A loop item that a `stop` with `breakLoop` ended: its block starts no more items
/// (those running finish).
pub(super) fn mark_break(c: &Connection, child_seq: i64) -> Result<()> {
    c.prepare_cached(
        "UPDATE fanouts SET stopped = 1 WHERE (parent_run_id, step_id) IN \
         (SELECT parent_run_id, parent_step_id FROM runs WHERE seq = ?1 AND parent_waits = 2)",
    )?
    .execute([child_seq])?;
    Ok(())
}

/// A redriven run's blocks start over from the first key: counters from their
/// children as they are, nothing stopped (completed children are passed over).
pub(super) fn reset(c: &Connection, parent: &str) -> Result<()> {
    c.prepare_cached(
        "UPDATE fanouts SET next_idx = 0, stopped = 0, failed = 0, \
         running = (SELECT COUNT(*) FROM runs r WHERE r.parent_run_id = fanouts.parent_run_id \
           AND r.parent_step_id = fanouts.step_id AND r.status IN ('pending', 'running')), \
         completed = (SELECT COUNT(*) FROM runs r WHERE r.parent_run_id = fanouts.parent_run_id \
           AND r.parent_step_id = fanouts.step_id AND r.status = 'completed') \
         WHERE parent_run_id = ?1",
    )?
    .execute([parent])?;
    Ok(())
}

/// Blocks of runs that retention deleted go too (up to `batch` blocks at a time).
pub(super) fn purge(c: &Connection, batch: usize) -> Result<()> {
    let orphans: Vec<(String, String)> = c
        .prepare_cached(
            "SELECT parent_run_id, step_id FROM fanouts f \
             WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = f.parent_run_id) LIMIT ?1",
        )?
        .query_map([batch as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (parent, step) in orphans {
        for table in ["fanout_items", "fanouts"] {
            c.prepare_cached(&format!(
                "DELETE FROM {table} WHERE parent_run_id = ?1 AND step_id = ?2"
            ))?
            .execute(params![parent, step])?;
        }
    }
    Ok(())
}

/// What block (`parent`, `step`)'s body sees of its parent.
pub(super) fn scope(c: &Connection, parent: &str, step: &str) -> Result<Option<Value>> {
    let text: Option<String> = c
        .prepare_cached("SELECT scope FROM fanouts WHERE parent_run_id = ?1 AND step_id = ?2")?
        .query_row(params![parent, step], |r| r.get(0))
        .optional()?;
    text.map(|t| from_json(Some(t))).transpose()
}

#[cfg(test)]
mod tests {
    //! The window and the join through the real store: children finishing in random
    //! orders (seeded) never exceed the window, and the join is the same in key order.
    use super::super::SqliteStore;
    use crate::engine::{RunStatus, StepRecord, StepStatus};
    use crate::store::*;
    use serde_json::{Value, json};

    fn write(status: RunStatus, output: Value, steps: Vec<StepRecord>) -> RunWrite {
        RunWrite {
            status,
            started_at: Some(1),
            completed_at: status.is_terminal().then_some(2),
            output,
            error: (status == RunStatus::Failed).then(|| crate::engine::RunError::step("E", "no")),
            park_until: None,
            steps,
            spawn: None,
            suspend: false,
            fanout: None,
            break_loop: false,
            suspension: None,
        }
    }

    /// Run a 12-item loop at `window` with the children finishing in the order the
    /// seed picks; returns the join recorded on the parent's step.
    async fn run_loop(seed: u64, window: i64, failing: &[usize]) -> Value {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let parent = match s
            .create_run(NewRun {
                id: "run_parent".into(),
                workflow_id: "wf_p".into(),
                workflow_version: 1,
                input: json!({}),
                idempotency_key: None,
                connection_id: None,
                trigger_type: TriggerType::Api,
                scheduled_at: None,
                delay_ms: 0,
                idempotency_ttl_ms: 1000,
            })
            .await
            .unwrap()
        {
            TriggerOutcome::Created(r) => r,
            TriggerOutcome::Replayed(_) => unreachable!(),
        };
        let n = 12;
        let claim = s.claim("n1", 1, 60_000).await.unwrap().remove(0);
        assert_eq!(claim.run.id, parent.id);
        let mut w = write(
            RunStatus::Running,
            Value::Null,
            vec![StepRecord {
                status: StepStatus::Waiting,
                output: json!({"waitingFor": "children"}),
                ..StepRecord::blank(0, "each")
            }],
        );
        w.suspend = true;
        w.fanout = Some(FanOutWrite {
            step_id: "each".into(),
            trigger_type: TriggerType::Loop,
            workflow_id: "wf_p".into(),
            workflow_version: 1,
            connection_id: None,
            root_run_id: parent.id.clone(),
            depth: 1,
            deadline_at: None,
            keys: (0..n).map(|k| k.to_string()).collect(),
            inputs: (0..n).map(|k| json!({"item": k, "index": k})).collect(),
            max_concurrency: window,
            stop_on_failure: false,
            scope: json!({"input": {}, "steps": {}, "vars": {}}),
        });
        assert_eq!(
            s.commit(claim.key(), w).await.unwrap(),
            CommitOutcome::Saved
        );
        // A small seeded generator (xorshift): the same seed, the same order.
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut pick = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let mut held: Vec<Claim> = vec![];
        let mut finished = 0;
        loop {
            held.extend(s.claim("n1", 100, 60_000).await.unwrap());
            if let Some(i) = held.iter().position(|c| c.run.id == parent.id) {
                // Queued again: the join is recorded.
                let p = held.remove(i);
                assert_eq!(
                    finished, n,
                    "the parent was queued before every item finished"
                );
                assert!(held.is_empty());
                return p.run.steps[0].output["join"].clone();
            }
            let unfinished = s
                .read(|c| {
                    Ok(c.query_row(
                        "SELECT COUNT(*) FROM runs WHERE parent_run_id = 'run_parent' AND status IN ('pending', 'running')",
                        [],
                        |r| r.get::<_, i64>(0),
                    )?)
                })
                .await
                .unwrap();
            assert!(
                unfinished <= window,
                "{unfinished} unfinished items at window {window}"
            );
            assert!(!held.is_empty(), "nothing to run and the parent not queued");
            let c = held.remove(pick(held.len()));
            let k: usize = c.run.family.key.as_deref().unwrap().parse().unwrap();
            assert_eq!(c.run.input, json!({"item": k, "index": k}));
            let (status, out) = if failing.contains(&k) {
                (RunStatus::Failed, Value::Null)
            } else {
                (RunStatus::Completed, json!(k * 10))
            };
            assert_eq!(
                s.commit(c.key(), write(status, out, vec![])).await.unwrap(),
                CommitOutcome::Saved
            );
            finished += 1;
        }
    }

    #[tokio::test]
    async fn any_finishing_order_gives_the_same_join_within_the_window() {
        let failing = [3, 7];
        let first = run_loop(0, 3, &failing).await;
        let statuses: Vec<&str> = first
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses.len(), 12);
        assert_eq!(statuses[3], "failed");
        assert_eq!(first[11]["output"], json!(110));
        for seed in 1..12 {
            let window = [1, 3, 5, 12][seed as usize % 4];
            let join = run_loop(seed, window, &failing).await;
            let strip = |j: &Value| -> Vec<(Value, Value)> {
                j.as_array()
                    .unwrap()
                    .iter()
                    .map(|s| (s["status"].clone(), s["output"].clone()))
                    .collect()
            };
            assert_eq!(strip(&join), strip(&first), "seed {seed}, window {window}");
        }
    }
}
