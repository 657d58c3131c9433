//! `flowctl serve` started through any command line (under `sh -c 'ulimit …'`,
//! on another listen address), for tests the standard harness cannot express.
//! Readiness is the server's own "listening on" line, never a sleep.

use super::{BIN, env_for};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

pub struct Spawned {
    pub child: Child,
    /// Where to reach it (a wildcard listen address is reached on 127.0.0.1).
    pub url: String,
    pub logs: Arc<Mutex<String>>,
}

impl Spawned {
    /// `flowctl serve` on an ephemeral port with the database `db`, after the
    /// shell `setup` (e.g. `ulimit -v 1572864`, `umask 000`) in the same process.
    pub fn serve_after(setup: &str, db: &Path, home: &Path) -> Spawned {
        let script = format!("{setup} && exec \"$0\" serve --listen 127.0.0.1:0 --db \"$1\"");
        let args = [
            "-c".to_string(),
            script,
            BIN.to_string(),
            db.display().to_string(),
        ];
        Spawned::start("sh", &args, home)
    }

    /// `program args…` must end up running `flowctl serve`; `home` is its HOME.
    pub fn start(program: &str, args: &[String], home: &Path) -> Spawned {
        let mut cmd = Command::new(program);
        env_for(&mut cmd, home);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn flowctl serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let logs: Arc<Mutex<String>> = Default::default();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("flowctl listening on ") {
                    let _ = tx.send(url.replace("0.0.0.0", "127.0.0.1"));
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("server did not start; logs:\n{}", logs.lock().unwrap()));
        Spawned { child, url, logs }
    }

    /// `flowctl serve ARGS…` (the binary itself).
    pub fn serve(args: &[&str], home: &Path) -> Spawned {
        let mut all = vec!["serve".to_string()];
        all.extend(args.iter().map(|s| s.to_string()));
        Spawned::start(BIN, &all, home)
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
