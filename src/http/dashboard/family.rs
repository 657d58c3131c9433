//! A run's child runs on its page: the tree under it (a `workflow` step's
//! sub-workflow run, and that run's own children), each a link with its
//! workflow, status and the parent step that started it.

use super::layout::badge;
use crate::store::{Result as StoreResult, RunFilter, RunRow, Store};
use maud::{Markup, html};
use std::collections::{HashMap, VecDeque};

/// At most this many runs are drawn under one run (the page refreshes every
/// second while a run is in flight, one indexed query per run in the tree).
pub const TREE_LIMIT: usize = 200;

#[derive(Default)]
pub struct Tree {
    /// Each run's children, in the order they started.
    children: HashMap<String, Vec<RunRow>>,
    pub truncated: bool,
}

impl Tree {
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// The child runs a step of `parent` started, oldest first.
    pub fn started_by<'a>(
        &'a self,
        parent: &str,
        step: &'a str,
    ) -> impl Iterator<Item = &'a RunRow> {
        self.children
            .get(parent)
            .into_iter()
            .flatten()
            .filter(move |r| r.family.parent_step_id.as_deref() == Some(step))
    }
}

/// The runs under `root` (breadth first); no query when it has no children.
pub async fn fetch(store: &Store, root: &RunRow) -> StoreResult<Tree> {
    let mut tree = Tree::default();
    if root.family.children.is_none_or(|c| c.total == 0) {
        return Ok(tree);
    }
    let mut queue = VecDeque::from([root.id.clone()]);
    let mut seen = 0;
    while let Some(parent) = queue.pop_front() {
        let room = TREE_LIMIT - seen;
        let mut kids = store
            .list_runs(RunFilter {
                parent_run_id: Some(parent.clone()),
                limit: room + 1,
                ..RunFilter::default()
            })
            .await?;
        if kids.len() > room {
            kids.truncate(room);
            tree.truncated = true;
        }
        seen += kids.len();
        // Lists are newest first; a tree reads in the order the children started.
        kids.reverse();
        queue.extend(kids.iter().map(|k| k.id.clone()));
        if !kids.is_empty() {
            tree.children.insert(parent, kids);
        }
        if seen == TREE_LIMIT {
            tree.truncated |= !queue.is_empty();
            break;
        }
    }
    Ok(tree)
}

pub fn render(tree: &Tree, root: &str) -> Markup {
    html! {
        (level(tree, root))
        @if tree.truncated {
            p.notice role="status" {
                "Only the first " (TREE_LIMIT) " child runs are shown; "
                a href={ "/api/v1/runs?parentRunId=" (root) } { "the API lists them all" } "."
            }
        }
    }
}

fn level(tree: &Tree, parent: &str) -> Markup {
    html! {
        @if let Some(kids) = tree.children.get(parent) {
            ul.run-tree {
                @for k in kids {
                    li {
                        a.mono href={ "/ui/runs/" (k.id) } { (k.id) }
                        " " (k.workflow_id) span.muted { " v" (k.workflow_version) }
                        " " (badge(k.status.as_str()))
                        @if let Some(step) = &k.family.parent_step_id {
                            span.muted { " from step " (step) }
                        }
                        (level(tree, &k.id))
                    }
                }
            }
        }
    }
}
