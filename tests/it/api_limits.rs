//! Rate limits per key and category, bad input that must get a precise
//! envelope (never a 500 or a crash), metrics and request ids.

use crate::common::app::TestApp;
use crate::common::*;
use reqwest::Method;
use serde_json::json;

fn trivial() -> serde_json::Value {
    json!({"name": "Tiny", "steps": [{"id": "t", "type": "transform", "config": {"mapping": {"ok": true}}}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn execute_limit_is_per_key_with_headers() {
    let s = TestApp::start();
    s.apply(trivial()).await;
    let other = s.create_key("other", "workflows:execute");

    let url = format!("{}/api/v1/workflows/wf_tiny/run", s.url);
    let started = std::time::Instant::now();
    let mut tasks = vec![];
    // Until the first 429: a loaded machine that is slower than the refill
    // (one per 120 ms) still reaches the end of the burst.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for _ in 0..20 {
        let (http, url, key) = (s.http.clone(), url.clone(), s.key.clone());
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = vec![];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && seen.len() < 200 {
                let r = http
                    .post(&url)
                    .header("x-api-key", &key)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                let h = r.headers().clone();
                let status = r.status().as_u16();
                let body: serde_json::Value = r.json().await.unwrap();
                if status == 429 {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                seen.push((status, h, body));
            }
            seen
        }));
    }
    let mut accepted = 0;
    let mut rejected_seen = 0;
    let mut limited = None;
    for t in tasks {
        for (status, h, body) in t.await.unwrap() {
            assert!(
                h.contains_key("x-ratelimit-limit")
                    && h.contains_key("x-ratelimit-remaining")
                    && h.contains_key("x-ratelimit-reset")
            );
            assert_eq!(h["x-ratelimit-limit"], "500");
            match status {
                202 => accepted += 1,
                429 => {
                    rejected_seen += 1;
                    limited = Some((h, body));
                }
                other => panic!("unexpected {other}: {body}"),
            }
        }
    }
    // GCRA: a burst of 500, then one more every 120 ms; a slow (debug, loaded)
    // machine earns a few extra during the burst itself.
    let earned = (started.elapsed().as_secs_f64() * 500.0 / 60.0).ceil() as usize;
    assert!(
        (495..=505 + earned).contains(&accepted),
        "{accepted} accepted in {:?}; the limit is 500 per minute",
        started.elapsed()
    );
    let (h, body) = limited.expect("some requests were limited");
    assert_eq!(
        body,
        json!({"success": false, "error": {"code": "RATE_LIMITED", "message": "Rate limit exceeded. Limit: 500 requests per minute."}})
    );
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(h["x-ratelimit-remaining"], "0");

    // Another key is unaffected, and reads are a separate category.
    let (status, h, _) = s
        .request_with_key(
            Method::POST,
            "/api/v1/workflows/wf_tiny/run",
            Some(json!({})),
            Some(&other),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(h["x-ratelimit-remaining"], "499");
    let (status, h, _) = s.request(Method::GET, "/api/v1/runs?limit=1", None).await;
    assert_eq!(status, 200);
    assert_eq!(h["x-ratelimit-limit"], "1000");

    let metrics = s
        .http
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rejected: f64 = metrics
        .lines()
        .find(|l| l.starts_with("flowctl_rate_limited_total"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(rejected as usize, rejected_seen, "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_the_right_envelope_and_the_server_keeps_serving() {
    let s = Server::start_with(&[
        "--rate-limit-read",
        "0",
        "--rate-limit-write",
        "0",
        "--rate-limit-execute",
        "0",
        "--body-limit",
        "65536",
    ]);
    s.apply(trivial()).await;
    let run_url = format!("{}/api/v1/workflows/wf_tiny/run", s.url);
    let send = |body: Vec<u8>, content_type: &'static str| {
        let (http, url, key) = (s.http.clone(), run_url.clone(), s.key.clone());
        async move {
            let r = http
                .post(url)
                .header("x-api-key", key)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let v: serde_json::Value = r.json().await.expect("always a JSON envelope");
            (
                status,
                v["error"]["code"].as_str().unwrap_or("").to_string(),
            )
        }
    };
    let huge = format!("{{\"input\": {{\"blob\": \"{}\"}}}}", "x".repeat(70_000));
    assert_eq!(
        send(huge.into_bytes(), "application/json").await,
        (413, "PAYLOAD_TOO_LARGE".into())
    );
    assert_eq!(
        send(b"--x\r\n".to_vec(), "multipart/form-data; boundary=x").await,
        (400, "INVALID_REQUEST".into())
    );
    assert_eq!(
        send(
            b"{\"input\": {\"a\": \"\xff\xfe\"}}".to_vec(),
            "application/json"
        )
        .await,
        (400, "INVALID_REQUEST".into())
    );
    let deep = format!("{{\"input\": {}{}}}", "[".repeat(5000), "]".repeat(5000));
    assert_eq!(
        send(deep.into_bytes(), "application/json").await,
        (400, "INVALID_REQUEST".into())
    );
    let long_key = json!({"idempotencyKey": "k".repeat(300)}).to_string();
    assert_eq!(
        send(long_key.into_bytes(), "application/json").await,
        (400, "INVALID_REQUEST".into())
    );
    // The seed's crontab line sends `curl -d` without a JSON content type: accepted.
    assert_eq!(
        send(
            b"{\"input\":{}}".to_vec(),
            "application/x-www-form-urlencoded"
        )
        .await
        .0,
        202
    );

    let long_id = "x".repeat(5000);
    for path in [
        format!("/api/v1/runs/{long_id}"),
        "/api/v1/runs/run_x'%20OR%20'1'='1".to_string(),
        "/api/v1/workflows/wf_tiny'%3B%20DROP%20TABLE%20runs%3B--".to_string(),
        "/api/v1/workflows/..%2F..%2Fetc%2Fpasswd".to_string(),
        "/api/v1/connections/..%2Fsecret.key".to_string(),
    ] {
        let (status, v) = s.get(&path).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (404, Some("NOT_FOUND")),
            "{path}"
        );
    }
    for path in [
        "/api/v1/runs?status=completed'%20OR%201=1",
        "/api/v1/runs?limit=-1",
        "/api/v1/runs?cursor=abc",
        "/api/v1/runs/run_x?wait=9999",
    ] {
        let (status, v) = s.get(path).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (400, Some("INVALID_REQUEST")),
            "{path}"
        );
    }
    let (status, v) = s.get("/healthz").await;
    assert_eq!((status, v["data"]["status"].as_str()), (200, Some("ok")));
    let (_, runs) = s.get("/api/v1/runs?limit=100").await;
    assert_eq!(
        runs["data"].as_array().unwrap().len(),
        1,
        "nothing but the one good trigger was queued"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_and_request_ids() {
    let s = TestApp::start();
    s.apply(trivial()).await;
    let run_id = s.trigger("wf_tiny", json!({})).await;
    s.wait_for_run(&run_id, std::time::Duration::from_secs(10))
        .await;
    let r = s
        .http
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(r.headers().contains_key("x-request-id"));
    let text = r.text().await.unwrap();
    for needle in [
        "flowctl_runs{status=\"completed\"} 1",
        "flowctl_queue_depth 0",
        "flowctl_trigger_latency_seconds_count 1",
        "flowctl_step_duration_seconds_count{type=\"transform\",status=\"completed\"} 1",
        "flowctl_rate_limited_total 0",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    let r = s
        .http
        .get(format!("{}/healthz", s.url))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_and_authorization_headers_never_reach_the_logs() {
    let s = Server::start_with(&["-vv"]);
    s.apply(trivial()).await;
    s.trigger("wf_tiny", json!({})).await;
    let r = s
        .http
        .get(format!("{}/api/v1/runs", s.url))
        .bearer_auth(&s.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, _, _) = s
        .request_with_key(
            Method::GET,
            "/api/v1/runs",
            None,
            Some("wfk_not_a_real_key_0000000000000000"),
        )
        .await;
    assert_eq!(status, 401);
    let logs = s.logs();
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "the server logged at trace level"
    );
    assert!(!logs.contains(&s.key), "an API key reached the logs");
    assert!(
        !logs.contains("wfk_not_a_real_key"),
        "a presented key reached the logs"
    );
    assert!(
        !logs.to_ascii_lowercase().contains("bearer "),
        "an Authorization header reached the logs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_request_keeps_the_connection_usable() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start_with(&["--rate-limit-execute", "1"]);
    s.apply(trivial()).await;
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let body = r#"{"input": {"note": "keep-alive clients such as Python's http.client reuse this socket"}}"#;
    let request = format!(
        "POST /api/v1/workflows/wf_tiny/run HTTP/1.1\r\nHost: {addr}\r\nx-api-key: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        s.key,
        body.len()
    );
    let mut statuses = vec![];
    for _ in 0..3 {
        sock.write_all(request.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 8192];
        let n = sock.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        statuses.push(head[9..12].to_string());
    }
    assert_eq!(statuses, ["202", "429", "429"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_log_format_makes_every_stderr_line_a_json_event() {
    let mut s = Server::start_with(&["--log-format", "json", "-v"]);
    s.apply(trivial()).await;
    let run_id = s.trigger("wf_tiny", json!({})).await;
    s.wait_for_run(&run_id, std::time::Duration::from_secs(10))
        .await;
    assert_eq!(s.terminate(), Some(0));
    // The stderr reader thread may still be catching up with the exited process.
    let logs = eventually(std::time::Duration::from_secs(5), || async {
        let logs = s.logs();
        logs.contains("flowctl stopped").then_some(logs)
    })
    .await;
    assert!(logs.lines().count() >= 5, "{logs}");
    for line in logs.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(
            event["level"].is_string() && event["timestamp"].is_string(),
            "{line}"
        );
    }
}
