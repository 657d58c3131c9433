//! Prometheus metrics (`GET /metrics`): runs by status and queue depth (read
//! from the store at scrape time), step durations, trigger latency, and
//! rate-limit rejections, in the text exposition format.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    r#type: String,
    status: String,
}

fn latency_histogram() -> Histogram {
    // 100 µs … ~3 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    runs: Family<StatusLabel, Gauge>,
    queue_depth: Gauge,
    trigger_latency: Histogram,
    step_duration: Family<StepLabels, Histogram>,
    rate_limited: Counter,
    /// Outbound notification attempts by outcome (`delivered`, `retry`, `failed`).
    deliveries: Family<OutcomeLabel, Counter>,
    outbox_backlog: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("flowctl");
        let runs = Family::<StatusLabel, Gauge>::default();
        let queue_depth = Gauge::default();
        let trigger_latency = latency_histogram();
        let step_duration = Family::<StepLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let rate_limited = Counter::default();
        registry.register("runs", "Runs stored, by status", runs.clone());
        registry.register(
            "queue_depth",
            "Runs due and waiting for a worker",
            queue_depth.clone(),
        );
        registry.register(
            "trigger_latency_seconds",
            "Time to accept a trigger (validated and committed)",
            trigger_latency.clone(),
        );
        registry.register(
            "step_duration_seconds",
            "Step execution time, by step type and outcome",
            step_duration.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests rejected by a rate limit",
            rate_limited.clone(),
        );
        let deliveries = Family::<OutcomeLabel, Counter>::default();
        let outbox_backlog = Gauge::default();
        registry.register(
            "webhook_deliveries",
            "Outbound notification attempts, by outcome (delivered, retry, failed)",
            deliveries.clone(),
        );
        registry.register(
            "outbox_backlog",
            "Outbound notifications not yet delivered (pending deliveries)",
            outbox_backlog.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                runs,
                queue_depth,
                trigger_latency,
                step_duration,
                rate_limited,
                deliveries,
                outbox_backlog,
            }),
        }
    }

    pub fn observe_trigger(&self, secs: f64) {
        self.inner.trigger_latency.observe(secs);
    }

    pub fn observe_step(&self, step_type: &str, status: &str, secs: f64) {
        let labels = StepLabels {
            r#type: step_type.into(),
            status: status.into(),
        };
        self.inner
            .step_duration
            .get_or_create(&labels)
            .observe(secs);
    }

    pub fn rate_limited(&self) {
        self.inner.rate_limited.inc();
    }

    pub fn delivery_attempt(&self, outcome: &str) {
        self.inner
            .deliveries
            .get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Read from the store at scrape time, like the queue depth.
    pub fn set_outbox_backlog(&self, n: i64) {
        self.inner.outbox_backlog.set(n);
    }

    /// The exposition text, with the store's current counts.
    pub fn render(
        &self,
        runs_by_status: &[(crate::engine::RunStatus, i64)],
        queue_depth: i64,
    ) -> String {
        // A status with no runs any more reads 0, not its last count.
        for status in crate::engine::RunStatus::ALL {
            self.inner
                .runs
                .get_or_create(&StatusLabel {
                    status: status.to_string(),
                })
                .set(0);
        }
        for (status, n) in runs_by_status {
            self.inner
                .runs
                .get_or_create(&StatusLabel {
                    status: status.as_str().to_string(),
                })
                .set(*n);
        }
        self.inner.queue_depth.set(queue_depth);
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }
}
