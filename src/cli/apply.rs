//! `flowctl apply` (through the API) and `flowctl validate` (offline).

use super::{ClientOpts, CmdResult, Exit, Failure, print_json};
use crate::client::Client;
use crate::workflow::compile;
use clap::Args;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Definition files, or folders searched for *.json (example inputs, *.input.json, are skipped)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub client: ClientOpts,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Definition files, or folders searched for *.json (example inputs, *.input.json, are skipped)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Treat warnings (e.g. a reference a condition may leave unset) as problems
    #[arg(long)]
    pub strict: bool,
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

/// Check every file offline; prints each problem and warning and returns how many
/// problems there were (warnings count as problems when `strict`).
fn check_all(files: &[PathBuf], strict: bool) -> (usize, Vec<(PathBuf, Value, String)>) {
    let mut problems = 0;
    let mut ok = vec![];
    let mut seen: Vec<(String, PathBuf)> = vec![];
    for file in files {
        let shown = file.display();
        match read_definition(file).map(|def| (compile(&def), def)) {
            Err(e) => {
                problems += 1;
                eprintln!("{shown}: {e}");
            }
            Ok((Ok(wf), def)) => {
                if let Some((_, other)) = seen.iter().find(|(id, _)| *id == wf.id) {
                    problems += 1;
                    eprintln!(
                        "{shown}: workflow id {} is also defined in {}",
                        wf.id,
                        other.display()
                    );
                    continue;
                }
                let label = if strict { "error" } else { "warning" };
                for w in &wf.warnings {
                    let d = crate::api::ErrorDetail {
                        path: w.path.clone(),
                        message: w.message.clone(),
                    };
                    eprintln!("{shown}: {label}: {}: {}", d.dotted_path(), d.message);
                }
                if strict && !wf.warnings.is_empty() {
                    problems += wf.warnings.len();
                    continue;
                }
                seen.push((wf.id.clone(), file.clone()));
                ok.push((file.clone(), def, wf.id));
            }
            Ok((Err(issues), _)) => {
                problems += issues.len();
                eprintln!(
                    "{shown}: VALIDATION_ERROR: Workflow definition is invalid ({} problem(s))",
                    issues.len()
                );
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
    (problems, ok)
}

pub fn validate(args: &ValidateArgs) -> CmdResult {
    let (problems, ok) = check_all(&definition_files(&args.paths)?, args.strict);
    for (file, _, id) in &ok {
        eprintln!("{}: ok ({id})", file.display());
    }
    Ok(if problems == 0 { Exit::Ok } else { Exit::Usage })
}

/// All or nothing: every file is checked first; one bad file registers none.
pub async fn apply(client: &Client, args: &ApplyArgs, json: bool) -> CmdResult {
    let (problems, ok) = check_all(&definition_files(&args.paths)?, false);
    if problems > 0 {
        return Err(Failure::usage(format!(
            "{problems} problem(s); nothing was applied (fix them, or check with `flowctl validate`)"
        )));
    }
    let mut results = vec![];
    for (file, def, _) in &ok {
        let applied = client.apply(def).await.map_err(|e| {
            let mut f = Failure::from(e);
            f.message = format!("{}: {}", file.display(), f.message);
            f
        })?;
        if !json {
            println!(
                "{} {} (version {}, {})",
                applied.result, applied.id, applied.version, applied.status
            );
        }
        results.push(applied);
    }
    if json {
        print_json(&results);
    }
    Ok(Exit::Ok)
}
