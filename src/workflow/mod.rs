//! Workflow definitions (pure): types, apply-time validation that lists every
//! problem with its path, and the input schema (defaults + violations).
//! Depends only on `template`.

mod compile;
mod definition;
mod schema;
mod steps;
pub mod trigger;

pub use compile::{Issue, compile, derive_id};
pub use definition::{
    CompiledStep, CompiledWorkflow, ErrorHandling, RetryConfig, StepKind, WorkflowStatus,
};
pub use schema::{InputSchema, InputViolation};
pub use trigger::{TriggerDef, TriggerType};
