//! What a client without credentials can make the server hold, through the
//! real binary, as the fault probe reproduced it: unknown webhook paths and
//! unsigned deliveries are answered from the headers alone; a thousand 1 MiB
//! bodies under a 1.5 GiB address-space limit leave the server up; 70 slow
//! bodies with `--max-connections 64` leave `/healthz` and a key holder
//! served; wrong dashboard keys from one address lock out only that address;
//! a login `next` with CR/LF still logs in. 127.0.0.2 (routed on `lo`) is the
//! stranger, so per-client limits can be told apart from everyone locked out.

use crate::common;
use crate::common::spawn::Spawned;
use crate::common::{Api, Server, have};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

fn addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

fn stranger() -> IpAddr {
    "127.0.0.2".parse().unwrap()
}

/// A blocking connection from `from` (bound before connecting; on its own
/// thread and runtime, since callers may be inside one).
fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    std::thread::spawn(move || {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let stream = rt.block_on(socket.connect(to)).unwrap();
        let std = stream.into_std().unwrap();
        std.set_nonblocking(false).unwrap();
        std
    })
    .join()
    .unwrap()
}

/// Send `bytes`, read the answer until the server closes or `limit` passes.
fn exchange(s: &mut TcpStream, bytes: &[u8], limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (String::from_utf8_lossy(&out).to_string(), started.elapsed())
}

fn body_json(answer: &str) -> Value {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not a JSON body: {answer}"))
}

async fn signed_custom_path(s: &Server, path: &str) {
    let (status, v) = s
        .post(
            "/api/v1/connections",
            json!({"id": "conn_hooks", "provider": "webhook", "name": "hooks", "secret": "s3cret"}),
        )
        .await;
    assert!(status == 201 || status == 200, "{v}");
    s.apply(json!({"id": "wf_hook", "name": "hook",
        "trigger": {"type": "webhook", "path": path, "provider": "custom", "connection": "conn_hooks"},
        "steps": [{"id": "t", "type": "transform", "config": {"mapping": {"ok": true}}}]}))
        .await;
}

/// The head of a signed-looking delivery announcing `len` bytes of body.
fn delivery_head(path: &str, len: usize) -> String {
    format!(
        "POST /webhooks/{path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Webhook-Signature: sha256=00\r\nContent-Length: {len}\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_unsigned_deliveries_are_answered_from_the_headers() {
    let s = Server::start_with(&["--body-timeout", "1"]);
    signed_custom_path(&s, "orders").await;
    let to = addr(&s.url);
    let limit = Duration::from_secs(5);
    let slow = |path: &str, signed: bool| {
        let sig = if signed {
            "X-Webhook-Signature: sha256=00\r\n"
        } else {
            ""
        };
        format!("POST /webhooks/{path} HTTP/1.1\r\nHost: x\r\n{sig}Content-Length: 100000\r\n\r\nx")
    };
    // Unknown path, 100 000 bytes announced and 1 sent: 404 at once, and the
    // 8 KB path is not echoed back.
    let long = "a".repeat(8000);
    let (out, took) = exchange(
        &mut connect_from(stranger(), to),
        slow(&long, false).as_bytes(),
        limit,
    );
    assert!(out.starts_with("HTTP/1.1 404"), "{out}");
    assert!(took < Duration::from_millis(900), "{took:?}");
    let message = body_json(&out)["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.len() < 300, "{message}");
    assert!(
        out.to_ascii_lowercase()
            .contains("x-content-type-options: nosniff"),
        "{out}"
    );
    assert!(
        out.to_ascii_lowercase().contains("connection: close"),
        "{out}"
    );
    // A signed path without its signature header: 401 before the body.
    let (out, took) = exchange(
        &mut connect_from(stranger(), to),
        slow("orders", false).as_bytes(),
        limit,
    );
    assert!(out.starts_with("HTTP/1.1 401"), "{out}");
    assert!(took < Duration::from_millis(900), "{took:?}");
    assert!(
        body_json(&out)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing signature header"),
        "{out}"
    );
    // With the header, the body is awaited, and a body that never comes is
    // a 408 REQUEST_TIMEOUT (not a 400).
    let (out, took) = exchange(
        &mut connect_from(stranger(), to),
        slow("orders", true).as_bytes(),
        limit,
    );
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert_eq!(body_json(&out)["error"]["code"], "REQUEST_TIMEOUT");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    // API answers are never sniffed either.
    let resp = s
        .http
        .get(format!("{}/api/v1/runs", s.url))
        .header("x-api-key", &s.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_leave_connections_for_healthz_and_key_holders() {
    let s = Server::start_with(&["--max-connections", "64", "--body-timeout", "20"]);
    signed_custom_path(&s, "orders").await;
    s.apply(json!({"id": "wf_api", "name": "api",
        "steps": [{"id": "t", "type": "transform", "config": {"mapping": {"ok": true}}}]}))
        .await;
    let to = addr(&s.url);
    // 70 deliveries announcing 100 000 bytes and sending one, from the stranger.
    let head = delivery_head("orders", 100_000) + "x";
    let mut held = Vec::new();
    let mut busy = 0;
    for _ in 0..70 {
        let mut c = connect_from(stranger(), to);
        c.write_all(head.as_bytes()).unwrap();
        held.push(c);
    }
    // Those over the unauthenticated share are refused at once with 503.
    for c in &mut held {
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 512];
        if let Ok(n) = c.read(&mut buf)
            && String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 503")
        {
            assert!(String::from_utf8_lossy(&buf[..n]).contains("SERVER_BUSY"));
            busy += 1;
        }
    }
    assert!(busy >= 16, "only {busy} of 70 slow bodies were refused");
    let started = Instant::now();
    for _ in 0..5 {
        let resp = reqwest::Client::new()
            .get(format!("{}/healthz", s.url))
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .unwrap_or_else(|e| panic!("healthz did not answer: {e}"));
        assert_eq!(resp.status(), 200);
    }
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/workflows/wf_api/run", s.url))
        .header("x-api-key", &s.key)
        .json(&json!({"input": {}}))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .unwrap_or_else(|e| panic!("the trigger did not answer: {e}"));
    assert_eq!(resp.status(), 202);
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_one_mib_bodies_under_an_address_space_limit_do_not_stop_the_server() {
    if !have(
        "sh with ulimit -v",
        Command::new("sh").args(["-c", "ulimit -v 1572864"]),
    ) {
        return;
    }
    let own = rlimit::increase_nofile_limit(8192).unwrap_or(0);
    assert!(
        own >= 2200,
        "this test needs an open-file limit over 2 200 (have {own})"
    );
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("flowctl.db");
    let mut server = Spawned::serve_after("ulimit -v 1572864 && ulimit -n 8192", &db, home.path());
    let key = {
        let creds: Value = serde_json::from_str(
            &std::fs::read_to_string(home.path().join("config/flowctl/credentials.json")).unwrap(),
        )
        .unwrap();
        creds["apiKey"].as_str().unwrap().to_string()
    };
    let http = reqwest::Client::new();
    for (path, body) in [
        (
            "/api/v1/connections",
            json!({"id": "conn_hooks", "provider": "webhook", "name": "hooks", "secret": "s3cret"}),
        ),
        (
            "/api/v1/workflows",
            json!({"id": "wf_hook", "name": "hook",
                "trigger": {"type": "webhook", "path": "orders", "provider": "custom", "connection": "conn_hooks"},
                "steps": [{"id": "t", "type": "transform", "config": {"mapping": {"ok": true}}}]}),
        ),
    ] {
        let r = http
            .post(format!("{}{path}", server.url))
            .header("x-api-key", &key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    let to = addr(&server.url);
    let pid = server.child.id();
    // Half to a signed path with the header (read under the budget or
    // refused), half to an unknown path (refused from the headers).
    let held = tokio::task::spawn_blocking(move || {
        // One byte short, as the probe sent them: the server would wait for
        // the last byte holding the rest, if it read them at all.
        const L: usize = 1 << 20;
        let payload = vec![b'x'; L - 1];
        let mut held = Vec::new();
        for i in 0..1000 {
            let path = if i % 2 == 0 { "orders" } else { "anything" };
            let Ok(mut c) = TcpStream::connect_timeout(&to, Duration::from_secs(3)) else {
                continue;
            };
            c.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = c.write_all(delivery_head(path, L).as_bytes());
            let _ = c.write_all(&payload);
            held.push(c);
        }
        held
    })
    .await
    .unwrap();
    assert!(held.len() > 900, "only {} connections opened", held.len());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server died; logs:\n{}",
        server.logs()
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap();
    eprintln!(
        "peak RSS {} MiB with {} connections",
        peak_kb / 1024,
        held.len()
    );
    assert!(peak_kb < 400 * 1024, "peak RSS {peak_kb} kB");
    let resp = http
        .get(format!("{}/healthz", server.url))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(held);
    let _ = server.child.kill();
    let _ = server.child.wait();
}

async fn login_from(
    s: &Server,
    from: IpAddr,
    key: &str,
    next: &str,
) -> (u16, reqwest::header::HeaderMap) {
    let http = reqwest::Client::builder()
        .local_address(from)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http
        .post(format!("{}/ui/login", s.url))
        .header("sec-fetch-site", "same-origin")
        .form(&[("key", key), ("next", next)])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.headers().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_dashboard_keys_lock_out_only_their_own_address() {
    let s = Server::start_with(&["--rate-limit-login", "20"]);
    let mut statuses = vec![];
    for i in 0..30 {
        let (status, _) = login_from(
            &s,
            stranger(),
            &format!("wfk_wrong{i:03}xxxxxxxx"),
            "/ui/runs",
        )
        .await;
        statuses.push(status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        20,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        10,
        "{statuses:?}"
    );
    // Anyone else logs in.
    let (status, headers) = login_from(&s, "127.0.0.1".parse().unwrap(), &s.key, "/ui/runs").await;
    assert_eq!(status, 303, "{headers:?}");
    // Guesses at one key prefix from two more addresses are limited too, but
    // the right key with that prefix still gets in.
    let prefix: String = s.key.chars().take(12).collect();
    let mut limited = 0;
    for i in 0..24 {
        let from: IpAddr = if i % 2 == 0 { "127.0.0.3" } else { "127.0.0.4" }
            .parse()
            .unwrap();
        let (status, _) = login_from(&s, from, &format!("{prefix}guess{i}"), "/ui/runs").await;
        if status == 429 {
            limited += 1;
        }
    }
    assert!(
        limited >= 4,
        "{limited} of 24 guesses at one prefix were limited"
    );
    let (status, _) = login_from(&s, "127.0.0.5".parse().unwrap(), &s.key, "/ui/runs").await;
    assert_eq!(status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_next_with_control_characters_goes_to_the_runs_page() {
    let s = Server::start();
    let (status, headers) = login_from(
        &s,
        "127.0.0.1".parse().unwrap(),
        &s.key,
        "/ui/runs\r\nX-Evil: 1",
    )
    .await;
    assert_eq!(status, 303, "{headers:?}");
    assert_eq!(headers["location"], "/ui/runs");
    assert!(headers.get("x-evil").is_none());
    assert!(
        headers["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("flowctl_session=")
    );
    let (status, headers) = login_from(
        &s,
        "127.0.0.1".parse().unwrap(),
        &s.key,
        "/ui/workflows?q=a",
    )
    .await;
    assert_eq!(
        (status, &headers["location"]),
        (303, &"/ui/workflows?q=a".parse().unwrap())
    );
}

/// L1: three nodes on one PostgreSQL database share the per-IP webhook and
/// login buckets (one bucket per client, never one per node).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_the_webhook_and_login_limits_hold_across_nodes() {
    let Some(base) = common::pg::cluster_or_skip("cluster-wide webhook and login limits") else {
        return;
    };
    let db = common::pg::create_database(&base);
    let secret = [("FLOWCTL_SECRET_KEY", "cd".repeat(32))];
    let env: Vec<(&str, &str)> = secret.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = ["--rate-limit-webhook", "6", "--rate-limit-login", "6"];
    let nodes: Vec<Server> = (0..3)
        .map(|_| Server::start_node(&db, &env, &args))
        .collect();
    nodes[0]
        .apply(json!({"id": "wf_open", "name": "open",
            "trigger": {"type": "webhook", "path": "open", "verifySignature": false},
            "steps": [{"id": "t", "type": "transform", "config": {"mapping": {}}}]}))
        .await;
    // Every node knows the path (asked from another address, its own bucket).
    for node in &nodes {
        common::eventually(Duration::from_secs(5), || async {
            let r = node
                .http
                .post(format!("{}/webhooks/open", node.url))
                .body("{}")
                .send()
                .await
                .ok()?;
            (r.status() == 200).then_some(())
        })
        .await;
    }
    let http = reqwest::Client::builder()
        .local_address(stranger())
        .build()
        .unwrap();
    let mut accepted = 0;
    let mut limited = 0;
    for i in 0..18 {
        let node = &nodes[i % 3];
        let status = http
            .post(format!("{}/webhooks/open", node.url))
            .body("{}")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        match status {
            200 => accepted += 1,
            429 => limited += 1,
            other => panic!("status {other}"),
        }
    }
    assert_eq!(
        (accepted, limited),
        (6, 12),
        "per-IP webhook limit across 3 nodes"
    );
    let mut statuses = vec![];
    for i in 0..18 {
        let (status, _) =
            login_from(&nodes[i % 3], stranger(), "wfk_wrongwrongwrong", "/ui/runs").await;
        statuses.push(status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        6,
        "login attempts across 3 nodes: {statuses:?}"
    );
}
