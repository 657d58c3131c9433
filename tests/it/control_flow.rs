//! `condition` and `stop` through the real binary: the branch taken and why steps were
//! skipped (API and CLI), a stop that completes or fails the run, apply-time refusals and
//! warnings, and a crash after a condition committed that does not evaluate it again.

use crate::common::app::TestApp;
use crate::common::target::Target;
use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

fn branching_workflow() -> Value {
    json!({
        "name": "Branch On Amount",
        "inputSchema": {"type": "object", "required": ["amount"]},
        "steps": [
            {"id": "check-amount", "type": "condition", "config": {
                "conditions": {"left": "{{ input.amount }}", "operator": "gt", "right": "10000"},
                "then": ["request-approval"], "else": ["invoice-direct"]}},
            {"id": "request-approval", "type": "transform", "config": {"mapping": {"approval": "needed"}}},
            {"id": "invoice-direct", "type": "transform", "config": {"mapping": {"invoice": "sent"}}},
            {"id": "german-vat", "type": "transform",
             "if": "{{ input.amount > 1000 and input.country == 'DE' }}",
             "config": {"mapping": {"vat": "{{ input.amount | times: 0.19 | fixed: 2 }}"}}}
        ],
        "output": {
            "branch": "{{ steps.check-amount.output.branch }}",
            "vat": "{{ steps.german-vat.output.vat | default: 'none' }}"
        }
    })
}

fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no step {id} in {run}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_condition_takes_a_branch_and_skipped_steps_say_why() {
    let s = TestApp::start();
    s.apply(branching_workflow()).await;

    let high = s
        .trigger(
            "wf_branch_on_amount",
            json!({"amount": 20000, "country": "DE"}),
        )
        .await;
    let run = s.wait_for_run(&high, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"], json!({"branch": "then", "vat": "3800.00"}));
    let cond = step(&run, "check-amount");
    assert_eq!(cond["type"], "condition");
    assert_eq!(cond["output"], json!({"result": true, "branch": "then"}));
    assert_eq!(step(&run, "request-approval")["status"], "completed");
    let skipped = step(&run, "invoice-direct");
    assert_eq!(skipped["status"], "skipped");
    assert_eq!(skipped["output"], Value::Null);
    assert_eq!(
        skipped["skipReason"],
        json!({"condition": "check-amount", "branch": "then"})
    );

    let low = s
        .trigger(
            "wf_branch_on_amount",
            json!({"amount": "50", "country": "FR"}),
        )
        .await;
    let run = s.wait_for_run(&low, Duration::from_secs(20)).await;
    assert_eq!(run["output"], json!({"branch": "else", "vat": "none"}));
    assert_eq!(
        step(&run, "request-approval")["skipReason"],
        json!({"condition": "check-amount", "branch": "else"})
    );
    assert_eq!(
        step(&run, "german-vat")["skipReason"],
        json!({"if": "{{ input.amount > 1000 and input.country == 'DE' }}"})
    );
    assert!(step(&run, "invoice-direct").get("skipReason").is_none());

    // The CLI says which branch was taken and why steps were skipped.
    let out = s.cli(&["runs", "show", &low]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("check-amount: took else"), "{err}");
    assert!(
        err.contains("skipped request-approval (check-amount took else)"),
        "{err}"
    );
    let out = s.cli(&[
        "run",
        "wf_branch_on_amount",
        "--input",
        r#"{"amount": 12000}"#,
        "--wait",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("check-amount: took then"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("skipped invoice-direct (check-amount took then)"),
        "{}",
        stderr(&out)
    );
    let output: Value = serde_json::from_str(&stdout(&out)).expect("output is JSON");
    assert_eq!(output["branch"], "then");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_condition_error_fails_the_run_with_condition_error_on_the_step() {
    let s = TestApp::start();
    s.apply(branching_workflow()).await;
    let run_id = s
        .trigger("wf_branch_on_amount", json!({"amount": "a lot"}))
        .await;
    let run = s.wait_for_run(&run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["error"]["stepId"], "check-amount");
    let cond = step(&run, "check-amount");
    assert_eq!(cond["error"]["code"], "CONDITION_ERROR", "{cond}");
    assert!(
        cond["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot order string \"a lot\""),
        "{cond}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_ends_the_run_completed_or_failed_and_skips_the_rest() {
    let s = TestApp::start();
    s.apply(json!({
        "name": "Maybe Stop",
        "steps": [
            {"id": "count", "type": "transform", "config": {"mapping": {"n": "{{ input.items | size }}"}}},
            {"id": "nothing-to-do", "type": "stop", "if": "{{ steps.count.output.n == 0 }}",
             "config": {"status": "completed", "output": {"skipped": true}}},
            {"id": "too-many", "type": "stop", "if": "{{ steps.count.output.n > 3 }}",
             "config": {"status": "failed", "error": {"code": "TOO_MANY_ITEMS",
                        "message": "{{ steps.count.output.n }} items; at most 3"}}},
            {"id": "work", "type": "transform", "config": {"mapping": {"done": "{{ steps.count.output.n }}"}}}
        ]
    }))
    .await;
    let empty = s.trigger("wf_maybe_stop", json!({"items": []})).await;
    let run = s.wait_for_run(&empty, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"], json!({"skipped": true}));
    assert_eq!(step(&run, "nothing-to-do")["status"], "completed");
    for id in ["too-many", "work"] {
        assert_eq!(step(&run, id)["status"], "skipped");
        assert_eq!(
            step(&run, id)["skipReason"],
            json!({"stop": "nothing-to-do"})
        );
    }

    let many = s
        .trigger("wf_maybe_stop", json!({"items": [1, 2, 3, 4]}))
        .await;
    let run = s.wait_for_run(&many, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(
        run["error"],
        json!({"code": "TOO_MANY_ITEMS", "message": "4 items; at most 3", "stepId": "too-many"})
    );
    assert_eq!(run["output"], Value::Null);
    assert_eq!(
        step(&run, "work")["skipReason"],
        json!({"stop": "too-many"})
    );

    let some = s.trigger("wf_maybe_stop", json!({"items": [1]})).await;
    let run = s.wait_for_run(&some, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"], json!({"done": 1}));
    // `flowctl run --wait` exits non-zero on a failed stop and names the error.
    let out = s.cli(&[
        "run",
        "wf_maybe_stop",
        "--input",
        r#"{"items": [1,2,3,4,5]}"#,
        "--wait",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("5 items; at most 3"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_refuses_bad_branches_and_warns_about_references_a_condition_may_skip() {
    let s = TestApp::start();
    let (status, body) = s
        .post(
            "/api/v1/workflows",
            json!({"name": "Bad", "steps": [
                {"id": "c", "type": "condition", "config": {
                    "conditions": {"left": "{{ input.a }}", "operator": "greater", "right": 1},
                    "then": ["later", "ghost"], "else": ["later"]}},
                {"id": "later", "type": "transform", "config": {"mapping": "{{ input.a = 1 }}"}}
            ]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
    let details = body["error"]["details"].to_string();
    for needle in [
        "unknown operator 'greater'; the operators are eq, ne, gt",
        "unknown step 'ghost'",
        "'later' is listed in both then and else",
        "unknown operator '=' (did you mean '=='?)",
    ] {
        assert!(details.contains(needle), "{needle}: {details}");
    }

    let unset = json!({"name": "Unset", "steps": [
        {"id": "check-amount", "type": "condition", "config": {
            "conditions": {"left": "{{ input.amount }}", "operator": "gt", "right": "10000"},
            "then": ["high-value"]}},
        {"id": "high-value", "type": "transform", "config": {"mapping": {"total": 1}}},
        {"id": "invoice", "type": "transform", "config": {"mapping": {"amount": "{{ steps.high-value.output.total }}"}}}
    ]});
    let applied = s.apply(unset.clone()).await;
    assert_eq!(
        applied["warnings"],
        json!([{"path": ["steps", 2, "config", "mapping", "amount"],
                "message": "'steps.high-value.output.total' is unset when 'check-amount' takes 'else' (use `| default:` if that is expected)"}])
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("unset.json");
    std::fs::write(&file, unset.to_string()).unwrap();
    let path = file.to_str().unwrap();
    let out = s.cli(&["validate", path]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: steps[2].config.mapping.amount: 'steps.high-value.output.total' is unset when 'check-amount' takes 'else'"),
        "{}",
        stderr(&out)
    );
    let out = s.cli(&["validate", "--strict", path]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("error: steps[2].config.mapping.amount"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_condition_committed_before_a_crash_is_not_evaluated_again() {
    let t = Target::start().await;
    let mut s = Server::start();
    s.apply(json!({"name": "Branch Then Call", "steps": [
        {"id": "check", "type": "condition", "config": {
            "conditions": {"left": "{{ input.amount }}", "operator": "gte", "right": 100},
            "then": ["slow"], "else": ["other"]}},
        t.step("slow", "delay_ms=3000"),
        {"id": "other", "type": "transform", "config": {"mapping": 1}}
    ]}))
    .await;
    let run_id = s
        .trigger("wf_branch_then_call", json!({"amount": 100}))
        .await;
    eventually(Duration::from_secs(10), || async {
        (t.count("slow") == 1).then_some(())
    })
    .await;
    let (_, before) = s.get(&format!("/api/v1/runs/{run_id}")).await;
    let before = step(&before["data"], "check").clone();
    assert_eq!(before["output"], json!({"result": true, "branch": "then"}));
    s.kill();
    s.launch();
    let run = s.wait_for_run(&run_id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "completed", "{run}");
    let after = step(&run, "check");
    // Same record: evaluated once, at its first claim, and committed before the call.
    assert_eq!(after["completedAt"], before["completedAt"], "{run}");
    assert_eq!(after["attempts"], 1);
    assert_eq!(after["output"], before["output"]);
    assert_eq!(
        step(&run, "other")["skipReason"],
        json!({"condition": "check", "branch": "then"})
    );
    assert_eq!(
        t.count("slow"),
        2,
        "the call in flight runs again (at least once)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_invoice_by_amount_example_branches_on_amount_as_documented() {
    let s = TestApp::start();
    let out = s.cli(&[
        "apply",
        "workflows/invoice_by_amount.json",
        "workflows/send_invoice.json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("warning"),
        "the example has no definedness warning: {}",
        stderr(&out)
    );
    let out = s.cli(&[
        "run",
        "wf_invoice_by_amount",
        "--input",
        "@workflows/invoice_by_amount.input.json",
        "--wait",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("check-amount: took then"), "{err}");
    assert!(
        err.contains("skipped invoice-direct (check-amount took then)"),
        "{err}"
    );
    let output: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        output,
        json!({"branch": "then", "net": "12250.50", "vat": "2327.60",
               "approver": "finance@example.com", "invoice": "pending approval"})
    );
    let small = s
        .trigger(
            "wf_invoice_by_amount",
            json!({"customerId": "cus_1", "items": [{"quantity": 2, "price": 10}]}),
        )
        .await;
    let run = s.wait_for_run(&small, Duration::from_secs(20)).await;
    assert_eq!(run["output"]["branch"], "else", "{run}");
    assert_eq!(run["output"]["approver"], "not needed");
    assert_eq!(run["output"]["vat"], "0.00");
    let empty = s
        .trigger(
            "wf_invoice_by_amount",
            json!({"customerId": "cus_1", "items": []}),
        )
        .await;
    let run = s.wait_for_run(&empty, Duration::from_secs(20)).await;
    assert_eq!(run["output"], json!({"invoiced": false}), "{run}");
    assert_eq!(
        step(&run, "check-amount")["skipReason"],
        json!({"stop": "nothing-to-invoice"})
    );
}
