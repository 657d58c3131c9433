//! The node's claims and their leases: one heartbeat per node renews every
//! claim it holds (running or waiting for a worker), tells runs whose lease
//! was lost to stop, and forwards cancels recorded in the store; a sweep
//! puts runs whose lease expired anywhere back in the queue, so a run whose
//! holder died, hung or could not write resumes without a restart.

use crate::events::Events;
use crate::store::{Claim, ClaimRef, RunQueue};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// Lease timing (defaults: a 30 s lease renewed every 10 s).
#[derive(Debug, Clone, Copy)]
pub struct LeaseSettings {
    pub lease_ms: i64,
    pub heartbeat: Duration,
    pub sweep: Duration,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        LeaseSettings::from_lease_ms(30_000)
    }
}

impl LeaseSettings {
    pub fn from_lease_ms(lease_ms: i64) -> LeaseSettings {
        let lease_ms = lease_ms.max(300);
        LeaseSettings {
            lease_ms,
            heartbeat: Duration::from_millis((lease_ms / 3) as u64),
            sweep: Duration::from_millis((lease_ms / 3).min(1000) as u64),
        }
    }
}

/// One claim held by this node.
pub(crate) struct Held {
    pub run_id: String,
    pub key: ClaimRef,
    /// The lease deadline as last confirmed by the store.
    pub lease_until: AtomicI64,
    /// Turns true when the store says this node no longer holds the run.
    pub lost: watch::Sender<bool>,
}

/// The node's claims by run `seq`. The lock cannot be poisoned: a panic
/// elsewhere must not empty the heartbeat's list (every lease would lapse).
#[derive(Clone, Default)]
pub(crate) struct Claims {
    held: Arc<Mutex<HashMap<i64, Arc<Held>>>>,
}

impl Claims {
    pub fn hold(&self, claim: &Claim) -> Arc<Held> {
        let held = Arc::new(Held {
            run_id: claim.run.id.clone(),
            key: claim.key(),
            lease_until: AtomicI64::new(claim.lease_until),
            lost: watch::channel(false).0,
        });
        self.held.lock().insert(claim.run.seq, held.clone());
        held
    }

    pub fn drop_claim(&self, seq: i64) {
        self.held.lock().remove(&seq);
    }

    pub(crate) fn snapshot(&self) -> Vec<Arc<Held>> {
        self.held.lock().values().cloned().collect()
    }
}

/// Renew leases and sweep expired ones until `stop`.
pub(crate) async fn keep_leases(
    store: Arc<dyn RunQueue>,
    events: Events,
    claims: Claims,
    owner: String,
    settings: LeaseSettings,
    mut stop: watch::Receiver<bool>,
) {
    let mut beat = tokio::time::interval(settings.heartbeat);
    let mut sweep = tokio::time::interval(settings.sweep);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = beat.tick() => heartbeat(&store, &events, &claims, &owner, settings).await,
            _ = sweep.tick() => match store.sweep_expired().await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::warn!(runs = n, "leases expired; the runs are queued again");
                    events.run_queued();
                }
                Err(e) => tracing::debug!(error = %e, "lease sweep failed; retrying"),
            },
            r = stop.changed() => if r.is_err() || *stop.borrow() {
                return;
            },
        }
    }
}

async fn heartbeat(
    store: &Arc<dyn RunQueue>,
    events: &Events,
    claims: &Claims,
    owner: &str,
    settings: LeaseSettings,
) {
    let held = claims.snapshot();
    if held.is_empty() {
        return;
    }
    let keys: Vec<ClaimRef> = held.iter().map(|h| h.key).collect();
    let report = match store.heartbeat(owner, keys, settings.lease_ms).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot renew leases; runs stop writing when theirs run out");
            return;
        }
    };
    for h in &held {
        if report.lost.contains(&h.key) {
            let _ = h.lost.send(true);
            claims.drop_claim(h.key.seq);
        } else {
            h.lease_until.store(report.lease_until, Ordering::Relaxed);
            if report.cancelled.contains(&h.key) {
                events.cancel(&h.run_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewRun, TriggerType};

    fn claim(seq: i64) -> Claim {
        let new = NewRun {
            id: format!("run_{seq}"),
            workflow_id: "wf_a".into(),
            workflow_version: 1,
            input: serde_json::json!({}),
            idempotency_key: None,
            connection_id: None,
            trigger_type: TriggerType::Api,
            idempotency_ttl_ms: 0,
            scheduled_at: None,
            delay_ms: 0,
        };
        Claim {
            run: new.into_pending(seq, 0),
            token: 1,
            lease_until: 0,
        }
    }

    #[test]
    fn a_panic_while_the_claims_are_locked_does_not_stop_the_heartbeat() {
        let claims = Claims::default();
        claims.hold(&claim(1));
        let shared = claims.clone();
        let panicked = std::thread::spawn(move || {
            let _guard = shared.held.lock();
            panic!("a bug while holding the lock");
        })
        .join();
        assert!(panicked.is_err());
        // The heartbeat still sees (and so renews) the claim.
        assert_eq!(claims.snapshot().len(), 1);
        claims.hold(&claim(2));
        claims.drop_claim(1);
        assert_eq!(
            claims
                .snapshot()
                .iter()
                .map(|h| h.key.seq)
                .collect::<Vec<_>>(),
            vec![2]
        );
    }
}
