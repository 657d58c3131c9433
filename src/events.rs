//! In-process hints between the API and the worker: "a run was queued"
//! (wakes the dispatcher), "this run finished" (answers long-polls), and
//! "cancel this run" (aborts its step in flight at once). They only make
//! things prompt: cancel is recorded in the store (and reaches a run on
//! another node through its heartbeat and its next write), and the
//! dispatcher and long-polls poll as a backstop.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, oneshot, watch};

#[derive(Clone, Default)]
pub struct Events {
    queued: Arc<Notify>,
    finished: Arc<Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>>,
    cancels: Arc<Mutex<Cancels>>,
}

/// Cancel signals of runs being executed, and cancels that arrived for runs
/// claimed but not yet started (their worker starts with the signal set).
#[derive(Default)]
struct Cancels {
    signals: HashMap<String, watch::Sender<bool>>,
    early: HashSet<String>,
}

impl Events {
    pub fn run_queued(&self) {
        self.queued.notify_one();
    }

    pub async fn wait_queued(&self) {
        self.queued.notified().await;
    }

    /// Register before reading the run's status, so a finish in between is not missed.
    pub fn on_finished(&self, run_id: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = self.finished.lock() {
            m.entry(run_id.to_string()).or_default().push(tx);
        }
        rx
    }

    pub fn run_finished(&self, run_id: &str) {
        let waiters = self.finished.lock().ok().and_then(|mut m| m.remove(run_id));
        for w in waiters.into_iter().flatten() {
            let _ = w.send(());
        }
    }

    /// Drop waiters whose long-poll has timed out (their receivers are gone).
    pub fn prune_waiters(&self, run_id: &str) {
        if let Ok(mut m) = self.finished.lock()
            && let Some(list) = m.get_mut(run_id)
        {
            list.retain(|tx| !tx.is_closed());
            if list.is_empty() {
                m.remove(run_id);
            }
        }
    }

    /// The worker holds this while it executes a run.
    pub fn cancel_signal(&self, run_id: &str) -> watch::Receiver<bool> {
        let Ok(mut c) = self.cancels.lock() else {
            return watch::channel(false).1;
        };
        let early = c.early.remove(run_id);
        let (tx, rx) = watch::channel(early);
        c.signals.insert(run_id.to_string(), tx);
        rx
    }

    pub fn release_cancel_signal(&self, run_id: &str) {
        if let Ok(mut c) = self.cancels.lock() {
            c.signals.remove(run_id);
        }
    }

    pub fn cancel(&self, run_id: &str) {
        if let Ok(mut c) = self.cancels.lock() {
            match c.signals.get(run_id) {
                Some(tx) => {
                    let _ = tx.send(true);
                }
                None => {
                    c.early.insert(run_id.to_string());
                }
            }
        }
    }
}
