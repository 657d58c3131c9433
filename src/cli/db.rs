//! `flowctl db check | backup DEST | copy --to URL`: maintenance of the
//! store, run on the server host; all work while the server runs. On
//! PostgreSQL (`--database-url`) `check` reports what flowctl can tell and
//! `backup` names PostgreSQL's own tools (`db_pg.rs`).

use super::db_pg;
use super::{CmdResult, Exit, Failure, print_json};
use crate::store::StoreError;
use crate::store::maintenance;
use clap::Subcommand;
use serde_json::json;
use std::path::PathBuf;

#[derive(Debug, Clone, Subcommand)]
pub enum DbCommand {
    /// Full integrity check of every page (exit 0 sound, 1 corrupt); reads the
    /// whole file, so it takes a while on a large database. On PostgreSQL:
    /// connectivity, schema version, secret key and stuck leases
    Check {
        /// The SQLite database file (default: the server's)
        #[arg(long, env = "FLOWCTL_DB")]
        db: Option<PathBuf>,
        /// PostgreSQL URL of the nodes' database (instead of --db)
        #[arg(long, env = "FLOWCTL_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Write a consistent copy of the database to DEST (a new file, mode 0600)
    /// while the server keeps running (SQLite; on PostgreSQL use pg_dump)
    Backup {
        /// Where to write the copy (must not exist yet)
        dest: PathBuf,
        /// The SQLite database file (default: the server's)
        #[arg(long, env = "FLOWCTL_DB")]
        db: Option<PathBuf>,
        /// PostgreSQL URL: refused, with the pg_dump command to use instead
        #[arg(long, env = "FLOWCTL_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Copy a SQLite deployment (workflows, runs, keys, connections, schedules)
    /// into an empty PostgreSQL database, in one transaction
    Copy {
        /// PostgreSQL URL of the new, empty database
        #[arg(long, value_name = "URL")]
        to: String,
        /// The SQLite database file to copy (default: the server's)
        #[arg(long, env = "FLOWCTL_DB")]
        db: Option<PathBuf>,
    },
}

pub(super) fn db_path(db: Option<PathBuf>) -> Result<PathBuf, Failure> {
    let path = db.unwrap_or_else(crate::config::default_db_path);
    if !path.is_file() {
        return Err(Failure::usage(format!(
            "no database at {}: pass --db PATH (or set FLOWCTL_DB)",
            path.display()
        )));
    }
    Ok(path)
}

fn failure(e: StoreError) -> Failure {
    let exit = match &e {
        StoreError::Open { reason, .. } if reason.contains("already exists") => Exit::Usage,
        _ => Exit::Server,
    };
    Failure {
        exit,
        message: e.to_string(),
    }
}

/// `--database-url`, when it names PostgreSQL (anything else is a usage error).
fn postgres_url(url: Option<String>) -> Result<Option<String>, Failure> {
    match crate::store::Location::choose(url, PathBuf::new()).map_err(Failure::usage)? {
        crate::store::Location::Postgres(u) => Ok(Some(u)),
        crate::store::Location::Sqlite(_) => Ok(None),
    }
}

pub async fn db(cmd: DbCommand, json: bool) -> CmdResult {
    match cmd {
        DbCommand::Check { db, database_url } => match postgres_url(database_url)? {
            Some(url) => db_pg::check(&url, db, json).await,
            None => check_sqlite(db, json).await,
        },
        DbCommand::Backup {
            dest,
            db,
            database_url,
        } => match postgres_url(database_url)? {
            Some(url) => Err(db_pg::backup_refused(&url, &dest)),
            None => backup_sqlite(dest, db, json).await,
        },
        DbCommand::Copy { to, db } => db_pg::copy(&to, db, json).await,
    }
}

async fn check_sqlite(db: Option<PathBuf>, json: bool) -> CmdResult {
    let path = db_path(db)?;
    let shown = path.display().to_string();
    let report = tokio::task::spawn_blocking(move || maintenance::integrity_check(&path))
        .await
        .map_err(|e| Failure {
            exit: Exit::Server,
            message: e.to_string(),
        })?
        .map_err(failure)?;
    let ok = report.problems.is_empty();
    if json {
        print_json(&json!({"database": shown, "ok": ok,
            "problems": report.problems, "runs": report.runs}));
    } else if ok {
        let runs = report
            .runs
            .map(|n| format!(", {n} runs"))
            .unwrap_or_default();
        println!("ok: {shown} passed the full integrity check{runs}");
    } else {
        eprintln!(
            "{shown} is corrupt ({} problem(s)); stop the server and restore the \
             latest backup (flowctl db backup) before writing to it again:",
            report.problems.len()
        );
        for p in &report.problems {
            println!("{p}");
        }
    }
    Ok(if ok { Exit::Ok } else { Exit::RunFailed })
}

async fn backup_sqlite(dest: PathBuf, db: Option<PathBuf>, json: bool) -> CmdResult {
    let path = db_path(db)?;
    let (from, to) = (path.clone(), dest.clone());
    let bytes = tokio::task::spawn_blocking(move || maintenance::backup(&from, &to))
        .await
        .map_err(|e| Failure {
            exit: Exit::Server,
            message: e.to_string(),
        })?
        .map_err(failure)?;
    if json {
        print_json(&json!({"database": path, "backup": dest, "bytes": bytes}));
    } else {
        println!("{}", dest.display());
        eprintln!(
            "backed up {} to {} ({bytes} bytes, mode 0600); connection secrets need the \
             secret key too: keep a copy of {} (or FLOWCTL_SECRET_KEY) with it",
            path.display(),
            dest.display(),
            path.with_file_name("secret.key").display()
        );
    }
    Ok(Exit::Ok)
}
