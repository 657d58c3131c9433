//! Schedule state on PostgreSQL: the next occurrence of each live schedule,
//! and the occurrences already handled (`schedule_fires`, unique per
//! workflow and time). A run claims its occurrence inside `create_run`'s
//! transaction, so two nodes never fire one occurrence twice.

use super::runs::run_by_id;
use super::{Db, PgStore, pg};
use crate::store::Schedules;
use crate::store::decisions::unfinished_sql;
use crate::store::{NewRun, Result, RunRow, ScheduleRow, ScheduleState, StoreError};
use async_trait::async_trait;

/// Record the run's schedule occurrence, or find the run that already has
/// it. An occurrence that was waiting (overlap `queue`, no run yet) is taken
/// by the first run that claims it. `None`: this run owns the occurrence (or
/// it is not a scheduled run).
pub(super) async fn claim_occurrence(
    tx: &deadpool_postgres::Transaction<'_>,
    new: &NewRun,
) -> Result<Option<RunRow>> {
    let Some(at) = new.scheduled_at else {
        return Ok(None);
    };
    let db = Db::Tx(tx);
    let claimed = db
        .query_opt(
            "INSERT INTO schedule_fires (workflow_id, scheduled_at, run_id, fired_at) \
             VALUES ($1, $2, $3, flowctl_now_ms()) \
             ON CONFLICT (workflow_id, scheduled_at) DO UPDATE SET run_id = EXCLUDED.run_id, \
             fired_at = EXCLUDED.fired_at WHERE schedule_fires.run_id IS NULL RETURNING run_id",
            &[&new.workflow_id, &at, &new.id],
        )
        .await?;
    if claimed.is_some() {
        return Ok(None);
    }
    let holder: Option<String> = db
        .query_one(
            "SELECT run_id FROM schedule_fires WHERE workflow_id = $1 AND scheduled_at = $2",
            &[&new.workflow_id, &at],
        )
        .await?
        .get(0);
    match holder {
        Some(id) => run_by_id(&db, &id, false)
            .await?
            .map(Some)
            .ok_or(StoreError::NotFound("run")),
        None => Err(StoreError::Decode(
            "schedule occurrence without a run".into(),
        )),
    }
}

#[async_trait]
impl Schedules for PgStore {
    async fn list_schedules(&self) -> Result<Vec<ScheduleRow>> {
        let c = self.client().await?;
        let rows = Db::Client(&c)
            .query("SELECT workflow_id, version, next_at FROM schedules", &[])
            .await?;
        Ok(rows
            .iter()
            .map(|r| ScheduleRow {
                workflow_id: r.get(0),
                version: r.get(1),
                next_at: r.get(2),
            })
            .collect())
    }

    async fn put_schedule(&self, row: ScheduleRow) -> Result<()> {
        let c = self.client().await?;
        Db::Client(&c)
            .query(
                "INSERT INTO schedules (workflow_id, version, next_at, updated_at) \
                 VALUES ($1, $2, $3, flowctl_now_ms()) \
                 ON CONFLICT (workflow_id) DO UPDATE SET version = EXCLUDED.version, \
                 next_at = EXCLUDED.next_at, updated_at = EXCLUDED.updated_at",
                &[&row.workflow_id, &row.version, &row.next_at],
            )
            .await?;
        Ok(())
    }

    async fn delete_schedule(&self, workflow_id: String) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute(
            "DELETE FROM schedules WHERE workflow_id = $1",
            &[&workflow_id],
        )
        .await
        .map_err(pg)?;
        tx.execute(
            "DELETE FROM schedule_fires WHERE workflow_id = $1 AND run_id IS NULL",
            &[&workflow_id],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)
    }

    async fn schedule_state(&self, workflow_id: String) -> Result<ScheduleState> {
        let c = self.client().await?;
        let db = Db::Client(&c);
        // Only recent occurrences can still have a run in flight.
        let in_flight: i64 = db
            .query_one(
                &format!(
"SELECT COUNT(*) FROM (SELECT run_id FROM schedule_fires WHERE workflow_id = $1 \
                 AND run_id IS NOT NULL ORDER BY scheduled_at DESC LIMIT 20) f \
                 JOIN runs r ON r.id = f.run_id WHERE r.status IN ({})",
 unfinished_sql()
),
                &[&workflow_id],
            )
            .await?
            .get(0);
        let queued: Option<i64> = db
            .query_one(
                "SELECT MIN(scheduled_at) FROM schedule_fires WHERE workflow_id = $1 AND run_id IS NULL",
                &[&workflow_id],
            )
            .await?
            .get(0);
        Ok(ScheduleState {
            in_flight: in_flight > 0,
            queued,
        })
    }

    async fn queue_occurrence(&self, workflow_id: String, scheduled_at: i64) -> Result<()> {
        let c = self.client().await?;
        Db::Client(&c)
            .query(
                "INSERT INTO schedule_fires (workflow_id, scheduled_at, run_id, fired_at) \
                 VALUES ($1, $2, NULL, flowctl_now_ms()) ON CONFLICT (workflow_id, scheduled_at) DO NOTHING",
                &[&workflow_id, &scheduled_at],
            )
            .await?;
        Ok(())
    }
}
