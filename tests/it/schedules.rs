//! Schedule triggers through the real server: repeated firing with the static
//! input, `overlap: skip`, pausing, exactly-once across SIGKILL and restart,
//! and `catchUp: latest` after time with no server. Intervals are 1–2 s so
//! the whole file takes seconds. (DST rules are unit tests of the occurrence
//! computation, on New York's real transitions.)

use crate::common::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn scheduled(id: &str, trigger: Value, steps: Value) -> Value {
    json!({"id": id, "name": format!("Scheduled {id}"), "trigger": trigger, "steps": steps})
}

fn echo_steps() -> Value {
    json!([{"id": "echo", "type": "transform",
        "config": {"mapping": {"region": "{{input.region}}", "at": "{{input.schedule.scheduledAt}}"}}}])
}

async fn schedule_runs(s: &Server, wf: &str) -> Vec<Value> {
    let (status, v) = s
        .get(&format!(
            "/api/v1/runs?workflowId={wf}&triggerType=schedule&limit=100"
        ))
        .await;
    assert_eq!(status, 200, "{v}");
    let mut runs = v["data"].as_array().unwrap().clone();
    runs.reverse();
    runs
}

fn ms(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap()
        .timestamp_millis()
}

fn scheduled_at(run: &Value) -> i64 {
    ms(&run["input"]["schedule"]["scheduledAt"])
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interval_fires_repeatedly_with_its_input_and_stops_when_paused() {
    let s = Server::start();
    let trigger = json!({"type": "schedule", "interval": {"value": 2, "unit": "seconds"},
        "input": {"region": "eu"}});
    s.apply(scheduled("wf_every_two", trigger, echo_steps()))
        .await;
    let (_, wf) = s.get("/api/v1/workflows/wf_every_two").await;
    let next = ms(&wf["data"]["nextRunAt"]);
    assert_eq!(next % 2000, 0, "{wf}");

    let runs = eventually(Duration::from_secs(10), || async {
        let runs = schedule_runs(&s, "wf_every_two").await;
        (runs.len() >= 2).then_some(runs)
    })
    .await;
    let mut times = vec![];
    for r in &runs[..2] {
        assert_eq!(r["triggerType"], "schedule");
        assert_eq!(r["input"]["region"], "eu", "{r}");
        let schedule = &r["input"]["schedule"];
        assert_eq!(schedule["name"], "Scheduled wf_every_two");
        let at = scheduled_at(r);
        assert_eq!(at % 2000, 0, "{r}");
        let fired = ms(&schedule["firedAt"]);
        assert!((at..at + 1500).contains(&fired), "{r}");
        times.push(at);
        let done = s
            .wait_for_run(r["id"].as_str().unwrap(), Duration::from_secs(10))
            .await;
        assert_eq!(done["output"]["region"], "eu", "{done}");
    }
    assert_eq!(times[1] - times[0], 2000, "{times:?}");

    // Off a terminal the list is tab-separated; its last column is the next run.
    let out = s.cli(&["workflows", "list"]);
    assert!(
        stdout(&out).contains("wf_every_two\tactive\tv1\tScheduled wf_every_two\t20"),
        "{}",
        stdout(&out)
    );

    let (status, _) = s
        .post("/api/v1/workflows/wf_every_two/pause", json!({}))
        .await;
    assert_eq!(status, 200);
    let (_, wf) = s.get("/api/v1/workflows/wf_every_two").await;
    assert_eq!(wf["data"]["nextRunAt"], Value::Null, "{wf}");
    let paused_at = schedule_runs(&s, "wf_every_two").await.len();
    // Absence needs time to show: two more occurrences pass without a run.
    let until = Instant::now() + Duration::from_millis(4500);
    while Instant::now() < until {
        assert_eq!(schedule_runs(&s, "wf_every_two").await.len(), paused_at);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn overlap_skip_never_runs_two_at_once() {
    let s = Server::start();
    let trigger = json!({"type": "schedule", "interval": {"value": 1, "unit": "seconds"},
        "overlap": "skip"});
    let steps = json!([{"id": "nap", "type": "wait", "config": {"durationMs": 2500}}]);
    s.apply(scheduled("wf_skip", trigger, steps)).await;
    let runs = eventually(Duration::from_secs(15), || async {
        let runs = schedule_runs(&s, "wf_skip").await;
        let done = runs.iter().filter(|r| r["status"] == "completed").count();
        (done >= 2).then_some(runs)
    })
    .await;
    s.post("/api/v1/workflows/wf_skip/pause", json!({})).await;
    // Each run was created only after the one before it had finished.
    for pair in runs.windows(2) {
        let prev_done = ms(&pair[0]["completedAt"]);
        let next_created = ms(&pair[1]["createdAt"]);
        assert!(next_created >= prev_done, "overlapping runs: {pair:?}");
    }
    // Skipped occurrences: with 2.5 s runs every 1 s, at most one in two fired.
    let first = scheduled_at(&runs[0]);
    let last = scheduled_at(runs.last().unwrap());
    assert!(
        (last - first) / 1000 >= 2 * (runs.len() as i64 - 1),
        "{runs:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_and_restart_never_fire_twice_and_latest_catches_up_once() {
    let mut s = Server::start();
    let trigger = json!({"type": "schedule", "interval": {"value": 1, "unit": "seconds"},
        "overlap": "allow", "catchUp": "latest", "input": {"region": "us"}});
    s.apply(scheduled("wf_every_second", trigger, echo_steps()))
        .await;
    eventually(Duration::from_secs(10), || async {
        (schedule_runs(&s, "wf_every_second").await.len() >= 3).then_some(())
    })
    .await;
    s.kill();
    let killed_at = chrono::Utc::now().timestamp_millis();
    // Five seconds with no server: five occurrences are missed. Restart a
    // little after a second boundary, so the gap's latest occurrence lies
    // before the restart and the next on-time one well after it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    while chrono::Utc::now().timestamp_millis() % 1000 >= 150 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let launched_at = chrono::Utc::now().timestamp_millis();
    s.launch();
    let ready_in = chrono::Utc::now().timestamp_millis() - launched_at;
    let before: Vec<i64> = schedule_runs(&s, "wf_every_second")
        .await
        .iter()
        .map(scheduled_at)
        .filter(|t| *t <= killed_at)
        .collect();
    let last_before = *before.iter().max().unwrap();
    let runs = eventually(Duration::from_secs(10), || async {
        let runs = schedule_runs(&s, "wf_every_second").await;
        let after = runs
            .iter()
            .filter(|r| scheduled_at(r) > launched_at + 1000)
            .count();
        (after >= 2).then_some(runs)
    })
    .await;
    let times: Vec<i64> = runs.iter().map(scheduled_at).collect();
    let unique: BTreeSet<_> = times.iter().collect();
    assert_eq!(
        unique.len(),
        times.len(),
        "an occurrence fired twice: {times:?}"
    );
    // The gap: exactly one of its missed occurrences fired, the latest.
    let gap: Vec<_> = times
        .iter()
        .filter(|t| **t > last_before && **t <= launched_at)
        .collect();
    if ready_in < 600 {
        assert_eq!(
            gap,
            [&(launched_at / 1000 * 1000)],
            "{times:?} (last before {last_before}, launched {launched_at})"
        );
    } else {
        // A slow start reached the next boundary first: that one is the latest.
        eprintln!("restart took {ready_in} ms; the gap's latest is after the restart");
        assert!(gap.is_empty(), "{times:?}");
    }
    assert!(launched_at - last_before >= 4000);
    for r in &runs {
        assert_eq!(r["input"]["region"], "us");
    }
}
