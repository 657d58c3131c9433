//! `flowctl db copy --to postgres://…`: a SQLite deployment filled through
//! the real server (two workflow versions, completed, failed, in-flight and
//! pending runs, an idempotency key, an http connection with a secret, an
//! extra API key) is copied to a fresh PostgreSQL database; a node started
//! on it serves all of it, decrypts the secret, accepts the old key and
//! finishes the runs that were in flight. A second copy is refused. Needs a
//! PostgreSQL cluster (`FLOWCTL_TEST_DATABASE_URL` or `FLOWCTL_TEST_PG_URL`);
//! skipped without one outside CI.

use crate::common::{Api, BIN, Server, eventually, pg, stderr, stdout};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An upstream recording each call's path and Authorization header; calls
/// to `/slow` wait while the gate is shut.
#[derive(Clone, Default)]
struct Upstream {
    url: String,
    calls: Arc<Mutex<Vec<(String, String)>>>,
    open: Arc<tokio::sync::watch::Sender<bool>>,
}

async fn hit(
    State(u): State<Upstream>,
    Path(name): Path<String>,
    h: HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let auth = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    u.calls.lock().unwrap().push((name.clone(), auth));
    if name == "slow" {
        let mut rx = u.open.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }
    if name == "bad" {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(json!({"no": 1})),
        )
            .into_response();
    }
    axum::Json(json!({"ok": true})).into_response()
}

impl Upstream {
    async fn start() -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let u = Upstream {
            url: format!("http://{}", listener.local_addr().unwrap()),
            open: Arc::new(tokio::sync::watch::channel(false).0),
            ..Default::default()
        };
        let app = axum::Router::new()
            .route("/{name}", axum::routing::post(hit))
            .with_state(u.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        u
    }
    fn calls(&self, name: &str) -> Vec<String> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, a)| a.clone())
            .collect()
    }
}

fn call(id: &str, path: &str) -> Value {
    json!({"id": id, "type": "action", "action": "http.request",
           "config": {"method": "POST", "url": path, "body": {"run": "{{runId}}"}}})
}

fn copy(db: &std::path::Path, to: &str, env: &[(&str, &str)]) -> std::process::Output {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    crate::common::env_for(&mut cmd, home.path());
    cmd.args(["db", "copy", "--to", to, "--db"]).arg(db);
    cmd.env_remove("FLOWCTL_SECRET_KEY");
    cmd.envs(env.iter().copied());
    cmd.output().expect("run flowctl db copy")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sqlite_deployment_copied_to_postgres_keeps_everything_and_finishes_its_runs() {
    let Some(base) = pg::cluster_or_skip("db copy") else {
        return;
    };
    let up = Upstream::start().await;
    let home = Arc::new(tempfile::tempdir().unwrap());
    let db = home.path().join("data/flowctl.db");
    let mut s = Server::start_at(home.clone(), db.clone(), &[], &[]);

    let (status, conn) = s
        .post(
            "/api/v1/connections",
            json!({"provider": "http", "name": "upstream",
            "config": {"baseUrl": up.url}, "secret": "s3cret-token", "default": true}),
        )
        .await;
    assert_eq!(status, 201, "{conn}");
    s.apply(json!({"name": "Copy Me", "steps": [call("first", "/one")]}))
        .await;
    s.apply(json!({"name": "Copy Me", "steps": [call("first", "/one"), call("second", "/two")]}))
        .await;
    s.apply(json!({"name": "Copy Fail", "steps": [call("bad", "/bad")]}))
        .await;
    s.apply(json!({"name": "Copy Slow", "concurrency": 1, "steps": [call("slow", "/slow"), call("after", "/after")]}))
        .await;

    let (st, v) = s
        .post(
            "/api/v1/workflows/wf_copy_me/run",
            json!({"input": {}, "idempotencyKey": "order-1"}),
        )
        .await;
    assert_eq!(st, 202, "{v}");
    let done = v["data"]["runId"].as_str().unwrap().to_string();
    assert_eq!(
        s.wait_for_run(&done, Duration::from_secs(20)).await["status"],
        "completed"
    );
    let failed = s.trigger("wf_copy_fail", json!({})).await;
    assert_eq!(
        s.wait_for_run(&failed, Duration::from_secs(20)).await["status"],
        "failed"
    );
    let extra_key = s.create_key("extra reader", "runs:read");
    // One run in flight (its step waits upstream), one queued behind the cap.
    let in_flight = s.trigger("wf_copy_slow", json!({})).await;
    eventually(Duration::from_secs(10), || async {
        (!up.calls("slow").is_empty()).then_some(())
    })
    .await;
    let pending = s.trigger("wf_copy_slow", json!({})).await;
    assert_eq!(
        s.get(&format!("/api/v1/runs/{pending}")).await.1["data"]["status"],
        "pending"
    );
    assert_eq!(up.calls("one"), vec!["Bearer s3cret-token".to_string()]);
    // A copy while the server runs reads one snapshot, and says the server runs.
    let live = pg::create_database(&base);
    let out = copy(&db, &live, &[]);
    assert!(
        out.status.success(),
        "db copy of a served file failed: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("still runs"), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.split_whitespace().eq(["runs", "4"])),
        "{}",
        stdout(&out)
    );
    s.kill();

    let target = pg::create_database(&base);
    let out = copy(&db, &target, &[]);
    assert!(out.status.success(), "db copy failed: {}", stderr(&out));
    let printed = stdout(&out);
    let count = |table: &str| -> u64 {
        printed
            .lines()
            .find_map(|l| {
                let mut f = l.split_whitespace();
                (f.next() == Some(table)).then(|| f.next().unwrap().parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no count for {table} in:\n{printed}"))
    };
    assert_eq!(count("workflows"), 3, "{printed}");
    assert_eq!(count("workflow_versions"), 4, "{printed}");
    assert_eq!(count("runs"), 4, "{printed}");
    assert_eq!(count("run_queue"), 2, "{printed}");
    assert_eq!(count("idempotency_keys"), 1, "{printed}");
    assert_eq!(count("api_keys"), 2, "{printed}");
    assert_eq!(count("connections"), 1, "{printed}");

    // Nodes of the new store use the key the SQLite server sealed secrets with.
    let key = std::fs::read_to_string(home.path().join("data/secret.key")).unwrap();
    up.open.send_replace(true);
    let node = Server::start_node(&target, &[("FLOWCTL_SECRET_KEY", key.trim())], &[]);
    let wf = node.get("/api/v1/workflows/wf_copy_me").await.1;
    assert_eq!(wf["data"]["version"], 2, "{wf}");
    let (st, v1) = node.get("/api/v1/workflows/wf_copy_me/versions/1").await;
    assert_eq!(st, 200, "{v1}");
    let old = node.get(&format!("/api/v1/runs/{done}")).await.1;
    assert_eq!(old["data"]["status"], "completed", "{old}");
    assert_eq!(
        node.get(&format!("/api/v1/runs/{failed}")).await.1["data"]["status"],
        "failed"
    );
    // The idempotency key still names the old run.
    let (st, again) = node
        .post(
            "/api/v1/workflows/wf_copy_me/run",
            json!({"input": {}, "idempotencyKey": "order-1"}),
        )
        .await;
    assert!(st == 200 || st == 202, "{again}");
    assert_eq!(again["data"]["runId"], done.as_str(), "{again}");
    // The runs that were in flight and queued finish on the new store.
    assert_eq!(
        node.wait_for_run(&in_flight, Duration::from_secs(30)).await["status"],
        "completed"
    );
    assert_eq!(
        node.wait_for_run(&pending, Duration::from_secs(30)).await["status"],
        "completed"
    );
    assert_eq!(up.calls("after").len(), 2);
    // The secret still decrypts: a new run sends it upstream.
    let fresh = node.trigger("wf_copy_me", json!({})).await;
    assert_eq!(
        node.wait_for_run(&fresh, Duration::from_secs(20)).await["status"],
        "completed"
    );
    assert!(
        up.calls("two").iter().all(|a| a == "Bearer s3cret-token"),
        "{:?}",
        up.calls("two")
    );
    assert_eq!(up.calls("two").len(), 2);
    // The extra key made on SQLite is accepted, with its scopes.
    let (st, _, _) = node
        .request_with_key(
            reqwest::Method::GET,
            &format!("/api/v1/runs/{done}"),
            None,
            Some(&extra_key),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _, _) = node
        .request_with_key(
            reqwest::Method::POST,
            "/api/v1/workflows/wf_copy_me/run",
            Some(json!({})),
            Some(&extra_key),
        )
        .await;
    assert_eq!(st, 403);
    // New runs get fresh sequence numbers after the copied ones.
    let list = node.get("/api/v1/runs?limit=1").await.1;
    assert_eq!(list["data"][0]["id"], fresh.as_str(), "{list}");

    // `db check` on the copy: reachable, current schema, same key.
    let mut check = Command::new(BIN);
    crate::common::env_for(&mut check, home.path());
    let out = check
        .args(["db", "check", "--json", "--database-url", &target])
        .env("FLOWCTL_SECRET_KEY", key.trim())
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(out.status.success(), "{report} {}", stderr(&out));
    assert_eq!(report["secretKey"], "matches", "{report}");
    assert_eq!(report["runs"], 5, "{report}");

    // A second copy is refused: the target holds data now.
    let out = copy(&db, &target, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("already holds flowctl data"),
        "{}",
        stderr(&out)
    );
    // A key that does not open the secrets is refused before anything is written.
    let other = pg::create_database(&base);
    let wrong = "00".repeat(32);
    let out = copy(&db, &other, &[("FLOWCTL_SECRET_KEY", wrong.as_str())]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not open"), "{}", stderr(&out));
    let out = copy(&db, &other, &[]);
    assert!(
        out.status.success(),
        "the failed copy left rows behind: {}",
        stderr(&out)
    );
}

#[test]
fn db_copy_names_a_missing_source_and_an_unreachable_target() {
    let home = tempfile::tempdir().unwrap();
    let missing = home.path().join("nope.db");
    let out = copy(&missing, "postgres://flowctl@127.0.0.1:1/flowctl", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no database at"), "{}", stderr(&out));
    let file = home.path().join("flowctl.db");
    std::fs::write(&file, b"").unwrap();
    let out = copy(&file, "postgres://flowctl@127.0.0.1:1/flowctl", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot reach PostgreSQL"),
        "{}",
        stderr(&out)
    );
    let out = copy(&file, "mysql://x@127.0.0.1/db", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[test]
fn db_backup_on_postgres_names_pg_dump() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    crate::common::env_for(&mut cmd, home.path());
    let out = cmd
        .args([
            "db",
            "backup",
            "/tmp/x.dump",
            "--database-url",
            "postgres://u:pw@127.0.0.1:1/db",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("pg_dump"), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("pw@"),
        "the password is shown: {}",
        stderr(&out)
    );
}
