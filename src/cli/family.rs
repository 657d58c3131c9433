//! A run's place among child runs, for people (`flowctl runs show`, `run --wait`,
//! `wait`): its parent and root, and the tree of its child runs with their workflow and
//! status. Printed on stderr, beside the JSON result, never in it.

use crate::api::RunView;
use crate::client::{Client, RunFilter};
use std::collections::HashMap;

/// At most this many runs are listed under one run; the rest is counted and
/// `flowctl runs list --parent ID` shows them.
pub const TREE_LIMIT: usize = 200;

/// The runs under one run, fetched breadth first with `GET /api/v1/runs?parentRunId=`.
#[derive(Debug, Default)]
pub struct Tree {
    /// Each run's children, oldest first.
    pub children: HashMap<String, Vec<RunView>>,
    /// The listing stopped at `TREE_LIMIT` runs.
    pub truncated: bool,
}

fn has_children(run: &RunView) -> bool {
    run.children
        .as_ref()
        .and_then(|c| c.get("total"))
        .and_then(|t| t.as_i64())
        .is_some_and(|t| t > 0)
}

/// The tree under `run`; `None` when the key may not list runs (the counts on the run
/// are shown instead). A run without children costs no request.
pub async fn fetch(client: &Client, run: &RunView) -> Option<Tree> {
    let mut tree = Tree::default();
    if !has_children(run) {
        return Some(tree);
    }
    let mut queue = std::collections::VecDeque::from([run.id.clone()]);
    let mut seen = 0usize;
    while let Some(parent) = queue.pop_front() {
        let mut kids = vec![];
        let mut filter = RunFilter {
            parent_run_id: Some(parent.clone()),
            limit: Some(100),
            ..RunFilter::default()
        };
        loop {
            let page = client.runs(&filter).await.ok()?;
            let more = page.meta.as_ref().and_then(|m| m.cursor.clone());
            for kid in page.data {
                if seen == TREE_LIMIT {
                    tree.truncated = true;
                    break;
                }
                seen += 1;
                queue.push_back(kid.id.clone());
                kids.push(kid);
            }
            match more {
                Some(c) if !tree.truncated => filter.cursor = Some(c),
                _ => break,
            }
        }
        // Lists are newest first; a tree reads in the order the children started.
        kids.reverse();
        if !kids.is_empty() {
            tree.children.insert(parent, kids);
        }
        if tree.truncated {
            break;
        }
    }
    Some(tree)
}

fn describe(run: &RunView) -> String {
    let mut line = format!("{} {} {}", run.id, run.workflow_id, run.status);
    if let Some(step) = &run.parent_step_id {
        line.push_str(&format!(" (step {step})"));
    }
    line
}

/// `parent: run_… (step call)`, `root: run_…` and the tree under the run:
///
/// ```text
/// run_a wf_invoice completed
/// └─ run_b wf_send_invoice completed (step send)
/// ```
///
/// Without a tree (the key may not list runs) the run's own counts stand in.
pub fn lines(run: &RunView, tree: Option<&Tree>) -> Vec<String> {
    let mut out = vec![];
    if let Some(parent) = &run.parent_run_id {
        match &run.parent_step_id {
            Some(step) => out.push(format!("parent: {parent} (step {step})")),
            None => out.push(format!("parent: {parent}")),
        }
        if !run.root_run_id.is_empty() && &run.root_run_id != parent {
            out.push(format!("root: {} (depth {})", run.root_run_id, run.depth));
        }
    }
    match tree {
        Some(tree) if !tree.children.is_empty() => {
            out.push(format!("{} {} {}", run.id, run.workflow_id, run.status));
            walk(tree, &run.id, "", &mut out);
            if tree.truncated {
                out.push(format!(
                    "… more child runs than the {TREE_LIMIT} shown: `flowctl runs list --parent ID` lists a run's children"
                ));
            }
        }
        Some(_) => {}
        None => {
            if let Some(c) = run.children.as_ref().filter(|_| has_children(run)) {
                let n = |k: &str| c.get(k).and_then(|v| v.as_i64()).unwrap_or(0);
                out.push(format!(
                    "children: {} ({} completed, {} failed, {} running); `flowctl runs list --parent {}` lists them",
                    n("total"),
                    n("completed"),
                    n("failed"),
                    n("running"),
                    run.id
                ));
            }
        }
    }
    out
}

fn walk(tree: &Tree, id: &str, indent: &str, out: &mut Vec<String>) {
    let Some(kids) = tree.children.get(id) else {
        return;
    };
    for (i, kid) in kids.iter().enumerate() {
        let last = i + 1 == kids.len();
        out.push(format!(
            "{indent}{}{}",
            if last { "└─ " } else { "├─ " },
            describe(kid)
        ));
        let deeper = format!("{indent}{}", if last { "   " } else { "│  " });
        walk(tree, &kid.id, &deeper, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn run(id: &str, wf: &str, parent: Option<(&str, &str)>) -> RunView {
        RunView {
            id: id.into(),
            status: "completed".into(),
            workflow_id: wf.into(),
            workflow_version: 1,
            input: json!({}),
            output: Value::Null,
            error: Value::Null,
            idempotency_key: None,
            connection_id: None,
            trigger_type: "api".into(),
            created_at: String::new(),
            started_at: None,
            completed_at: None,
            duration_ms: None,
            parent_run_id: parent.map(|p| p.0.into()),
            parent_step_id: parent.map(|p| p.1.into()),
            key: None,
            root_run_id: "run_root".into(),
            depth: 0,
            redrive_count: 0,
            children: None,
            steps: vec![],
        }
    }

    #[test]
    fn a_tree_draws_branches_and_the_last_child_closes_them() {
        let mut tree = Tree::default();
        tree.children.insert(
            "run_root".into(),
            vec![
                run("run_a", "wf_a", Some(("run_root", "one"))),
                run("run_b", "wf_b", Some(("run_root", "two"))),
            ],
        );
        tree.children.insert(
            "run_a".into(),
            vec![run("run_c", "wf_c", Some(("run_a", "deep")))],
        );
        let root = run("run_root", "wf_root", None);
        assert_eq!(
            lines(&root, Some(&tree)),
            [
                "run_root wf_root completed",
                "├─ run_a wf_a completed (step one)",
                "│  └─ run_c wf_c completed (step deep)",
                "└─ run_b wf_b completed (step two)",
            ]
        );
    }

    #[test]
    fn a_child_names_its_parent_and_a_grandchild_its_root() {
        let mut child = run("run_c", "wf_c", Some(("run_a", "deep")));
        child.depth = 2;
        assert_eq!(
            lines(&child, Some(&Tree::default())),
            ["parent: run_a (step deep)", "root: run_root (depth 2)"]
        );
        let mut kid = run("run_a", "wf_a", Some(("run_root", "one")));
        kid.depth = 1;
        kid.children = Some(json!({"total": 3, "completed": 1, "failed": 1, "running": 1}));
        assert_eq!(
            lines(&kid, None),
            [
                "parent: run_root (step one)",
                "children: 3 (1 completed, 1 failed, 1 running); `flowctl runs list --parent run_a` lists them",
            ]
        );
    }
}
