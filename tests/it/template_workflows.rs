//! The template language inside real workflows: apply-time errors with path
//! and column, run-time TEMPLATE_ERROR naming step, config path and filter,
//! missing-value warnings, every root, and the step-level `if`.

use crate::common::app::TestApp;
use crate::common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn apply_time_template_errors_have_path_column_and_suggestion() {
    let s = TestApp::start();
    let (status, v) = s
        .post("/api/v1/workflows", json!({"name": "Typos", "steps": [
            {"id": "a", "type": "transform", "config": {"mapping": {"total": "{{ input.price | tims: 2 }}"}}},
            {"id": "b", "type": "transform", "config": {"mapping": {"x": "{{ input.items | join: ',', 'extra' }}", "y": "{{ input.x | map: 'a +' }}"}}}]}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "VALIDATION_ERROR");
    assert_eq!(v["error"]["message"], "Workflow definition is invalid");
    let details = v["error"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 3, "{v}");
    assert_eq!(
        details[0]["path"],
        json!(["steps", 0, "config", "mapping", "total"])
    );
    let m = details[0]["message"].as_str().unwrap();
    assert!(
        m.contains("unknown filter 'tims'")
            && m.contains("did you mean 'times'?")
            && m.contains("column 18"),
        "{m}"
    );
    assert_eq!(
        details[1]["path"],
        json!(["steps", 1, "config", "mapping", "x"])
    );
    assert!(details[2]["path"] == json!(["steps", 1, "config", "mapping", "y"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn runtime_type_error_fails_the_step_with_template_error() {
    let s = TestApp::start();
    s.apply(json!({"name": "Typed", "steps": [
        {"id": "calc", "type": "transform", "config": {"mapping": {"double": "{{ input.price | times: 2 }}"}}}]}))
    .await;
    let run_id = s.trigger("wf_typed", json!({"price": "abc"})).await;
    let run = s.wait_for_run(&run_id, Duration::from_secs(10)).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["error"]["code"], "STEP_ERROR");
    assert_eq!(run["error"]["stepId"], "calc");
    let step = &run["steps"][0];
    assert_eq!(step["error"]["code"], "TEMPLATE_ERROR");
    let m = step["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("step 'calc'") && m.contains("config.mapping.double") && m.contains("'times'"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn arithmetic_on_a_missing_amount_fails_and_says_to_add_default_zero() {
    let s = TestApp::start();
    s.apply(json!({"name": "Null Money", "steps": [
        {"id": "calc", "type": "transform", "config": {"mapping": {"cents": "{{ input.amount | times: 100 }}"}}}]}))
    .await;
    let run_id = s.trigger("wf_null_money", json!({})).await;
    let run = s.wait_for_run(&run_id, Duration::from_secs(10)).await;
    assert_eq!(run["status"], "failed");
    let step = &run["steps"][0];
    assert_eq!(step["error"]["code"], "TEMPLATE_ERROR");
    let m = step["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("step 'calc'")
            && m.contains("config.mapping.cents")
            && m.contains("got null")
            && m.contains("`| default: 0`"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn decimal_chains_stay_exact_into_the_step_output() {
    let s = TestApp::start();
    s.apply(json!({"name": "Thirds", "steps": [
        {"id": "calc", "type": "transform", "config": {"mapping": {
            "whole": "{{ 100 | divided_by: 3 | times: 3 }}",
            "sum": "{{ input.a | map: 'x / 3' | sum }}",
            "text": "{{ 2 | divided_by: 3 | times: 3 }} of {{ input.a.size }}"}}}]}))
        .await;
    let run_id = s
        .trigger("wf_thirds", json!({"a": [{"x": 1}, {"x": 1}, {"x": 1}]}))
        .await;
    let run = s.wait_for_run(&run_id, Duration::from_secs(10)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        run["steps"][0]["output"],
        json!({"whole": 100, "sum": 1, "text": "2 of 3"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn roots_warnings_and_conditions() {
    let s = TestApp::start();
    s.apply(json!({"name": "Roots", "variables": {"rate": 0.08},
        "steps": [
            {"id": "first", "type": "transform", "config": {"mapping": {
                "run": "{{ runId }}", "same": "{{ run.id }}", "wf": "{{ workflow.name }}", "version": "{{ run.workflowVersion }}",
                "taxed": "{{ input.amount | times: variables.rate }}", "header": "{{ input.headers[\"x-id\"] }}",
                "first": "{{ input.items[0] }}", "missing": "{{ input.nope }}", "text": "[{{ input.nope }}]",
                "literal": "{{ '{{' }} not a template", "now": "{{ now | date: '%Y' }}"}}},
            {"id": "skipped", "type": "transform", "if": "{{ input.flag }}", "config": {"mapping": {"x": 1}}},
            {"id": "last", "type": "transform", "if": "{{ steps.first.status | default: 'x' }}",
             "config": {"mapping": {"prev": "{{ steps.first.output.taxed }}", "skippedStatus": "{{ steps.skipped.status }}"}}}]}))
    .await;
    let run_id = s
        .trigger(
            "wf_roots",
            json!({"amount": 100, "headers": {"x-id": "h1"}, "items": ["a", "b"], "flag": false}),
        )
        .await;
    let run = s.wait_for_run(&run_id, Duration::from_secs(10)).await;
    assert_eq!(run["status"], "completed", "{run}");
    let out = &run["steps"][0]["output"];
    assert_eq!(out["run"], run_id.as_str());
    assert_eq!(out["same"], run_id.as_str());
    assert_eq!(out["wf"], "Roots");
    assert_eq!(out["version"], 1);
    assert_eq!(out["taxed"], 8);
    assert_eq!(out["header"], "h1");
    assert_eq!(out["first"], "a");
    assert_eq!(out["missing"], serde_json::Value::Null);
    assert_eq!(out["text"], "[]");
    assert_eq!(out["literal"], "{{ not a template");
    assert_eq!(out["now"].as_str().unwrap().len(), 4);
    let warnings = run["steps"][0]["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("input.nope")),
        "{run}"
    );
    assert_eq!(run["steps"][1]["status"], "skipped");
    assert_eq!(
        run["output"],
        json!({"prev": 8, "skippedStatus": "skipped"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn key_order_is_kept_in_output_and_is_not_a_new_version() {
    let s = TestApp::start();
    let def = json!({"name": "Ordered", "steps": [
        {"id": "shape", "type": "transform", "config": {"mapping": {
            "zeta": "{{ input.obj | json }}", "alpha": "{{ input.obj.b }}"}}}]});
    s.apply(def).await;
    let run_id = s
        .trigger(
            "wf_ordered",
            json!({"obj": {"z": 1, "b": 2, "m": {"y": 1, "a": 2}}}),
        )
        .await;
    let run = s.wait_for_run(&run_id, Duration::from_secs(10)).await;
    assert_eq!(run["status"], "completed", "{run}");
    let output = &run["steps"][0]["output"];
    assert_eq!(output["zeta"], r#"{"z":1,"b":2,"m":{"y":1,"a":2}}"#);
    let keys: Vec<&String> = output.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["zeta", "alpha"], "the mapping's order: {output}");

    // The same definition with its keys in another order is the same version.
    let reordered = json!({"steps": [
        {"config": {"mapping": {"alpha": "{{ input.obj.b }}", "zeta": "{{ input.obj | json }}"}},
         "type": "transform", "id": "shape"}], "name": "Ordered"});
    let (status, v) = s.post("/api/v1/workflows", reordered).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["result"], "unchanged", "{v}");
    assert_eq!(v["data"]["version"], 1, "{v}");
}
