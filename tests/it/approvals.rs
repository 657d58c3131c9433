//! `approval` steps, callback waits and the `suspended` status through the real
//! binary: a run suspends holding no worker, decisions by key and by the emailed
//! link (whose GET never decides), replays and conflicts, `required`, every
//! `onTimeout`, SIGKILL survival, cancel, callbacks (early ones too), and 50
//! decisions racing for one approval.

use crate::common::smtp::SmtpServer;
use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no step {id} in {run}"))
}

/// An approval followed by a step that reads it.
fn approval_wf(name: &str, approval: Value) -> Value {
    json!({
        "name": name,
        "steps": [
            {"id": "ask", "type": "approval", "config": approval},
            {"id": "refund", "type": "transform", "if": "{{ steps.ask.output.approved }}",
             "config": {"mapping": {"refunded": "{{ input.amount }}"}}}
        ],
        "output": {"approval": "{{ steps.ask.output }}", "refund": "{{ steps.refund.output }}"}
    })
}

async fn run_view<A: Api>(s: &A, id: &str) -> Value {
    let (st, v) = s.get(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(st, 200, "{v}");
    v["data"].clone()
}

async fn until_suspended<A: Api>(s: &A, id: &str) -> Value {
    eventually(Duration::from_secs(20), || async {
        let run = run_view(s, id).await;
        (run["status"] == "suspended").then_some(run)
    })
    .await
}

async fn decide<A: Api>(
    s: &A,
    key: &str,
    run: &str,
    step: &str,
    decision: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    s.request_with_key(
        reqwest::Method::POST,
        &format!("/api/v1/runs/{run}/steps/{step}/decision"),
        Some(json!({"decision": decision, "comment": format!("{decision} it")})),
        Some(key),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decision_by_key_resumes_a_suspended_run_once() {
    let s = Server::start();
    s.apply(approval_wf(
        "Refund Key",
        json!({"approvers": ["ops"], "reason": "Refund {{ input.amount }}"}),
    ))
    .await;
    let id = s.trigger("wf_refund_key", json!({"amount": 700})).await;
    let run = until_suspended(&s, &id).await;
    let ask = step(&run, "ask");
    assert_eq!(ask["status"], "waiting", "{run}");
    assert_eq!(ask["waitingFor"], "approval", "{run}");
    assert_eq!(ask["output"]["reason"], "Refund 700");

    let (st, inbox) = s.get("/api/v1/approvals?status=pending").await;
    assert_eq!(st, 200, "{inbox}");
    let item = inbox["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["runId"] == id)
        .unwrap_or_else(|| panic!("{inbox}"))
        .clone();
    assert_eq!(item["stepId"], "ask");
    assert_eq!(item["approvers"], json!(["ops"]));
    assert!(item["expiresAt"].is_string());

    // Reading is not deciding: a key without runs:approve is refused.
    let reader = s.create_key("reader", "runs:read");
    let (st, _, v) = decide(&s, &reader, &id, "ask", "approve").await;
    assert_eq!(st, 403, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("runs:approve")
    );

    let finance = s.create_key("finance", "runs:approve");
    let (st, h, v) = decide(&s, &finance, &id, "ask", "approve").await;
    assert_eq!(st, 200, "{v}");
    assert!(h.get("idempotent-replayed").is_none());
    assert_eq!(v["data"]["by"], "finance");
    // The same decision again: a replay; a different one: 409 with the record.
    let (st, h, v) = decide(&s, &finance, &id, "ask", "approve").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(h["idempotent-replayed"], "true");
    let (st, _, v) = decide(&s, &finance, &id, "ask", "reject").await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["error"]["code"], "ALREADY_DECIDED");
    assert_eq!(v["error"]["decision"]["decision"], "approve");
    let other = s.create_key("other", "runs:approve");
    let (st, _, v) = decide(&s, &other, &id, "ask", "reject").await;
    assert_eq!(st, 409, "{v}");

    let run = s.wait_for_run(&id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "completed", "{run}");
    let out = &run["output"]["approval"];
    assert_eq!(out["approved"], true, "{run}");
    assert_eq!(out["decision"], "approve");
    assert_eq!(out["approvedBy"], "finance");
    assert_eq!(out["comment"], "approve it");
    assert_eq!(out["decisions"].as_array().unwrap().len(), 1, "{run}");
    assert_eq!(run["output"]["refund"], json!({"refunded": 700}));
    let (_, inbox) = s.get("/api/v1/approvals").await;
    assert!(
        !inbox["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["runId"] == id),
        "{inbox}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejection_is_a_branch_and_on_reject_fail_fails() {
    let s = Server::start();
    s.apply(approval_wf("Reject Branch", json!({"approvers": ["ops"]})))
        .await;
    s.apply(json!({
        "name": "Reject Fails",
        "steps": [{"id": "ask", "type": "approval",
                   "config": {"approvers": ["ops"], "onReject": "fail"}}]
    }))
    .await;
    let key = s.create_key("ops", "runs:approve");
    let a = s.trigger("wf_reject_branch", json!({"amount": 1})).await;
    let b = s.trigger("wf_reject_fails", json!({})).await;
    for id in [&a, &b] {
        until_suspended(&s, id).await;
        let (st, _, v) = decide(&s, &key, id, "ask", "reject").await;
        assert_eq!(st, 200, "{v}");
    }
    let run = s.wait_for_run(&a, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"]["approval"]["approved"], false);
    assert_eq!(step(&run, "refund")["status"], "skipped");
    let run = s.wait_for_run(&b, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(
        step(&run, "ask")["error"]["code"],
        "APPROVAL_REJECTED",
        "{run}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn required_two_needs_two_approvers() {
    let s = Server::start();
    s.apply(approval_wf(
        "Two Approvers",
        json!({"approvers": ["alice", "bob", "carol"], "required": 2}),
    ))
    .await;
    let alice = s.create_key("alice", "runs:approve");
    let bob = s.create_key("bob", "runs:approve");
    let id = s.trigger("wf_two_approvers", json!({"amount": 5})).await;
    until_suspended(&s, &id).await;
    let (st, _, v) = decide(&s, &alice, &id, "ask", "approve").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["resolved"], false);
    let run = run_view(&s, &id).await;
    assert_eq!(
        run["status"], "suspended",
        "one of two is not enough: {run}"
    );
    assert_eq!(
        step(&run, "ask")["output"]["decisions"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{run}"
    );
    let (st, _, v) = decide(&s, &bob, &id, "ask", "approve").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["resolved"], true);
    let run = s.wait_for_run(&id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "completed", "{run}");
    let out = &run["output"]["approval"];
    assert_eq!(out["approved"], true);
    assert_eq!(out["approvedBy"], "bob");
    let by: Vec<&str> = out["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["by"].as_str().unwrap())
        .collect();
    assert_eq!(by, ["alice", "bob"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_on_timeout_decides_at_the_deadline() {
    let s = Server::start();
    for on in ["reject", "approve", "fail"] {
        s.apply(approval_wf(
            &format!("Timeout {on}"),
            json!({"approvers": ["ops"], "timeoutMs": 2000, "onTimeout": on}),
        ))
        .await;
    }
    let ids: Vec<String> = futures_ids(&s).await;
    let reject = s.wait_for_run(&ids[0], Duration::from_secs(20)).await;
    assert_eq!(reject["status"], "completed", "{reject}");
    assert_eq!(reject["output"]["approval"]["approved"], false);
    assert_eq!(reject["output"]["approval"]["decision"], "timeout");
    assert_eq!(step(&reject, "refund")["status"], "skipped");
    let approve = s.wait_for_run(&ids[1], Duration::from_secs(20)).await;
    assert_eq!(approve["status"], "completed", "{approve}");
    assert_eq!(approve["output"]["approval"]["approved"], true);
    assert_eq!(approve["output"]["approval"]["decision"], "timeout");
    assert_eq!(approve["output"]["refund"], json!({"refunded": 9}));
    let fail = s.wait_for_run(&ids[2], Duration::from_secs(20)).await;
    assert_eq!(fail["status"], "failed", "{fail}");
    assert_eq!(step(&fail, "ask")["error"]["code"], "APPROVAL_TIMEOUT");
    // Decided at the deadline, not before it.
    let waited = |run: &Value| {
        let at =
            |k: &str| flowctl::time::parse_rfc3339(step(run, "ask")[k].as_str().unwrap()).unwrap();
        at("completedAt") - at("startedAt")
    };
    for run in [&reject, &approve, &fail] {
        let ms = waited(run);
        assert!((2000..10_000).contains(&ms), "{ms} ms: {run}");
    }
    // A decision after the deadline: 410.
    let key = s.create_key("late", "runs:approve");
    let (st, _, v) = decide(&s, &key, &ids[0], "ask", "approve").await;
    assert_eq!(st, 410, "{v}");
    assert_eq!(v["error"]["code"], "EXPIRED");
}

async fn futures_ids(s: &Server) -> Vec<String> {
    let mut ids = vec![];
    for on in ["reject", "approve", "fail"] {
        ids.push(
            s.trigger(&format!("wf_timeout_{on}"), json!({"amount": 9}))
                .await,
        );
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn a_suspended_run_survives_sigkill_and_resumes_on_a_decision() {
    let mut s = Server::start();
    s.apply(approval_wf("Survive Kill", json!({"approvers": ["ops"]})))
        .await;
    let id = s.trigger("wf_survive_kill", json!({"amount": 3})).await;
    until_suspended(&s, &id).await;
    s.kill();
    s.launch();
    let run = until_suspended(&s, &id).await;
    assert_eq!(step(&run, "ask")["status"], "waiting");
    let key = s.create_key("after-restart", "runs:approve");
    let (st, _, v) = decide(&s, &key, &id, "ask", "approve").await;
    assert_eq!(st, 200, "{v}");
    let run = s.wait_for_run(&id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"]["refund"], json!({"refunded": 3}));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_suspended_run_holds_no_worker_and_no_slot() {
    let s = Server::start_with(&["--workers", "1"]);
    let mut wf = approval_wf("Hold Nothing", json!({"approvers": ["ops"]}));
    wf["concurrency"] = json!(1);
    s.apply(wf).await;
    s.apply(json!({"name": "Quick", "steps": [
        {"id": "t", "type": "transform", "config": {"mapping": {"ok": true}}}]}))
        .await;
    let first = s.trigger("wf_hold_nothing", json!({"amount": 1})).await;
    until_suspended(&s, &first).await;
    // Neither the one worker nor the workflow's one slot is taken.
    let second = s.trigger("wf_hold_nothing", json!({"amount": 2})).await;
    until_suspended(&s, &second).await;
    let quick = s.trigger("wf_quick", json!({})).await;
    let run = s.wait_for_run(&quick, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "completed", "{run}");
    let (_, list) = s.get("/api/v1/runs?status=suspended").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2, "{list}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_suspended_run_makes_its_approval_useless() {
    let s = Server::start();
    s.apply(approval_wf("Cancel Me", json!({"approvers": ["ops"]})))
        .await;
    let id = s.trigger("wf_cancel_me", json!({"amount": 1})).await;
    until_suspended(&s, &id).await;
    let (st, v) = s
        .post(&format!("/api/v1/runs/{id}/cancel"), json!({}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["status"], "cancelled");
    let key = s.create_key("too-late", "runs:approve");
    let (st, _, v) = decide(&s, &key, &id, "ask", "approve").await;
    assert_eq!(st, 410, "{v}");
    let run = run_view(&s, &id).await;
    assert_eq!(run["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_simultaneous_decisions_make_exactly_one() {
    let s = Server::start_with(&["--rate-limit-write", "0"]);
    s.apply(approval_wf("Race", json!({"approvers": ["ops"]})))
        .await;
    let id = s.trigger("wf_race", json!({"amount": 1})).await;
    until_suspended(&s, &id).await;
    let keys: Vec<String> = (0..5)
        .map(|i| s.create_key(&format!("racer{i}"), "runs:approve"))
        .collect();
    let mut tasks = vec![];
    for i in 0..50 {
        let key = keys[i % keys.len()].clone();
        let url = format!("{}/api/v1/runs/{id}/steps/ask/decision", s.url);
        let http = s.http.clone();
        let decision = if i % 2 == 0 { "approve" } else { "reject" };
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .header("x-api-key", key)
                .json(&json!({"decision": decision}))
                .send()
                .await
                .unwrap();
            let replayed = r.headers().get("idempotent-replayed").is_some();
            (r.status().as_u16(), replayed)
        }));
    }
    let mut fresh = 0;
    for t in tasks {
        let (status, replayed) = t.await.unwrap();
        match (status, replayed) {
            (200, false) => fresh += 1,
            (200, true) | (409, _) => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(fresh, 1, "exactly one decision is recorded");
    let run = s.wait_for_run(&id, Duration::from_secs(20)).await;
    assert_eq!(
        run["output"]["approval"]["decisions"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{run}"
    );
}

fn mail_link(raw: &[u8]) -> String {
    let msg = mail_parser::MessageParser::default().parse(raw).unwrap();
    let text = msg.body_text(0).unwrap().to_string();
    let start = text
        .find("http")
        .unwrap_or_else(|| panic!("no link in {text}"));
    text[start..].split_whitespace().next().unwrap().to_string()
}

fn form_token(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("form token field")
        + 19;
    html[at..].split('"').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mailed_link_shows_a_page_and_only_its_form_decides() {
    if !have_python_module("aiosmtpd") {
        return;
    }
    let s = Server::start_with(&["--public-url", "https://flows.example.test/"]);
    let smtp = SmtpServer::start(s.home.path());
    let (st, v) = s
        .post(
            "/api/v1/connections",
            json!({"provider": "smtp", "name": "mail", "default": true,
                   "config": {"host": "127.0.0.1", "port": smtp.port, "tls": "none",
                              "from": "flows@example.com"}}),
        )
        .await;
    assert!(st == 200 || st == 201, "{v}");
    s.apply(approval_wf(
        "Mailed Refund",
        json!({"approvers": ["ana@example.com", "ops"], "reason": "Refund {{ input.amount }} EUR",
               "notifyChannels": {"email": true}}),
    ))
    .await;
    let id = s.trigger("wf_mailed_refund", json!({"amount": 750})).await;
    until_suspended(&s, &id).await;
    let raw = eventually(Duration::from_secs(20), || async {
        smtp.messages().into_iter().next()
    })
    .await;
    let text = String::from_utf8_lossy(&raw).to_string();
    assert!(text.contains("ana@example.com"), "{text}");
    let link = mail_link(&raw);
    let prefix = "https://flows.example.test/approve/";
    assert!(link.starts_with(prefix), "{link}");
    let path = format!("/approve/{}", &link[prefix.len()..]);
    assert_eq!(
        smtp.messages().len(),
        1,
        "only the email approver gets a mail"
    );

    // Three GETs (a mail scanner, a preview, the person) change nothing.
    let mut page = String::new();
    for _ in 0..3 {
        let r = s.http.get(format!("{}{path}", s.url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
        page = r.text().await.unwrap();
        assert!(page.contains("Refund 750 EUR"), "{page}");
    }
    let run = run_view(&s, &id).await;
    assert_eq!(run["status"], "suspended", "{run}");
    assert!(
        step(&run, "ask")["output"]["decisions"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let post = |form: Vec<(&'static str, String)>| {
        let http = s.http.clone();
        let url = format!("{}{path}", s.url);
        async move { http.post(url).form(&form).send().await.unwrap() }
    };
    // Without the page's form token: refused.
    let r = post(vec![("decision", "approve".into())]).await;
    assert_eq!(r.status(), 403);
    let csrf = form_token(&page);
    let r = post(vec![
        ("decision", "approve".into()),
        ("comment", "ok for me".into()),
        ("csrf", csrf.clone()),
    ])
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = post(vec![("decision", "approve".into()), ("csrf", csrf.clone())]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let r = post(vec![("decision", "reject".into()), ("csrf", csrf.clone())]).await;
    assert_eq!(r.status(), 409);

    let run = s.wait_for_run(&id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"]["approval"]["approvedBy"], "ana@example.com");
    assert_eq!(run["output"]["approval"]["comment"], "ok for me");
    // An unknown link: 404.
    let r = s
        .http
        .get(format!("{}/approve/apv_nothing", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

fn callback_wf(name: &str, on_timeout: &str, timeout_ms: u64, early: bool) -> Value {
    let mut steps = vec![json!({"id": "hand", "type": "transform",
        "config": {"mapping": {"url": "{{ callbacks.cb.url }}"}}})];
    if early {
        steps.push(json!({"id": "pause", "type": "wait", "config": {"durationMs": 1500}}));
    }
    steps.push(json!({"id": "cb", "type": "wait",
        "config": {"callback": {"timeoutMs": timeout_ms, "onTimeout": on_timeout}}}));
    steps.push(json!({"id": "after", "type": "transform",
        "config": {"mapping": {"got": "{{ steps.cb.output }}"}}}));
    json!({"name": name, "steps": steps})
}

async fn callback_url<A: Api>(s: &A, id: &str) -> String {
    eventually(Duration::from_secs(20), || async {
        let run = run_view(s, id).await;
        step(&run, "hand")["output"]["url"]
            .as_str()
            .map(String::from)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_complete_waits_early_ones_too() {
    let s = Server::start();
    s.apply(callback_wf("Cb Late", "fail", 60_000, false)).await;
    s.apply(callback_wf("Cb Early", "fail", 60_000, true)).await;

    // On time: the run suspends, the POST completes the step.
    let id = s.trigger("wf_cb_late", json!({})).await;
    let run = until_suspended(&s, &id).await;
    assert_eq!(step(&run, "cb")["waitingFor"], "callback", "{run}");
    let url = callback_url(&s, &id).await;
    let path = &url[url.find("/callbacks/").unwrap()..];
    let post = |body: Value| {
        let http = s.http.clone();
        let u = format!("{}{path}", s.url);
        async move {
            let r = http
                .post(u)
                .header("x-trace", "abc")
                .json(&body)
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap())
        }
    };
    let (st, v) = post(json!({"pdf": "done"})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["received"], true);
    let (st, v) = post(json!({"pdf": "again"})).await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["error"]["code"], "ALREADY_RECEIVED");
    let run = s.wait_for_run(&id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "completed", "{run}");
    let got = &step(&run, "after")["output"]["got"];
    assert_eq!(got["received"], true);
    assert_eq!(got["body"], json!({"pdf": "done"}));
    assert_eq!(got["headers"]["x-trace"], "abc");

    // Early: the callback arrives while the run is still in its timed wait.
    let id = s.trigger("wf_cb_early", json!({})).await;
    let url = callback_url(&s, &id).await;
    let path = &url[url.find("/callbacks/").unwrap()..];
    let r = s
        .http
        .post(format!("{}{path}", s.url))
        .json(&json!({"early": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let run = run_view(&s, &id).await;
    assert_ne!(
        step(&run, "cb")["status"],
        "completed",
        "still before the step: {run}"
    );
    let run = s.wait_for_run(&id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        step(&run, "after")["output"]["got"]["body"],
        json!({"early": true})
    );

    // A forged token: 404.
    let r = s
        .http
        .post(format!(
            "{}/callbacks/{}x",
            s.url,
            &path["/callbacks/".len()..]
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn callback_timeouts_fail_or_continue_and_the_key_route_completes() {
    let s = Server::start();
    s.apply(callback_wf("Cb Fail", "fail", 2000, false)).await;
    s.apply(callback_wf("Cb Continue", "continue", 2000, false))
        .await;
    s.apply(callback_wf("Cb Key", "fail", 60_000, false)).await;
    let fail = s.trigger("wf_cb_fail", json!({})).await;
    let cont = s.trigger("wf_cb_continue", json!({})).await;
    let keyed = s.trigger("wf_cb_key", json!({})).await;
    until_suspended(&s, &keyed).await;
    let (st, v) = s
        .post(
            &format!("/api/v1/runs/{keyed}/steps/cb/callback"),
            json!({"from": "inside"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s
        .post(
            &format!("/api/v1/runs/{keyed}/steps/hand/callback"),
            json!({}),
        )
        .await;
    assert_eq!(st, 404, "not a callback step: {v}");
    let run = s.wait_for_run(&keyed, Duration::from_secs(20)).await;
    assert_eq!(
        step(&run, "after")["output"]["got"]["body"],
        json!({"from": "inside"})
    );

    let run = s.wait_for_run(&fail, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(step(&run, "cb")["error"]["code"], "CALLBACK_TIMEOUT");
    let run = s.wait_for_run(&cont, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        step(&run, "after")["output"]["got"],
        json!({"received": false})
    );
    // After the deadline: 410.
    let url = callback_url(&s, &fail).await;
    let path = &url[url.find("/callbacks/").unwrap()..];
    let r = s
        .http
        .post(format!("{}{path}", s.url))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_refuses_approvals_that_cannot_work() {
    let s = Server::start();
    let (st, v) = s
        .post(
            "/api/v1/workflows",
            json!({"name": "Bad Approvals", "timeoutMs": 60000, "steps": [
                {"id": "unchecked", "type": "approval", "config": {"approvers": ["ops"], "timeoutMs": 1000}},
                {"id": "long", "type": "approval", "config": {"approvers": ["ops"], "onReject": "fail"}},
                {"id": "slack", "type": "approval", "config": {"approvers": ["ops"], "onReject": "fail",
                  "timeoutMs": 1000, "notifyChannels": {"slack": true}}},
                {"id": "t", "type": "transform", "config": {"mapping": {"u": "{{ callbacks.nope.url }}"}}}
            ]}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    let text = v["error"]["details"].to_string();
    assert!(
        text.contains("approval 'unchecked' is never checked"),
        "{text}"
    );
    assert!(text.contains("longer than the run's timeoutMs"), "{text}");
    assert!(
        text.contains("notify channel 'slack' does not exist yet"),
        "{text}"
    );
    assert!(
        text.contains("'callbacks.nope' names no callback wait step"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_lists_waits_and_decides() {
    let s = Server::start();
    s.apply(approval_wf(
        "Cli Refund",
        json!({"approvers": ["ops"], "reason": "Refund {{ input.amount }}"}),
    ))
    .await;
    // `--wait` keeps waiting through the suspension; its --timeout still applies.
    let out = s.cli(&[
        "run",
        "wf_cli_refund",
        "--input",
        "{\"amount\": 42}",
        "--wait",
        "--timeout",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    let (_, list) = s.get("/api/v1/runs?workflowId=wf_cli_refund").await;
    let id = list["data"][0]["id"].as_str().unwrap().to_string();
    until_suspended(&s, &id).await;

    let out = s.cli(&["runs", "show", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ask: waiting for approval until"),
        "{}",
        stderr(&out)
    );
    let out = s.cli(&["approvals", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(
        table.contains(&id) && table.contains("Refund 42"),
        "{table}"
    );

    let out = s.cli(&["approvals", "approve", &id, "ask", "--comment", "fine"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("approved by"), "{}", stdout(&out));
    let out = s.cli(&["wait", &id, "--timeout", "20"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let output: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(output["approval"]["comment"], "fine");
    // A conflicting decision is a rejected request: exit 2, the code named.
    let out = s.cli(&["approvals", "reject", &id, "ask"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("ALREADY_DECIDED"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_decisions_across_two_postgres_nodes_make_exactly_one() {
    let Some(base) = pg::cluster_or_skip("approvals across nodes") else {
        return;
    };
    let db = pg::create_database(&base);
    let env = [
        (
            "FLOWCTL_SECRET_KEY",
            "5f3c0e6a1d2b4c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6",
        ),
        ("FLOWCTL_LEASE_MS", "1500"),
    ];
    let a = Server::start_node(&db, &env, &["--rate-limit-write", "0"]);
    let b = Server::start_node(&db, &env, &["--rate-limit-write", "0"]);
    a.apply(approval_wf("Race Nodes", json!({"approvers": ["ops"]})))
        .await;
    let id = a.trigger("wf_race_nodes", json!({"amount": 1})).await;
    until_suspended(&b, &id).await;
    let keys: Vec<String> = (0..4)
        .map(|i| a.create_key(&format!("node-racer{i}"), "runs:approve"))
        .collect();
    let mut tasks = vec![];
    for i in 0..50 {
        let node = if i % 2 == 0 { &a } else { &b };
        let url = format!("{}/api/v1/runs/{id}/steps/ask/decision", node.url);
        let (http, key) = (node.http.clone(), keys[i % keys.len()].clone());
        let decision = if i % 3 == 0 { "reject" } else { "approve" };
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .header("x-api-key", key)
                .json(&json!({"decision": decision}))
                .send()
                .await
                .unwrap();
            let replayed = r.headers().get("idempotent-replayed").is_some();
            (r.status().as_u16(), replayed)
        }));
    }
    let mut fresh = 0;
    for t in tasks {
        match t.await.unwrap() {
            (200, false) => fresh += 1,
            (200, true) | (409, _) => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(fresh, 1, "exactly one decision across both nodes");
    let run = b.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        run["output"]["approval"]["decisions"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{run}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_refund_example_asks_only_for_large_refunds_and_honours_a_rejection() {
    let s = Server::start();
    let def: Value =
        serde_json::from_str(&std::fs::read_to_string("workflows/refund_approval.json").unwrap())
            .unwrap();
    s.apply(def).await;
    let small = s
        .trigger(
            "wf_refund_approval",
            json!({"customerId": "cus_1", "amount": 20}),
        )
        .await;
    let run = s.wait_for_run(&small, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"]["refunded"], true, "{run}");
    assert_eq!(run["output"]["refund"]["approvedBy"], "not needed");

    let key = s.create_key("finance-lead", "runs:approve");
    for (decision, refunded) in [("approve", true), ("reject", false)] {
        let id = s
            .trigger(
                "wf_refund_approval",
                json!({"customerId": "cus_2", "amount": 750}),
            )
            .await;
        let run = until_suspended(&s, &id).await;
        assert_eq!(
            step(&run, "ask-finance")["output"]["reason"],
            "Refund 750 EUR to cus_2 (customer request)"
        );
        let (st, _, v) = decide(&s, &key, &id, "ask-finance", decision).await;
        assert_eq!(st, 200, "{v}");
        let run = s.wait_for_run(&id, Duration::from_secs(20)).await;
        assert_eq!(run["status"], "completed", "{run}");
        assert_eq!(run["output"]["refunded"], refunded, "{decision}: {run}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_inbox_approves_and_the_run_page_shows_the_decision() {
    let s = Server::start();
    s.apply(approval_wf(
        "Ui Refund",
        json!({"approvers": ["ops"], "reason": "Refund {{ input.amount }} via the dashboard"}),
    ))
    .await;
    let id = s.trigger("wf_ui_refund", json!({"amount": 64})).await;
    until_suspended(&s, &id).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = |key: String| {
        let (http, url) = (http.clone(), s.url.clone());
        async move {
            let r = http
                .post(format!("{url}/ui/login"))
                .header("origin", &url)
                .header("sec-fetch-site", "same-origin")
                .form(&[("key", key.as_str()), ("next", "/ui/approvals")])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 303);
            let c = r.headers()["set-cookie"].to_str().unwrap().to_string();
            c.split(';').next().unwrap().to_string()
        }
    };
    let get = |cookie: String, path: String| {
        let (http, url) = (http.clone(), s.url.clone());
        async move {
            let r = http
                .get(format!("{url}{path}"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // A reader sees the inbox, without buttons.
    let reader = login(s.create_key("ui-reader", "runs:read")).await;
    let (st, html) = get(reader, "/ui/approvals".into()).await;
    assert_eq!(st, 200);
    assert!(
        html.contains("via the dashboard") && html.contains(&id),
        "{html}"
    );
    assert!(!html.contains("value=\"approve\""), "{html}");

    let approver = login(s.create_key("ui-approver", "runs:read,runs:approve")).await;
    let (_, html) = get(approver.clone(), "/ui/approvals".into()).await;
    assert!(html.contains("value=\"approve\""), "{html}");
    let csrf = form_token(&html);
    let r = http
        .post(format!("{}/ui/approvals/{id}/ask", s.url))
        .header("cookie", &approver)
        .header("origin", &s.url)
        .header("sec-fetch-site", "same-origin")
        .form(&[
            ("decision", "approve"),
            ("comment", "from the UI"),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let run = s.wait_for_run(&id, Duration::from_secs(20)).await;
    assert_eq!(
        run["output"]["approval"]["approvedBy"], "ui-approver",
        "{run}"
    );
    let (st, html) = get(approver, format!("/ui/runs/{id}")).await;
    assert_eq!(st, 200);
    assert!(
        html.contains("ui-approver</strong> approved") && html.contains("from the UI"),
        "{html}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_inside_a_sub_workflow_holds_its_parent_until_decided() {
    let s = Server::start();
    s.apply(approval_wf("Child Approval", json!({"approvers": ["ops"]})))
        .await;
    s.apply(json!({"name": "Parent Of Approval", "steps": [
        {"id": "call", "type": "workflow",
         "config": {"workflowId": "wf_child_approval", "input": {"amount": 8}}}]}))
        .await;
    let parent = s.trigger("wf_parent_of_approval", json!({})).await;
    let child = eventually(Duration::from_secs(20), || async {
        let (_, list) = s.get(&format!("/api/v1/runs?parentRunId={parent}")).await;
        list["data"][0]["id"].as_str().map(String::from)
    })
    .await;
    until_suspended(&s, &child).await;
    assert_eq!(run_view(&s, &parent).await["status"], "running");
    let key = s.create_key("child-approver", "runs:approve");
    let (st, _, v) = decide(&s, &key, &child, "ask", "approve").await;
    assert_eq!(st, 200, "{v}");
    let run = s.wait_for_run(&parent, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        run["output"]["approval"]["approvedBy"], "child-approver",
        "{run}"
    );

    // Cancelling a parent cancels its suspended child, whose approval is then useless.
    let parent = s.trigger("wf_parent_of_approval", json!({})).await;
    let child = eventually(Duration::from_secs(20), || async {
        let (_, list) = s.get(&format!("/api/v1/runs?parentRunId={parent}")).await;
        list["data"][0]["id"].as_str().map(String::from)
    })
    .await;
    until_suspended(&s, &child).await;
    let (st, _) = s
        .post(&format!("/api/v1/runs/{parent}/cancel"), json!({}))
        .await;
    assert_eq!(st, 200);
    assert_eq!(run_view(&s, &child).await["status"], "cancelled");
    let (st, _, v) = decide(&s, &key, &child, "ask", "approve").await;
    assert_eq!(st, 410, "{v}");
}

/// `flowctl db copy` carries what a suspended run waits on: an approval
/// pending on SQLite is decided on PostgreSQL and the run goes on there.
#[tokio::test(flavor = "multi_thread")]
async fn a_pending_approval_copied_to_postgres_is_decided_there() {
    let Some(base) = pg::cluster_or_skip("a_pending_approval_copied_to_postgres") else {
        return;
    };
    let home = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let db = home.path().join("flowctl.db");
    let mut s = Server::start_at(home.clone(), db.clone(), &[], &[]);
    s.apply(approval_wf(
        "Refund Copied",
        json!({"approvers": ["ops"], "reason": "Refund {{ input.amount }}"}),
    ))
    .await;
    let id = s.trigger("wf_refund_copied", json!({"amount": 640})).await;
    until_suspended(&s, &id).await;
    s.kill();

    let target = pg::create_database(&base);
    let mut copy = std::process::Command::new(BIN);
    env_for(&mut copy, home.path());
    let out = copy
        .args(["db", "copy", "--to", &target, "--db"])
        .arg(&db)
        .env_remove("FLOWCTL_SECRET_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "db copy failed: {}", stderr(&out));
    assert!(stdout(&out).contains("approvals"), "{}", stdout(&out));
    let key = std::fs::read_to_string(home.path().join("secret.key")).unwrap();
    let node = Server::start_node(&target, &[("FLOWCTL_SECRET_KEY", key.trim())], &[]);
    let run = until_suspended(&node, &id).await;
    assert_eq!(step(&run, "ask")["output"]["reason"], "Refund 640", "{run}");
    let (status, _, body) = decide(&node, &node.key, &id, "ask", "approve").await;
    assert_eq!(status, 200, "{body}");
    let run = node.wait_for_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"]["refund"], json!({"refunded": 640}), "{run}");
}
