//! Child runs through the real binary, on SQLite and (with
//! `FLOWCTL_TEST_DATABASE_URL`) PostgreSQL: a SIGKILL in the window between a
//! child's finish and its parent's resume, many parents sharing a capped child
//! workflow, a cancel reaching a child in the middle of a step, the default run
//! list and `includeChildren`; on PostgreSQL, a child finished by another
//! node than the one that spawned it, and a suspended parent copied from
//! SQLite (`db copy`) that resumes there.

use crate::common::target::Target;
use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no step {id} in {run}"))
}

async fn run_view<A: Api>(s: &A, id: &str) -> Value {
    let (st, v) = s.get(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(st, 200, "{v}");
    v["data"].clone()
}

async fn only_child<A: Api>(s: &A, parent: &str) -> Option<Value> {
    let (_, list) = s.get(&format!("/api/v1/runs?parentRunId={parent}")).await;
    list["data"].as_array()?.first().cloned()
}

/// The parent of the window test: `concurrency: 1`, so a run of the same
/// workflow holding the slot (`hold`, then `stop`) keeps a parent whose child
/// has finished in the queue; the others call the child, then `after`.
fn window_parent(t: &Target) -> Value {
    let mut hold = t.step("hold", "delay_ms=8000");
    hold["if"] = json!("{{ input.hold }}");
    let mut after = t.step("after", "");
    after["retryConfig"] = json!({"maxAttempts": 1});
    json!({"name": "Window Parent", "concurrency": 1, "steps": [
        hold,
        {"id": "blocked", "type": "stop", "if": "{{ input.hold }}", "config": {"status": "completed"}},
        {"id": "call", "type": "workflow", "config": {"workflowId": "wf_window_child"}},
        after
    ]})
}

/// The child's finish is committed (with its record on the parent and the
/// parent queued) but the parent cannot resume yet: its workflow's only slot
/// is held by another run. The process is killed right there. After the
/// restart the parent resumes once from the record; the child never runs
/// again and is never created twice.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_between_a_childs_finish_and_its_parents_resume() {
    let t = Target::start().await;
    let mut s = Server::start();
    s.apply(json!({"name": "Window Child", "steps": [t.step("inner", "delay_ms=1500")]}))
        .await;
    s.apply(window_parent(&t)).await;
    let id = s.trigger("wf_window_parent", json!({"hold": false})).await;
    // The parent is suspended (its slot free) while the child's step is in flight.
    eventually(Duration::from_secs(20), || async {
        (t.count("inner") == 1).then_some(())
    })
    .await;
    let blocker = s.trigger("wf_window_parent", json!({"hold": true})).await;
    eventually(Duration::from_secs(20), || async {
        (t.count("hold") == 1).then_some(())
    })
    .await;
    // The child finishes while the blocker holds the slot.
    let kid = eventually(Duration::from_secs(20), || async {
        let k = only_child(&s, &id).await?;
        (k["status"] == "completed").then(|| k["id"].as_str().unwrap().to_string())
    })
    .await;
    let parent = run_view(&s, &id).await;
    assert_eq!(parent["status"], "running", "{parent}");
    assert_eq!(step(&parent, "call")["status"], "waiting", "{parent}");
    assert_eq!(
        t.count("after"),
        0,
        "the window was missed: the parent resumed"
    );
    s.kill();
    s.launch();

    let run = s.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(t.count("after"), 1, "the parent resumed once");
    assert_eq!(step(&run, "call")["attempts"], 1, "{run}");
    assert_eq!(step(&run, "after")["attempts"], 1, "{run}");
    assert_eq!(t.count("inner"), 1, "the child ran once");
    let child = run_view(&s, &kid).await;
    assert_eq!(child["status"], "completed", "{child}");
    assert_eq!(step(&run, "call")["output"], child["output"], "{run}");
    let (_, list) = s.get(&format!("/api/v1/runs?parentRunId={id}")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "one child");
    // The blocker never called anything: it did not reach its `workflow` step.
    let (_, list) = s.get(&format!("/api/v1/runs?parentRunId={blocker}")).await;
    assert_eq!(list["data"], json!([]));
}

/// 200 parents at once, each calling a child workflow capped at 2: the
/// waiting parents hold no slot, so all complete, each with its own child's
/// output.
#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_parents_share_a_child_workflow_capped_at_two() {
    let s = Server::start_with(&["--rate-limit-execute", "0", "--rate-limit-read", "0"]);
    s.apply(json!({
        "name": "Pair Child",
        "concurrency": 2,
        "steps": [{"id": "echo", "type": "transform", "config": {"mapping": {"n": "{{ input.n }}"}}}]
    }))
    .await;
    s.apply(json!({
        "name": "Many Parents",
        "steps": [{"id": "call", "type": "workflow",
                   "config": {"workflowId": "wf_pair_child", "input": {"n": "{{ input.n }}"}}}]
    }))
    .await;
    let started = std::time::Instant::now();
    let ids = futures_util::future::join_all(
        (0..200).map(|n| s.trigger("wf_many_parents", json!({"n": n}))),
    )
    .await;
    for (n, id) in ids.iter().enumerate() {
        let run = s.wait_for_run(id, Duration::from_secs(60)).await;
        assert_eq!(run["status"], "completed", "{run}");
        assert_eq!(run["output"], json!({"n": n}), "{run}");
    }
    eprintln!(
        "200 parents and their capped children in {:?}",
        started.elapsed()
    );
    let (_, kids) = s
        .get("/api/v1/runs?workflowId=wf_pair_child&status=completed&limit=100")
        .await;
    assert_eq!(kids["data"].as_array().unwrap().len(), 100);
    assert_eq!(kids["meta"]["hasMore"], true, "{}", kids["meta"]);
}

/// A cancel of the parent reaches its child in the middle of a step: the
/// step is aborted and the child's next step never runs.
#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_parent_stops_its_running_child_before_its_next_step() {
    let t = Target::start().await;
    let s = Server::start();
    let mut slow = t.step("slow", "delay_ms=10000");
    slow["retryConfig"] = json!({"maxAttempts": 1});
    s.apply(json!({"name": "Busy Child", "steps": [slow, t.step("next", "")]}))
        .await;
    s.apply(json!({"name": "Busy Parent", "steps": [
        {"id": "call", "type": "workflow", "config": {"workflowId": "wf_busy_child"}},
        t.step("after", "")]}))
        .await;
    let id = s.trigger("wf_busy_parent", json!({})).await;
    eventually(Duration::from_secs(20), || async {
        (t.count("slow") == 1).then_some(())
    })
    .await;
    let kid = only_child(&s, &id).await.expect("a child")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let started = std::time::Instant::now();
    let (st, v) = s
        .post(&format!("/api/v1/runs/{id}/cancel"), json!({}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["data"]["status"], "cancelled",
        "a waiting parent ends at once: {v}"
    );
    let child = s.wait_for_run(&kid, Duration::from_secs(20)).await;
    assert_eq!(child["status"], "cancelled", "{child}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the child's step was aborted, not waited for ({:?})",
        started.elapsed()
    );
    assert_eq!(step(&child, "next")["status"], "skipped", "{child}");
    assert_eq!(t.count("next"), 0);
    assert_eq!(t.count("after"), 0);
    let parent = run_view(&s, &id).await;
    assert_eq!(parent["status"], "cancelled");
    assert_eq!(
        parent["children"],
        json!({"total": 1, "completed": 0, "failed": 1, "running": 0})
    );
}

/// Sub-workflow children are in the default run list (`triggerType:
/// "workflow"`, with their place in the tree); `includeChildren` takes only
/// `true` or `false`.
#[tokio::test(flavor = "multi_thread")]
async fn the_run_list_shows_sub_workflow_children_and_checks_include_children() {
    let s = Server::start();
    s.apply(json!({"name": "Listed Child", "steps": [
        {"id": "t", "type": "transform", "config": {"mapping": {"ok": true}}}]}))
        .await;
    s.apply(json!({"name": "Listed Parent", "steps": [
        {"id": "call", "type": "workflow", "config": {"workflowId": "wf_listed_child"}}]}))
        .await;
    let id = s.trigger("wf_listed_parent", json!({})).await;
    let run = s.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "completed", "{run}");
    for query in ["", "?includeChildren=true", "?includeChildren=false"] {
        let (st, list) = s.get(&format!("/api/v1/runs{query}")).await;
        assert_eq!(st, 200, "{list}");
        let runs = list["data"].as_array().unwrap();
        assert_eq!(runs.len(), 2, "{query}: {list}");
        let kid = runs.iter().find(|r| r["parentRunId"] == id).expect("child");
        assert_eq!(kid["triggerType"], "workflow");
        assert_eq!(
            (kid["rootRunId"].clone(), kid["depth"].clone()),
            (json!(id), json!(1))
        );
    }
    let (st, v) = s.get("/api/v1/runs?includeChildren=yes").await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["error"]["code"], "INVALID_REQUEST", "{v}");
}

/// Two nodes on one PostgreSQL database: the node that spawned a child dies
/// while the child's step is in flight; the other node rescues the child,
/// its finish queues the parent, and the parent resumes there, once.
#[tokio::test(flavor = "multi_thread")]
async fn a_child_finished_by_another_node_resumes_its_parent() {
    let Some(base) = pg::cluster_or_skip("a_child_finished_by_another_node_resumes_its_parent")
    else {
        return;
    };
    let db = pg::create_database(&base);
    let env = [
        ("FLOWCTL_LEASE_MS", "1500"),
        (
            "FLOWCTL_SECRET_KEY",
            "3c1d0e6a1d2b4c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6",
        ),
    ];
    let t = Target::start().await;
    let mut a = Server::start_node(&db, &env, &[]);
    a.apply(json!({"name": "Far Child", "steps": [t.step("inner", "delay_ms=1000")]}))
        .await;
    a.apply(json!({"name": "Near Parent", "steps": [
        {"id": "call", "type": "workflow", "config": {"workflowId": "wf_far_child"}},
        t.step("after", "")]}))
        .await;
    let id = a.trigger("wf_near_parent", json!({})).await;
    eventually(Duration::from_secs(20), || async {
        (t.count("inner") == 1).then_some(())
    })
    .await;
    a.kill();
    let b = Server::start_node(&db, &env, &[]);
    let run = b.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(step(&run, "after")["attempts"], 1, "{run}");
    assert_eq!(t.count("after"), 1, "the parent resumed once");
    // The step in flight when its node died ran again on the other node, once.
    assert_eq!(t.count("inner"), 2);
    let kid = only_child(&b, &id).await.expect("one child");
    assert_eq!(kid["status"], "completed", "{kid}");
    drop(a);
}

/// `flowctl db copy` of a SQLite deployment whose parent is suspended while
/// its child's step is in flight: on PostgreSQL the parent stays suspended
/// (no node claims it), the child runs again (at-least-once) and its finish
/// resumes the parent, with the tree's columns copied.
#[tokio::test(flavor = "multi_thread")]
async fn a_suspended_parent_copied_to_postgres_resumes_when_its_child_finishes() {
    let Some(base) = pg::cluster_or_skip("a_suspended_parent_copied_to_postgres") else {
        return;
    };
    let t = Target::start().await;
    let home = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let db = home.path().join("flowctl.db");
    let mut s = Server::start_at(home.clone(), db.clone(), &[], &[]);
    s.apply(json!({"name": "Copied Child", "steps": [t.step("inner", "delay_ms=3000")]}))
        .await;
    s.apply(json!({"name": "Copied Parent", "steps": [
        {"id": "call", "type": "workflow", "config": {"workflowId": "wf_copied_child"}},
        t.step("after", "")]}))
        .await;
    let id = s.trigger("wf_copied_parent", json!({})).await;
    eventually(Duration::from_secs(20), || async {
        (t.count("inner") == 1).then_some(())
    })
    .await;
    let kid = only_child(&s, &id).await.expect("a child")["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.kill();

    let target = pg::create_database(&base);
    let mut copy = std::process::Command::new(BIN);
    env_for(&mut copy, home.path());
    let out = copy
        .args(["db", "copy", "--to", &target, "--db"])
        .arg(&db)
        .env_remove("FLOWCTL_SECRET_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "db copy failed: {}", stderr(&out));
    let key = std::fs::read_to_string(home.path().join("secret.key")).unwrap();
    // Only the child is queued: the parent was copied suspended.
    let mut check = std::process::Command::new(BIN);
    env_for(&mut check, home.path());
    let out = check
        .args(["db", "check", "--json", "--database-url", &target])
        .env("FLOWCTL_SECRET_KEY", key.trim())
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(
        (report["runs"].clone(), report["queued"].clone()),
        (json!(2), json!(1)),
        "{report}"
    );
    let node = Server::start_node(&target, &[("FLOWCTL_SECRET_KEY", key.trim())], &[]);
    let child = node.get(&format!("/api/v1/runs/{kid}")).await.1["data"].clone();
    assert_eq!(
        (
            child["parentRunId"].clone(),
            child["rootRunId"].clone(),
            child["depth"].clone()
        ),
        (json!(id), json!(id), json!(1)),
        "{child}"
    );
    let parent = node.get(&format!("/api/v1/runs/{id}")).await.1["data"].clone();
    assert_eq!(step(&parent, "call")["status"], "waiting", "{parent}");
    // The copied child's step is in flight again; the parent was not claimed.
    eventually(Duration::from_secs(20), || async {
        (t.count("inner") == 2).then_some(())
    })
    .await;
    assert_eq!(t.count("after"), 0);
    let run = node.wait_for_run(&id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(t.count("after"), 1);
    assert_eq!(t.count("inner"), 2);
}

/// A parent's `timeoutMs` holds while it waits, even for a child that
/// cannot start (its workflow's only slot is taken): the parent times out
/// at its deadline; the child, whose deadline is the parent's, times out
/// as soon as it runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_parent_times_out_at_its_deadline_while_its_child_is_queued() {
    let t = Target::start().await;
    let s = Server::start();
    let mut hold = t.step("hold", "delay_ms=6000");
    hold["if"] = json!("{{ input.hold }}");
    s.apply(
        json!({"name": "Queued Child", "concurrency": 1, "timeoutMs": 600000, "steps": [hold]}),
    )
    .await;
    s.apply(json!({"name": "Hasty Parent", "timeoutMs": 1500, "steps": [
        {"id": "call", "type": "workflow", "config": {"workflowId": "wf_queued_child"}}]}))
        .await;
    let blocker = s.trigger("wf_queued_child", json!({"hold": true})).await;
    eventually(Duration::from_secs(20), || async {
        (t.count("hold") == 1).then_some(())
    })
    .await;
    let started = std::time::Instant::now();
    let id = s.trigger("wf_hasty_parent", json!({})).await;
    let run = s.wait_for_run(&id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "timed_out", "{run}");
    assert_eq!(run["error"]["code"], "RUN_TIMEOUT", "{run}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "timed out at its deadline, not when the slot came free ({:?})",
        started.elapsed()
    );
    let kid = only_child(&s, &id).await.expect("a child");
    assert_eq!(kid["status"], "pending", "still behind the cap: {kid}");
    let kid = kid["id"].as_str().unwrap().to_string();
    assert_eq!(
        s.wait_for_run(&blocker, Duration::from_secs(20)).await["status"],
        "completed"
    );
    let child = s.wait_for_run(&kid, Duration::from_secs(20)).await;
    assert_eq!(child["status"], "timed_out", "{child}");
    assert_eq!(t.count("hold"), 1, "the child started nothing");
}
