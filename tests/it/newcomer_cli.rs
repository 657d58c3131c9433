//! The newcomer's second hour, through the real binary: `--wait` and Ctrl-C,
//! CLI conventions (completions, examples, tables, `--json`, paging,
//! did-you-mean, URL forms and connection messages), batch keys and trigger
//! types, and idempotency keys reused with another input.

use crate::common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn nap(name: &str, ms: u64) -> Value {
    json!({"name": name, "steps": [{"id": "nap", "type": "wait", "config": {"durationMs": ms}}]})
}

/// Start the CLI, read stderr until its first line, then send SIGINT.
fn interrupt_after_first_line(s: &Server, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(BIN);
    env_for(&mut cmd, s.home.path());
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    // Give the CLI a moment to be inside its long-poll (a signal before the
    // handler is installed would end it the default way, exit 130 silently).
    std::thread::sleep(Duration::from_millis(300));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    (status.code(), format!("{first}{rest}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn run_wait_prints_the_id_at_once_and_ctrl_c_says_how_to_go_on() {
    let s = Server::start();
    s.apply(nap("Long Nap", 20_000)).await;
    let (code, err) = interrupt_after_first_line(&s, &["run", "wf_long_nap", "--wait"]);
    assert_eq!(code, Some(130), "{err}");
    let run_id = err
        .split_whitespace()
        .find(|w| w.starts_with("run_"))
        .expect("the run id comes first")
        .trim_end_matches(';')
        .to_string();
    assert!(err.starts_with(&format!("{run_id} started")), "{err}");
    assert!(
        err.contains(&format!("flowctl wait {run_id}"))
            && err.contains(&format!("flowctl runs cancel {run_id}")),
        "{err}"
    );
    // The run goes on.
    let (_, run) = s.get(&format!("/api/v1/runs/{run_id}")).await;
    assert!(
        ["pending", "running"].contains(&run["data"]["status"].as_str().unwrap()),
        "{run}"
    );

    // `flowctl wait` is interrupted the same way (its first line is printed by
    // a pre-step: use --timeout so the first line comes from the timeout? No:
    // wait prints nothing first, so interrupt it after a short delay).
    let mut cmd = Command::new(BIN);
    env_for(&mut cmd, s.home.path());
    let child = cmd
        .args(["wait", &run_id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("flowctl wait {run_id}")),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn warnings_follow_the_result_and_an_unneeded_default_is_silent() {
    let s = Server::start();
    s.apply(
        json!({"name": "Fallbacks", "steps": [{"id": "t", "type": "transform",
        "config": {"mapping": {
            "missing": "{{input.nothere}}",
            "id": "{{input.body.id | default: input.id}}"}}}]}),
    )
    .await;
    // A webhook-shaped input: the fallback `input.id` is not needed.
    let out = s.cli(&[
        "run",
        "wf_fallbacks",
        "-i",
        r#"{"body": {"id": "evt_1"}}"#,
        "--wait",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let output: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(output["id"], "evt_1");
    let err = stderr(&out);
    assert!(
        err.contains("warning: step 't'") && err.contains("unresolved path 'input.nothere'"),
        "{err}"
    );
    assert!(
        !err.contains("input.id"),
        "an unneeded fallback warned: {err}"
    );
    // An API-shaped input: the fallback is used, so only the missing first
    // path is reported (as documented for missing values).
    let out = s.cli(&["run", "wf_fallbacks", "-i", r#"{"id": "x"}"#, "--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let output: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(output["id"], "x");
    assert!(
        stderr(&out).contains("unresolved path 'input.body.id'")
            && !stderr(&out).contains("'input.id'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn completions_and_examples_in_every_help() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let mut cmd = Command::new(BIN);
        env_for(&mut cmd, dir.path());
        let out = cmd.args(["completion", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let script = stdout(&out);
        assert!(
            script.contains("flowctl") && script.contains("runs"),
            "{shell}: {script}"
        );
    }
    for args in [
        &["run", "--help"][..],
        &["runs", "list", "--help"],
        &["connections", "create", "--help"],
        &["validate", "--help"],
        &["--help"],
    ] {
        let mut cmd = Command::new(BIN);
        env_for(&mut cmd, dir.path());
        let out = cmd.args(args).output().unwrap();
        assert!(
            stdout(&out).contains("Examples:\n  flowctl "),
            "{args:?}: {}",
            stdout(&out)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_are_tables_on_a_terminal_and_tab_separated_in_a_pipe() {
    let s = Server::start();
    s.apply(nap("Short Nap", 1)).await;
    s.trigger("wf_short_nap", json!({})).await;
    let out = s.cli(&["runs", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let fields: Vec<&str> = text.lines().next().unwrap().split('\t').collect();
    assert_eq!(fields.len(), 7, "{text}");
    assert!(fields[0].starts_with("run_") && fields[1] == "wf_short_nap");
    assert!(fields[6].ends_with('Z'), "exact times in a pipe: {text}");

    let mut cmd = Command::new("script");
    env_for(&mut cmd, s.home.path());
    let out = cmd
        .args(["-qec", &format!("{BIN} workflows list"), "/dev/null"])
        .output()
        .expect("script (util-linux)");
    let screen = stdout(&out);
    let header = screen.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("ID ") && header.contains("STATUS") && header.contains("UPDATED"),
        "{screen}"
    );
    assert!(
        screen.contains("ago") || screen.contains("just now"),
        "{screen}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_json_and_mistakes_in_paths() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        json!({"name": "Good", "steps": [{"id": "t", "type": "transform", "config": {"mapping": {}}}]})
            .to_string(),
    )
    .unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        json!({"name": "Bad", "steps": [{"id": "t", "type": "transfrom"}]}).to_string(),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    env_for(&mut cmd, dir.path());
    let out = cmd
        .args(["validate", "--json"])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["valid"], false);
    assert_eq!(report["files"][0]["valid"], true);
    assert_eq!(report["files"][0]["id"], "wf_good");
    let problems = report["files"][1]["problems"].to_string();
    assert!(problems.contains("did you mean 'transform'"), "{problems}");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("flow.yaml"), "name: x\n").unwrap();
    let mut cmd = Command::new(BIN);
    env_for(&mut cmd, dir.path());
    let out = cmd.arg("validate").arg(&empty).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no *.json definitions"),
        "{}",
        stderr(&out)
    );
    let mut cmd = Command::new(BIN);
    env_for(&mut cmd, dir.path());
    let out = cmd
        .arg("validate")
        .arg(empty.join("flow.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("definitions are JSON, not YAML"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_list_all_pages_cancel_of_a_finished_run_and_did_you_mean() {
    let s = Server::start();
    s.apply(
        json!({"name": "Order Total", "steps": [{"id": "t", "type": "transform",
        "config": {"mapping": {"x": 1}}}]}),
    )
    .await;
    let mut last = String::new();
    for _ in 0..105 {
        last = s.trigger("wf_order_total", json!({})).await;
    }
    let out = s.cli(&["runs", "list", "--all", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.len(), 105);
    let out = s.cli(&["runs", "list", "--json"]);
    let some: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(some.len(), 20);

    s.wait_for_run(&last, Duration::from_secs(20)).await;
    let out = s.cli(&["runs", "cancel", &last]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("already finished (completed)"),
        "{}",
        stderr(&out)
    );

    for typo in ["wf_order_totl", "order_total"] {
        let out = s.cli(&["run", typo]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("did you mean 'wf_order_total'?"),
            "{}",
            stderr(&out)
        );
    }
    let out = s.cli(&["runs", "list", "--trigger", "schedul"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean 'schedule'?"),
        "{}",
        stderr(&out)
    );

    let mut args = vec![
        "keys",
        "create",
        "--name",
        "typos",
        "--scopes",
        "runs:reed,workflow:execute",
    ];
    let store = s.store_args();
    args.extend(store.iter().map(String::as_str));
    let out = s.cli(&args);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("'runs:reed' — did you mean 'runs:read'?")
            && err.contains("'workflow:execute' — did you mean 'workflows:execute'?"),
        "{err}"
    );
}

/// A one-shot HTTP server that is not flowctl; returns its address.
fn not_flowctl() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let body = r#"{"error":"boom"}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread")]
async fn urls_in_every_form_and_clear_connection_messages() {
    let s = Server::start();
    s.apply(nap("Quick", 1)).await;
    let host_port = s.url.trim_start_matches("http://").to_string();
    let api = format!("{}/api/v1/", s.url);
    for url in [host_port.as_str(), api.as_str()] {
        let out = s.cli(&["workflows", "list", "--url", url]);
        assert_eq!(out.status.code(), Some(0), "{url}: {}", stderr(&out));
        assert!(stdout(&out).contains("wf_quick"), "{url}");
    }
    // Nothing listens there: said before anything about keys.
    let out = s.cli(&["run", "wf_quick", "--url", "127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot reach the flowctl server at http://127.0.0.1:1")
            && !stderr(&out).contains("API key"),
        "{}",
        stderr(&out)
    );
    let https = s.url.replacen("http://", "https://", 1);
    let out = s.cli(&["runs", "list", "--url", &https, "--api-key", &s.key]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("does not answer TLS") && stderr(&out).contains(&s.url),
        "{}",
        stderr(&out)
    );
    let other = not_flowctl();
    let out = s.cli(&["runs", "list", "--url", &other, "--api-key", "wfk_x"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("does not look like a flowctl server"),
        "{}",
        stderr(&out)
    );
    let out = s.cli(&["run", "wf_quick", "--wait", "--timeout", "-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("seconds must be 0 or more"),
        "{}",
        stderr(&out)
    );
}

fn lines(out: &std::process::Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_keys_depend_on_content_and_repeats_are_refused() {
    let s = Server::start();
    s.apply(
        json!({"name": "B", "steps": [{"id": "t", "type": "transform",
        "config": {"mapping": {"order": "{{input.order}}"}}}]}),
    )
    .await;
    let mon = s.home.path().join("mon");
    let tue = s.home.path().join("tue");
    std::fs::create_dir_all(&mon).unwrap();
    std::fs::create_dir_all(&tue).unwrap();
    std::fs::write(
        mon.join("orders.jsonl"),
        "{\"order\":\"mon-1\"}\n{\"order\":\"mon-2\"}\n",
    )
    .unwrap();
    std::fs::write(
        tue.join("orders.jsonl"),
        "{\"order\":\"tue-1\"}\n{\"order\":\"tue-2\"}\n",
    )
    .unwrap();
    let mon_file = mon.join("orders.jsonl");
    let tue_file = tue.join("orders.jsonl");
    let out = s.cli(&[
        "run",
        "wf_b",
        "--batch",
        mon_file.to_str().unwrap(),
        "--wait",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The --wait lines carry each run's output.
    let rows = lines(&out);
    assert_eq!(rows[0]["output"]["order"], "mon-1", "{rows:?}");
    // A new file with the same name runs.
    let out = s.cli(&["run", "wf_b", "--batch", tue_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("2 started"), "{}", stderr(&out));
    // The same file again starts nothing, and says why.
    let out = s.cli(&["run", "wf_b", "--batch", tue_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("0 started, 2 started nothing because they had run before"),
        "{}",
        stderr(&out)
    );
    // Batch runs are recorded as such.
    let (_, list) = s.get("/api/v1/runs?triggerType=batch").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 4, "{list}");

    // A repeated --key-field value: refused, nothing started.
    let p = s.home.path().join("p.jsonl");
    std::fs::write(
        &p,
        "{\"order\":\"A\",\"amount\":1}\n{\"order\":\"A\",\"amount\":999}\n",
    )
    .unwrap();
    let args = [
        "run",
        "wf_b",
        "--batch",
        p.to_str().unwrap(),
        "--key-field",
        "order",
    ];
    let out = s.cli(&args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("p.jsonl:2: key 'A' repeats line 1"),
        "{}",
        stderr(&out)
    );
    let (_, list) = s.get("/api/v1/runs?triggerType=batch").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 4);
    let mut skip = args.to_vec();
    skip.push("--skip-duplicates");
    let out = s.cli(&skip);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(lines(&out).len(), 1);
    // The same key later with another input: the first run stands, exit 2.
    std::fs::write(&p, "{\"order\":\"A\",\"amount\":5}\n").unwrap();
    let out = s.cli(&args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("different input"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_reused_with_another_input_is_reported() {
    let s = Server::start();
    s.apply(nap("Keyed", 1)).await;
    let (code, first) = s
        .post(
            "/api/v1/workflows/wf_keyed/run",
            json!({"input": {"a": 1}, "idempotencyKey": "k-1"}),
        )
        .await;
    assert_eq!(code, 202);
    assert!(first["data"].get("inputDiffers").is_none(), "{first}");
    let (code, same) = s
        .post(
            "/api/v1/workflows/wf_keyed/run",
            json!({"input": {"a": 1}, "idempotencyKey": "k-1"}),
        )
        .await;
    assert_eq!(code, 200);
    assert!(same["data"].get("inputDiffers").is_none(), "{same}");
    let (code, other) = s
        .post(
            "/api/v1/workflows/wf_keyed/run",
            json!({"input": {"a": 2}, "idempotencyKey": "k-1"}),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(other["data"]["inputDiffers"], true, "{other}");
    assert_eq!(other["data"]["runId"], first["data"]["runId"]);
    let out = s.cli(&[
        "run",
        "wf_keyed",
        "-i",
        r#"{"a": 3}"#,
        "--idempotency-key",
        "k-1",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("reused with a different input"),
        "{}",
        stderr(&out)
    );
    let started = Instant::now();
    let out = s.cli(&[
        "run",
        "wf_keyed",
        "-i",
        r#"{"a": 3}"#,
        "--idempotency-key",
        "k-1",
        "--wait",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("input differed"), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_mistakes_are_caught_where_they_are_made() {
    let s = Server::start();
    // Config checked per provider: a typo gets the nearest field, a missing
    // required field is named.
    let out = s.cli(&[
        "connections",
        "create",
        "--provider",
        "smtp",
        "--name",
        "Mail",
        "--config",
        r#"{"hots": "a"}"#,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("config.hots: unknown field 'hots' — did you mean 'host'?")
            && err.contains("config.host: required for a smtp connection"),
        "{err}"
    );
    // A webhook trigger naming a missing connection: applied, and said.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hook.json");
    std::fs::write(
        &file,
        json!({"name": "Hook", "trigger": {"type": "webhook", "path": "stripe/x",
               "provider": "stripe", "connection": "conn_hooks"},
               "steps": [{"id": "t", "type": "transform", "config": {"mapping": {}}}]})
        .to_string(),
    )
    .unwrap();
    let out = s.cli(&["apply", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("trigger.connection: connection 'conn_hooks' does not exist"),
        "{}",
        stderr(&out)
    );
    let (code, _) = s
        .post(
            "/api/v1/connections",
            json!({"id": "conn_hooks", "provider": "webhook", "name": "hooks", "secret": "whsec_x"}),
        )
        .await;
    assert_eq!(code, 201);
    // Deleting it while the active workflow uses it: refused, naming it.
    let out = s.cli(&["connections", "delete", "conn_hooks"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("wf_hook (Hook)") && stderr(&out).contains("--force"),
        "{}",
        stderr(&out)
    );
    let out = s.cli(&["connections", "delete", "conn_hooks", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_tried_at_once_and_a_signed_test_delivery() {
    let s = Server::start();
    s.apply(
        json!({"name": "Nightly", "trigger": {"type": "schedule", "cron": "0 2 * * *",
            "timezone": "Europe/Berlin", "input": {"recipient": "ops@example.com", "n": 1}},
        "steps": [{"id": "t", "type": "transform", "config": {"mapping": {
            "to": "{{input.recipient}}", "n": "{{input.n}}",
            "at": "{{input.schedule.scheduledAt}}", "manual": "{{input.schedule.manual}}"}}}]}),
    )
    .await;
    let out = s.cli(&[
        "run",
        "wf_nightly",
        "--as-schedule",
        "-i",
        r#"{"n": 2}"#,
        "--wait",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let output: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(output["to"], "ops@example.com", "{output}");
    assert_eq!(output["n"], 2, "--input fields win: {output}");
    assert!(output["at"].as_str().unwrap().ends_with('Z'), "{output}");
    assert_eq!(output["manual"], true);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    s.apply(nap("Plain", 1)).await;
    let out = s.cli(&["run", "wf_plain", "--as-schedule"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("has no schedule trigger"),
        "{}",
        stderr(&out)
    );

    // A webhook workflow: the test delivery is signed on the server and goes
    // through the real verification; the event filter and dedupe apply.
    let (code, _) = s
        .post(
            "/api/v1/connections",
            json!({"id": "conn_hooks", "provider": "webhook", "name": "hooks",
                   "secret": "whsec_test_secret"}),
        )
        .await;
    assert_eq!(code, 201);
    s.apply(
        json!({"name": "Invoices", "trigger": {"type": "webhook", "path": "stripe/invoices",
            "provider": "stripe", "connection": "conn_hooks", "events": ["invoice.paid"]},
        "steps": [{"id": "t", "type": "transform", "config": {"mapping": {
            "type": "{{input.body.type}}"}}}]}),
    )
    .await;
    let out = s.cli(&["webhook", "send", "wf_invoices"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["data"]["workflowsTriggered"], 1, "{answer}");
    let event = s.home.path().join("evt.json");
    std::fs::write(
        &event,
        json!({"id": "evt_fixed", "type": "invoice.paid", "data": {"object": {}}}).to_string(),
    )
    .unwrap();
    let body_arg = format!("@{}", event.display());
    let out = s.cli(&["webhook", "send", "wf_invoices", "--body", &body_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = s.cli(&["webhook", "send", "wf_invoices", "--body", &body_arg]);
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        answer["data"]["workflowsTriggered"], 0,
        "a repeat: {answer}"
    );
    let (_, runs) = s.get("/api/v1/runs?triggerType=webhook").await;
    assert_eq!(runs["data"].as_array().unwrap().len(), 2, "{runs}");
    // A wrong secret on the server would be refused: the path is the real one.
    let (code, _) = s
        .post(
            "/api/v1/connections",
            json!({"id": "conn_hooks", "provider": "webhook", "name": "hooks", "secret": "other"}),
        )
        .await;
    assert_eq!(code, 200);
    let (code, signed) = s
        .post(
            "/api/v1/workflows/wf_invoices/test-delivery",
            json!({"body": "{\"id\": \"evt_2\", \"type\": \"invoice.paid\"}"}),
        )
        .await;
    assert_eq!(code, 200, "{signed}");
    assert_eq!(signed["data"]["path"], "/webhooks/stripe/invoices");
    assert!(
        signed["data"]["headers"]["stripe-signature"]
            .as_str()
            .unwrap()
            .contains(",v1="),
        "{signed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn open_prints_a_one_time_login_link() {
    let s = Server::start();
    for cmd in ["open", "dashboard"] {
        let out = s.cli(&[cmd, "--no-browser"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let link = stdout(&out).trim().to_string();
        assert!(
            link.starts_with(&format!("{}/ui/login/link?t=", s.url)),
            "{link}"
        );
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let resp = browser.get(&link).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let cookie = resp
            .headers()
            .get("set-cookie")
            .expect("a session cookie")
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let page = browser
            .get(format!("{}/ui/runs", s.url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status().as_u16(), 200);
        assert!(!page.text().await.unwrap().contains("Log in to flowctl"));
        // Once only.
        let again = browser.get(&link).send().await.unwrap();
        assert_eq!(again.status().as_u16(), 401);
        // The token is no session cookie.
        let token = link.rsplit('=').next().unwrap();
        let forged = browser
            .get(format!("{}/ui/runs", s.url))
            .header("cookie", format!("flowctl_session={token}"))
            .send()
            .await
            .unwrap();
        assert_ne!(
            forged.status().as_u16(),
            200,
            "a ticket passed as a session"
        );
    }
}

/// The README's demo output is what `scripts/demo.sh` prints, and the demo
/// leaves the server running, saying how to stop it.
#[test]
fn the_demo_prints_what_the_readme_shows_and_keeps_the_server() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let start = readme.find("```json\n").unwrap() + "```json\n".len();
    let shown = &readme[start..start + readme[start..].find("```").unwrap()];
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("bash");
    env_for(&mut cmd, home.path());
    let out = cmd
        .arg(format!("{root}/scripts/demo.sh"))
        .env("FLOWCTL", BIN)
        .env("FLOWCTL_URL", format!("http://127.0.0.1:{port}"))
        .env("TMPDIR", home.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = stderr(&out);
    let pid = err
        .split("(pid ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .map(str::to_string);
    let alive = pid.as_ref().is_some_and(|p| {
        Command::new("kill")
            .args(["-0", p])
            .status()
            .is_ok_and(|s| s.success())
    });
    if let Some(p) = &pid {
        let _ = Command::new("kill").arg(p).status();
    }
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(stdout(&out), shown, "README and demo differ");
    assert!(alive, "the server was stopped: {err}");
    assert!(err.contains("flowctl open"), "{err}");
}

/// Re-running a batch replays known runs: not charged to the execute limit,
/// so it is not paced like new triggers.
#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_batch_is_not_paced_by_the_execute_limit() {
    let s = Server::start_with(&["--rate-limit-execute", "10"]);
    s.apply(
        json!({"name": "Paced", "steps": [{"id": "t", "type": "transform",
        "config": {"mapping": {"n": "{{input.n}}"}}}]}),
    )
    .await;
    let lines: Vec<String> = (0..10).map(|i| json!({"n": i}).to_string()).collect();
    let file = s.home.path().join("ten.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let args = ["run", "wf_paced", "--batch", file.to_str().unwrap()];
    let out = s.cli(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The allowance (10 a minute) is used up; a rerun must not wait for it.
    let started = Instant::now();
    let out = s.cli(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("10 started nothing because they had run before")
            && stderr(&out).contains("0 rate-limited"),
        "{}",
        stderr(&out)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the rerun took {:?}",
        started.elapsed()
    );
    // A header naming a known key cannot start a new run for free.
    let key = stdout(&out)
        .lines()
        .next()
        .and_then(|l| serde_json::from_str::<Value>(l).ok())
        .and_then(|v| v["key"].as_str().map(String::from))
        .unwrap();
    let resp = s
        .http
        .post(format!("{}/api/v1/workflows/wf_paced/run", s.url))
        .header("x-api-key", &s.key)
        .header("idempotency-key", &key)
        .json(&json!({"input": {"n": 99}, "idempotencyKey": "a-new-one"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("differ"),
        "{body}"
    );
}
