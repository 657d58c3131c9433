//! Records and the port of runs that wait for people and outside systems:
//! approvals (a row per approval, one hashed token per approver, one
//! decision per decider), callbacks (stored even before the run reaches its
//! step) and the approval mails still to send. A decision or a callback is
//! one conditional write that also puts its result on the waiting step and
//! queues the run; both stores implement `Waits` the same way.

use super::Result;
use crate::engine::{RunStatus, WaitingFor};
use async_trait::async_trait;
use serde_json::{Value, json};

/// What a commit that suspends a run records besides the run's state.
#[derive(Debug, Clone)]
pub struct SuspendWrite {
    pub step_id: String,
    pub waiting_for: WaitingFor,
    /// The approval, when the run first reaches it (kept if it exists already).
    pub approval: Option<NewApproval>,
}

#[derive(Debug, Clone)]
pub struct NewApproval {
    pub workflow_id: String,
    pub reason: String,
    pub approvers: Vec<String>,
    pub required: i64,
    pub expires_at: i64,
    pub tokens: Vec<NewApprovalToken>,
}

#[derive(Debug, Clone)]
pub struct NewApprovalToken {
    pub approver: String,
    /// SHA-256 (hex) of the token; the token itself is never stored in clear.
    pub token_hash: String,
    /// The token sealed with the server's key, kept only until its mail is
    /// sent (approvers with an email address and `notifyChannels.email`).
    pub sealed: Option<Vec<u8>>,
}

/// Who decides: the holder of an approver's token, or an API key (by name).
#[derive(Debug, Clone)]
pub enum Decider {
    Token(String),
    Key {
        run_id: String,
        step_id: String,
        name: String,
    },
}

#[derive(Debug, Clone)]
pub struct DecisionRequest {
    pub by: Decider,
    /// `approve` or `reject`.
    pub decision: String,
    pub comment: Option<String>,
}

/// One recorded decision.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRecord {
    pub by: String,
    pub decision: String,
    pub at: i64,
    pub comment: Option<String>,
}

impl DecisionRecord {
    pub fn to_value(&self) -> Value {
        json!({
            "by": self.by,
            "decision": self.decision,
            "at": crate::time::rfc3339(self.at),
            "comment": self.comment,
        })
    }

    pub fn from_value(v: &Value) -> Option<DecisionRecord> {
        Some(DecisionRecord {
            by: v.get("by")?.as_str()?.to_string(),
            decision: v.get("decision")?.as_str()?.to_string(),
            at: v
                .get("at")
                .and_then(Value::as_str)
                .and_then(crate::time::parse_rfc3339)
                .unwrap_or(0),
            comment: v.get("comment").and_then(Value::as_str).map(String::from),
        })
    }
}

#[derive(Debug, Clone)]
pub enum DecisionOutcome {
    /// Recorded; `resolved` when it settled the approval (and queued the run).
    Decided {
        run_id: String,
        step_id: String,
        record: DecisionRecord,
        resolved: bool,
    },
    /// The same decider made the same decision before: nothing changed.
    Replayed {
        run_id: String,
        step_id: String,
        record: DecisionRecord,
    },
    /// A different decision is on record (this decider's, or the one that settled it).
    AlreadyDecided { recorded: DecisionRecord },
    /// Past its deadline, or its run no longer waits (cancelled, timed out).
    Expired(String),
    /// No such token, run or approval.
    NotFound(String),
    /// The run exists but this step does not wait for a decision (yet).
    NotWaiting(String),
}

/// An approval as the inbox and the token page show it.
#[derive(Debug, Clone)]
pub struct ApprovalRow {
    pub run_id: String,
    pub step_id: String,
    pub workflow_id: String,
    pub reason: String,
    pub approvers: Vec<String>,
    pub required: i64,
    /// `pending`, `approved` or `rejected` (a timeout is decided by the run, not here).
    pub status: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub decisions: Vec<DecisionRecord>,
    pub run_status: RunStatus,
}

impl ApprovalRow {
    /// Whether a decision can still settle it.
    pub fn open(&self, now: i64) -> bool {
        self.status == "pending" && self.run_status == RunStatus::Suspended && now < self.expires_at
    }
}

/// What a token opens: its approval and whose it is.
#[derive(Debug, Clone)]
pub struct TokenApproval {
    pub approval: ApprovalRow,
    pub approver: String,
}

#[derive(Debug, Clone, Default)]
pub struct ApprovalFilter {
    /// Only approvals still waiting for a decision.
    pub pending_only: bool,
    pub run_id: Option<String>,
    pub limit: usize,
}

#[derive(Debug, Clone)]
pub struct CallbackIn {
    pub run_id: String,
    pub step_id: String,
    pub body: Value,
    pub headers: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CallbackOutcome {
    /// Stored; `queued` when the run was waiting for it and is queued now
    /// (otherwise the run uses it when it reaches the step).
    Received {
        queued: bool,
        received_at: i64,
    },
    AlreadyReceived,
    Expired(String),
    NotFound(String),
}

/// An approval mail to send (at least once): the sealed token makes the link.
#[derive(Debug, Clone)]
pub struct ApprovalMail {
    pub token_hash: String,
    pub run_id: String,
    pub step_id: String,
    pub approver: String,
    pub sealed: Vec<u8>,
    pub reason: String,
    pub expires_at: i64,
    pub connection_id: Option<String>,
    pub attempts: i64,
}

/// Approvals, decisions, callbacks and approval mails.
#[async_trait]
pub trait Waits: Send + Sync {
    /// Record a decision (first decision wins; see `DecisionOutcome`).
    async fn decide(&self, req: DecisionRequest) -> Result<DecisionOutcome>;
    /// The approval a token belongs to (the token page; changes nothing).
    async fn approval_by_token(&self, token_hash: String) -> Result<Option<TokenApproval>>;
    /// Newest first.
    async fn list_approvals(&self, filter: ApprovalFilter) -> Result<Vec<ApprovalRow>>;
    /// Store a callback for a run's step (once) and queue the run if it waits for it.
    async fn receive_callback(&self, cb: CallbackIn) -> Result<CallbackOutcome>;
    /// Take up to `limit` approval mails that are due, hiding each for `lease_ms`
    /// (so a crash before `approval_mail_done` sends it again).
    async fn claim_approval_mails(&self, lease_ms: i64, limit: usize) -> Result<Vec<ApprovalMail>>;
    /// The mail went out (`retry_at: None`: forget the sealed token), or try again then.
    async fn approval_mail_done(&self, token_hash: String, retry_at: Option<i64>) -> Result<()>;
}
