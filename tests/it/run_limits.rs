//! Limits on run state, through the real binary: templates that would build gigabytes
//! fail their step while the server (under an address-space limit) stays up, also across a
//! restart; JSON nested too deep is refused at the door or fails its step, and a deep row
//! written by an older version stops neither the queue nor reads; a run that keeps
//! killing its server is failed instead of resumed forever.

use crate::common::{Api, BIN, Server, env_for};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// JSON nested `levels` arrays deep around a number.
fn nested(levels: usize) -> Value {
    let text = format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
    serde_json::from_str(&text).expect("within serde_json's limit")
}

/// `flowctl serve` on SQLite under an address-space limit (`ulimit -v`), so a runaway
/// allocation kills only this process, as it would a server in a container.
struct Limited {
    child: Option<Child>,
    home: tempfile::TempDir,
    url: String,
    key: String,
    http: reqwest::Client,
}

const ADDRESS_SPACE_KIB: u64 = 2 * 1024 * 1024;

impl Limited {
    fn start() -> Limited {
        let mut s = Limited {
            child: None,
            home: tempfile::tempdir().expect("temp dir"),
            url: String::new(),
            key: String::new(),
            http: reqwest::Client::new(),
        };
        s.launch();
        s
    }

    fn launch(&mut self) {
        let db = self.home.path().join("flowctl.db");
        let mut cmd = Command::new("sh");
        env_for(&mut cmd, self.home.path());
        cmd.arg("-c")
            .arg(format!(
                "ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\""
            ))
            .arg(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(&db)
            // glibc reserves 64 MiB of address space per malloc arena.
            .env("MALLOC_ARENA_MAX", "2")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn sh");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("flowctl listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        self.url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server under ulimit started");
        self.child = Some(child);
        let creds: Value = serde_json::from_str(
            &std::fs::read_to_string(self.home.path().join("config/flowctl/credentials.json"))
                .expect("credentials"),
        )
        .expect("credentials json");
        self.key = creds["apiKey"].as_str().unwrap_or_default().to_string();
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The server has not exited (no abort, no OOM kill).
    fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("x-api-key", &self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn wait_for_run(&self, id: &str, deadline: Duration) -> Value {
        let end = Instant::now() + deadline;
        loop {
            let (s, v) = self
                .call(
                    reqwest::Method::GET,
                    &format!("/api/v1/runs/{id}?wait=2"),
                    None,
                )
                .await;
            assert_eq!(s, 200, "{v}");
            let status = v["data"]["status"].as_str().unwrap_or_default();
            if matches!(status, "completed" | "failed" | "cancelled" | "timed_out") {
                return v["data"].clone();
            }
            assert!(Instant::now() < end, "run {id} did not finish: {v}");
        }
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        self.kill();
    }
}

fn amplify_workflow() -> Value {
    json!({"id": "wf_amp", "name": "amp", "steps": [
        // Parked first, so the template is evaluated by whichever process runs next.
        {"id": "pause", "type": "wait", "config": {"durationMs": 300}},
        {"id": "t", "type": "transform", "config": {"mapping": {"x": "{{ input.s | replace: 'a', input.r }}"}}}
    ]})
}

#[tokio::test]
async fn a_ten_gigabyte_template_fails_its_step_and_the_server_stays_up_across_a_restart() {
    let mut s = Limited::start();
    let (st, v) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/workflows",
            Some(amplify_workflow()),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let other = json!({"id": "wf_other", "name": "other", "steps": [
        {"id": "t", "type": "transform", "config": {"mapping": {"ok": true}}}]});
    let (st, _) = s
        .call(reqwest::Method::POST, "/api/v1/workflows", Some(other))
        .await;
    assert_eq!(st, 201);
    // 100 000 × 100 000 bytes: a 10 GB string if nothing stopped it.
    let input = json!({"input": {"s": "a".repeat(100_000), "r": "b".repeat(100_000)}});
    let (st, v) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/workflows/wf_amp/run",
            Some(input.clone()),
        )
        .await;
    assert_eq!(st, 202, "{v}");
    let first = v["data"]["runId"].as_str().unwrap_or_default().to_string();
    let run = s.wait_for_run(&first, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "failed", "{run}");
    let step = &run["steps"][1];
    assert_eq!(step["status"], "failed", "{run}");
    assert_eq!(step["error"]["code"], "OUTPUT_TOO_LARGE", "{run}");
    let message = step["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("step 't'") && message.contains("10 MiB"),
        "{message}"
    );
    assert_eq!(step["attempts"], 1, "not retried: {run}");
    assert!(s.alive(), "the server survived the template");

    // A second run is parked when the server is killed; the restarted server evaluates
    // the template, fails the step the same way and stays up.
    let (st, v) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/workflows/wf_amp/run",
            Some(input),
        )
        .await;
    assert_eq!(st, 202, "{v}");
    let second = v["data"]["runId"].as_str().unwrap_or_default().to_string();
    s.kill();
    s.launch();
    let run = s.wait_for_run(&second, Duration::from_secs(30)).await;
    assert_eq!(
        run["steps"][1]["error"]["code"], "OUTPUT_TOO_LARGE",
        "{run}"
    );
    assert!(s.alive(), "the server survived the resumed run");
    let (st, v) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/workflows/wf_other/run?wait=10",
            Some(json!({})),
        )
        .await;
    assert!(st == 200 || st == 202, "{v}");
    assert_eq!(v["data"]["status"], "completed", "{v}");

    // A literal-only template that would do the same is refused at apply.
    let chain = " | replace: 'a', 'aaaaaaaaaa'".repeat(9);
    let literal = json!({"id": "wf_lit", "name": "lit", "steps": [{"id": "t", "type": "transform",
        "config": {"mapping": {"x": format!("{{{{ 'aaaaaaaaaa'{chain} }}}}")}}}]});
    let (st, v) = s
        .call(reqwest::Method::POST, "/api/v1/workflows", Some(literal))
        .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["error"]["code"], "VALIDATION_ERROR", "{v}");
    let detail = &v["error"]["details"][0];
    assert_eq!(
        detail["path"],
        json!(["steps", 0, "config", "mapping", "x"]),
        "{v}"
    );
    assert!(
        detail["message"]
            .as_str()
            .unwrap_or_default()
            .contains("10 MiB"),
        "{v}"
    );
    assert!(s.alive());
}

#[tokio::test]
async fn json_nested_too_deep_is_refused_or_fails_its_step_and_other_runs_go_on() {
    let s = Server::start();
    s.apply(json!({"id": "wf_nest", "name": "nest", "steps": [
        {"id": "wrap", "type": "transform", "config": {"mapping": {"order": {"customer": {"data": "{{input.c}}"}}}}},
        {"id": "pause", "type": "wait", "config": {"durationMs": 300}},
        {"id": "done", "type": "transform", "config": {"mapping": {"ok": true}}}]}))
        .await;
    s.apply(json!({"id": "wf_other", "name": "other", "steps": [
        {"id": "t", "type": "transform", "config": {"mapping": {"ok": true}}}]}))
        .await;
    s.apply(json!({"id": "wf_open", "name": "open",
        "trigger": {"type": "webhook", "path": "open", "verifySignature": false},
        "steps": [{"id": "t", "type": "transform", "config": {"mapping": {}}}]}))
        .await;

    // At the door: an input deeper than 64 levels.
    let (st, v) = s
        .post(
            "/api/v1/workflows/wf_other/run",
            json!({"input": {"c": nested(64)}}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["error"]["code"], "INVALID_REQUEST", "{v}");
    assert_eq!(
        v["error"]["message"],
        "input is nested deeper than 64 levels, the limit for run state"
    );
    // A webhook body, counted with the level the run's input wraps it in.
    let resp = s
        .http
        .post(format!("{}/webhooks/open", s.url))
        .header("content-type", "application/json")
        .body(nested(64).to_string())
        .send()
        .await
        .expect("webhook");
    assert_eq!(resp.status().as_u16(), 400);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["code"], "INVALID_REQUEST", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("63 levels"),
        "{v}"
    );
    let resp = s
        .http
        .post(format!("{}/webhooks/open", s.url))
        .body(nested(62).to_string())
        .send()
        .await
        .expect("webhook");
    assert_eq!(resp.status().as_u16(), 200, "just within the limit");

    // An input within the limit that a mapping nests past it: the step fails, named.
    let bad = s.trigger("wf_nest", json!({"c": nested(62)})).await;
    let others: Vec<String> = futures_join(&s, 5).await;
    let run = s.wait_for_run(&bad, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["steps"][0]["error"]["code"], "OUTPUT_TOO_DEEP", "{run}");
    assert_eq!(run["error"]["stepId"], "wrap", "{run}");
    for id in others {
        let r = s.wait_for_run(&id, Duration::from_secs(20)).await;
        assert_eq!(r["status"], "completed", "{r}");
    }
    let (st, v) = s.get("/api/v1/runs?limit=50").await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s
        .post(&format!("/api/v1/runs/{bad}/cancel"), json!({}))
        .await;
    assert!(st < 500, "cancel of a finished run answers: {st} {v}");
}

/// Triggers `n` runs of `wf_other`.
async fn futures_join(s: &Server, n: usize) -> Vec<String> {
    let mut ids = vec![];
    for _ in 0..n {
        ids.push(s.trigger("wf_other", json!({})).await);
    }
    ids
}

#[tokio::test]
async fn a_deep_or_damaged_row_from_an_older_version_does_not_stop_the_queue() {
    let mut s = Server::start();
    if s.on_postgres() {
        eprintln!("skipping: writes the SQLite file directly");
        return;
    }
    s.apply(json!({"id": "wf_old", "name": "old", "steps": [
        {"id": "pause", "type": "wait", "config": {"durationMs": 1000}},
        {"id": "use", "type": "transform", "config": {"mapping": {"c": "{{ input.c }}"}}}]}))
        .await;
    s.apply(json!({"id": "wf_other", "name": "other", "steps": [
        {"id": "t", "type": "transform", "config": {"mapping": {"ok": true}}}]}))
        .await;
    let deep = s.trigger("wf_old", json!({"c": 1})).await;
    let damaged = s.trigger("wf_old", json!({"c": 2})).await;
    // Both parked on their wait; stop the server and write the rows as an older version
    // could have: an input 300 levels deep, and text that is no JSON at all.
    assert_eq!(s.terminate(), Some(0));
    let deep_input = format!("{{\"c\":{}1{}}}", "[".repeat(300), "]".repeat(300));
    let db = rusqlite::Connection::open(&s.db).expect("open the database file");
    let n = db
        .execute(
            "UPDATE runs SET input = ?1 WHERE id = ?2",
            rusqlite::params![deep_input, deep],
        )
        .expect("write the deep row");
    assert_eq!(n, 1);
    db.execute(
        "UPDATE runs SET input = '{\"c\": [' WHERE id = ?1",
        rusqlite::params![damaged],
    )
    .expect("write the damaged row");
    drop(db);
    s.launch();

    // Read as text: the answer is deeper than this test's own JSON parser goes.
    let resp = s
        .http
        .get(format!("{}/api/v1/runs/{deep}", s.url))
        .header("x-api-key", &s.key)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status().as_u16(), 200, "a deep row is readable");
    let text = resp.text().await.unwrap_or_default();
    assert!(text.contains(&format!("{}1", "[".repeat(300))), "{text}");
    let (st, v) = s.get("/api/v1/runs?workflowId=wf_other").await;
    assert_eq!(st, 200, "{v}");
    let others = futures_join(&s, 5).await;
    for id in others {
        let r = s.wait_for_run(&id, Duration::from_secs(20)).await;
        assert_eq!(r["status"], "completed", "{r}");
    }
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let text = s
            .http
            .get(format!("{}/api/v1/runs/{deep}?wait=2", s.url))
            .header("x-api-key", &s.key)
            .send()
            .await
            .expect("get")
            .text()
            .await
            .unwrap_or_default();
        if text.contains("\"status\":\"failed\"") {
            assert!(text.contains("OUTPUT_TOO_DEEP"), "{text}");
            break;
        }
        assert!(Instant::now() < end, "the deep run did not finish");
    }
    // The damaged run is failed alone, with a named error, once its wait is over.
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let db = rusqlite::Connection::open(&s.db).expect("open");
        let (status, error): (String, Option<String>) = db
            .query_row(
                "SELECT status, error FROM runs WHERE id = ?1",
                rusqlite::params![damaged],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("row");
        if status == "failed" {
            assert!(error.unwrap_or_default().contains("STORAGE_CORRUPT"));
            break;
        }
        assert!(Instant::now() < end, "the damaged run was not failed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!s.logs().contains("cannot claim runs"), "{}", s.logs());
    let last = s.trigger("wf_other", json!({})).await;
    let r = s.wait_for_run(&last, Duration::from_secs(20)).await;
    assert_eq!(r["status"], "completed", "{r}");
}

#[tokio::test]
async fn a_run_that_keeps_killing_its_server_is_failed_instead_of_resumed_forever() {
    // A stand-in service that accepts connections and never answers: the step is in
    // flight whenever the server is killed.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (seen_tx, seen_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut held = vec![];
        for conn in listener.incoming().map_while(Result::ok) {
            held.push(conn);
            let _ = seen_tx.send(());
        }
    });
    let mut s = Server::start_with(&["--max-run-recoveries", "2"]);
    s.apply(json!({"id": "wf_hang", "name": "hang", "steps": [{
        "id": "call", "type": "action", "action": "http.request", "timeoutMs": 600000,
        "config": {"url": format!("http://{addr}/slow"), "method": "GET"}}]}))
        .await;
    let run = s.trigger("wf_hang", json!({})).await;
    for round in 1..=2 {
        seen_rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("round {round}: the step did not start"));
        s.kill();
        s.launch();
    }
    let done = s.wait_for_run(&run, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error"]["code"], "RUN_INTERRUPTED", "{done}");
    assert_eq!(done["error"]["stepId"], "call", "{done}");
    assert_eq!(done["steps"][0]["status"], "failed", "{done}");
    assert!(
        seen_rx.try_recv().is_err(),
        "the step was not executed a third time"
    );
    // The queue goes on.
    s.apply(json!({"id": "wf_other", "name": "other", "steps": [
        {"id": "t", "type": "transform", "config": {"mapping": {"ok": true}}}]}))
        .await;
    let id = s.trigger("wf_other", json!({})).await;
    let r = s.wait_for_run(&id, Duration::from_secs(20)).await;
    assert_eq!(r["status"], "completed", "{r}");
}
