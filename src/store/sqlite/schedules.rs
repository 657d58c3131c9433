//! Schedule state: the next occurrence of each live schedule, and the
//! occurrences already handled (`schedule_fires`, unique per workflow and
//! time; runs claim their occurrence in `create_run`'s transaction).

use super::SqliteStore;
use super::runs::run_by_id;
use crate::store::Schedules;
use crate::store::decisions::unfinished_sql;
use crate::store::{Result, RunRow, ScheduleRow, ScheduleState, StoreError};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

/// Record a schedule's occurrence for `run_id`, or find the run that already
/// has it. An occurrence that was waiting (overlap `queue`, no run yet) is
/// taken by the first run that claims it.
pub(super) fn claim_occurrence(
    c: &Connection,
    workflow_id: &str,
    scheduled_at: i64,
    run_id: &str,
    now: i64,
) -> Result<Option<RunRow>> {
    let claimed = c
        .prepare_cached(
            "INSERT INTO schedule_fires (workflow_id, scheduled_at, run_id, fired_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (workflow_id, scheduled_at) DO UPDATE SET run_id = excluded.run_id, fired_at = excluded.fired_at \
             WHERE schedule_fires.run_id IS NULL",
        )?
        .execute(params![workflow_id, scheduled_at, run_id, now])?;
    if claimed == 1 {
        return Ok(None);
    }
    let existing: Option<String> = c
        .prepare_cached(
            "SELECT run_id FROM schedule_fires WHERE workflow_id = ?1 AND scheduled_at = ?2",
        )?
        .query_row(params![workflow_id, scheduled_at], |r| r.get(0))?;
    match existing {
        Some(id) => run_by_id(c, &id, false)?
            .map(Some)
            .ok_or(StoreError::NotFound("run")),
        None => Err(StoreError::Decode(
            "schedule occurrence without a run".into(),
        )),
    }
}

#[async_trait]
impl Schedules for SqliteStore {
    async fn list_schedules(&self) -> Result<Vec<ScheduleRow>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT workflow_id, version, next_at FROM schedules")?;
            let rows = stmt.query_map([], |r| {
                Ok(ScheduleRow {
                    workflow_id: r.get(0)?,
                    version: r.get(1)?,
                    next_at: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Create or move a schedule's next occurrence.
    async fn put_schedule(&self, row: ScheduleRow) -> Result<()> {
        let now = crate::time::now_ms();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO schedules (workflow_id, version, next_at, updated_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (workflow_id) DO UPDATE SET version = excluded.version, \
                 next_at = excluded.next_at, updated_at = excluded.updated_at",
            )?
            .execute(params![row.workflow_id, row.version, row.next_at, now])?;
            Ok(())
        })
        .await
    }

    /// A schedule stops (workflow paused, archived, disabled or no longer scheduled).
    async fn delete_schedule(&self, workflow_id: String) -> Result<()> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM schedules WHERE workflow_id = ?1",
                [&workflow_id],
            )?;
            c.execute(
                "DELETE FROM schedule_fires WHERE workflow_id = ?1 AND run_id IS NULL",
                [&workflow_id],
            )?;
            Ok(())
        })
        .await
    }

    async fn schedule_state(&self, workflow_id: String) -> Result<ScheduleState> {
        self.read(move |c| {
            // Only recent occurrences can still have a run in flight.
            let in_flight: i64 = c
                .prepare_cached(
                    &format!(
"SELECT COUNT(*) FROM (SELECT run_id FROM schedule_fires WHERE workflow_id = ?1 \
                     AND run_id IS NOT NULL ORDER BY scheduled_at DESC LIMIT 20) f \
                     JOIN runs r ON r.id = f.run_id WHERE r.status IN ({})",
 unfinished_sql()
),
                )?
                .query_row([&workflow_id], |r| r.get(0))?;
            let queued: Option<i64> = c
                .prepare_cached(
                    "SELECT MIN(scheduled_at) FROM schedule_fires WHERE workflow_id = ?1 AND run_id IS NULL",
                )?
                .query_row([&workflow_id], |r| r.get(0))
                .optional()?
                .flatten();
            Ok(ScheduleState {
                in_flight: in_flight > 0,
                queued,
            })
        })
        .await
    }

    /// Record an occurrence that waits for the previous run; its run comes later.
    async fn queue_occurrence(&self, workflow_id: String, scheduled_at: i64) -> Result<()> {
        let now = crate::time::now_ms();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO schedule_fires (workflow_id, scheduled_at, run_id, fired_at) VALUES (?1, ?2, NULL, ?3) \
                 ON CONFLICT (workflow_id, scheduled_at) DO NOTHING",
            )?
            .execute(params![workflow_id, scheduled_at, now])?;
            Ok(())
        })
        .await
    }
}
