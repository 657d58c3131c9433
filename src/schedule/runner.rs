//! The schedule loop: keeps one `schedules` row per live schedule (an active
//! workflow whose latest version has an enabled schedule trigger), and fires
//! each due occurrence through the trigger use case. Exactly once: the run
//! claims its occurrence under a unique key in its own insert transaction, so
//! a crash between firing and moving `next_at`, a restart, or a second node
//! finds the occurrence taken and starts nothing.
//!
//! Found by index, not by scanning: the loop keeps the live schedules in
//! memory with their next due time. A workflow applied, paused or archived
//! here is refreshed alone (one row read: a burst of applies costs one read
//! each, not a read of every workflow each); changes on another node,
//! through the store's notifications, rebuild the index from the store, as
//! does a backstop every `REBUILD_EVERY`. A look at the store happens only
//! when something is due.

use super::occurrence::{between, latest_at_or_before, next_after};
use crate::store::TriggerType;
use crate::store::{ScheduleRow, StoreError, WorkflowRow};
use crate::time::rfc3339;
use crate::trigger::{TriggerError, TriggerRequest, Triggers};
use crate::workflow::trigger::{CatchUp, Overlap, ScheduleDef};
use crate::workflow::{TriggerDef, WorkflowStatus};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often an occurrence waiting for its previous run (overlap `queue`)
/// is looked at.
const QUEUED_POLL_MS: i64 = 250;
/// The index is rebuilt at least this often: a backstop for changes made on
/// another node whose notification was lost or is switched off. (The node
/// that made a change rebuilds at once, and one node firing a schedule is
/// enough; a node whose index is behind re-reads the rows before firing.)
const REBUILD_EVERY_MS: i64 = 30_000;
/// Rebuilds are at least this far apart (a burst of applies costs one).
const REBUILD_GAP_MS: i64 = 250;
/// With `catchUp: none`, an occurrence this late is a missed one.
const ON_TIME_MS: i64 = 2_000;
/// `catchUp: all` fires at most this many missed occurrences.
const MAX_CATCH_UP: usize = 100;
const PAGE: usize = 500;

/// The time in ms since the epoch (injected so tests control it).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// One live schedule as the index holds it.
struct Entry {
    wf: WorkflowRow,
    def: ScheduleDef,
    /// The schedule row's version and next occurrence.
    row: ScheduleRow,
    /// An occurrence waits for the previous run (overlap `queue`).
    queued: bool,
}

pub struct Scheduler {
    triggers: Triggers,
    clock: Clock,
    index: HashMap<String, Entry>,
    /// Workflows known to have no live schedule, by (latest version,
    /// status): a rebuild skips loading their definitions again.
    plain: HashMap<String, (i64, WorkflowStatus)>,
    /// The index must be rebuilt (at the start, or workflows changed on
    /// another node).
    stale: bool,
    /// The catalog's change count the index has seen (changes made here).
    seen_local: u64,
    built_at: Option<i64>,
}

impl Scheduler {
    pub fn new(triggers: Triggers) -> Scheduler {
        Scheduler::with_clock(triggers, Arc::new(crate::time::now_ms))
    }

    pub fn with_clock(triggers: Triggers, clock: Clock) -> Scheduler {
        Scheduler {
            triggers,
            clock,
            index: HashMap::new(),
            plain: HashMap::new(),
            stale: true,
            seen_local: 0,
            built_at: None,
        }
    }

    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut local = self.triggers.catalog.changes();
        let mut remote = self.triggers.events.workflow_changes();
        loop {
            let now = (self.clock)();
            let sleep = match self.step(now).await {
                Ok(next) => Duration::from_millis((next - now).clamp(10, REBUILD_EVERY_MS) as u64),
                Err(e) => {
                    tracing::warn!(error = %e, "schedule check failed; retrying");
                    self.stale = true;
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = local.changed() => {}
                _ = remote.changed() => self.workflows_changed(),
                _ = stop.changed() => return,
            }
        }
    }

    /// Workflows changed on another node: the index is rebuilt at the next
    /// look.
    pub(crate) fn workflows_changed(&mut self) {
        self.stale = true;
    }

    /// Rebuild the index when due, fire what is due; returns when to look
    /// again (ms since the epoch).
    pub(crate) async fn step(&mut self, now: i64) -> Result<i64, StoreError> {
        let since_build = self.built_at.map(|at| now - at);
        let rebuild_due = since_build.is_none_or(|d| d >= REBUILD_EVERY_MS);
        let gap_ok = since_build.is_none_or(|d| d >= REBUILD_GAP_MS);
        if rebuild_due || (self.stale && gap_ok) {
            self.rebuild(now).await?;
        } else if self.triggers.catalog.change_count() != self.seen_local {
            self.refresh_changed(now).await?;
        }
        if self
            .index
            .values()
            .any(|e| e.queued || e.row.next_at <= now)
        {
            self.fire_due(now).await?;
        }
        let mut next = self.built_at.unwrap_or(now) + REBUILD_EVERY_MS;
        if self.stale {
            next = next.min(self.built_at.unwrap_or(now) + REBUILD_GAP_MS);
        }
        for e in self.index.values() {
            next = next.min(if e.queued {
                now + QUEUED_POLL_MS
            } else {
                e.row.next_at
            });
        }
        Ok(next)
    }

    /// Read every workflow once: keep a `schedules` row for each live
    /// schedule (new or replaced ones start from now), drop the others.
    async fn rebuild(&mut self, now: i64) -> Result<(), StoreError> {
        let seen_local = self.triggers.catalog.change_count();
        let store = self.triggers.store.clone();
        let mut rows: HashMap<String, ScheduleRow> = store
            .list_schedules()
            .await?
            .into_iter()
            .map(|r| (r.workflow_id.clone(), r))
            .collect();
        let mut index = HashMap::new();
        let mut plain = HashMap::new();
        let mut after = None;
        loop {
            let page = store.list_workflows(after.clone(), PAGE).await?;
            for wf in &page {
                let row = rows.remove(&wf.id);
                let head = (wf.latest_version, wf.status);
                let known = self.index.get(&wf.id).filter(|e| {
                    e.wf.latest_version == wf.latest_version && e.wf.status == wf.status
                });
                let def = match known {
                    Some(e) => Ok(Some(e.def.clone())),
                    None if self.plain.get(&wf.id) == Some(&head) => Ok(None),
                    None => self.live_schedule(wf).await,
                };
                let def = match def {
                    Ok(Some(def)) => def,
                    Ok(None) => {
                        if row.is_some() {
                            store.delete_schedule(wf.id.clone()).await?;
                        }
                        plain.insert(wf.id.clone(), head);
                        continue;
                    }
                    Err(()) => {
                        // As before: not live until its definition loads.
                        if row.is_some() {
                            store.delete_schedule(wf.id.clone()).await?;
                        }
                        continue;
                    }
                };
                let row = match row {
                    Some(r) if r.version == wf.latest_version => r,
                    _ => {
                        let Some(next_at) = next_after(&def, now) else {
                            continue;
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
                // An occurrence queued before (by this or another node) is
                // found at the first look.
                let queued = self
                    .index
                    .get(&wf.id)
                    .is_none_or(|e| e.queued || e.row.version != row.version)
                    && def.overlap == Overlap::Queue;
                index.insert(
                    wf.id.clone(),
                    Entry {
                        wf: wf.clone(),
                        def,
                        row,
                        queued,
                    },
                );
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
        self.index = index;
        self.plain = plain;
        self.stale = false;
        self.seen_local = seen_local;
        self.built_at = Some(now);
        Ok(())
    }

    /// Refresh only the workflows this process changed since the index saw
    /// them (a rebuild when the catalog's log no longer reaches back).
    async fn refresh_changed(&mut self, now: i64) -> Result<(), StoreError> {
        let count = self.triggers.catalog.change_count();
        let Some(ids) = self.triggers.catalog.changed_since(self.seen_local) else {
            return self.rebuild(now).await;
        };
        let store = self.triggers.store.clone();
        for id in ids {
            let wf = match store.get_workflow(id.clone()).await {
                Ok(wf) => Some(wf),
                Err(StoreError::NotFound(_)) => None,
                Err(e) => return Err(e),
            };
            let def = match &wf {
                Some(wf) => self.live_schedule(wf).await,
                None => Ok(None),
            };
            let had = self.index.remove(&id);
            self.plain.remove(&id);
            let (wf, def) = match (wf, def) {
                (Some(wf), Ok(Some(def))) => (wf, def),
                (wf, def) => {
                    if had.is_some() {
                        store.delete_schedule(id.clone()).await?;
                    }
                    // Known to have no schedule: a rebuild skips its definition.
                    if let (Some(wf), Ok(None)) = (wf, def) {
                        self.plain.insert(id, (wf.latest_version, wf.status));
                    }
                    continue;
                }
            };
            let (row, queued) = match had {
                Some(e) if e.row.version == wf.latest_version => (e.row, e.queued),
                _ => {
                    let Some(next_at) = next_after(&def, now) else {
                        store.delete_schedule(id.clone()).await?;
                        continue;
                    };
                    let row = ScheduleRow {
                        workflow_id: id.clone(),
                        version: wf.latest_version,
                        next_at,
                    };
                    store.put_schedule(row.clone()).await?;
                    (row, def.overlap == Overlap::Queue)
                }
            };
            self.index.insert(
                id,
                Entry {
                    wf,
                    def,
                    row,
                    queued,
                },
            );
        }
        self.seen_local = count;
        Ok(())
    }

    /// The enabled schedule of an active workflow's latest version; `Err`
    /// when its definition cannot be loaded now (tried again next time).
    async fn live_schedule(&self, wf: &WorkflowRow) -> Result<Option<ScheduleDef>, ()> {
        if wf.status != WorkflowStatus::Active {
            return Ok(None);
        }
        match self
            .triggers
            .catalog
            .version(&wf.id, wf.latest_version)
            .await
        {
            Ok(c) => Ok(match &c.trigger {
                TriggerDef::Schedule(s) if s.enabled => Some((**s).clone()),
                _ => None,
            }),
            Err(e) => {
                tracing::warn!(workflow_id = %wf.id, error = %e, "cannot load schedule");
                Err(())
            }
        }
    }

    /// Fire every due occurrence. The rows are read again first: another
    /// node may have fired and moved them.
    async fn fire_due(&mut self, now: i64) -> Result<(), StoreError> {
        let store = self.triggers.store.clone();
        let rows: HashMap<String, ScheduleRow> = store
            .list_schedules()
            .await?
            .into_iter()
            .map(|r| (r.workflow_id.clone(), r))
            .collect();
        let ids: Vec<String> = self.index.keys().cloned().collect();
        for id in ids {
            let Some(e) = self.index.get(&id) else {
                continue;
            };
            match rows.get(&id) {
                Some(r) if r.version == e.row.version => {}
                // Deleted or replaced elsewhere: the next rebuild knows.
                _ => {
                    self.stale = true;
                    continue;
                }
            }
            let row = rows[&id].clone();
            if !e.queued && row.next_at > now {
                if let Some(e) = self.index.get_mut(&id) {
                    e.row = row;
                }
                continue;
            }
            let (wf, def) = (e.wf.clone(), e.def.clone());
            let (next, queued) = self.check(&wf, &def, row, now).await?;
            match next {
                Some(next_at) => {
                    if let Some(e) = self.index.get_mut(&id) {
                        e.row.next_at = next_at;
                        e.queued = queued;
                    }
                }
                None => {
                    self.index.remove(&id);
                }
            }
        }
        Ok(())
    }

    /// Fire one schedule's queued and due occurrences and move its row;
    /// returns its next occurrence and whether one still waits in the queue.
    async fn check(
        &self,
        wf: &WorkflowRow,
        def: &ScheduleDef,
        row: ScheduleRow,
        now: i64,
    ) -> Result<(Option<i64>, bool), StoreError> {
        let store = &self.triggers.store;
        let state = store.schedule_state(wf.id.clone()).await?;
        let mut in_flight = state.in_flight;
        let mut queued = state.queued;
        if let Some(at) = queued
            && !in_flight
        {
            self.fire(wf, def, at, now).await?;
            in_flight = true;
            queued = None;
        }
        if row.next_at > now {
            return Ok((Some(row.next_at), queued.is_some()));
        }
        for at in due(def, row.next_at, now) {
            match (def.overlap, in_flight) {
                (Overlap::Allow, _) | (_, false) => {
                    self.fire(wf, def, at, now).await?;
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
        let next_at = next_after(def, now);
        if let Some(next_at) = next_at {
            store.put_schedule(ScheduleRow { next_at, ..row }).await?;
        }
        Ok((next_at, queued.is_some()))
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
