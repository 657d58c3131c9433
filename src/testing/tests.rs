use super::*;
use crate::workflow::compile;
use serde_json::{Value, json};

fn wf(def: Value) -> crate::workflow::CompiledWorkflow {
    compile(&def).expect("compiles")
}

fn mocks(v: Value) -> Mocks {
    Mocks::from_object(v.as_object().unwrap()).unwrap()
}

/// The runner's sources name nothing that could reach the outside world.
#[test]
fn the_runner_has_nothing_to_call() {
    let sources = [
        ("mod.rs", include_str!("mod.rs")),
        ("runner.rs", include_str!("runner.rs")),
        ("cases.rs", include_str!("cases.rs")),
        ("mocks.rs", include_str!("mocks.rs")),
        ("replay.rs", include_str!("replay.rs")),
        ("diff.rs", include_str!("diff.rs")),
    ];
    for (name, text) in sources {
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for banned in [
            "crate::actions",
            "crate::client",
            "crate::store",
            "crate::worker",
            "reqwest",
            "lettre",
            "tokio",
            "std::net",
            "std::fs",
        ] {
            assert!(!code.contains(banned), "{name} uses {banned}");
        }
    }
}

fn order() -> Value {
    json!({
        "id": "wf_t", "name": "T",
        "steps": [
            {"id": "total", "type": "transform", "config": {"mapping": {"net": "{{ input.amount }}"}}},
            {"id": "check", "type": "condition", "config": {
                "conditions": {"left": "{{ steps.total.output.net }}", "operator": "gt", "right": "100"},
                "then": ["charge"], "else": ["small"]}},
            {"id": "charge", "type": "action", "action": "http.request",
             "config": {"method": "POST", "url": "http://127.0.0.1:9/charge", "body": {"n": "{{ steps.total.output.net }}"}},
             "retryConfig": {"maxAttempts": 4, "initialDelayMs": 100, "maxDelayMs": 1000, "backoffMultiplier": 2}},
            {"id": "small", "type": "transform", "config": {"mapping": {"ok": true}}}
        ],
        "output": {"charged": "{{ steps.charge.output.body.id | default: 'no' }}"}
    })
}

#[test]
fn a_condition_runs_and_the_branch_not_taken_needs_no_mock() {
    let w = wf(order());
    let o = run(
        &w,
        json!({"amount": 5}),
        &Mocks::default(),
        &Library::default(),
        &Start::default(),
    );
    assert_eq!(o.status, "completed");
    assert_eq!(o.output, json!({"charged": "no"}));
    assert_eq!(o.step("check").unwrap().output["branch"], "else");
    assert_eq!(o.step("charge").unwrap().status, "skipped");
}

#[test]
fn a_missing_mock_stops_the_run_naming_the_step() {
    let w = wf(order());
    let o = run(
        &w,
        json!({"amount": 500}),
        &Mocks::default(),
        &Library::default(),
        &Start::default(),
    );
    assert_eq!(o.status, "incomplete");
    let m = o.first_missing().unwrap();
    assert_eq!(m.step_id, "charge");
    assert!(
        m.message()
            .contains("step 'charge' (action http.request) has no mock")
    );
}

#[test]
fn retries_complete_at_once_with_every_attempt_on_record() {
    let w = wf(order());
    let m = mocks(
        json!({"charge": {"error": {"code": "HTTP_503", "message": "down", "retryable": true}}}),
    );
    let o = run(
        &w,
        json!({"amount": 500}),
        &m,
        &Library::default(),
        &Start::default(),
    );
    assert_eq!(o.status, "failed");
    let charge = o.step("charge").unwrap();
    assert_eq!(charge.attempts, 4);
    assert_eq!(charge.retry_delays_ms, vec![100, 200, 400]);
    assert_eq!(charge.config.as_ref().unwrap()["body"]["n"], json!(500));
    assert_eq!(o.duration_ms, 700);
}

#[test]
fn a_wait_completes_at_once_and_reports_the_time_it_would_take() {
    let w = wf(json!({"name": "W", "steps": [
        {"id": "nap", "type": "wait", "config": {"durationMs": 3600000}},
        {"id": "t", "type": "transform", "config": {"mapping": {"at": "{{ now }}"}}}
    ]}));
    let o = run(
        &w,
        json!({}),
        &Mocks::default(),
        &Library::default(),
        &Start::default(),
    );
    assert_eq!(o.status, "completed");
    assert_eq!(o.step("nap").unwrap().output, json!({"waitedMs": 3600000}));
    assert_eq!(o.output, json!({"at": "2026-01-01T01:00:00.000Z"}));
}

#[test]
fn a_sub_workflow_runs_in_memory_when_its_definition_is_loaded() {
    let child = wf(json!({"id": "wf_child", "name": "Child", "steps": [
        {"id": "send", "type": "email", "config": {"action": "send", "to": "a@example.com", "subject": "s", "body": {"text": "x"}}},
        {"id": "out", "type": "transform", "config": {"mapping": {"sent": "{{ steps.send.output.messageId }}", "n": "{{ input.n }}"}}}
    ]}));
    let parent = wf(json!({"id": "wf_parent", "name": "Parent", "steps": [
        {"id": "call", "type": "workflow", "config": {"workflowId": "wf_child", "input": {"n": 2}}}
    ]}));
    let mut lib = Library::default();
    lib.add(&child);
    let m = mocks(json!({"send": {"messageId": "m1", "accepted": ["a@example.com"]}}));
    let o = run(&parent, json!({}), &m, &lib, &Start::default());
    assert_eq!(o.status, "completed", "{o:#?}");
    assert_eq!(o.output, json!({"sent": "m1", "n": 2}));
    // Without the email's mock, the child stops and so does the parent, naming the step.
    let o = run(
        &parent,
        json!({}),
        &Mocks::default(),
        &lib,
        &Start::default(),
    );
    assert_eq!(o.first_missing().unwrap().step_id, "send");
    // Without the definition, the workflow step itself needs a mock.
    let o = run(
        &parent,
        json!({}),
        &Mocks::default(),
        &Library::default(),
        &Start::default(),
    );
    assert_eq!(o.first_missing().unwrap().step_id, "call");
}

#[test]
fn update_writes_what_happened_keeping_the_checked_fields() {
    let w = wf(order());
    let o = run(
        &w,
        json!({"amount": 5}),
        &Mocks::default(),
        &Library::default(),
        &Start::default(),
    );
    let new = updated_expect(&json!({"steps": {"check": {"output": 1}}}), &o);
    assert_eq!(
        new,
        json!({"status": "completed", "output": {"charged": "no"},
               "steps": {"check": {"output": {"result": false, "branch": "else"}}}})
    );
    let case: Case =
        serde_json::from_value(json!({"name": "x", "input": {"amount": 5}, "expect": new}))
            .unwrap();
    assert_eq!(
        run_case(&w, &case, &Library::default()).verdict,
        Verdict::Passed
    );
}

#[test]
fn a_loop_runs_each_item_through_the_engine_with_a_mock_per_item() {
    let w = wf(json!({"id": "wf_loop", "name": "Loop", "steps": [
        {"id": "each", "type": "loop", "config": {
            "collection": "{{ input.ids }}", "itemVariable": "inv", "onItemError": "continue",
            "steps": [
                {"id": "skip-zero", "type": "stop", "if": "{{ inv == 'z' }}", "config": {"status": "completed", "output": "zero"}},
                {"id": "post", "type": "action", "action": "http.request",
                 "config": {"method": "POST", "url": "http://127.0.0.1:9/{{ inv }}/{{ index }}"}}
            ],
            "output": "{{ steps.post.output.body.n | default: inv }}"}},
        {"id": "sum", "type": "transform", "config": {"mapping": {"ok": "{{ steps.each.output.succeeded }}", "items": "{{ steps.each.output.items }}"}}}
    ]}));
    let m = mocks(json!({"post": [
        {"status": 200, "headers": {}, "body": {"n": 1}},
        {"status": 200, "headers": {}, "body": {"n": 2}},
        {"error": {"code": "HTTP_404", "message": "gone"}}
    ]}));
    let o = run(
        &w,
        json!({"ids": ["a", "b", "c", "z"]}),
        &m,
        &Library::default(),
        &Start::default(),
    );
    assert_eq!(o.status, "completed", "{o:#?}");
    assert_eq!(o.output, json!({"ok": 3, "items": [1, 2, null, "zero"]}));
    let each = o.step("each").unwrap();
    assert_eq!(each.children.len(), 4);
    assert_eq!(
        each.children[1]
            .step("post")
            .unwrap()
            .config
            .as_ref()
            .unwrap()["url"],
        "http://127.0.0.1:9/b/1"
    );
    // A fourth item that reaches the step needs a fourth element: fail-closed.
    let o = run(
        &w,
        json!({"ids": ["a", "b", "c", "d"]}),
        &m,
        &Library::default(),
        &Start::default(),
    );
    assert_eq!(o.first_missing().unwrap().step_id, "post");
    // A mock for a step inside a body is not a typo.
    let case: Case =
        serde_json::from_value(json!({"name": "x", "input": {"ids": []}, "mocks": {"post": []}}))
            .unwrap();
    assert_eq!(
        run_case(&w, &case, &Library::default()).verdict,
        Verdict::Passed
    );
}

#[test]
fn a_template_mock_answers_each_loop_item_from_its_variables() {
    let w = wf(json!({"id": "wf_loop_t", "name": "Loop", "steps": [
        {"id": "each", "type": "loop", "config": {
            "collection": "{{ input.ids }}", "itemVariable": "inv", "indexVariable": "i",
            "steps": [
                {"id": "post", "type": "action", "action": "http.request",
                 "config": {"method": "POST", "url": "http://127.0.0.1:9/{{ inv }}"}}
            ],
            "output": "{{ steps.post.output.body }}"}}
    ]}));
    let m = mocks(json!({"post": {"status": 200, "headers": {},
        "body": {"invoice": "INV-{{ inv }}", "position": "{{ i | plus: 1 }}"}}}));
    let o = run(
        &w,
        json!({"ids": ["a", "b"]}),
        &m,
        &Library::default(),
        &Start::default(),
    );
    assert_eq!(o.status, "completed", "{o:#?}");
    assert_eq!(
        o.step("each").unwrap().output["items"],
        json!([{"invoice": "INV-a", "position": 1}, {"invoice": "INV-b", "position": 2}])
    );
    // A template that fails makes the item's step fail, never a live call.
    let bad = mocks(json!({"post": {"body": "{{ inv | no_such_filter }}"}}));
    let o = run(
        &w,
        json!({"ids": ["a"]}),
        &bad,
        &Library::default(),
        &Start::default(),
    );
    assert_eq!(o.status, "failed", "{o:#?}");
}
