//! Test harness: starts the real `flowctl serve` binary on an ephemeral port
//! with a temporary database and home directory, and talks to it over HTTP
//! and through the CLI. Readiness is read from the server's own stderr line,
//! never guessed with a sleep.
#![allow(dead_code)]

pub mod app;
pub mod pg;
pub mod smtp;
pub mod spawn;
pub mod stripe;
pub mod target;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_flowctl");

pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub key: String,
    pub home: Arc<tempfile::TempDir>,
    pub db: PathBuf,
    pub logs: Arc<Mutex<String>>,
    pub http: reqwest::Client,
    pub extra_args: Vec<String>,
    pub extra_env: Vec<(String, String)>,
    /// Set when the suite runs on PostgreSQL (`FLOWCTL_TEST_DATABASE_URL`):
    /// this server's own fresh database.
    pub database_url: Option<String>,
}

pub fn env_for(cmd: &mut Command, home: &Path) {
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env_remove("FLOWCTL_URL")
        .env_remove("FLOWCTL_API_KEY")
        .env_remove("FLOWCTL_DB")
        .env_remove("FLOWCTL_DATABASE_URL")
        .env_remove("RUST_LOG");
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Server {
        let home = Arc::new(tempfile::tempdir().expect("temp dir"));
        let db = home.path().join("flowctl.db");
        Server::start_on(home, db, args, &[], pg::fresh_database())
    }

    /// A fresh store (PostgreSQL when the suite runs there), with extra flags and environment.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let home = Arc::new(tempfile::tempdir().expect("temp dir"));
        let db = home.path().join("flowctl.db");
        Server::start_on(home, db, args, env, pg::fresh_database())
    }

    /// Start on a given SQLite database path, with extra flags and environment.
    pub fn start_at(
        home: Arc<tempfile::TempDir>,
        db: PathBuf,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        Server::start_on(home, db, args, env, None)
    }

    fn start_on(
        home: Arc<tempfile::TempDir>,
        db: PathBuf,
        args: &[&str],
        env: &[(&str, &str)],
        database_url: Option<String>,
    ) -> Server {
        let mut s = Server {
            child: None,
            url: String::new(),
            key: String::new(),
            home,
            db,
            logs: Default::default(),
            http: reqwest::Client::new(),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            extra_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            database_url,
        };
        s.launch();
        s
    }

    /// A node on a shared PostgreSQL database, with its own home; nodes of
    /// one cluster share the secret key through `FLOWCTL_SECRET_KEY`.
    pub fn start_node(database_url: &str, env: &[(&str, &str)], args: &[&str]) -> Server {
        let home = Arc::new(tempfile::tempdir().expect("temp dir"));
        let db = home.path().join("flowctl.db");
        Server::start_on(home, db, args, env, Some(database_url.to_string()))
    }

    /// The flags that name this server's store, for CLI commands.
    pub fn store_args(&self) -> Vec<String> {
        match &self.database_url {
            Some(url) => vec!["--database-url".into(), url.clone()],
            None => vec!["--db".into(), self.db.to_str().unwrap().to_string()],
        }
    }

    pub fn on_postgres(&self) -> bool {
        self.database_url.is_some()
    }

    /// Start (again) on the same database and home.
    pub fn launch(&mut self) {
        let mut cmd = Command::new(BIN);
        env_for(&mut cmd, self.home.path());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(&self.db)
            .args(&self.extra_args)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)));
        if let Some(url) = &self.database_url {
            cmd.arg("--database-url").arg(url);
            // A killed node's runs come back when their lease expires
            // (SQLite requeues at once on restart): keep that short here.
            if !self.extra_env.iter().any(|(k, _)| k == "FLOWCTL_LEASE_MS") {
                cmd.env("FLOWCTL_LEASE_MS", "1500");
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn flowctl serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let logs = self.logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Text logs, or `--log-format json` events whose message says the same.
                let message = match serde_json::from_str::<Value>(&line) {
                    Ok(event) => event["fields"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    Err(_) => line.clone(),
                };
                if let Some(url) = message.strip_prefix("flowctl listening on ") {
                    let _ = tx.send(url.to_string());
                }
                let mut l = logs.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!("server did not start; logs:\n{}", self.logs.lock().unwrap())
            });
        self.url = url;
        self.child = Some(child);
        let creds: Value = serde_json::from_str(
            &std::fs::read_to_string(self.home.path().join("config/flowctl/credentials.json"))
                .expect("credentials file"),
        )
        .expect("credentials json");
        self.key = creds["apiKey"].as_str().unwrap().to_string();
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait for a clean exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        c.wait().ok().and_then(|s| s.code())
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// `flowctl keys create` on this server's database; returns the new key.
    pub fn create_key(&self, name: &str, scopes: &str) -> String {
        let mut args = vec!["keys", "create", "--name", name, "--scopes", scopes];
        let store = self.store_args();
        args.extend(store.iter().map(String::as_str));
        let out = self.cli(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).trim().to_string()
    }

    /// Run the CLI against this server (credentials file of this home).
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_stdin(args, None)
    }

    pub fn cli_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(BIN);
        env_for(&mut cmd, self.home.path());
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn flowctl");
        if let Some(text) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        } else {
            drop(child.stdin.take());
        }
        child.wait_with_output().expect("cli output")
    }
}

/// Untyped JSON calls against a server, the real binary (`Server`) or an
/// in-process one (`app::TestApp`) alike.
#[allow(async_fn_in_trait)]
pub trait Api {
    fn base_url(&self) -> &str;
    fn api_key(&self) -> &str;
    fn http(&self) -> &reqwest::Client;

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        self.request_with_key(method, path, body, Some(self.api_key()))
            .await
    }

    async fn request_with_key(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .http()
            .request(method, format!("{}{}", self.base_url(), path));
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let v =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        (status, headers, v)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let (s, _, v) = self.request(reqwest::Method::GET, path, None).await;
        (s, v)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (s, _, v) = self.request(reqwest::Method::POST, path, Some(body)).await;
        (s, v)
    }

    async fn apply(&self, def: Value) -> Value {
        let (s, v) = self.post("/api/v1/workflows", def).await;
        assert!(s == 200 || s == 201, "apply failed: {v}");
        v["data"].clone()
    }

    async fn trigger(&self, wf: &str, input: Value) -> String {
        let (s, v) = self
            .post(
                &format!("/api/v1/workflows/{wf}/run"),
                json!({"input": input}),
            )
            .await;
        assert_eq!(s, 202, "trigger failed: {v}");
        v["data"]["runId"].as_str().unwrap().to_string()
    }

    /// Long-poll until the run is finished or the deadline passes.
    async fn wait_for_run(&self, run_id: &str, deadline: Duration) -> Value {
        let end = Instant::now() + deadline;
        loop {
            let (s, v) = self.get(&format!("/api/v1/runs/{run_id}?wait=5")).await;
            assert_eq!(s, 200, "{v}");
            let status = v["data"]["status"].as_str().unwrap_or_default().to_string();
            if flowctl::engine::RunStatus::parse(&status)
                .is_some_and(flowctl::engine::RunStatus::is_terminal)
            {
                return v["data"].clone();
            }
            assert!(
                Instant::now() < end,
                "run {run_id} did not finish in time: {v}"
            );
        }
    }
}

impl Api for Server {
    fn base_url(&self) -> &str {
        &self.url
    }
    fn api_key(&self) -> &str {
        &self.key
    }
    fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether an outside tool these tests drive (a Python module such as
/// aiosmtpd, or a command) is here. `.ci/run` installs them all; in CI
/// (`CI=true`) a missing one fails the test, elsewhere the test says what to
/// install and is skipped, so `cargo test` on a bare machine still runs the rest.
pub fn have(tool: &str, probe: &mut Command) -> bool {
    let ok = probe
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "{tool} is missing; .ci/run installs it"
        );
        eprintln!(
            "SKIPPED: {tool} is missing (bash .ci/run installs it, or see README \"Run the tests\")"
        );
    }
    ok
}

pub fn have_python_module(module: &str) -> bool {
    have(
        &format!("python3 module {module}"),
        Command::new("python3").args(["-c", &format!("import {module}")]),
    )
}

/// Poll `f` until it returns Some, with a deadline (never a fixed sleep).
pub async fn eventually<T, F, Fut>(deadline: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < end,
            "condition not met within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The seed's "Create Invoice" input schema in a runnable workflow.
pub fn create_invoice_workflow() -> Value {
    json!({
        "name": "Create Invoice",
        "trigger": {"type": "api"},
        "inputSchema": {
            "type": "object",
            "required": ["customerId", "amount"],
            "properties": {
                "customerId": {"type": "string", "pattern": "^cus_[a-zA-Z0-9]+$"},
                "amount": {"type": "number", "minimum": 100},
                "currency": {"type": "string", "enum": ["usd", "eur", "gbp"], "default": "usd"}
            }
        },
        "steps": [{"id": "echo", "type": "transform", "config": {"mapping": {
            "customer": "{{input.customerId}}", "amount": "{{input.amount}}", "currency": "{{input.currency}}"}}}]
    })
}
