//! The PostgreSQL store behind the ports: each port method is the inherent
//! method of the same name, boxed.

use super::PgStore;
use crate::engine::RunStatus;
use crate::store::ports::{BoxFuture, Dashboard, Health, Registry, RunQueue, Runs, Schedules};
use crate::store::*;
use serde_json::Value;

impl RunQueue for PgStore {
    fn claim(&self, owner: &str, limit: usize, lease_ms: i64) -> BoxFuture<'_, Result<Vec<Claim>>> {
        Box::pin(PgStore::claim(self, owner.to_string(), limit, lease_ms))
    }
    fn commit(&self, claim: ClaimRef, write: RunWrite) -> BoxFuture<'_, Result<CommitOutcome>> {
        Box::pin(PgStore::commit(self, claim, write))
    }
    fn heartbeat(
        &self,
        owner: &str,
        claims: Vec<ClaimRef>,
        lease_ms: i64,
    ) -> BoxFuture<'_, Result<HeartbeatReport>> {
        Box::pin(PgStore::heartbeat(
            self,
            owner.to_string(),
            claims,
            lease_ms,
        ))
    }
    fn release(&self, claims: Vec<ClaimRef>) -> BoxFuture<'_, Result<()>> {
        Box::pin(PgStore::release(self, claims))
    }
    fn sweep_expired(&self) -> BoxFuture<'_, Result<usize>> {
        Box::pin(PgStore::sweep_expired(self))
    }
    fn next_due(&self) -> BoxFuture<'_, Result<Option<i64>>> {
        Box::pin(PgStore::next_due(self))
    }
    fn queue_depth(&self) -> BoxFuture<'_, Result<i64>> {
        Box::pin(PgStore::queue_depth(self))
    }
}

impl Runs for PgStore {
    fn create_run(&self, new: NewRun) -> BoxFuture<'_, Result<TriggerOutcome>> {
        Box::pin(PgStore::create_run(self, new))
    }
    fn get_run(&self, id: String) -> BoxFuture<'_, Result<RunRow>> {
        Box::pin(PgStore::get_run(self, id))
    }
    fn list_runs(&self, filter: RunFilter) -> BoxFuture<'_, Result<Vec<RunRow>>> {
        Box::pin(PgStore::list_runs(self, filter))
    }
    fn cancel_run(&self, id: String) -> BoxFuture<'_, Result<RunRow>> {
        Box::pin(PgStore::cancel_run(self, id))
    }
    fn purge(&self, cutoff: i64, batch: usize) -> BoxFuture<'_, Result<usize>> {
        Box::pin(PgStore::purge(self, cutoff, batch))
    }
    fn count_runs_by_status(&self) -> BoxFuture<'_, Result<Vec<(RunStatus, i64)>>> {
        Box::pin(PgStore::count_runs_by_status(self))
    }
}

impl Registry for PgStore {
    fn apply_workflow(&self, apply: WorkflowApply) -> BoxFuture<'_, Result<ApplyOutcome>> {
        Box::pin(PgStore::apply_workflow(self, apply))
    }
    fn get_workflow(&self, id: String) -> BoxFuture<'_, Result<WorkflowRow>> {
        Box::pin(PgStore::get_workflow(self, id))
    }
    fn list_workflows(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<WorkflowRow>>> {
        Box::pin(PgStore::list_workflows(self, after, limit))
    }
    fn workflow_version(&self, id: String, version: i64) -> BoxFuture<'_, Result<(Value, i64)>> {
        Box::pin(PgStore::workflow_version(self, id, version))
    }
    fn set_workflow_status(
        &self,
        id: String,
        status: &'static str,
    ) -> BoxFuture<'_, Result<WorkflowRow>> {
        Box::pin(PgStore::set_workflow_status(self, id, status))
    }
    fn create_api_key(&self, key: NewApiKey) -> BoxFuture<'_, Result<()>> {
        Box::pin(PgStore::create_api_key(self, key))
    }
    fn api_key_by_hash(&self, hash: String) -> BoxFuture<'_, Result<Option<ApiKeyRow>>> {
        Box::pin(PgStore::api_key_by_hash(self, hash))
    }
    fn list_api_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKeyRow>>> {
        Box::pin(PgStore::list_api_keys(self))
    }
    fn revoke_api_key(&self, id: String) -> BoxFuture<'_, Result<()>> {
        Box::pin(PgStore::revoke_api_key(self, id))
    }
    fn put_connection(&self, w: ConnectionWrite) -> BoxFuture<'_, Result<(ConnectionRow, bool)>> {
        Box::pin(PgStore::put_connection(self, w))
    }
    fn list_connections(&self) -> BoxFuture<'_, Result<Vec<ConnectionRow>>> {
        Box::pin(PgStore::list_connections(self))
    }
    fn get_connection(&self, id: String) -> BoxFuture<'_, Result<ConnectionRow>> {
        Box::pin(PgStore::get_connection(self, id))
    }
    fn delete_connection(&self, id: String) -> BoxFuture<'_, Result<()>> {
        Box::pin(PgStore::delete_connection(self, id))
    }
}

impl Health for PgStore {
    fn check(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(PgStore::check_writable(self))
    }
    fn close(&self) {
        PgStore::close(self)
    }
    fn attach_events(&self, events: &crate::events::Events) {
        PgStore::attach_events(self, events.clone())
    }
    fn meta_init(&self, key: &'static str, value: String) -> BoxFuture<'_, Result<String>> {
        Box::pin(PgStore::meta_init(self, key, value))
    }
    fn rate_hit(
        &self,
        key: String,
        category: &'static str,
        emission_ms: i64,
        burst_ms: i64,
    ) -> BoxFuture<'_, Result<Option<RateState>>> {
        Box::pin(PgStore::rate_hit(
            self,
            key,
            category,
            emission_ms,
            burst_ms,
        ))
    }
}

impl Schedules for PgStore {
    fn list_schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleRow>>> {
        Box::pin(PgStore::list_schedules(self))
    }
    fn put_schedule(&self, row: ScheduleRow) -> BoxFuture<'_, Result<()>> {
        Box::pin(PgStore::put_schedule(self, row))
    }
    fn delete_schedule(&self, workflow_id: String) -> BoxFuture<'_, Result<()>> {
        Box::pin(PgStore::delete_schedule(self, workflow_id))
    }
    fn schedule_state(&self, workflow_id: String) -> BoxFuture<'_, Result<ScheduleState>> {
        Box::pin(PgStore::schedule_state(self, workflow_id))
    }
    fn queue_occurrence(
        &self,
        workflow_id: String,
        scheduled_at: i64,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(PgStore::queue_occurrence(self, workflow_id, scheduled_at))
    }
}

impl Dashboard for PgStore {
    fn create_ui_session(
        &self,
        id_hash: String,
        key_id: String,
        csrf_token: String,
        now: i64,
        expires_at: i64,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(PgStore::create_ui_session(
            self, id_hash, key_id, csrf_token, now, expires_at,
        ))
    }
    fn ui_session(&self, id_hash: String, now: i64) -> BoxFuture<'_, Result<Option<UiSession>>> {
        Box::pin(PgStore::ui_session(self, id_hash, now))
    }
    fn delete_ui_session(&self, id_hash: String) -> BoxFuture<'_, Result<()>> {
        Box::pin(PgStore::delete_ui_session(self, id_hash))
    }
    fn search_runs(&self, search: RunSearch) -> BoxFuture<'_, Result<RunPage>> {
        Box::pin(PgStore::search_runs(self, search))
    }
    fn overview(&self, now: i64) -> BoxFuture<'_, Result<Overview>> {
        Box::pin(PgStore::overview(self, now))
    }
}
