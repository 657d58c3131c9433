//! `loop` and `parallel` blocks through the real binary, against a stand-in HTTP
//! service that sleeps per item and counts calls in flight: items come back in input
//! order while finishing out of order; `maxConcurrency` bounds the calls in flight
//! (1 never overlaps, 5 never exceeds 5); `onItemError: fail` cancels running
//! siblings and `continue` reports failures; a SIGKILL mid-loop leaves exactly one
//! completed child per index; a redrive re-runs only the failed items; a failing
//! `parallel` branch with `failFast` stops its slow sibling.

use crate::common::*;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A stand-in service: `/item/{name}?ms=N&fail=1` sleeps N ms, then answers
/// `{"name"}` (or 500 with `fail=1`; `fail=2`: only on the first call). It counts calls per name and the most
/// calls it had in flight at once.
#[derive(Clone, Default)]
struct StandIn {
    url: String,
    state: Arc<Mutex<Counts>>,
}

#[derive(Default)]
struct Counts {
    in_flight: usize,
    max_in_flight: usize,
    calls: HashMap<String, usize>,
    finished: Vec<String>,
    /// Names whose call was still in flight when it was dropped (aborted).
    aborted: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Opts {
    ms: Option<u64>,
    fail: Option<u8>,
}

struct InFlight(StandIn, String, bool);
impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().unwrap();
        s.in_flight -= 1;
        if !self.2 {
            s.aborted.push(self.1.clone());
        }
    }
}

async fn item(
    State(t): State<StandIn>,
    Path(name): Path<String>,
    Query(o): Query<Opts>,
) -> Response {
    let mut guard = {
        let mut s = t.state.lock().unwrap();
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        *s.calls.entry(name.clone()).or_default() += 1;
        InFlight(t.clone(), name.clone(), false)
    };
    tokio::time::sleep(Duration::from_millis(o.ms.unwrap_or(0))).await;
    guard.2 = true;
    t.state.lock().unwrap().finished.push(name.clone());
    drop(guard);
    let first = t.state.lock().unwrap().calls.get(&name) == Some(&1);
    if o.fail == Some(1) || (o.fail == Some(2) && first) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error": "boom"})),
        )
            .into_response();
    }
    axum::Json(json!({"name": name})).into_response()
}

impl StandIn {
    async fn start() -> StandIn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let t = StandIn {
            url: format!("http://{}", listener.local_addr().unwrap()),
            ..Default::default()
        };
        let app = Router::new()
            .route("/item/{name}", axum::routing::any(item))
            .route("/invoices/{name}/finalize", axum::routing::any(item))
            .with_state(t.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        t
    }
    fn max_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_in_flight
    }
    fn calls(&self, name: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .calls
            .get(name)
            .copied()
            .unwrap_or(0)
    }
    fn total_calls(&self) -> usize {
        self.state.lock().unwrap().calls.values().sum()
    }
    fn finished(&self) -> Vec<String> {
        self.state.lock().unwrap().finished.clone()
    }
    fn aborted(&self) -> Vec<String> {
        self.state.lock().unwrap().aborted.clone()
    }

    /// A body step calling `/item/{{item.name}}` with the item's sleep and failure.
    fn call_step(&self, retries: bool) -> Value {
        let mut step = json!({
            "id": "call", "type": "action", "action": "http.request",
            "config": {"method": "POST",
                       "url": format!("{}/item/{{{{ item.name }}}}?ms={{{{ item.ms }}}}&fail={{{{ item.fail | default: 0 }}}}", self.url),
                       "timeoutMs": 20000}
        });
        if !retries {
            step["errorHandling"] = json!("fail");
        }
        step
    }
}

fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no step {id} in {run}"))
}

fn loop_wf(name: &str, body: Vec<Value>, extra: Value) -> Value {
    let mut config = json!({"collection": "{{ input.items }}", "steps": body});
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    json!({
        "name": name,
        "steps": [
            {"id": "each", "type": "loop", "config": config},
            {"id": "after", "type": "transform", "config": {"mapping": {"n": "{{ steps.each.output.count }}"}}}
        ]
    })
}

fn items(ms: &[u64]) -> Value {
    Value::Array(
        ms.iter()
            .enumerate()
            .map(|(i, ms)| json!({"name": format!("i{i}"), "ms": ms}))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn items_come_back_in_input_order_while_finishing_out_of_order() {
    let s = Server::start();
    if s.on_postgres() {
        return; // loop and parallel run on SQLite in this version
    }
    let t = StandIn::start().await;
    s.apply(loop_wf(
        "Loop Order",
        vec![t.call_step(false)],
        json!({"maxConcurrency": 5, "output": "{{ steps.call.output.body.name }}"}),
    ))
    .await;
    // Earlier items sleep longer: they finish last.
    let ms = [600, 450, 300, 150, 0];
    let id = s
        .trigger("wf_loop_order", json!({"items": items(&ms)}))
        .await;
    let run = s.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "completed", "{run}");
    let out = &step(&run, "each")["output"];
    assert_eq!(out["items"], json!(["i0", "i1", "i2", "i3", "i4"]), "{run}");
    assert_eq!(out["count"], 5);
    assert_eq!(out["succeeded"], 5);
    assert_eq!(out["failed"], 0);
    assert_eq!(out["errors"], json!([]));
    assert_eq!(step(&run, "after")["output"], json!({"n": 5}));
    let finished = t.finished();
    assert_eq!(
        finished.first().map(String::as_str),
        Some("i4"),
        "{finished:?}"
    );
    assert_eq!(
        finished.last().map(String::as_str),
        Some("i0"),
        "{finished:?}"
    );

    // The items' runs are hidden from the default list and shown under the parent.
    let (_, all) = s.get("/api/v1/runs").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1, "{all}");
    let (_, kids) = s.get(&format!("/api/v1/runs?parentRunId={id}")).await;
    let kids = kids["data"].as_array().unwrap().clone();
    assert_eq!(kids.len(), 5);
    assert!(
        kids.iter()
            .all(|k| k["triggerType"] == "loop" && k["parentRunId"] == id)
    );
    let (_, with) = s.get("/api/v1/runs?includeChildren=true").await;
    assert_eq!(with["data"].as_array().unwrap().len(), 6);
    // An item's run shows the body's steps, and names its place under the parent.
    let kid = kids.iter().find(|k| k["key"] == "2").expect("item 2");
    let (_, one) = s
        .get(&format!("/api/v1/runs/{}", kid["id"].as_str().unwrap()))
        .await;
    let one = &one["data"];
    assert_eq!(one["parentStepId"], "each", "{one}");
    assert_eq!(one["steps"].as_array().unwrap().len(), 1, "{one}");
    assert_eq!(step(one, "call")["status"], "completed", "{one}");
    assert_eq!(one["output"], "i2", "{one}");
    let (st, v) = s
        .post(
            &format!("/api/v1/runs/{}/replay", kid["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(st, 400, "an item alone is not replayed: {v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn max_concurrency_bounds_the_calls_in_flight() {
    let s = Server::start();
    if s.on_postgres() {
        return;
    }
    for (name, conc, n) in [("Loop One", 1, 6), ("Loop Five", 5, 20)] {
        let t = StandIn::start().await;
        s.apply(loop_wf(
            name,
            vec![t.call_step(false)],
            json!({"maxConcurrency": conc}),
        ))
        .await;
        let wf = format!("wf_{}", name.to_lowercase().replace(' ', "_"));
        let id = s.trigger(&wf, json!({"items": items(&vec![120; n])})).await;
        let run = s.wait_for_run(&id, Duration::from_secs(60)).await;
        assert_eq!(run["status"], "completed", "{run}");
        assert_eq!(t.total_calls(), n);
        assert!(
            t.max_in_flight() <= conc,
            "{name}: {} in flight",
            t.max_in_flight()
        );
        if conc > 1 {
            // The window is used, not just respected.
            assert!(
                t.max_in_flight() >= 2,
                "{name}: never more than one in flight"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn on_item_error_fail_cancels_running_siblings_and_continue_reports_failures() {
    // A short lease: the heartbeat that tells a worker of a cancel runs often.
    let s = Server::start_at(
        Arc::new(tempfile::tempdir().unwrap()),
        tempfile::tempdir().unwrap().keep().join("f.db"),
        &[],
        &[("FLOWCTL_LEASE_MS", "1500")],
    );
    let t = StandIn::start().await;
    s.apply(loop_wf(
        "Loop Fail",
        vec![t.call_step(false)],
        json!({"maxConcurrency": 3}),
    ))
    .await;
    let mut list = vec![
        json!({"name": "f0", "ms": 8000}),
        json!({"name": "f1", "ms": 50, "fail": 1}),
        json!({"name": "f2", "ms": 8000}),
    ];
    list.extend((3..8).map(|i| json!({"name": format!("f{i}"), "ms": 0})));
    let started = std::time::Instant::now();
    let id = s.trigger("wf_loop_fail", json!({"items": list})).await;
    let run = s.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "failed", "{run}");
    let each = step(&run, "each");
    assert_eq!(each["error"]["code"], "ITEM_FAILED", "{run}");
    assert_eq!(each["error"]["path"], "items[1]", "{run}");
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "siblings ran to the end"
    );
    // Nothing after the failure started; the slow siblings were stopped mid-call.
    for i in 3..8 {
        assert_eq!(
            t.calls(&format!("f{i}")),
            0,
            "f{i} started after the failure"
        );
    }
    let aborted = t.aborted();
    assert!(
        aborted.contains(&"f0".to_string()) && aborted.contains(&"f2".to_string()),
        "{aborted:?}"
    );

    let t = StandIn::start().await;
    s.apply(loop_wf(
        "Loop Continue",
        vec![t.call_step(false)],
        json!({"maxConcurrency": 2, "onItemError": "continue"}),
    ))
    .await;
    let list: Vec<Value> = (0..6)
        .map(|i| json!({"name": format!("c{i}"), "ms": 10, "fail": u8::from(i % 3 == 1)}))
        .collect();
    let id = s.trigger("wf_loop_continue", json!({"items": list})).await;
    let run = s.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "completed", "{run}");
    let out = &step(&run, "each")["output"];
    assert_eq!(out["count"], 6);
    assert_eq!(out["succeeded"], 4);
    assert_eq!(out["failed"], 2);
    let idx: Vec<&Value> = out["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["index"])
        .collect();
    assert_eq!(idx, vec![&json!(1), &json!(4)], "{out}");
    assert_eq!(out["items"][1], Value::Null);
    assert_eq!(out["items"][0]["status"], 200, "{out}");
    assert_eq!(t.total_calls(), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn redrive_reruns_only_the_failed_items() {
    let s = Server::start();
    if s.on_postgres() {
        return;
    }
    let t = StandIn::start().await;
    s.apply(loop_wf(
        "Loop Redrive",
        vec![t.call_step(false)],
        json!({"maxConcurrency": 10, "output": "{{ steps.call.output.body.name }}"}),
    ))
    .await;
    // r3 and r7 fail on their first call only, after the others have completed.
    let list: Vec<Value> = (0..10)
        .map(|i| {
            let bad = i == 3 || i == 7;
            json!({"name": format!("r{i}"), "ms": if bad { 400 } else { 10 }, "fail": if bad { 2 } else { 0 }})
        })
        .collect();
    let id = s.trigger("wf_loop_redrive", json!({"items": list})).await;
    let run = s.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(step(&run, "each")["error"]["code"], "ITEM_FAILED", "{run}");
    let (st, v) = s
        .post(&format!("/api/v1/runs/{id}/redrive"), json!({}))
        .await;
    assert_eq!(st, 200, "{v}");
    let run = s.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "completed", "{run}");
    let names: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    assert_eq!(step(&run, "each")["output"]["items"], json!(names), "{run}");
    for i in 0..10 {
        let want = if i == 3 || i == 7 { 2 } else { 1 };
        assert_eq!(t.calls(&format!("r{i}")), want, "r{i}");
    }
    assert_eq!(run["redriveCount"], 1, "{run}");
    // The same children ran again: still one per index.
    let (_, kids) = s
        .get(&format!("/api/v1/runs?parentRunId={id}&limit=100"))
        .await;
    assert_eq!(kids["data"].as_array().unwrap().len(), 10, "{kids}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkill_mid_loop_leaves_one_completed_child_per_index() {
    let mut s = Server::start();
    if s.on_postgres() {
        return;
    }
    let t = StandIn::start().await;
    s.apply(loop_wf(
        "Loop Kill",
        vec![t.call_step(true)],
        json!({"maxConcurrency": 3, "output": "{{ steps.call.output.body.name }}"}),
    ))
    .await;
    let id = s
        .trigger("wf_loop_kill", json!({"items": items(&[300; 30])}))
        .await;
    eventually(Duration::from_secs(30), || async {
        (t.total_calls() >= 10).then_some(())
    })
    .await;
    s.kill();
    let before: HashMap<String, usize> = t.state.lock().unwrap().calls.clone();
    s.launch();
    let run = s.wait_for_run(&id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "completed", "{run}");
    let names: Vec<String> = (0..30).map(|i| format!("i{i}")).collect();
    assert_eq!(step(&run, "each")["output"]["items"], json!(names), "{run}");
    let (_, kids) = s
        .get(&format!("/api/v1/runs?parentRunId={id}&limit=100"))
        .await;
    let kids = kids["data"].as_array().unwrap();
    assert_eq!(kids.len(), 30, "one child per index");
    assert!(kids.iter().all(|k| k["status"] == "completed"));
    let twice: Vec<&String> = names.iter().filter(|n| t.calls(n) > 1).collect();
    assert!(names.iter().all(|n| t.calls(n) >= 1));
    // Only calls in flight at the kill ran again (at most the window, 3).
    assert!(twice.len() <= 3, "{twice:?}");
    assert!(twice.iter().all(|n| before.contains_key(*n)), "{twice:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_parallel_branch_with_fail_fast_stops_its_slow_sibling() {
    let s = Server::start_at(
        Arc::new(tempfile::tempdir().unwrap()),
        tempfile::tempdir().unwrap().keep().join("p.db"),
        &[],
        &[("FLOWCTL_LEASE_MS", "1500")],
    );
    let t = StandIn::start().await;
    let call = |name: &str, ms: u64, fail: u8| {
        json!({"id": format!("call-{name}"), "type": "action", "action": "http.request",
               "errorHandling": "fail",
               "config": {"method": "GET", "url": format!("{}/item/{name}?ms={ms}&fail={fail}", t.url),
                          "timeoutMs": 20000}})
    };
    s.apply(json!({
        "name": "Par Fast",
        "steps": [{"id": "both", "type": "parallel", "config": {"branches": {
            "slow": [call("slow", 8000, 0)],
            "bad": [call("bad", 50, 1)]
        }}}]
    }))
    .await;
    let started = std::time::Instant::now();
    let id = s.trigger("wf_par_fast", json!({})).await;
    let run = s.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(
        step(&run, "both")["error"]["code"],
        "BRANCH_FAILED",
        "{run}"
    );
    assert_eq!(step(&run, "both")["error"]["path"], "bad", "{run}");
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "the slow branch ran to its end"
    );
    assert_eq!(t.aborted(), vec!["slow".to_string()]);

    s.apply(json!({
        "name": "Par Both",
        "steps": [{"id": "both", "type": "parallel", "config": {"failFast": false, "branches": {
            "ok": [call("ok", 10, 0), {"id": "shape", "type": "transform", "config": {"mapping": {"v": 1}}}],
            "bad": [call("bad2", 10, 1)]
        }}}]
    }))
    .await;
    let id = s.trigger("wf_par_both", json!({})).await;
    let run = s.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "completed", "{run}");
    let out = &step(&run, "both")["output"];
    assert_eq!(out["ok"], json!({"v": 1}), "{out}");
    assert_eq!(out["bad"], Value::Null);
    assert_eq!(out["errors"][0]["branch"], "bad", "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_blocks_and_break_loop() {
    let s = Server::start();
    if s.on_postgres() {
        return;
    }
    s.apply(json!({
        "name": "Nested Blocks",
        "steps": [
            {"id": "base", "type": "transform", "config": {"mapping": {"k": 10}}},
            {"id": "groups", "type": "loop", "config": {
                "collection": "{{ input.groups }}", "itemVariable": "g", "indexVariable": "gi",
                "maxConcurrency": 2,
                "steps": [
                    {"id": "lines", "type": "loop", "config": {
                        "collection": "{{ g.items }}", "itemVariable": "x", "maxConcurrency": 3,
                        "steps": [{"id": "scale", "type": "transform",
                                   "config": {"mapping": "{{ x | times: steps.base.output.k }}"}}]}},
                    {"id": "both", "type": "parallel", "config": {"branches": {
                        "sum": [{"id": "add", "type": "transform",
                                 "config": {"mapping": "{{ steps.lines.output.items | sum }}"}}],
                        "name": [{"id": "label", "type": "transform",
                                  "config": {"mapping": "{{ g.name }}-{{ gi }}"}}]}}}
                ],
                "output": "{{ steps.both.output }}"}}
        ]
    }))
    .await;
    let id = s
        .trigger(
            "wf_nested_blocks",
            json!({"groups": [{"name": "a", "items": [1, 2]}, {"name": "b", "items": [3]}, {"name": "c", "items": []}]}),
        )
        .await;
    let run = s.wait_for_run(&id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        step(&run, "groups")["output"]["items"],
        json!([{"sum": 30, "name": "a-0"}, {"sum": 30, "name": "b-1"}, {"sum": 0, "name": "c-2"}]),
        "{run}"
    );
    // The item runs of the outer loop are one deeper than the run, the inner loop's two.
    let (_, kids) = s.get(&format!("/api/v1/runs?parentRunId={id}")).await;
    let kid = &kids["data"][0];
    assert_eq!(kid["depth"], 1);
    assert_eq!(kid["rootRunId"], id);

    s.apply(json!({
        "name": "Break Early",
        "steps": [{"id": "each", "type": "loop", "config": {
            "collection": "{{ input.list }}",
            "steps": [
                {"id": "enough", "type": "stop", "if": "{{ item == 3 }}",
                 "config": {"status": "completed", "output": "stop", "breakLoop": true}},
                {"id": "work", "type": "transform", "config": {"mapping": "{{ item }}"}}
            ]}}]
    }))
    .await;
    let id = s
        .trigger("wf_break_early", json!({"list": [1, 2, 3, 4, 5]}))
        .await;
    let run = s.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "completed", "{run}");
    let out = &step(&run, "each")["output"];
    assert_eq!(out["items"], json!([1, 2, "stop", null, null]), "{out}");
    assert_eq!(
        (
            out["count"].clone(),
            out["succeeded"].clone(),
            out["failed"].clone()
        ),
        (json!(5), json!(3), json!(0))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_finalize_invoices_example_runs_and_runs_show_prints_its_progress() {
    let s = Server::start();
    if s.on_postgres() {
        return;
    }
    let t = StandIn::start().await;
    let out = s.cli(&["apply", "workflows/finalize_invoices.json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut input: Value = serde_json::from_str(
        &std::fs::read_to_string("workflows/finalize_invoices.input.json").unwrap(),
    )
    .unwrap();
    input["billingUrl"] = json!(t.url);
    let id = s.trigger("wf_finalize_invoices", input).await;
    let run = s.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        run["output"],
        json!({"finalized": 3, "failed": 0, "errors": []}),
        "{run}"
    );
    assert_eq!(t.calls("in_002"), 1);
    let shown = s.cli(&["runs", "show", &id]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(
        stderr(&shown).contains("finalize-each: 3/3 done, 0 failed"),
        "{}",
        stderr(&shown)
    );
}
