//! The I/O shell around the engine: claims due runs (woken by a notification,
//! with a slow poll as a backstop), executes up to N at once, persists every
//! step's outcome, and on shutdown lets runs in flight finish within a grace.

mod execute;
mod steps;

use crate::actions::Actions;
use crate::catalog::Catalog;
use crate::events::Events;
use crate::metrics::Metrics;
use crate::secrets::SecretBox;
use crate::store::RunRow;
use crate::store::Store;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

/// Claims carry a lease; with one process owning the data dir it is only a
/// marker, and start-up recovery re-queues whatever was held.
const LEASE_MS: i64 = 5 * 60 * 1000;
const BACKSTOP_POLL: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Worker {
    pub(crate) store: Store,
    pub(crate) catalog: Catalog,
    pub(crate) events: Events,
    pub(crate) actions: Actions,
    pub(crate) secrets: SecretBox,
    pub(crate) metrics: Metrics,
    workers: usize,
}

impl Worker {
    pub fn new(
        store: Store,
        catalog: Catalog,
        events: Events,
        secrets: SecretBox,
        metrics: Metrics,
        workers: usize,
    ) -> Worker {
        Worker {
            store,
            catalog,
            events,
            actions: Actions::new(),
            secrets,
            metrics,
            workers: workers.max(1),
        }
    }

    /// Dispatch until `stop` turns true, then wait up to `grace` for runs in flight.
    ///
    /// Claims are prefetched in batches (one write for many runs) into a small
    /// local buffer that worker permits drain in FIFO order; a run claimed but
    /// not yet started when the process dies is re-queued at the next start.
    pub async fn run(self, mut stop: watch::Receiver<bool>, grace: Duration) {
        let permits = Arc::new(Semaphore::new(self.workers));
        let mut buffer: VecDeque<RunRow> = VecDeque::with_capacity(self.workers);
        loop {
            if *stop.borrow() {
                break;
            }
            if buffer.len() <= self.workers / 2 {
                let want = self.workers - buffer.len();
                match self
                    .store
                    .claim_runs(want, crate::time::now_ms(), LEASE_MS)
                    .await
                {
                    Ok(claimed) => buffer.extend(claimed),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot claim runs");
                        tokio::time::sleep(BACKSTOP_POLL).await;
                        continue;
                    }
                }
            }
            if buffer.is_empty() {
                let sleep = self.idle_sleep().await;
                tokio::select! {
                    _ = self.events.wait_queued() => {}
                    _ = tokio::time::sleep(sleep) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => p,
                _ = stop.changed() => continue,
            };
            let (Ok(permit), Some(run)) = (permit, buffer.pop_front()) else {
                break;
            };
            let worker = self.clone();
            tokio::spawn(async move {
                worker.execute(run).await;
                drop(permit);
            });
        }
        if !buffer.is_empty()
            && let Err(e) = self
                .store
                .unclaim(buffer.iter().map(|r| r.seq).collect())
                .await
        {
            tracing::warn!(error = %e, "claimed runs not started stay claimed until the next start");
        }
        // Let steps in flight finish; what is left resumes on the next start.
        let all = self.workers as u32;
        if tokio::time::timeout(grace, permits.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!(
                "shutdown grace elapsed with runs in flight; they resume on the next start"
            );
        }
    }

    /// Sleep until the next parked run is due, at most the backstop poll.
    async fn idle_sleep(&self) -> Duration {
        match self.store.next_due().await {
            Ok(Some(at)) => {
                let wait = at - crate::time::now_ms();
                Duration::from_millis(wait.clamp(0, BACKSTOP_POLL.as_millis() as i64) as u64)
            }
            _ => BACKSTOP_POLL,
        }
    }
}
