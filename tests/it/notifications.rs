//! Outbound notifications through the real binary: endpoints, signed
//! deliveries (checked with the `standardwebhooks` package and a plain
//! HMAC), order per run across a retry, redirects not followed, redelivery,
//! disabling and enabling, SIGKILL mid-delivery, and one flowctl notifying
//! another. On PostgreSQL too when `FLOWCTL_TEST_DATABASE_URL` is set.

use crate::common::*;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the receiver answers next.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Ok,
    /// 500 this many more times, then Ok.
    FailTimes(u32),
    FailAlways,
    Redirect,
    /// Never answer (the request is held open).
    Hang,
}

#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: String,
    /// Answered 2xx.
    accepted: bool,
}

#[derive(Clone)]
struct Receiver {
    url: String,
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<Received>>>,
    redirected: Arc<Mutex<u32>>,
}

impl Receiver {
    async fn start(mode: Mode) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver {
            url: format!("http://{}/hook", listener.local_addr().unwrap()),
            mode: Arc::new(Mutex::new(mode)),
            seen: Default::default(),
            redirected: Default::default(),
        };
        let app = Router::new()
            .route("/hook", axum::routing::post(receive))
            .route("/elsewhere", axum::routing::post(elsewhere))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn all(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// Bodies accepted (2xx), in arrival order.
    fn accepted(&self) -> Vec<Value> {
        self.all()
            .iter()
            .filter(|r| r.accepted)
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect()
    }

    async fn wait_accepted(&self, n: usize, deadline: Duration) -> Vec<Value> {
        eventually(deadline, || async {
            let a = self.accepted();
            (a.len() >= n).then_some(a)
        })
        .await
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    let mode = {
        let mut m = r.mode.lock().unwrap();
        let now = *m;
        if let Mode::FailTimes(n) = now {
            *m = if n <= 1 {
                Mode::Ok
            } else {
                Mode::FailTimes(n - 1)
            };
        }
        now
    };
    let body = String::from_utf8_lossy(&body).to_string();
    let accepted = mode == Mode::Ok;
    r.seen.lock().unwrap().push(Received {
        headers,
        body,
        accepted,
    });
    match mode {
        Mode::Ok => (StatusCode::OK, "thanks").into_response(),
        Mode::FailTimes(_) | Mode::FailAlways => {
            (StatusCode::INTERNAL_SERVER_ERROR, "receiver is down").into_response()
        }
        Mode::Redirect => (StatusCode::FOUND, [("location", "/elsewhere")]).into_response(),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
    }
}

async fn elsewhere(State(r): State<Receiver>) -> StatusCode {
    *r.redirected.lock().unwrap() += 1;
    StatusCode::OK
}

async fn create_endpoint<A: Api>(s: &A, body: Value) -> Value {
    let (status, v) = s.post("/api/v1/webhook-endpoints", body).await;
    assert_eq!(status, 201, "{v}");
    v["data"].clone()
}

async fn deliveries<A: Api>(s: &A, endpoint: &str) -> Vec<Value> {
    let (status, v) = s
        .get(&format!("/api/v1/webhook-endpoints/{endpoint}/deliveries"))
        .await;
    assert_eq!(status, 200, "{v}");
    v["data"].as_array().unwrap().clone()
}

fn ok_workflow(id: &str) -> Value {
    json!({"id": id, "name": id, "steps": [
        {"id": "t", "type": "transform", "config": {"mapping": {"doubled": "{{input.n | times: 2}}"}}}]})
}

/// A run that fails: an HTTP call to a closed port, no retries.
fn failing_workflow(id: &str) -> Value {
    json!({"id": id, "name": id, "steps": [
        {"id": "call", "type": "action", "action": "http.request",
         "config": {"method": "GET", "url": "http://127.0.0.1:9/nothing"},
         "retryConfig": {"maxAttempts": 1}}]})
}

/// The plain HMAC check, as any receiver without a library would write it.
fn hmac_verifies(secret: &str, r: &Received) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let h = |n: &str| r.headers.get(n).unwrap().to_str().unwrap().to_string();
    let signed = format!("{}.{}.{}", h("webhook-id"), h("webhook-timestamp"), r.body);
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(signed.as_bytes());
    let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    h("webhook-signature").split(' ').any(|s| s == expected)
}

/// The reference library's verdict (`standardwebhooks` from PyPI).
fn library_verifies(secret: &str, r: &Received) -> bool {
    let h = |n: &str| r.headers.get(n).unwrap().to_str().unwrap().to_string();
    let script = r#"
import sys, standardwebhooks
secret, msg_id, ts, sig = sys.argv[1:5]
body = sys.stdin.read()
standardwebhooks.Webhook(secret).verify(body, {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig})
print("verified")
"#;
    let mut child = Command::new("python3")
        .args([
            "-c",
            script,
            secret,
            &h("webhook-id"),
            &h("webhook-timestamp"),
            &h("webhook-signature"),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(r.body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "verified"
}

#[tokio::test(flavor = "multi_thread")]
async fn run_events_arrive_signed_in_order_with_the_run_view() {
    let python = have_python_module("standardwebhooks");
    let rx = Receiver::start(Mode::Ok).await;
    let s = Server::start();
    let ep = create_endpoint(&s, json!({"url": rx.url, "description": "all events"})).await;
    let secret = ep["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{ep}");
    // Shown once: never again.
    let (_, shown) = s
        .get(&format!(
            "/api/v1/webhook-endpoints/{}",
            ep["id"].as_str().unwrap()
        ))
        .await;
    assert!(shown["data"].get("secret").is_none() && !shown.to_string().contains(&secret));
    let failing_only = create_endpoint(
        &s,
        json!({"url": rx.url.replace("/hook", "/hook?failures"), "events": ["run.failed"], "workflowIds": ["wf_bad"]}),
    )
    .await;

    s.apply(ok_workflow("wf_ok")).await;
    s.apply(failing_workflow("wf_bad")).await;
    let ok_run = s.trigger("wf_ok", json!({"n": 21})).await;
    s.wait_for_run(&ok_run, Duration::from_secs(20)).await;
    let bad_run = s.trigger("wf_bad", json!({})).await;
    s.wait_for_run(&bad_run, Duration::from_secs(20)).await;

    // ok: started + completed; bad: started + failed to the first endpoint, failed to the second.
    let got = rx.wait_accepted(5, Duration::from_secs(20)).await;
    let of = |run: &str| -> Vec<Value> {
        got.iter()
            .filter(|e| e["data"]["id"] == run)
            .cloned()
            .collect()
    };
    let ok_events = of(&ok_run);
    assert_eq!(
        ok_events
            .iter()
            .map(|e| (e["type"].as_str().unwrap(), e["sequence"].as_i64().unwrap()))
            .collect::<Vec<_>>(),
        [("run.started", 1), ("run.completed", 2)],
        "{got:#?}"
    );
    let done = &ok_events[1];
    assert!(done["id"].as_str().unwrap().starts_with("evt_"));
    assert!(done["occurredAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(done["data"]["status"], "completed");
    assert_eq!(done["data"]["output"], json!({"doubled": 42}));
    assert_eq!(done["data"]["workflowId"], "wf_ok");
    assert_eq!(done["data"]["input"], json!({"n": 21}));
    assert!(done["data"].get("steps").is_none(), "{done}");
    // The started event shows the run as it was then.
    assert_eq!(ok_events[0]["data"]["status"], "running");
    assert_eq!(ok_events[0]["data"]["output"], Value::Null);

    let bad_events = of(&bad_run);
    let types: Vec<&str> = bad_events
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types.iter().filter(|t| **t == "run.failed").count(),
        2,
        "{types:?}"
    );
    assert_eq!(
        types.iter().filter(|t| **t == "run.started").count(),
        1,
        "{types:?}"
    );
    let failed = bad_events
        .iter()
        .find(|e| e["type"] == "run.failed")
        .unwrap();
    assert_eq!(failed["data"]["status"], "failed");
    assert!(failed["data"]["error"]["code"].is_string(), "{failed}");

    for r in rx.all() {
        assert!(
            hmac_verifies(&secret, &r) || r.body.contains("wf_bad"),
            "plain HMAC: {r:?}"
        );
        let id = r.headers["webhook-id"].to_str().unwrap();
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(
            id,
            body["id"].as_str().unwrap(),
            "webhook-id is the event id"
        );
        if python && hmac_verifies(&secret, &r) {
            assert!(library_verifies(&secret, &r), "standardwebhooks: {r:?}");
        }
    }
    // Every delivery is on record with its attempt.
    let list = eventually(Duration::from_secs(10), || async {
        let list = deliveries(&s, ep["id"].as_str().unwrap()).await;
        list.iter()
            .all(|d| d["status"] == "delivered")
            .then_some(list)
    })
    .await;
    assert_eq!(list.len(), 4, "{list:#?}");
    assert!(
        list.iter().all(|d| d["status"] == "delivered"
            && d["lastStatusCode"] == 200
            && d["attempts"] == 1)
    );
    assert_eq!(list[0]["attemptLog"][0]["response"], "thanks");
    let second = deliveries(&s, failing_only["id"].as_str().unwrap()).await;
    assert_eq!(second.len(), 1, "{second:#?}");
    assert_eq!(second[0]["eventType"], "run.failed");
    // Metrics: deliveries by outcome and the backlog (once the second endpoint's is recorded).
    let text = eventually(Duration::from_secs(10), || async {
        let text = s
            .http
            .get(format!("{}/metrics", s.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.contains("flowctl_outbox_backlog 0").then_some(text)
    })
    .await;
    assert!(
        text.contains("flowctl_webhook_deliveries_total{outcome=\"delivered\"} 5"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_attempt_is_retried_and_later_events_wait_for_it() {
    let rx = Receiver::start(Mode::FailTimes(1)).await;
    let s = Server::start_with_env(&[], &[("FLOWCTL_ENDPOINT_RETRY_MS", "400,400")]);
    let ep = create_endpoint(&s, json!({"url": rx.url})).await;
    s.apply(ok_workflow("wf_ok")).await;
    let run = s.trigger("wf_ok", json!({"n": 1})).await;
    s.wait_for_run(&run, Duration::from_secs(20)).await;
    let got = rx.wait_accepted(2, Duration::from_secs(20)).await;
    assert_eq!(
        got.iter()
            .map(|e| e["sequence"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2],
        "the completed event waited for the started one's retry"
    );
    let all = rx.all();
    assert_eq!(all.len(), 3, "one failure, then both: {all:#?}");
    // The failed attempt and its retry carry the same event id.
    assert_eq!(all[0].headers["webhook-id"], all[1].headers["webhook-id"]);
    let list = eventually(Duration::from_secs(10), || async {
        let list = deliveries(&s, ep["id"].as_str().unwrap()).await;
        list.iter()
            .all(|d| d["status"] == "delivered")
            .then_some(list)
    })
    .await;
    let started = list
        .iter()
        .find(|d| d["eventType"] == "run.started")
        .unwrap();
    assert_eq!(started["attempts"], 2, "{started}");
    assert_eq!(started["attemptLog"][0]["statusCode"], 500);
    assert_eq!(started["attemptLog"][0]["response"], "receiver is down");
    assert_eq!(started["attemptLog"][1]["statusCode"], 200);
    assert!(started["attemptLog"][0]["durationMs"].is_i64());
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_are_not_followed_and_redeliver_repeats_the_event_id() {
    let rx = Receiver::start(Mode::Redirect).await;
    let s = Server::start_with_env(&[], &[("FLOWCTL_ENDPOINT_RETRY_MS", "60000")]);
    let ep = create_endpoint(&s, json!({"url": rx.url, "events": ["run.completed"]})).await;
    let ep_id = ep["id"].as_str().unwrap();
    s.apply(ok_workflow("wf_ok")).await;
    let run = s.trigger("wf_ok", json!({"n": 1})).await;
    s.wait_for_run(&run, Duration::from_secs(20)).await;
    let first = eventually(Duration::from_secs(20), || async {
        let list = deliveries(&s, ep_id).await;
        list.first().filter(|d| d["attempts"] == 1).cloned()
    })
    .await;
    assert_eq!(first["lastStatusCode"], 302, "{first}");
    assert_eq!(
        first["status"], "pending",
        "a 302 is a failure: retried later"
    );
    assert_eq!(
        *rx.redirected.lock().unwrap(),
        0,
        "the redirect was not followed"
    );

    rx.set(Mode::Ok);
    let (status, v) = s
        .post(
            &format!(
                "/api/v1/deliveries/{}/redeliver",
                first["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["data"]["eventId"], first["eventId"]);
    let got = rx.wait_accepted(1, Duration::from_secs(20)).await;
    assert_eq!(got[0]["id"], first["eventId"], "the same event id");
    let all = rx.all();
    assert_eq!(all[0].headers["webhook-id"], all[1].headers["webhook-id"]);
    // Redelivering a delivered one sends the same event again.
    let newest = eventually(Duration::from_secs(10), || async {
        let d = deliveries(&s, ep_id).await[0].clone();
        (d["status"] == "delivered").then_some(d)
    })
    .await;
    s.post(
        &format!(
            "/api/v1/deliveries/{}/redeliver",
            newest["id"].as_str().unwrap()
        ),
        json!({}),
    )
    .await;
    let got = rx.wait_accepted(2, Duration::from_secs(20)).await;
    assert_eq!(got[0]["id"], got[1]["id"]);
    let (status, v) = s
        .post("/api/v1/deliveries/msg_nope/redeliver", json!({}))
        .await;
    assert_eq!(status, 404, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_endpoint_is_disabled_and_receives_nothing_until_enabled() {
    let down = Receiver::start(Mode::FailAlways).await;
    let watcher = Receiver::start(Mode::Ok).await;
    let s = Server::start_with_env(
        &["--endpoint-disable-after", "1s"],
        &[("FLOWCTL_ENDPOINT_RETRY_MS", "300,300,300,300,300,300,300")],
    );
    let ep = create_endpoint(&s, json!({"url": down.url, "events": ["run.completed"]})).await;
    let ep_id = ep["id"].as_str().unwrap().to_string();
    create_endpoint(
        &s,
        json!({"url": watcher.url, "events": ["endpoint.disabled"]}),
    )
    .await;
    s.apply(ok_workflow("wf_ok")).await;
    let run = s.trigger("wf_ok", json!({"n": 1})).await;
    s.wait_for_run(&run, Duration::from_secs(20)).await;
    let notice = watcher.wait_accepted(1, Duration::from_secs(20)).await;
    assert_eq!(notice[0]["type"], "endpoint.disabled");
    assert_eq!(notice[0]["data"]["endpointId"], ep_id.as_str());
    let (_, shown) = s.get(&format!("/api/v1/webhook-endpoints/{ep_id}")).await;
    assert_eq!(shown["data"]["enabled"], false, "{shown}");
    assert!(shown["data"]["disabledAt"].is_string());

    // Disabled: a new run's event is recorded but not sent.
    down.set(Mode::Ok);
    let attempts_before = down.all().len();
    let run2 = s.trigger("wf_ok", json!({"n": 2})).await;
    s.wait_for_run(&run2, Duration::from_secs(20)).await;
    let held = eventually(Duration::from_secs(10), || async {
        let list = deliveries(&s, &ep_id).await;
        list.iter().find(|d| d["runId"] == run2.as_str()).cloned()
    })
    .await;
    assert_eq!(held["status"], "pending");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        down.all().len(),
        attempts_before,
        "a disabled endpoint receives nothing"
    );

    let (status, v) = s
        .post(
            &format!("/api/v1/webhook-endpoints/{ep_id}/enable"),
            json!({}),
        )
        .await;
    assert_eq!((status, &v["data"]["enabled"]), (200, &json!(true)), "{v}");
    // Enabled: what was held is delivered (the first run's event, whose
    // retries were pending, and the second run's).
    eventually(Duration::from_secs(20), || async {
        down.accepted()
            .iter()
            .any(|e| e["data"]["id"] == run2.as_str())
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_delivery_then_the_event_is_delivered_with_the_same_id() {
    let rx = Receiver::start(Mode::Hang).await;
    let mut s = Server::start_with_env(&[], &[("FLOWCTL_DELIVERY_LEASE_MS", "3000")]);
    create_endpoint(&s, json!({"url": rx.url, "events": ["run.completed"]})).await;
    s.apply(ok_workflow("wf_ok")).await;
    let run = s.trigger("wf_ok", json!({"n": 1})).await;
    s.wait_for_run(&run, Duration::from_secs(20)).await;
    // The delivery is in flight (the receiver holds it): kill the server.
    let first = eventually(Duration::from_secs(20), || async {
        rx.all().first().cloned()
    })
    .await;
    s.kill();
    rx.set(Mode::Ok);
    s.launch();
    let got = rx.wait_accepted(1, Duration::from_secs(30)).await;
    assert_eq!(got[0]["data"]["id"], run.as_str());
    assert_eq!(
        rx.all().iter().find(|r| r.accepted).unwrap().headers["webhook-id"],
        first.headers["webhook-id"],
        "the same event id after the crash"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_are_checked_scoped_and_deleted() {
    let s = Server::start();
    let bad = [
        (json!({}), "url is required"),
        (json!({"url": "ftp://x"}), "absolute http or https"),
        (
            json!({"url": "http://example.com", "events": ["run.exploded"]}),
            "unknown event type",
        ),
        (
            json!({"url": "http://example.com", "events": []}),
            "at least one",
        ),
        (
            json!({"url": "http://example.com", "workflowIds": "wf_a"}),
            "array of strings",
        ),
        (
            json!({"url": "http://example.com", "colour": "red"}),
            "colour",
        ),
        (
            json!({"url": format!("{}/webhooks/custom/x", s.url)}),
            "own /webhooks/ path",
        ),
    ];
    for (body, says) in bad {
        let (status, v) = s.post("/api/v1/webhook-endpoints", body.clone()).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"]["code"], "INVALID_REQUEST", "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{body}: {v}"
        );
    }
    // The same server's other paths, and another server's /webhooks/, are fine.
    create_endpoint(&s, json!({"url": format!("{}/hooks", s.url)})).await;
    create_endpoint(&s, json!({"url": "http://127.0.0.1:1/webhooks/x"})).await;

    let reader = s.create_key("reader", "runs:read");
    let (status, _, v) = s
        .request_with_key(
            reqwest::Method::GET,
            "/api/v1/webhook-endpoints",
            None,
            Some(&reader),
        )
        .await;
    assert_eq!(status, 403, "{v}");
    let writer = s.create_key("hooks", "webhooks:write");
    let (status, _, v) = s
        .request_with_key(
            reqwest::Method::POST,
            "/api/v1/webhook-endpoints",
            Some(json!({"url": "http://example.com/in"})),
            Some(&writer),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let id = v["data"]["id"].as_str().unwrap().to_string();
    let (_, list) = s.get("/api/v1/webhook-endpoints").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 3);
    let (status, _, _) = s
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/webhook-endpoints/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, v) = s.get(&format!("/api/v1/webhook-endpoints/{id}")).await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (404, &json!("NOT_FOUND")),
        "{v}"
    );
}

/// flowctl's own `webhook` trigger (`provider: "standard"`) verifies what
/// another flowctl sends: one server notifies the other, which starts a run
/// from the event (and only from the event types it listens for).
#[tokio::test(flavor = "multi_thread")]
async fn one_flowctl_notifies_another() {
    let sender = Server::start();
    let listener = Server::start();
    let ep = create_endpoint(
        &sender,
        json!({"url": format!("{}/webhooks/flowctl-events", listener.url), "workflowIds": ["wf_ok"]}),
    )
    .await;
    let secret = ep["secret"].as_str().unwrap();
    let (status, v) = listener
        .post(
            "/api/v1/connections",
            json!({"id": "conn_sender", "provider": "webhook", "name": "the other flowctl", "secret": secret}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    listener
        .apply(json!({"id": "wf_on_done", "name": "On done",
            "trigger": {"type": "webhook", "path": "flowctl-events", "provider": "standard",
                "events": ["run.completed"], "connection": "conn_sender"},
            "steps": [{"id": "note", "type": "transform", "config": {"mapping": {
                "run": "{{input.body.data.id}}", "doubled": "{{input.body.data.output.doubled}}"}}}]}))
        .await;
    sender.apply(ok_workflow("wf_ok")).await;
    let run = sender.trigger("wf_ok", json!({"n": 4})).await;
    sender.wait_for_run(&run, Duration::from_secs(20)).await;
    let started = eventually(Duration::from_secs(20), || async {
        let (_, v) = listener.get("/api/v1/runs?workflowId=wf_on_done").await;
        v["data"].as_array().and_then(|a| a.first().cloned())
    })
    .await;
    let done = listener
        .wait_for_run(started["id"].as_str().unwrap(), Duration::from_secs(20))
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["output"], json!({"run": run, "doubled": 8}));
    // Both events were delivered (2xx); run.started was filtered by the trigger.
    let list = eventually(Duration::from_secs(10), || async {
        let list = deliveries(&sender, ep["id"].as_str().unwrap()).await;
        (list.len() == 2 && list.iter().all(|d| d["status"] == "delivered")).then_some(list)
    })
    .await;
    assert_eq!(list.len(), 2);
    let (_, runs) = listener.get("/api/v1/runs?workflowId=wf_on_done").await;
    assert_eq!(runs["data"].as_array().unwrap().len(), 1);
}

/// A receiver that answers slowly and records, per event id, how many
/// requests were in flight at once (a dropped connection ends one).
#[derive(Clone, Default)]
struct Slow {
    url: String,
    delivered: Arc<Mutex<Vec<String>>>,
    in_flight: Arc<Mutex<std::collections::HashMap<String, usize>>>,
    most_at_once: Arc<Mutex<usize>>,
}

struct Busy(Slow, String);

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.in_flight.lock().unwrap().get_mut(&self.1).unwrap() -= 1;
    }
}

async fn slow_receive(State(r): State<Slow>, headers: HeaderMap) -> StatusCode {
    let id = headers["webhook-id"].to_str().unwrap().to_string();
    let _busy = {
        let mut f = r.in_flight.lock().unwrap();
        let n = f.entry(id.clone()).or_default();
        *n += 1;
        let mut most = r.most_at_once.lock().unwrap();
        *most = (*most).max(*n);
        Busy(r.clone(), id.clone())
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    r.delivered.lock().unwrap().push(id);
    StatusCode::OK
}

/// Three nodes on one PostgreSQL database deliver together; the node holding
/// a delivery is killed mid-request: every event still arrives, and no event
/// is ever being delivered by two nodes at once.
#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_one_killed_mid_delivery_lose_nothing() {
    let Some(base) = pg::cluster_or_skip("three_nodes_one_killed_mid_delivery_lose_nothing") else {
        return;
    };
    let db = pg::create_database(&base);
    let env = [
        (
            "FLOWCTL_SECRET_KEY",
            "8f3c0e6a1d2b4c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6",
        ),
        ("FLOWCTL_DELIVERY_LEASE_MS", "2000"),
        ("FLOWCTL_ENDPOINT_RETRY_MS", "200,200,200,200"),
    ];
    let mut nodes: Vec<Server> = (0..3).map(|_| Server::start_node(&db, &env, &[])).collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rx = Slow {
        url: format!("http://{}/hook", listener.local_addr().unwrap()),
        ..Default::default()
    };
    let app = Router::new()
        .route("/hook", axum::routing::post(slow_receive))
        .with_state(rx.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    create_endpoint(&nodes[0], json!({"url": rx.url})).await;
    nodes[0].apply(ok_workflow("wf_ok")).await;
    let mut runs = vec![];
    for i in 0..30 {
        runs.push(nodes[i % 3].trigger("wf_ok", json!({"n": i})).await);
    }
    // Find the node holding a delivery that is being POSTed right now, and kill it.
    let (client, conn) = tokio_postgres::connect(&db, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let owner: String = eventually(Duration::from_secs(20), || async {
        if rx.in_flight.lock().unwrap().values().all(|n| *n == 0) {
            return None;
        }
        client
            .query_opt(
                "SELECT lease_owner FROM webhook_deliveries WHERE status = 'pending' \
                 AND lease_until IS NOT NULL LIMIT 1",
                &[],
            )
            .await
            .unwrap()
            .map(|r| r.get(0))
    })
    .await;
    let victim = nodes
        .iter()
        .position(|n| n.logs().contains(&owner))
        .expect("a node logs its delivery owner name");
    nodes[victim].kill();
    let alive = (victim + 1) % 3;
    for run in &runs {
        nodes[alive]
            .wait_for_run(run, Duration::from_secs(30))
            .await;
    }
    // 30 runs × (started, completed), each delivered at least once.
    let ids: Vec<String> = eventually(Duration::from_secs(40), || async {
        let rows = client
            .query("SELECT id FROM outbox_events", &[])
            .await
            .unwrap();
        let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        let got = rx.delivered.lock().unwrap().clone();
        (ids.len() == 60 && ids.iter().all(|id| got.contains(id))).then_some(ids)
    })
    .await;
    assert_eq!(ids.len(), 60);
    assert_eq!(
        *rx.most_at_once.lock().unwrap(),
        1,
        "an event was in flight twice at once"
    );
    // Per run, the events arrived in order.
    let delivered = rx.delivered.lock().unwrap().clone();
    let rows = client
        .query("SELECT id, subject, sequence FROM outbox_events", &[])
        .await
        .unwrap();
    for run in &runs {
        let mut seqs: Vec<(String, i64)> = rows
            .iter()
            .filter(|r| r.get::<_, String>(1) == *run)
            .map(|r| (r.get(0), r.get(2)))
            .collect();
        seqs.sort_by_key(|(_, s)| *s);
        let first_seen = |id: &str| delivered.iter().position(|d| d == id).unwrap();
        assert!(
            first_seen(&seqs[0].0) < first_seen(&seqs[1].0),
            "run {run} out of order"
        );
    }
}

/// The CLI (`flowctl endpoints …`) and the dashboard page (`/ui/endpoints`
/// with its Redeliver button) over the same endpoint.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_and_the_dashboard_manage_endpoints() {
    let rx = Receiver::start(Mode::Ok).await;
    let s = Server::start();
    let out = s.cli(&[
        "endpoints",
        "create",
        &rx.url,
        "--event",
        "run.completed",
        "--description",
        "ops",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert!(id.starts_with("ep_"), "{id}");
    assert!(
        stderr(&out).contains("whsec_"),
        "the secret is shown once: {}",
        stderr(&out)
    );
    let out = s.cli(&["endpoints", "list"]);
    assert!(
        stdout(&out).contains(&id) && stdout(&out).contains("run.completed"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("whsec_"));
    let out = s.cli(&["endpoints", "create", "not a url"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("absolute http or https"),
        "{}",
        stderr(&out)
    );

    s.apply(ok_workflow("wf_ok")).await;
    let run = s.trigger("wf_ok", json!({"n": 1})).await;
    s.wait_for_run(&run, Duration::from_secs(20)).await;
    rx.wait_accepted(1, Duration::from_secs(20)).await;
    let delivery = eventually(Duration::from_secs(10), || async {
        let out = s.cli(&["--json", "endpoints", "deliveries", &id]);
        let list: Vec<Value> = serde_json::from_str(&stdout(&out)).ok()?;
        list.first().filter(|d| d["status"] == "delivered").cloned()
    })
    .await;
    let out = s.cli(&["endpoints", "deliveries", &id]);
    assert!(
        stdout(&out).contains("delivered") && stdout(&out).contains(&run),
        "{}",
        stdout(&out)
    );
    let out = s.cli(&["endpoints", "redeliver", delivery["id"].as_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = rx.wait_accepted(2, Duration::from_secs(20)).await;
    assert_eq!(got[0]["id"], got[1]["id"]);

    // The dashboard: the endpoint, its deliveries, a Redeliver button that works.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let origin = [
        ("origin", s.url.clone()),
        ("sec-fetch-site", "same-origin".to_string()),
    ];
    let mut login = http.post(format!("{}/ui/login", s.url));
    for (k, v) in &origin {
        login = login.header(*k, v);
    }
    let resp = login
        .form(&[("key", s.key.as_str()), ("next", "/ui/endpoints")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = http
        .get(format!("{}/ui/endpoints", s.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&rx.url) && html.contains(&run) && html.contains("Redeliver"),
        "{html}"
    );
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = &html[at..at + html[at..].find('"').unwrap()];
    let mut redeliver = http
        .post(format!(
            "{}/ui/deliveries/{}/redeliver",
            s.url,
            delivery["id"].as_str().unwrap()
        ))
        .header("cookie", &cookie);
    for (k, v) in &origin {
        redeliver = redeliver.header(*k, v);
    }
    let resp = redeliver.form(&[("csrf", csrf)]).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    rx.wait_accepted(3, Duration::from_secs(20)).await;

    let out = s.cli(&["endpoints", "delete", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = s.cli(&["endpoints", "deliveries", &id]);
    assert_ne!(out.status.code(), Some(0));
}
