//! `flowctl runs list|show|cancel|replay`

use super::{CmdResult, Exit, print_json};
use crate::client::Client;
use clap::Subcommand;
use serde_json::Value;

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Newest first
    List {
        #[arg(long)]
        workflow: Option<String>,
        #[arg(long)]
        status: Option<String>,
        /// Only runs started this way: api, schedule, webhook, replay, batch
        #[arg(long, value_name = "TYPE")]
        trigger: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    Show {
        run_id: String,
    },
    Cancel {
        run_id: String,
    },
    /// Start a new run with the same input and connection (latest active version)
    Replay {
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
            let mut path = format!("/api/v1/runs?limit={limit}");
            if let Some(w) = workflow {
                path.push_str(&format!("&workflowId={w}"));
            }
            if let Some(s) = status {
                path.push_str(&format!("&status={s}"));
            }
            if let Some(t) = trigger {
                path.push_str(&format!("&triggerType={t}"));
            }
            let resp = client.get(&path).await?;
            if json {
                print_json(&resp.data);
            } else {
                for r in resp.data.as_array().into_iter().flatten() {
                    println!(
                        "{}  {:<10} {:<8} {}  v{}  {}",
                        text(r, "id"),
                        text(r, "status"),
                        text(r, "triggerType"),
                        text(r, "workflowId"),
                        r["workflowVersion"],
                        text(r, "createdAt")
                    );
                }
            }
        }
        RunsCommand::Show { run_id } => {
            let resp = client.get(&format!("/api/v1/runs/{run_id}")).await?;
            print_json(&resp.data);
        }
        RunsCommand::Cancel { run_id } => {
            let resp = client
                .post(&format!("/api/v1/runs/{run_id}/cancel"), &Value::Null)
                .await?;
            if json {
                print_json(&resp.data);
            } else {
                println!("{} {}", run_id, text(&resp.data, "status"));
            }
        }
        RunsCommand::Replay { run_id } => {
            let resp = client
                .post(&format!("/api/v1/runs/{run_id}/replay"), &Value::Null)
                .await?;
            if json {
                print_json(&resp.data);
            } else {
                println!("{}", text(&resp.data, "runId"));
            }
        }
    }
    Ok(Exit::Ok)
}

pub(crate) fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("-")
}
