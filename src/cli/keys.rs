//! `flowctl keys create|list|revoke`, directly on the store (the SQLite file
//! on the server host, or the PostgreSQL database of every node); servers
//! see changes at once.

use super::{CmdResult, Exit, Failure, print_json};
use crate::scope::Scope;
use crate::store::{Location, Store};
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
        #[command(flatten)]
        db: StoreArgs,
    },
    /// List keys (id, name, scopes, active or revoked); keys themselves are never shown again
    List {
        #[command(flatten)]
        db: StoreArgs,
    },
    /// Revoke a key; requests with it are refused from then on
    Revoke {
        /// Key id (key_…), as shown by `flowctl keys list`
        id: String,
        #[command(flatten)]
        db: StoreArgs,
    },
}

/// Which store a command opens: `--database-url`, else the SQLite file.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// SQLite database file [default: <user data dir>/flowctl/flowctl.db]
    #[arg(long, env = "FLOWCTL_DB")]
    pub db: Option<PathBuf>,
    /// PostgreSQL URL of the nodes' database (instead of --db)
    #[arg(long, env = "FLOWCTL_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl StoreArgs {
    /// What `keys create` reports it wrote to: the database URL without its
    /// password, or the SQLite file's full path.
    pub fn describe(&self) -> String {
        match &self.database_url {
            Some(url) => crate::store::redact_url(url),
            None => {
                let path = self
                    .db
                    .clone()
                    .unwrap_or_else(crate::config::default_db_path);
                std::fs::canonicalize(&path)
                    .unwrap_or(path)
                    .display()
                    .to_string()
            }
        }
    }

    pub async fn open(&self) -> Result<Store, Failure> {
        let path = self
            .db
            .clone()
            .unwrap_or_else(crate::config::default_db_path);
        let location =
            Location::choose(self.database_url.clone(), path.clone()).map_err(Failure::usage)?;
        if matches!(location, Location::Sqlite(_)) && !path.exists() {
            return Err(Failure::usage(format!(
                "no database at {}: run `flowctl serve` once, or pass --db or --database-url",
                path.display()
            )));
        }
        Store::connect(&location)
            .await
            .map_err(|e| Failure::usage(e.to_string()))
    }
}

async fn open(db: &StoreArgs) -> Result<Store, Failure> {
    db.open().await
}

pub async fn keys(cmd: KeysCommand, json: bool) -> CmdResult {
    match cmd {
        KeysCommand::Create { name, scopes, db } => {
            // Every typo at once, each with its nearest scope.
            let known = Scope::names();
            let bad: Vec<String> = scopes
                .iter()
                .filter(|s| Scope::parse(s).is_none())
                .map(|s| match crate::workflow::fields::nearest(s, &known) {
                    Some(n) => format!("unknown scope '{s}' — did you mean '{n}'?"),
                    None => format!("unknown scope '{s}'"),
                })
                .collect();
            if !bad.is_empty() {
                return Err(Failure::usage(format!(
                    "{}
  known scopes: {}",
                    bad.join(
                        "
"
                    ),
                    known.join(", ")
                )));
            }
            let store = open(&db).await?;
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
            let path = db.describe();
            if json {
                print_json(
                    &json!({"id": id, "name": name, "scopes": scopes, "key": key,
                                   "database": path}),
                );
            } else {
                eprintln!(
                    "created {id} ({name}) in database {path}; the key is shown only this once:"
                );
                println!("{key}");
            }
        }
        KeysCommand::List { db } => {
            let rows = open(&db)
                .await?
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
                let mut t = super::table::Table::new(&["ID", "STATE", "NAME", "SCOPES", "CREATED"]);
                for k in &rows {
                    let state = if k.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    t.row(vec![
                        k.id.as_str().into(),
                        state.into(),
                        k.name.as_str().into(),
                        k.scopes.join(",").into(),
                        super::table::Cell::Time(Some(crate::time::rfc3339(k.created_at))),
                    ]);
                }
                t.print();
            }
        }
        KeysCommand::Revoke { id, db } => {
            open(&db)
                .await?
                .revoke_api_key(id.clone())
                .await
                .map_err(|e| Failure::usage(e.to_string()))?;
            if json {
                print_json(&json!({"id": id, "revoked": true}));
            } else {
                println!("revoked {id}");
            }
        }
    }
    Ok(Exit::Ok)
}
