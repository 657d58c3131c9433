//! `flowctl approvals list|approve|reject`: the approval inbox and deciding
//! as this key (its name is recorded as who decided; it needs `runs:approve`).

use super::table::{Cell, Table};
use super::{ClientOpts, CmdResult, Exit, print_json};
use crate::client::Client;
use clap::{Args, Subcommand};
use serde_json::Value;

#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    #[command(subcommand)]
    pub command: ApprovalsCommand,
    #[command(flatten)]
    pub client: ClientOpts,
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Approvals waiting for a decision, newest first
    List {
        /// Decided and expired ones too
        #[arg(long)]
        all: bool,
    },
    /// Approve a run's waiting approval step
    Approve {
        /// Run id (run_…)
        run_id: String,
        /// The approval step's id
        step_id: String,
        /// Recorded with the decision
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject a run's waiting approval step (the run goes on along its rejected
    /// path, or fails when the step says `onReject: fail`)
    Reject {
        /// Run id (run_…)
        run_id: String,
        /// The approval step's id
        step_id: String,
        /// Recorded with the decision
        #[arg(long)]
        comment: Option<String>,
    },
}

pub async fn approvals(client: &Client, cmd: &ApprovalsCommand, json: bool) -> CmdResult {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    match cmd {
        ApprovalsCommand::List { all } => {
            let items = client.approvals(*all).await?;
            if json {
                print_json(&items);
                return Ok(Exit::Ok);
            }
            if items.is_empty() {
                eprintln!("no approvals are waiting");
                return Ok(Exit::Ok);
            }
            let mut t = Table::new(&["RUN", "STEP", "WORKFLOW", "STATUS", "REASON", "DECIDE BY"]);
            for a in &items {
                let decided = a["decisions"].as_array().map_or(0, Vec::len);
                t.row(vec![
                    text(&a["runId"]).into(),
                    text(&a["stepId"]).into(),
                    text(&a["workflowId"]).into(),
                    format!("{} ({decided}/{})", text(&a["status"]), a["required"]).into(),
                    text(&a["reason"]).into(),
                    Cell::Time(a["expiresAt"].as_str().map(String::from)),
                ]);
            }
            t.print();
        }
        ApprovalsCommand::Approve {
            run_id,
            step_id,
            comment,
        }
        | ApprovalsCommand::Reject {
            run_id,
            step_id,
            comment,
        } => {
            let decision = match cmd {
                ApprovalsCommand::Approve { .. } => "approve",
                _ => "reject",
            };
            let d = client
                .decide(run_id, step_id, decision, comment.as_deref())
                .await?;
            if json {
                print_json(&d);
            } else {
                let more = if d["resolved"] == true {
                    "the run goes on"
                } else {
                    "the run waits for more approvers"
                };
                let done = if decision == "approve" {
                    "approved"
                } else {
                    "rejected"
                };
                println!("{run_id} {step_id} {done} by {}: {more}", text(&d["by"]));
            }
        }
    }
    Ok(Exit::Ok)
}
