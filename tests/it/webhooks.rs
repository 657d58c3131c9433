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
        (
            &v["data"]["received"],
            &v["data"]["eventId"],
            &v["data"]["workflowsTriggered"]
        ),
        (&json!(true), &json!("evt_1"), &json!(1)),
        "{v}"
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
        (
            &v["data"]["received"],
            &v["data"]["eventId"],
            &v["data"]["workflowsTriggered"]
        ),
        (&json!(true), &json!("evt_2"), &json!(0)),
        "{v}"
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
        (
            &v["data"]["received"],
            &v["data"]["eventId"],
            &v["data"]["workflowsTriggered"]
        ),
        (&json!(true), &json!("msg_1"), &json!(2)),
        "{v}"
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
    // GitHub signs only the body: the delivery is keyed by the body's hash.
    let event_id = v["data"]["eventId"].as_str().unwrap().to_string();
    assert!(event_id.starts_with("sha256:"), "{v}");
    assert_eq!(v["data"]["workflowsTriggered"], 1, "{v}");
    assert_eq!(v["data"]["workflows"][0]["outcome"], "started", "{v}");
    let (_, v) = deliver(&s, "github", &body, &gh("push", "d-1", &sig)).await;
    assert_eq!(v["data"]["workflowsTriggered"], 0, "duplicate delivery");
    // A captured delivery replayed with fresh (unsigned) delivery ids, or
    // none, starts nothing, and the answer says why.
    for delivery in ["d-2", "d-3", ""] {
        let (status, v) = deliver(&s, "github", &body, &gh("push", delivery, &sig)).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["data"]["workflowsTriggered"], 0, "replay {delivery}: {v}");
        assert_eq!(v["data"]["workflows"][0]["outcome"], "duplicate", "{v}");
        assert!(
            v["data"]["workflows"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("delivered before"),
            "{v}"
        );
    }
    let other = json!({"ref": "refs/heads/dev"}).to_string();
    let other_sig = format!("sha256={}", openssl_hmac(GITHUB_SECRET, &other));
    let (_, v) = deliver(&s, "github", &other, &gh("issues", "d-4", &other_sig)).await;
    assert_eq!(v["data"]["workflowsTriggered"], 0, "filtered event");
    assert_eq!(v["data"]["workflows"][0]["outcome"], "filtered", "{v}");
    assert_eq!(
        v["data"]["workflows"][0]["reason"],
        "event type 'issues' is not in the workflow's events"
    );
    let bad = format!("sha256={}", openssl_hmac("not-the-secret", &body));
    let (status, _) = deliver(&s, "github", &body, &gh("push", "d-3", &bad)).await;
    assert_eq!(status, 401);

    let body = json!({"id": "ord_1", "ref": "refs/heads/main"}).to_string();
    let sig = openssl_hmac("custom-secret", &body);
    let (status, v) = deliver(
        &s,
        "custom",
        &body,
        &[("x-signature", sig.clone()), ("x-webhook-id", "c-1".into())],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["eventId"], "ord_1", "the signed body id wins");
    for fresh in [("idempotency-key", "fresh-1"), ("x-webhook-id", "fresh-2")] {
        let (status, v) = deliver(
            &s,
            "custom",
            &body,
            &[("x-signature", sig.clone()), (fresh.0, fresh.1.into())],
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["data"]["workflowsTriggered"], 0,
            "replay with {fresh:?}: {v}"
        );
    }
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

/// SQL against the server's own store (sqlite3 or psql), one value out.
fn store_sql(s: &Server, sql: &str) -> String {
    let out = match &s.database_url {
        Some(url) => Command::new("psql")
            .args([url.as_str(), "-tAc", sql])
            .output()
            .unwrap(),
        None => Command::new("sqlite3")
            .arg(&s.db)
            .arg(sql)
            .output()
            .unwrap(),
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn event_ids_outlive_provider_retries_paused_paths_say_so_and_one_provider_per_path() {
    if !have("openssl", Command::new("openssl").arg("version"))
        || !have("sqlite3", Command::new("sqlite3").arg("-version"))
    {
        return;
    }
    let s = Server::start();
    if s.on_postgres() && !have("psql", Command::new("psql").arg("--version")) {
        return;
    }
    connection(&s, "conn_custom", "custom-secret", json!({})).await;
    s.apply(json!({"id": "wf_a", "name": "a",
        "trigger": {"type": "webhook", "path": "shared", "provider": "custom", "connection": "conn_custom"},
        "steps": [{"id": "t", "type": "transform", "config": {"mapping": {}}}]}))
        .await;
    // Another provider on the same path is refused at apply.
    let (status, v) = s
        .post(
            "/api/v1/workflows",
            json!({"id": "wf_b", "name": "b",
                "trigger": {"type": "webhook", "path": "shared", "provider": "github", "connection": "conn_custom"},
                "steps": [{"id": "t", "type": "transform", "config": {"mapping": {}}}]}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["error"]["details"][0]["path"],
        json!(["trigger", "provider"]),
        "{v}"
    );
    assert!(
        v["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("wf_a"),
        "{v}"
    );

    let body = json!({"id": "evt_w2"}).to_string();
    let sig = vec![("x-webhook-signature", openssl_hmac("custom-secret", &body))];
    let (status, v) = deliver(&s, "shared", &body, &sig).await;
    assert_eq!(
        (status, &v["data"]["workflowsTriggered"]),
        (200, &json!(1)),
        "{v}"
    );
    // Remembered 72 hours (Stripe retries for 3 days); API keys 24 hours.
    let window = |key: &str| -> i64 {
        store_sql(
            &s,
            &format!(
                "SELECT k.expires_at - r.created_at FROM idempotency_keys k JOIN runs r ON r.id = k.run_id WHERE k.key = '{key}'"
            ),
        )
        .parse()
        .unwrap()
    };
    // (PostgreSQL stamps the run and the key a few milliseconds apart.)
    let about = |ms: i64, hours: i64| (ms - hours * 3_600_000).abs() < 1000;
    assert!(about(window("evt_w2"), 72), "{}", window("evt_w2"));
    let (status, v) = s
        .post(
            "/api/v1/workflows/wf_a/run",
            json!({"input": {}, "idempotencyKey": "api-1"}),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    assert!(about(window("api-1"), 24), "{}", window("api-1"));
    // A retry 25 hours later (the key's clock moved back) still starts nothing.
    store_sql(
        &s,
        "UPDATE idempotency_keys SET expires_at = expires_at - 25*3600*1000 WHERE key = 'evt_w2'",
    );
    let (status, v) = deliver(&s, "shared", &body, &sig).await;
    assert_eq!(
        (status, &v["data"]["workflowsTriggered"]),
        (200, &json!(0)),
        "{v}"
    );

    // A paused workflow: the answer names it (after the signature check).
    let (status, _) = s.post("/api/v1/workflows/wf_a/pause", json!({})).await;
    assert_eq!(status, 200);
    let body = json!({"id": "evt_paused"}).to_string();
    let sig = vec![("x-webhook-signature", openssl_hmac("custom-secret", &body))];
    let (status, v) = deliver(&s, "shared", &body, &sig).await;
    assert_eq!(status, 404, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wf_a paused"),
        "{v}"
    );
    assert!(
        s.logs().contains("webhook delivery started nothing"),
        "{}",
        s.logs()
    );
    let (status, _) = s.post("/api/v1/workflows/wf_a/activate", json!({})).await;
    assert_eq!(status, 200);
    let (status, v) = deliver(&s, "shared", &body, &sig).await;
    assert_eq!(
        (status, &v["data"]["workflowsTriggered"]),
        (200, &json!(1)),
        "{v}"
    );
}
