//! `flowctl run` and `flowctl wait`: trigger, then long-poll the run (never a
//! busy loop) and print its output.

use super::{ClientOpts, CmdResult, Exit, Failure, print_json};
use crate::api::{RunView, TriggerRequest};
use crate::client::{Client, ClientError};
use clap::Args;
use serde_json::Value;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Workflow id, e.g. wf_order_total (see `flowctl workflows list`)
    pub workflow_id: String,
    /// Input object: inline JSON, @file, or @- for stdin [default: {}]
    #[arg(long, short, value_name = "JSON|@FILE|@-", conflicts_with = "batch")]
    pub input: Option<String>,
    /// Idempotency key (1-255 printable characters, per workflow, remembered 24 h): a repeat returns the first run and starts nothing
    #[arg(long, value_name = "KEY", conflicts_with = "batch")]
    pub idempotency_key: Option<String>,
    /// Connection (conn_…) to use for this run instead of the default one
    #[arg(long, value_name = "ID")]
    pub connection: Option<String>,
    /// Wait for the run to finish and print its output (with --batch: wait for all)
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds (exit 124); 0 checks once
    #[arg(long, value_name = "SECS", requires = "wait", value_parser = parse_secs, allow_negative_numbers = true)]
    pub timeout: Option<Duration>,
    /// One run per input: a JSON array, or JSON lines (one input object per line)
    #[arg(long, value_name = "FILE")]
    pub batch: Option<PathBuf>,
    /// With --batch: the idempotency key is this field of each input [default: file name, line and a digest of the input]
    #[arg(long, value_name = "FIELD", requires = "batch")]
    pub key_field: Option<String>,
    /// With --key-field: run the first input of a repeated key value and skip the others, instead of refusing the batch
    #[arg(long, requires = "key_field")]
    pub skip_duplicates: bool,
    /// Run a scheduled workflow now as its schedule would: the trigger's static input (--input fields on top) plus a `schedule` block
    #[arg(long, conflicts_with = "batch")]
    pub as_schedule: bool,
    #[command(flatten)]
    pub client: ClientOpts,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Run id (run_…), as printed by `flowctl run`
    pub run_id: String,
    /// Give up after this many seconds (exit 124); 0 checks once
    #[arg(long, value_name = "SECS", value_parser = parse_secs, allow_negative_numbers = true)]
    pub timeout: Option<Duration>,
    #[command(flatten)]
    pub client: ClientOpts,
}

/// Seconds as a number ≥ 0; anything too large to represent means "no limit".
pub(super) fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if secs.is_nan() || secs < 0.0 {
        return Err(format!(
            "'{s}': seconds must be 0 or more (leave --timeout out to wait as long as the run takes)"
        ));
    }
    Ok(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// `None` when the timeout is so large that it never elapses.
fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
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
/// The shortest long-poll: a run that takes milliseconds is reported finished
/// even under `--timeout 0`, instead of "still running".
const MIN_POLL_SECS: f64 = 0.25;

pub(super) fn read_trigger(args: &RunArgs) -> Result<TriggerRequest, Failure> {
    Ok(TriggerRequest {
        input: args.input.as_deref().map(read_input).transpose()?,
        connection_id: args.connection.clone(),
        idempotency_key: args.idempotency_key.clone(),
        trigger_type: None,
        as_schedule: args.as_schedule,
    })
}

/// A rejected trigger, with what to do about it.
pub(super) async fn trigger_failure(client: &Client, workflow_id: &str, e: ClientError) -> Failure {
    if e.code() == Some(crate::api::codes::NOT_FOUND) {
        return Failure::usage(format!(
            "NOT_FOUND: workflow '{workflow_id}' does not exist on {}{}; `flowctl workflows list` shows the registered ones, `flowctl apply FILE` registers one",
            client.base_url(),
            did_you_mean(client, workflow_id).await
        ));
    }
    e.into()
}

/// ` — did you mean 'wf_order_total'?` when a registered id (or the id of a
/// name, `order total` → `wf_order_total`) is close; empty otherwise.
pub(super) async fn did_you_mean(client: &Client, workflow_id: &str) -> String {
    let Ok(all) = client.workflows().await else {
        return String::new();
    };
    let ids: Vec<&str> = all.iter().map(|w| w.id.as_str()).collect();
    let prefixed = format!("wf_{}", workflow_id.trim_start_matches("wf_"));
    if ids.contains(&prefixed.as_str()) {
        return format!(" — did you mean '{prefixed}'?");
    }
    crate::workflow::fields::nearest(&prefixed, &ids)
        .map(|n| format!(" — did you mean '{n}'?"))
        .unwrap_or_default()
}

pub async fn run(client: &Client, args: &RunArgs, json: bool) -> CmdResult {
    if let Some(file) = &args.batch {
        return super::batch::run_batch(client, args, file).await;
    }
    let body = read_trigger(args)?;
    let id = &args.workflow_id;
    if !args.wait {
        let resp = match client.trigger(id, &body, None).await {
            Ok(r) => r,
            Err(e) => return Err(trigger_failure(client, id, e).await),
        };
        if resp.data.input_differs {
            eprintln!(
                "note: idempotency key reused with a different input; {} is the first request's run and nothing new started",
                resp.data.run_id
            );
        }
        if json {
            print_json(&resp.data);
        } else {
            println!("{}", resp.data.run_id);
        }
        return Ok(Exit::Ok);
    }
    let deadline = deadline(args.timeout);
    // Trigger without waiting, so the run id is known (and printed) before
    // anything can interrupt the wait.
    let resp = match client.trigger(id, &body, None).await {
        Ok(r) => r,
        Err(e) => return Err(trigger_failure(client, id, e).await),
    };
    let run_id = resp.data.run_id;
    if resp.status.as_u16() == 200 {
        eprintln!(
            "{run_id} already exists for this idempotency key; nothing new started{}",
            differed_note(resp.data.input_differs)
        );
    } else {
        eprintln!("{run_id} started");
    }
    follow(client, &run_id, deadline, json).await
}

/// The server says when a repeated idempotency key came with a different input.
pub(super) fn differed_note(differs: bool) -> &'static str {
    if differs {
        " (the input differed from the first request's: the first run's input was kept)"
    } else {
        ""
    }
}

pub async fn wait(client: &Client, args: &WaitArgs, json: bool) -> CmdResult {
    let id = &args.run_id;
    match follow(client, id, deadline(args.timeout), json).await {
        Err(f) if f.message.starts_with("NOT_FOUND") => Err(Failure::usage(format!(
            "NOT_FOUND: run '{id}' does not exist on {}; `flowctl runs list` shows recent runs",
            client.base_url()
        ))),
        other => other,
    }
}

pub(super) fn is_finished(status: &str) -> bool {
    crate::engine::RunStatus::parse(status).is_some_and(crate::engine::RunStatus::is_terminal)
}

/// Seconds for the next long-poll: short on a terminal, to refresh the spinner.
fn poll_secs(deadline: Option<Instant>, interactive: bool) -> f64 {
    let cap = if interactive { 1.0 } else { POLL_SECS };
    match deadline {
        Some(d) => d
            .saturating_duration_since(Instant::now())
            .as_secs_f64()
            .clamp(MIN_POLL_SECS, cap),
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
    let poll = async {
        loop {
            let secs = poll_secs(deadline, interactive);
            let run = client.run(run_id, Some(secs)).await?;
            if is_finished(&run.status) {
                break Ok::<_, ClientError>(Some(run));
            }
            if let Some(pb) = &spinner {
                pb.set_message(format!("{run_id} {}", current_step(&run)));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break Ok(None);
            }
        }
    };
    // Ctrl-C stops the waiting, never the run: say how to pick it up again.
    let outcome = tokio::select! {
        r = poll => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    if let Some(pb) = &spinner {
        pb.finish_and_clear();
    }
    match outcome {
        None => {
            eprintln!(
                "interrupted: {run_id} keeps running; wait again with `flowctl wait {run_id}`, or stop it with `flowctl runs cancel {run_id}`"
            );
            Ok(Exit::Interrupted)
        }
        Some(Err(e)) => Err(e.into()),
        Some(Ok(Some(run))) => Ok(report(client, &run, json).await),
        Some(Ok(None)) => {
            eprintln!(
                "timed out waiting for {run_id}; it is still running (check later with `flowctl wait {run_id}`)"
            );
            Ok(Exit::Timeout)
        }
    }
}

/// `2/3 create-invoice`
fn current_step(run: &RunView) -> String {
    let steps = &run.steps;
    let current = steps
        .iter()
        .position(|s| !matches!(s.status.as_str(), "completed" | "skipped" | "failed"))
        .unwrap_or(steps.len().saturating_sub(1));
    let id = steps.get(current).map(|s| s.id.as_str()).unwrap_or("");
    let waits = steps
        .get(current)
        .and_then(|s| s.waiting_for.as_deref())
        .map(|w| format!(" (waiting for {w})"))
        .unwrap_or_default();
    format!("{}/{} {}{waits}", current + 1, steps.len(), id)
}

/// Output on stdout when completed; the error on stderr otherwise. The branches taken,
/// the steps skipped, the parent and the child runs go to stderr, beside the output, not
/// in it.
async fn report(client: &Client, run: &RunView, json: bool) -> Exit {
    let completed = run.status == "completed";
    if json {
        print_json(run);
    } else {
        for line in control_flow_lines(run) {
            eprintln!("{line}");
        }
        let tree = super::family::fetch(client, run).await;
        for line in super::family::lines(run, tree.as_ref()) {
            eprintln!("{line}");
        }
        if completed {
            print_json(&run.output);
        }
    }
    print_warnings(run);
    if completed {
        return Exit::Ok;
    }
    let err = &run.error;
    eprintln!(
        "run {} {}: {}",
        run.id,
        run.status,
        err["message"].as_str().unwrap_or("no error message")
    );
    if let Some(step) = err["stepId"].as_str() {
        eprintln!("  failed step: {step}");
    }
    Exit::RunFailed
}

/// Step warnings (unresolved paths …) on stderr, after the result.
fn print_warnings(run: &RunView) {
    for step in &run.steps {
        for w in &step.warnings {
            eprintln!("warning: step '{}': {w}", step.id);
        }
    }
}

/// `check-amount: took then` for each condition that ran, and `skipped request-approval
/// (check-amount took else)` for each step skipped by a condition, a stop or its `if`.
pub(super) fn control_flow_lines(run: &RunView) -> Vec<String> {
    let mut out = vec![];
    for s in &run.steps {
        if let Some(w) = s.waiting_for.as_deref().filter(|_| s.status == "waiting") {
            let until = s.output["expiresAt"]
                .as_str()
                .map(|t| format!(" until {t}"))
                .unwrap_or_default();
            let how = match w {
                "approval" => format!(
                    "; decide with `flowctl approvals approve {} {}` (or reject)",
                    run.id, s.id
                ),
                _ => String::new(),
            };
            out.push(format!("{}: waiting for {w}{until}{how}", s.id));
        }
        if let Some(branch) = s.branch_taken() {
            out.push(format!("{}: took {branch}", s.id));
        }
        if s.step_type == "stop" && s.status == "completed" {
            out.push(format!("{}: stopped the run", s.id));
        }
        if let Some(why) = s.skip_text() {
            out.push(format!("skipped {} ({why})", s.id));
        }
    }
    out
}

/// `Value` helper for the batch summary.
pub(super) fn text(v: &Value) -> String {
    v.as_str()
        .map(String::from)
        .unwrap_or_else(|| v.to_string())
}
