//! The schedule loop on a real SQLite store with an injected clock: the
//! index is built once, an idle look reads nothing, a due occurrence fires
//! once, and a pause or an apply (through the catalog's change signal)
//! reaches the index.

use super::runner::Scheduler;
use crate::catalog::Catalog;
use crate::events::Events;
use crate::store::{RunFilter, Store, WorkflowApply};
use crate::trigger::Triggers;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A whole second, so interval occurrences fall on round times.
const T0: i64 = 1_800_000_000_000;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    catalog: Catalog,
    clock: Arc<AtomicI64>,
    scheduler: Scheduler,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("t.db")).expect("store");
    let catalog = Catalog::new(store.clone());
    let clock = Arc::new(AtomicI64::new(T0));
    let now = clock.clone();
    let triggers = Triggers {
        store: store.clone(),
        catalog: catalog.clone(),
        events: Events::default(),
    };
    let scheduler = Scheduler::with_clock(triggers, Arc::new(move || now.load(Ordering::SeqCst)));
    Fixture {
        _dir: dir,
        store,
        catalog,
        clock,
        scheduler,
    }
}

async fn apply_every(f: &Fixture, id: &str, seconds: u64) {
    f.store
        .apply_workflow(WorkflowApply {
            id: id.into(),
            name: id.into(),
            definition: json!({"id": id, "name": id,
                "trigger": {"type": "schedule", "interval": {"value": seconds, "unit": "seconds"}},
                "steps": [{"id": "t", "type": "transform", "config": {"mapping": {"a": 1}}}]}),
            status: None,
            concurrency: None,
        })
        .await
        .expect("apply");
    f.catalog.forget_head(id);
}

async fn runs_of(f: &Fixture, id: &str) -> usize {
    f.store
        .list_runs(RunFilter {
            workflow_id: Some(id.into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("runs")
        .len()
}

#[tokio::test]
async fn a_due_occurrence_fires_once_and_the_index_says_when_to_look_again() {
    let mut f = fixture();
    apply_every(&f, "wf_ten", 10).await;
    let next = f.scheduler.step(T0 + 1).await.expect("tick");
    assert_eq!(next, T0 + 10_000, "sleeps until the occurrence");
    assert_eq!(runs_of(&f, "wf_ten").await, 0);
    // Not yet due: nothing fires.
    let next = f.scheduler.step(T0 + 9_000).await.expect("tick");
    assert_eq!(next, T0 + 10_000);
    assert_eq!(runs_of(&f, "wf_ten").await, 0);
    f.clock.store(T0 + 10_005, Ordering::SeqCst);
    let next = f.scheduler.step(T0 + 10_005).await.expect("tick");
    assert_eq!(next, T0 + 20_000, "the next occurrence");
    assert_eq!(runs_of(&f, "wf_ten").await, 1);
    // Looking again at the same time fires nothing more.
    f.scheduler.step(T0 + 10_006).await.expect("tick");
    assert_eq!(runs_of(&f, "wf_ten").await, 1);
}

#[tokio::test]
async fn a_pause_reaches_the_index_and_nothing_fires() {
    let mut f = fixture();
    apply_every(&f, "wf_paused", 2).await;
    f.scheduler.step(T0 + 1).await.expect("tick");
    let changes = f.catalog.changes();
    f.store
        .set_workflow_status("wf_paused".into(), crate::workflow::WorkflowStatus::Paused)
        .await
        .expect("pause");
    f.catalog.forget_head("wf_paused");
    assert!(
        changes.has_changed().expect("sender alive"),
        "the loop is woken"
    );
    f.scheduler.workflows_changed();
    let next = f.scheduler.step(T0 + 2_500).await.expect("tick");
    assert_eq!(runs_of(&f, "wf_paused").await, 0);
    assert!(next > T0 + 2_500, "nothing due any more");
    assert!(f.store.list_schedules().await.expect("rows").is_empty());
}

#[tokio::test]
async fn changes_made_here_refresh_only_their_workflow_between_rebuilds() {
    let mut f = fixture();
    apply_every(&f, "wf_first", 10).await;
    f.scheduler.step(T0 + 1).await.expect("tick");
    // Applied 100 ms later (inside the rebuild gap): found by the change
    // log, not by a rebuild.
    apply_every(&f, "wf_second", 2).await;
    let next = f.scheduler.step(T0 + 100).await.expect("tick");
    assert_eq!(next, T0 + 2_000, "the new schedule is indexed at once");
    f.clock.store(T0 + 2_001, Ordering::SeqCst);
    f.scheduler.step(T0 + 2_001).await.expect("tick");
    assert_eq!(runs_of(&f, "wf_second").await, 1);
    // A pause made here reaches the index the same way.
    f.store
        .set_workflow_status("wf_second".into(), crate::workflow::WorkflowStatus::Paused)
        .await
        .expect("pause");
    f.catalog.forget_head("wf_second");
    let next = f.scheduler.step(T0 + 2_100).await.expect("tick");
    assert_eq!(next, T0 + 10_000, "only wf_first is left");
    f.scheduler.step(T0 + 4_100).await.expect("tick");
    assert_eq!(
        runs_of(&f, "wf_second").await,
        1,
        "a paused schedule fires nothing"
    );
    let rows = f.store.list_schedules().await.expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].workflow_id, "wf_first");
}

#[test]
fn the_change_log_names_each_changed_workflow_once_or_says_it_is_too_old() {
    let dir = tempfile::tempdir().expect("temp dir");
    let catalog = Catalog::new(Store::open(&dir.path().join("t.db")).expect("store"));
    catalog.forget_head("a");
    catalog.forget_head("b");
    catalog.forget_head("a");
    assert_eq!(catalog.change_count(), 3);
    assert_eq!(catalog.changed_since(1), Some(vec!["b".into(), "a".into()]));
    assert_eq!(catalog.changed_since(3), Some(vec![]));
    for i in 0..2000 {
        catalog.forget_head(&format!("w{i}"));
    }
    assert_eq!(
        catalog.changed_since(3),
        None,
        "the log no longer reaches back"
    );
    assert_eq!(
        catalog
            .changed_since(catalog.change_count() - 2)
            .map(|v| v.len()),
        Some(2)
    );
}
