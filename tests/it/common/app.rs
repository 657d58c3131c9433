//! An in-process server for API behaviour: `App::build` with the same
//! settings `flowctl serve` would take from its flags, served on its own
//! runtime thread, reached over real HTTP on loopback with the typed client.
//! Use `Server` (the real binary) where the process matters: durability,
//! signals, the CLI, install, multi-node.

use super::pg;
use clap::Parser;
use flowctl::api::RunView;
use flowctl::app::App;
use flowctl::cli::serve::ServeArgs;
use flowctl::client::Client;
use flowctl::engine::RunStatus;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    serve: ServeArgs,
}

pub struct TestApp {
    pub url: String,
    pub key: String,
    /// The typed client (`flowctl::client::Client`); `Api` gives untyped JSON calls.
    pub client: Client,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub db: std::path::PathBuf,
    pub database_url: Option<String>,
    home: tempfile::TempDir,
}

impl TestApp {
    pub fn start() -> TestApp {
        TestApp::start_with(&[])
    }

    /// Start with extra `flowctl serve` flags (e.g. `["--workers", "1"]`).
    pub fn start_with(flags: &[&str]) -> TestApp {
        let home = tempfile::tempdir().expect("temp dir");
        let db = home.path().join("flowctl.db");
        let mut argv = vec![
            "serve".to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--db".into(),
            db.display().to_string(),
        ];
        let database_url = pg::fresh_database();
        if let Some(url) = &database_url {
            argv.extend(["--database-url".to_string(), url.clone()]);
        }
        argv.extend(flags.iter().map(|s| s.to_string()));
        let settings = Flags::try_parse_from(&argv)
            .expect("serve flags")
            .serve
            .settings();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let app = App::build(settings).await.expect("build the app");
                let key = flowctl::ids::api_key();
                app.store()
                    .create_api_key(flowctl::store::NewApiKey {
                        id: flowctl::ids::key_id(),
                        name: "test admin".into(),
                        key_hash: flowctl::ids::hash_api_key(&key),
                        scopes: vec!["admin".into()],
                    })
                    .await
                    .expect("create the test key");
                ready_tx
                    .send((format!("http://{}", app.addr()), key))
                    .expect("report readiness");
                app.run_until_stopped(async {
                    let _ = stop_rx.await;
                })
                .await
                .expect("serve");
            });
        });
        let (url, key) = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the in-process server did not start");
        TestApp {
            client: Client::new(&url, &key),
            http: reqwest::Client::new(),
            url,
            key,
            stop: Some(stop_tx),
            thread: Some(thread),
            db,
            database_url,
            home,
        }
    }

    pub fn on_postgres(&self) -> bool {
        self.database_url.is_some()
    }

    /// The flags that open this app's store from the CLI.
    pub fn store_args(&self) -> Vec<String> {
        match &self.database_url {
            Some(url) => vec!["--database-url".into(), url.clone()],
            None => vec!["--db".into(), self.db.display().to_string()],
        }
    }

    /// Run the real CLI against this server (its URL and admin key in the
    /// environment, an empty home otherwise).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = std::process::Command::new(super::BIN);
        super::env_for(&mut cmd, self.home.path());
        cmd.env("FLOWCTL_URL", &self.url)
            .env("FLOWCTL_API_KEY", &self.key)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run the flowctl CLI")
    }

    /// Create an API key with `scopes` (comma-separated) through the CLI; returns it.
    pub fn create_key(&self, name: &str, scopes: &str) -> String {
        let mut args = vec!["keys", "create", "--name", name, "--scopes", scopes];
        let store = self.store_args();
        args.extend(store.iter().map(String::as_str));
        let out = self.cli(&args);
        assert!(out.status.success(), "{}", super::stderr(&out));
        super::stdout(&out).trim().to_string()
    }

    /// The typed form of `Api::wait_for_run`: poll the run until it is finished or `deadline` passes (then panic
    /// with the last view seen).
    pub async fn wait_for_view(&self, run_id: &str, deadline: Duration) -> RunView {
        let until = Instant::now() + deadline;
        loop {
            let run = self.client.run(run_id, Some(1.0)).await.expect("GET run");
            if RunStatus::parse(&run.status).is_some_and(RunStatus::is_terminal) {
                return run;
            }
            assert!(
                Instant::now() < until,
                "run {run_id} still {:?} after {deadline:?}",
                run.status
            );
        }
    }
}

impl super::Api for TestApp {
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

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
