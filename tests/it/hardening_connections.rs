//! Connection hygiene of the API server, through the real binary, with the
//! probe's reproductions: slow and silent clients are cut off, an absurd
//! `Content-Length` is refused before any body is read, 1 100 silent
//! connections under a 1 024-file limit do not stop `/healthz`, and SIGTERM
//! ends half-sent requests and long-polls within `--shutdown-grace`.

use crate::common::spawn::Spawned;
use crate::common::{Api, Server, have};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// Write `bytes`, then read until the server closes; returns what it sent and when.
fn read_until_closed(s: &mut TcpStream, bytes: &[u8], limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (String::from_utf8_lossy(&out).to_string(), started.elapsed())
}

fn body_json(answer: &str) -> Value {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not a JSON body: {answer}"))
}

#[test]
fn slow_and_silent_clients_are_cut_off_and_huge_bodies_refused_up_front() {
    let s = Server::start_with(&[
        "--header-timeout",
        "1",
        "--body-timeout",
        "1",
        "--idle-timeout",
        "3",
    ]);
    let a = addr(&s.url);
    let limit = Duration::from_secs(8);

    // A connection that never sends anything, and one that sends half a head.
    let (out, took) = read_until_closed(&mut TcpStream::connect(&a).unwrap(), b"", limit);
    assert!(
        out.is_empty() && took < Duration::from_secs(3),
        "silent: {took:?} {out}"
    );
    let (out, took) = read_until_closed(
        &mut TcpStream::connect(&a).unwrap(),
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-a: b",
        limit,
    );
    assert!(
        out.is_empty() && took < Duration::from_secs(3),
        "slowloris: {took:?} {out}"
    );

    // Keep-alive: a second request 1.5 s after the first is still served (the
    // idle limit is not the header limit), then silence closes it.
    let mut c = TcpStream::connect(&a).unwrap();
    c.set_read_timeout(Some(limit)).unwrap();
    let ask = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut buf = [0u8; 4096];
    c.write_all(ask).unwrap();
    let n = c.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    std::thread::sleep(Duration::from_millis(1500));
    c.write_all(ask).unwrap();
    let n = c.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let (_, took) = read_until_closed(&mut c, b"", limit);
    assert!(
        took > Duration::from_secs(2) && took < Duration::from_secs(6),
        "idle keep-alive closed after {took:?}"
    );

    // A body that trickles: 408 with the envelope once the body time is up.
    let head = format!(
        "POST /api/v1/workflows HTTP/1.1\r\nHost: x\r\nx-api-key: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"na",
        s.key
    );
    let (out, took) =
        read_until_closed(&mut TcpStream::connect(&a).unwrap(), head.as_bytes(), limit);
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert_eq!(body_json(&out)["error"]["code"], "REQUEST_TIMEOUT");
    assert!(took < Duration::from_secs(4), "{took:?}");

    // 10 GiB announced, 9 bytes sent: 413 at once, before any body is read.
    let head = format!(
        "POST /api/v1/workflows/x/run HTTP/1.1\r\nHost: x\r\nx-api-key: {}\r\nContent-Length: 10737418240\r\n\r\nabcdefghi",
        s.key
    );
    let (out, took) =
        read_until_closed(&mut TcpStream::connect(&a).unwrap(), head.as_bytes(), limit);
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    assert_eq!(body_json(&out)["error"]["code"], "PAYLOAD_TOO_LARGE");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[test]
fn an_api_key_header_that_is_not_text_says_so() {
    let s = Server::start();
    let mut c = TcpStream::connect(addr(&s.url)).unwrap();
    let (out, _) = read_until_closed(
        &mut c,
        b"GET /api/v1/runs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nx-api-key: \xffwfk\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(out.starts_with("HTTP/1.1 401"), "{out}");
    let message = body_json(&out)["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("x-api-key header is not valid text"),
        "{message}"
    );
}

/// The probe: `ulimit -n 1024`, 1 100 silent connections, then `/healthz`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_under_a_low_file_limit_do_not_stop_healthz() {
    if !have(
        "sh with ulimit",
        Command::new("sh").args(["-c", "ulimit -n 1024"]),
    ) {
        return;
    }
    // This process needs 1 100 sockets of its own.
    let own = rlimit::increase_nofile_limit(4096).unwrap_or(0);
    assert!(
        own >= 1200,
        "this test needs an open-file limit over 1 200 (have {own})"
    );
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("flowctl.db");
    let server = Spawned::serve_after("ulimit -n 1024", &db, home.path());
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.child.id())).unwrap();
    let files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert!(files.contains("1024"), "the premise: {files}");
    let a = addr(&server.url);

    // One after another, as the probe did: a flood of simultaneous SYNs would
    // overflow the listen queue and leave "connected" sockets the server never saw.
    let target: std::net::SocketAddr = a.parse().unwrap();
    let held = tokio::task::spawn_blocking(move || {
        (0..1100)
            .filter_map(|_| TcpStream::connect_timeout(&target, Duration::from_secs(3)).ok())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert!(held.len() > 1000, "only {} connections opened", held.len());
    // Connected is not accepted: wait until the server has taken every
    // connection it will (its count of open files stops changing).
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", server.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let settle_by = Instant::now() + Duration::from_secs(15);
    let (mut last, mut steady) = (fds(), 0);
    while steady < 5 && Instant::now() < settle_by {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = fds();
        steady = if now == last { steady + 1 } else { 0 };
        last = now;
    }
    assert!(last > 700, "the server took only {last} connections");

    let http = reqwest::Client::new();
    let started = Instant::now();
    let resp = http
        .get(format!("{}/healthz", server.url))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap_or_else(|e| panic!("healthz did not answer: {e}; logs:\n{}", server.logs()));
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(held);
}

#[tokio::test]
async fn sigterm_ends_half_sent_requests_and_long_polls_within_the_grace() {
    let mut s = Server::start_with(&["--shutdown-grace", "2"]);
    s.apply(json!({"id": "wf_slow", "name": "Slow", "steps": [
        {"id": "w", "type": "wait", "config": {"durationMs": 30000}}]}))
        .await;
    s.post("/api/v1/workflows/wf_slow/activate", json!({}))
        .await;
    let run = s.trigger("wf_slow", json!({})).await;
    let a = addr(&s.url);

    // Half a head; half a body; an idle keep-alive; a 60 s long-poll.
    let mut head = TcpStream::connect(&a).unwrap();
    head.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-a: b")
        .unwrap();
    let mut body = TcpStream::connect(&a).unwrap();
    body.write_all(
        format!(
            "POST /api/v1/workflows HTTP/1.1\r\nHost: x\r\nx-api-key: {}\r\nContent-Length: 100\r\n\r\n{{\"n",
            s.key
        )
        .as_bytes(),
    )
    .unwrap();
    let mut idle = TcpStream::connect(&a).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    let _ = idle.read(&mut buf).unwrap();
    let poll = {
        let (url, key, run) = (s.url.clone(), s.key.clone(), run.clone());
        tokio::spawn(async move {
            let resp = reqwest::Client::new()
                .get(format!("{url}/api/v1/runs/{run}?wait=60"))
                .header("x-api-key", key)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        })
    };
    // The long-poll is parked once the server sees it (its waiter is registered).
    crate::common::eventually(Duration::from_secs(5), || async {
        let (_, v) = s.get(&format!("/api/v1/runs/{run}")).await;
        (v["data"]["status"] == "running").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    let code = tokio::task::spawn_blocking(move || s.terminate())
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(5), "exit took {took:?}");
    let (status, v) = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("the long-poll was answered")
        .unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["status"], "running", "{v}");
}

#[tokio::test]
async fn metrics_need_an_admin_key_beyond_loopback_unless_public() {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("flowctl.db");
    let db = db.to_str().unwrap();
    let s = Spawned::serve(&["--listen", "0.0.0.0:0", "--db", db], home.path());
    let creds: Value = serde_json::from_str(
        &std::fs::read_to_string(home.path().join("config/flowctl/credentials.json")).unwrap(),
    )
    .unwrap();
    let admin = creds["apiKey"].as_str().unwrap().to_string();
    let mut keys = Command::new(crate::common::BIN);
    crate::common::env_for(&mut keys, home.path());
    let out = keys
        .args([
            "keys",
            "create",
            "--name",
            "reader",
            "--scopes",
            "runs:read",
            "--db",
            db,
        ])
        .output()
        .unwrap();
    let reader = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let http = reqwest::Client::new();
    let metrics = |key: Option<&str>| {
        let mut req = http.get(format!("{}/metrics", s.url));
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(metrics(None).await, 401);
    assert_eq!(metrics(Some(&reader)).await, 403);
    assert_eq!(metrics(Some(&admin)).await, 200);
    drop(s);

    let s = Spawned::serve(
        &["--listen", "0.0.0.0:0", "--db", db, "--metrics-public"],
        home.path(),
    );
    let status = http
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}
