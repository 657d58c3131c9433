//! The delivery worker: claims due deliveries under a lease (any node
//! delivers, none twice at once; a node that dies leaves its claims to
//! expire), POSTs each signed as Standard Webhooks (`webhook-id` is the
//! event id, the same on every attempt and redelivery), and records the
//! attempt with what `notify::after_attempt` decided. Depends on the store's
//! ports, the secret box and reqwest.

use super::{EndpointNext, Next, Policy};
use crate::metrics::Metrics;
use crate::secrets::SecretBox;
use crate::store::{AttemptRow, AttemptWrite, DeliveryClaim, Store};
use crate::workflow::trigger::WebhookProvider;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};

/// At most this long per attempt (and shorter under a short lease, so an
/// attempt always ends before its lease could pass to another node).
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// Bytes of an answer kept with the attempt.
const KEEP_BYTES: usize = 1024;
/// Deliveries in flight per node.
const IN_FLIGHT: usize = 32;
const IDLE_POLL: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct Deliverer {
    store: Store,
    secrets: SecretBox,
    metrics: Metrics,
    policy: Policy,
    owner: String,
    lease_ms: i64,
    client: reqwest::Client,
    /// Attempts done, on their way to the store (`record_loop` writes them in batches).
    recorder: Option<tokio::sync::mpsc::UnboundedSender<AttemptWrite>>,
}

impl Deliverer {
    pub fn new(store: Store, secrets: SecretBox, metrics: Metrics, policy: Policy) -> Deliverer {
        // Hidden knobs for tests: a short lease to see another node take over.
        let lease_ms = std::env::var("FLOWCTL_DELIVERY_LEASE_MS")
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|ms| *ms >= 200)
            .unwrap_or(60_000);
        let timeout = TIMEOUT.min(Duration::from_millis((lease_ms / 2) as u64));
        let client = reqwest::Client::builder()
            .user_agent(concat!("flowctl/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .expect("the HTTP client configuration is static and valid");
        Deliverer {
            store,
            secrets,
            metrics,
            policy,
            owner: format!("node_{}", crate::ids::run_id().trim_start_matches("run_")),
            lease_ms,
            client,
            recorder: None,
        }
    }

    /// Deliver until `stop`; attempts in flight are left to finish or to their lease.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.recorder = Some(tx);
        tokio::spawn(record_loop(self.store.clone(), rx));
        tracing::info!(owner = %self.owner, "delivering outbound notifications");
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        loop {
            if *stop.borrow() {
                return;
            }
            let free = slots.available_permits();
            let claimed = if free == 0 {
                vec![]
            } else {
                match self
                    .store
                    .claim_deliveries(self.owner.clone(), free, self.lease_ms)
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot claim deliveries; retrying");
                        vec![]
                    }
                }
            };
            let idle = claimed.is_empty();
            for claim in claimed {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let me = self.clone();
                tokio::spawn(async move {
                    me.attempt(claim).await;
                    drop(permit);
                });
            }
            if idle {
                let wait = match self.store.next_delivery_due().await {
                    Ok(Some(at)) => {
                        let ms =
                            (at - crate::time::now_ms()).clamp(0, IDLE_POLL.as_millis() as i64);
                        Duration::from_millis(ms as u64)
                    }
                    _ => IDLE_POLL,
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait.max(Duration::from_millis(20))) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    async fn attempt(&self, claim: DeliveryClaim) {
        let d = &claim.delivery;
        let secret = match self.secrets.decrypt(&claim.secret) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(endpoint = %d.endpoint_id, error = %e, "cannot open an endpoint's secret");
                return;
            }
        };
        let data = self.data(&claim).await;
        let body =
            super::payload(&d.event_id, &d.event_type, d.occurred_at, d.sequence, data).to_string();
        let now = crate::time::now_ms();
        let headers = match crate::webhook::sign(
            WebhookProvider::Standard,
            &secret,
            body.as_bytes(),
            now / 1000,
            None,
            &d.event_id,
        ) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(endpoint = %d.endpoint_id, error = %e, "cannot sign a delivery");
                return;
            }
        };
        let mut req = self
            .client
            .post(&claim.url)
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let started = Instant::now();
        let (status_code, response, error) = match req.body(body).send().await {
            Ok(resp) => {
                let code = resp.status().as_u16();
                let text = first_bytes(resp).await;
                (Some(code), Some(text), None)
            }
            Err(e) => (None, None, Some(describe(&e))),
        };
        let at = crate::time::now_ms();
        let ok = super::delivered(status_code);
        let attempt_no = u32::try_from(d.attempts + 1).unwrap_or(u32::MAX);
        let (next, endpoint) =
            super::after_attempt(&self.policy, attempt_no, ok, at, claim.failing_since);
        self.metrics.delivery_attempt(match next {
            Next::Delivered => "delivered",
            Next::RetryAt(_) => "retry",
            Next::Failed => "failed",
        });
        if endpoint == EndpointNext::Disable {
            tracing::warn!(endpoint = %d.endpoint_id, url = %claim.url, "endpoint failing for too long; disabled");
        }
        let write = AttemptWrite {
            seq: d.seq,
            token: claim.token,
            endpoint_id: d.endpoint_id.clone(),
            attempt: AttemptRow {
                at,
                status_code: status_code.map(i64::from),
                duration_ms: started.elapsed().as_millis() as i64,
                response,
                error,
            },
            next,
            endpoint,
        };
        if let Some(r) = &self.recorder {
            let _ = r.send(write);
        }
    }

    /// A run event's data: the run's view without steps, with the state the
    /// event froze; a purged run leaves the frozen state alone.
    async fn data(&self, claim: &DeliveryClaim) -> serde_json::Value {
        let d = &claim.delivery;
        let Some(run_id) = &d.run_id else {
            return claim.data.clone();
        };
        match self.store.get_run(run_id.clone()).await {
            Ok(run) => {
                let view = crate::http::views::run_view(run, None, false);
                let view = serde_json::to_value(view).unwrap_or_default();
                super::run_data(view, &claim.data)
            }
            Err(_) => {
                let mut data = claim.data.clone();
                if let serde_json::Value::Object(m) = &mut data {
                    m.insert("id".into(), run_id.clone().into());
                }
                data
            }
        }
    }
}

/// Writes finished attempts, every one waiting at that moment in one
/// transaction (the delivery worker's writes then cost the store's single
/// writer one job per batch, not one per delivery). A storage failure loses
/// nothing: the leases run out and the events are attempted again.
async fn record_loop(store: Store, mut rx: tokio::sync::mpsc::UnboundedReceiver<AttemptWrite>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        match store.record_attempts(batch).await {
            Ok(saved) => {
                let lost = saved.iter().filter(|s| !**s).count();
                if lost > 0 {
                    tracing::info!(
                        lost,
                        "delivery leases lost before their attempts were recorded"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot record delivery attempts"),
        }
    }
}

async fn first_bytes(mut resp: reqwest::Response) -> String {
    let mut kept: Vec<u8> = Vec::new();
    while kept.len() < KEEP_BYTES {
        match resp.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            _ => break,
        }
    }
    kept.truncate(KEEP_BYTES);
    String::from_utf8_lossy(&kept).into_owned()
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        format!("cannot connect: {e}")
    } else {
        e.to_string()
    }
}

/// The retry delays: `FLOWCTL_ENDPOINT_RETRY_MS` (comma-separated
/// milliseconds; tests use it instead of waiting minutes), else Svix's schedule.
pub fn retry_delays_from_env() -> Vec<i64> {
    std::env::var("FLOWCTL_ENDPOINT_RETRY_MS")
        .ok()
        .and_then(|v| {
            v.split(',')
                .map(|p| p.trim().parse::<i64>().ok().filter(|ms| *ms >= 0))
                .collect::<Option<Vec<_>>>()
        })
        .unwrap_or_else(|| super::RETRY_DELAYS_MS.to_vec())
}
