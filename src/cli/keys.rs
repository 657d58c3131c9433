//! `flowctl keys create|list|revoke`, directly on the database file (run it
//! on the server host; the server sees changes within seconds).

use super::{CmdResult, Exit, Failure, print_json};
use crate::http::SCOPES;
use crate::store::Store;
use clap::Subcommand;
use serde_json::json;
use std::path::PathBuf;

#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once and stored only as a hash
    Create {
        /// A name for people, e.g. "ci" or "billing service"
        #[arg(long)]
        name: String,
        /// Comma-separated scopes: workflows:read, workflows:write, workflows:execute, runs:read, runs:write, connections:read, connections:write, or admin (all)
        #[arg(long, value_delimiter = ',', required = true, value_name = "SCOPE,…")]
        scopes: Vec<String>,
        /// SQLite database file of the server [env: FLOWCTL_DB] [default: <user data dir>/flowctl/flowctl.db]
        #[arg(long, env = "FLOWCTL_DB", value_name = "PATH")]
        db: Option<PathBuf>,
    },
    /// List keys (id, name, scopes, active or revoked); keys themselves are never shown again
    List {
        /// SQLite database file of the server [env: FLOWCTL_DB] [default: <user data dir>/flowctl/flowctl.db]
        #[arg(long, env = "FLOWCTL_DB", value_name = "PATH")]
        db: Option<PathBuf>,
    },
    /// Revoke a key; requests with it are refused from then on
    Revoke {
        /// Key id (key_…), as shown by `flowctl keys list`
        id: String,
        /// SQLite database file of the server [env: FLOWCTL_DB] [default: <user data dir>/flowctl/flowctl.db]
        #[arg(long, env = "FLOWCTL_DB", value_name = "PATH")]
        db: Option<PathBuf>,
    },
}

fn db_path(db: &Option<PathBuf>) -> PathBuf {
    let path = db.clone().unwrap_or_else(crate::config::default_db_path);
    std::fs::canonicalize(&path).unwrap_or(path)
}

fn open(db: &Option<PathBuf>) -> Result<Store, Failure> {
    let path = db_path(db);
    if !path.exists() {
        return Err(Failure::usage(format!(
            "no database at {}: run `flowctl serve` once, or pass --db",
            path.display()
        )));
    }
    Store::open(&path).map_err(|e| Failure::usage(e.to_string()))
}

pub async fn keys(cmd: KeysCommand, json: bool) -> CmdResult {
    match cmd {
        KeysCommand::Create { name, scopes, db } => {
            if let Some(bad) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
                return Err(Failure::usage(format!(
                    "unknown scope '{bad}'; known: {}",
                    SCOPES.join(", ")
                )));
            }
            let store = open(&db)?;
            let key = crate::ids::api_key();
            let id = crate::ids::key_id();
            store
                .create_api_key(crate::store::NewApiKey {
                    id: id.clone(),
                    name: name.clone(),
                    key_hash: crate::ids::hash_api_key(&key),
                    scopes: scopes.clone(),
                })
                .await
                .map_err(|e| Failure::usage(e.to_string()))?;
            let path = db_path(&db);
            if json {
                print_json(
                    &json!({"id": id, "name": name, "scopes": scopes, "key": key,
                                   "database": path}),
                );
            } else {
                eprintln!(
                    "created {id} ({name}) in database {}; the key is shown only this once:",
                    path.display()
                );
                println!("{key}");
            }
        }
        KeysCommand::List { db } => {
            let rows = open(&db)?
                .list_api_keys()
                .await
                .map_err(|e| Failure::usage(e.to_string()))?;
            let views: Vec<_> = rows
                .iter()
                .map(|k| {
                    json!({"id": k.id, "name": k.name, "scopes": k.scopes,
                           "createdAt": crate::time::rfc3339(k.created_at),
                           "revokedAt": k.revoked_at.map(crate::time::rfc3339)})
                })
                .collect();
            if json {
                print_json(&json!(views));
            } else {
                for k in &rows {
                    let state = if k.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    println!(
                        "{}  {:<7} {}  [{}]",
                        k.id,
                        state,
                        k.name,
                        k.scopes.join(",")
                    );
                }
            }
        }
        KeysCommand::Revoke { id, db } => {
            open(&db)?
                .revoke_api_key(id.clone())
                .await
                .map_err(|e| Failure::usage(e.to_string()))?;
            println!("revoked {id}");
        }
    }
    Ok(Exit::Ok)
}
