//! `flowctl runs list|show|cancel|replay`

use super::{ClientOpts, CmdResult, Exit, print_json};
use crate::client::{Client, RunFilter};
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
        #[arg(long, value_parser = ["pending", "running", "completed", "failed", "cancelled", "timed_out"])]
        status: Option<String>,
        /// Only runs started this way: api, schedule, webhook, replay or batch
        #[arg(long, value_name = "TYPE")]
        trigger: Option<String>,
        /// How many runs to show, 1 to 100
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: u32,
    },
    /// Show one run with its steps, as JSON
    Show {
        /// Run id (run_…)
        run_id: String,
    },
    /// Cancel a run: a pending run never starts, a running one stops before its next step
    Cancel {
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
            limit,
        } => {
            let filter = RunFilter {
                workflow_id: workflow.clone(),
                status: status.clone(),
                trigger_type: trigger.clone(),
                limit: Some(*limit),
                cursor: None,
            };
            let resp = client.runs(&filter).await?;
            if json {
                print_json(&resp.data);
            } else {
                for r in &resp.data {
                    println!(
                        "{}  {:<10} {:<8} {}  v{}  {}",
                        r.id,
                        r.status,
                        r.trigger_type,
                        r.workflow_id,
                        r.workflow_version,
                        r.created_at
                    );
                }
            }
        }
        RunsCommand::Show { run_id } => {
            let run = client.run(run_id, None).await?;
            if !json {
                for line in super::run::control_flow_lines(&run) {
                    eprintln!("{line}");
                }
            }
            print_json(&run);
        }
        RunsCommand::Cancel { run_id } => {
            let run = client.cancel(run_id).await?;
            if json {
                print_json(&run);
            } else {
                println!("{} {}", run.id, run.status);
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
