//! The release binary is static and needs nothing from the machine: in an
//! empty root file system (only the binary, /etc/hosts, /etc/resolv.conf and
//! /tmp) it serves, and a `run --wait` calls `http://localhost:PORT/` and sends
//! an email to an SMTP host given by name, resolved from /etc/hosts.
//!
//! Uses the binary that `scripts/build-release.sh` leaves at
//! target/release/flowctl (or FLOWCTL_STATIC_BIN); chroot needs root. Either
//! missing: skipped with a message, and a failure in CI (`CI=true`).

use crate::common::smtp::SmtpServer;
use crate::common::target::Target;
use crate::common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn skip(why: &str) {
    assert!(std::env::var("CI").is_err(), "{why}");
    eprintln!("SKIPPED: {why}");
}

fn static_binary() -> Option<PathBuf> {
    let path = std::env::var_os("FLOWCTL_STATIC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/flowctl"));
    if path.exists() {
        Some(path)
    } else {
        skip(&format!(
            "no release binary at {} (build it with scripts/build-release.sh)",
            path.display()
        ));
        None
    }
}

/// `chroot` by its full path: the command's environment is cleared below.
fn chroot_program() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join("chroot"))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("chroot"))
}

fn in_chroot(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(chroot_program());
    cmd.arg(root)
        .arg("/flowctl")
        .args(args)
        .env_clear()
        .env("HOME", "/tmp")
        .stdin(Stdio::null());
    cmd
}

#[test]
fn ldd_reports_a_static_binary() {
    let Some(bin) = static_binary() else { return };
    if !have("ldd", Command::new("ldd").arg("--version")) {
        return;
    }
    let out = Command::new("ldd").arg(&bin).output().unwrap();
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("not a dynamic executable") || text.contains("statically linked"),
        "{} is dynamic:\n{text}",
        bin.display()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_and_runs_in_an_empty_root() {
    let Some(bin) = static_binary() else { return };
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| stdout(&o).trim() == "0");
    if !root_user {
        return skip("chroot needs root (CI runs as root)");
    }
    if !have_python_module("aiosmtpd") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(work.path());
    let target = Target::start().await;
    let port = target.url.rsplit(':').next().unwrap().to_string();

    let root = work.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::copy(&bin, root.join("flowctl")).unwrap();
    std::fs::write(
        root.join("etc/hosts"),
        "127.0.0.1 localhost\n127.0.0.1 mail.flowctl.test\n",
    )
    .unwrap();
    // A name server that is never asked: both names are in /etc/hosts.
    std::fs::write(root.join("etc/resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
    let entries: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries.len(), 3, "only flowctl, etc, tmp: {entries:?}");

    let mut server = in_chroot(
        &root,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            "/tmp/flowctl.db",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("chroot");
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = BufReader::new(server.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in lines.lines().map_while(Result::ok) {
            eprintln!("[chroot serve] {line}");
            if let Some(url) = line.strip_prefix("flowctl listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the static server started in the empty root");

    let config = json!({"host": "mail.flowctl.test", "port": smtp.port, "tls": "none",
                        "from": "shop@example.com"});
    let out = in_chroot(
        &root,
        &[
            "connections",
            "create",
            "--provider",
            "smtp",
            "--name",
            "Mail",
            "--default",
            "--config",
            &config.to_string(),
            "--url",
            &url,
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let def = json!({"name": "Static", "steps": [
        {"id": "call", "type": "action", "action": "http.request",
         "config": {"method": "GET", "url": format!("http://localhost:{port}/hit/static")}},
        {"id": "mail", "type": "email", "config": {"to": "customer@example.com",
         "subject": "from an empty root", "body": {"text": "{{steps.call.output.body.name}}"}}}]});
    std::fs::write(root.join("tmp/static.json"), def.to_string()).unwrap();
    let out = in_chroot(&root, &["apply", "/tmp/static.json", "--url", &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = in_chroot(
        &root,
        &[
            "run",
            "wf_static",
            "--wait",
            "--timeout",
            "60",
            "--json",
            "--url",
            &url,
        ],
    )
    .output()
    .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["steps"][0]["output"]["status"], 200, "{run}");
    assert_eq!(target.count("static"), 1);
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    assert!(String::from_utf8_lossy(&mails[0]).contains("from an empty root"));
}
