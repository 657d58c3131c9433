//! The dashboard's protections over real HTTP against the real server:
//! session cookie flags, sessions stored hashed and ended by logout or key
//! revocation, CSRF token + Origin / Sec-Fetch-Site checks, scopes enforced
//! by the server, a strict CSP, and the API never accepting the cookie.
//! (Tests/browser/ drives the same pages in Chromium.)

use crate::common::Api;
use crate::common::app::TestApp;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;
use std::time::Duration;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// What a browser sends with a same-origin form post.
fn same_origin(s: &TestApp) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("origin", HeaderValue::from_str(&s.url).unwrap());
    h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
    h
}

/// Log in with `key`; returns the session cookie's value.
async fn login(s: &TestApp, key: &str) -> String {
    let resp = client()
        .post(format!("{}/ui/login", s.url))
        .headers(same_origin(s))
        .form(&[("key", key), ("next", "/ui/runs")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    let value = cookie
        .strip_prefix("flowctl_session=")
        .and_then(|c| c.split(';').next())
        .unwrap();
    value.to_string()
}

async fn page(s: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let resp = client()
        .get(format!("{}{path}", s.url))
        .header("cookie", format!("flowctl_session={cookie}"))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    let body = resp.text().await.unwrap();
    (status, location.unwrap_or(body))
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

async fn post(s: &TestApp, cookie: &str, path: &str, headers: HeaderMap, csrf: &str) -> u16 {
    client()
        .post(format!("{}{path}", s.url))
        .header("cookie", format!("flowctl_session={cookie}"))
        .headers(headers)
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn slow_run(s: &TestApp) -> String {
    s.apply(json!({"id": "wf_slow", "name": "Slow", "steps": [
        {"id": "nap", "type": "wait", "config": {"durationMs": 60000}}]}))
        .await;
    s.trigger("wf_slow", json!({})).await
}

#[tokio::test(flavor = "multi_thread")]
async fn login_cookie_is_strict_and_httponly_and_stored_only_hashed() {
    let s = TestApp::start();
    let resp = client()
        .get(format!("{}/ui/login", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(resp.text().await.unwrap().contains("API key"));

    let bad = client()
        .post(format!("{}/ui/login", s.url))
        .headers(same_origin(&s))
        .form(&[("key", "wfk_wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert!(bad.headers().get("set-cookie").is_none());

    let resp = client()
        .post(format!("{}/ui/login", s.url))
        .headers(same_origin(&s))
        .header("x-forwarded-proto", "https")
        .form(&[("key", s.key.as_str())])
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    let plain = login(&s, &s.key).await;
    let (status, html) = page(&s, &plain, "/ui/runs").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<h1>Runs</h1>") && !html.contains("style=\""));

    if s.on_postgres() {
        return; // the session table is looked at on the SQLite run of the suite
    }
    let db = rusqlite::Connection::open(&s.db).unwrap();
    let stored: Vec<String> = db
        .prepare("SELECT id_hash FROM ui_sessions")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(stored.contains(&flowctl::ids::hash_api_key(&plain)));
    assert!(!stored.contains(&plain));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_never_accepts_the_session_cookie() {
    let s = TestApp::start();
    let cookie = login(&s, &s.key).await;
    let resp = client()
        .get(format!("{}/api/v1/runs", s.url))
        .header("cookie", format!("flowctl_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
}

#[tokio::test(flavor = "multi_thread")]
async fn actions_need_the_csrf_token_and_a_same_origin_request() {
    let s = TestApp::start();
    let run = slow_run(&s).await;
    let cookie = login(&s, &s.key).await;
    let (_, html) = page(&s, &cookie, &format!("/ui/runs/{run}")).await;
    let csrf = csrf_of(&html);
    let path = format!("/ui/runs/{run}/cancel");

    assert_eq!(post(&s, &cookie, &path, same_origin(&s), "").await, 403);
    assert_eq!(
        post(&s, &cookie, &path, same_origin(&s), "wrong").await,
        403
    );
    let mut evil = HeaderMap::new();
    evil.insert("origin", HeaderValue::from_static("http://evil.example"));
    assert_eq!(post(&s, &cookie, &path, evil, &csrf).await, 403);
    let mut cross = same_origin(&s);
    cross.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
    assert_eq!(post(&s, &cookie, &path, cross, &csrf).await, 403);
    assert_eq!(post(&s, &cookie, &path, HeaderMap::new(), &csrf).await, 403);
    let (_, v) = s.get(&format!("/api/v1/runs/{run}")).await;
    assert_ne!(
        v["data"]["status"], "cancelled",
        "a refused request changed nothing"
    );

    assert_eq!(post(&s, &cookie, &path, same_origin(&s), &csrf).await, 303);
    let done = s.wait_for_run(&run, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_keys_scopes_decide_what_is_shown_and_allowed() {
    let s = TestApp::start();
    let run = slow_run(&s).await;
    let reader = s.create_key("reader", "runs:read");
    let cookie = login(&s, &reader).await;
    let (status, html) = page(&s, &cookie, &format!("/ui/runs/{run}")).await;
    assert_eq!(status, 200);
    assert!(!html.contains(">Cancel<") && !html.contains(">Replay<"));
    assert!(!html.contains("href=\"/ui/workflows\""));
    let csrf = csrf_of(&html);
    let cancel = format!("/ui/runs/{run}/cancel");
    assert_eq!(
        post(&s, &cookie, &cancel, same_origin(&s), &csrf).await,
        403
    );
    let replay = format!("/ui/runs/{run}/replay");
    assert_eq!(
        post(&s, &cookie, &replay, same_origin(&s), &csrf).await,
        403
    );
    let (status, html) = page(&s, &cookie, "/ui/workflows").await;
    assert_eq!(status, 403);
    assert!(html.contains("workflows:read"), "{html}");
    let (_, v) = s.get(&format!("/api/v1/runs/{run}")).await;
    assert_ne!(v["data"]["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_and_key_revocation_end_the_session() {
    let s = TestApp::start();
    let cookie = login(&s, &s.key).await;
    let (_, html) = page(&s, &cookie, "/ui/runs").await;
    let csrf = csrf_of(&html);
    assert_eq!(
        post(&s, &cookie, "/ui/logout", same_origin(&s), &csrf).await,
        303
    );
    let (status, to) = page(&s, &cookie, "/ui/runs").await;
    assert_eq!((status, to.as_str()), (303, "/ui/login?next=/ui/runs"));

    let other = s.create_key("temp", "runs:read");
    let cookie = login(&s, &other).await;
    assert_eq!(page(&s, &cookie, "/ui/runs").await.0, 200);
    let store = s.store_args();
    let store: Vec<&str> = store.iter().map(String::as_str).collect();
    let list = s.cli(&[&["keys", "list", "--json"][..], &store].concat());
    let keys: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let id = keys["data"]
        .as_array()
        .or(keys.as_array())
        .unwrap()
        .iter()
        .find(|k| k["name"] == "temp")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = s.cli(&[&["keys", "revoke", &id][..], &store].concat());
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    assert_eq!(page(&s, &cookie, "/ui/runs").await.0, 303);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_filters_and_unknown_pages_are_pages_with_a_reason() {
    let s = TestApp::start();
    let cookie = login(&s, &s.key).await;
    let (status, html) = page(&s, &cookie, "/ui/runs?status=done").await;
    assert_eq!(status, 400);
    assert!(html.contains("status must be one of"), "{html}");
    let (status, html) = page(&s, &cookie, "/ui/runs/run_nope").await;
    assert_eq!(status, 404);
    assert!(html.contains("not found"), "{html}");
    assert_eq!(page(&s, &cookie, "/ui/nothing-here").await.0, 404);
    let (status, to) = page(&s, &cookie, "/").await;
    assert_eq!((status, to.as_str()), (303, "/ui/runs"));
}

/// The run list's filters, search and the overview answer on either store
/// (the suite also runs on PostgreSQL).
#[tokio::test(flavor = "multi_thread")]
async fn the_run_list_filters_search_and_overview_answer() {
    let s = TestApp::start();
    let run = slow_run(&s).await;
    let cookie = login(&s, &s.key).await;
    let (status, html) = page(&s, &cookie, "/ui/runs").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&run), "{html}");
    for query in [
        format!("q={run}"),
        "workflowId=wf_slow&triggerType=api".to_string(),
        "status=pending&workflowId=wf_slow".to_string(),
    ] {
        let (status, html) = page(&s, &cookie, &format!("/ui/runs?{query}")).await;
        assert_eq!(status, 200, "{query}: {html}");
    }
    let (status, html) = page(&s, &cookie, "/ui/runs?q=nothing").await;
    assert_eq!(status, 200, "{html}");
    assert!(!html.contains(&run), "{html}");
    let (status, html) = page(&s, &cookie, "/ui/overview").await;
    assert_eq!(status, 200, "{html}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_run_page_shows_the_branch_taken_and_why_steps_were_skipped() {
    let s = TestApp::start();
    s.apply(json!({"name": "Branchy", "steps": [
        {"id": "check-amount", "type": "condition", "config": {
            "conditions": {"left": "{{ input.amount }}", "operator": "gt", "right": "10000"},
            "then": ["big"], "else": ["small"]}},
        {"id": "big", "type": "transform", "config": {"mapping": 1}},
        {"id": "small", "type": "transform", "config": {"mapping": 2}},
        {"id": "done", "type": "stop", "config": {"status": "completed"}},
        {"id": "never", "type": "transform", "config": {"mapping": 3}}
    ]}))
    .await;
    let run = s.trigger("wf_branchy", json!({"amount": 50})).await;
    s.wait_for_run(&run, Duration::from_secs(10)).await;
    let reader = s.create_key("reader", "runs:read");
    let cookie = login(&s, &reader).await;
    let (status, html) = page(&s, &cookie, &format!("/ui/runs/{run}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Took branch <strong>else</strong>"), "{html}");
    assert!(html.contains("Skipped: check-amount took else"), "{html}");
    assert!(html.contains("Skipped: done stopped the run"), "{html}");
}

/// A run's children, oldest first.
async fn child_ids(s: &TestApp, id: &str) -> Vec<String> {
    let (_, list) = s.get(&format!("/api/v1/runs?parentRunId={id}")).await;
    let mut ids: Vec<String> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    ids.reverse();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn the_run_page_links_parent_and_children_and_draws_the_roots_tree() {
    let s = TestApp::start();
    s.apply(json!({"name": "Leaf", "steps": [
        {"id": "echo", "type": "transform", "config": {"mapping": {"n": "{{ input.n }}"}}}]}))
        .await;
    s.apply(json!({"name": "Middle", "steps": [
        {"id": "leaf", "type": "workflow", "config": {"workflowId": "wf_leaf", "input": {"n": 2}}}]}))
        .await;
    s.apply(json!({"name": "Top", "steps": [
        {"id": "big", "type": "workflow", "config": {"workflowId": "wf_middle"}},
        {"id": "notify", "type": "workflow", "config": {"workflowId": "wf_leaf", "input": {"n": 1}}}
    ]}))
    .await;
    let root = s.trigger("wf_top", json!({})).await;
    s.wait_for_run(&root, Duration::from_secs(20)).await;
    let top = child_ids(&s, &root).await;
    let (middle, notify) = (top[0].clone(), top[1].clone());
    let leaf = child_ids(&s, &middle).await[0].clone();
    let cookie = login(&s, &s.create_key("reader", "runs:read")).await;

    let (status, html) = page(&s, &cookie, &format!("/ui/runs/{root}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Child runs"), "{html}");
    assert!(!html.contains("Parent run"), "a root has no parent: {html}");
    // The tree: the middle run holds the leaf in a nested list, then notify's child.
    let at = |needle: &str| {
        html.find(needle)
            .unwrap_or_else(|| panic!("{needle} not in {html}"))
    };
    let tree = &html[at("<ul class=\"run-tree\">")..];
    let (m, l, n) = (
        tree.find(&format!("href=\"/ui/runs/{middle}\"")).unwrap(),
        tree.find(&format!("href=\"/ui/runs/{leaf}\"")).unwrap(),
        tree.find(&format!("href=\"/ui/runs/{notify}\"")).unwrap(),
    );
    assert!(m < l && l < n, "middle, its leaf, then notify: {tree}");
    assert!(
        tree[m..l].contains("<ul class=\"run-tree\">"),
        "the leaf is nested: {tree}"
    );
    assert!(tree.contains(" from step big"), "{tree}");
    // The `workflow` step links its child run.
    let step = &html[at("id=\"step-big\"")..at("id=\"step-notify\"")];
    assert!(
        step.contains(&format!(
            "Child run <a class=\"mono\" href=\"/ui/runs/{middle}\""
        )),
        "{step}"
    );

    let (_, html) = page(&s, &cookie, &format!("/ui/runs/{leaf}")).await;
    assert!(
        html.contains(&format!(
            "<dd id=\"parent-run\"><a class=\"mono\" href=\"/ui/runs/{middle}\">"
        )),
        "{html}"
    );
    assert!(
        html.contains(&format!("href=\"/ui/runs/{middle}#step-leaf\"")),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "<dd id=\"root-run\"><a class=\"mono\" href=\"/ui/runs/{root}\">"
        )),
        "{html}"
    );
    assert!(!html.contains("Child runs"), "{html}");

    let (_, html) = page(&s, &cookie, &format!("/ui/runs/{middle}")).await;
    assert!(
        html.contains(&format!("href=\"/ui/runs/{root}#step-big\"")),
        "{html}"
    );
    assert!(!html.contains("Root run"), "the parent is the root: {html}");
    assert!(
        html.contains(&format!("href=\"/ui/runs/{leaf}\"")),
        "{html}"
    );
}
