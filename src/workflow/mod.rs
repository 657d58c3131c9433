//! Workflow definitions (pure): types, apply-time validation that lists every
//! problem with its path, and the input schema (defaults + violations).
//! Depends only on `template`.

pub mod blocks;
#[cfg(test)]
mod blocks_tests;
mod calls;
mod compile;
pub mod control;
#[cfg(test)]
mod control_tests;
mod definition;
pub mod fields;
mod schema;
mod steps;
pub mod trigger;
pub mod waits;
mod webhook_trigger;

pub use calls::literal_targets;
pub use compile::{Issue, compile, derive_id};
pub use definition::{
    Branch, CompiledStep, CompiledWorkflow, ErrorHandling, Guard, RetryConfig, StepKind,
    WorkflowStatus,
};
pub use schema::{InputSchema, InputViolation};
pub use trigger::TriggerDef;
