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
}

impl TriggerType {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerType::Api => "api",
            TriggerType::Schedule => "schedule",
            TriggerType::Webhook => "webhook",
            TriggerType::Replay => "replay",
            TriggerType::Batch => "batch",
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
    pub steps: Vec<StepRecord>,
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
    pub before_seq: Option<i64>,
    pub limit: usize,
}

#[derive(Debug, Clone)]
pub struct WorkflowRow {
    pub id: String,
    pub name: String,
    pub status: String,
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
    pub status: Option<&'static str>,
    /// The definition's `concurrency` cap, enforced by `RunQueue::claim`.
    pub concurrency: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApplyOutcome {
    pub version: i64,
    pub status: String,
    /// `created`, `updated` or `unchanged`
    pub result: &'static str,
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

#[derive(Debug, Clone)]
pub struct ConnectionRow {
    pub id: String,
    pub provider: String,
    pub name: String,
    pub status: String,
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
            provider: &self.provider,
            active: self.status == "active",
            is_default: self.is_default,
        }
    }
}

/// What a create/update writes; `secret: None` keeps a stored secret.
#[derive(Debug, Clone)]
pub struct ConnectionWrite {
    pub id: String,
    pub provider: String,
    pub name: String,
    pub status: String,
    pub is_default: bool,
    pub config: Value,
    pub secret: Option<Vec<u8>>,
}
