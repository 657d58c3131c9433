//! The store's ports: what the worker, the handlers and the catalog may ask
//! of durable storage. Every method returns a boxed future, so an
//! implementation may be a local thread (SQLite) or a network pool
//! (PostgreSQL) behind the same `dyn` object. Time decisions that must agree
//! across nodes (lease deadlines, due times) are taken by the store's clock,
//! never by the caller's.

use super::records::*;
use super::{Result, StoreError};
use crate::engine::{RunError, RunStatus, StepRecord};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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
pub trait RunQueue: Send + Sync {
    /// Claim up to `limit` due runs, oldest due first, for `owner`, with a
    /// lease of `lease_ms`. Runs of a workflow at its `concurrency` cap stay
    /// queued (runs parked in a wait or retry do not count towards it).
    fn claim(&self, owner: &str, limit: usize, lease_ms: i64) -> BoxFuture<'_, Result<Vec<Claim>>>;
    /// Write a claimed run's new state, fenced by its token.
    fn commit(&self, claim: ClaimRef, write: RunWrite) -> BoxFuture<'_, Result<CommitOutcome>>;
    /// Renew the leases of `owner`'s claims (one call per node, not per run).
    fn heartbeat(
        &self,
        owner: &str,
        claims: Vec<ClaimRef>,
        lease_ms: i64,
    ) -> BoxFuture<'_, Result<HeartbeatReport>>;
    /// Give claims back unstarted (shutdown): due again at once.
    fn release(&self, claims: Vec<ClaimRef>) -> BoxFuture<'_, Result<()>>;
    /// Put runs whose lease expired back in the queue (bumping their token);
    /// returns how many.
    fn sweep_expired(&self) -> BoxFuture<'_, Result<usize>>;
    /// The earliest due time of a queued run, if any.
    fn next_due(&self) -> BoxFuture<'_, Result<Option<i64>>>;
    /// Runs due now and waiting for a worker.
    fn queue_depth(&self) -> BoxFuture<'_, Result<i64>>;
}

/// Runs as the API sees them.
pub trait Runs: Send + Sync {
    /// Insert a run, or return the one an unexpired idempotency key names,
    /// race-free.
    fn create_run(&self, new: NewRun) -> BoxFuture<'_, Result<TriggerOutcome>>;
    fn get_run(&self, id: String) -> BoxFuture<'_, Result<RunRow>>;
    fn list_runs(&self, filter: RunFilter) -> BoxFuture<'_, Result<Vec<RunRow>>>;
    /// Record a cancel: a pending or parked run is `cancelled` at once; a
    /// claimed running one is flagged and stops at its holder's next write.
    fn cancel_run(&self, id: String) -> BoxFuture<'_, Result<RunRow>>;
    /// Delete finished runs older than `cutoff` and expired idempotency keys.
    fn purge(&self, cutoff: i64, batch: usize) -> BoxFuture<'_, Result<usize>>;
    fn count_runs_by_status(&self) -> BoxFuture<'_, Result<Vec<(RunStatus, i64)>>>;
}

/// Workflows, versions, API keys and connections.
pub trait Registry: Send + Sync {
    fn apply_workflow(&self, apply: WorkflowApply) -> BoxFuture<'_, Result<ApplyOutcome>>;
    fn get_workflow(&self, id: String) -> BoxFuture<'_, Result<WorkflowRow>>;
    fn list_workflows(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<WorkflowRow>>>;
    /// A stored definition and when it was stored.
    fn workflow_version(&self, id: String, version: i64) -> BoxFuture<'_, Result<(Value, i64)>>;
    fn set_workflow_status(
        &self,
        id: String,
        status: &'static str,
    ) -> BoxFuture<'_, Result<WorkflowRow>>;
    fn create_api_key(&self, key: NewApiKey) -> BoxFuture<'_, Result<()>>;
    fn api_key_by_hash(&self, hash: String) -> BoxFuture<'_, Result<Option<ApiKeyRow>>>;
    fn list_api_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKeyRow>>>;
    fn revoke_api_key(&self, id: String) -> BoxFuture<'_, Result<()>>;
    /// Create or replace (`true` = created).
    fn put_connection(&self, w: ConnectionWrite) -> BoxFuture<'_, Result<(ConnectionRow, bool)>>;
    fn list_connections(&self) -> BoxFuture<'_, Result<Vec<ConnectionRow>>>;
    fn get_connection(&self, id: String) -> BoxFuture<'_, Result<ConnectionRow>>;
    fn delete_connection(&self, id: String) -> BoxFuture<'_, Result<()>>;
}

/// Liveness of the storage itself.
pub trait Health: Send + Sync {
    /// A real write through the store's write path; `Err` names the cause
    /// (`StoreError::Unavailable` while writes fail).
    fn check(&self) -> BoxFuture<'_, Result<()>>;
    /// Stop accepting writes and flush what is pending.
    fn close(&self);
    /// Deliver what other nodes sharing this store signal (a run queued,
    /// finished or cancelled) to this node's events. A store only one
    /// process opens has nothing to deliver.
    fn attach_events(&self, _events: &crate::events::Events) {}
    /// Store `value` under `key` unless the store holds one already, and
    /// return the stored value (nodes agreeing on a setting, e.g. the
    /// secret key's check value). A store only one process opens keeps
    /// nothing and returns `value`.
    fn meta_init(&self, _key: &'static str, value: String) -> BoxFuture<'_, Result<String>> {
        Box::pin(async move { Ok(value) })
    }
    /// One request of `key` in a rate-limit category, against a GCRA bucket
    /// every node shares: emission interval `emission_ms`, burst tolerance
    /// `burst_ms`. `None`: this store keeps no shared buckets (one process
    /// owns it, so the caller limits in memory).
    fn rate_hit(
        &self,
        _key: String,
        _category: &'static str,
        _emission_ms: i64,
        _burst_ms: i64,
    ) -> BoxFuture<'_, Result<Option<RateState>>> {
        Box::pin(async { Ok(None) })
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

/// Everything one store offers; `Store` holds one of these.
/// Schedule state: each live schedule's next occurrence, and the occurrences
/// handled (unique per workflow and time; a run claims its occurrence in the
/// transaction that creates it, `NewRun::scheduled_at`).
pub trait Schedules: Send + Sync {
    fn list_schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleRow>>>;
    /// Create or move a schedule's next occurrence.
    fn put_schedule(&self, row: ScheduleRow) -> BoxFuture<'_, Result<()>>;
    /// The schedule stops (workflow paused, archived, disabled, rescheduled away).
    fn delete_schedule(&self, workflow_id: String) -> BoxFuture<'_, Result<()>>;
    fn schedule_state(&self, workflow_id: String) -> BoxFuture<'_, Result<ScheduleState>>;
    /// Record an occurrence that waits for the previous run (overlap `queue`).
    fn queue_occurrence(&self, workflow_id: String, scheduled_at: i64)
    -> BoxFuture<'_, Result<()>>;
}

/// What only the web dashboard reads and writes: its sessions (stored as
/// hashes, alive while their API key is), the filtered, keyset-paged run
/// list and the overview's figures.
pub trait Dashboard: Send + Sync {
    /// Store a new session (its id only as a hash); expired ones are removed on the way.
    fn create_ui_session(
        &self,
        id_hash: String,
        key_id: String,
        csrf_token: String,
        now: i64,
        expires_at: i64,
    ) -> BoxFuture<'_, Result<()>>;
    /// The live session with this hash: unexpired, and its key not revoked.
    fn ui_session(&self, id_hash: String, now: i64) -> BoxFuture<'_, Result<Option<UiSession>>>;
    fn delete_ui_session(&self, id_hash: String) -> BoxFuture<'_, Result<()>>;
    /// Newest first, keyset-paged on `seq`, within the search's time budget.
    fn search_runs(&self, search: RunSearch) -> BoxFuture<'_, Result<RunPage>>;
    /// The figures of the hour up to `now`.
    fn overview(&self, now: i64) -> BoxFuture<'_, Result<Overview>>;
}

pub trait Backend: RunQueue + Runs + Registry + Health + Schedules + Dashboard {}
impl<T: RunQueue + Runs + Registry + Health + Schedules + Dashboard> Backend for T {}

/// Shared by implementations: a store error is unavailable storage when the
/// request may be retried unchanged once the cause is gone.
pub fn is_transient(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(_) | StoreError::Busy(_))
}
