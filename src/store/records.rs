//! The records that cross the store's ports. Plain data: no SQL, no I/O.

pub use crate::engine::StepRecord;
use crate::engine::{RunError, RunStatus};
use serde_json::Value;

/// How a run came to be; every trigger path passes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TriggerType {
    #[default]
    Api,
    Schedule,
    Webhook,
    Replay,
    Batch,
    /// A child run started by a `workflow` step.
    Workflow,
}

impl TriggerType {
    pub const ALL: [&'static str; 6] =
        ["api", "schedule", "webhook", "replay", "batch", "workflow"];

    pub fn parse(s: &str) -> Option<TriggerType> {
        Some(match s {
            "api" => TriggerType::Api,
            "schedule" => TriggerType::Schedule,
            "webhook" => TriggerType::Webhook,
            "replay" => TriggerType::Replay,
            "batch" => TriggerType::Batch,
            "workflow" => TriggerType::Workflow,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TriggerType::Api => "api",
            TriggerType::Schedule => "schedule",
            TriggerType::Webhook => "webhook",
            TriggerType::Replay => "replay",
            TriggerType::Batch => "batch",
            TriggerType::Workflow => "workflow",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewRun {
    pub id: String,
    pub workflow_id: String,
    pub workflow_version: i64,
    pub input: Value,
    pub idempotency_key: Option<String>,
    pub connection_id: Option<String>,
    pub trigger_type: TriggerType,
    /// How long the idempotency key is remembered.
    pub idempotency_ttl_ms: i64,
    /// A schedule's occurrence (ms): recorded in the same transaction, once.
    pub scheduled_at: Option<i64>,
    /// No worker starts the run sooner than this after its creation (jitter).
    pub delay_ms: i64,
}

impl NewRun {
    /// The record of this run once inserted: pending, no steps yet.
    pub fn into_pending(self, seq: i64, created_at: i64) -> RunRow {
        RunRow {
            seq,
            id: self.id,
            workflow_id: self.workflow_id,
            workflow_version: self.workflow_version,
            status: RunStatus::Pending,
            input: self.input,
            output: Value::Null,
            error: None,
            idempotency_key: self.idempotency_key,
            connection_id: self.connection_id,
            created_at,
            started_at: None,
            completed_at: None,
            cancel_requested: false,
            trigger_type: self.trigger_type,
            steps: vec![],
            family: Family::default(),
            recoveries: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub enum TriggerOutcome {
    Created(RunRow),
    Replayed(RunRow),
}

#[derive(Debug, Clone)]
pub struct RunRow {
    pub seq: i64,
    pub id: String,
    pub workflow_id: String,
    pub workflow_version: i64,
    pub status: RunStatus,
    pub input: Value,
    pub output: Value,
    pub error: Option<RunError>,
    pub idempotency_key: Option<String>,
    pub connection_id: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub cancel_requested: bool,
    pub trigger_type: TriggerType,
    pub steps: Vec<StepRecord>,
    /// Set by a claim: how often the run was taken back from a holder that abandoned its
    /// lease (0 elsewhere).
    pub recoveries: u32,
    /// Where the run sits in a tree of child runs.
    pub family: Family,
}

/// A run's place among child runs: empty for a run started from outside.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Family {
    pub parent_run_id: Option<String>,
    pub parent_step_id: Option<String>,
    pub root_run_id: Option<String>,
    pub depth: i64,
    pub key: Option<String>,
    /// A parent's deadline this run may not outlive (ms).
    pub deadline_at: Option<i64>,
    /// Its children by status (filled when one run is read).
    pub children: Option<ChildCounts>,
    /// How often the run was redriven.
    pub redrive_count: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChildCounts {
    pub total: i64,
    pub completed: i64,
    pub failed: i64,
    pub running: i64,
}

/// A child run to create in the same commit as its parent's new state.
#[derive(Debug, Clone)]
pub struct ChildSpawn {
    pub id: String,
    pub workflow_id: String,
    pub workflow_version: i64,
    pub input: Value,
    pub connection_id: Option<String>,
    pub parent_step_id: String,
    pub key: String,
    pub root_run_id: String,
    pub depth: i64,
    /// The parent waits: the child's finish is recorded on the parent's step
    /// and queues the parent again.
    pub wait: bool,
    pub deadline_at: Option<i64>,
    /// `Workflow` for a `workflow` step's child (listed among runs); a
    /// block's children take another type and are hidden from the default
    /// run list (`decisions::listed_by_default`).
    pub trigger_type: TriggerType,
}

impl RunRow {
    pub fn is_finished(&self) -> bool {
        self.status.is_terminal()
    }
}

#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub workflow_id: Option<String>,
    pub status: Option<RunStatus>,
    pub trigger_type: Option<TriggerType>,
    pub before_seq: Option<i64>,
    pub limit: usize,
    /// Only the children of this run.
    pub parent_run_id: Option<String>,
    /// Also the children hidden by default (`decisions::listed_by_default`).
    pub include_children: bool,
}

#[derive(Debug, Clone)]
pub struct WorkflowRow {
    pub id: String,
    pub name: String,
    pub status: crate::workflow::WorkflowStatus,
    pub latest_version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One definition to store (a new version only when it differs).
#[derive(Debug, Clone)]
pub struct WorkflowApply {
    pub id: String,
    pub name: String,
    pub definition: Value,
    pub status: Option<crate::workflow::WorkflowStatus>,
    /// The definition's `concurrency` cap, enforced by `RunQueue::claim`.
    pub concurrency: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApplyOutcome {
    pub version: i64,
    pub status: crate::workflow::WorkflowStatus,
    pub result: super::decisions::ApplyResult,
}

#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: String,
    pub name: String,
    pub key_hash: String,
    pub scopes: Vec<String>,
}

/// Whether runs may use a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStatus {
    Active,
    Inactive,
}

impl ConnectionStatus {
    pub const ALL: [&'static str; 2] = ["active", "inactive"];

    pub fn parse(s: &str) -> Option<ConnectionStatus> {
        match s {
            "active" => Some(ConnectionStatus::Active),
            "inactive" => Some(ConnectionStatus::Inactive),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Active => "active",
            ConnectionStatus::Inactive => "inactive",
        }
    }
}

/// What a connection connects to; which actions and triggers may use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionProvider {
    Stripe,
    Smtp,
    Http,
    Webhook,
}

impl ConnectionProvider {
    pub const ALL: [ConnectionProvider; 4] = [
        ConnectionProvider::Stripe,
        ConnectionProvider::Smtp,
        ConnectionProvider::Http,
        ConnectionProvider::Webhook,
    ];

    pub fn parse(s: &str) -> Option<ConnectionProvider> {
        ConnectionProvider::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            ConnectionProvider::Stripe => "stripe",
            ConnectionProvider::Smtp => "smtp",
            ConnectionProvider::Http => "http",
            ConnectionProvider::Webhook => "webhook",
        }
    }

    /// Every provider's name, for messages.
    pub fn names() -> Vec<&'static str> {
        ConnectionProvider::ALL.iter().map(|p| p.as_str()).collect()
    }
}

impl std::fmt::Display for ConnectionProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct ConnectionRow {
    pub id: String,
    pub provider: ConnectionProvider,
    pub name: String,
    pub status: ConnectionStatus,
    pub is_default: bool,
    pub config: Value,
    pub secret: Option<Vec<u8>>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ConnectionRow {
    /// What connection resolution (connection resolution rules) needs to know of this row.
    pub fn as_ref(&self) -> crate::engine::ConnectionRef<'_> {
        crate::engine::ConnectionRef {
            id: &self.id,
            provider: self.provider,
            active: self.status == ConnectionStatus::Active,
            is_default: self.is_default,
        }
    }
}

/// What a create/update writes; `secret: None` keeps a stored secret.
#[derive(Debug, Clone)]
pub struct ConnectionWrite {
    pub id: String,
    pub provider: ConnectionProvider,
    pub name: String,
    pub status: ConnectionStatus,
    pub is_default: bool,
    pub config: Value,
    pub secret: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct ScheduleRow {
    pub workflow_id: String,
    /// The workflow version whose trigger `next_at` was computed from.
    pub version: i64,
    pub next_at: i64,
}

/// What overlap rules need to know about a schedule's earlier runs.
#[derive(Debug, Clone, Default)]
pub struct ScheduleState {
    /// A run this schedule started is pending or running.
    pub in_flight: bool,
    /// An occurrence waiting for that run (overlap `queue`).
    pub queued: Option<i64>,
}

/// A dashboard session as found by its hash, with its key's current scopes.
#[derive(Debug, Clone)]
pub struct UiSession {
    pub key_id: String,
    pub key_name: String,
    pub scopes: Vec<String>,
    pub csrf_token: String,
}

/// What the run list shows of a run (no input or output: they can be large).
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub seq: i64,
    pub id: String,
    pub workflow_id: String,
    pub workflow_version: i64,
    pub status: String,
    pub trigger_type: Option<String>,
    pub error: Value,
    pub idempotency_key: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
}

/// Filters of the run list; every one is optional. `q` is a run id or an
/// idempotency key.
#[derive(Debug, Clone, Default)]
pub struct RunSearch {
    pub status: Option<String>,
    pub workflow_id: Option<String>,
    pub trigger_type: Option<String>,
    pub q: Option<String>,
    pub before_seq: Option<i64>,
    pub limit: usize,
    /// How long to keep searching for matches no index finds in order.
    pub budget: std::time::Duration,
}

/// One page of the run list. `resume_before` is set when the time budget
/// ran out before the page was full: older matches may exist before that `seq`.
#[derive(Debug, Clone, Default)]
pub struct RunPage {
    pub runs: Vec<RunSummary>,
    pub resume_before: Option<i64>,
}

/// The overview's figures for the hour up to `now`.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    pub since: i64,
    /// (minute index 0..60, status, runs finished in that minute)
    pub per_minute: Vec<(i64, String, i64)>,
    /// Runs not finished yet, by status (pending, running).
    pub in_flight: Vec<(String, i64)>,
    pub queue_depth: i64,
    pub p50_ms: Option<i64>,
    pub p99_ms: Option<i64>,
}

/// Whether a stored definition (its JSON text) says the same as a new one.
/// Definitions keep the author's key order (so a transform's output keeps the
/// order of its mapping), and that order is not content: two files that differ
/// only in key order are one version. `serde_json::Map` equality ignores order.
pub fn same_definition(stored: &str, new: &Value) -> bool {
    serde_json::from_str::<Value>(stored).is_ok_and(|old| &old == new)
}
