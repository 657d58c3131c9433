//! Webhook triggers through the real server, signed by libraries nobody here
//! wrote: Stripe's official Python package (signature helper, confirmed with
//! `Webhook.construct_event`), the Standard Webhooks reference package, and
//! GitHub's scheme with `openssl dgst -hmac`. Bad, stale and tampered
//! signatures are refused with nothing stored; redeliveries and filtered
//! events start nothing.

use crate::common::*;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const STRIPE_SECRET: &str = "whsec_flowctl_stripe_test";
const GITHUB_SECRET: &str = "gh-hook-secret";
// base64 of 24 random-looking bytes.
const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn run_with_stdin(cmd: &mut Command, stdin: &str) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `Stripe-Signature` headers, made by the `stripe` package, one for each
/// `(secret, body, unix time, fresh)`; one Python start for all (it is slow).
fn stripe_headers(requests: &[(&str, &str, i64, bool)]) -> Vec<String> {
    let script = r#"
import sys, json, stripe
from stripe import Webhook, WebhookSignature
for secret, payload, t, fresh in json.load(sys.stdin):
    header = "t=%d,v1=%s" % (t, WebhookSignature._compute_signature("%d.%s" % (t, payload), secret))
    # Stripe's own verification accepts it (the tolerance is checked for fresh ones).
    Webhook.construct_event(payload, header, secret, **({} if fresh else {"tolerance": None}))
    print(header)
"#;
    let input = serde_json::to_string(requests).unwrap();
    run_with_stdin(Command::new("python3").args(["-c", script]), &input)
        .lines()
        .map(String::from)
        .collect()
}

/// `webhook-signature` for `body`, made (and checked) by `standardwebhooks`.
fn standard_signature(secret: &str, id: &str, t: i64, body: &str) -> String {
    let script = r#"
import sys, datetime, standardwebhooks
secret, msg_id, ts = sys.argv[1], sys.argv[2], sys.argv[3]
payload = sys.stdin.read()
wh = standardwebhooks.Webhook(secret)
sig = wh.sign(msg_id, datetime.datetime.fromtimestamp(int(ts), tz=datetime.timezone.utc), payload)
# The reference verifier accepts it (it also checks the timestamp, so only fresh ones).
if abs(int(ts) - datetime.datetime.now().timestamp()) < 300:
    wh.verify(payload, {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig})
print(sig)
"#;
    run_with_stdin(
        Command::new("python3").args(["-c", script, secret, id, &t.to_string()]),
        body,
    )
}

/// Hex HMAC-SHA256 of `body` by `openssl dgst`.
fn openssl_hmac(secret: &str, body: &str) -> String {
    let out = run_with_stdin(
        Command::new("openssl").args(["dgst", "-sha256", "-hmac", secret]),
        body,
    );
    out.rsplit(' ').next().unwrap().to_string()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn connection(s: &Server, id: &str, secret: &str, config: Value) {
    let (status, v) = s
        .post(
            "/api/v1/connections",
            json!({"id": id, "provider": "webhook", "name": id, "secret": secret, "config": config}),
        )
        .await;
    assert!(status == 201 || status == 200, "{v}");
}

async fn deliver(s: &Server, path: &str, body: &str, headers: &[(&str, String)]) -> (u16, Value) {
    let mut req = s
        .http
        .post(format!("{}/webhooks/{path}", s.url))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn webhook_runs(s: &Server) -> Vec<Value> {
    let (_, v) = s.get("/api/v1/runs?triggerType=webhook&limit=100").await;
    v["data"].as_array().unwrap().clone()
}

/// The billing workflow users write: it reads the Stripe event from a webhook
/// delivery's body, or from the input itself when run through the API.
fn billing_workflow(id: &str, path: &str, events: Value) -> Value {
    json!({"id": id, "name": id,
        "trigger": {"type": "webhook", "path": path, "provider": "stripe", "events": events,
            "connection": "conn_stripe_hooks"},
        "steps": [{"id": "record", "type": "transform", "config": {"mapping": {
            "invoice": "{{input.body.data.object.id | default: input.data.object.id}}",
            "paid": "{{input.body.data.object.amount_paid | default: input.data.object.amount_paid}}"}}}]})
}

fn stripe_event(id: &str, kind: &str) -> String {
    json!({"id": id, "object": "event", "type": kind,
        "data": {"object": {"id": "in_test", "amount_paid": 9900}}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn stripe_deliveries_are_verified_deduplicated_and_filtered() {
    if !have_python_module("stripe") {
        return;
    }
    let s = Server::start();
    connection(&s, "conn_stripe_hooks", STRIPE_SECRET, json!({})).await;
    s.apply(billing_workflow(
        "wf_invoice_paid",
        "stripe-orders",
        json!(["invoice.paid"]),
    ))
    .await;

    let body = stripe_event("evt_1", "invoice.paid");
    let other = stripe_event("evt_2", "invoice.created");
    let fresh = stripe_event("evt_3", "invoice.paid");
    let t = now();
    let [sig, sig2, wrong, stale, good]: [String; 5] = stripe_headers(&[
        (STRIPE_SECRET, &body, t, true),
        (STRIPE_SECRET, &other, t, true),
        ("whsec_someone_else", &fresh, t, true),
        (STRIPE_SECRET, &fresh, t - 400, false),
        (STRIPE_SECRET, &fresh, t, true),
    ])
    .try_into()
    .unwrap();
    let (status, v) = deliver(
        &s,
        "stripe-orders?source=test",
        &body,
        &[("stripe-signature", sig.clone())],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["data"],
        json!({"received": true, "eventId": "evt_1", "workflowsTriggered": 1})
    );
    let runs = webhook_runs(&s).await;
    assert_eq!(runs.len(), 1);
    let run = s
        .wait_for_run(runs[0]["id"].as_str().unwrap(), Duration::from_secs(10))
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"], json!({"invoice": "in_test", "paid": 9900}));
    assert_eq!(run["idempotencyKey"], "evt_1");
    assert_eq!(run["input"]["query"], json!({"source": "test"}));
    assert_eq!(run["input"]["body"]["type"], "invoice.paid");
    let headers = run["input"]["headers"].as_object().unwrap();
    assert_eq!(headers["content-type"], "application/json");
    assert!(!headers.contains_key("stripe-signature"), "{headers:?}");

    // Stripe retries the same event: answered again, nothing new.
    let (status, v) = deliver(
        &s,
        "stripe-orders",
        &body,
        &[("stripe-signature", sig.clone())],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["workflowsTriggered"], 0);
    assert_eq!(webhook_runs(&s).await.len(), 1);

    // An event the workflow does not listen to: acknowledged, nothing started.
    let (status, v) = deliver(&s, "stripe-orders", &other, &[("stripe-signature", sig2)]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["data"],
        json!({"received": true, "eventId": "evt_2", "workflowsTriggered": 0})
    );

    // Refused, nothing stored: wrong secret, stale timestamp, tampered body, no header.
    let tampered = fresh.replace("9900", "1");
    for (body, headers) in [
        (&fresh, vec![("stripe-signature", wrong)]),
        (&fresh, vec![("stripe-signature", stale)]),
        (&tampered, vec![("stripe-signature", good)]),
        (&fresh, vec![]),
    ] {
        let (status, v) = deliver(&s, "stripe-orders", body, &headers).await;
        assert_eq!(status, 401, "{v}");
        assert_eq!(v["error"]["code"], "UNAUTHORIZED");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Webhook signature verification failed"),
            "{v}"
        );
    }
    let (_, v) = s.get("/api/v1/runs?limit=100").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");

    let (status, v) = deliver(&s, "nobody-listens", &fresh, &[]).await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["error"]["code"], "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_simulation_and_the_signed_event_run_the_same_workflow() {
    if !have_python_module("stripe") || !have("curl", Command::new("curl").arg("--version")) {
        return;
    }
    let s = Server::start();
    connection(&s, "conn_stripe_hooks", STRIPE_SECRET, json!({})).await;
    s.apply(billing_workflow(
        "wf_billing",
        "billing",
        json!(["invoice.paid"]),
    ))
    .await;
    // The seed's "Simulate a Stripe webhook", as written there.
    let out = Command::new("curl")
        .args([
            "-sS",
            "-X",
            "POST",
            &format!("{}/api/v1/workflows/wf_billing/run", s.url),
        ])
        .args(["-H", &format!("x-api-key: {}", s.key)])
        .args([
            "-d",
            r#"{
    "input": {
      "type": "invoice.paid",
      "data": {
        "object": {
          "id": "in_test",
          "amount_paid": 9900
        }
      }
    }
  }"#,
        ])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["success"], true, "{v}");
    let simulated = s
        .wait_for_run(
            v["data"]["runId"].as_str().unwrap(),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(simulated["triggerType"], "api");

    let body = stripe_event("evt_seed", "invoice.paid");
    let sig = stripe_headers(&[(STRIPE_SECRET, &body, now(), true)]).remove(0);
    let (status, v) = deliver(&s, "billing", &body, &[("stripe-signature", sig)]).await;
    assert_eq!(status, 200, "{v}");
    let run = webhook_runs(&s).await.remove(0);
    let delivered = s
        .wait_for_run(run["id"].as_str().unwrap(), Duration::from_secs(10))
        .await;
    assert_eq!(delivered["output"], simulated["output"]);
    assert_eq!(
        delivered["output"],
        json!({"invoice": "in_test", "paid": 9900})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn standard_webhooks_and_several_workflows_on_one_path() {
    if !have_python_module("standardwebhooks") {
        return;
    }
    let s = Server::start();
    connection(&s, "conn_std", STANDARD_SECRET, json!({})).await;
    for id in ["wf_std_a", "wf_std_b"] {
        s.apply(json!({"id": id, "name": id,
            "trigger": {"type": "webhook", "path": "events/std", "provider": "standard",
                "connection": "conn_std"},
            "steps": [{"id": "t", "type": "transform", "config": {"mapping": {"kind": "{{input.body.type}}"}}}]}))
            .await;
    }
    let body = json!({"type": "user.created", "data": {"id": 7}}).to_string();
    let t = now();
    let sig = standard_signature(STANDARD_SECRET, "msg_1", t, &body);
    let headers = vec![
        ("webhook-id", "msg_1".to_string()),
        ("webhook-timestamp", t.to_string()),
        ("webhook-signature", sig.clone()),
    ];
    let (status, v) = deliver(&s, "events/std", &body, &headers).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["data"],
        json!({"received": true, "eventId": "msg_1", "workflowsTriggered": 2})
    );
    let runs = webhook_runs(&s).await;
    assert_eq!(runs.len(), 2);
    let headers_seen = runs[0]["input"]["headers"].as_object().unwrap();
    assert!(
        headers_seen.contains_key("webhook-id") && !headers_seen.contains_key("webhook-signature")
    );
    let (status, v) = deliver(&s, "events/std", &body, &headers).await;
    assert_eq!((status, &v["data"]["workflowsTriggered"]), (200, &json!(0)));

    let tampered = body.replace("7", "8");
    let (status, _) = deliver(&s, "events/std", &tampered, &headers).await;
    assert_eq!(status, 401);
    let stale_t = now() - 400;
    let stale = vec![
        ("webhook-id", "msg_2".to_string()),
        ("webhook-timestamp", stale_t.to_string()),
        (
            "webhook-signature",
            standard_signature(STANDARD_SECRET, "msg_2", stale_t, &body),
        ),
    ];
    let (status, v) = deliver(&s, "events/std", &body, &stale).await;
    assert_eq!(status, 401, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("300 seconds"),
        "{v}"
    );
    assert_eq!(webhook_runs(&s).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn github_and_custom_signatures_with_openssl_and_unsigned_when_explicit() {
    if !have("openssl", Command::new("openssl").arg("version")) {
        return;
    }
    let s = Server::start();
    connection(&s, "conn_gh", GITHUB_SECRET, json!({})).await;
    connection(
        &s,
        "conn_custom",
        "custom-secret",
        json!({"header": "X-Signature"}),
    )
    .await;
    s.apply(json!({"id": "wf_gh", "name": "gh",
        "trigger": {"type": "webhook", "path": "github", "provider": "github",
            "events": ["push"], "connection": "conn_gh"},
        "steps": [{"id": "t", "type": "transform", "config": {"mapping": {"ref": "{{input.body.ref}}"}}}]}))
        .await;
    s.apply(json!({"id": "wf_custom", "name": "custom",
        "trigger": {"type": "webhook", "path": "custom", "provider": "custom", "connection": "conn_custom"},
        "steps": [{"id": "t", "type": "transform", "config": {"mapping": {}}}]}))
        .await;
    s.apply(json!({"id": "wf_open", "name": "open",
        "trigger": {"type": "webhook", "path": "open", "verifySignature": false},
        "steps": [{"id": "t", "type": "transform", "config": {"mapping": {}}}]}))
        .await;

    let body = json!({"ref": "refs/heads/main"}).to_string();
    let sig = format!("sha256={}", openssl_hmac(GITHUB_SECRET, &body));
    let gh = |event: &str, delivery: &str, sig: &str| {
        vec![
            ("x-github-event", event.to_string()),
            ("x-github-delivery", delivery.to_string()),
            ("x-hub-signature-256", sig.to_string()),
        ]
    };
    let (status, v) = deliver(&s, "github", &body, &gh("push", "d-1", &sig)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["data"],
        json!({"received": true, "eventId": "d-1", "workflowsTriggered": 1})
    );
    let (_, v) = deliver(&s, "github", &body, &gh("push", "d-1", &sig)).await;
    assert_eq!(v["data"]["workflowsTriggered"], 0, "duplicate delivery");
    let (_, v) = deliver(&s, "github", &body, &gh("issues", "d-2", &sig)).await;
    assert_eq!(v["data"]["workflowsTriggered"], 0, "filtered event");
    let bad = format!("sha256={}", openssl_hmac("not-the-secret", &body));
    let (status, _) = deliver(&s, "github", &body, &gh("push", "d-3", &bad)).await;
    assert_eq!(status, 401);

    let sig = openssl_hmac("custom-secret", &body);
    let (status, v) = deliver(
        &s,
        "custom",
        &body,
        &[("x-signature", sig.clone()), ("x-webhook-id", "c-1".into())],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["eventId"], "c-1");
    let (status, _) = deliver(
        &s,
        "custom",
        &body.replace("main", "evil"),
        &[("x-signature", sig)],
    )
    .await;
    assert_eq!(status, 401);

    let (status, v) = deliver(&s, "open", "{}", &[]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["workflowsTriggered"], 1);
    let runs = webhook_runs(&s).await;
    assert_eq!(runs.len(), 3, "{runs:?}");
    let custom_run = runs
        .iter()
        .find(|r| r["workflowId"] == "wf_custom")
        .unwrap();
    assert!(
        custom_run["input"]["headers"].get("x-signature").is_none(),
        "{custom_run}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_definitions_are_checked_and_the_per_ip_limit_holds() {
    let s = Server::start_with(&["--rate-limit-webhook", "3"]);
    let (status, v) = s
        .post(
            "/api/v1/workflows",
            json!({"name": "bad hook",
            "trigger": {"type": "webhook", "path": "/x", "provider": "paypal"},
            "steps": [{"id": "t", "type": "transform", "config": {"mapping": {}}}]}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    let paths: Vec<_> = v["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].clone())
        .collect();
    assert_eq!(
        paths,
        [
            json!(["trigger", "path"]),
            json!(["trigger", "provider"]),
            json!(["trigger", "connection"])
        ],
        "{v}"
    );
    s.apply(json!({"id": "wf_open", "name": "open",
        "trigger": {"type": "webhook", "path": "open", "verifySignature": false},
        "steps": [{"id": "t", "type": "transform", "config": {"mapping": {}}}]}))
        .await;
    for _ in 0..3 {
        let (status, v) = deliver(&s, "open", "{}", &[]).await;
        assert_eq!(status, 200, "{v}");
    }
    let (status, v) = deliver(&s, "open", "{}", &[]).await;
    assert_eq!(status, 429, "{v}");
    assert_eq!(v["error"]["code"], "RATE_LIMITED");
}
