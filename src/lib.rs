//! flowctl: a workflow server and CLI over one SQLite file.
//! Module map and dependency direction are described in CONTRIBUTING.md.
#![forbid(unsafe_code)]

pub mod actions;
pub mod api;
pub mod app;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod config;
pub mod credentials;
pub mod dashboard;
pub mod delivery;
pub mod engine;
pub mod events;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod schedule;
pub mod secrets;
pub mod store;
pub mod template;
pub mod time;
pub mod trigger;
pub mod webhook;
pub mod worker;
pub mod workflow;
