//! Compiled workflows, cached per version so that no trigger or run parses a
//! definition twice. Heads (status, latest version) are cached per workflow
//! and refreshed whenever this process changes them, and at least every
//! `HEAD_TTL` (other nodes sharing the store may change them). The webhook
//! index (path → the workflows listening there) is updated in place when
//! this process applies, pauses or archives a workflow, and rebuilt in the
//! background once it is older than `HEAD_TTL` (before answering when older
//! than `INDEX_MAX_AGE`), so a delivery never pages through every workflow. Depends on the `Registry` port only.

use crate::store::{Registry, Store, StoreError, WorkflowRow};
use crate::workflow::trigger::WebhookDef;
use crate::workflow::{CompiledWorkflow, TriggerDef, WorkflowStatus, compile};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A workflow applied, paused or archived through another node is seen
/// here within this long.
const HEAD_TTL: Duration = Duration::from_millis(500);

/// An index older than this is rebuilt before answering (a node that saw
/// no delivery for a while); younger but stale ones are refreshed behind.
const INDEX_MAX_AGE: Duration = Duration::from_secs(2);

type VersionCache = HashMap<(String, i64), Arc<CompiledWorkflow>>;

/// A workflow (active or paused) whose latest version listens on a path.
#[derive(Debug, Clone)]
pub struct Listener {
    pub workflow_id: String,
    pub active: bool,
    pub def: WebhookDef,
}

#[derive(Default)]
struct WebhookIndex {
    by_path: HashMap<String, Vec<Listener>>,
    /// The change count it was built at, and when.
    built: Option<(u64, Instant)>,
}

#[derive(Clone)]
pub struct Catalog {
    store: Arc<dyn Registry>,
    versions: Arc<RwLock<VersionCache>>,
    heads: Arc<RwLock<HashMap<String, (WorkflowRow, Instant)>>>,
    /// Counts the changes this process made to workflows (the scheduler's
    /// index listens).
    changes: Arc<watch::Sender<u64>>,
    webhooks: Arc<RwLock<WebhookIndex>>,
    /// One rebuild at a time.
    rebuilding: Arc<tokio::sync::Mutex<()>>,
}

impl Catalog {
    pub fn new(store: Store) -> Catalog {
        Catalog {
            store: store.registry(),
            versions: Default::default(),
            heads: Default::default(),
            webhooks: Default::default(),
            changes: Default::default(),
            rebuilding: Default::default(),
        }
    }

    /// The active and paused workflows listening on `/webhooks/{path}`.
    pub async fn webhook_listeners(&self, path: &str) -> Result<Vec<Listener>, StoreError> {
        let built = self.webhooks.read().ok().and_then(|i| i.built.map(|b| b.1));
        match built {
            Some(when) if when.elapsed() < INDEX_MAX_AGE => {
                if when.elapsed() >= HEAD_TTL
                    && let Ok(guard) = self.rebuilding.clone().try_lock_owned()
                {
                    let me = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = me.rebuild_index().await {
                            tracing::warn!(error = %e, "cannot refresh the webhook index");
                        }
                        drop(guard);
                    });
                }
            }
            _ => {
                let _guard = self.rebuilding.lock().await;
                let again = self.webhooks.read().ok().and_then(|i| i.built.map(|b| b.1));
                if again.is_none_or(|when| when.elapsed() >= INDEX_MAX_AGE) {
                    self.rebuild_index().await?;
                }
            }
        }
        Ok(self
            .webhooks
            .read()
            .ok()
            .and_then(|i| i.by_path.get(path).cloned())
            .unwrap_or_default())
    }

    /// After this process applied, paused, activated or archived `id`: its
    /// head is read again and its entry in the webhook index replaced at
    /// once (one row read, no rebuild).
    pub async fn workflow_changed(&self, id: &str) -> Result<(), StoreError> {
        self.forget_head(id);
        let row = self.store.get_workflow(id.to_string()).await?;
        let listener = self.listener_of(&row).await;
        if let Ok(mut i) = self.webhooks.write() {
            for listeners in i.by_path.values_mut() {
                listeners.retain(|l| l.workflow_id != id);
            }
            if let Some(l) = listener {
                i.by_path.entry(l.def.path.clone()).or_default().push(l);
            }
        }
        Ok(())
    }

    async fn listener_of(&self, row: &WorkflowRow) -> Option<Listener> {
        let active = row.status == WorkflowStatus::Active;
        if !active && row.status != WorkflowStatus::Paused {
            return None;
        }
        let wf = self.version(&row.id, row.latest_version).await.ok()?;
        match &wf.trigger {
            TriggerDef::Webhook(def) => Some(Listener {
                workflow_id: row.id.clone(),
                active,
                def: def.clone(),
            }),
            _ => None,
        }
    }

    async fn rebuild_index(&self) -> Result<(), StoreError> {
        let changes = *self.changes.borrow();
        let mut by_path: HashMap<String, Vec<Listener>> = HashMap::new();
        let mut after = None;
        loop {
            let page = self.store.list_workflows(after.clone(), 1000).await?;
            for row in &page {
                if let Some(l) = self.listener_of(row).await {
                    by_path.entry(l.def.path.clone()).or_default().push(l);
                }
            }
            if page.len() < 1000 {
                break;
            }
            after = page.last().map(|r| r.id.clone());
        }
        // A change made here while the pages were read is not in them: keep
        // the index (it has the change) and let the next lookup rebuild.
        if let Ok(mut i) = self.webhooks.write()
            && *self.changes.borrow() == changes
        {
            *i = WebhookIndex {
                by_path,
                built: Some((changes, Instant::now())),
            };
        }
        Ok(())
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

    /// Forget a head after its status or latest version changed (the
    /// webhook index is rebuilt before its next lookup).
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
