//! The repository documents itself: every filter, step type, action, error
//! code, endpoint, command and option of the code appears in `docs/`, the
//! README links every page, and no tracked file points outside the repository.

use crate::common::*;
use clap::CommandFactory;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn doc(name: &str) -> String {
    let path = Path::new(ROOT).join("docs").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn missing<'a>(text: &str, names: impl IntoIterator<Item = &'a str>, quote: bool) -> Vec<String> {
    names
        .into_iter()
        .filter(|n| {
            let needle = if quote {
                format!("`{n}")
            } else {
                n.to_string()
            };
            !text.contains(&needle)
        })
        .map(String::from)
        .collect()
}

#[test]
fn every_filter_is_in_templates_md() {
    let names: Vec<&str> = flowctl::template::filter_names().collect();
    assert!(names.len() > 30, "{names:?}");
    let gaps = missing(&doc("templates.md"), names, true);
    assert!(
        gaps.is_empty(),
        "filters missing from docs/templates.md: {gaps:?}"
    );
}

#[test]
fn every_step_type_and_action_is_in_workflows_md() {
    let text = doc("workflows.md");
    let mut names = vec!["transform", "action", "email", "wait"];
    names.extend(
        flowctl::actions::ActionKind::known_actions()
            .iter()
            .copied(),
    );
    names.extend(flowctl::workflow::fields::DEFINITION.iter().copied());
    names.extend(flowctl::workflow::fields::STEP.iter().copied());
    names.extend(flowctl::workflow::fields::RETRY_CONFIG.iter().copied());
    let gaps = missing(&text, names, true);
    assert!(gaps.is_empty(), "missing from docs/workflows.md: {gaps:?}");
}

/// Error codes as the code writes them: the API's `codes` and the run and
/// action error codes (`ActionError::new("X"`, `"code": "X"`).
fn error_codes() -> BTreeSet<String> {
    fn token_after(text: &str, marker: &str, out: &mut BTreeSet<String>) {
        for (i, _) in text.match_indices(marker) {
            let rest = text[i + marker.len()..].trim_start();
            let Some(rest) = rest.strip_prefix('"') else {
                continue;
            };
            let token: String = rest
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            if token.len() > 2 && rest[token.len()..].starts_with('"') {
                out.insert(token);
            }
        }
    }
    fn walk(dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                // Unit tests at the end of a file may use made-up codes.
                let text = text.split("#[cfg(test)]").next().unwrap_or_default();
                token_after(text, "ActionError::new(", out);
                token_after(text, "\"code\":", out);
                if p.ends_with("api.rs") {
                    token_after(text, ": &str =", out);
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(&Path::new(ROOT).join("src"), &mut out);
    out
}

#[test]
fn every_error_code_is_documented() {
    let codes = error_codes();
    assert!(
        codes.contains("VALIDATION_ERROR") && codes.contains("STEP_ERROR"),
        "{codes:?}"
    );
    let text = doc("api.md") + &doc("workflows.md");
    let gaps = missing(&text, codes.iter().map(String::as_str), true);
    assert!(
        gaps.is_empty(),
        "error codes missing from docs/api.md and docs/workflows.md: {gaps:?}"
    );
}

#[test]
fn every_command_and_option_is_in_cli_md() {
    fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long()
                && long != "help"
                && long != "version"
            {
                out.push(format!("--{long}"));
            }
        }
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = format!("{path} {}", sub.get_name()).trim().to_string();
            out.push(name.clone());
            walk(sub, &name, out);
        }
    }
    let mut names = vec![];
    walk(&flowctl::cli::Cli::command(), "", &mut names);
    names.sort();
    names.dedup();
    assert!(names.iter().any(|n| n == "runs list"), "{names:?}");
    let text = doc("cli.md");
    let gaps = missing(&text, names.iter().map(String::as_str), false);
    assert!(gaps.is_empty(), "missing from docs/cli.md: {gaps:?}");
    for code in ["| 0 |", "| 1 |", "| 2 |", "| 3 |", "| 124 |"] {
        assert!(
            text.contains(code),
            "exit code {code} missing from docs/cli.md"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_endpoint_is_in_api_md() {
    let s = Server::start();
    let (status, openapi) = s.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    let text = doc("api.md");
    let mut gaps = vec![];
    for (path, ops) in openapi["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                let route = format!("{} {path}", method.to_uppercase());
                if !text.contains(&route) {
                    gaps.push(route);
                }
            }
        }
    }
    assert!(
        gaps.is_empty(),
        "endpoints missing from docs/api.md: {gaps:?}"
    );
    for scope in flowctl::scope::Scope::ALL {
        assert!(
            text.contains(&format!("`{scope}`")),
            "scope {scope} missing from docs/api.md"
        );
    }
}

#[test]
fn the_readme_links_every_page_of_docs() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    for page in std::fs::read_dir(Path::new(ROOT).join("docs")).unwrap() {
        let name = page.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            readme.contains(&format!("docs/{name}")),
            "README does not link docs/{name}"
        );
    }
}

/// Tracked files, from git when this is a checkout, else every file but target/.
fn tracked_files() -> Vec<PathBuf> {
    let out = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(ROOT)
        .output();
    if let Ok(o) = out
        && o.status.success()
        && !o.stdout.is_empty()
    {
        return o
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| Path::new(ROOT).join(String::from_utf8_lossy(p).as_ref()))
            .collect();
    }
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name();
            if name == "target" || name == ".git" {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = vec![];
    walk(Path::new(ROOT), &mut out);
    out
}

#[test]
fn nothing_tracked_points_outside_the_repository() {
    // Spelled in pieces so that this file does not match itself.
    let outside = [
        concat!("..", "/shared"),
        concat!("/work", "/shared"),
        concat!("SPEC", " §"),
        concat!("SPEC", ".md"),
        concat!("DESIGN", ".md"),
    ];
    let mut hits = vec![];
    for file in tracked_files() {
        let rel = file.strip_prefix(ROOT).unwrap_or(&file).to_path_buf();
        // CI may use the shared conformance cases beside the checkout, and must pass without them.
        if rel == Path::new(".ci/run") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue; // binary or unreadable
        };
        for (n, line) in text.lines().enumerate() {
            if let Some(p) = outside.iter().find(|p| line.contains(*p)) {
                hits.push(format!("{}:{}: {p}", rel.display(), n + 1));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "tracked files point outside the repository:\n{}",
        hits.join("\n")
    );
}

#[test]
fn panicking_methods_are_banned_by_clippy() {
    let clippy = std::fs::read_to_string(Path::new(ROOT).join("clippy.toml")).unwrap();
    for banned in [
        "std::time::Duration::from_secs_f64",
        "std::time::Duration::mul_f64",
    ] {
        assert!(clippy.contains(banned), "{banned} is not in clippy.toml");
    }
    let cargo = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap();
    assert!(cargo.contains("[lints.clippy]") && cargo.contains("disallowed_methods = \"deny\""));
}
