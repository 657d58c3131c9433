//! `workflow` steps and child runs through the real binary: the parent completes with its
//! child's output, a failed child fails the step with `CHILD_FAILED`, a self-recursive
//! workflow stops at `MAX_DEPTH`, cancelling a parent cancels its waiting child, `wait:
//! false` answers the child's id at once, and input that does not fit the target's schema
//! fails the step with `VALIDATION_ERROR`.

use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no step {id} in {run}"))
}

async fn apply_double<A: Api>(s: &A) {
    s.apply(json!({
        "name": "Child Double",
        "inputSchema": {"type": "object", "required": ["n"], "properties": {"n": {"type": "number"}}},
        "steps": [{"id": "double", "type": "transform",
                   "config": {"mapping": {"doubled": "{{ input.n | times: 2 }}"}}}]
    }))
    .await;
}

fn caller(name: &str, target: &str, input: Value, wait: bool) -> Value {
    json!({
        "name": name,
        "steps": [
            {"id": "call", "type": "workflow",
             "config": {"workflowId": target, "input": input, "wait": wait}},
            {"id": "after", "type": "transform",
             "config": {"mapping": {"fromChild": "{{ steps.call.output }}"}}}
        ]
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parent_completes_with_its_childs_output() {
    let s = Server::start();
    apply_double(&s).await;
    s.apply(caller(
        "Parent Calls",
        "wf_child_double",
        json!({"n": "{{ input.n }}"}),
        true,
    ))
    .await;
    let id = s.trigger("wf_parent_calls", json!({"n": 21})).await;
    let run = s.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(step(&run, "call")["type"], "workflow");
    assert_eq!(
        step(&run, "call")["output"],
        json!({"doubled": 42}),
        "{run}"
    );
    assert_eq!(run["parentRunId"], Value::Null);
    assert_eq!(run["rootRunId"], id);
    assert_eq!(run["depth"], 0);
    assert_eq!(
        run["children"],
        json!({"total": 1, "completed": 1, "failed": 0, "running": 0})
    );

    let (st, list) = s.get(&format!("/api/v1/runs?parentRunId={id}")).await;
    assert_eq!(st, 200, "{list}");
    let kids = list["data"].as_array().unwrap();
    assert_eq!(kids.len(), 1, "{list}");
    let kid = &kids[0];
    assert_eq!(kid["workflowId"], "wf_child_double");
    assert_eq!(kid["triggerType"], "workflow");
    assert_eq!(kid["parentRunId"], id);
    assert_eq!(kid["rootRunId"], id);
    assert_eq!(kid["depth"], 1);
    assert_eq!(kid["input"], json!({"n": 21}));
    assert_eq!(kid["output"], json!({"doubled": 42}));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_child_fails_the_step_with_child_failed() {
    let s = Server::start();
    s.apply(json!({
        "name": "Child Refuses",
        "steps": [{"id": "no", "type": "stop", "config": {"status": "failed",
                   "error": {"code": "REFUSED", "message": "not today"}}}]
    }))
    .await;
    s.apply(caller(
        "Parent Of Refusal",
        "wf_child_refuses",
        json!({}),
        true,
    ))
    .await;
    let id = s.trigger("wf_parent_of_refusal", json!({})).await;
    let run = s.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "failed", "{run}");
    let call = step(&run, "call");
    assert_eq!(call["error"]["code"], "CHILD_FAILED", "{run}");
    assert!(
        call["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not today"),
        "{run}"
    );
    assert_eq!(call["output"]["error"]["code"], "REFUSED", "{run}");
    assert_eq!(call["output"]["status"], "failed", "{run}");
    assert_eq!(step(&run, "after")["status"], "skipped");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_recursive_workflow_stops_at_max_depth() {
    let s = Server::start();
    s.apply(caller("Recurse", "wf_recurse", json!({}), true))
        .await;
    let id = s.trigger("wf_recurse", json!({})).await;
    let run = s.wait_for_run(&id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(step(&run, "call")["error"]["code"], "CHILD_FAILED");
    // Walk down to the deepest run: it is at depth 25 and its step says MAX_DEPTH.
    let mut current = id.clone();
    let mut depth = 0;
    loop {
        let (_, list) = s.get(&format!("/api/v1/runs?parentRunId={current}")).await;
        let kids = list["data"].as_array().unwrap().clone();
        if kids.is_empty() {
            break;
        }
        assert_eq!(kids.len(), 1);
        current = kids[0]["id"].as_str().unwrap().to_string();
        depth += 1;
        assert_eq!(kids[0]["depth"], depth);
        assert_eq!(kids[0]["rootRunId"], id);
    }
    assert_eq!(depth, 25);
    let (_, deepest) = s.get(&format!("/api/v1/runs/{current}")).await;
    assert_eq!(
        step(&deepest["data"], "call")["error"]["code"],
        "MAX_DEPTH",
        "{deepest}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_parent_cancels_its_child() {
    let s = Server::start();
    s.apply(json!({
        "name": "Slow Child",
        "steps": [{"id": "nap", "type": "wait", "config": {"durationMs": 60000}},
                  {"id": "done", "type": "transform", "config": {"mapping": {"ok": true}}}]
    }))
    .await;
    s.apply(caller("Slow Parent", "wf_slow_child", json!({}), true))
        .await;
    let id = s.trigger("wf_slow_parent", json!({})).await;
    let kid = eventually(Duration::from_secs(20), || async {
        let (_, list) = s.get(&format!("/api/v1/runs?parentRunId={id}")).await;
        list["data"]
            .as_array()
            .and_then(|k| k.first())
            .and_then(|k| k["id"].as_str().map(String::from))
    })
    .await;
    let (st, v) = s
        .post(&format!("/api/v1/runs/{id}/cancel"), json!({}))
        .await;
    assert!(st == 200 || st == 202, "{v}");
    let parent = s.wait_for_run(&id, Duration::from_secs(20)).await;
    assert_eq!(parent["status"], "cancelled", "{parent}");
    let child = s.wait_for_run(&kid, Duration::from_secs(20)).await;
    assert_eq!(child["status"], "cancelled", "{child}");
    assert_eq!(step(&child, "done")["status"], "skipped");
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_false_answers_the_child_id_and_bad_input_fails_at_spawn() {
    let s = Server::start();
    apply_double(&s).await;
    s.apply(caller(
        "Fire And Forget",
        "wf_child_double",
        json!({"n": 5}),
        false,
    ))
    .await;
    let id = s.trigger("wf_fire_and_forget", json!({})).await;
    let run = s.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "completed", "{run}");
    let kid = step(&run, "call")["output"]["runId"]
        .as_str()
        .unwrap_or_else(|| panic!("no runId: {run}"))
        .to_string();
    let child = s.wait_for_run(&kid, Duration::from_secs(30)).await;
    assert_eq!(child["output"], json!({"doubled": 10}));
    assert_eq!(child["parentRunId"], id);

    s.apply(caller(
        "Bad Input",
        "wf_child_double",
        json!({"n": "{{ input.word }}"}),
        true,
    ))
    .await;
    let id = s.trigger("wf_bad_input", json!({"word": "many"})).await;
    let run = s.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(
        step(&run, "call")["error"]["code"],
        "VALIDATION_ERROR",
        "{run}"
    );
    let (_, list) = s.get(&format!("/api/v1/runs?parentRunId={id}")).await;
    assert_eq!(list["data"], json!([]), "no child is created for bad input");
}

#[tokio::test(flavor = "multi_thread")]
async fn redrive_continues_a_parent_and_its_cancelled_child_as_the_same_runs() {
    let s = Server::start();
    s.apply(json!({
        "name": "Napping Child",
        "steps": [{"id": "nap", "type": "wait", "config": {"durationMs": 1500}},
                  {"id": "done", "type": "transform", "config": {"mapping": {"ok": true}}}]
    }))
    .await;
    s.apply(caller(
        "Redriven Parent",
        "wf_napping_child",
        json!({}),
        true,
    ))
    .await;
    let id = s.trigger("wf_redriven_parent", json!({})).await;
    let kid = eventually(Duration::from_secs(20), || async {
        let (_, list) = s.get(&format!("/api/v1/runs?parentRunId={id}")).await;
        list["data"]
            .as_array()
            .and_then(|k| k.first())
            .and_then(|k| k["id"].as_str().map(String::from))
    })
    .await;
    // Cancelling the child fails the waiting parent's step.
    let (st, v) = s
        .post(&format!("/api/v1/runs/{kid}/cancel"), json!({}))
        .await;
    assert_eq!(st, 200, "{v}");
    let parent = s.wait_for_run(&id, Duration::from_secs(20)).await;
    assert_eq!(parent["status"], "failed", "{parent}");
    assert_eq!(step(&parent, "call")["error"]["code"], "CHILD_FAILED");
    assert_eq!(parent["redriveCount"], 0);

    let out = s.cli(&["runs", "redrive", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&id), "{}", stdout(&out));
    let parent = s.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(parent["status"], "completed", "{parent}");
    assert_eq!(parent["redriveCount"], 1);
    assert_eq!(step(&parent, "call")["output"], json!({"ok": true}));
    let child = s.wait_for_run(&kid, Duration::from_secs(5)).await;
    assert_eq!(child["status"], "completed");
    assert_eq!(child["redriveCount"], 1);
    let (_, list) = s.get(&format!("/api/v1/runs?parentRunId={id}")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "still one child");

    // A completed run is not redriven.
    let (st, v) = s
        .post(&format!("/api/v1/runs/{id}/redrive"), json!({}))
        .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["error"]["code"], "INVALID_STATUS", "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_around_a_childs_finish_resumes_the_parent_once_and_runs_the_child_once() {
    use crate::common::target::Target;
    let t = Target::start().await;
    let mut s = Server::start();
    s.apply(json!({"name": "Killed Child", "steps": [t.step("inner", "delay_ms=1500")]}))
        .await;
    s.apply(json!({"name": "Killed Parent", "steps": [
        {"id": "call", "type": "workflow", "config": {"workflowId": "wf_killed_child"}},
        {"id": "after", "type": "transform",
         "config": {"mapping": {"child": "{{ steps.call.status }}"}}}]}))
        .await;
    let id = s.trigger("wf_killed_parent", json!({})).await;
    // First kill: the parent is suspended and the child's step is in flight.
    eventually(Duration::from_secs(20), || async {
        (t.count("inner") == 1).then_some(())
    })
    .await;
    s.kill();
    s.launch();
    // Second kill: as soon as the child has finished (its commit queued the parent).
    let kid = eventually(Duration::from_secs(30), || async {
        let (_, list) = s.get(&format!("/api/v1/runs?parentRunId={id}")).await;
        let k = list["data"].as_array()?.first()?.clone();
        (k["status"] == "completed").then(|| k["id"].as_str().unwrap().to_string())
    })
    .await;
    s.kill();
    s.launch();
    let run = s.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        step(&run, "call")["attempts"],
        1,
        "the child was spawned once: {run}"
    );
    assert_eq!(
        step(&run, "after")["attempts"],
        1,
        "the parent resumed once: {run}"
    );
    assert_eq!(run["output"], json!({"child": "completed"}), "{run}");
    let (_, list) = s.get(&format!("/api/v1/runs?parentRunId={id}")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "one child");
    let child = s.wait_for_run(&kid, Duration::from_secs(5)).await;
    assert_eq!(child["status"], "completed");
    // The step in flight at the first kill runs again (at-least-once), never a third time.
    assert!(
        t.count("inner") <= 2,
        "inner ran {} times",
        t.count("inner")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_checks_workflow_targets_literal_input_and_call_cycles() {
    let s = Server::start();
    // A missing target is refused, naming the path.
    let (st, v) = s
        .post(
            "/api/v1/workflows",
            caller("Calls Nobody", "wf_nobody", json!({}), true),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["error"]["code"], "VALIDATION_ERROR", "{v}");
    let detail = &v["error"]["details"][0];
    assert_eq!(
        detail["path"],
        json!(["steps", 0, "config", "workflowId"]),
        "{v}"
    );
    assert!(
        detail["message"].as_str().unwrap().contains("wf_nobody"),
        "{v}"
    );

    // A literal input that does not fit the target's schema is refused.
    apply_double(&s).await;
    let (st, v) = s
        .post(
            "/api/v1/workflows",
            caller("Literal Bad", "wf_child_double", json!({"n": "x"}), true),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(
        v["error"]["details"][0]["path"],
        json!(["steps", 0, "config", "input", "n"]),
        "{v}"
    );

    // A static cycle is a warning, not an error.
    let applied = s
        .apply(caller("Ping", "wf_child_double", json!({"n": 1}), true))
        .await;
    assert!(applied.get("warnings").is_none(), "{applied}");
    let pong = s.apply(caller("Pong", "wf_ping", json!({}), true)).await;
    assert!(pong.get("warnings").is_none(), "{pong}");
    let ping = s.apply(caller("Ping", "wf_pong", json!({}), true)).await;
    let warning = ping["warnings"][0]["message"].as_str().unwrap_or_default();
    assert!(warning.contains("static call cycle"), "{ping}");

    // One `flowctl apply` with the caller first: the target in the same batch is applied first.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a_caller.json"),
        caller("Batch Caller", "wf_batch_target", json!({}), true).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b_target.json"),
        json!({"name": "Batch Target", "steps": [
            {"id": "t", "type": "transform", "config": {"mapping": {"ok": true}}}]})
        .to_string(),
    )
    .unwrap();
    let out = s.cli(&["apply", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let target_at = text.find("wf_batch_target").unwrap();
    let caller_at = text.find("wf_batch_caller").unwrap();
    assert!(target_at < caller_at, "{text}");
}
