//! flowctl: a workflow server and CLI. One process on one SQLite file by
//! default, or many nodes on one PostgreSQL database. The pure core
//! (`template`, `workflow`, `engine`) decides; the worker performs; the use
//! cases (`trigger`, `runs`, `workflows`) serve the HTTP adapter (`http`, with
//! the dashboard under it) and the schedule runner; `store` hides the
//! database behind ports. ARCHITECTURE.md maps every module and the
//! direction of dependencies.
#![forbid(unsafe_code)]

pub mod actions;
pub mod api;
pub mod app;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod config;
pub mod credentials;
pub mod delivery;
pub mod engine;
pub mod events;
pub mod http;
pub mod ids;
pub mod limits;
pub mod metrics;
pub mod runs;
pub mod schedule;
pub mod scope;
pub mod secrets;
pub mod store;
pub mod template;
pub mod testing;
pub mod time;
pub mod trigger;
pub mod webhook;
pub mod worker;
pub mod workflow;
pub mod workflows;
