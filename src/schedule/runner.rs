//! The schedule loop: keeps one `schedules` row per live schedule (an active
//! workflow whose latest version has an enabled schedule trigger), and fires
//! each due occurrence through the trigger use case. Exactly once: the run
//! claims its occurrence under a unique key in its own insert transaction, so
//! a crash between firing and moving `next_at`, a restart, or a second node
//! finds the occurrence taken and starts nothing.

use super::occurrence::{between, latest_at_or_before, next_after};
use crate::store::TriggerType;
use crate::store::{ScheduleRow, StoreError, WorkflowRow};
use crate::time::{now_ms, rfc3339};
use crate::trigger::{TriggerError, TriggerRequest, Triggers};
use crate::workflow::trigger::{CatchUp, Overlap, ScheduleDef};
use crate::workflow::{TriggerDef, WorkflowStatus};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;

/// Longest sleep between looks, so applies and pauses are seen promptly.
const MAX_SLEEP: Duration = Duration::from_millis(250);
/// With `catchUp: none`, an occurrence this late is a missed one.
const ON_TIME_MS: i64 = 2_000;
/// `catchUp: all` fires at most this many missed occurrences.
const MAX_CATCH_UP: usize = 100;
const PAGE: usize = 500;

pub struct Scheduler {
    triggers: Triggers,
}

impl Scheduler {
    pub fn new(triggers: Triggers) -> Scheduler {
        Scheduler { triggers }
    }

    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let sleep = match self.tick(now_ms()).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "schedule check failed; retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// One look at every schedule; returns how long to sleep.
    async fn tick(&self, now: i64) -> Result<Duration, StoreError> {
        let store = &self.triggers.store;
        let mut rows: HashMap<String, ScheduleRow> = store
            .list_schedules()
            .await?
            .into_iter()
            .map(|r| (r.workflow_id.clone(), r))
            .collect();
        let mut earliest = now + MAX_SLEEP.as_millis() as i64;
        let mut after = None;
        loop {
            let page = store.list_workflows(after.clone(), PAGE).await?;
            for wf in &page {
                let row = rows.remove(&wf.id);
                if let Some(next) = self.check(wf, row, now).await? {
                    earliest = earliest.min(next);
                }
            }
            if page.len() < PAGE {
                break;
            }
            after = page.last().map(|w| w.id.clone());
        }
        // Rows whose workflow is gone.
        for (id, _) in rows {
            store.delete_schedule(id).await?;
        }
        Ok(Duration::from_millis((earliest - now).clamp(10, 250) as u64))
    }

    /// Bring one workflow's schedule row up to date, firing what is due;
    /// returns its next occurrence.
    async fn check(
        &self,
        wf: &WorkflowRow,
        row: Option<ScheduleRow>,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let store = &self.triggers.store;
        let live = if wf.status == WorkflowStatus::Active {
            match self
                .triggers
                .catalog
                .version(&wf.id, wf.latest_version)
                .await
            {
                Ok(c) => match &c.trigger {
                    TriggerDef::Schedule(s) if s.enabled => Some(s.clone()),
                    _ => None,
                },
                Err(e) => {
                    tracing::warn!(workflow_id = %wf.id, error = %e, "cannot load schedule");
                    None
                }
            }
        } else {
            None
        };
        let Some(def) = live else {
            if row.is_some() {
                store.delete_schedule(wf.id.clone()).await?;
            }
            return Ok(None);
        };
        let row = match row {
            // A new or replaced schedule starts from now: nothing to catch up.
            Some(r) if r.version == wf.latest_version => r,
            _ => {
                let Some(next_at) = next_after(&def, now) else {
                    return Ok(None);
                };
                let row = ScheduleRow {
                    workflow_id: wf.id.clone(),
                    version: wf.latest_version,
                    next_at,
                };
                store.put_schedule(row.clone()).await?;
                row
            }
        };
        let state = store.schedule_state(wf.id.clone()).await?;
        let mut in_flight = state.in_flight;
        let mut queued = state.queued;
        if let Some(at) = queued
            && !in_flight
        {
            self.fire(wf, &def, at, now).await?;
            in_flight = true;
            queued = None;
        }
        if row.next_at > now {
            return Ok(Some(row.next_at));
        }
        for at in due(&def, row.next_at, now) {
            match (def.overlap, in_flight) {
                (Overlap::Allow, _) | (_, false) => {
                    self.fire(wf, &def, at, now).await?;
                    in_flight = true;
                }
                (Overlap::Queue, true) if queued.is_none() => {
                    store.queue_occurrence(wf.id.clone(), at).await?;
                    queued = Some(at);
                }
                _ => tracing::info!(
                    workflow_id = %wf.id, scheduled_at = %rfc3339(at),
                    "schedule occurrence skipped: the previous run is still in flight"
                ),
            }
        }
        let next_at = next_after(&def, now);
        if let Some(next_at) = next_at {
            store.put_schedule(ScheduleRow { next_at, ..row }).await?;
        }
        Ok(next_at)
    }

    /// Start the run of one occurrence. Its own mistakes (input that fails the
    /// schema, a missing connection) are logged and the occurrence counts as
    /// handled; a store failure is returned so the occurrence is tried again.
    async fn fire(
        &self,
        wf: &WorkflowRow,
        def: &ScheduleDef,
        at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut input = def.input.clone();
        input.insert(
            "schedule".into(),
            json!({"name": wf.name, "scheduledAt": rfc3339(at), "firedAt": rfc3339(now)}),
        );
        let mut req =
            TriggerRequest::new(wf.id.clone(), Value::Object(input), TriggerType::Schedule);
        req.scheduled_at = Some(at);
        if def.jitter_ms > 0 {
            req.delay_ms = rand::random_range(0..=def.jitter_ms);
        }
        match self.triggers.trigger_run(req).await {
            Ok(_) => Ok(()),
            Err(TriggerError::Store(e)) => Err(e),
            Err(e) => {
                tracing::warn!(workflow_id = %wf.id, scheduled_at = %rfc3339(at), error = %e,
                    "scheduled run not started");
                Ok(())
            }
        }
    }
}

/// The occurrences in `[next_at, now]` to fire, by the catch-up rule: all of
/// them (the latest 100), only the latest, or only one that is on time.
fn due(def: &ScheduleDef, next_at: i64, now: i64) -> Vec<i64> {
    match def.catch_up {
        CatchUp::All => between(def, next_at, now, MAX_CATCH_UP),
        CatchUp::Latest => latest_at_or_before(def, now)
            .filter(|t| *t >= next_at)
            .into_iter()
            .collect(),
        CatchUp::None => latest_at_or_before(def, now)
            .filter(|t| *t >= next_at && now - *t <= ON_TIME_MS)
            .into_iter()
            .collect(),
    }
}

/// `nextRunAt` of a workflow: its schedule's next occurrence while it can fire.
pub fn next_run_at(status: WorkflowStatus, trigger: &TriggerDef, now: i64) -> Option<i64> {
    match trigger {
        TriggerDef::Schedule(s) if status == WorkflowStatus::Active && s.enabled => {
            next_after(s, now)
        }
        _ => None,
    }
}
