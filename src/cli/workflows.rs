//! `flowctl workflows list|show|activate|pause|archive`

use super::table::{Cell, Table};
use super::{ClientOpts, CmdResult, Exit, print_json};
use crate::client::Client;
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct WorkflowsArgs {
    #[command(subcommand)]
    pub command: WorkflowsCommand,
    #[command(flatten)]
    pub client: ClientOpts,
}

#[derive(Debug, Subcommand)]
pub enum WorkflowsCommand {
    /// List every registered workflow (all pages)
    List,
    /// Show one workflow with its current definition and versions, as JSON
    Show {
        /// Workflow id (wf_…)
        id: String,
    },
    /// Make a workflow runnable again (status active)
    Activate {
        /// Workflow id (wf_…)
        id: String,
    },
    /// Stop new runs of a workflow (status paused); runs in flight go on
    Pause {
        /// Workflow id (wf_…)
        id: String,
    },
    /// Retire a workflow (status archived); its runs and versions are kept
    Archive {
        /// Workflow id (wf_…)
        id: String,
    },
}

pub async fn workflows(client: &Client, cmd: &WorkflowsCommand, json: bool) -> CmdResult {
    let view = match cmd {
        WorkflowsCommand::List => {
            let all = client.workflows().await?;
            if json {
                print_json(&all);
            } else {
                let mut t = Table::new(&["ID", "STATUS", "VERSION", "NAME", "NEXT RUN", "UPDATED"]);
                for w in &all {
                    t.row(vec![
                        w.id.as_str().into(),
                        w.status.as_str().into(),
                        format!("v{}", w.version).into(),
                        w.name.as_str().into(),
                        Cell::Time(w.next_run_at.clone()),
                        Cell::Time(Some(w.updated_at.clone())),
                    ]);
                }
                t.print();
            }
            return Ok(Exit::Ok);
        }
        WorkflowsCommand::Show { id } => {
            print_json(&client.workflow(id).await?);
            return Ok(Exit::Ok);
        }
        WorkflowsCommand::Activate { id } => client.set_workflow_status(id, "activate").await?,
        WorkflowsCommand::Pause { id } => client.set_workflow_status(id, "pause").await?,
        WorkflowsCommand::Archive { id } => client.archive_workflow(id).await?,
    };
    if json {
        print_json(&view);
    } else {
        println!("{} {}", view.id, view.status);
    }
    Ok(Exit::Ok)
}
