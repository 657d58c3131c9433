//! The PostgreSQL store behind the ports: each port method is the inherent
//! method of the same name, boxed (see `store/forward.rs`).

use super::PgStore;
use crate::engine::RunStatus;
use crate::store::ports::{
    BoxFuture, Dashboard, Health, Redrives, Registry, RunQueue, Runs, Schedules,
};
use crate::store::*;
use serde_json::Value;

crate::store::forward::forward_ports!(PgStore);

impl Health for PgStore {
    fn check(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(PgStore::check_writable(self))
    }
    fn close(&self) {
        PgStore::close(self)
    }
    fn child_runs(&self) -> bool {
        false
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

impl Redrives for PgStore {
    /// Not on PostgreSQL yet (`Health::child_runs` says so to callers).
    fn redrive_run(&self, _id: String) -> BoxFuture<'_, Result<Option<RunRow>>> {
        Box::pin(async {
            Err(StoreError::Decode(
                "redrive is not available on PostgreSQL yet".into(),
            ))
        })
    }
}
