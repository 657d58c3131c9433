//! `flowctl apply` (through the API) and `flowctl validate` (offline).

use super::{CmdResult, Exit, Failure, print_json};
use crate::client::{Client, ClientError};
use crate::workflow::compile;
use clap::Args;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Definition files or folders of *.json
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Definition files or folders of *.json
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// Files named on the command line, and the *.json files of named folders
/// (recursively, sorted). Example inputs (`*.input.json`) are not definitions.
fn definition_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    let mut out = vec![];
    for p in paths {
        if p.is_dir() {
            collect_dir(p, &mut out)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", p.display())))?;
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(Failure::usage(format!(
                "{}: no such file or folder",
                p.display()
            )));
        }
    }
    Ok(out)
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if p.is_dir() {
            collect_dir(&p, out)?;
        } else if name.ends_with(".json") && !name.ends_with(".input.json") {
            out.push(p);
        }
    }
    Ok(())
}

fn read_definition(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("not valid JSON: {e}"))
}

pub fn validate(args: ValidateArgs) -> CmdResult {
    let mut problems = 0;
    for file in definition_files(&args.paths)? {
        let shown = file.display();
        match read_definition(&file).map(|def| compile(&def)) {
            Err(e) => {
                problems += 1;
                eprintln!("{shown}: {e}");
            }
            Ok(Ok(wf)) => eprintln!("{shown}: ok ({})", wf.id),
            Ok(Err(issues)) => {
                problems += issues.len();
                eprintln!("{shown}: {} problem(s)", issues.len());
                for issue in issues {
                    let d = crate::api::ErrorDetail {
                        path: issue.path,
                        message: issue.message,
                    };
                    eprintln!("  {}: {}", d.dotted_path(), d.message);
                }
            }
        }
    }
    Ok(if problems == 0 { Exit::Ok } else { Exit::Usage })
}

pub async fn apply(client: &Client, args: &ApplyArgs, json: bool) -> CmdResult {
    let mut failed = false;
    let mut results = vec![];
    for file in definition_files(&args.paths)? {
        let shown = file.display();
        let def = match read_definition(&file) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{shown}: {e}");
                failed = true;
                continue;
            }
        };
        match client.post("/api/v1/workflows", &def).await {
            Ok(resp) => {
                let d = &resp.data;
                if json {
                    results.push(resp.data.clone());
                } else {
                    println!(
                        "{} {} (version {}, {})",
                        d["result"].as_str().unwrap_or("applied"),
                        d["id"].as_str().unwrap_or("?"),
                        d["version"],
                        d["status"].as_str().unwrap_or("?")
                    );
                }
            }
            Err(e @ ClientError::Rejected { .. }) => {
                failed = true;
                eprintln!("{shown}: {}", Failure::from(e).message);
            }
            Err(e) => return Err(e.into()),
        }
    }
    if json {
        print_json(&Value::Array(results));
    }
    Ok(if failed { Exit::Usage } else { Exit::Ok })
}
