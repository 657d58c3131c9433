//! The ports' contract, written once against `Store` and run on both stores:
//! SQLite always, PostgreSQL with `FLOWCTL_TEST_PG_URL` (skipped locally
//! without it, failing under CI). Claims and fencing, leases and the sweep,
//! cancel of held and unheld runs, idempotent create, `concurrency` caps,
//! apply and versioning, a schedule's occurrence claimed exactly once, the
//! dashboard's queries, and child runs (created once per parent, step and
//! key; a child's finish recorded on its waiting parent, which it queues, in
//! one commit; cancel reaching every descendant; redrive). A rule both stores follow belongs here; a test of one
//! store's mechanics (group commit, upgrades) stays beside that store.

use super::decisions::ApplyResult;
use super::*;
use crate::engine::{RunError, RunStatus, StepRecord, StepStatus};
use crate::workflow::WorkflowStatus;
use serde_json::{Value, json};

async fn workflow(s: &Store, id: &str, concurrency: Option<u32>) {
    let out = s
        .apply_workflow(WorkflowApply {
            id: id.into(),
            name: id.into(),
            definition: json!({"id": id, "steps": [{"id": "a"}]}),
            status: None,
            concurrency,
        })
        .await
        .unwrap();
    assert_eq!(out.result, ApplyResult::Created);
}

fn new_run(wf: &str) -> NewRun {
    NewRun {
        id: crate::ids::run_id(),
        workflow_id: wf.into(),
        workflow_version: 1,
        input: json!({"n": 1}),
        idempotency_key: None,
        connection_id: None,
        trigger_type: TriggerType::Api,
        scheduled_at: None,
        delay_ms: 0,
        idempotency_ttl_ms: 60_000,
    }
}

async fn run(s: &Store, wf: &str) -> RunRow {
    match s.create_run(new_run(wf)).await.unwrap() {
        TriggerOutcome::Created(r) => r,
        TriggerOutcome::Replayed(r) => panic!("a new run was replayed: {}", r.id),
    }
}

fn step(status: StepStatus) -> StepRecord {
    StepRecord {
        status,
        attempts: 1,
        started_at: Some(1),
        ..StepRecord::blank(0, "a")
    }
}

/// The step `a` running (or parked until `park_until`).
fn progress(status: RunStatus, step_status: StepStatus, park_until: Option<i64>) -> RunWrite {
    RunWrite {
        spawn: None,
        suspend: false,
        status,
        started_at: Some(crate::time::now_ms()),
        completed_at: status.is_terminal().then(crate::time::now_ms),
        output: Value::Null,
        error: (status == RunStatus::Cancelled).then(RunError::cancelled),
        park_until,
        steps: vec![step(step_status)],
    }
}

async fn claim_one(s: &Store, owner: &str) -> Claim {
    let mut claims = s.claim(owner, 10, 30_000).await.unwrap();
    assert_eq!(claims.len(), 1, "{owner} claims exactly one run");
    claims.remove(0)
}

async fn claims_fence_every_write(s: Store) {
    workflow(&s, "wf", None).await;
    let r = run(&s, "wf").await;
    let a = claim_one(&s, "node_a").await;
    assert_eq!(a.run.id, r.id);
    assert!(s.claim("node_b", 10, 30_000).await.unwrap().is_empty());
    let stale = ClaimRef {
        seq: a.run.seq,
        token: a.token - 1,
    };
    let w = progress(RunStatus::Running, StepStatus::Running, None);
    assert_eq!(
        s.commit(stale, w.clone()).await.unwrap(),
        CommitOutcome::LeaseLost
    );
    assert_eq!(s.commit(a.key(), w).await.unwrap(), CommitOutcome::Saved);
    let hb = s.heartbeat("node_a", vec![a.key()], 30_000).await.unwrap();
    assert!(hb.lost.is_empty() && hb.cancelled.is_empty(), "{hb:?}");
    let done = progress(RunStatus::Completed, StepStatus::Completed, None);
    assert_eq!(s.commit(a.key(), done).await.unwrap(), CommitOutcome::Saved);
    let row = s.get_run(r.id.clone()).await.unwrap();
    assert_eq!(row.status, RunStatus::Completed);
    assert_eq!(row.steps[0].status, StepStatus::Completed);
    // A finished run takes no more writes, from anyone.
    let again = progress(RunStatus::Running, StepStatus::Running, None);
    assert_eq!(
        s.commit(a.key(), again).await.unwrap(),
        CommitOutcome::LeaseLost
    );
    assert_eq!(s.next_due().await.unwrap(), None);
}

async fn an_expired_lease_is_swept_and_its_holder_fenced_out(s: Store) {
    workflow(&s, "wf", None).await;
    run(&s, "wf").await;
    let a = s.claim("node_a", 10, -1_000).await.unwrap().remove(0);
    assert_eq!(s.sweep_expired().await.unwrap(), 1);
    let b = claim_one(&s, "node_b").await;
    assert!(
        b.token > a.token,
        "a claim after the sweep has a newer token"
    );
    let w = progress(RunStatus::Running, StepStatus::Running, None);
    assert_eq!(
        s.commit(a.key(), w.clone()).await.unwrap(),
        CommitOutcome::LeaseLost
    );
    let hb = s.heartbeat("node_a", vec![a.key()], 30_000).await.unwrap();
    assert_eq!(hb.lost, vec![a.key()]);
    assert_eq!(s.commit(b.key(), w).await.unwrap(), CommitOutcome::Saved);
    // A live lease is not swept; a released claim is due again at once.
    assert_eq!(s.sweep_expired().await.unwrap(), 0);
    s.release(vec![b.key()]).await.unwrap();
    let c = claim_one(&s, "node_c").await;
    assert!(c.token > b.token);
}

async fn a_cancel_of_an_unheld_run_ends_it_at_once(s: Store) {
    workflow(&s, "wf", None).await;
    // Queued.
    let queued = run(&s, "wf").await;
    let row = s.cancel_run(queued.id.clone()).await.unwrap();
    assert_eq!(row.status, RunStatus::Cancelled);
    assert_eq!(row.error, Some(RunError::cancelled()));
    assert!(row.completed_at.is_some());
    assert!(s.claim("node_a", 10, 30_000).await.unwrap().is_empty());
    // Parked in a wait: its step is skipped, as the engine would finish it.
    let parked = run(&s, "wf").await;
    let c = claim_one(&s, "node_a").await;
    let far = crate::time::now_ms() + 3_600_000;
    let w = progress(RunStatus::Running, StepStatus::Waiting, Some(far));
    assert_eq!(s.commit(c.key(), w).await.unwrap(), CommitOutcome::Saved);
    let row = s.cancel_run(parked.id.clone()).await.unwrap();
    assert_eq!(row.status, RunStatus::Cancelled);
    assert_eq!(row.steps[0].status, StepStatus::Skipped);
    assert_eq!(s.next_due().await.unwrap(), None);
    // A finished run stays as it was.
    let again = s.cancel_run(parked.id).await.unwrap();
    assert_eq!(again.completed_at, row.completed_at);
    assert!(matches!(
        s.cancel_run("run_missing".into()).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn a_cancel_of_a_held_run_stops_it_at_its_holders_next_write(s: Store) {
    workflow(&s, "wf", None).await;
    let r = run(&s, "wf").await;
    let c = claim_one(&s, "node_a").await;
    let w = progress(RunStatus::Running, StepStatus::Running, None);
    assert_eq!(
        s.commit(c.key(), w.clone()).await.unwrap(),
        CommitOutcome::Saved
    );
    let row = s.cancel_run(r.id.clone()).await.unwrap();
    assert_eq!(row.status, RunStatus::Running, "flagged, not ended");
    assert!(row.cancel_requested);
    let hb = s.heartbeat("node_a", vec![c.key()], 30_000).await.unwrap();
    assert_eq!(hb.cancelled, vec![c.key()]);
    assert_eq!(
        s.commit(c.key(), w).await.unwrap(),
        CommitOutcome::Cancelled
    );
    let stop = progress(RunStatus::Cancelled, StepStatus::Skipped, None);
    assert_eq!(s.commit(c.key(), stop).await.unwrap(), CommitOutcome::Saved);
    assert_eq!(s.get_run(r.id).await.unwrap().status, RunStatus::Cancelled);
}

async fn an_idempotency_key_names_one_run(s: Store) {
    workflow(&s, "wf", None).await;
    let keyed = || NewRun {
        idempotency_key: Some("k1".into()),
        ..new_run("wf")
    };
    let TriggerOutcome::Created(first) = s.create_run(keyed()).await.unwrap() else {
        panic!("the first create makes the run");
    };
    let TriggerOutcome::Replayed(again) = s.create_run(keyed()).await.unwrap() else {
        panic!("the same key replays");
    };
    assert_eq!(again.id, first.id);
    let other = NewRun {
        idempotency_key: Some("k2".into()),
        ..new_run("wf")
    };
    assert!(matches!(
        s.create_run(other).await.unwrap(),
        TriggerOutcome::Created(_)
    ));
}

async fn a_concurrency_cap_holds_runs_back_in_order(s: Store) {
    workflow(&s, "capped", Some(1)).await;
    workflow(&s, "free", None).await;
    let first = run(&s, "capped").await;
    let second = run(&s, "capped").await;
    let free = run(&s, "free").await;
    let claims = s.claim("node_a", 10, 30_000).await.unwrap();
    let ids: Vec<&str> = claims.iter().map(|c| c.run.id.as_str()).collect();
    assert_eq!(ids, vec![first.id.as_str(), free.id.as_str()]);
    assert!(s.claim("node_b", 10, 30_000).await.unwrap().is_empty());
    // A run parked in a wait holds no slot.
    let far = crate::time::now_ms() + 3_600_000;
    let park = progress(RunStatus::Running, StepStatus::Waiting, Some(far));
    assert_eq!(
        s.commit(claims[0].key(), park).await.unwrap(),
        CommitOutcome::Saved
    );
    let next = claim_one(&s, "node_b").await;
    assert_eq!(next.run.id, second.id);
}

async fn apply_bumps_the_version_only_on_changed_content(s: Store) {
    let apply = |definition: Value, status: Option<WorkflowStatus>| WorkflowApply {
        id: "wf".into(),
        name: "wf".into(),
        definition,
        status,
        concurrency: None,
    };
    let v1 = json!({"id": "wf", "steps": [{"id": "a"}], "x": 1});
    let out = s.apply_workflow(apply(v1.clone(), None)).await.unwrap();
    assert_eq!(
        (out.version, out.status.as_str(), out.result),
        (1, "active", ApplyResult::Created)
    );
    // Key order is not content.
    let reordered = json!({"x": 1, "steps": [{"id": "a"}], "id": "wf"});
    let out = s.apply_workflow(apply(reordered, None)).await.unwrap();
    assert_eq!((out.version, out.result), (1, ApplyResult::Unchanged));
    let out = s
        .apply_workflow(apply(v1, Some(WorkflowStatus::Paused)))
        .await
        .unwrap();
    assert_eq!(
        (out.version, out.status.as_str(), out.result),
        (1, "paused", ApplyResult::Updated)
    );
    let v2 = json!({"id": "wf", "steps": [{"id": "a"}], "x": 2});
    let out = s.apply_workflow(apply(v2.clone(), None)).await.unwrap();
    assert_eq!(
        (out.version, out.status.as_str(), out.result),
        (2, "paused", ApplyResult::Updated)
    );
    assert_eq!(s.workflow_version("wf".into(), 2).await.unwrap().0, v2);
    let row = s
        .set_workflow_status("wf".into(), WorkflowStatus::Active)
        .await
        .unwrap();
    assert_eq!((row.latest_version, row.status.as_str()), (2, "active"));
    assert_eq!(
        s.get_workflow("wf".into()).await.unwrap().status,
        WorkflowStatus::Active
    );
}

async fn a_schedules_occurrence_starts_one_run(s: Store) {
    workflow(&s, "wf", None).await;
    let at = 1_700_000_000_000;
    let occurrence = || NewRun {
        scheduled_at: Some(at),
        trigger_type: TriggerType::Schedule,
        ..new_run("wf")
    };
    let TriggerOutcome::Created(first) = s.create_run(occurrence()).await.unwrap() else {
        panic!("the first fire of an occurrence starts a run");
    };
    let TriggerOutcome::Replayed(again) = s.create_run(occurrence()).await.unwrap() else {
        panic!("the occurrence is taken");
    };
    assert_eq!(again.id, first.id);
    let state = s.schedule_state("wf".into()).await.unwrap();
    assert!(state.in_flight);
    s.put_schedule(ScheduleRow {
        workflow_id: "wf".into(),
        version: 1,
        next_at: at + 60_000,
    })
    .await
    .unwrap();
    let rows = s.list_schedules().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].next_at, at + 60_000);
    s.delete_schedule("wf".into()).await.unwrap();
    assert!(s.list_schedules().await.unwrap().is_empty());
}

async fn the_dashboard_finds_and_counts_runs(s: Store) {
    workflow(&s, "wf", None).await;
    let done = run(&s, "wf").await;
    let c = claim_one(&s, "node_a").await;
    assert_eq!(c.run.id, done.id);
    let fin = progress(RunStatus::Completed, StepStatus::Completed, None);
    assert_eq!(s.commit(c.key(), fin).await.unwrap(), CommitOutcome::Saved);
    let waiting = run(&s, "wf").await;
    let search = |status: Option<&str>, q: Option<&str>| RunSearch {
        status: status.map(String::from),
        workflow_id: Some("wf".into()),
        trigger_type: None,
        q: q.map(String::from),
        before_seq: None,
        limit: 10,
        budget: std::time::Duration::from_secs(5),
    };
    let all = s.search_runs(search(None, None)).await.unwrap();
    let ids: Vec<&str> = all.runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![waiting.id.as_str(), done.id.as_str()],
        "newest first"
    );
    let completed = s
        .search_runs(search(Some("completed"), None))
        .await
        .unwrap();
    assert_eq!(completed.runs.len(), 1);
    assert_eq!(completed.runs[0].id, done.id);
    let by_id = s
        .search_runs(search(None, Some(&waiting.id)))
        .await
        .unwrap();
    assert_eq!(by_id.runs.len(), 1);
    let o = s.overview(crate::time::now_ms() + 1_000).await.unwrap();
    let finished: i64 = o.per_minute.iter().map(|(_, _, n)| n).sum();
    assert_eq!(finished, 1);
    assert_eq!(o.in_flight, vec![("pending".to_string(), 1)]);
    assert_eq!(s.queue_depth().await.unwrap(), 1);
}

/// The parent's `workflow` step `call` waiting for its child (or running,
/// for `wait: false`), committed with the spawn of that child.
fn spawning(parent: &RunRow, key: &str, wait: bool, trigger_type: TriggerType) -> RunWrite {
    let call = StepRecord {
        status: if wait {
            StepStatus::Waiting
        } else {
            StepStatus::Running
        },
        attempts: 1,
        started_at: Some(1),
        output: json!({"waitingFor": "children", "runId": child_id(parent, key)}),
        ..StepRecord::blank(0, "call")
    };
    RunWrite {
        status: RunStatus::Running,
        started_at: Some(crate::time::now_ms()),
        completed_at: None,
        output: Value::Null,
        error: None,
        park_until: None,
        steps: vec![call],
        spawn: Some(ChildSpawn {
            id: child_id(parent, key),
            workflow_id: "child".into(),
            workflow_version: 1,
            input: json!({"key": key}),
            connection_id: None,
            parent_step_id: "call".into(),
            key: key.into(),
            root_run_id: parent.id.clone(),
            depth: 1,
            wait,
            deadline_at: Some(4_000_000_000_000),
            trigger_type,
        }),
        suspend: wait,
    }
}

fn child_id(parent: &RunRow, key: &str) -> String {
    crate::engine::child_run_id(&parent.id, "call", key)
}

/// A run's end with this status and output.
fn ending(status: RunStatus, output: Value, error: Option<RunError>) -> RunWrite {
    RunWrite {
        output,
        error,
        ..progress(
            status,
            if status == RunStatus::Completed {
                StepStatus::Completed
            } else {
                StepStatus::Failed
            },
            None,
        )
    }
}

fn children_of(id: &str) -> RunFilter {
    RunFilter {
        parent_run_id: Some(id.into()),
        limit: 100,
        ..Default::default()
    }
}

/// The ids of every run the default list (or, with `include_children`, the full list) shows.
async fn listed(s: &Store, include_children: bool) -> Vec<String> {
    let all = s
        .list_runs(RunFilter {
            limit: 100,
            include_children,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut ids: Vec<String> = all.into_iter().map(|r| r.id).collect();
    ids.sort();
    ids
}

async fn parent_and_child(s: &Store) -> RunRow {
    workflow(s, "parent", None).await;
    workflow(s, "child", None).await;
    run(s, "parent").await
}

async fn a_child_is_created_once_per_parent_step_and_key(s: Store) {
    let parent = parent_and_child(&s).await;
    let p = claim_one(&s, "node_a").await;
    // `wait: false`: the parent keeps its lease; the same spawn again (a
    // repeat after a crash) creates nothing more.
    let fire = spawning(&parent, "0", false, TriggerType::Workflow);
    assert_eq!(
        s.commit(p.key(), fire.clone()).await.unwrap(),
        CommitOutcome::Saved
    );
    assert_eq!(s.commit(p.key(), fire).await.unwrap(), CommitOutcome::Saved);
    // A stale holder's spawn creates nothing.
    let stale = ClaimRef {
        seq: p.run.seq,
        token: p.token - 1,
    };
    let refused = spawning(&parent, "stale", false, TriggerType::Workflow);
    assert_eq!(
        s.commit(stale, refused).await.unwrap(),
        CommitOutcome::LeaseLost
    );
    // A block's child (another trigger type) is hidden from the default list.
    let hidden = spawning(&parent, "item", false, TriggerType::Batch);
    assert_eq!(
        s.commit(p.key(), hidden).await.unwrap(),
        CommitOutcome::Saved
    );
    let kids = s.list_runs(children_of(&parent.id)).await.unwrap();
    let mut keys: Vec<_> = kids.iter().map(|k| k.family.key.clone().unwrap()).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec!["0", "item"],
        "one child per key, none for the stale holder"
    );
    let kid = s.get_run(child_id(&parent, "0")).await.unwrap();
    assert_eq!(kid.status, RunStatus::Pending);
    assert_eq!(kid.trigger_type, TriggerType::Workflow);
    assert_eq!(kid.input, json!({"key": "0"}));
    let family = &kid.family;
    assert_eq!(family.parent_run_id.as_deref(), Some(parent.id.as_str()));
    assert_eq!(family.parent_step_id.as_deref(), Some("call"));
    assert_eq!(family.root_run_id.as_deref(), Some(parent.id.as_str()));
    assert_eq!(
        (family.depth, family.deadline_at),
        (1, Some(4_000_000_000_000))
    );
    let mut visible = vec![parent.id.clone(), child_id(&parent, "0")];
    visible.sort();
    assert_eq!(listed(&s, false).await, visible);
    assert_eq!(listed(&s, true).await.len(), 3);
    let counts = s.get_run(parent.id.clone()).await.unwrap().family.children;
    assert_eq!(
        counts,
        Some(ChildCounts {
            total: 2,
            completed: 0,
            failed: 0,
            running: 2
        })
    );
    // The children are claimed with their place in the tree.
    let claimed = s.claim("node_b", 10, 30_000).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(
        claimed
            .iter()
            .all(|c| c.run.family.deadline_at == Some(4_000_000_000_000))
    );
}

async fn a_childs_finish_records_it_on_the_waiting_parent_and_queues_it(s: Store) {
    let parent = parent_and_child(&s).await;
    let p = claim_one(&s, "node_a").await;
    let wait = spawning(&parent, "0", true, TriggerType::Workflow);
    assert_eq!(s.commit(p.key(), wait).await.unwrap(), CommitOutcome::Saved);
    // Suspended: the parent holds no lease and is not due; only the child is.
    let hb = s.heartbeat("node_a", vec![p.key()], 30_000).await.unwrap();
    assert_eq!(hb.lost, vec![p.key()]);
    let c = claim_one(&s, "node_b").await;
    assert_eq!(c.run.id, child_id(&parent, "0"));
    assert_eq!(
        s.next_due().await.unwrap(),
        None,
        "a suspended parent is never due"
    );
    assert_eq!(s.queue_depth().await.unwrap(), 0);
    // The child's finish and the parent's progress and re-queue: one commit.
    let out = json!({"z": 1, "a": [1, 2]});
    let done = ending(RunStatus::Completed, out.clone(), None);
    assert_eq!(s.commit(c.key(), done).await.unwrap(), CommitOutcome::Saved);
    let resumed = claim_one(&s, "node_c").await;
    assert_eq!(resumed.run.id, parent.id);
    let call = &resumed.run.steps[0];
    assert_eq!(call.status, StepStatus::Waiting);
    let record = decisions::child_record(&c.run.id, RunStatus::Completed, out, Value::Null);
    assert_eq!(call.output["child"], record);
    // Key order of the child's output is kept.
    assert_eq!(
        call.output["child"]["output"].to_string(),
        r#"{"z":1,"a":[1,2]}"#
    );
    assert_eq!(call.output["waitingFor"], "children");
    let row = s.get_run(parent.id.clone()).await.unwrap();
    assert_eq!(
        row.family.children,
        Some(ChildCounts {
            total: 1,
            completed: 1,
            failed: 0,
            running: 0
        })
    );
    // A failed child is recorded the same way, with its error.
    // (This parent has a deadline: it waits parked until then, and the
    // child's finish makes it due at once.)
    let second = run(&s, "parent").await;
    let p2 = claim_one(&s, "node_a").await;
    assert_eq!(p2.run.id, second.id);
    let mut wait = spawning(&second, "0", true, TriggerType::Workflow);
    wait.park_until = Some(crate::time::now_ms() + 3_600_000);
    assert_eq!(
        s.commit(p2.key(), wait).await.unwrap(),
        CommitOutcome::Saved
    );
    let c2 = claim_one(&s, "node_b").await;
    let error = RunError::step("REFUSED", "not today");
    let failed = ending(RunStatus::Failed, Value::Null, Some(error.clone()));
    assert_eq!(
        s.commit(c2.key(), failed).await.unwrap(),
        CommitOutcome::Saved
    );
    let resumed = claim_one(&s, "node_c").await;
    assert_eq!(resumed.run.id, second.id);
    let record = &resumed.run.steps[0].output["child"];
    assert_eq!(record["status"], "failed");
    assert_eq!(record["error"], serde_json::to_value(&error).unwrap());
}

async fn a_cancel_reaches_every_unfinished_descendant(s: Store) {
    workflow(&s, "grandchild", None).await;
    let parent = parent_and_child(&s).await;
    let p = claim_one(&s, "node_a").await;
    let wait = spawning(&parent, "0", true, TriggerType::Workflow);
    assert_eq!(s.commit(p.key(), wait).await.unwrap(), CommitOutcome::Saved);
    // The child runs a step (held by a worker) after spawning a grandchild
    // it does not wait for.
    let c = claim_one(&s, "node_b").await;
    let child = c.run.clone();
    let mut fire = spawning(&child, "g", false, TriggerType::Workflow);
    if let Some(sp) = &mut fire.spawn {
        sp.workflow_id = "grandchild".into();
        sp.root_run_id = parent.id.clone();
        sp.depth = 2;
    }
    assert_eq!(s.commit(c.key(), fire).await.unwrap(), CommitOutcome::Saved);
    let grandchild = crate::engine::child_run_id(&child.id, "call", "g");

    let row = s.cancel_run(parent.id.clone()).await.unwrap();
    assert_eq!(
        row.status,
        RunStatus::Cancelled,
        "a suspended parent is unheld"
    );
    assert_eq!(row.steps[0].status, StepStatus::Skipped);
    // The queued grandchild ended at once; the held child is flagged.
    let g = s.get_run(grandchild).await.unwrap();
    assert_eq!(g.status, RunStatus::Cancelled);
    let kid = s.get_run(child.id.clone()).await.unwrap();
    assert!(
        kid.cancel_requested && kid.status == RunStatus::Running,
        "{kid:?}"
    );
    let hb = s.heartbeat("node_b", vec![c.key()], 30_000).await.unwrap();
    assert_eq!(hb.cancelled, vec![c.key()]);
    let next = progress(RunStatus::Running, StepStatus::Running, None);
    assert_eq!(
        s.commit(c.key(), next).await.unwrap(),
        CommitOutcome::Cancelled
    );
    let stop = progress(RunStatus::Cancelled, StepStatus::Skipped, None);
    assert_eq!(s.commit(c.key(), stop).await.unwrap(), CommitOutcome::Saved);
    // The cancelled parent is not queued again by its child's end.
    assert!(s.claim("node_c", 10, 30_000).await.unwrap().is_empty());
    let row = s.get_run(parent.id).await.unwrap();
    assert_eq!(row.status, RunStatus::Cancelled);
    assert_eq!(
        row.family.children,
        Some(ChildCounts {
            total: 1,
            completed: 0,
            failed: 1,
            running: 0
        })
    );

    // Cancelling a waited-for child alone records it on its parent, which is queued.
    let other = run(&s, "parent").await;
    let p = claim_one(&s, "node_a").await;
    let wait = spawning(&other, "0", true, TriggerType::Workflow);
    assert_eq!(s.commit(p.key(), wait).await.unwrap(), CommitOutcome::Saved);
    let kid = s.cancel_run(child_id(&other, "0")).await.unwrap();
    assert_eq!(kid.status, RunStatus::Cancelled);
    let resumed = claim_one(&s, "node_b").await;
    assert_eq!(resumed.run.id, other.id);
    assert_eq!(resumed.run.steps[0].output["child"]["status"], "cancelled");
}

async fn redrive_continues_a_run_and_its_waited_for_children(s: Store) {
    let parent = parent_and_child(&s).await;
    let p = claim_one(&s, "node_a").await;
    let first = StepRecord {
        status: StepStatus::Completed,
        attempts: 1,
        output: json!({"kept": true}),
        ..StepRecord::blank(0, "first")
    };
    let mut wait = spawning(&parent, "0", true, TriggerType::Workflow);
    wait.steps[0].idx = 1;
    wait.steps.insert(0, first);
    assert_eq!(s.commit(p.key(), wait).await.unwrap(), CommitOutcome::Saved);
    let c = claim_one(&s, "node_b").await;
    let error = RunError::step("REFUSED", "not today");
    let failed = ending(RunStatus::Failed, Value::Null, Some(error.clone()));
    assert_eq!(
        s.commit(c.key(), failed).await.unwrap(),
        CommitOutcome::Saved
    );
    let p = claim_one(&s, "node_a").await;
    let call = StepRecord {
        status: StepStatus::Failed,
        attempts: 1,
        error: Some(error.clone()),
        ..StepRecord::blank(1, "call")
    };
    let fail = RunWrite {
        steps: vec![call],
        ..ending(RunStatus::Failed, Value::Null, Some(error))
    };
    assert_eq!(s.commit(p.key(), fail).await.unwrap(), CommitOutcome::Saved);

    let row = s
        .redrive_run(parent.id.clone())
        .await
        .unwrap()
        .expect("redriven");
    assert_eq!(row.status, RunStatus::Pending);
    assert_eq!(row.family.redrive_count, 1);
    assert_eq!(row.error, None);
    let steps: Vec<&str> = row.steps.iter().map(|r| r.step_id.as_str()).collect();
    assert_eq!(
        steps,
        vec!["first"],
        "completed steps are kept, the rest go"
    );
    let kid = s.get_run(c.run.id.clone()).await.unwrap();
    assert_eq!(
        (kid.status, kid.family.redrive_count),
        (RunStatus::Pending, 1)
    );
    assert!(kid.steps.is_empty());
    let in_list = s.list_runs(children_of(&parent.id)).await.unwrap();
    assert_eq!(
        in_list[0].family.redrive_count, 1,
        "lists carry the count too"
    );
    // Both are queued again, and no old holder can write.
    let again = s.claim("node_c", 10, 30_000).await.unwrap();
    let mut ids: Vec<&str> = again.iter().map(|c| c.run.id.as_str()).collect();
    ids.sort();
    let mut want = vec![parent.id.as_str(), c.run.id.as_str()];
    want.sort();
    assert_eq!(ids, want);
    let w = progress(RunStatus::Running, StepStatus::Running, None);
    assert_eq!(
        s.commit(c.key(), w.clone()).await.unwrap(),
        CommitOutcome::LeaseLost
    );
    assert_eq!(
        s.commit(p.key(), w).await.unwrap(),
        CommitOutcome::LeaseLost
    );
    // Only a failed, timed-out or cancelled run is redriven.
    assert!(s.redrive_run(parent.id.clone()).await.unwrap().is_none());
    assert!(matches!(
        s.redrive_run("run_missing".into()).await,
        Err(StoreError::NotFound(_))
    ));
}

/// One `#[tokio::test]` per case and store.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = crate::store::Store::open(&dir.path().join("contract.db")).unwrap();
                    super::$case(store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    if let Some(pg) = crate::store::postgres::tests::store(stringify!($case)).await {
                        super::$case(crate::store::Store::from_backend(std::sync::Arc::new(pg))).await;
                    }
                }
            )*
        }
    };
}

contract!(
    claims_fence_every_write,
    an_expired_lease_is_swept_and_its_holder_fenced_out,
    a_cancel_of_an_unheld_run_ends_it_at_once,
    a_cancel_of_a_held_run_stops_it_at_its_holders_next_write,
    an_idempotency_key_names_one_run,
    a_concurrency_cap_holds_runs_back_in_order,
    apply_bumps_the_version_only_on_changed_content,
    a_schedules_occurrence_starts_one_run,
    the_dashboard_finds_and_counts_runs,
    a_child_is_created_once_per_parent_step_and_key,
    a_childs_finish_records_it_on_the_waiting_parent_and_queues_it,
    a_cancel_reaches_every_unfinished_descendant,
    redrive_continues_a_run_and_its_waited_for_children,
);
