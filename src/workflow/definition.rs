//! The compiled form of a workflow definition: what the engine executes.

use super::schema::InputSchema;
use crate::actions::ActionKind;
use crate::template::{CompiledValue, Template};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowStatus {
    Draft,
    Active,
    Paused,
    Archived,
}

impl WorkflowStatus {
    pub const ALL: [&'static str; 4] = ["draft", "active", "paused", "archived"];

    pub fn parse(s: &str) -> Option<WorkflowStatus> {
        Some(match s {
            "draft" => WorkflowStatus::Draft,
            "active" => WorkflowStatus::Active,
            "paused" => WorkflowStatus::Paused,
            "archived" => WorkflowStatus::Archived,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowStatus::Draft => "draft",
            WorkflowStatus::Active => "active",
            WorkflowStatus::Paused => "paused",
            WorkflowStatus::Archived => "archived",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorHandling {
    Fail,
    Continue,
    Retry,
}

/// retry policy, as data.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    pub max_attempts: u32,
    pub initial_delay_ms: u64,
    pub max_delay_ms: u64,
    pub backoff_multiplier: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            initial_delay_ms: 1000,
            max_delay_ms: 30_000,
            backoff_multiplier: 2.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    Transform,
    Wait,
    /// `action` steps (`http.request`, `stripe.*`) and `email` steps.
    Action(ActionKind),
    /// Tests `config.conditions`; its `then`/`else` guard later steps (`CompiledStep::guards`).
    Condition,
    /// Ends the run `completed` or `failed`; later steps are skipped.
    Stop,
    /// Runs another workflow as a child run (`config.workflowId`).
    Workflow,
    /// Runs its body once per item of `config.collection`, one child run per item.
    Loop(std::sync::Arc<super::blocks::LoopSpec>),
    /// Runs each named branch as a child run, all at once.
    Parallel(std::sync::Arc<super::blocks::ParallelSpec>),
    /// Suspends the run until its approvers decide (or its timeout does).
    Approval,
}

impl StepKind {
    pub fn type_name(&self) -> &str {
        match self {
            StepKind::Transform => "transform",
            StepKind::Wait => "wait",
            StepKind::Action(ActionKind::Email) => "email",
            StepKind::Action(_) => "action",
            StepKind::Condition => "condition",
            StepKind::Stop => "stop",
            StepKind::Workflow => "workflow",
            StepKind::Loop(_) => "loop",
            StepKind::Parallel(_) => "parallel",
            StepKind::Approval => "approval",
        }
    }
}

/// A branch of a `condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Branch {
    Then,
    Else,
}

impl Branch {
    pub fn as_str(self) -> &'static str {
        match self {
            Branch::Then => "then",
            Branch::Else => "else",
        }
    }

    pub fn other(self) -> Branch {
        match self {
            Branch::Then => Branch::Else,
            Branch::Else => Branch::Then,
        }
    }

    pub fn of(result: bool) -> Branch {
        if result { Branch::Then } else { Branch::Else }
    }
}

/// A step listed in a condition's `then` or `else`: it runs only when that branch was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    /// Index of the condition step in the same block.
    pub condition: usize,
    pub condition_id: String,
    pub branch: Branch,
}

#[derive(Debug, Clone)]
pub struct CompiledStep {
    pub id: String,
    pub name: Option<String>,
    pub kind: StepKind,
    pub config: CompiledValue,
    pub condition: Option<Template>,
    pub error_handling: ErrorHandling,
    pub retry: RetryConfig,
    pub timeout_ms: u64,
    /// The step's own `connection` field (resolution).
    pub connection: Option<String>,
    /// The condition branches this step is listed in (all must have been taken).
    pub guards: Vec<Guard>,
}

/// A validated definition with every template and the schema compiled once.
#[derive(Debug, Clone)]
pub struct CompiledWorkflow {
    pub id: String,
    pub name: String,
    /// `status` from the file, if it had one (absent → active on create).
    pub status: Option<WorkflowStatus>,
    /// Canonical JSON without `status`: what versions are compared and stored by.
    pub definition: Value,
    pub steps: Vec<CompiledStep>,
    pub output: Option<CompiledValue>,
    pub variables: Value,
    pub input_schema: Option<InputSchema>,
    pub timeout_ms: Option<u64>,
    pub trigger: super::trigger::TriggerDef,
    /// At most this many runs of the workflow execute at once (all nodes).
    pub concurrency: Option<u32>,
    /// Problems that do not stop the definition from running (errors under
    /// `validate --strict`), such as a reference a condition may leave unset.
    pub warnings: Vec<super::compile::Issue>,
}

impl CompiledWorkflow {
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }
}
