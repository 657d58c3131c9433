//! The PostgreSQL side of `flowctl db`: `copy --to` (a SQLite deployment
//! into an empty database), `check --database-url` (what flowctl can tell;
//! page checks are `pg_amcheck`'s) and `backup --database-url` (refused:
//! `pg_dump` and the server's own backups do it properly).

use super::db::db_path;
use super::{CmdResult, Exit, Failure, print_json};
use crate::store::copy::{self, CopyError};
use crate::store::redact_url;
use serde_json::json;
use std::path::{Path, PathBuf};

fn copy_failure(e: CopyError) -> Failure {
    Failure {
        exit: if e.is_usage() {
            Exit::Usage
        } else {
            Exit::Server
        },
        message: e.to_string(),
    }
}

pub async fn copy(to: &str, db: Option<PathBuf>, json: bool) -> CmdResult {
    let Ok(crate::store::Location::Postgres(url)) =
        crate::store::Location::choose(Some(to.to_string()), PathBuf::new())
    else {
        return Err(Failure::usage(format!(
            "--to must be a postgres:// or postgresql:// URL (got '{}')",
            redact_url(to)
        )));
    };
    let path = db_path(db)?;
    let key = copy::source_key(&path).map_err(copy_failure)?;
    let started = std::time::Instant::now();
    let report = copy::sqlite_to_postgres(&path, &url, key)
        .await
        .map_err(copy_failure)?;
    let secs = started.elapsed().as_secs_f64();
    if json {
        let tables: serde_json::Map<String, serde_json::Value> = report
            .tables
            .iter()
            .map(|(t, n)| (t.to_string(), json!(n)))
            .collect();
        print_json(
            &json!({"from": path, "to": redact_url(&url), "tables": tables,
            "secretKeyCheckStored": report.key_check_stored, "seconds": secs}),
        );
        return Ok(Exit::Ok);
    }
    for (table, n) in &report.tables {
        println!("{table:<18} {n:>10}");
    }
    eprintln!(
        "copied {} to {} in {secs:.1}s (one transaction). Start the nodes with \
         --database-url and the same secret key ({}); runs that were pending or running \
         are queued there and start at once — stop the SQLite server first so they do not run twice",
        path.display(),
        redact_url(&url),
        if report.key_check_stored {
            "nodes with another key refuse to start"
        } else {
            "no secrets were stored, any key will do"
        }
    );
    if report.source_served {
        eprintln!(
            "note: a flowctl serve still runs on {}: what it writes from now on is not in the \
             copy, and runs it has pending or running would run on both; stop it before \
             starting the nodes",
            path.display()
        );
    }
    Ok(Exit::Ok)
}

pub async fn check(url: &str, db: Option<PathBuf>, json: bool) -> CmdResult {
    let key_path = db.unwrap_or_else(crate::config::default_db_path);
    let key = copy::source_key(&key_path).map_err(copy_failure)?;
    let report = crate::store::check_postgres(url, key.as_ref())
        .await
        .map_err(copy_failure)?;
    let ok = report.problems.is_empty();
    if json {
        let mut v = serde_json::to_value(&report).unwrap_or_default();
        v["ok"] = json!(ok);
        print_json(&v);
    } else {
        let schema = match report.schema_version {
            Some(v) if v < report.supported_schema_version => {
                format!("schema {v} (the first node of this version upgrades it)")
            }
            Some(v) => format!("schema {v}"),
            None => "no flowctl schema".into(),
        };
        println!(
            "{}: PostgreSQL {}, {schema}, secret key {}",
            report.database, report.server_version, report.secret_key
        );
        if let (Some(runs), Some(q), Some(l)) = (report.runs, report.queued, report.leased) {
            println!("runs {runs}, queued {q}, leased {l}");
        }
        println!(
            "connections: {} flowctl of max_connections {} (each node needs 11)",
            report.flowctl_connections, report.max_connections
        );
        for p in &report.problems {
            println!("problem: {p}");
        }
        eprintln!(
            "{}; page-level checks are PostgreSQL's: run pg_amcheck on the database",
            if ok { "ok" } else { "not ok" }
        );
    }
    Ok(if ok { Exit::Ok } else { Exit::RunFailed })
}

pub fn backup_refused(url: &str, dest: &Path) -> Failure {
    Failure::usage(format!(
        "flowctl db backup copies SQLite files; back up PostgreSQL with its own tools: \
         pg_dump --format=custom --file {} '{}' (or the server's base backups / PITR), \
         and keep the secret key with it",
        dest.display(),
        redact_url(url)
    ))
}
