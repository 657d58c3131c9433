//! The run page's part for `loop` and `parallel` steps: a progress bar (from the
//! counters the store keeps while the block waits, or from its output once settled)
//! and a paged table of its item runs (index or branch, status, duration, error),
//! each linking to the item's run; and, on an item's own page, the run it belongs to.

use super::layout::{self, badge, error_line};
use crate::api::StepView;
use crate::store::{RunFilter, RunRow};
use maud::{Markup, html};

/// Item runs per page of a block's table.
const ITEMS_PAGE: usize = 50;

/// The item runs shown under a run's block steps: one page of its body children,
/// newest first from `before` (a `seq` cursor), empty for a run without blocks.
pub async fn item_page(
    store: &crate::store::Store,
    run_id: &str,
    steps: &[StepView],
    before: Option<i64>,
) -> Vec<RunRow> {
    if !steps.iter().any(is_block) {
        return vec![];
    }
    store
        .list_runs(RunFilter {
            parent_run_id: Some(run_id.to_string()),
            before_seq: before,
            limit: ITEMS_PAGE + 1,
            include_children: true,
            ..Default::default()
        })
        .await
        .unwrap_or_default()
}

fn is_block(s: &StepView) -> bool {
    s.step_type == "loop" || s.step_type == "parallel"
}

/// (finished, total, failed) of a block step.
fn counts(s: &StepView) -> Option<(i64, i64, i64)> {
    let n = |v: &serde_json::Value| v.as_i64().unwrap_or(0);
    let p = &s.output["progress"];
    if p.is_object() {
        return Some((
            n(&p["completed"]) + n(&p["failed"]),
            n(&p["total"]),
            n(&p["failed"]),
        ));
    }
    if s.output["count"].is_number() {
        let failed = n(&s.output["failed"]);
        return Some((
            n(&s.output["succeeded"]) + failed,
            n(&s.output["count"]),
            failed,
        ));
    }
    None
}

/// Under a block step: its progress and its items (`items`: one page of the run's body
/// children, possibly of several blocks; `ITEMS_PAGE + 1` rows mean there is more).
pub fn block_section(run_id: &str, s: &StepView, items: &[RunRow]) -> Markup {
    if !is_block(s) {
        return html! {};
    }
    let mine: Vec<&RunRow> = items
        .iter()
        .take(ITEMS_PAGE)
        .filter(|r| r.family.parent_step_id.as_deref() == Some(s.id.as_str()))
        .collect();
    let more = items.len() > ITEMS_PAGE;
    html! {
        @if let Some((done, total, failed)) = counts(s) {
            div.block-progress {
                progress value=(done) max=(total.max(1)) aria-label={ "Progress of " (s.id) } {}
                " " (done) "/" (total) " done, " (failed) " failed"
            }
        }
        @if !mine.is_empty() {
            table.items {
                caption { "Items of " (s.id) " (newest first)" }
                thead { tr { th { "Item" } th { "Status" } th { "Duration" } th { "Error" } } }
                tbody {
                    @for r in &mine {
                        tr {
                            td { a.mono href={ "/ui/runs/" (r.id) } { (r.family.key.as_deref().unwrap_or("?")) } }
                            td { (badge(r.status.as_str())) }
                            td {
                                @if let (Some(a), Some(b)) = (r.started_at, r.completed_at) { (layout::duration(b - a)) } @else { "—" }
                            }
                            td {
                                @if let Some(e) = &r.error {
                                    (layout::clamped(&error_line(&serde_json::to_value(e).unwrap_or_default())))
                                }
                            }
                        }
                    }
                }
            }
            @if more {
                @if let Some(last) = mine.last() {
                    p { a href={ "/ui/runs/" (run_id) "?itemsBefore=" (last.seq) "#step-" (s.id) } { "Older items" } }
                }
            }
        }
    }
}

/// On an item's own page: the run and block it belongs to.
pub fn parent_line(trigger_type: &str, parent: Option<&str>, step: Option<&str>) -> Markup {
    match (trigger_type, parent) {
        ("loop" | "parallel", Some(p)) => html! {
            p.parent-run {
                "Item of " (trigger_type) " " span.mono { (step.unwrap_or("?")) } " in run "
                a.mono href={ "/ui/runs/" (p) "#step-" (step.unwrap_or("")) } { (p) }
            }
        },
        _ => html! {},
    }
}
