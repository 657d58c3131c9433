//! The I/O shell around the engine: claims due runs under a lease (woken by
//! a notification, with a slow poll as a backstop), interprets up to N at
//! once (`execute.rs`), keeps the leases alive and sweeps expired ones
//! (`lease.rs`), and on shutdown lets runs in flight finish within a grace.
//! Depends on the store's ports, the engine and the actions.

mod execute;
mod lease;
mod scopes;
mod steps;
#[cfg(test)]
mod tests;
mod waits;

pub use lease::LeaseSettings;

use crate::actions::Actions;
use crate::catalog::Catalog;
use crate::events::Events;
use crate::metrics::Metrics;
use crate::secrets::SecretBox;
use crate::store::{Claim, Connections, RunQueue, Store};
use lease::Claims;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

const BACKSTOP_POLL: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Worker {
    /// The queue port only: the worker never sees dashboard or registry queries.
    pub(crate) store: Arc<dyn RunQueue>,
    pub(crate) connections: Arc<dyn Connections>,
    pub(crate) catalog: Catalog,
    pub(crate) events: Events,
    pub(crate) actions: Actions,
    pub(crate) secrets: SecretBox,
    pub(crate) metrics: Metrics,
    workers: usize,
    /// This node's name on its leases.
    owner: String,
    lease: LeaseSettings,
    claims: Claims,
    /// Value budget and poison-pill count for the runs this worker executes.
    pub(crate) limits: crate::limits::RunLimits,
    /// What blocks' bodies see of their parent runs.
    pub(crate) scopes: scopes::Scopes,
    /// The base of the callback URLs runs hand out (`--public-url`).
    pub(crate) public_url: String,
}

impl Worker {
    pub fn new(
        store: Store,
        catalog: Catalog,
        events: Events,
        secrets: SecretBox,
        metrics: Metrics,
        workers: usize,
        lease: LeaseSettings,
    ) -> Worker {
        Worker {
            connections: store.connections(),
            store: store.run_queue(),
            catalog,
            events,
            actions: Actions::new(),
            secrets,
            metrics,
            workers: workers.max(1),
            owner: format!("node_{}", crate::ids::run_id().trim_start_matches("run_")),
            lease,
            claims: Claims::default(),
            limits: crate::limits::RunLimits::default(),
            scopes: Default::default(),
            public_url: "http://localhost:3000".into(),
        }
    }

    /// The address callback URLs start with (`--public-url`).
    pub fn with_public_url(mut self, url: String) -> Worker {
        self.public_url = url;
        self
    }

    /// The server's limits for the runs this worker executes.
    pub fn with_limits(mut self, limits: crate::limits::RunLimits) -> Worker {
        self.limits = limits;
        self
    }

    /// The same worker writing through another queue port (tests: a
    /// stand-in that counts or refuses what the store would accept).
    #[cfg(test)]
    pub(crate) fn with_queue(mut self, queue: Arc<dyn RunQueue>) -> Worker {
        self.store = queue;
        self
    }

    /// Dispatch until `stop` turns true, then wait up to `grace` for runs in flight.
    ///
    /// A node claims only what it can start at once: it waits for a free
    /// worker first, then claims (in one write) as many runs as it has free
    /// workers. Claimed runs never wait here behind busy workers while their
    /// leases keep other nodes from them.
    pub async fn run(self, mut stop: watch::Receiver<bool>, grace: Duration) {
        // Leases are kept until the grace period is over, not just until stop.
        let (leases_stop, leases_stopped) = watch::channel(false);
        let leases = tokio::spawn(lease::keep_leases(
            self.store.clone(),
            self.events.clone(),
            self.claims.clone(),
            self.owner.clone(),
            self.lease,
            leases_stopped,
        ));
        let permits = Arc::new(Semaphore::new(self.workers));
        let mut buffer: VecDeque<(Claim, Arc<lease::Held>)> = VecDeque::with_capacity(self.workers);
        loop {
            if *stop.borrow() {
                break;
            }
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => p,
                _ = stop.changed() => continue,
            };
            let Ok(permit) = permit else {
                break;
            };
            if buffer.is_empty() {
                // The permit in hand plus every other free one.
                let want = permits.available_permits() + 1;
                match self
                    .store
                    .claim(&self.owner, want, self.lease.lease_ms)
                    .await
                {
                    Ok(claimed) => {
                        buffer.extend(claimed.into_iter().map(|c| {
                            let held = self.claims.hold(&c);
                            (c, held)
                        }));
                    }
                    Err(e) => {
                        drop(permit);
                        tracing::error!(error = %e, "cannot claim runs");
                        tokio::select! {
                            _ = tokio::time::sleep(BACKSTOP_POLL) => {}
                            _ = stop.changed() => {}
                        }
                        continue;
                    }
                }
            }
            let Some((claim, held)) = buffer.pop_front() else {
                drop(permit);
                let sleep = self.idle_sleep().await;
                tokio::select! {
                    _ = self.events.wait_queued() => {}
                    _ = tokio::time::sleep(sleep) => {}
                    _ = stop.changed() => {}
                }
                continue;
            };
            let worker = self.clone();
            tokio::spawn(async move {
                worker.execute(claim, held).await;
                drop(permit);
            });
        }
        if !buffer.is_empty() {
            let keys = buffer.iter().map(|(c, _)| c.key()).collect();
            for (c, _) in &buffer {
                self.claims.drop_claim(c.run.seq);
            }
            if let Err(e) = self.store.release(keys).await {
                tracing::warn!(error = %e, "claimed runs not started stay claimed until their lease expires");
            }
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
            // Given back, so a clean stop never counts as an abandoned lease (the
            // poison-pill count); the new tokens fence any late commit of theirs.
            let keys: Vec<_> = self.claims.snapshot().iter().map(|h| h.key).collect();
            if let Err(e) = self.store.release(keys).await {
                tracing::warn!(error = %e, "runs in flight stay claimed until their lease expires");
            }
        }
        let _ = leases_stop.send(true);
        let _ = leases.await;
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
