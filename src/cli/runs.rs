//! `flowctl runs list|show|cancel|replay|redrive`

use super::table::{Cell, Table};
use super::{ClientOpts, CmdResult, Exit, Failure, print_json};
use crate::api::ListMeta;
use crate::client::{Client, ClientError, RunFilter};
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub command: RunsCommand,
    #[command(flatten)]
    pub client: ClientOpts,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first
    List {
        /// Only runs of this workflow (wf_…)
        #[arg(long, value_name = "ID")]
        workflow: Option<String>,
        /// Only runs in this status
        #[arg(long, value_parser = crate::engine::RunStatus::ALL)]
        status: Option<String>,
        /// Only runs started this way: api, schedule, webhook, replay, batch or workflow
        #[arg(long, value_name = "TYPE")]
        trigger: Option<String>,
        /// Only the child runs of this run (run_…): its sub-workflow runs
        #[arg(long, value_name = "RUN_ID")]
        parent: Option<String>,
        /// How many runs to show, 1 to 100
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100), conflicts_with = "all")]
        limit: u32,
        /// Every matching run, page after page (instead of --limit)
        #[arg(long)]
        all: bool,
    },
    /// Show one run with its steps, as JSON; on stderr the branches taken, the steps
    /// skipped and why, its parent run and the tree of its child runs
    Show {
        /// Run id (run_…)
        run_id: String,
    },
    /// Cancel a run: a pending run never starts, a running one stops before its next step
    Cancel {
        /// Run id (run_…)
        run_id: String,
    },
    /// Continue a failed, timed-out or cancelled run as the same run: completed steps are
    /// kept, the others run again
    Redrive {
        /// Run id (run_…)
        run_id: String,
    },
    /// Start a new run with the same input and connection (latest active version)
    Replay {
        /// The run whose input the new run takes
        run_id: String,
    },
}

pub async fn runs(client: &Client, cmd: &RunsCommand, json: bool) -> CmdResult {
    match cmd {
        RunsCommand::List {
            workflow,
            status,
            trigger,
            parent,
            limit,
            all,
        } => {
            let mut filter = RunFilter {
                workflow_id: workflow.clone(),
                status: status.clone(),
                trigger_type: trigger.clone(),
                parent_run_id: parent.clone(),
                limit: Some(if *all { 100 } else { *limit }),
                ..RunFilter::default()
            };
            let mut runs = vec![];
            loop {
                let resp = client
                    .runs(&filter)
                    .await
                    .map_err(|e| list_failure(e, trigger))?;
                runs.extend(resp.data);
                match resp.meta {
                    Some(ListMeta {
                        cursor: Some(c),
                        has_more: true,
                    }) if *all => filter.cursor = Some(c),
                    _ => break,
                }
            }
            if json {
                print_json(&runs);
            } else {
                let mut t = Table::new(&[
                    "ID", "WORKFLOW", "VERSION", "STATUS", "TRIGGER", "DURATION", "CREATED",
                ]);
                for r in &runs {
                    t.row(vec![
                        r.id.as_str().into(),
                        r.workflow_id.as_str().into(),
                        format!("v{}", r.workflow_version).into(),
                        r.status.as_str().into(),
                        r.trigger_type.as_str().into(),
                        r.duration_ms
                            .map(duration)
                            .unwrap_or_else(|| "-".into())
                            .into(),
                        Cell::Time(Some(r.created_at.clone())),
                    ]);
                }
                t.print();
            }
        }
        RunsCommand::Show { run_id } => {
            let run = client.run(run_id, None).await?;
            if !json {
                for line in super::run::control_flow_lines(&run) {
                    eprintln!("{line}");
                }
                for line in block_progress(&run) {
                    eprintln!("{line}");
                }
                let tree = super::family::fetch(client, &run).await;
                for line in super::family::lines(&run, tree.as_ref()) {
                    eprintln!("{line}");
                }
            }
            print_json(&run);
        }
        RunsCommand::Cancel { run_id } => {
            // Cancelling a finished run changes nothing: say so, and exit 2.
            let before = client.run(run_id, None).await?;
            if super::run::is_finished(&before.status) {
                if json {
                    print_json(&before);
                }
                return Err(Failure::usage(format!(
                    "{run_id} already finished ({}); there is nothing to cancel",
                    before.status
                )));
            }
            let run = client.cancel(run_id).await?;
            if json {
                print_json(&run);
            } else {
                println!("{} {}", run.id, run.status);
            }
        }
        RunsCommand::Redrive { run_id } => {
            let run = client.redrive(run_id).await?;
            if json {
                print_json(&run);
            } else {
                println!("{} {} (redrive {})", run.id, run.status, run.redrive_count);
            }
        }
        RunsCommand::Replay { run_id } => {
            let started = client.replay(run_id).await?;
            if json {
                print_json(&started);
            } else {
                println!("{}", started.run_id);
            }
        }
    }
    Ok(Exit::Ok)
}

/// `850 ms`, `2.3 s`, `4 min 10 s`
fn duration(ms: i64) -> String {
    match ms {
        ms if ms < 1000 => format!("{ms} ms"),
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// A misspelled `--trigger` gets the nearest trigger type.
fn list_failure(e: ClientError, trigger: &Option<String>) -> Failure {
    const TYPES: [&str; 6] = ["api", "schedule", "webhook", "replay", "batch", "workflow"];
    match trigger {
        Some(t) if !TYPES.contains(&t.as_str()) => Failure::usage(format!(
            "--trigger: {}",
            crate::workflow::fields::unknown_name("trigger type", t, &TYPES)
        )),
        _ => e.into(),
    }
}

/// The progress of a run's `loop` and `parallel` steps (`each: 37/100 done, 2 failed`):
/// while they wait, from the counters the store keeps; once settled, from their output.
fn block_progress(run: &crate::api::RunView) -> Vec<String> {
    let n = |v: &serde_json::Value| v.as_i64().unwrap_or(0);
    run.steps
        .iter()
        .filter(|s| s.step_type == "loop" || s.step_type == "parallel")
        .filter_map(|s| {
            let p = &s.output["progress"];
            let (done, total, failed) = if p.is_object() {
                (
                    n(&p["completed"]) + n(&p["failed"]),
                    n(&p["total"]),
                    n(&p["failed"]),
                )
            } else if s.output["count"].is_number() {
                let failed = n(&s.output["failed"]);
                (
                    n(&s.output["succeeded"]) + failed,
                    n(&s.output["count"]),
                    failed,
                )
            } else {
                return None;
            };
            Some(format!("{}: {done}/{total} done, {failed} failed", s.id))
        })
        .collect()
}
