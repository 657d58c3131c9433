//! Schedule state: the next occurrence of each live schedule, and the
//! occurrences already handled (`schedule_fires`, unique per workflow and
//! time; runs claim their occurrence in `runs::create_run`'s transaction).

use super::{Result, Store};
use rusqlite::{OptionalExtension, params};

#[derive(Debug, Clone)]
pub struct ScheduleRow {
    pub workflow_id: String,
    /// The workflow version whose trigger `next_at` was computed from.
    pub version: i64,
    pub next_at: i64,
}

/// What overlap rules need to know about a schedule's earlier runs.
#[derive(Debug, Clone, Default)]
pub struct ScheduleState {
    /// A run this schedule started is pending or running.
    pub in_flight: bool,
    /// An occurrence waiting for that run (overlap `queue`).
    pub queued: Option<i64>,
}

impl Store {
    pub async fn list_schedules(&self) -> Result<Vec<ScheduleRow>> {
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
    pub async fn put_schedule(&self, row: ScheduleRow, now: i64) -> Result<()> {
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
    pub async fn delete_schedule(&self, workflow_id: String) -> Result<()> {
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

    pub async fn schedule_state(&self, workflow_id: String) -> Result<ScheduleState> {
        self.read(move |c| {
            // Only recent occurrences can still have a run in flight.
            let in_flight: i64 = c
                .prepare_cached(
                    "SELECT COUNT(*) FROM (SELECT run_id FROM schedule_fires WHERE workflow_id = ?1 \
                     AND run_id IS NOT NULL ORDER BY scheduled_at DESC LIMIT 20) f \
                     JOIN runs r ON r.id = f.run_id WHERE r.status IN ('pending', 'running')",
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
    pub async fn queue_occurrence(
        &self,
        workflow_id: String,
        scheduled_at: i64,
        now: i64,
    ) -> Result<()> {
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
