//! A newcomer's first hour, through the real binary: two servers on one
//! machine keep their own credentials, messages name the fix, misspelled
//! fields are errors, help describes everything, the client encodes and pages.

use crate::common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// `flowctl serve` on `db` with the given home; returns the child and its URL.
fn serve(home: &Path, db: &Path) -> (Child, String) {
    let mut cmd = Command::new(BIN);
    env_for(&mut cmd, home);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("flowctl listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server started");
    (child, url)
}

fn cli(home: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    env_for(&mut cmd, home);
    cmd.args(args).envs(envs.iter().copied());
    cmd.stdin(Stdio::null()).output().expect("run flowctl")
}

fn stop(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

fn write(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p.to_str().unwrap().to_string()
}

fn echo(name: &str) -> Value {
    json!({"name": name, "steps": [{"id": "t", "type": "transform",
           "config": {"mapping": {"got": "{{input.x}}"}}}]})
}

#[test]
fn two_servers_on_one_machine_keep_their_own_credentials() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (a, url_a) = serve(h, &h.join("a.db"));
    let (b, url_b) = serve(h, &h.join("other.db"));
    let creds: Value = serde_json::from_str(
        &std::fs::read_to_string(h.join("config/flowctl/credentials.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(creds["servers"].as_array().unwrap().len(), 2, "{creds}");

    // Each server is reached with its own key; no --url reaches the first one.
    let def = write(h, "echo.json", &echo("Echo"));
    let out = cli(h, &["apply", &def, "--url", &url_b], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = cli(h, &["workflows", "list", "--url", &url_b], &[]);
    assert!(stdout(&out).contains("wf_echo"), "{}", stderr(&out));
    let out = cli(h, &["workflows", "list"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "", "the first server has no workflows");
    let out = cli(h, &["--url", &url_a, "workflows", "list"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A refused key: the message says which key and how to get one.
    let out = cli(
        h,
        &["workflows", "list", "--url", &url_a],
        &[("FLOWCTL_API_KEY", "wfk_x")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("UNAUTHORIZED"), "{err}");
    assert!(
        err.contains("the key used came from FLOWCTL_API_KEY"),
        "{err}"
    );
    assert!(err.contains("flowctl keys create"), "{err}");
    let out = cli(
        h,
        &["runs", "list", "--url", &url_a, "--api-key", "wfk_y"],
        &[],
    );
    assert!(
        stderr(&out).contains("came from --api-key"),
        "{}",
        stderr(&out)
    );

    // The first server's key is revoked: the entry for its URL is named.
    let db_a = h.join("a.db");
    let db_a = db_a.to_str().unwrap();
    let list = cli(h, &["keys", "list", "--json", "--db", db_a], &[]);
    let keys: Value = serde_json::from_slice(&list.stdout).unwrap();
    let id = keys[0]["id"].as_str().unwrap();
    assert!(
        cli(h, &["keys", "revoke", id, "--db", db_a], &[])
            .status
            .success()
    );
    // The server notices a revocation within seconds: poll with a deadline.
    let end = std::time::Instant::now() + Duration::from_secs(20);
    let err = loop {
        let out = cli(h, &["workflows", "list", "--url", &url_a], &[]);
        if out.status.code() == Some(2) || std::time::Instant::now() > end {
            break stderr(&out);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        err.contains(&format!("the credentials file entry for {url_a}")),
        "{err}"
    );

    // `keys create` says which database it wrote to.
    let out = cli(
        h,
        &[
            "keys",
            "create",
            "--name",
            "ci",
            "--scopes",
            "runs:read",
            "--db",
            db_a,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let canonical = std::fs::canonicalize(h.join("a.db")).unwrap();
    assert!(
        stderr(&out).contains(&format!("in database {}", canonical.display())),
        "{}",
        stderr(&out)
    );

    // An unknown URL: no key is guessed, the known servers are listed; where
    // nothing listens, that is said first (exit 3).
    let out = cli(
        h,
        &["workflows", "list", "--url", "http://127.0.0.1:9"],
        &[],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("cannot reach") && stderr(&out).contains(&url_b),
        "{}",
        stderr(&out)
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = format!("http://{}", listener.local_addr().unwrap());
    let out = cli(h, &["workflows", "list", "--url", &other], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(&url_b), "{}", stderr(&out));

    // Restarting the second server on a new port moves its entry, keeps the other.
    stop(b);
    let (b2, url_b2) = serve(h, &h.join("other.db"));
    let out = cli(h, &["workflows", "list", "--url", &url_b2], &[]);
    assert!(stdout(&out).contains("wf_echo"), "{}", stderr(&out));
    stop(b2);
    stop(a);
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_name_the_cause_and_the_fix() {
    let s = Server::start();
    let out = s.cli(&["run", "wf_does_not_exist"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for needle in [
        "wf_does_not_exist",
        "flowctl workflows list",
        "flowctl apply",
    ] {
        assert!(err.contains(needle), "{needle} missing in {err}");
    }
    let out = s.cli(&["run", "wf_x", "--timeout", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--wait"), "{}", stderr(&out));

    s.apply(echo("Quick")).await;
    let out = s.cli(&[
        "run",
        "wf_quick",
        "--input",
        "{\"x\": 1}",
        "--wait",
        "--timeout",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!({"got": 1})
    );

    let run_id = s.trigger("wf_quick", json!({"x": 2})).await;
    let out = s.cli(&["wait", &run_id, "--timeout", "1e300"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for bad in ["-1", "NaN", "soon"] {
        let out = s.cli(&["wait", &run_id, "--timeout", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn misspelled_fields_are_errors_with_suggestions() {
    let s = Server::start();
    let dir = s.home.path().join("defs");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = json!({"name": "Typos", "timeout": 5,
        "inputSchema": {"type": "object", "properties": {"a": {"type": "strnig"}, "b": {"minimum": "ten"}}},
        "steps": [
            {"id": "a", "type": "transform", "confg": {"mapping": {}}, "errorHandlng": "continue"},
            {"id": "b", "type": "transfrom", "config": {"mapping": {}}},
            {"id": "c", "type": "action", "action": "http.requst", "config": {"url": "http://x"}},
            {"id": "d", "type": "action", "action": "http.request", "config": {"url": "http://x", "metod": "GET"},
             "retryConfig": {"maxAttempt": 2}}]});
    write(&dir, "a_good.json", &echo("Good One"));
    let bad_file = write(&dir, "b_bad.json", &bad);
    let out = s.cli(&["validate", &bad_file]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for needle in [
        "timeout: unknown field 'timeout' — did you mean 'timeoutMs'?",
        "steps[0].confg: unknown field 'confg' — did you mean 'config'?",
        "steps[0].errorHandlng: unknown field 'errorHandlng' — did you mean 'errorHandling'?",
        "steps[1].type: unknown step type 'transfrom' — did you mean 'transform'?",
        "steps[2].action: unknown action 'http.requst' — did you mean 'http.request'?",
        "steps[3].config.metod: unknown field 'metod' — did you mean 'method'?",
        "steps[3].retryConfig.maxAttempt: unknown field 'maxAttempt' — did you mean 'maxAttempts'?",
        "inputSchema.properties.a.type:",
        "inputSchema.properties.b.minimum:",
    ] {
        assert!(err.contains(needle), "missing {needle} in:\n{err}");
    }

    // All or nothing: the good file beside the bad one is not registered.
    let out = s.cli(&["apply", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nothing was applied"),
        "{}",
        stderr(&out)
    );
    let (_, list) = s.get("/api/v1/workflows").await;
    assert_eq!(list["data"], json!([]), "{list}");

    // A trigger body with a misspelled field loses nothing silently.
    s.apply(echo("Good One")).await;
    let (status, v) = s
        .post(
            "/api/v1/workflows/wf_good_one/run",
            json!({"input": {}, "idempotency_key": "k1"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["code"], "INVALID_REQUEST");
    assert_eq!(
        v["error"]["message"],
        "unknown field 'idempotency_key' — did you mean 'idempotencyKey'?"
    );
}

#[test]
fn help_describes_everything_and_version_names_the_commit() {
    let home = tempfile::tempdir().unwrap();
    let out = cli(home.path(), &["--version"], &[]);
    let version = stdout(&out);
    assert!(
        version.starts_with(&format!("flowctl {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    for cmd in ["serve", "validate", "keys"] {
        let out = cli(home.path(), &[cmd, "--help"], &[]);
        let help = stdout(&out);
        assert!(
            !help.contains("--api-key"),
            "{cmd} shows client options:\n{help}"
        );
    }
    let out = cli(home.path(), &["runs", "list", "--help"], &[]);
    let help = stdout(&out);
    for needle in ["completed", "timed_out", "1 to 100", "--url"] {
        assert!(help.contains(needle), "{needle} missing:\n{help}");
    }
    let out = cli(home.path(), &["run", "--help"], &[]);
    assert!(stdout(&out).contains("Idempotency key"), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_encodes_queries_and_pages_through_workflows() {
    let s = Server::start();
    for i in 0..105 {
        s.apply(
            json!({"id": format!("wf_n{i:03}"), "name": format!("N {i}"),
                       "steps": [{"id": "t", "type": "transform", "config": {"mapping": {}}}]}),
        )
        .await;
    }
    let out = s.cli(&["workflows", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 105);
    let run = s.trigger("wf_n000", json!({})).await;
    s.wait_for_run(&run, Duration::from_secs(20)).await;
    // Pasted raw, `&limit=1` would become its own parameter and match wf_n000's run.
    let out = s.cli(&["runs", "list", "--workflow", "wf_n000&limit=1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "");
    let out = s.cli(&["runs", "list", "--workflow", "wf_n000"]);
    assert!(stdout(&out).contains(&run), "{}", stdout(&out));
}
