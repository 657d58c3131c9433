//! `flowctl run --batch`: pacing by the rate-limit answers, idempotency from
//! the file and line (or a field), JSON-lines results, `--wait` for all.

use crate::common::*;
use serde_json::{Value, json};

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The seed's "Batch Processing" case, scaled: 1 000 triggers under 500/min
/// becomes 360 under 300/min (the same 1.2 ratio of inputs to the limit), so the
/// paced tail takes ~12 s instead of a minute. At most 20 % extra requests.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_over_the_rate_limit_costs_few_extra_requests() {
    let s = Server::start_with(&["--rate-limit-execute", "300"]);
    s.apply(
        json!({"name": "Batch", "steps": [{"id": "t", "type": "transform",
                   "config": {"mapping": {"n": "{{input.n}}"}}}]}),
    )
    .await;
    let n = 360;
    let lines: Vec<String> = (0..n).map(|i| json!({"n": i}).to_string()).collect();
    let file = s.home.path().join("inputs.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = s.cli(&["run", "wf_batch", "--batch", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let results: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), n);
    let key = results[0]["key"].as_str().unwrap();
    assert!(key.starts_with("inputs.jsonl:1:"), "{key}");
    assert!(results.iter().all(|r| r["runId"].is_string()));

    let metrics = s
        .http
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let accepted = metric(&metrics, "flowctl_trigger_latency_seconds_count");
    assert!(metrics.contains("flowctl_rate_limited_total"), "{metrics}");
    let limited = metric(&metrics, "flowctl_rate_limited_total");
    assert_eq!(accepted as usize, n, "{metrics}");
    let requests = accepted + limited;
    assert!(
        requests <= n as f64 * 1.2,
        "{requests} requests for {n} runs ({limited} rate-limited)"
    );
    eprintln!("{requests} requests for {n} runs; {}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_batch_twice_starts_nothing_new_and_wait_waits_for_all() {
    let s = Server::start();
    s.apply(
        json!({"name": "Orders", "steps": [{"id": "t", "type": "transform",
                   "config": {"mapping": {"total": "{{input.amount | times: 2}}"}}}]}),
    )
    .await;
    let inputs = json!([{"orderId": "o-1", "amount": 1}, {"orderId": "o-2", "amount": 2},
                        {"orderId": "o-3", "amount": 3}]);
    let file = s.home.path().join("orders.json");
    std::fs::write(&file, inputs.to_string()).unwrap();
    let args = [
        "run",
        "wf_orders",
        "--batch",
        file.to_str().unwrap(),
        "--key-field",
        "orderId",
        "--wait",
    ];
    let first = s.cli(&args);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let rows: Vec<Value> = stdout(&first)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["status"] == "completed"), "{rows:?}");
    assert_eq!(rows[1]["key"], "o-2");
    assert!(stderr(&first).contains("3 started"), "{}", stderr(&first));

    let again = s.cli(&args);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let rows2: Vec<Value> = stdout(&again)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rows2.iter().all(|r| r["replayed"] == true), "{rows2:?}");
    assert_eq!(rows2[0]["runId"], rows[0]["runId"]);
    assert!(stderr(&again).contains("0 started"), "{}", stderr(&again));
    let (_, list) = s.get("/api/v1/runs?workflowId=wf_orders").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 3);

    // A bad line: nothing is started, every problem is named.
    std::fs::write(&file, "{\"orderId\": \"o-9\"}\n[1]\n{\"amount\": 1}\n").unwrap();
    let bad = s.cli(&args);
    assert_eq!(bad.status.code(), Some(2));
    let err = stderr(&bad);
    assert!(
        err.contains("orders.json:2") && err.contains("orders.json:3"),
        "{err}"
    );
}
