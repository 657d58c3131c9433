//! The run lifecycle through the real binary: one server per database file
//! (also through a symlink or hard link), run timeouts while parked, capped
//! `Retry-After`, cancel that survives SIGKILL, and per-workflow concurrency
//! caps with a slow upstream.

use crate::common::target::Target;
use crate::common::{Api, BIN, Server, eventually};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A second `serve` on `path` must exit non-zero naming the lock.
fn assert_refused(s: &Server, path: &std::path::Path) {
    let mut cmd = Command::new(BIN);
    crate::common::env_for(&mut cmd, s.home.path());
    let out = cmd
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run a second serve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "second server started on {path:?}");
    assert!(
        err.contains("another flowctl serve is using the database file"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_server_is_refused_through_a_symlink_or_a_hard_link() {
    // A SQLite file's lock; PostgreSQL takes many nodes by design.
    let home = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let db = home.path().join("flowctl.db");
    let s = Server::start_at(home, db, &[], &[]);
    let dir = s.home.path();
    let alias = dir.join("alias.db");
    std::os::unix::fs::symlink(&s.db, &alias).unwrap();
    assert_refused(&s, &alias);
    let hard = dir.join("hard.db");
    std::fs::hard_link(&s.db, &hard).unwrap();
    assert_refused(&s, &hard);
    assert_refused(&s, &s.db);
    // The first server is untouched.
    let (status, _) = s.get("/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_timeout_fires_while_the_run_is_parked_in_a_long_wait() {
    let s = Server::start();
    s.apply(json!({"name": "Run timeout", "timeoutMs": 1500, "steps": [
        {"id": "w", "type": "wait", "config": {"durationMs": 60000}},
        {"id": "t", "type": "transform", "config": {"mapping": {"ok": true}}}
    ]}))
    .await;
    let started = Instant::now();
    let id = s.trigger("wf_run_timeout", json!({})).await;
    let run = s.wait_for_run(&id, Duration::from_secs(10)).await;
    assert_eq!(run["status"], "timed_out", "{run}");
    assert_eq!(run["error"]["code"], "RUN_TIMEOUT");
    assert_eq!(run["steps"][0]["status"], "skipped");
    assert_eq!(run["steps"][1]["status"], "skipped");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_of_a_year_waits_no_longer_than_max_delay() {
    let t = Target::start().await;
    let s = Server::start();
    let mut step = t.step("busy", "fail=1&status=429&retry_after=31536000");
    step["retryConfig"] = json!({"maxAttempts": 3, "initialDelayMs": 100, "maxDelayMs": 1000});
    s.apply(json!({"name": "Busy", "timeoutMs": 20000, "steps": [step]}))
        .await;
    let id = s.trigger("wf_busy", json!({})).await;
    let run = s.wait_for_run(&id, Duration::from_secs(10)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["steps"][0]["attempts"], 2);
    let calls = t.times("busy");
    let gap = calls[1] - calls[0];
    assert!(gap < Duration::from_millis(2500), "retried after {gap:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_cancelled_while_parked_stays_cancelled_across_sigkill() {
    let t = Target::start().await;
    let mut s = Server::start();
    s.apply(json!({"name": "Parked", "steps": [
        {"id": "w", "type": "wait", "config": {"durationMs": 1500}},
        t.step("after", "")
    ]}))
    .await;
    let id = s.trigger("wf_parked", json!({})).await;
    eventually(Duration::from_secs(10), || async {
        let (_, v) = s.get(&format!("/api/v1/runs/{id}")).await;
        (v["data"]["steps"][0]["status"] == "waiting").then_some(())
    })
    .await;
    let (status, v) = s
        .post(&format!("/api/v1/runs/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{v}");
    // A parked run is cancelled at once, not when its timer fires.
    assert_eq!(v["data"]["status"], "cancelled", "{v}");
    s.kill();
    s.launch();
    // Past the wait's due time, on a fresh process: still cancelled, and the
    // next step never ran. A run triggered after it completing shows the
    // worker did look at the queue.
    s.apply(json!({"name": "Probe", "steps": [
        {"id": "w", "type": "wait", "config": {"durationMs": 2000}}
    ]}))
    .await;
    let probe = s.trigger("wf_probe", json!({})).await;
    let done = s.wait_for_run(&probe, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "completed");
    let (_, v) = s.get(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(v["data"]["status"], "cancelled", "{v}");
    assert_eq!(v["data"]["steps"][1]["status"], "skipped", "{v}");
    assert_eq!(t.count("after"), 0, "the step after the wait ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_run_cancelled_stops_before_its_next_step() {
    let t = Target::start().await;
    let s = Server::start();
    s.apply(
        json!({"name": "Two", "steps": [t.step("first", "delay_ms=800"), t.step("second", "")]}),
    )
    .await;
    let id = s.trigger("wf_two", json!({})).await;
    eventually(Duration::from_secs(10), || async {
        (t.count("first") == 1).then_some(())
    })
    .await;
    let (status, _) = s
        .post(&format!("/api/v1/runs/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200);
    let run = s.wait_for_run(&id, Duration::from_secs(10)).await;
    assert_eq!(run["status"], "cancelled", "{run}");
    assert_eq!(run["error"]["code"], "CANCELLED");
    assert_eq!(t.count("second"), 0);
}

/// An upstream that takes 600 ms per call and records how many calls were
/// in flight at once, and in which order they arrived.
#[derive(Clone, Default)]
struct Slow {
    state: std::sync::Arc<std::sync::Mutex<SlowState>>,
}

#[derive(Default)]
struct SlowState {
    in_flight: usize,
    max_in_flight: usize,
    order: Vec<i64>,
}

async fn slow_call(
    axum::extract::State(s): axum::extract::State<Slow>,
    axum::extract::Path(n): axum::extract::Path<i64>,
) -> axum::Json<serde_json::Value> {
    {
        let mut st = s.state.lock().unwrap();
        st.in_flight += 1;
        st.max_in_flight = st.max_in_flight.max(st.in_flight);
        st.order.push(n);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    s.state.lock().unwrap().in_flight -= 1;
    axum::Json(json!({"n": n}))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_concurrency_cap_holds_runs_in_the_queue_without_taking_workers() {
    let slow = Slow::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/slow/{n}", axum::routing::post(slow_call))
        .with_state(slow.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let s = Server::start_with(&["--workers", "4"]);
    s.apply(json!({"name": "Capped", "concurrency": 2, "steps": [
        {"id": "call", "type": "action", "action": "http.request",
         "config": {"method": "POST", "url": format!("{base}/slow/{{{{input.n}}}}")}}
    ]}))
    .await;
    s.apply(json!({"name": "Free", "steps": [
        {"id": "t", "type": "transform", "config": {"mapping": {"ok": true}}}
    ]}))
    .await;
    let mut capped = vec![];
    for n in 0..8 {
        capped.push(s.trigger("wf_capped", json!({"n": n})).await);
    }
    // Six capped runs wait in the queue; with 4 workers, an uncapped run
    // still gets one at once.
    let started = Instant::now();
    let free = s.trigger("wf_free", json!({})).await;
    let run = s.wait_for_run(&free, Duration::from_secs(10)).await;
    assert_eq!(run["status"], "completed");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "an uncapped run waited {:?} behind capped ones",
        started.elapsed()
    );
    for id in &capped {
        let run = s.wait_for_run(id, Duration::from_secs(20)).await;
        assert_eq!(run["status"], "completed", "{run}");
    }
    let st = slow.state.lock().unwrap();
    assert_eq!(st.max_in_flight, 2, "the cap of 2 was not held");
    // FIFO: runs leave the queue in order; two that start together may
    // reach the upstream in either order, but none overtakes further.
    for (pos, n) in st.order.iter().enumerate() {
        assert!(
            (pos as i64 - n).abs() <= 1,
            "capped runs ran out of order: {:?}",
            st.order
        );
    }
    assert_eq!(st.order.len(), 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_parked_in_a_wait_does_not_count_towards_the_cap() {
    let s = Server::start();
    s.apply(json!({"name": "Waits", "concurrency": 1, "steps": [
        {"id": "w", "type": "wait", "config": {"durationMs": 1500}}
    ]}))
    .await;
    let started = Instant::now();
    let ids = [
        s.trigger("wf_waits", json!({})).await,
        s.trigger("wf_waits", json!({})).await,
        s.trigger("wf_waits", json!({})).await,
    ];
    for id in &ids {
        let run = s.wait_for_run(id, Duration::from_secs(15)).await;
        assert_eq!(run["status"], "completed", "{run}");
    }
    // Had each wait held the single slot, three waits would take 4.5 s.
    assert!(
        started.elapsed() < Duration::from_millis(3500),
        "{:?}",
        started.elapsed()
    );
}
