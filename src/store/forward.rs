//! Each store implements the ports by its inherent methods of the same
//! names and arguments; this macro writes that forwarding once for both.
//! `Health` differs between the stores and is written by each.

/// `impl RunQueue, Runs, Registry, Schedules, Dashboard for $store`, each
/// method boxing the inherent method of the same name.
macro_rules! forward_ports {
    ($store:ident) => {
        impl RunQueue for $store {
            fn claim(
                &self,
                owner: &str,
                limit: usize,
                lease_ms: i64,
            ) -> BoxFuture<'_, Result<Vec<Claim>>> {
                Box::pin($store::claim(self, owner.to_string(), limit, lease_ms))
            }
            fn commit(
                &self,
                claim: ClaimRef,
                write: RunWrite,
            ) -> BoxFuture<'_, Result<CommitOutcome>> {
                Box::pin($store::commit(self, claim, write))
            }
            fn heartbeat(
                &self,
                owner: &str,
                claims: Vec<ClaimRef>,
                lease_ms: i64,
            ) -> BoxFuture<'_, Result<HeartbeatReport>> {
                Box::pin($store::heartbeat(self, owner.to_string(), claims, lease_ms))
            }
            fn release(&self, claims: Vec<ClaimRef>) -> BoxFuture<'_, Result<()>> {
                Box::pin($store::release(self, claims))
            }
            fn sweep_expired(&self) -> BoxFuture<'_, Result<usize>> {
                Box::pin($store::sweep_expired(self))
            }
            fn next_due(&self) -> BoxFuture<'_, Result<Option<i64>>> {
                Box::pin($store::next_due(self))
            }
            fn queue_depth(&self) -> BoxFuture<'_, Result<i64>> {
                Box::pin($store::queue_depth(self))
            }
        }

        impl Runs for $store {
            fn create_run(&self, new: NewRun) -> BoxFuture<'_, Result<TriggerOutcome>> {
                Box::pin($store::create_run(self, new))
            }
            fn get_run(&self, id: String) -> BoxFuture<'_, Result<RunRow>> {
                Box::pin($store::get_run(self, id))
            }
            fn list_runs(&self, filter: RunFilter) -> BoxFuture<'_, Result<Vec<RunRow>>> {
                Box::pin($store::list_runs(self, filter))
            }
            fn cancel_run(&self, id: String) -> BoxFuture<'_, Result<RunRow>> {
                Box::pin($store::cancel_run(self, id))
            }
            fn purge(&self, cutoff: i64, batch: usize) -> BoxFuture<'_, Result<usize>> {
                Box::pin($store::purge(self, cutoff, batch))
            }
            fn count_runs_by_status(&self) -> BoxFuture<'_, Result<Vec<(RunStatus, i64)>>> {
                Box::pin($store::count_runs_by_status(self))
            }
        }

        impl Registry for $store {
            fn apply_workflow(&self, apply: WorkflowApply) -> BoxFuture<'_, Result<ApplyOutcome>> {
                Box::pin($store::apply_workflow(self, apply))
            }
            fn get_workflow(&self, id: String) -> BoxFuture<'_, Result<WorkflowRow>> {
                Box::pin($store::get_workflow(self, id))
            }
            fn list_workflows(
                &self,
                after: Option<String>,
                limit: usize,
            ) -> BoxFuture<'_, Result<Vec<WorkflowRow>>> {
                Box::pin($store::list_workflows(self, after, limit))
            }
            fn workflow_version(
                &self,
                id: String,
                version: i64,
            ) -> BoxFuture<'_, Result<(Value, i64)>> {
                Box::pin($store::workflow_version(self, id, version))
            }
            fn set_workflow_status(
                &self,
                id: String,
                status: &'static str,
            ) -> BoxFuture<'_, Result<WorkflowRow>> {
                Box::pin($store::set_workflow_status(self, id, status))
            }
            fn create_api_key(&self, key: NewApiKey) -> BoxFuture<'_, Result<()>> {
                Box::pin($store::create_api_key(self, key))
            }
            fn api_key_by_hash(&self, hash: String) -> BoxFuture<'_, Result<Option<ApiKeyRow>>> {
                Box::pin($store::api_key_by_hash(self, hash))
            }
            fn list_api_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKeyRow>>> {
                Box::pin($store::list_api_keys(self))
            }
            fn revoke_api_key(&self, id: String) -> BoxFuture<'_, Result<()>> {
                Box::pin($store::revoke_api_key(self, id))
            }
            fn put_connection(
                &self,
                w: ConnectionWrite,
            ) -> BoxFuture<'_, Result<(ConnectionRow, bool)>> {
                Box::pin($store::put_connection(self, w))
            }
            fn list_connections(&self) -> BoxFuture<'_, Result<Vec<ConnectionRow>>> {
                Box::pin($store::list_connections(self))
            }
            fn get_connection(&self, id: String) -> BoxFuture<'_, Result<ConnectionRow>> {
                Box::pin($store::get_connection(self, id))
            }
            fn delete_connection(&self, id: String) -> BoxFuture<'_, Result<()>> {
                Box::pin($store::delete_connection(self, id))
            }
        }

        impl Schedules for $store {
            fn list_schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleRow>>> {
                Box::pin($store::list_schedules(self))
            }
            fn put_schedule(&self, row: ScheduleRow) -> BoxFuture<'_, Result<()>> {
                Box::pin($store::put_schedule(self, row))
            }
            fn delete_schedule(&self, workflow_id: String) -> BoxFuture<'_, Result<()>> {
                Box::pin($store::delete_schedule(self, workflow_id))
            }
            fn schedule_state(&self, workflow_id: String) -> BoxFuture<'_, Result<ScheduleState>> {
                Box::pin($store::schedule_state(self, workflow_id))
            }
            fn queue_occurrence(
                &self,
                workflow_id: String,
                scheduled_at: i64,
            ) -> BoxFuture<'_, Result<()>> {
                Box::pin($store::queue_occurrence(self, workflow_id, scheduled_at))
            }
        }

        impl Dashboard for $store {
            fn create_ui_session(
                &self,
                id_hash: String,
                key_id: String,
                csrf_token: String,
                now: i64,
                expires_at: i64,
            ) -> BoxFuture<'_, Result<()>> {
                Box::pin($store::create_ui_session(
                    self, id_hash, key_id, csrf_token, now, expires_at,
                ))
            }
            fn ui_session(
                &self,
                id_hash: String,
                now: i64,
            ) -> BoxFuture<'_, Result<Option<UiSession>>> {
                Box::pin($store::ui_session(self, id_hash, now))
            }
            fn delete_ui_session(&self, id_hash: String) -> BoxFuture<'_, Result<()>> {
                Box::pin($store::delete_ui_session(self, id_hash))
            }
            fn search_runs(&self, search: RunSearch) -> BoxFuture<'_, Result<RunPage>> {
                Box::pin($store::search_runs(self, search))
            }
            fn overview(&self, now: i64) -> BoxFuture<'_, Result<Overview>> {
                Box::pin($store::overview(self, now))
            }
        }
    };
}
pub(crate) use forward_ports;
