//! Compiled workflows, cached per version so that no trigger or run parses a
//! definition twice. Heads (status, latest version) are cached per workflow
//! and refreshed whenever this process changes them, and at least every
//! `HEAD_TTL` (other nodes sharing the store may change them). The webhook
//! index (path → the workflows listening there) is built at the first
//! delivery, updated in place when this process applies, pauses or archives
//! a workflow, and refreshed in the background once it is older than
//! `HEAD_TTL` (changes made through other nodes). A delivery waits for a
//! rebuild only when there is no index yet, or when its path is missing from
//! an index older than `HEAD_TTL` (a workflow applied elsewhere is found at
//! its first delivery), so with thousands of workflows an answer never pages
//! through them. Depends on the `Registry` port only.

use crate::store::{Registry, Store, StoreError, WorkflowRow};
use crate::workflow::trigger::WebhookDef;
use crate::workflow::{CompiledWorkflow, TriggerDef, WorkflowStatus, compile};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A workflow applied, paused or archived through another node is seen
/// here within this long.
const HEAD_TTL: Duration = Duration::from_millis(500);

type VersionCache = HashMap<(String, i64), Arc<CompiledWorkflow>>;

/// The ids behind the latest changes, so that a reader behind by a few can
/// refresh those alone; one further behind reads everything again.
const CHANGE_LOG: usize = 1024;

#[derive(Default)]
struct ChangeLog {
    /// (change count after the change, workflow id), oldest first.
    entries: std::collections::VecDeque<(u64, String)>,
}

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
    /// When it was built.
    built: Option<Instant>,
    /// While a rebuild reads the pages: the workflows this process changed
    /// meanwhile, patched into the new index before it replaces this one.
    changed_during_rebuild: Option<Vec<String>>,
}

#[derive(Clone)]
pub struct Catalog {
    store: Arc<dyn Registry>,
    versions: Arc<RwLock<VersionCache>>,
    heads: Arc<RwLock<HashMap<String, (WorkflowRow, Instant)>>>,
    /// Counts the changes this process made to workflows (the scheduler's
    /// index listens).
    changes: Arc<watch::Sender<u64>>,
    change_log: Arc<parking_lot::Mutex<ChangeLog>>,
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
            change_log: Default::default(),
            rebuilding: Default::default(),
        }
    }

    /// The active and paused workflows listening on `/webhooks/{path}`.
    pub async fn webhook_listeners(&self, path: &str) -> Result<Vec<Listener>, StoreError> {
        let (built, found) = {
            let i = self.webhooks.read();
            (i.built, i.by_path.get(path).cloned())
        };
        let stale = built.is_none_or(|when| when.elapsed() >= HEAD_TTL);
        if built.is_none() || (found.is_none() && stale) {
            let _guard = self.rebuilding.lock().await;
            let again = self.webhooks.read().built;
            if again.is_none_or(|when| when.elapsed() >= HEAD_TTL) {
                self.rebuild_index().await?;
            }
            return Ok(self
                .webhooks
                .read()
                .by_path
                .get(path)
                .cloned()
                .unwrap_or_default());
        }
        if stale && let Ok(guard) = self.rebuilding.clone().try_lock_owned() {
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = me.rebuild_index().await {
                    tracing::warn!(error = %e, "cannot refresh the webhook index");
                }
                drop(guard);
            });
        }
        Ok(found.unwrap_or_default())
    }

    /// After this process applied, paused, activated or archived `id`: its
    /// head is read again and its entry in the webhook index replaced at
    /// once (one row read, no rebuild).
    pub async fn workflow_changed(&self, id: &str) -> Result<(), StoreError> {
        self.forget_head(id);
        if let Some(during) = self.webhooks.write().changed_during_rebuild.as_mut() {
            during.push(id.to_string());
        }
        let row = self.store.get_workflow(id.to_string()).await?;
        let listener = self.listener_of(&row).await;
        put_listener(&mut self.webhooks.write().by_path, id, listener);
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
        self.webhooks.write().changed_during_rebuild = Some(Vec::new());
        let result = self.read_listeners().await;
        let mut i = self.webhooks.write();
        let changed = i.changed_during_rebuild.take().unwrap_or_default();
        let mut by_path = result?;
        // Workflows this process changed while the pages were read may be
        // missing from them or stale there; the old index has them patched
        // already, so their entries carry over.
        for id in changed {
            let listener = i
                .by_path
                .values()
                .flatten()
                .find(|l| l.workflow_id == id)
                .cloned();
            put_listener(&mut by_path, &id, listener);
        }
        *i = WebhookIndex {
            by_path,
            built: Some(Instant::now()),
            changed_during_rebuild: None,
        };
        Ok(())
    }

    /// Every active or paused workflow's webhook listener, page by page.
    async fn read_listeners(&self) -> Result<HashMap<String, Vec<Listener>>, StoreError> {
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
                return Ok(by_path);
            }
            after = page.last().map(|r| r.id.clone());
        }
    }

    /// The workflow's current row and its latest compiled version.
    pub async fn head(&self, id: &str) -> Result<(WorkflowRow, Arc<CompiledWorkflow>), StoreError> {
        let cached = {
            let h = self.heads.read();
            h.get(id)
                .filter(|(_, at)| at.elapsed() < HEAD_TTL)
                .map(|(row, _)| row.clone())
        };
        let row = match cached {
            Some(row) => row,
            None => {
                let row = self.store.get_workflow(id.to_string()).await?;
                self.heads
                    .write()
                    .insert(id.to_string(), (row.clone(), Instant::now()));
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
        if let Some(c) = self.versions.read().get(&key).cloned() {
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
        self.versions.write().insert(key, compiled.clone());
        Ok(compiled)
    }

    /// Seed the cache with a version compiled at apply time.
    pub fn remember(&self, version: i64, compiled: Arc<CompiledWorkflow>) {
        self.versions
            .write()
            .insert((compiled.id.clone(), version), compiled);
    }

    /// Forget a head after its status or latest version changed (the
    /// webhook index is rebuilt before its next lookup).
    pub fn forget_head(&self, id: &str) {
        self.heads.write().remove(id);
        let mut log = self.change_log.lock();
        self.changes.send_modify(|n| {
            *n += 1;
            log.entries.push_back((*n, id.to_string()));
        });
        if log.entries.len() > CHANGE_LOG {
            log.entries.pop_front();
        }
    }

    /// The number of changes this process made to workflows so far.
    pub fn change_count(&self) -> u64 {
        *self.changes.borrow()
    }

    /// The workflows changed after change `seen` (each once), or `None`
    /// when the log no longer reaches back that far.
    pub fn changed_since(&self, seen: u64) -> Option<Vec<String>> {
        let log = self.change_log.lock();
        if log.entries.front().is_some_and(|(n, _)| *n > seen + 1) {
            return None;
        }
        let mut unique = std::collections::HashSet::new();
        let ids = log
            .entries
            .iter()
            .filter(|(n, id)| *n > seen && unique.insert(id.as_str()))
            .map(|(_, id)| id.clone())
            .collect();
        Some(ids)
    }

    /// Changes this process made to workflows (each `forget_head`).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

/// Replace workflow `id`'s listener in a path index.
fn put_listener(
    by_path: &mut HashMap<String, Vec<Listener>>,
    id: &str,
    listener: Option<Listener>,
) {
    for listeners in by_path.values_mut() {
        listeners.retain(|l| l.workflow_id != id);
    }
    by_path.retain(|_, listeners| !listeners.is_empty());
    if let Some(l) = listener {
        by_path.entry(l.def.path.clone()).or_default().push(l);
    }
}
