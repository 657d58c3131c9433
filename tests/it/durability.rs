//! with the real binary: SIGKILL and restart mid-run, retries that
//! survive restarts, durable waits, cancel, long-poll economy, shutdown.

use crate::common::target::Target;
use crate::common::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn ms(v: &serde_json::Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_step_resumes_without_redoing_completed_steps() {
    let t = Target::start().await;
    let mut s = Server::start();
    s.apply(json!({"name": "Three Calls", "steps": [
        t.step("one", ""), t.step("two", "delay_ms=3000"), t.step("three", "")]}))
        .await;
    let run_id = s.trigger("wf_three_calls", json!({})).await;
    eventually(Duration::from_secs(10), || async {
        (t.count("two") == 1).then_some(())
    })
    .await;
    s.kill();
    s.launch();
    let run = s.wait_for_run(&run_id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        t.count("one"),
        1,
        "a completed step is never executed again"
    );
    assert_eq!(t.count("three"), 1);
    assert_eq!(
        t.count("two"),
        2,
        "the step in flight runs again (at-least-once)"
    );
    // SQLite requeues a dead server's runs at start; on PostgreSQL any live
    // node rescues them when their lease expires.
    if !s.on_postgres() {
        assert!(s.logs().contains("resuming 1 run(s)"), "{}", s.logs());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_errors_retry_permanent_ones_fail_at_once() {
    let t = Target::start().await;
    let s = Server::start();
    s.apply(json!({"name": "Flaky", "steps": [t.step("flaky", "fail=2&status=503")]}))
        .await;
    s.apply(json!({"name": "Broken", "steps": [t.step("broken", "status=400")]}))
        .await;
    let flaky = s.trigger("wf_flaky", json!({})).await;
    let broken = s.trigger("wf_broken", json!({})).await;
    let run = s.wait_for_run(&flaky, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["steps"][0]["attempts"], 3);
    let run = s.wait_for_run(&broken, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["steps"][0]["attempts"], 1);
    assert_eq!(run["error"]["code"], "STEP_ERROR");
    assert_eq!(run["error"]["stepId"], "broken");
    assert_eq!(t.count("broken"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_retry_survives_a_restart() {
    let t = Target::start().await;
    let mut s = Server::start();
    // Retry-After is honoured up to maxDelayMs, so give it room.
    let mut step = t.step("later", "fail=1&status=429&retry_after=2");
    step["retryConfig"]["maxDelayMs"] = json!(30_000);
    s.apply(json!({"name": "Later", "steps": [step]})).await;
    let run_id = s.trigger("wf_later", json!({})).await;
    let parked = eventually(Duration::from_secs(10), || async {
        let (_, v) = s.get(&format!("/api/v1/runs/{run_id}")).await;
        (v["data"]["steps"][0]["status"] == "retrying").then_some(v)
    })
    .await;
    assert_eq!(parked["data"]["steps"][0]["attempts"], 1);
    s.kill();
    s.launch();
    let run = s.wait_for_run(&run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "completed", "{run}");
    let calls = t.times("later");
    assert_eq!(calls.len(), 2);
    assert!(
        calls[1] - calls[0] >= Duration::from_secs(2),
        "Retry-After was honoured across the restart: {calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_durable_wait_is_neither_lost_nor_shortened_by_a_restart() {
    let mut s = Server::start();
    s.apply(json!({"name": "Nap", "steps": [
        {"id": "nap", "type": "wait", "config": {"durationMs": 3000}},
        {"id": "after", "type": "transform", "config": {"mapping": {"done": true}}}]}))
        .await;
    let run_id = s.trigger("wf_nap", json!({})).await;
    eventually(Duration::from_secs(10), || async {
        let (_, v) = s.get(&format!("/api/v1/runs/{run_id}")).await;
        (v["data"]["steps"][0]["status"] == "waiting").then_some(())
    })
    .await;
    s.kill();
    s.launch();
    let run = s.wait_for_run(&run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "completed", "{run}");
    let waited = ms(&run["steps"][0]["completedAt"]) - ms(&run["steps"][0]["startedAt"]);
    assert!(waited >= 3000, "waited only {waited} ms");
    assert!(run["steps"][0]["output"]["waitedMs"].as_i64().unwrap() >= 3000);
    assert_eq!(run["output"], json!({"done": true}));
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_a_pending_and_a_running_run() {
    let t = Target::start().await;
    let s = Server::start_with(&["--workers", "1"]);
    s.apply(json!({"name": "Slow Call", "steps": [t.step("slow", "delay_ms=5000"), t.step("next", "")]})).await;
    let running = s.trigger("wf_slow_call", json!({})).await;
    eventually(Duration::from_secs(10), || async {
        (t.count("slow") == 1).then_some(())
    })
    .await;
    let pending = s.trigger("wf_slow_call", json!({})).await;

    let (status, v) = s
        .post(&format!("/api/v1/runs/{pending}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["data"]["status"], "cancelled");

    let started = Instant::now();
    let out = s.cli(&["runs", "cancel", &running]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = s.wait_for_run(&running, Duration::from_secs(10)).await;
    assert_eq!(run["status"], "cancelled");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the in-flight call was aborted, not awaited"
    );
    assert_eq!(run["steps"][1]["status"], "skipped");
    // Give the single worker time to pick up anything still queued: nothing is.
    let (_, v) = s.get(&format!("/api/v1/runs/{pending}?wait=1")).await;
    assert_eq!(v["data"]["status"], "cancelled");
    assert!(
        v["data"]["startedAt"].is_null(),
        "a cancelled pending run never starts"
    );
    assert_eq!(t.count("next"), 0);
    assert_eq!(t.count("slow"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_for_a_ten_second_run_takes_a_handful_of_requests() {
    let s = Server::start();
    s.apply(json!({"name": "Ten Seconds", "steps": [{"id": "nap", "type": "wait", "config": {"durationMs": 10000}}]})).await;
    let out = s.cli(&["-v", "run", "wf_ten_seconds", "--wait", "--timeout", "30"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let requests = stderr(&out).matches("API request").count();
    assert!(
        (1..=5).contains(&requests),
        "{requests} requests:\n{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_step_in_flight_finish() {
    let t = Target::start().await;
    let mut s = Server::start();
    s.apply(json!({"name": "Graceful", "steps": [t.step("inflight", "delay_ms=1500"), t.step("later", "")]})).await;
    let run_id = s.trigger("wf_graceful", json!({})).await;
    eventually(Duration::from_secs(10), || async {
        (t.count("inflight") == 1).then_some(())
    })
    .await;
    assert_eq!(s.terminate(), Some(0));
    s.launch();
    let run = s.wait_for_run(&run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        t.count("inflight"),
        1,
        "the step finished during the grace period, so it is not redone"
    );
    assert_eq!(t.count("later"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn run_timeout_and_listing_with_cursors() {
    let s = Server::start();
    s.apply(json!({"name": "Too Slow", "timeoutMs": 500, "steps": [
        {"id": "nap", "type": "wait", "config": {"durationMs": 1000}},
        {"id": "after", "type": "transform", "config": {"mapping": {"x": 1}}}]}))
        .await;
    let run_id = s.trigger("wf_too_slow", json!({})).await;
    let run = s.wait_for_run(&run_id, Duration::from_secs(10)).await;
    assert_eq!(run["status"], "timed_out");

    for _ in 0..5 {
        s.trigger("wf_too_slow", json!({})).await;
    }
    let (_, page1) = s.get("/api/v1/runs?workflowId=wf_too_slow&limit=4").await;
    assert_eq!(page1["data"].as_array().unwrap().len(), 4);
    assert_eq!(page1["meta"]["hasMore"], true);
    let cursor = page1["meta"]["cursor"].as_str().unwrap();
    let (_, page2) = s
        .get(&format!(
            "/api/v1/runs?workflowId=wf_too_slow&limit=4&cursor={cursor}"
        ))
        .await;
    let rest = page2["data"].as_array().unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(page2["meta"]["hasMore"], false);
    assert_eq!(rest.last().unwrap()["id"], run_id.as_str(), "newest first");
    let (_, done) = s.get("/api/v1/runs?status=timed_out").await;
    assert_eq!(done["data"].as_array().unwrap().len(), 1);
    let (status, v) = s.get("/api/v1/runs?status=bogus").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("INVALID_REQUEST"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_purges_finished_runs() {
    let mut s = Server::start();
    s.apply(json!({"name": "Old", "steps": [{"id": "t", "type": "transform", "config": {"mapping": {"x": 1}}}]})).await;
    let run_id = s.trigger("wf_old", json!({})).await;
    s.wait_for_run(&run_id, Duration::from_secs(10)).await;
    s.kill();
    s.extra_args = vec!["--retention-days".into(), "0".into()];
    s.launch();
    eventually(Duration::from_secs(10), || async {
        let (status, _) = s.get(&format!("/api/v1/runs/{run_id}")).await;
        (status == 404).then_some(())
    })
    .await;
}
