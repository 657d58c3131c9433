//! Where a user looks at branches and child runs, through the real binary: `flowctl run
//! --wait`, `wait` and `runs show` name the branch taken, the steps skipped and why, a
//! run's parent and root, and draw the tree of its child runs; `runs list --parent` lists
//! a run's children; the documented invoice example (a branch on the amount and a
//! sub-workflow) applies and runs as the docs say.

use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

/// `wf_top` branches on the amount: `then` calls `wf_middle` (which calls `wf_leaf`),
/// `else` is a transform; `notify` calls `wf_leaf` on every run.
async fn apply_family<A: Api>(s: &A) {
    s.apply(json!({"name": "Leaf", "steps": [
        {"id": "echo", "type": "transform", "config": {"mapping": {"n": "{{ input.n }}"}}}]}))
        .await;
    s.apply(json!({"name": "Middle", "steps": [
        {"id": "leaf", "type": "workflow",
         "config": {"workflowId": "wf_leaf", "input": {"n": "{{ input.n }}"}}}]}))
        .await;
    s.apply(json!({"name": "Top", "steps": [
        {"id": "check", "type": "condition", "config": {
            "conditions": {"left": "{{ input.amount }}", "operator": "gt", "right": "1000"},
            "then": ["big"], "else": ["small"]}},
        {"id": "big", "type": "workflow",
         "config": {"workflowId": "wf_middle", "input": {"n": "{{ input.amount }}"}}},
        {"id": "small", "type": "transform", "config": {"mapping": {"n": "{{ input.amount }}"}}},
        {"id": "notify", "type": "workflow",
         "config": {"workflowId": "wf_leaf", "input": {"n": 1}}}
    ]}))
    .await;
}

async fn children<A: Api>(s: &A, id: &str) -> Vec<Value> {
    let (st, list) = s.get(&format!("/api/v1/runs?parentRunId={id}")).await;
    assert_eq!(st, 200, "{list}");
    let mut kids = list["data"].as_array().unwrap().clone();
    kids.reverse(); // oldest first
    kids
}

#[tokio::test(flavor = "multi_thread")]
async fn run_wait_and_runs_show_draw_the_branch_the_skips_the_parent_and_the_tree() {
    let s = Server::start();
    apply_family(&s).await;
    let out = s.cli(&["run", "wf_top", "--input", r#"{"amount": 5000}"#, "--wait"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("check: took then"), "{err}");
    assert!(err.contains("skipped small (check took then)"), "{err}");
    let root = err
        .lines()
        .find_map(|l| l.strip_suffix(" started"))
        .expect("the run id on stderr")
        .to_string();
    let kids = children(&s, &root).await;
    assert_eq!(kids.len(), 2, "{kids:?}");
    let (middle, notify) = (
        kids[0]["id"].as_str().unwrap(),
        kids[1]["id"].as_str().unwrap(),
    );
    let leaf = children(&s, middle).await;
    let leaf = leaf[0]["id"].as_str().unwrap();
    // The whole tree under the root, children in the order they started.
    let tree = format!(
        "{root} wf_top completed\n\
         ├─ {middle} wf_middle completed (step big)\n\
         │  └─ {leaf} wf_leaf completed (step leaf)\n\
         └─ {notify} wf_leaf completed (step notify)\n"
    );
    assert!(err.contains(&tree), "{err}");
    // The output stays clean JSON on stdout.
    let output: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        output,
        json!({"n": 1}),
        "the last step's output (notify's child)"
    );

    // A grandchild names its parent (and the step) and its root.
    let out = s.cli(&["runs", "show", leaf]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("parent: {middle} (step leaf)")),
        "{err}"
    );
    assert!(err.contains(&format!("root: {root} (depth 2)")), "{err}");
    let shown: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(shown["parentRunId"], middle);

    // The middle run: its parent, and its own subtree.
    let out = s.cli(&["wait", middle]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("parent: {root} (step big)")), "{err}");
    assert!(!err.contains("root:"), "the parent is the root: {err}");
    assert!(
        err.contains(&format!(
            "{middle} wf_middle completed\n└─ {leaf} wf_leaf completed (step leaf)\n"
        )),
        "{err}"
    );

    // `runs show` of the root: the same tree, and the JSON on stdout.
    let out = s.cli(&["runs", "show", &root]);
    assert!(stderr(&out).contains(&tree), "{}", stderr(&out));
    assert!(stderr(&out).contains("check: took then"));
    let shown: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(shown["children"]["total"], 2);

    // `runs list --parent` lists exactly the children.
    let out = s.cli(&["runs", "list", "--parent", &root]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list = stdout(&out);
    assert!(list.contains(middle) && list.contains(notify), "{list}");
    assert!(!list.contains(leaf) && !list.contains(&root), "{list}");

    // The other branch: no tree line for a skipped `workflow` step.
    let out = s.cli(&["run", "wf_top", "--input", r#"{"amount": 5}"#, "--wait"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("check: took else"), "{err}");
    assert!(err.contains("skipped big (check took else)"), "{err}");
    assert!(err.contains("└─ run_"), "{err}");
    assert!(!err.contains("├─"), "one child (notify): {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_that_may_not_list_runs_sees_the_child_counts_instead_of_the_tree() {
    let s = Server::start();
    apply_family(&s).await;
    let id = s.trigger("wf_top", json!({"amount": 5})).await;
    s.wait_for_run(&id, Duration::from_secs(20)).await;
    let key = s.create_key("executor", "workflows:execute");
    let out = s.cli(&["wait", &id, "--api-key", &key]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "children: 1 (1 completed, 0 failed, 0 running); `flowctl runs list --parent {id}` lists them"
        )),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_invoice_example_branches_on_amount_and_calls_its_sub_workflow() {
    let s = Server::start();
    // Both files in one apply: the called workflow is stored first.
    let out = s.cli(&[
        "apply",
        "workflows/invoice_by_amount.json",
        "workflows/send_invoice.json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));

    // Small: the `else` branch sends the invoice through the sub-workflow.
    let out = s.cli(&[
        "run",
        "wf_invoice_by_amount",
        "--input",
        "@workflows/invoice_by_amount.small.input.json",
        "--wait",
    ]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("check-amount: took else"), "{err}");
    assert!(
        err.contains("skipped request-approval (check-amount took else)"),
        "{err}"
    );
    assert!(err.contains("└─ run_"), "{err}");
    assert!(
        err.contains(" wf_send_invoice completed (step invoice-direct)"),
        "{err}"
    );
    let output: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(output["branch"], "else", "{output}");
    assert_eq!(output["net"], "840.00");
    assert_eq!(output["vat"], "168.00");
    assert_eq!(output["approver"], "not needed");
    // The invoice number comes from the child run (its own run id).
    let parent = err
        .lines()
        .find_map(|l| l.strip_suffix(" started"))
        .unwrap()
        .to_string();
    let kids = children(&s, &parent).await;
    assert_eq!(kids.len(), 1, "{kids:?}");
    let child = kids[0]["id"].as_str().unwrap();
    assert_eq!(kids[0]["triggerType"], "workflow");
    assert_eq!(
        output["invoice"],
        format!("INV-cus_456-{child}"),
        "{output}"
    );
    let (_, child_run) = s.get(&format!("/api/v1/runs/{child}")).await;
    assert_eq!(
        child_run["data"]["output"]["subject"],
        format!("Invoice INV-cus_456-{child}: 840.00 EUR")
    );

    // Large: approval, no child run.
    let out = s.cli(&[
        "run",
        "wf_invoice_by_amount",
        "--input",
        "@workflows/invoice_by_amount.input.json",
        "--wait",
    ]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("check-amount: took then"), "{err}");
    assert!(
        err.contains("skipped invoice-direct (check-amount took then)"),
        "{err}"
    );
    assert!(!err.contains("└─"), "no child run: {err}");
    let output: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        output,
        json!({"branch": "then", "net": "12250.50", "vat": "2327.60",
               "approver": "finance@example.com", "invoice": "pending approval"})
    );

    // As documented: with the sub-workflow paused the small order fails on
    // `invoice-direct`; once it is active again, redrive finishes the same run and keeps
    // the steps that had completed.
    let out = s.cli(&["workflows", "pause", "wf_send_invoice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = s.cli(&[
        "run",
        "wf_invoice_by_amount",
        "--input",
        "@workflows/invoice_by_amount.small.input.json",
        "--wait",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("failed step: invoice-direct"), "{err}");
    let failed = err
        .lines()
        .find_map(|l| l.strip_suffix(" started"))
        .unwrap()
        .to_string();
    let (_, before) = s.get(&format!("/api/v1/runs/{failed}")).await;
    let before = &before["data"];
    assert_eq!(before["error"]["code"], "STEP_ERROR", "{before}");
    let step = |run: &Value, id: &str| {
        run["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|st| st["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(
        step(before, "invoice-direct")["error"]["code"],
        "INVALID_STATUS"
    );
    let out = s.cli(&["workflows", "activate", "wf_send_invoice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = s.cli(&["runs", "redrive", &failed]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("(redrive 1)"), "{}", stdout(&out));
    let after = s.wait_for_run(&failed, Duration::from_secs(20)).await;
    assert_eq!(after["status"], "completed", "{after}");
    assert_eq!(after["redriveCount"], 1);
    for kept in ["total", "check-amount"] {
        assert_eq!(
            step(&after, kept)["completedAt"],
            step(before, kept)["completedAt"],
            "{kept} is kept: {after}"
        );
    }
    assert!(
        after["output"]["invoice"]
            .as_str()
            .unwrap()
            .starts_with("INV-cus_456-run_"),
        "{after}"
    );

    // The sub-workflow runs alone too, with its own example input.
    let out = s.cli(&[
        "run",
        "wf_send_invoice",
        "--input",
        "@workflows/send_invoice.input.json",
        "--wait",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}
