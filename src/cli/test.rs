//! `flowctl test`: test files run offline through the in-memory runner
//! (`crate::testing`); this file finds and reads the files, prints one line
//! per case, and with `--update` writes the actual results back.

use super::apply::{is_definition_name, read_definition};
use super::{CmdResult, Exit, Failure, print_json};
use crate::testing::{self, Library, TestFile, Verdict};
use crate::workflow::{CompiledWorkflow, compile};
use clap::Args;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Test files (*.test.json), or folders searched for them; definitions in the same folders can be called by `workflow` steps
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Write the actual results into the files as the new expectations (review them with `git diff`)
    #[arg(long)]
    pub update: bool,
}

/// The definitions found beside the tests, compiled once.
#[derive(Default)]
struct Pool {
    files: Vec<(PathBuf, Result<CompiledWorkflow, String>)>,
}

impl Pool {
    fn add_file(&mut self, path: &Path) -> usize {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(i) = self.files.iter().position(|(p, _)| *p == key) {
            return i;
        }
        let compiled = read_definition(path).and_then(|def| {
            compile(&def).map_err(|issues| {
                let lines: Vec<String> = issues
                    .into_iter()
                    .map(|i| {
                        let d = crate::api::ErrorDetail {
                            path: i.path,
                            message: i.message,
                        };
                        format!("{}: {}", d.dotted_path(), d.message)
                    })
                    .collect();
                format!("the definition is invalid: {}", lines.join("; "))
            })
        });
        self.files.push((key, compiled));
        self.files.len() - 1
    }

    /// Every definition directly in `dir` (not below it).
    fn add_dir(&mut self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if p.is_file() && is_definition_name(name) {
                self.add_file(&p);
            }
        }
    }

    fn by_id(&self, id: &str) -> Option<usize> {
        self.files
            .iter()
            .position(|(_, c)| c.as_ref().is_ok_and(|w| w.id == id))
    }

    fn library(&self) -> Library<'_> {
        let mut lib = Library::default();
        for wf in self.files.iter().filter_map(|(_, c)| c.as_ref().ok()) {
            lib.add(wf);
        }
        lib
    }
}

fn is_test_name(name: &str) -> bool {
    name.ends_with(".test.json")
}

fn collect_tests(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    dirs: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    dirs.push(dir.to_path_buf());
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if p.is_dir() {
            collect_tests(&p, out, dirs)?;
        } else if is_test_name(name) {
            out.push(p);
        }
    }
    Ok(())
}

/// One case's line of the report, and its JSON.
struct Line {
    file: String,
    workflow: Option<String>,
    name: String,
    verdict: Verdict,
    differences: Vec<testing::diff::Difference>,
    error: Option<String>,
    outcome: Option<testing::Outcome>,
    updated: bool,
}

impl Line {
    fn file_error(file: &str, error: String) -> Line {
        Line {
            file: file.into(),
            workflow: None,
            name: String::new(),
            verdict: Verdict::Error,
            differences: vec![],
            error: Some(error),
            outcome: None,
            updated: false,
        }
    }

    fn print(&self) {
        let label = match (&self.verdict, self.updated) {
            (_, true) => "updated",
            (Verdict::Passed, _) => "ok",
            (Verdict::Failed, _) => "FAIL",
            (Verdict::Error, _) => "ERROR",
        };
        let what = if self.name.is_empty() {
            self.file.clone()
        } else {
            format!("{} › {}", self.file, self.name)
        };
        match &self.error {
            Some(e) => println!("{label:<7} {what}: {e}"),
            None => println!("{label:<7} {what}"),
        }
        if !self.updated {
            for d in &self.differences {
                println!("          {}", d.line("expected", "got"));
            }
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "file": self.file,
            "workflow": self.workflow,
            "name": self.name,
            "verdict": self.verdict,
            "updated": self.updated,
            "differences": self.differences,
            "error": self.error,
            "actual": self.outcome,
        })
    }
}

pub fn test(args: &TestArgs, json: bool) -> CmdResult {
    let mut tests = vec![];
    let mut pool = Pool::default();
    for p in &args.paths {
        if p.is_dir() {
            let before = tests.len();
            let mut dirs = vec![];
            collect_tests(p, &mut tests, &mut dirs)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", p.display())))?;
            if tests.len() == before {
                return Err(Failure::usage(format!(
                    "{}: no *.test.json files in this folder (a test file sits beside its definition: order.json, order.test.json)",
                    p.display()
                )));
            }
            for d in dirs {
                pool.add_dir(&d);
            }
        } else if p.is_file() {
            tests.push(p.clone());
        } else {
            return Err(Failure::usage(format!(
                "{}: no such file or folder",
                p.display()
            )));
        }
    }
    for t in &tests {
        pool.add_dir(
            t.parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
        );
    }
    let mut lines = vec![];
    for t in &tests {
        lines.extend(run_file(t, &mut pool, args.update));
    }
    let passed = lines
        .iter()
        .filter(|l| l.verdict == Verdict::Passed || l.updated)
        .count();
    let failed = lines.len() - passed;
    let updated = lines.iter().filter(|l| l.updated).count();
    if json {
        print_json(&json!({
            "passed": passed,
            "failed": failed,
            "updated": updated,
            "cases": lines.iter().map(Line::to_json).collect::<Vec<_>>(),
        }));
    } else {
        for l in &lines {
            l.print();
        }
        println!();
        if args.update {
            println!("{passed} passed, {failed} failed ({updated} updated)");
        } else {
            println!("{passed} passed, {failed} failed");
        }
    }
    Ok(if failed == 0 {
        Exit::Ok
    } else {
        Exit::RunFailed
    })
}

/// Run every case of one test file (and rewrite it with `--update`).
fn run_file(path: &Path, pool: &mut Pool, update: bool) -> Vec<Line> {
    let shown = path.display().to_string();
    let raw: Value = match std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read: {e}"))
        .and_then(|t| serde_json::from_str(&t).map_err(|e| format!("not valid JSON: {e}")))
    {
        Ok(v) => v,
        Err(e) => return vec![Line::file_error(&shown, e)],
    };
    if raw.get("steps").is_some() && raw.get("cases").is_none() {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let stem = name.strip_suffix(".json").unwrap_or(name);
        return vec![Line::file_error(
            &shown,
            format!(
                "this is a workflow definition, not a test file; its cases go in {stem}.test.json beside it"
            ),
        )];
    }
    let file: TestFile = match serde_json::from_value(raw.clone()) {
        Ok(f) => f,
        Err(e) => {
            return vec![Line::file_error(
                &shown,
                format!(
                    "not a test file ({{\"workflow\", \"cases\": [{{\"name\", \"input\", \"mocks\", \"expect\"}}]}}): {e}"
                ),
            )];
        }
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let index = match &file.workflow {
        Some(w) if w.starts_with("wf_") && !w.contains('/') && !w.ends_with(".json") => {
            match pool.by_id(w) {
                Some(i) => i,
                None => {
                    return vec![Line::file_error(
                        &shown,
                        format!(
                            "no definition of {w} in {} or the folders given",
                            dir.display()
                        ),
                    )];
                }
            }
        }
        Some(rel) => {
            let p = dir.join(rel);
            if !p.is_file() {
                return vec![Line::file_error(
                    &shown,
                    format!("workflow {}: no such file", p.display()),
                )];
            }
            pool.add_file(&p)
        }
        None => {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let sibling = dir.join(format!("{}.json", name.trim_end_matches(".test.json")));
            if !sibling.is_file() {
                return vec![Line::file_error(
                    &shown,
                    format!(
                        "no \"workflow\" field and no definition beside it ({}); name one: \"workflow\": \"wf_x\" or a path",
                        sibling.display()
                    ),
                )];
            }
            pool.add_file(&sibling)
        }
    };
    let wf = match &pool.files[index].1 {
        Ok(wf) => wf.clone(),
        Err(e) => {
            return vec![Line::file_error(
                &shown,
                format!("{}: {e}", pool.files[index].0.display()),
            )];
        }
    };
    let library = pool.library();
    let mut lines = vec![];
    let mut new_raw = raw.clone();
    let mut changed = false;
    for (i, case) in file.cases.iter().enumerate() {
        let r = testing::run_case(&wf, case, &library);
        let mut updated = false;
        if update
            && r.verdict == Verdict::Failed
            && let Some(outcome) = &r.outcome
        {
            let old = raw["cases"][i].get("expect").cloned().unwrap_or(json!({}));
            new_raw["cases"][i]["expect"] = testing::updated_expect(&old, outcome);
            changed = true;
            updated = true;
        }
        lines.push(Line {
            file: shown.clone(),
            workflow: Some(wf.id.clone()),
            name: r.name,
            verdict: r.verdict,
            differences: r.differences,
            error: r.error,
            outcome: r.outcome,
            updated,
        });
    }
    if changed {
        let text = serde_json::to_string_pretty(&new_raw).unwrap_or_default() + "\n";
        if let Err(e) = std::fs::write(path, text) {
            return vec![Line::file_error(&shown, format!("cannot write: {e}"))];
        }
    }
    lines
}
