//! `flowctl run` and `flowctl wait`: trigger, then long-poll the run (never a
//! busy loop) and print its output.

use super::{CmdResult, Exit, Failure, print_json};
use crate::client::Client;
use clap::Args;
use serde_json::{Value, json};
use std::io::{IsTerminal, Read};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Workflow id, e.g. wf_order_total
    pub workflow_id: String,
    /// Input: inline JSON, @file, or @- for stdin
    #[arg(long, short)]
    pub input: Option<String>,
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Connection to use for this run (SPEC §4)
    #[arg(long)]
    pub connection: Option<String>,
    /// Wait for the run to finish and print its output
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds (exit 124)
    #[arg(long)]
    pub timeout: Option<f64>,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    pub run_id: String,
    /// Give up waiting after this many seconds (exit 124)
    #[arg(long)]
    pub timeout: Option<f64>,
}

fn read_input(spec: &str) -> Result<Value, Failure> {
    let text = if spec == "@-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::usage(format!("cannot read input from stdin: {e}")))?;
        s
    } else if let Some(path) = spec.strip_prefix('@') {
        std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("cannot read input file {path}: {e}")))?
    } else {
        spec.to_string()
    };
    serde_json::from_str(&text)
        .map_err(|e| Failure::usage(format!("--input is not valid JSON: {e}")))
}

/// Longest single long-poll; the server caps `wait` at 60 s.
const POLL_SECS: f64 = 30.0;

pub async fn run(client: &Client, args: &RunArgs, json: bool) -> CmdResult {
    let mut body = json!({});
    if let Some(spec) = &args.input {
        body["input"] = read_input(spec)?;
    }
    if let Some(k) = &args.idempotency_key {
        body["idempotencyKey"] = json!(k);
    }
    if let Some(c) = &args.connection {
        body["connectionId"] = json!(c);
    }
    let deadline = args
        .timeout
        .map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
    let path = format!("/api/v1/workflows/{}/run", args.workflow_id);
    if !args.wait {
        let resp = client.post(&path, &body).await?;
        if json {
            print_json(&resp.data);
        } else {
            println!("{}", resp.data["runId"].as_str().unwrap_or_default());
        }
        return Ok(Exit::Ok);
    }
    let interactive = std::io::stderr().is_terminal();
    let first_wait = poll_secs(deadline, interactive);
    let resp = client
        .post(&format!("{path}?wait={first_wait}"), &body)
        .await?;
    let run_id = resp.data["runId"].as_str().unwrap_or_default().to_string();
    if is_finished(&resp.data) {
        let run = client.get(&format!("/api/v1/runs/{run_id}")).await?.data;
        return Ok(report(&run, json));
    }
    follow(client, &run_id, deadline, json).await
}

pub async fn wait(client: &Client, args: &WaitArgs, json: bool) -> CmdResult {
    let deadline = args
        .timeout
        .map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
    follow(client, &args.run_id, deadline, json).await
}

fn is_finished(data: &Value) -> bool {
    matches!(
        data["status"].as_str(),
        Some("completed" | "failed" | "cancelled" | "timed_out")
    )
}

/// Seconds for the next long-poll: short on a terminal, to refresh the spinner.
fn poll_secs(deadline: Option<Instant>, interactive: bool) -> f64 {
    let cap = if interactive { 1.0 } else { POLL_SECS };
    match deadline {
        Some(d) => d
            .saturating_duration_since(Instant::now())
            .as_secs_f64()
            .min(cap),
        None => cap,
    }
}

async fn follow(client: &Client, run_id: &str, deadline: Option<Instant>, json: bool) -> CmdResult {
    let interactive = std::io::stderr().is_terminal();
    let spinner = interactive.then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.enable_steady_tick(Duration::from_millis(100));
        pb.set_message(format!("{run_id} pending"));
        pb
    });
    let outcome = loop {
        let secs = poll_secs(deadline, interactive);
        let run = client
            .get(&format!("/api/v1/runs/{run_id}?wait={secs:.3}"))
            .await?
            .data;
        if is_finished(&run) {
            break Some(run);
        }
        if let Some(pb) = &spinner {
            pb.set_message(current_step(&run));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break None;
        }
    };
    if let Some(pb) = spinner {
        pb.finish_and_clear();
    }
    match outcome {
        Some(run) => Ok(report(&run, json)),
        None => {
            eprintln!(
                "timed out waiting for {run_id}; it is still running (check later with `flowctl wait {run_id}`)"
            );
            Ok(Exit::Timeout)
        }
    }
}

/// `2/3 create-invoice`
fn current_step(run: &Value) -> String {
    let steps = run["steps"].as_array().cloned().unwrap_or_default();
    let current = steps
        .iter()
        .position(|s| {
            !matches!(
                s["status"].as_str(),
                Some("completed" | "skipped" | "failed")
            )
        })
        .unwrap_or(steps.len().saturating_sub(1));
    let id = steps
        .get(current)
        .and_then(|s| s["id"].as_str())
        .unwrap_or("");
    format!("{}/{} {}", current + 1, steps.len(), id)
}

/// Output on stdout when completed; the error on stderr otherwise.
fn report(run: &Value, json: bool) -> Exit {
    let completed = run["status"] == "completed";
    if json {
        print_json(run);
    } else if completed {
        print_json(&run["output"]);
    }
    if completed {
        return Exit::Ok;
    }
    let err = &run["error"];
    eprintln!(
        "run {} {}: {}",
        run["id"].as_str().unwrap_or(""),
        run["status"].as_str().unwrap_or("failed"),
        err["message"].as_str().unwrap_or("no error message")
    );
    if let Some(step) = err["stepId"].as_str() {
        eprintln!("  failed step: {step}");
    }
    Exit::RunFailed
}
