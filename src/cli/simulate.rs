//! `flowctl simulate`: fetch recorded runs of a workflow from the server
//! (`runs:read`), replay a new definition against them offline
//! (`crate::testing::replay`, fail-closed), and report per run what changes.

use super::apply::read_definition;
use super::{ClientOpts, CmdResult, Exit, Failure, print_json};
use crate::api::RunView;
use crate::client::{Client, RunFilter};
use crate::testing::{Library, replay};
use crate::workflow::compile;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The new definition (a JSON file); its workflow id picks the recorded runs
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Replay the N most recent finished runs of the workflow
    #[arg(
        long,
        value_name = "N",
        required_unless_present = "run",
        conflicts_with = "run"
    )]
    pub runs: Option<u32>,
    /// Replay this run (repeat for several)
    #[arg(long = "run", value_name = "RUN_ID")]
    pub run: Vec<String>,
    #[command(flatten)]
    pub client: ClientOpts,
}

/// Finished runs whose recordings can be replayed (a cancelled run stopped
/// before its later steps were recorded, an unfinished one is still going).
fn replayable(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "timed_out")
}

async fn recent_runs(client: &Client, workflow_id: &str, n: u32) -> Result<Vec<RunView>, Failure> {
    let mut ids = vec![];
    let mut cursor = None;
    // Pages of 100, newest first, until N finished runs (or 20 pages).
    for _ in 0..20 {
        let page = client
            .runs(&RunFilter {
                workflow_id: Some(workflow_id.into()),
                limit: Some(100),
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await?;
        for r in page.data.iter().filter(|r| replayable(&r.status)) {
            if ids.len() < n as usize {
                ids.push(r.id.clone());
            }
        }
        cursor = page
            .meta
            .and_then(|m| if m.has_more { m.cursor } else { None });
        if ids.len() >= n as usize || cursor.is_none() {
            break;
        }
    }
    let mut runs = vec![];
    for id in ids {
        runs.push(client.run(&id, None).await?);
    }
    Ok(runs)
}

pub async fn simulate(client: &Client, args: &SimulateArgs, json: bool) -> CmdResult {
    let shown = args.file.display().to_string();
    let def = read_definition(&args.file).map_err(|e| Failure::usage(format!("{shown}: {e}")))?;
    let wf = compile(&def).map_err(|issues| {
        let mut message = format!("{shown}: VALIDATION_ERROR: Workflow definition is invalid");
        for i in issues {
            let d = crate::api::ErrorDetail {
                path: i.path,
                message: i.message,
            };
            message.push_str(&format!("\n  {}: {}", d.dotted_path(), d.message));
        }
        Failure::usage(message)
    })?;
    if args.runs == Some(0) {
        return Err(Failure::usage("--runs must be at least 1"));
    }
    let recorded = match args.runs {
        Some(n) => recent_runs(client, &wf.id, n).await?,
        None => {
            let mut runs = vec![];
            for id in &args.run {
                let r = client.run(id, None).await?;
                if r.workflow_id != wf.id {
                    return Err(Failure::usage(format!(
                        "run {id} is a run of {}, not of {} ({shown})",
                        r.workflow_id, wf.id
                    )));
                }
                if !replayable(&r.status) {
                    return Err(Failure::usage(format!(
                        "run {id} is {}: only completed, failed and timed-out runs have recordings to replay",
                        r.status
                    )));
                }
                runs.push(r);
            }
            runs
        }
    };
    let library = Library::default();
    let replays: Vec<replay::Replay> = recorded
        .iter()
        .map(|r| replay::replay(&wf, r, &library))
        .collect();
    let branch_changes = replays.iter().filter(|r| !r.branches.is_empty()).count();
    let live = replays.iter().filter(|r| !r.live_calls.is_empty()).count();
    let unchanged = replays.iter().filter(|r| !r.changed).count();
    if json {
        print_json(&json!({
            "workflowId": wf.id,
            "file": shown,
            "runs": replays.len(),
            "branchChanges": branch_changes,
            "liveCalls": live,
            "unchanged": unchanged,
            "replays": replays,
        }));
        return Ok(Exit::Ok);
    }
    if replays.is_empty() {
        eprintln!(
            "no finished runs of {} on the server to replay (trigger some, or name them with --run)",
            wf.id
        );
        return Ok(Exit::Ok);
    }
    println!(
        "simulate {} ({shown}) against {} recorded run(s)",
        wf.id,
        replays.len()
    );
    for r in &replays {
        print_replay(r);
    }
    println!();
    println!(
        "{} run(s): {branch_changes} with a changed branch, {live} would need a live call, {unchanged} unchanged",
        replays.len()
    );
    Ok(Exit::Ok)
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("absent")
}

fn print_replay(r: &replay::Replay) {
    let head = format!(
        "{} (v{}) {} → {}",
        r.run_id, r.recorded_version, r.recorded_status, r.status
    );
    if !r.changed {
        println!("{head}: unchanged");
        return;
    }
    println!("{head}");
    for b in &r.branches {
        println!("    branch {}: {} → {}", b.step, opt(&b.was), opt(&b.now));
    }
    for m in &r.live_calls {
        let what = match &m.target {
            Some(t) => format!("{} {t}", m.step_type),
            None => m.step_type.clone(),
        };
        println!(
            "    needs a live call: step '{}' ({what}) has no recording; the replay stopped there",
            m.step_id
        );
    }
    for s in &r.steps {
        println!("    step {}: {} → {}", s.step, opt(&s.was), s.now);
    }
    for d in &r.output {
        println!("    {}", d.line("was", "now"));
    }
}
