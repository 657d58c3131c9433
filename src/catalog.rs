//! Compiled workflows, cached per version so that no trigger or run parses a
//! definition twice. Heads (status, latest version) are cached per workflow
//! and refreshed whenever this process changes them, and at least every
//! `HEAD_TTL` (other nodes sharing the store may change them). Depends on
//! the `Registry` port only.

use crate::store::{Registry, Store, StoreError, WorkflowRow};
use crate::workflow::{CompiledWorkflow, compile};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A workflow applied, paused or archived through another node is seen
/// here within this long.
const HEAD_TTL: Duration = Duration::from_millis(500);

type VersionCache = HashMap<(String, i64), Arc<CompiledWorkflow>>;

#[derive(Clone)]
pub struct Catalog {
    store: Arc<dyn Registry>,
    versions: Arc<RwLock<VersionCache>>,
    heads: Arc<RwLock<HashMap<String, (WorkflowRow, Instant)>>>,
    /// Counts the changes this process made to workflows (the scheduler's
    /// index listens).
    changes: Arc<watch::Sender<u64>>,
}

impl Catalog {
    pub fn new(store: Store) -> Catalog {
        Catalog {
            store: store.registry(),
            versions: Default::default(),
            heads: Default::default(),
            changes: Default::default(),
        }
    }

    /// The workflow's current row and its latest compiled version.
    pub async fn head(&self, id: &str) -> Result<(WorkflowRow, Arc<CompiledWorkflow>), StoreError> {
        let cached = self.heads.read().ok().and_then(|h| {
            h.get(id)
                .filter(|(_, at)| at.elapsed() < HEAD_TTL)
                .map(|(row, _)| row.clone())
        });
        let row = match cached {
            Some(row) => row,
            None => {
                let row = self.store.get_workflow(id.to_string()).await?;
                if let Ok(mut h) = self.heads.write() {
                    h.insert(id.to_string(), (row.clone(), Instant::now()));
                }
                row
            }
        };
        let compiled = self.version(id, row.latest_version).await?;
        Ok((row, compiled))
    }

    pub async fn version(
        &self,
        id: &str,
        version: i64,
    ) -> Result<Arc<CompiledWorkflow>, StoreError> {
        let key = (id.to_string(), version);
        if let Some(c) = self.versions.read().ok().and_then(|v| v.get(&key).cloned()) {
            return Ok(c);
        }
        let (definition, _) = self.store.workflow_version(id.to_string(), version).await?;
        let compiled = compile(&definition).map_err(|issues| {
            StoreError::Decode(format!(
                "stored definition {id} v{version} no longer validates: {}",
                issues.first().map(|i| i.message.as_str()).unwrap_or("")
            ))
        })?;
        let compiled = Arc::new(compiled);
        if let Ok(mut v) = self.versions.write() {
            v.insert(key, compiled.clone());
        }
        Ok(compiled)
    }

    /// Seed the cache with a version compiled at apply time.
    pub fn remember(&self, version: i64, compiled: Arc<CompiledWorkflow>) {
        if let Ok(mut v) = self.versions.write() {
            v.insert((compiled.id.clone(), version), compiled);
        }
    }

    /// Forget a head after its status or latest version changed.
    pub fn forget_head(&self, id: &str) {
        if let Ok(mut h) = self.heads.write() {
            h.remove(id);
        }
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Changes this process made to workflows (each `forget_head`).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}
