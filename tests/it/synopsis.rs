//! The synopses in README.md ("## CLI") and docs/cli.md (its first block)
//! cannot drift from the real commands: read against `flowctl --help` and each
//! command's own help, every command and subcommand is listed, none is
//! invented, and every option named exists.

use crate::common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

/// The names under "Commands:" in a help text (without `help`).
fn commands_in(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(String::from)
        .collect()
}

/// Every `--option` in a help text.
fn options_in(help: &str) -> BTreeSet<String> {
    help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == '=')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_string()
        })
        .collect()
}

/// The real CLI: command → (subcommands, options of the command and its subcommands).
type Real = BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>;

fn real_cli() -> (Real, BTreeSet<String>) {
    let top = help(&[]);
    let global = options_in(&top);
    let mut real = Real::new();
    for cmd in commands_in(&top) {
        let h = help(&[&cmd]);
        let subs: BTreeSet<String> = commands_in(&h).into_iter().collect();
        let mut options = options_in(&h);
        for sub in &subs {
            options.extend(options_in(&help(&[&cmd, sub])));
        }
        real.insert(cmd, (subs, options));
    }
    (real, global)
}

/// Split on `|` outside brackets: the alternatives of a synopsis line.
fn alternatives(text: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (vec![], String::new(), 0i32);
    for c in text.chars() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            '|' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

/// A synopsis: command → (subcommands named, options named).
fn synopsis(block: &str) -> Real {
    // Join continuation lines onto their `flowctl …` line; drop `# comments`.
    let mut entries: Vec<String> = vec![];
    for line in block.lines() {
        let line = line.split(" #").next().unwrap_or("");
        if let Some(rest) = line.strip_prefix("flowctl ") {
            entries.push(rest.to_string());
        } else if let Some(last) = entries.last_mut() {
            last.push(' ');
            last.push_str(line);
        }
    }
    let mut out = Real::new();
    for entry in entries {
        let entry = entry.trim();
        let (cmd, rest) = entry.split_once(char::is_whitespace).unwrap_or((entry, ""));
        let slot = out.entry(cmd.to_string()).or_default();
        for alt in alternatives(rest) {
            let first = alt.split_whitespace().next().unwrap_or("");
            if !first.is_empty() && first.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                slot.0.insert(first.to_string());
            }
        }
        slot.1.extend(options_in(rest));
    }
    out
}

fn first_block_after(text: &str, heading: Option<&str>) -> String {
    let from = heading.map_or(0, |h| text.find(h).expect(h));
    let text = &text[from..];
    let start = text.find("```\n").expect("a code block") + 4;
    let end = start + text[start..].find("```").expect("its end");
    text[start..end].to_string()
}

fn check(name: &str, block: &str) {
    let (real, global) = real_cli();
    let doc = synopsis(block);
    let mut problems = vec![];
    for (cmd, (subs, _)) in &real {
        match doc.get(cmd) {
            None => problems.push(format!("`flowctl {cmd}` is missing")),
            Some((named, _)) => {
                for sub in subs.difference(named) {
                    problems.push(format!("`flowctl {cmd} {sub}` is missing"));
                }
            }
        }
    }
    for (cmd, (named_subs, named_options)) in &doc {
        let Some((subs, options)) = real.get(cmd) else {
            problems.push(format!("`flowctl {cmd}` does not exist"));
            continue;
        };
        for sub in named_subs.difference(subs) {
            problems.push(format!("`flowctl {cmd} {sub}` does not exist"));
        }
        for o in named_options {
            if !options.contains(o) && !global.contains(o) {
                problems.push(format!("`flowctl {cmd}` has no option {o}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the synopsis in {name} drifted from `flowctl --help`:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_readme_synopsis_matches_the_real_commands() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    check("README.md", &first_block_after(&readme, Some("\n## CLI\n")));
}

#[test]
fn the_cli_md_synopsis_matches_the_real_commands() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md")).unwrap();
    check("docs/cli.md", &first_block_after(&doc, None));
}

/// The checker itself catches drift: a missing subcommand, an invented one,
/// and an option that does not exist.
#[test]
fn the_check_notices_drift() {
    let (real, _) = real_cli();
    let doc = synopsis(
        "flowctl runs list [--bogus-flag] | show RUN_ID | frobnicate\n\
         flowctl keys create --name N\n                  | list",
    );
    let runs = &doc["runs"];
    assert!(runs.0.contains("frobnicate") && !real["runs"].0.contains("frobnicate"));
    assert!(real["runs"].0.contains("cancel") && !runs.0.contains("cancel"));
    assert!(runs.1.contains("--bogus-flag") && !real["runs"].1.contains("--bogus-flag"));
    assert_eq!(
        doc["keys"].0,
        ["create", "list"].map(String::from).into_iter().collect()
    );
}
