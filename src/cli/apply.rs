//! `flowctl apply` (through the API) and `flowctl validate` (offline).

use super::{ClientOpts, CmdResult, Exit, Failure, print_json};
use crate::client::Client;
use crate::workflow::compile;
use clap::Args;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Definition files, or folders searched for *.json (example inputs *.input.json and tests *.test.json are skipped)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub client: ClientOpts,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Definition files, or folders searched for *.json (example inputs *.input.json and tests *.test.json are skipped)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Treat warnings (e.g. a reference a condition may leave unset) as problems
    #[arg(long)]
    pub strict: bool,
}

/// Files named on the command line, and the *.json files of named folders
/// (recursively, sorted). Example inputs (`*.input.json`) and test files
/// (`*.test.json`, for `flowctl test`) are not definitions.
fn definition_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    let mut out = vec![];
    for p in paths {
        if p.is_dir() {
            let before = out.len();
            collect_dir(p, &mut out)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", p.display())))?;
            if out.len() == before {
                return Err(Failure::usage(format!(
                    "{}: no *.json definitions in this folder (definitions are JSON files; *.input.json example inputs and *.test.json tests are skipped)",
                    p.display()
                )));
            }
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

/// Whether a file name is a definition's (not an example input, not a test file).
pub(super) fn is_definition_name(name: &str) -> bool {
    name.ends_with(".json") && !name.ends_with(".input.json") && !name.ends_with(".test.json")
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
        } else if is_definition_name(name) {
            out.push(p);
        }
    }
    Ok(())
}

pub(super) fn read_definition(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    serde_json::from_str(&text).map_err(|e| {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        if matches!(ext, "yaml" | "yml" | "toml") {
            format!("not valid JSON: {e}; definitions are JSON, not {}", ext.to_uppercase())
        } else if !text.trim_start().starts_with(['{', '[']) {
            format!("not valid JSON: {e}; definitions are JSON objects ({{\"name\": …, \"steps\": […]}})")
        } else {
            format!("not valid JSON: {e}")
        }
    })
}

/// One file's verdict, for `validate --json`.
#[derive(serde::Serialize)]
struct FileReport {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    valid: bool,
    problems: Vec<crate::api::ErrorDetail>,
    /// What does not stop the definition from running (problems under `--strict`).
    warnings: Vec<crate::api::ErrorDetail>,
    /// Its only problems are its warnings, refused under `--strict` (printed as such).
    #[serde(skip)]
    strict_only: bool,
}

/// Check every file offline: a report per file, and the files that compiled.
fn check_all(files: &[PathBuf], strict: bool) -> (Vec<FileReport>, Vec<(PathBuf, Value, String)>) {
    let mut reports = vec![];
    let mut ok = vec![];
    let mut seen: Vec<(String, PathBuf)> = vec![];
    for file in files {
        let shown = file.display().to_string();
        let problem = |message: String| crate::api::ErrorDetail {
            path: vec![],
            message,
        };
        let report = match read_definition(file).map(|def| (compile(&def), def)) {
            Err(e) => FileReport {
                file: shown,
                id: None,
                valid: false,
                problems: vec![problem(e)],
                warnings: vec![],
                strict_only: false,
            },
            Ok((Ok(wf), def)) => {
                let warnings: Vec<crate::api::ErrorDetail> = wf
                    .warnings
                    .iter()
                    .map(|w| crate::api::ErrorDetail {
                        path: w.path.clone(),
                        message: w.message.clone(),
                    })
                    .collect();
                if strict && !warnings.is_empty() {
                    FileReport {
                        file: shown,
                        id: Some(wf.id.clone()),
                        valid: false,
                        problems: warnings.clone(),
                        warnings,
                        strict_only: true,
                    }
                } else if let Some((_, other)) = seen.iter().find(|(id, _)| *id == wf.id) {
                    FileReport {
                        file: shown,
                        id: Some(wf.id.clone()),
                        valid: false,
                        problems: vec![problem(format!(
                            "workflow id {} is also defined in {}",
                            wf.id,
                            other.display()
                        ))],
                        warnings,
                        strict_only: false,
                    }
                } else {
                    seen.push((wf.id.clone(), file.clone()));
                    ok.push((file.clone(), def, wf.id.clone()));
                    FileReport {
                        file: shown,
                        id: Some(wf.id),
                        valid: true,
                        problems: vec![],
                        warnings,
                        strict_only: false,
                    }
                }
            }
            Ok((Err(issues), _)) => FileReport {
                file: shown,
                id: None,
                valid: false,
                problems: issues
                    .into_iter()
                    .map(|i| crate::api::ErrorDetail {
                        path: i.path,
                        message: i.message,
                    })
                    .collect(),
                warnings: vec![],
                strict_only: false,
            },
        };
        reports.push(report);
    }
    (reports, ok)
}

/// Warnings on stderr, as errors under `--strict`.
fn print_warnings(reports: &[FileReport], strict: bool) {
    let label = if strict { "error" } else { "warning" };
    for r in reports.iter().filter(|r| r.valid || r.strict_only) {
        for d in &r.warnings {
            eprintln!("{}: {label}: {}: {}", r.file, d.dotted_path(), d.message);
        }
    }
}

/// Problems on stderr, each with its path; returns how many there were.
fn print_problems(reports: &[FileReport]) -> usize {
    let mut count = 0;
    for r in reports.iter().filter(|r| !r.valid) {
        count += r.problems.len();
        if r.strict_only {
            continue;
        }
        match r.problems.as_slice() {
            [one] if one.path.is_empty() => eprintln!("{}: {}", r.file, one.message),
            all => {
                eprintln!(
                    "{}: VALIDATION_ERROR: Workflow definition is invalid ({} problem(s))",
                    r.file,
                    all.len()
                );
                for d in all {
                    eprintln!("  {}: {}", d.dotted_path(), d.message);
                }
            }
        }
    }
    count
}

pub fn validate(args: &ValidateArgs, json: bool) -> CmdResult {
    let (reports, _) = check_all(&definition_files(&args.paths)?, args.strict);
    let valid = reports.iter().all(|r| r.valid);
    if json {
        let warnings: usize = reports.iter().map(|r| r.warnings.len()).sum();
        print_json(&serde_json::json!({
            "valid": valid,
            "strict": args.strict,
            "warnings": warnings,
            "files": reports,
        }));
    } else {
        print_warnings(&reports, args.strict);
        print_problems(&reports);
        for r in reports.iter().filter(|r| r.valid) {
            let id = r.id.as_deref().unwrap_or_default();
            match r.warnings.len() {
                0 => eprintln!("{}: ok ({id})", r.file),
                n => eprintln!("{}: ok ({id}), {n} warning(s)", r.file),
            }
        }
    }
    Ok(if valid { Exit::Ok } else { Exit::Usage })
}

/// A batch in call order: a workflow another file's `workflow` step calls is
/// applied before that file, so the server finds it (a cycle keeps the given order).
fn call_order<T>(
    mut left: Vec<(T, serde_json::Value, String)>,
) -> Vec<(T, serde_json::Value, String)> {
    let mut out: Vec<(T, serde_json::Value, String)> = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let ids: Vec<String> = left.iter().map(|(_, _, id)| id.clone()).collect();
        let ready = left.iter().position(|(_, def, id)| {
            crate::workflow::literal_targets(def)
                .iter()
                .all(|(_, target, _)| target == id || !ids.contains(target))
        });
        out.push(left.remove(ready.unwrap_or(0)));
    }
    out
}

/// All or nothing: every file is checked first; one bad file registers none.
pub async fn apply(client: &Client, args: &ApplyArgs, json: bool) -> CmdResult {
    let (reports, ok) = check_all(&definition_files(&args.paths)?, false);
    let problems = print_problems(&reports);
    if problems > 0 {
        return Err(Failure::usage(format!(
            "{problems} problem(s); nothing was applied (fix them, or check with `flowctl validate`)"
        )));
    }
    let mut results = vec![];
    for (file, def, _) in &call_order(ok) {
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
        for w in &applied.warnings {
            eprintln!(
                "warning: {}: {}: {}",
                file.display(),
                w.dotted_path(),
                w.message
            );
        }
        results.push(applied);
    }
    if json {
        print_json(&results);
    }
    Ok(Exit::Ok)
}
