//! `flowctl test` and `flowctl simulate`: workflow runs offline, in memory,
//! through the same `engine::advance` the server's worker drives (there is no
//! second interpreter of steps). Every step with a side effect takes its result
//! from mocks, written in a test case or recorded by past runs; a step without
//! one is never performed (fail-closed).
//!
//! This module has nothing to call by construction: it depends on `engine`,
//! `workflow`, `template` (through them) and the wire types of `api`, never on
//! `actions`, `client`, `store`, `worker` or an async runtime (a unit test below
//! holds it to that). Reading test files and talking to a server for
//! `simulate` happen in `cli/`.

pub mod cases;
pub mod diff;
pub mod mocks;
pub mod replay;
pub mod runner;

pub use cases::{Case, CaseRun, TestFile, Verdict, run_case, updated_expect};
pub use mocks::{Mock, Mocks};
pub use runner::{Library, MissingMock, Outcome, Start, run};

#[cfg(test)]
mod tests;
