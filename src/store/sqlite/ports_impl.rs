//! The SQLite store behind the ports: each port method is the inherent
//! method of the same name, boxed (see `store/forward.rs`).

use super::SqliteStore;
use crate::engine::RunStatus;
use crate::store::ports::{
    BoxFuture, Dashboard, Health, Redrives, Registry, RunQueue, Runs, Schedules,
};
use crate::store::*;
use serde_json::Value;

crate::store::forward::forward_ports!(SqliteStore);

impl Health for SqliteStore {
    fn check(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(SqliteStore::check_writable(self))
    }
    fn close(&self) {
        SqliteStore::close(self)
    }
}

impl Redrives for SqliteStore {
    fn redrive_run(&self, id: String) -> BoxFuture<'_, Result<Option<RunRow>>> {
        Box::pin(SqliteStore::redrive_run(self, id))
    }
}
