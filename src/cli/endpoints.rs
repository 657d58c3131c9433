//! `flowctl endpoints create|list|delete|enable|deliveries|redeliver`:
//! outbound notification endpoints, through the API.

use super::table::{Cell, Table};
use super::{ClientOpts, CmdResult, Exit, print_json};
use crate::client::Client;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct EndpointsArgs {
    #[command(subcommand)]
    pub command: EndpointsCommand,
    #[command(flatten)]
    pub client: ClientOpts,
}

#[derive(Debug, Subcommand)]
pub enum EndpointsCommand {
    /// Register a URL to notify of run events; prints its signing secret (shown only now)
    Create {
        /// The http(s) URL that receives the events
        #[arg(id = "endpoint_url", value_name = "URL")]
        endpoint_url: String,
        /// Only these event types (repeatable; e.g. run.failed) [default: all]
        #[arg(long = "event", value_name = "TYPE")]
        events: Vec<String>,
        /// Only runs of these workflows (repeatable) [default: all]
        #[arg(long = "workflow", value_name = "WORKFLOW_ID")]
        workflows: Vec<String>,
        /// A note for people
        #[arg(long)]
        description: Option<String>,
    },
    /// List endpoints (secrets are never shown again)
    List,
    /// Delete an endpoint with its deliveries
    Delete {
        /// Endpoint id (ep_…)
        id: String,
    },
    /// Enable a disabled endpoint; what it missed is delivered now
    Enable {
        /// Endpoint id (ep_…)
        id: String,
    },
    /// An endpoint's recent deliveries, newest first
    Deliveries {
        /// Endpoint id (ep_…)
        id: String,
        /// How many
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=500))]
        limit: u64,
    },
    /// Send a delivery's event again (same event id, so receivers can dedupe)
    Redeliver {
        /// Delivery id (msg_…)
        id: String,
    },
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

pub async fn endpoints(client: &Client, cmd: &EndpointsCommand, json: bool) -> CmdResult {
    match cmd {
        EndpointsCommand::Create {
            endpoint_url: url,
            events,
            workflows,
            description,
        } => {
            let mut body = json!({"url": url});
            if !events.is_empty() {
                body["events"] = json!(events);
            }
            if !workflows.is_empty() {
                body["workflowIds"] = json!(workflows);
            }
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            let ep = client.create_endpoint(&body).await?;
            if json {
                print_json(&ep);
            } else {
                println!("{}", text(&ep["id"]));
                eprintln!(
                    "signing secret (shown only now; receivers verify with it): {}",
                    text(&ep["secret"])
                );
            }
        }
        EndpointsCommand::List => {
            let all = client.endpoints().await?;
            if json {
                print_json(&all);
            } else {
                let mut t = Table::new(&["ID", "STATE", "URL", "EVENTS", "WORKFLOWS", "CREATED"]);
                for e in &all {
                    let state = if e["enabled"] == json!(true) {
                        "enabled"
                    } else {
                        "disabled"
                    };
                    t.row(vec![
                        text(&e["id"]).into(),
                        state.into(),
                        text(&e["url"]).into(),
                        if e["events"].is_null() {
                            "all".into()
                        } else {
                            text(&e["events"]).into()
                        },
                        if e["workflowIds"].is_null() {
                            "all".into()
                        } else {
                            text(&e["workflowIds"]).into()
                        },
                        Cell::Time(e["createdAt"].as_str().map(String::from)),
                    ]);
                }
                t.print();
            }
        }
        EndpointsCommand::Delete { id } => {
            let v = client.delete_endpoint(id).await?;
            if json {
                print_json(&v);
            } else {
                println!("deleted {id}");
            }
        }
        EndpointsCommand::Enable { id } => {
            let v = client.enable_endpoint(id).await?;
            if json {
                print_json(&v);
            } else {
                println!("enabled {id}");
            }
        }
        EndpointsCommand::Deliveries { id, limit } => {
            let all = client.endpoint_deliveries(id, *limit as usize).await?;
            if json {
                print_json(&all);
            } else {
                let mut t = Table::new(&[
                    "ID",
                    "EVENT",
                    "TYPE",
                    "RUN",
                    "SEQ",
                    "STATUS",
                    "ATTEMPTS",
                    "LAST CODE",
                    "LAST ATTEMPT",
                ]);
                for d in &all {
                    t.row(vec![
                        text(&d["id"]).into(),
                        text(&d["eventId"]).into(),
                        text(&d["eventType"]).into(),
                        text(&d["runId"]).into(),
                        text(&d["sequence"]).into(),
                        text(&d["status"]).into(),
                        text(&d["attempts"]).into(),
                        text(&d["lastStatusCode"]).into(),
                        Cell::Time(d["lastAttemptAt"].as_str().map(String::from)),
                    ]);
                }
                t.print();
            }
        }
        EndpointsCommand::Redeliver { id } => {
            let v = client.redeliver(id).await?;
            if json {
                print_json(&v);
            } else {
                println!(
                    "{} (event {} queued again)",
                    text(&v["id"]),
                    text(&v["eventId"])
                );
            }
        }
    }
    Ok(Exit::Ok)
}
