//! Replay and `triggerType` through the real server and CLI: a replayed run
//! has the original's input and connection, runs the latest version, and is
//! listed under `triggerType=replay`.

use crate::common::app::TestApp;
use crate::common::*;
use serde_json::json;
use std::time::Duration;

fn echo(version_mark: &str) -> serde_json::Value {
    json!({"id": "wf_echo_replay", "name": "Echo replay",
        "inputSchema": {"type": "object", "required": ["x"],
            "properties": {"x": {"type": "integer"}, "tier": {"type": "string", "default": "basic"}}},
        "steps": [{"id": "t", "type": "transform",
            "config": {"mapping": {"got": "{{input.x}}", "mark": version_mark}}}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_starts_a_new_run_with_the_same_input_on_the_latest_version() {
    let s = TestApp::start();
    s.apply(echo("v1")).await;
    let first = s.trigger("wf_echo_replay", json!({"x": 7})).await;
    let done = s.wait_for_run(&first, Duration::from_secs(10)).await;
    assert_eq!(done["triggerType"], "api", "{done}");
    assert_eq!(done["output"]["mark"], "v1");
    s.apply(echo("v2")).await;

    let out = s.cli(&["runs", "replay", &first]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let second = stdout(&out).trim().to_string();
    assert!(second.starts_with("run_") && second != first, "{second}");
    let replayed = s.wait_for_run(&second, Duration::from_secs(10)).await;
    assert_eq!(replayed["status"], "completed", "{replayed}");
    assert_eq!(replayed["triggerType"], "replay");
    assert_eq!(replayed["workflowVersion"], 2);
    assert_eq!(replayed["input"], done["input"]);
    assert_eq!(replayed["input"]["tier"], "basic");
    assert_eq!(replayed["output"], json!({"got": 7, "mark": "v2"}));

    let (status, v) = s.get("/api/v1/runs?triggerType=replay").await;
    assert_eq!(status, 200, "{v}");
    let ids: Vec<_> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(second)]);
    let (_, v) = s.get("/api/v1/runs?triggerType=api").await;
    assert_eq!(v["data"][0]["id"], first.as_str());
    assert_eq!(v["data"].as_array().unwrap().len(), 1);

    let out = s.cli(&["runs", "list", "--trigger", "replay"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed = stdout(&out);
    assert!(
        listed.contains(&second) && listed.contains("replay"),
        "{listed}"
    );
    assert!(!listed.contains(&first), "{listed}");
    let out = s.cli(&["runs", "list", "--trigger", "cron"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown trigger type 'cron'"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_is_refused_for_a_paused_workflow_and_an_unknown_run() {
    let s = TestApp::start();
    s.apply(echo("v1")).await;
    let first = s.trigger("wf_echo_replay", json!({"x": 1})).await;
    s.wait_for_run(&first, Duration::from_secs(10)).await;
    let (status, _) = s
        .post("/api/v1/workflows/wf_echo_replay/pause", json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, v) = s
        .post(&format!("/api/v1/runs/{first}/replay"), json!({}))
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["code"], "INVALID_STATUS");
    assert_eq!(
        v["error"]["message"],
        "Workflow must be active to run. Current status: paused"
    );
    let out = s.cli(&["runs", "replay", "run_nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("NOT_FOUND"), "{}", stderr(&out));
}
