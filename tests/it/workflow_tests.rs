//! `flowctl test` and `flowctl simulate` through the real binary: passing and
//! failing cases with their diff, a missing mock that names the step while a
//! stand-in HTTP server receives nothing, a condition and a stop that really
//! run, `--update` round trips, the examples in `workflows/`, and `simulate`
//! against a server's recorded runs after a threshold is raised.

use crate::common::target::Target;
use crate::common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// `flowctl ARGS` with no server and no credentials around.
fn flowctl(home: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    env_for(&mut cmd, home);
    cmd.args(args).output().expect("run flowctl")
}

fn write(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p.to_str().unwrap().to_string()
}

/// A condition on the amount, a paid-order call on one branch, a `stop` for
/// empty orders.
fn orders(target: &Target) -> Value {
    let mut charge = target.step("charge", "");
    charge["config"]["body"] = json!({"amount": "{{ steps.total.output.net }}"});
    json!({
        "id": "wf_orders", "name": "Orders",
        "variables": {"limit": 1000},
        "steps": [
            {"id": "total", "type": "transform", "config": {"mapping": {"net": "{{ input.items | map: 'quantity * price' | sum }}"}}},
            {"id": "nothing", "type": "stop", "if": "{{ input.items | size == 0 }}",
             "config": {"status": "completed", "output": {"charged": false}}},
            {"id": "check", "type": "condition", "config": {
                "conditions": {"left": "{{ steps.total.output.net }}", "operator": "gt", "right": "{{ variables.limit }}"},
                "then": ["charge"], "else": ["small"]}},
            charge,
            {"id": "small", "type": "transform", "config": {"mapping": {"waived": true}}}
        ],
        "output": {
            "branch": "{{ steps.check.output.branch }}",
            "charged": "{{ steps.charge.output.body.ok | default: false }}"
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn cases_pass_and_fail_with_a_diff_and_a_condition_and_a_stop_really_run() {
    let target = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "orders.json", &orders(&target));
    write(
        dir.path(),
        "orders.test.json",
        &json!({"cases": [
            {"name": "a small order is waived",
             "input": {"items": [{"quantity": 1, "price": 10}]},
             "expect": {"status": "completed", "output": {"branch": "else", "charged": false},
                        "steps": {"charge": {"status": "skipped"}, "small": {"output": {"waived": true}}}}},
            {"name": "a large order is charged",
             "input": {"items": [{"quantity": 3, "price": 1000}]},
             "mocks": {"charge": {"status": 200, "headers": {}, "body": {"ok": true}}},
             "expect": {"output": {"branch": "then", "charged": true},
                        "steps": {"charge": {"config": {"body": {"amount": 3000}}, "attempts": 1}}}},
            {"name": "an empty order stops",
             "input": {"items": []},
             "expect": {"output": {"charged": false}, "steps": {"check": {"status": "skipped"}}}},
            {"name": "a wrong expectation",
             "input": {"items": [{"quantity": 2, "price": 1000}]},
             "mocks": {"charge": {"status": 200, "headers": {}, "body": {"ok": true}}},
             "expect": {"output": {"branch": "else", "charged": true},
                        "steps": {"small": {"status": "completed"}}}}
        ]}),
    );
    let home = tempfile::tempdir().unwrap();
    let out = flowctl(home.path(), &["test", dir.path().to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    for line in [
        "ok      ",
        "orders.test.json › a small order is waived",
        "orders.test.json › a large order is charged",
        "orders.test.json › an empty order stops",
        "FAIL    ",
        "orders.test.json › a wrong expectation",
        "          output.branch: expected \"else\", got \"then\"",
        "          steps.small.status: expected \"completed\", got \"skipped\" (skipped: check took then)",
        "3 passed, 1 failed",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert_eq!(
        text.matches("\nok ").count() + usize::from(text.starts_with("ok ")),
        3,
        "{text}"
    );

    let out = flowctl(
        home.path(),
        &["test", "--json", dir.path().to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (report["passed"].as_u64(), report["failed"].as_u64()),
        (Some(3), Some(1))
    );
    let wrong = &report["cases"][3];
    assert_eq!(wrong["verdict"], "failed");
    assert_eq!(
        wrong["differences"][0],
        json!({"path": "output.branch", "expected": "else", "actual": "then"})
    );
    // Offline: the stand-in the charge step names was never called.
    assert_eq!(target.count("charge"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_mock_names_the_step_and_nothing_is_called() {
    let target = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "orders.json", &orders(&target));
    let tests = write(
        dir.path(),
        "orders.test.json",
        &json!({"workflow": "wf_orders", "cases": [
            {"name": "forgot the mock", "input": {"items": [{"quantity": 5, "price": 1000}]},
             "expect": {"status": "completed"}}
        ]}),
    );
    let home = tempfile::tempdir().unwrap();
    let out = flowctl(home.path(), &["test", &tests]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("ERROR   ")
            && text.contains("› forgot the mock: step 'charge' (action http.request) has no mock"),
        "{text}"
    );
    assert!(text.contains("0 passed, 1 failed"), "{text}");
    assert_eq!(
        target.count("charge"),
        0,
        "the test runner called the stand-in"
    );

    // A mock for a step the workflow does not have is a typo, not a pass.
    write(
        dir.path(),
        "orders.test.json",
        &json!({"cases": [{"name": "typo", "input": {"items": []}, "mocks": {"chrage": {}}}]}),
    );
    let out = flowctl(home.path(), &["test", &tests]);
    assert!(
        stdout(&out).contains("mocks.chrage: the workflow has no step 'chrage'"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn update_writes_the_actual_results_and_round_trips() {
    let target_url = "http://127.0.0.1:9"; // nothing listens; nothing must be called
    let def = json!({
        "id": "wf_round", "name": "Round",
        "steps": [
            {"id": "sum", "type": "transform", "config": {"mapping": {"total": "{{ input.a | plus: input.b }}"}}},
            {"id": "post", "type": "action", "action": "http.request",
             "config": {"method": "POST", "url": format!("{target_url}/x"), "body": {"total": "{{ steps.sum.output.total }}"}}}
        ],
        "output": {"total": "{{ steps.sum.output.total }}", "id": "{{ steps.post.output.body.id }}"}
    });
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "round.json", &def);
    let tests = write(
        dir.path(),
        "round.test.json",
        &json!({"cases": [
            {"name": "decimal sum", "input": {"a": 0.1, "b": 0.2},
             "mocks": {"post": {"status": 201, "headers": {}, "body": {"id": "p_1"}}},
             "expect": {"output": {"total": 0.3, "id": "wrong"}, "steps": {"post": {"config": null}}}},
            {"name": "the post fails", "input": {"a": 1, "b": 2},
             "mocks": {"post": {"error": {"code": "HTTP_500", "message": "boom", "retryable": true}}}}
        ]}),
    );
    let home = tempfile::tempdir().unwrap();
    let out = flowctl(home.path(), &["test", &tests]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let out = flowctl(home.path(), &["test", "--update", &tests]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("2 passed, 0 failed (2 updated)"),
        "{}",
        stdout(&out)
    );
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&tests).unwrap()).unwrap();
    assert_eq!(
        written["cases"][0]["expect"],
        json!({"status": "completed", "output": {"total": 0.3, "id": "p_1"},
               "steps": {"post": {"config": {"method": "POST", "url": format!("{target_url}/x"), "body": {"total": 0.3}}}}})
    );
    // The retry policy's three attempts are on record; the failure is the expectation now.
    assert_eq!(written["cases"][1]["expect"]["status"], "failed");
    assert_eq!(written["cases"][1]["expect"]["error"]["code"], "STEP_ERROR");
    let before = std::fs::read_to_string(&tests).unwrap();
    let out = flowctl(home.path(), &["test", &tests]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("2 passed, 0 failed"));
    let out = flowctl(home.path(), &["test", "--update", "--json", &tests]);
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["updated"], 0);
    assert_eq!(report["cases"][1]["actual"]["steps"][1]["attempts"], 3);
    assert_eq!(
        report["cases"][1]["actual"]["steps"][1]["retryDelaysMs"],
        json!([1000, 2000])
    );
    assert_eq!(std::fs::read_to_string(&tests).unwrap(), before);
}

/// `.ci/run` runs this too: the examples cannot rot.
#[test]
fn every_example_in_workflows_has_tests_that_pass() {
    let home = tempfile::tempdir().unwrap();
    let out = flowctl(home.path(), &["test", "workflows/"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    for entry in std::fs::read_dir("workflows").unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".json")
            && !name.ends_with(".input.json")
            && !name.ends_with(".test.json")
        {
            let tests = name.replace(".json", ".test.json");
            assert!(
                Path::new("workflows").join(&tests).exists(),
                "workflows/{name} has no workflows/{tests}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn simulate_reports_the_runs_whose_branch_changes_after_a_threshold_is_raised() {
    let target = Target::start().await;
    let s = Server::start();
    let def = orders(&target);
    s.apply(def.clone()).await;
    let mut ids = vec![];
    for qty in [1, 3, 5] {
        // 500, 1500 and 2500: else, then, then under the limit of 1000.
        let id = s
            .trigger(
                "wf_orders",
                json!({"items": [{"quantity": qty, "price": 500}]}),
            )
            .await;
        let run = s.wait_for_run(&id, Duration::from_secs(20)).await;
        assert_eq!(run["status"], "completed", "{run}");
        ids.push(id);
    }
    assert_eq!(target.count("charge"), 2);

    // The new version raises the limit to 2000: the 1500 run now takes `else`.
    let mut raised = def.clone();
    raised["variables"]["limit"] = json!(2000);
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "orders.json", &raised);
    let out = s.cli(&["simulate", &file, "--runs", "10", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["runs"], 3, "{report:#}");
    let replays = report["replays"].as_array().unwrap();
    let by_id = |id: &str| replays.iter().find(|r| r["runId"] == id).unwrap().clone();
    let flipped = by_id(&ids[1]);
    assert_eq!(flipped["changed"], true);
    assert_eq!(
        flipped["branches"],
        json!([{"step": "check", "was": "then", "now": "else"}])
    );
    assert_eq!(
        flipped["output"],
        json!([{"path": "output.branch", "expected": "then", "actual": "else"},
               {"path": "output.charged", "expected": true, "actual": false}])
    );
    for same in [&ids[0], &ids[2]] {
        let r = by_id(same);
        assert_eq!(r["changed"], false, "{r:#}");
        assert_eq!(r["branches"], json!([]));
    }

    // A version that sends the paid orders somewhere new needs a live call there:
    // reported, never made.
    let mut renamed = def.clone();
    renamed["steps"][3]["id"] = json!("charge-v2");
    renamed["steps"][2]["config"]["then"] = json!(["charge-v2"]);
    renamed["output"]["charged"] = json!("{{ steps.charge-v2.output.body.ok | default: false }}");
    let file = write(dir.path(), "renamed.json", &renamed);
    let out = s.cli(&["simulate", &file, "--run", &ids[2], "--run", &ids[0]]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("against 2 recorded run(s)"), "{text}");
    assert!(
        text.contains("needs a live call: step 'charge-v2' (action http.request) has no recording"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{} (v1) completed → completed: unchanged", ids[0])),
        "{text}"
    );
    assert!(
        text.contains("2 run(s): 0 with a changed branch, 1 would need a live call, 1 unchanged"),
        "{text}"
    );

    // Text report of the raised limit, for people.
    let file = write(dir.path(), "orders.json", &raised);
    let out = s.cli(&["simulate", &file, "--runs", "3"]);
    let text = stdout(&out);
    assert!(text.contains("    branch check: then → else"), "{text}");
    assert!(
        text.contains("    output.branch: was \"then\", now \"else\""),
        "{text}"
    );
    assert!(
        text.contains("3 run(s): 1 with a changed branch, 0 would need a live call, 2 unchanged"),
        "{text}"
    );

    // Every replay was answered from recordings: the stand-in saw only the recorded runs.
    assert_eq!(target.count("charge"), 2);
    assert_eq!(target.count("charge-v2"), 0);

    // An unknown run is refused as a usage error.
    let out = s.cli(&["simulate", &file, "--run", "run_doesnotexist"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
