//! Real answers of every operation, successes and errors, checked against
//! what the document says about them (status, content type, headers, schema).

use super::support::*;
use super::{call, document};
use crate::common::{Api as _, *};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

type Op = (&'static str, &'static str);
const APPLY: Op = ("POST", "/api/v1/workflows");
const WORKFLOWS: Op = ("GET", "/api/v1/workflows");
const WORKFLOW: Op = ("GET", "/api/v1/workflows/{id}");
const ARCHIVE: Op = ("DELETE", "/api/v1/workflows/{id}");
const ACTIVATE: Op = ("POST", "/api/v1/workflows/{id}/activate");
const PAUSE: Op = ("POST", "/api/v1/workflows/{id}/pause");
const VERSION: Op = ("GET", "/api/v1/workflows/{id}/versions/{n}");
const TRIGGER: Op = ("POST", "/api/v1/workflows/{id}/run");
const RUN: Op = ("GET", "/api/v1/runs/{id}");
const RUNS: Op = ("GET", "/api/v1/runs");
const CANCEL: Op = ("POST", "/api/v1/runs/{id}/cancel");
const REPLAY: Op = ("POST", "/api/v1/runs/{id}/replay");
const REDRIVE: Op = ("POST", "/api/v1/runs/{id}/redrive");
const CREATE_CONN: Op = ("POST", "/api/v1/connections");
const CONNS: Op = ("GET", "/api/v1/connections");
const CONN: Op = ("GET", "/api/v1/connections/{id}");
const DELETE_CONN: Op = ("DELETE", "/api/v1/connections/{id}");

/// A server, its document and the key to call it with.
struct Api<'a> {
    s: &'a Server,
    doc: Value,
    key: Option<String>,
}

impl Api<'_> {
    /// Call `op` at `path` (its template filled in), expect `status`, check the
    /// answer against the document; returns the body and the answer.
    async fn expect(
        &self,
        op: Op,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> (Value, Answer) {
        let (method, template) = op;
        let body = body.map(|b| b.to_string());
        let a = call(
            self.s,
            method.parse().unwrap(),
            path,
            body,
            self.key.as_deref(),
        )
        .await;
        assert_eq!(a.status, status, "{method} {path}: {}", a.text);
        check_answer(&self.doc, method, template, &a);
        (serde_json::from_str(&a.text).unwrap_or(Value::Null), a)
    }

    fn with_key(&self, key: Option<&str>) -> Api<'_> {
        Api {
            s: self.s,
            doc: self.doc.clone(),
            key: key.map(String::from),
        }
    }
}

/// Child runs, a waiting `workflow` step and redrive, against the document.
#[tokio::test(flavor = "multi_thread")]
async fn child_runs_and_redrive_answers_match_the_document() {
    let s = Server::start();
    let api = Api {
        s: &s,
        doc: document(&s).await,
        key: Some(s.key.clone()),
    };
    let child = json!({"name": "Slow Child", "steps": [
        {"id": "nap", "type": "wait", "config": {"durationMs": 60000}}]});
    api.expect(APPLY, "/api/v1/workflows", Some(child), 201)
        .await;
    let parent = json!({"name": "Waiting Parent", "steps": [
        {"id": "call", "type": "workflow", "config": {"workflowId": "wf_slow_child"}}]});
    api.expect(APPLY, "/api/v1/workflows", Some(parent), 201)
        .await;
    let (v, _) = api
        .expect(
            TRIGGER,
            "/api/v1/workflows/wf_waiting_parent/run",
            None,
            202,
        )
        .await;
    let id = v["data"]["runId"].as_str().unwrap().to_string();
    let run_path = format!("/api/v1/runs/{id}");
    let waiting = eventually(Duration::from_secs(10), || async {
        let (v, _) = api.expect(RUN, &run_path, None, 200).await;
        (v["data"]["steps"][0]["status"] == "waiting").then_some(v)
    })
    .await;
    let output = &waiting["data"]["steps"][0]["output"];
    assert_eq!(output["waitingFor"], "children", "{waiting}");
    let errors = schema_errors(
        &inline(&api.doc, &json!({"$ref": "#/components/schemas/ChildWait"})),
        output,
    );
    assert!(errors.is_empty(), "{errors:?}: {output}");
    assert_eq!(waiting["data"]["children"]["running"], 1, "{waiting}");
    let (v, _) = api
        .expect(RUNS, &format!("/api/v1/runs?parentRunId={id}"), None, 200)
        .await;
    let kid = v["data"][0].clone();
    assert_eq!(kid["parentRunId"], id.as_str(), "{v}");
    assert_eq!(kid["parentStepId"], "call");
    assert_eq!(kid["rootRunId"], id.as_str());
    assert_eq!(kid["depth"], 1);
    api.expect(RUNS, "/api/v1/runs?includeChildren=true", None, 200)
        .await;
    // Redrive: refused while the run is unfinished, accepted once it is cancelled.
    let (v, _) = api
        .expect(REDRIVE, &format!("{run_path}/redrive"), None, 400)
        .await;
    assert_eq!(v["error"]["code"], "INVALID_STATUS", "{v}");
    api.expect(REDRIVE, "/api/v1/runs/run_nope/redrive", None, 404)
        .await;
    api.expect(CANCEL, &format!("{run_path}/cancel"), None, 200)
        .await;
    s.wait_for_run(&id, Duration::from_secs(10)).await;
    let (v, _) = api
        .expect(REDRIVE, &format!("{run_path}/redrive"), None, 200)
        .await;
    assert_eq!(v["data"]["redriveCount"], 1, "{v}");
    api.expect(CANCEL, &format!("{run_path}/cancel"), None, 200)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn real_answers_match_their_documented_schemas() {
    let s = Server::start();
    let api = Api {
        s: &s,
        doc: document(&s).await,
        key: Some(s.key.clone()),
    };
    let wf = create_invoice_workflow();
    api.expect(APPLY, "/api/v1/workflows", Some(wf.clone()), 201)
        .await;
    let (v, _) = api.expect(APPLY, "/api/v1/workflows", Some(wf), 200).await;
    assert_eq!(v["data"]["result"], "unchanged");
    let bad = json!({"name": "x", "steps": [{"id": "a", "type": "nope"}]});
    let (v, _) = api.expect(APPLY, "/api/v1/workflows", Some(bad), 400).await;
    assert_eq!(v["error"]["code"], "VALIDATION_ERROR");
    // One byte over the default 1 MiB: the server has read the whole body when
    // it answers, so the 413 is not lost to a connection reset.
    let huge = json!({"name": "x".repeat(1024 * 1024 + 1 - r#"{"name":""}"#.len())});
    assert_eq!(huge.to_string().len(), 1024 * 1024 + 1);
    api.expect(APPLY, "/api/v1/workflows", Some(huge), 413)
        .await;

    api.expect(WORKFLOWS, "/api/v1/workflows?limit=1", None, 200)
        .await;
    api.expect(WORKFLOWS, "/api/v1/workflows?limit=0", None, 400)
        .await;
    let wf_path = "/api/v1/workflows/wf_create_invoice";
    api.expect(WORKFLOW, wf_path, None, 200).await;
    api.expect(WORKFLOW, "/api/v1/workflows/wf_nope", None, 404)
        .await;
    api.expect(VERSION, &format!("{wf_path}/versions/1"), None, 200)
        .await;
    api.expect(VERSION, &format!("{wf_path}/versions/x"), None, 400)
        .await;
    // A path segment that is not UTF-8 once decoded: the envelope, not axum's text.
    api.expect(VERSION, &format!("{wf_path}/versions/%C3%28"), None, 400)
        .await;

    let run_path = &format!("{wf_path}/run");
    let input = json!({"input": {"customerId": "cus_1", "amount": 500}, "idempotencyKey": "k1"});
    let (v, _) = api
        .expect(TRIGGER, run_path, Some(input.clone()), 202)
        .await;
    let run_id = v["data"]["runId"].as_str().unwrap().to_string();
    let (_, a) = api.expect(TRIGGER, run_path, Some(input), 200).await;
    assert_eq!(a.headers["idempotent-replayed"], "true");
    let input = json!({"input": {"customerId": "cus_2", "amount": 700}});
    let waited = format!("{run_path}?wait=10");
    let (v, _) = api.expect(TRIGGER, &waited, Some(input), 202).await;
    assert_eq!(v["data"]["status"], "completed", "{v}");
    let input = json!({"input": {"amount": 1}});
    let (v, _) = api.expect(TRIGGER, run_path, Some(input), 400).await;
    assert_eq!(v["error"]["code"], "VALIDATION_ERROR");
    let a = call(
        &s,
        Method::POST,
        run_path,
        Some("{not json".into()),
        Some(&s.key),
    )
    .await;
    assert_eq!(a.status, 400);
    check_answer(&api.doc, TRIGGER.0, TRIGGER.1, &a);
    api.expect(TRIGGER, "/api/v1/workflows/wf_nope/run", None, 404)
        .await;

    s.wait_for_run(&run_id, Duration::from_secs(10)).await;
    let run_path = &format!("/api/v1/runs/{run_id}");
    let (v, _) = api
        .expect(RUN, &format!("{run_path}?wait=1"), None, 200)
        .await;
    assert!(!v["data"]["steps"].as_array().unwrap().is_empty());
    api.expect(RUN, &format!("{run_path}?wait=61"), None, 400)
        .await;
    api.expect(RUN, "/api/v1/runs/run_nope", None, 404).await;
    let (v, _) = api.expect(RUN, "/api/v1/runs/%FF", None, 400).await;
    assert_eq!(v["error"]["code"], "INVALID_REQUEST");
    let filtered = "/api/v1/runs?limit=1&workflowId=wf_create_invoice&status=completed";
    let (v, _) = api.expect(RUNS, filtered, None, 200).await;
    assert_eq!(v["meta"]["hasMore"], true, "{v}");
    api.expect(RUNS, "/api/v1/runs?status=bogus", None, 400)
        .await;
    api.expect(CANCEL, &format!("{run_path}/cancel"), None, 200)
        .await;
    api.expect(CANCEL, "/api/v1/runs/run_nope/cancel", None, 404)
        .await;
    let (v, _) = api
        .expect(REPLAY, &format!("{run_path}/replay"), None, 202)
        .await;
    assert_ne!(v["data"]["runId"], run_id.as_str(), "{v}");
    api.expect(REPLAY, "/api/v1/runs/run_nope/replay", None, 404)
        .await;
    let (v, _) = api
        .expect(RUNS, "/api/v1/runs?triggerType=replay", None, 200)
        .await;
    assert_eq!(v["data"][0]["triggerType"], "replay", "{v}");
    api.expect(RUNS, "/api/v1/runs?triggerType=bogus", None, 400)
        .await;

    api.expect(PAUSE, &format!("{wf_path}/pause"), None, 200)
        .await;
    let (v, _) = api
        .expect(TRIGGER, &format!("{wf_path}/run"), None, 400)
        .await;
    assert_eq!(v["error"]["code"], "INVALID_STATUS");
    api.expect(ACTIVATE, &format!("{wf_path}/activate"), None, 200)
        .await;
    api.expect(ARCHIVE, wf_path, None, 200).await;
    api.expect(ARCHIVE, "/api/v1/workflows/wf_nope", None, 404)
        .await;

    let conn = json!({"provider": "http", "name": "Local", "id": "conn_local",
        "config": {"baseUrl": "http://127.0.0.1:9"}, "secret": "s3cret-value"});
    let conns = "/api/v1/connections";
    let (v, a) = api
        .expect(CREATE_CONN, conns, Some(conn.clone()), 201)
        .await;
    assert_eq!(v["data"]["hasSecret"], true);
    assert!(!a.text.contains("s3cret-value"), "the secret is write-only");
    api.expect(CREATE_CONN, conns, Some(conn), 200).await;
    let fax = json!({"provider": "fax", "name": "x"});
    api.expect(CREATE_CONN, conns, Some(fax), 400).await;
    api.expect(CONNS, conns, None, 200).await;
    api.expect(CONN, "/api/v1/connections/conn_local", None, 200)
        .await;
    api.expect(DELETE_CONN, "/api/v1/connections/conn_local", None, 200)
        .await;
    api.expect(CONN, "/api/v1/connections/conn_local", None, 404)
        .await;
    api.expect(DELETE_CONN, "/api/v1/connections/conn_local", None, 404)
        .await;

    let anonymous = api.with_key(None);
    anonymous
        .expect(("GET", "/healthz"), "/healthz", None, 200)
        .await;
    let (_, a) = anonymous
        .expect(("GET", "/metrics"), "/metrics", None, 200)
        .await;
    assert!(a.text.contains("# TYPE"), "Prometheus text: {}", a.text);

    // Authentication and scopes.
    anonymous.expect(RUNS, "/api/v1/runs", None, 401).await;
    let stranger = api.with_key(Some("wfk_notakey"));
    stranger.expect(RUNS, "/api/v1/runs", None, 401).await;
    let reader_key = s.create_key("reader", "runs:read");
    let reader = api.with_key(Some(&reader_key));
    let (v, _) = reader
        .expect(APPLY, "/api/v1/workflows", Some(json!({})), 403)
        .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("workflows:write")
    );
    let resp = s
        .http
        .get(format!("{}/api/v1/runs", s.url))
        .bearer_auth(&reader_key);
    let resp = resp.send().await.unwrap();
    let a = Answer {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    };
    assert_eq!(a.status, 200, "Bearer works too: {}", a.text);
    check_answer(&api.doc, RUNS.0, RUNS.1, &a);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rate_limited_answer_matches_the_document() {
    let s = Server::start_with(&["--rate-limit-read", "1"]);
    let api = Api {
        s: &s,
        doc: document(&s).await,
        key: Some(s.key.clone()),
    };
    let (_, a) = api.expect(RUNS, "/api/v1/runs", None, 200).await;
    assert_eq!(a.headers["x-ratelimit-limit"], "1");
    let (v, a) = api.expect(RUNS, "/api/v1/runs", None, 429).await;
    assert_eq!(v["error"]["code"], "RATE_LIMITED");
    assert!(a.headers.contains_key("retry-after"));
}
