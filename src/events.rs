//! In-process hints between the API and the worker: "a run was queued"
//! (wakes the dispatcher), "this run finished" (answers long-polls), and
//! "cancel this run" (aborts its step in flight at once). They only make
//! things prompt: cancel is recorded in the store (and reaches a run on
//! another node through its heartbeat and its next write), and the
//! dispatcher and long-polls poll as a backstop.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, oneshot, watch};

/// How long a cancel for a run not executing here is remembered, in case
/// this node claimed it and starts it soon. A run claimed here starts at
/// once (the dispatcher claims only what it can start), and the store's
/// flag stops it anyway at its first write; so the memory is a latency
/// hint and must not grow with cancels of runs executing on other nodes.
const EARLY_CANCEL_TTL: Duration = Duration::from_secs(60);

#[derive(Clone, Default)]
pub struct Events {
    queued: Arc<Notify>,
    finished: Arc<Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>>,
    cancels: Arc<Mutex<Cancels>>,
    /// Turns true when the server begins to shut down (ends long-polls).
    stopping: Arc<watch::Sender<bool>>,
    /// Counts changes to workflows (applied, paused, archived) made on
    /// other nodes sharing the store (the scheduler's index listens).
    workflows: Arc<watch::Sender<u64>>,
}

/// Cancel signals of runs being executed, and cancels that arrived for runs
/// claimed but not yet started (their worker starts with the signal set).
#[derive(Default)]
struct Cancels {
    signals: HashMap<String, watch::Sender<bool>>,
    /// When each early cancel arrived; forgotten after `EARLY_CANCEL_TTL`.
    early: HashMap<String, Instant>,
}

impl Events {
    /// The server is shutting down: long-polls answer with what they have.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves once `stop` was called (at once if it already was).
    pub async fn stopped(&self) {
        let mut rx = self.stopping.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    pub fn run_queued(&self) {
        self.queued.notify_one();
    }

    pub async fn wait_queued(&self) {
        self.queued.notified().await;
    }

    /// A workflow was applied, paused or archived on another node.
    pub fn workflows_changed(&self) {
        self.workflows.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Changes from `workflows_changed`, for a loop to wait on.
    pub fn workflow_changes(&self) -> watch::Receiver<u64> {
        self.workflows.subscribe()
    }

    /// Register before reading the run's status, so a finish in between is not missed.
    pub fn on_finished(&self, run_id: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.finished
            .lock()
            .entry(run_id.to_string())
            .or_default()
            .push(tx);
        rx
    }

    pub fn run_finished(&self, run_id: &str) {
        let waiters = self.finished.lock().remove(run_id);
        for w in waiters.into_iter().flatten() {
            let _ = w.send(());
        }
    }

    /// Drop waiters whose long-poll has timed out (their receivers are gone).
    pub fn prune_waiters(&self, run_id: &str) {
        let mut m = self.finished.lock();
        if let Some(list) = m.get_mut(run_id) {
            list.retain(|tx| !tx.is_closed());
            if list.is_empty() {
                m.remove(run_id);
            }
        }
    }

    /// The worker holds this while it executes a run.
    pub fn cancel_signal(&self, run_id: &str) -> watch::Receiver<bool> {
        let mut c = self.cancels.lock();
        let early = c
            .early
            .remove(run_id)
            .is_some_and(|at| at.elapsed() < EARLY_CANCEL_TTL);
        let (tx, rx) = watch::channel(early);
        c.signals.insert(run_id.to_string(), tx);
        rx
    }

    pub fn release_cancel_signal(&self, run_id: &str) {
        self.cancels.lock().signals.remove(run_id);
    }

    /// A cancel from another node: only a run executing here is signalled
    /// (runs elsewhere are not remembered).
    pub fn cancel_if_running(&self, run_id: &str) {
        if let Some(tx) = self.cancels.lock().signals.get(run_id) {
            let _ = tx.send(true);
        }
    }

    /// A cancel recorded through this node: a run executing here stops its
    /// step at once; for any other run the cancel is remembered for a while,
    /// in case this node claimed it and is about to start it.
    pub fn cancel(&self, run_id: &str) {
        self.cancel_at(run_id, Instant::now());
    }

    fn cancel_at(&self, run_id: &str, now: Instant) {
        let mut c = self.cancels.lock();
        if let Some(tx) = c.signals.get(run_id) {
            let _ = tx.send(true);
            return;
        }
        c.early
            .retain(|_, at| now.saturating_duration_since(*at) < EARLY_CANCEL_TTL);
        c.early.insert(run_id.to_string(), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_cancels_of_runs_executing_elsewhere_are_forgotten() {
        let events = Events::default();
        let t0 = Instant::now();
        for i in 0..1000 {
            events.cancel_at(&format!("run_elsewhere_{i}"), t0);
        }
        assert_eq!(events.cancels.lock().early.len(), 1000);
        // Cancels keep arriving later: the old ones do not pile up.
        events.cancel_at("run_later", t0 + EARLY_CANCEL_TTL + Duration::from_secs(1));
        assert_eq!(events.cancels.lock().early.len(), 1);
    }

    #[test]
    fn an_early_cancel_reaches_a_run_this_node_starts_soon_after() {
        let events = Events::default();
        events.cancel("run_a");
        assert!(*events.cancel_signal("run_a").borrow());
        assert!(!*events.cancel_signal("run_b").borrow());
        // A run executing here is signalled, not remembered.
        let rx = events.cancel_signal("run_c");
        events.cancel("run_c");
        assert!(*rx.borrow());
        assert!(!events.cancels.lock().early.contains_key("run_c"));
    }
}
