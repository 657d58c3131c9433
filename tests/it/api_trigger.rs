//! The seed's trigger and status endpoints through the real server: exact
//! envelopes, codes, statuses and messages.

use crate::common::app::TestApp;
use crate::common::*;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn seed_request_gets_202_with_the_seed_shape() {
    let s = TestApp::start();
    s.apply(create_invoice_workflow()).await;
    let (status, v) = s
        .post(
            "/api/v1/workflows/wf_create_invoice/run",
            json!({"input": {"customerId": "cus_xxx", "amount": 9900}}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(v["success"], true);
    let data = &v["data"];
    assert!(data["runId"].as_str().unwrap().starts_with("run_"));
    assert_eq!(data["status"], "pending");
    assert_eq!(data["workflowId"], "wf_create_invoice");
    assert_eq!(data["workflowVersion"], 1);

    let run = s
        .wait_for_run(data["runId"].as_str().unwrap(), Duration::from_secs(10))
        .await;
    assert_eq!(run["status"], "completed");
    // Schema defaults are applied before the run sees the input.
    assert_eq!(
        run["input"],
        json!({"customerId": "cus_xxx", "amount": 9900, "currency": "usd"})
    );
    assert_eq!(
        run["output"],
        json!({"customer": "cus_xxx", "amount": 9900, "currency": "usd"})
    );
    assert_eq!(run["steps"][0]["id"], "echo");
    assert_eq!(run["steps"][0]["status"], "completed");
    assert_eq!(run["steps"][0]["attempts"], 1);
    for field in ["createdAt", "startedAt", "completedAt"] {
        let t = run[field].as_str().unwrap();
        assert!(t.ends_with('Z') && t.len() == 24, "{field} = {t}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_error_responses() {
    let s = TestApp::start();
    s.apply(create_invoice_workflow()).await;

    let (status, v) = s
        .post("/api/v1/workflows/wf_missing/run", json!({"input": {}}))
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        v,
        json!({"success": false, "error": {"code": "NOT_FOUND", "message": "Workflow not found"}})
    );

    let mut draft = create_invoice_workflow();
    draft["name"] = json!("Draft Flow");
    draft["status"] = json!("draft");
    s.apply(draft).await;
    let (status, v) = s
        .post("/api/v1/workflows/wf_draft_flow/run", json!({"input": {}}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        v,
        json!({"success": false, "error": {"code": "INVALID_STATUS", "message": "Workflow must be active to run. Current status: draft"}})
    );

    let (status, v) = s
        .post(
            "/api/v1/workflows/wf_create_invoice/run",
            json!({"input": {"amount": 9900}}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        v,
        json!({"success": false, "error": {"code": "VALIDATION_ERROR", "message": "Input validation failed",
            "details": [{"path": ["customerId"], "message": "Required"}]}})
    );

    let (status, v) = s
        .post(
            "/api/v1/workflows/wf_create_invoice/run",
            json!({"input": {"customerId": "nope", "amount": 5}}),
        )
        .await;
    assert_eq!(status, 400);
    let paths: Vec<_> = v["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].clone())
        .collect();
    assert!(
        paths.contains(&json!(["customerId"])) && paths.contains(&json!(["amount"])),
        "{v}"
    );

    let (status, _, v) = s
        .request_with_key(
            Method::POST,
            "/api/v1/workflows/wf_create_invoice/run",
            Some(json!({})),
            None,
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("UNAUTHORIZED"))
    );
    let (status, _, v) = s
        .request_with_key(
            Method::POST,
            "/api/v1/workflows/wf_create_invoice/run",
            Some(json!({})),
            Some("wfk_wrong"),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("UNAUTHORIZED"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_violation_paths_and_malformed_bodies() {
    let s = TestApp::start();
    s.apply(json!({
        "name": "Orders",
        "inputSchema": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array",
            "items": {"type": "object", "required": ["price"], "properties": {"quantity": {"type": "number", "minimum": 1}}}}}},
        "steps": [{"id": "t", "type": "transform", "config": {"mapping": {"n": "{{input.items}}"}}}]
    }))
    .await;
    let (status, v) = s
        .post(
            "/api/v1/workflows/wf_orders/run",
            json!({"input": {"items": [{"quantity": 0}]}}),
        )
        .await;
    assert_eq!(status, 400);
    let details = v["error"]["details"].as_array().unwrap();
    assert!(
        details.contains(&json!({"path": ["items", 0, "price"], "message": "Required"})),
        "{v}"
    );
    assert!(
        details
            .iter()
            .any(|d| d["path"] == json!(["items", 0, "quantity"])),
        "{v}"
    );

    let raw = s
        .http
        .post(format!("{}/api/v1/workflows/wf_orders/run", s.url))
        .header("x-api-key", &s.key)
        .header("content-type", "application/json")
        .body("{\"input\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let v: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(v["error"]["code"], "INVALID_REQUEST");

    for body in [
        json!({"input": [1, 2]}),
        json!({"input": "text"}),
        json!([1]),
        json!({"idempotencyKey": ""}),
        json!({"idempotencyKey": 5}),
    ] {
        let (status, v) = s
            .post("/api/v1/workflows/wf_orders/run", body.clone())
            .await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (400, Some("INVALID_REQUEST")),
            "{body} -> {v}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_replays_and_is_race_free() {
    let s = TestApp::start();
    s.apply(create_invoice_workflow()).await;
    let body = json!({"input": {"customerId": "cus_1", "amount": 100}, "idempotencyKey": "process-order-123"});
    let (status, h, first) = s
        .request(
            Method::POST,
            "/api/v1/workflows/wf_create_invoice/run",
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 202);
    assert!(h.get("idempotent-replayed").is_none());
    // A replay answers the existing run whatever the new input.
    let other = json!({"input": {"customerId": "cus_2", "amount": 500}, "idempotencyKey": "process-order-123"});
    let (status, h, again) = s
        .request(
            Method::POST,
            "/api/v1/workflows/wf_create_invoice/run",
            Some(other),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(h.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again["data"]["runId"], first["data"]["runId"]);

    let mut tasks = vec![];
    for _ in 0..32 {
        let http = s.http.clone();
        let url = format!("{}/api/v1/workflows/wf_create_invoice/run", s.url);
        let key = s.key.clone();
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .header("x-api-key", key)
                .json(&json!({"input": {"customerId": "cus_9", "amount": 100}, "idempotencyKey": "burst"}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let v: serde_json::Value = r.json().await.unwrap();
            (status, v["data"]["runId"].as_str().unwrap().to_string())
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for t in tasks {
        let (status, id) = t.await.unwrap();
        created += usize::from(status == 202);
        ids.insert(id);
    }
    assert_eq!(
        ids.len(),
        1,
        "32 concurrent triggers with one key made {} runs",
        ids.len()
    );
    assert_eq!(created, 1);
    let (_, list) = s
        .get("/api/v1/runs?workflowId=wf_create_invoice&limit=100")
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_is_an_envelope() {
    let s = TestApp::start();
    let (status, _, v) = s.request(Method::GET, "/nope", None).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let (status, _, v) = s.request(Method::PUT, "/api/v1/workflows", None).await;
    assert_eq!((status, v["success"].as_bool()), (405, Some(false)));
    let (status, v) = s.get("/api/v1/runs/run_doesnotexist").await;
    assert_eq!(status, 404);
    assert_eq!(v["error"]["message"], "Run not found");
    let (status, v) = s.get("/healthz").await;
    assert_eq!((status, v["data"]["status"].as_str()), (200, Some("ok")));
}

#[tokio::test(flavor = "multi_thread")]
async fn scopes_are_enforced_and_named() {
    let s = Server::start();
    s.apply(create_invoice_workflow()).await;
    let reader = s.create_key("reader", "runs:read");
    assert!(reader.starts_with("wfk_") && reader.len() == 36, "{reader}");
    let (status, _, v) = s
        .request_with_key(
            Method::POST,
            "/api/v1/workflows/wf_create_invoice/run",
            Some(json!({})),
            Some(&reader),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(v["error"]["code"], "FORBIDDEN");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("workflows:execute"),
        "{v}"
    );
    let (status, _, _) = s
        .request_with_key(Method::GET, "/api/v1/runs", None, Some(&reader))
        .await;
    assert_eq!(status, 200);
    // Bearer works too.
    let r = s
        .http
        .get(format!("{}/api/v1/runs", s.url))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let store = s.store_args();
    let store: Vec<&str> = store.iter().map(String::as_str).collect();
    let list = s.cli(&[&["keys", "list", "--json"][..], &store].concat());
    let keys: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "reader")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !stdout(&list).contains(&reader),
        "keys list must never show a key"
    );
    let out = s.cli(&[&["keys", "revoke", &id][..], &store].concat());
    assert!(out.status.success());
    eventually(Duration::from_secs(10), || async {
        let (status, _, _) = s
            .request_with_key(Method::GET, "/api/v1/runs", None, Some(&reader))
            .await;
        (status == 401).then_some(())
    })
    .await;
}
