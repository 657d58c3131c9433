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

/// SPEC §5 retry policy, as data.
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
}

impl StepKind {
    pub fn type_name(&self) -> &str {
        match self {
            StepKind::Transform => "transform",
            StepKind::Wait => "wait",
            StepKind::Action(ActionKind::Email) => "email",
            StepKind::Action(_) => "action",
        }
    }
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
    /// The step's own `connection` field (SPEC §4 resolution).
    pub connection: Option<String>,
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
}

impl CompiledWorkflow {
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }
}
