//! The store's ports: what the worker, the handlers and the catalog may ask
//! of durable storage. The traits are `#[async_trait]` (their futures are
//! boxed), so an implementation may be a local thread (SQLite) or a network
//! pool (PostgreSQL) behind the same `dyn` object; each store implements
//! them directly. Time decisions that must agree
//! across nodes (lease deadlines, due times) are taken by the store's clock,
//! never by the caller's.

use super::records::*;
use super::{Result, StoreError};
use crate::engine::{RunError, RunStatus, StepRecord};
use async_trait::async_trait;
use serde_json::Value;

/// A run held by one worker: the fencing token must accompany every write.
#[derive(Debug, Clone)]
pub struct Claim {
    pub run: RunRow,
    /// Grows on every claim and every lease expiry, so a stale holder's
    /// writes match nothing.
    pub token: i64,
    /// The lease deadline by the store's clock (ms since epoch).
    pub lease_until: i64,
}

/// A claim as the heartbeat and commits name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimRef {
    pub seq: i64,
    pub token: i64,
}

impl Claim {
    pub fn key(&self) -> ClaimRef {
        ClaimRef {
            seq: self.run.seq,
            token: self.token,
        }
    }
}

/// The new state of a claimed run, as `engine::advance` left it.
#[derive(Debug, Clone)]
pub struct RunWrite {
    pub status: RunStatus,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub output: Value,
    pub error: Option<RunError>,
    /// Back in the queue, due at this time, holding no worker (a `wait`
    /// step or a pending retry). The lease ends with this write.
    pub park_until: Option<i64>,
    /// Only the step records that changed.
    pub steps: Vec<StepRecord>,
    /// A child run created in this commit (once: its id is fixed by the
    /// parent, step and key, so a repeat after a crash creates nothing).
    pub spawn: Option<ChildSpawn>,
    /// Waiting for a child: holding no worker and no `concurrency` slot,
    /// out of the queue until the child's finish queues it again, or (with
    /// `park_until`, the run's deadline) due then at the latest.
    pub suspend: bool,
}

impl RunWrite {
    /// Ends a claimed run whose stored state cannot be decoded, leaving its steps as they
    /// are: the claim fails that one run instead of the batch.
    pub fn unreadable(error: &StoreError, now: i64) -> RunWrite {
        RunWrite {
            status: RunStatus::Failed,
            started_at: Some(now),
            completed_at: Some(now),
            output: Value::Null,
            error: Some(RunError::unreadable(error)),
            park_until: None,
            steps: vec![],
            spawn: None,
            suspend: false,
        }
    }
}

/// How a commit for a claimed run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    Saved,
    /// A cancel was recorded: nothing was written; the holder finishes the
    /// run as cancelled (a write with status `cancelled` is always accepted
    /// from the lease holder).
    Cancelled,
    /// The token is stale (the lease expired and the run was claimed again,
    /// or it ended meanwhile): nothing was written; the holder drops the run.
    LeaseLost,
}

/// What a heartbeat learnt about the node's claims.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatReport {
    /// The new lease deadline of every claim still held.
    pub lease_until: i64,
    /// Claims this node no longer holds.
    pub lost: Vec<ClaimRef>,
    /// Claims whose run has a recorded cancel.
    pub cancelled: Vec<ClaimRef>,
}

/// The claimable queue of runs and the lease protocol.
#[async_trait]
pub trait RunQueue: Send + Sync {
    /// Claim up to `limit` due runs, oldest due first, for `owner`, with a
    /// lease of `lease_ms`. Runs of a workflow at its `concurrency` cap stay
    /// queued (runs parked in a wait or retry do not count towards it).
    async fn claim(&self, owner: &str, limit: usize, lease_ms: i64) -> Result<Vec<Claim>>;
    /// Write a claimed run's new state, fenced by its token.
    async fn commit(&self, claim: ClaimRef, write: RunWrite) -> Result<CommitOutcome>;
    /// Renew the leases of `owner`'s claims (one call per node, not per run).
    async fn heartbeat(
        &self,
        owner: &str,
        claims: Vec<ClaimRef>,
        lease_ms: i64,
    ) -> Result<HeartbeatReport>;
    /// Give claims back unstarted (shutdown): due again at once.
    async fn release(&self, claims: Vec<ClaimRef>) -> Result<()>;
    /// Put runs whose lease expired back in the queue (bumping their token);
    /// returns how many.
    async fn sweep_expired(&self) -> Result<usize>;
    /// The earliest due time of a queued run, if any.
    async fn next_due(&self) -> Result<Option<i64>>;
    /// Runs due now and waiting for a worker.
    async fn queue_depth(&self) -> Result<i64>;
}

/// Runs as the API sees them.
#[async_trait]
pub trait Runs: Send + Sync {
    /// Insert a run, or return the one an unexpired idempotency key names,
    /// race-free.
    async fn create_run(&self, new: NewRun) -> Result<TriggerOutcome>;
    async fn get_run(&self, id: String) -> Result<RunRow>;
    async fn list_runs(&self, filter: RunFilter) -> Result<Vec<RunRow>>;
    /// Record a cancel: a pending or parked run is `cancelled` at once; a
    /// claimed running one is flagged and stops at its holder's next write.
    async fn cancel_run(&self, id: String) -> Result<RunRow>;
    /// Delete finished runs older than `cutoff` and expired idempotency keys.
    async fn purge(&self, cutoff: i64, batch: usize) -> Result<usize>;
    async fn count_runs_by_status(&self) -> Result<Vec<(RunStatus, i64)>>;
}

/// Workflows and their versions.
#[async_trait]
pub trait Registry: Send + Sync {
    async fn apply_workflow(&self, apply: WorkflowApply) -> Result<ApplyOutcome>;
    async fn get_workflow(&self, id: String) -> Result<WorkflowRow>;
    async fn list_workflows(&self, after: Option<String>, limit: usize)
    -> Result<Vec<WorkflowRow>>;
    /// A stored definition and when it was stored.
    async fn workflow_version(&self, id: String, version: i64) -> Result<(Value, i64)>;
    async fn set_workflow_status(
        &self,
        id: String,
        status: crate::workflow::WorkflowStatus,
    ) -> Result<WorkflowRow>;
}

/// API keys (stored as hashes).
#[async_trait]
pub trait ApiKeys: Send + Sync {
    async fn create_api_key(&self, key: NewApiKey) -> Result<()>;
    async fn api_key_by_hash(&self, hash: String) -> Result<Option<ApiKeyRow>>;
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRow>>;
    async fn revoke_api_key(&self, id: String) -> Result<()>;
}

/// Connections (credentials sealed by the secret box).
#[async_trait]
pub trait Connections: Send + Sync {
    /// Create or replace (`true` = created).
    async fn put_connection(&self, w: ConnectionWrite) -> Result<(ConnectionRow, bool)>;
    async fn list_connections(&self) -> Result<Vec<ConnectionRow>>;
    async fn get_connection(&self, id: String) -> Result<ConnectionRow>;
    async fn delete_connection(&self, id: String) -> Result<()>;
}

/// Liveness of the storage itself.
#[async_trait]
pub trait Health: Send + Sync {
    /// A real write through the store's write path; `Err` names the cause
    /// (`StoreError::Unavailable` while writes fail).
    async fn check(&self) -> Result<()>;
    /// Stop accepting writes and flush what is pending.
    fn close(&self);
}

/// What nodes sharing one store tell each other. A store only one process
/// opens (SQLite) keeps the defaults: nothing to deliver, nothing shared.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// Deliver what other nodes sharing this store signal (a run queued,
    /// finished or cancelled) to this node's events.
    fn attach_events(&self, _events: &crate::events::Events) {}
    /// Store `value` under `key` unless the store holds one already, and
    /// return the stored value (nodes agreeing on a setting, e.g. the
    /// secret key's check value). Unshared: returns `value`.
    async fn meta_init(&self, _key: &'static str, value: String) -> Result<String> {
        Ok(value)
    }
    /// One request of `key` in a rate-limit category, against a GCRA bucket
    /// every node shares: emission interval `emission_ms`, burst tolerance
    /// `burst_ms`. `None`: this store keeps no shared buckets (one process
    /// owns it, so the caller limits in memory).
    async fn rate_hit(
        &self,
        _key: String,
        _category: &'static str,
        _emission_ms: i64,
        _burst_ms: i64,
    ) -> Result<Option<RateState>> {
        Ok(None)
    }
}

/// A shared rate-limit bucket after one request, on the store's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateState {
    pub allowed: bool,
    /// The bucket's theoretical arrival time after this request.
    pub tat_ms: i64,
    pub now_ms: i64,
}

/// Schedule state: each live schedule's next occurrence, and the occurrences
/// handled (unique per workflow and time; a run claims its occurrence in the
/// transaction that creates it, `NewRun::scheduled_at`).
#[async_trait]
pub trait Schedules: Send + Sync {
    async fn list_schedules(&self) -> Result<Vec<ScheduleRow>>;
    /// Create or move a schedule's next occurrence.
    async fn put_schedule(&self, row: ScheduleRow) -> Result<()>;
    /// The schedule stops (workflow paused, archived, disabled, rescheduled away).
    async fn delete_schedule(&self, workflow_id: String) -> Result<()>;
    async fn schedule_state(&self, workflow_id: String) -> Result<ScheduleState>;
    /// Record an occurrence that waits for the previous run (overlap `queue`).
    async fn queue_occurrence(&self, workflow_id: String, scheduled_at: i64) -> Result<()>;
}

/// What only the web dashboard reads and writes: its sessions (stored as
/// hashes, alive while their API key is), the filtered, keyset-paged run
/// list and the overview's figures.
#[async_trait]
pub trait Dashboard: Send + Sync {
    /// Store a new session (its id only as a hash); expired ones are removed on the way.
    async fn create_ui_session(
        &self,
        id_hash: String,
        key_id: String,
        csrf_token: String,
        now: i64,
        expires_at: i64,
    ) -> Result<()>;
    /// The live session with this hash: unexpired, and its key not revoked.
    async fn ui_session(&self, id_hash: String, now: i64) -> Result<Option<UiSession>>;
    async fn delete_ui_session(&self, id_hash: String) -> Result<()>;
    /// Newest first, keyset-paged on `seq`, within the search's time budget.
    async fn search_runs(&self, search: RunSearch) -> Result<RunPage>;
    /// The figures of the hour up to `now`.
    async fn overview(&self, now: i64) -> Result<Overview>;
}

/// Continuing a finished run as the same run.
#[async_trait]
pub trait Redrives: Send + Sync {
    /// Put a `failed`, `timed_out` or `cancelled` run back in the queue as the
    /// same run: completed steps are kept, the others run again, and so do
    /// its waited-for children that did not complete. `None`: the run is in
    /// another status and nothing changed.
    async fn redrive_run(&self, id: String) -> Result<Option<RunRow>>;
}

/// Everything one store offers; `Store` holds one of these and hands each
/// consumer the narrow port it needs (`Store::queue`, `Store::registry`, …).
pub trait Backend:
    RunQueue
    + Runs
    + Registry
    + ApiKeys
    + Connections
    + Health
    + Cluster
    + Schedules
    + Dashboard
    + Redrives
{
}
impl<
    T: RunQueue
        + Runs
        + Registry
        + ApiKeys
        + Connections
        + Health
        + Cluster
        + Schedules
        + Dashboard
        + Redrives,
> Backend for T
{
}

/// Shared by implementations: a store error is unavailable storage when the
/// request may be retried unchanged once the cause is gone.
pub fn is_transient(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(_) | StoreError::Busy(_))
}
