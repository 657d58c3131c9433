//! The CLI through the real binary: apply/validate/run/wait, exit codes,
//! credentials discovery, and the database safety rules.

use crate::common::*;
use serde_json::{Value, json};
use std::process::Command;

fn write(dir: &std::path::Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p.to_str().unwrap().to_string()
}

fn echo_workflow(name: &str) -> Value {
    json!({"name": name, "steps": [{"id": "t", "type": "transform", "config": {"mapping": {"got": "{{input.x}}"}}}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_reports_created_updated_unchanged_and_versions() {
    let s = Server::start();
    let dir = s.home.path().join("defs");
    std::fs::create_dir_all(&dir).unwrap();
    let file = write(&dir, "echo.json", &echo_workflow("Echo Flow"));
    std::fs::write(dir.join("echo.input.json"), "{\"x\": 1}").unwrap();

    let out = s.cli(&["apply", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "created wf_echo_flow (version 1, active)"
    );
    let out = s.cli(&["apply", &file]);
    assert_eq!(
        stdout(&out).trim(),
        "unchanged wf_echo_flow (version 1, active)"
    );

    let mut changed = echo_workflow("Echo Flow");
    changed["steps"][0]["config"]["mapping"]["extra"] = json!(true);
    write(&dir, "echo.json", &changed);
    let out = s.cli(&["apply", &file]);
    assert_eq!(
        stdout(&out).trim(),
        "updated wf_echo_flow (version 2, active)"
    );

    // Only the status changed: no new version.
    changed["status"] = json!("paused");
    write(&dir, "echo.json", &changed);
    let out = s.cli(&["apply", &file]);
    assert_eq!(
        stdout(&out).trim(),
        "updated wf_echo_flow (version 2, paused)"
    );

    let (status, v) = s.get("/api/v1/workflows/wf_echo_flow").await;
    assert_eq!(status, 200);
    assert_eq!(v["data"]["versions"], json!([1, 2]));
    assert_eq!(v["data"]["status"], "paused");
    let (_, v1) = s.get("/api/v1/workflows/wf_echo_flow/versions/1").await;
    assert!(
        v1["data"]["definition"]["steps"][0]["config"]["mapping"]
            .get("extra")
            .is_none()
    );

    let out = s.cli(&["run", "wf_echo_flow", "--wait"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("Current status: paused"),
        "{}",
        stderr(&out)
    );
    let out = s.cli(&["workflows", "activate", "wf_echo_flow"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = s.cli(&["run", "wf_echo_flow", "--input", "{\"x\": 7}", "--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let output: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(output, json!({"got": 7, "extra": true}));
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_rejects_invalid_definitions_with_paths() {
    let s = Server::start();
    let bad = json!({"name": "Bad", "steps": [
        {"id": "a", "type": "transform", "config": {"mapping": {"x": "{{steps.b.output}}"}}},
        {"id": "b", "type": "teleport"},
        {"id": "a", "type": "transform", "config": {"mapping": {}}}]});
    let file = write(s.home.path(), "bad.json", &bad);
    let out = s.cli(&["apply", &file]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("VALIDATION_ERROR: Workflow definition is invalid"),
        "{err}"
    );
    assert!(
        err.contains("steps[0].config.mapping.x: step 'b' is referenced before it runs"),
        "{err}"
    );
    assert!(err.contains("steps[2].id: duplicate step id 'a'"), "{err}");
    assert!(
        err.contains("steps[1].type: unknown step type 'teleport'"),
        "{err}"
    );
}

#[test]
fn validate_lists_every_problem_offline_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = json!({
        "name": "Five Mistakes",
        "trigger": {"type": "cron"},
        "inputSchema": {"type": "not-a-type"},
        "steps": [
            {"id": "a", "type": "transform", "config": {"mapping": {"x": "{{input.x"}}},
            {"id": "b", "type": "action", "action": "stripe.teleport", "config": {}},
            {"id": "c", "type": "transform", "config": {"mapping": {"y": "{{steps.zzz.output}}"}}}
        ]
    });
    let file = write(dir.path(), "bad.json", &bad);
    let good = write(dir.path(), "good.json", &echo_workflow("Good"));
    let mut cmd = Command::new(BIN);
    env_for(&mut cmd, dir.path());
    let out = cmd.args(["validate", &file, &good]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for needle in [
        "trigger.type",
        "inputSchema.type",
        "steps[0].config.mapping.x",
        "steps[1].action",
        "steps[2].config.mapping.y",
    ] {
        assert!(
            err.contains(&format!("  {needle}: ")),
            "missing {needle} in:\n{err}"
        );
    }
    assert!(err.contains("5 problem(s)"), "{err}");
    assert!(err.contains("good.json: ok (wf_good)"), "{err}");

    let mut cmd = Command::new(BIN);
    env_for(&mut cmd, dir.path());
    let out = cmd.args(["validate", &good]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn run_and_wait_exit_codes() {
    let s = Server::start();
    s.apply(json!({"name": "Fails", "steps": [
        {"id": "boom", "type": "action", "action": "http.request", "errorHandling": "fail",
         "config": {"url": "http://127.0.0.1:9/nothing"}},
        {"id": "after", "type": "transform", "config": {"mapping": {"x": 1}}}]}))
        .await;
    let out = s.cli(&["run", "wf_fails", "--wait"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("failed step: boom"),
        "{}",
        stderr(&out)
    );

    s.apply(json!({"name": "Slow", "steps": [{"id": "nap", "type": "wait", "config": {"durationMs": 3000}}]})).await;
    let out = s.cli(&["run", "wf_slow", "--wait", "--timeout", "0.5"]);
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));

    // Without --wait the run id is printed; `wait` follows it.
    let out = s.cli(&["run", "wf_slow"]);
    assert_eq!(out.status.code(), Some(0));
    let run_id = stdout(&out).trim().to_string();
    assert!(run_id.starts_with("run_"));
    let out = s.cli(&["wait", &run_id, "--timeout", "20"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let output: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(output["waitedMs"].as_i64().unwrap() >= 3000, "{output}");

    let out = s.cli(&["run", "wf_slow", "--input", "@-", "--json"]);
    assert_eq!(out.status.code(), Some(2), "stdin is empty: not JSON");
    let out = s.cli_stdin(
        &["run", "wf_slow", "--input", "@-", "--json"],
        Some("{\"a\": 1}"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let data: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(data["status"], "pending");
}

#[test]
fn client_errors_name_the_cause_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: that is said first, nothing about keys (exit 3).
    let mut cmd = Command::new(BIN);
    env_for(&mut cmd, dir.path());
    let out = cmd
        .args(["run", "wf_x", "--url", "127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot reach the flowctl server at http://127.0.0.1:9")
            && !stderr(&out).contains("API key"),
        "{}",
        stderr(&out)
    );
    // Something listens, but there is no key for it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut cmd = Command::new(BIN);
    env_for(&mut cmd, dir.path());
    let out = cmd.args(["run", "wf_x", "--url", &url]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("no API key: set FLOWCTL_API_KEY or run flowctl serve once on this machine")
    );

    let mut cmd = Command::new(BIN);
    env_for(&mut cmd, dir.path());
    let out = cmd
        .args([
            "run",
            "wf_x",
            "--url",
            "http://127.0.0.1:9",
            "--api-key",
            "wfk_x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("cannot reach the flowctl server"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn data_survives_restart_and_one_server_per_database() {
    let mut s = Server::start();
    s.apply(echo_workflow("Keep Me")).await;
    let run_id = s.trigger("wf_keep_me", json!({"x": "a"})).await;
    s.wait_for_run(&run_id, std::time::Duration::from_secs(10))
        .await;

    // A second server on the same database file is refused (PostgreSQL
    // takes many nodes by design).
    if !s.on_postgres() {
        let mut cmd = Command::new(BIN);
        env_for(&mut cmd, s.home.path());
        let out = cmd
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(&s.db)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("another flowctl serve is using"),
            "{}",
            stderr(&out)
        );
    }

    assert_eq!(s.terminate(), Some(0), "SIGTERM exits 0");
    s.launch();
    let (status, v) = s.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(v["data"]["output"], json!({"got": "a"}));
}

#[test]
fn a_database_from_a_newer_flowctl_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("future.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("CREATE TABLE x (y); PRAGMA user_version = 999;")
            .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let mut cmd = Command::new(BIN);
    env_for(&mut cmd, dir.path());
    let out = cmd
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("newer flowctl"), "{}", stderr(&out));
    assert!(
        std::fs::read(&db).unwrap() == before,
        "the file must be left untouched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_wait_shows_the_current_step() {
    let s = Server::start();
    s.apply(json!({"name": "Two Naps", "steps": [
        {"id": "first-nap", "type": "wait", "config": {"durationMs": 1500}},
        {"id": "second-nap", "type": "wait", "config": {"durationMs": 1500}}]}))
        .await;
    // `script` runs the CLI on a pseudo-terminal (stdout and stderr both land in its output).
    let mut cmd = Command::new("script");
    env_for(&mut cmd, s.home.path());
    let out = cmd
        .args([
            "-qec",
            &format!("{BIN} run wf_two_naps --wait --timeout 30"),
            "/dev/null",
        ])
        .output()
        .expect("script (util-linux)");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let screen = stdout(&out);
    assert!(
        screen.contains("1/2 first-nap") || screen.contains("2/2 second-nap"),
        "no spinner:\n{screen}"
    );
    assert!(
        screen.contains("\"waitedMs\""),
        "the output is printed at the end:\n{screen}"
    );
}
