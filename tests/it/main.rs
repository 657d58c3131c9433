//! The integration suite, one test binary: each module is the old file of the
//! same name. Servers are the real `flowctl serve` (common::Server) or, where the
//! process does not matter, an in-process app (common::app::TestApp).

mod common;

mod actions_email;
mod actions_http;
mod actions_logs;
mod actions_secrets;
mod actions_stripe;
mod api_limits;
mod api_trigger;
mod approvals;
mod batch;
mod child_runs;
mod cli;
mod control_flow;
mod dashboard;
mod db_copy;
mod disk_full;
mod docs;
mod durability;
mod family_views;
mod hardening_connections;
mod hardening_files;
mod hardening_redirects;
mod install;
mod lifecycle;
mod loops;
mod multinode;
mod newcomer;
mod newcomer_cli;
mod notifications;
mod openapi;
mod packaging;
mod replay;
mod run_limits;
mod schedules;
mod seed_example;
mod seed_snippets;
mod serve_hygiene;
mod static_binary;
mod sub_workflows;
mod synopsis;
mod template_cases;
mod template_limits;
mod template_props;
mod template_workflows;
mod unauthenticated_limits;
mod webhooks;
mod workflow_tests;
