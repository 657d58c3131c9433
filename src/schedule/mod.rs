//! Schedule triggers: when occurrences fall (`occurrence`, pure) and the loop
//! that fires them through the trigger use case (`runner`).

pub mod occurrence;
pub mod runner;

pub use runner::{Scheduler, next_run_at};
#[cfg(test)]
mod runner_tests;
