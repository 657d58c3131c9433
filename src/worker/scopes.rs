//! The scopes of blocks (what a loop's or parallel's body sees of its parent run),
//! kept per (parent run, step): every child of a block reads the same one, which
//! never changes while the block runs, so the store is asked once per block.

use crate::store::Result;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// More blocks than this at once and the cache starts over (it is only a shortcut).
const MAX_BLOCKS: usize = 256;

/// (parent run, block step) → scope.
type Held = HashMap<(String, String), Arc<Value>>;

#[derive(Clone, Default)]
pub(crate) struct Scopes {
    held: Arc<Mutex<Held>>,
}

impl Scopes {
    pub(crate) async fn get<F, Fut>(&self, parent: &str, step: &str, load: F) -> Result<Arc<Value>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Value>>,
    {
        let key = (parent.to_string(), step.to_string());
        if let Some(v) = self.held.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(v);
        }
        let v = Arc::new(load().await?);
        if let Ok(mut m) = self.held.lock() {
            if m.len() >= MAX_BLOCKS {
                m.clear();
            }
            m.insert(key, v.clone());
        }
        Ok(v)
    }
}
