//! The database file, through the real binary: private modes whatever the
//! umask, a clean stop leaves no WAL behind (the `.db` alone holds every run),
//! `flowctl db backup` while the server runs, `flowctl db check`, a corrupt
//! page turning `/healthz` into 503 STORAGE_CORRUPT, and start-up errors that
//! name the file and exit 3.

use crate::common::spawn::Spawned;
use crate::common::{Api, Server, have, stderr, stdout};
use rusqlite::Connection;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// These tests are about the SQLite file itself (modes, WAL, pages, backups);
/// on the PostgreSQL pass of the suite there is no such file.
fn on_postgres() -> bool {
    let pg = std::env::var_os("FLOWCTL_TEST_DATABASE_URL").is_some();
    if pg {
        eprintln!("skipped: a SQLite-file test, and this pass runs on PostgreSQL");
    }
    pg
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn count_runs(db: &Path) -> i64 {
    let c = Connection::open(db).unwrap();
    c.query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .unwrap()
}

async fn run_some(s: &Server, n: usize) -> Vec<String> {
    s.apply(json!({"id": "wf_t", "name": "T", "steps": [
        {"id": "t", "type": "transform", "config": {"mapping": {"ok": true}}}]}))
        .await;
    s.post("/api/v1/workflows/wf_t/activate", json!({})).await;
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(s.trigger("wf_t", json!({"i": i})).await);
    }
    for id in &ids {
        s.wait_for_run(id, Duration::from_secs(20)).await;
    }
    ids
}

#[test]
fn files_are_private_whatever_the_umask() {
    if on_postgres() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("new/data");
    let db = data.join("flowctl.db");
    let _server = Spawned::serve_after("umask 000", &db, home.path());
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&home.path().join("new")), 0o700);
    for name in [
        "flowctl.db",
        "flowctl.db-wal",
        "flowctl.db-shm",
        "secret.key",
    ] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
}

#[tokio::test]
async fn a_clean_stop_leaves_the_db_file_complete_and_backups_work_while_running() {
    if on_postgres() {
        return;
    }
    let mut s = Server::start();
    let ids = run_some(&s, 40).await;
    let db = s.db.to_str().unwrap().to_string();

    // Online backup while the server runs: a new 0600 file with every run.
    let dest = s.home.path().join("backup.db");
    let out = s.cli(&["db", "backup", dest.to_str().unwrap(), "--db", &db]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&dest), 0o600);
    assert_eq!(count_runs(&dest), ids.len() as i64);
    let out = s.cli(&["db", "check", "--db", dest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ok:"), "{}", stdout(&out));
    // A backup never overwrites.
    let out = s.cli(&["db", "backup", dest.to_str().unwrap(), "--db", &db]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists"));

    // After SIGTERM the WAL is checkpointed: copying the .db alone loses nothing.
    assert_eq!(s.terminate(), Some(0));
    let wal = s.db.with_file_name("flowctl.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "WAL left behind"
    );
    let copy = s.home.path().join("copy.db");
    std::fs::copy(&s.db, &copy).unwrap();
    assert_eq!(count_runs(&copy), ids.len() as i64);
}

/// Overwrite the root page of `table` with junk (the server must be stopped).
fn corrupt_table(db: &Path, table: &str) {
    let (root, page_size): (i64, i64) = {
        let c = Connection::open(db).unwrap();
        let root = c
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        (
            root,
            c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap(),
        )
    };
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    f.seek(SeekFrom::Start(((root - 1) * page_size) as u64))
        .unwrap();
    f.write_all(&vec![0x5a; page_size as usize]).unwrap();
}

#[tokio::test]
async fn a_corrupt_page_is_found_named_and_reported_on_healthz() {
    if on_postgres() {
        return;
    }
    let mut s = Server::start();
    let ids = run_some(&s, 5).await;
    assert_eq!(s.terminate(), Some(0));
    corrupt_table(&s.db, "steps");
    let db = s.db.to_str().unwrap().to_string();

    // The full check names the damaged table and exits 1.
    let out = s.cli(&["db", "check", "--db", &db]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stderr(&out).contains("is corrupt"), "{}", stderr(&out));
    assert!(!stdout(&out).trim().is_empty());

    // The cheap start check passes (the run tables are not read at start);
    // the first read of the damaged page turns health to 503 STORAGE_CORRUPT.
    s.launch();
    let (status, v) = s.get("/healthz").await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = s.get(&format!("/api/v1/runs/{}", ids[0])).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (503, Some("STORAGE_CORRUPT")),
        "{v}"
    );
    let (status, v) = s.get("/healthz").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (503, Some("STORAGE_CORRUPT")),
        "{v}"
    );
    let logs = s.logs();
    assert!(
        logs.contains(&db) && logs.contains("malformed"),
        "the log names the file and the cause:\n{logs}"
    );
}

#[tokio::test]
async fn serve_refuses_a_corrupt_registry_naming_the_file() {
    if on_postgres() {
        return;
    }
    let mut s = Server::start();
    run_some(&s, 1).await;
    assert_eq!(s.terminate(), Some(0));
    corrupt_table(&s.db, "workflows");
    let out = s.cli(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--db",
        s.db.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(s.db.to_str().unwrap()) && err.contains("corrupt"),
        "{err}"
    );
    assert!(err.contains("flowctl db check"), "{err}");
}

#[test]
fn a_read_only_database_is_named_and_exits_3() {
    if on_postgres() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    let db = dir.join("flowctl.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t(x);")
        .unwrap();
    let set =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    set(&db, 0o444);
    set(&dir, 0o555);
    set(home.path(), 0o755);
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| stdout(&o).trim() == "0")
        .unwrap_or(false);
    // Root ignores mode bits: run the server as nobody then.
    let mut cmd = if is_root {
        if !have("setpriv", Command::new("setpriv").arg("--version")) {
            return;
        }
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            crate::common::BIN,
        ]);
        c
    } else {
        Command::new(crate::common::BIN)
    };
    crate::common::env_for(&mut cmd, home.path());
    let out = cmd
        .env("FLOWCTL_SECRET_KEY", "00".repeat(32))
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    set(&dir, 0o755);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(db.to_str().unwrap()),
        "{}",
        stderr(&out)
    );
}
