//! `flowctl db check | backup DEST`: maintenance of the SQLite file, run on
//! the server host; both work while the server runs.

use super::{CmdResult, Exit, Failure, print_json};
use crate::store::StoreError;
use crate::store::maintenance;
use clap::Subcommand;
use serde_json::json;
use std::path::PathBuf;

#[derive(Debug, Clone, Subcommand)]
pub enum DbCommand {
    /// Full integrity check of every page (exit 0 sound, 1 corrupt); reads the
    /// whole file, so it takes a while on a large database
    Check {
        /// SQLite database file of the server [default: <user data dir>/flowctl/flowctl.db]
        #[arg(long, env = "FLOWCTL_DB", value_name = "PATH")]
        db: Option<PathBuf>,
    },
    /// Write a consistent copy of the database to DEST (a new file, mode 0600)
    /// while the server keeps running
    Backup {
        /// The copy to write: a new file (never overwritten)
        dest: PathBuf,
        /// SQLite database file of the server [default: <user data dir>/flowctl/flowctl.db]
        #[arg(long, env = "FLOWCTL_DB", value_name = "PATH")]
        db: Option<PathBuf>,
    },
}

fn db_path(db: Option<PathBuf>) -> Result<PathBuf, Failure> {
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

pub async fn db(cmd: DbCommand, json: bool) -> CmdResult {
    match cmd {
        DbCommand::Check { db } => {
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
        DbCommand::Backup { dest, db } => {
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
    }
}
