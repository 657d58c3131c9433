//! `flowctl webhook send WORKFLOW`: a correctly signed test delivery, like
//! `stripe trigger`. The server signs the body with the webhook connection's
//! secret (which never leaves it); the CLI then posts it to `/webhooks/…`
//! like the provider would, so verification, event filters and dedupe are
//! the real ones.

use super::{ClientOpts, CmdResult, Exit, Failure, print_json};
use crate::client::Client;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct WebhookArgs {
    #[command(subcommand)]
    pub command: WebhookCommand,
    #[command(flatten)]
    pub client: ClientOpts,
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Send a signed test delivery to a webhook workflow through the real verification path
    Send {
        /// Workflow id (wf_…) whose trigger is a webhook
        workflow_id: String,
        /// The event to send: inline JSON or @file [default: a sample event of the provider's shape]
        #[arg(long, value_name = "JSON|@FILE")]
        body: Option<String>,
        /// Event type of the sample event (or GitHub's X-GitHub-Event) [default: the first the workflow subscribes to]
        #[arg(long, value_name = "TYPE")]
        event: Option<String>,
    },
}

fn sample(provider: &str, event: &str) -> Value {
    let id = format!("evt_test_{}", crate::ids::base62(14));
    match provider {
        "stripe" => json!({"id": id, "object": "event", "type": event,
            "created": crate::time::now_ms() / 1000, "livemode": false,
            "data": {"object": {"id": "test_object", "object": "test"}}}),
        "github" => json!({"zen": "flowctl test delivery", "hook_id": 0}),
        _ => json!({"id": id, "type": event, "data": {}}),
    }
}

pub async fn webhook(client: &Client, cmd: &WebhookCommand, json_out: bool) -> CmdResult {
    let WebhookCommand::Send {
        workflow_id,
        body,
        event,
    } = cmd;
    let wf = client.workflow(workflow_id).await.map_err(|e| {
        if e.code() == Some(crate::api::codes::NOT_FOUND) {
            Failure::usage(format!(
                "NOT_FOUND: workflow '{workflow_id}' does not exist"
            ))
        } else {
            e.into()
        }
    })?;
    let trigger = wf
        .definition
        .as_ref()
        .map(|d| d["trigger"].clone())
        .unwrap_or(Value::Null);
    if trigger["type"] != "webhook" {
        return Err(Failure::usage(format!(
            "workflow {workflow_id} has no webhook trigger; start it with `flowctl run {workflow_id}`"
        )));
    }
    let provider = trigger["provider"].as_str().unwrap_or("custom").to_string();
    let event = event
        .clone()
        .or_else(|| trigger["events"][0].as_str().map(String::from))
        .unwrap_or_else(|| "test.event".into());
    let raw = match body {
        Some(spec) => {
            let text = match spec.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path)
                    .map_err(|e| Failure::usage(format!("cannot read {path}: {e}")))?,
                None => spec.clone(),
            };
            serde_json::from_str::<Value>(&text)
                .map_err(|e| Failure::usage(format!("--body is not valid JSON: {e}")))?;
            text
        }
        None => sample(&provider, &event).to_string(),
    };
    let signed = client.sign_test_delivery(workflow_id, &raw).await?;
    let path = signed["path"].as_str().unwrap_or_default().to_string();
    let mut headers: Vec<(String, String)> = signed["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    if provider == "github" {
        headers.push(("x-github-event".into(), event.clone()));
    }
    let (status, answer) = client.deliver(&path, &raw, &headers).await?;
    if json_out {
        print_json(&json!({"status": status, "path": path, "answer": answer}));
    } else {
        eprintln!("POST {path} ({provider}, signed) → {status}");
        print_json(&answer);
    }
    Ok(if (200..300).contains(&status) {
        Exit::Ok
    } else {
        Exit::Usage
    })
}
