//! `flowctl workflows list|show|activate|pause|archive`

use super::runs::text;
use super::{CmdResult, Exit, print_json};
use crate::client::Client;
use clap::Subcommand;
use serde_json::Value;

#[derive(Debug, Subcommand)]
pub enum WorkflowsCommand {
    List,
    Show { id: String },
    Activate { id: String },
    Pause { id: String },
    Archive { id: String },
}

pub async fn workflows(client: &Client, cmd: &WorkflowsCommand, json: bool) -> CmdResult {
    let resp = match cmd {
        WorkflowsCommand::List => {
            let resp = client.get("/api/v1/workflows?limit=100").await?;
            if !json {
                for w in resp.data.as_array().into_iter().flatten() {
                    let next = match w["nextRunAt"].as_str() {
                        Some(at) => format!("  next run {at}"),
                        None => String::new(),
                    };
                    println!(
                        "{}  {:<8} v{}  {}{next}",
                        text(w, "id"),
                        text(w, "status"),
                        w["version"],
                        text(w, "name")
                    );
                }
                return Ok(Exit::Ok);
            }
            resp
        }
        WorkflowsCommand::Show { id } => client.get(&format!("/api/v1/workflows/{id}")).await?,
        WorkflowsCommand::Activate { id } => {
            client
                .post(&format!("/api/v1/workflows/{id}/activate"), &Value::Null)
                .await?
        }
        WorkflowsCommand::Pause { id } => {
            client
                .post(&format!("/api/v1/workflows/{id}/pause"), &Value::Null)
                .await?
        }
        WorkflowsCommand::Archive { id } => {
            client.delete(&format!("/api/v1/workflows/{id}")).await?
        }
    };
    if json || matches!(cmd, WorkflowsCommand::Show { .. }) {
        print_json(&resp.data);
    } else {
        println!("{} {}", text(&resp.data, "id"), text(&resp.data, "status"));
    }
    Ok(Exit::Ok)
}
