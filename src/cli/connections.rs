//! `flowctl connections create|list|delete` (through the API). Secrets are
//! read from an environment variable or a file, never from the command line,
//! so they stay out of shell history and `ps`.

use super::table::{Cell, Table};
use super::{ClientOpts, CmdResult, Exit, Failure, print_json};
use crate::client::Client;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ConnectionsArgs {
    #[command(subcommand)]
    pub command: ConnectionsCommand,
    #[command(flatten)]
    pub client: ClientOpts,
}

#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// Create a connection (or replace the one with the same --id)
    Create {
        /// The provider this connection is for
        #[arg(long, value_parser = ["stripe", "smtp", "http", "webhook"])]
        provider: String,
        /// A name for people, e.g. "Stripe (live)"
        #[arg(long)]
        name: String,
        /// Connection id, conn_ + 1-64 of A-Z a-z 0-9 _ [default: generated]
        #[arg(long, value_name = "ID")]
        id: Option<String>,
        /// Provider settings: inline JSON or @file (e.g. {"host": "smtp.example.com", "port": 587})
        #[arg(long, value_name = "JSON|@FILE")]
        config: Option<String>,
        /// Name of an environment variable holding the secret
        #[arg(long, value_name = "VAR", conflicts_with = "secret_file")]
        secret_env: Option<String>,
        /// File holding the secret (trailing newline ignored)
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
        /// Make it the provider's default connection
        #[arg(long)]
        default: bool,
    },
    /// List connections (secrets are never shown)
    List,
    /// Delete a connection (refused while an active workflow names it)
    Delete {
        /// Connection id (conn_…)
        id: String,
        /// Delete it even if active workflows name it (their runs will then need another)
        #[arg(long)]
        force: bool,
    },
}

fn read_config(spec: &str) -> Result<Value, Failure> {
    let text = match spec.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("cannot read {path}: {e}")))?,
        None => spec.to_string(),
    };
    serde_json::from_str(&text)
        .map_err(|e| Failure::usage(format!("--config is not valid JSON: {e}")))
}

pub async fn connections(client: &Client, cmd: &ConnectionsCommand, json: bool) -> CmdResult {
    match cmd {
        ConnectionsCommand::Create {
            provider,
            name,
            id,
            config,
            secret_env,
            secret_file,
            default,
        } => {
            let mut body = json!({"provider": provider, "name": name, "default": default});
            if let Some(id) = id {
                body["id"] = json!(id);
            }
            if let Some(spec) = config {
                body["config"] = read_config(spec)?;
            }
            let secret = match (secret_env, secret_file) {
                (Some(var), _) => Some(std::env::var(var).map_err(|_| {
                    Failure::usage(format!("environment variable {var} is not set"))
                })?),
                (None, Some(path)) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|e| {
                            Failure::usage(format!("cannot read {}: {e}", path.display()))
                        })?
                        .trim_end_matches(['\n', '\r'])
                        .to_string(),
                ),
                (None, None) => None,
            };
            if let Some(s) = secret {
                body["secret"] = json!(s);
            }
            let conn = client.create_connection(&body).await?;
            if json {
                print_json(&conn);
            } else {
                println!("{}", conn.id);
            }
        }
        ConnectionsCommand::List => {
            let all = client.connections().await?;
            if json {
                print_json(&all);
            } else {
                let mut t = Table::new(&[
                    "ID", "PROVIDER", "STATUS", "NAME", "DEFAULT", "SECRET", "CREATED",
                ]);
                for c in &all {
                    t.row(vec![
                        c.id.as_str().into(),
                        c.provider.as_str().into(),
                        c.status.as_str().into(),
                        c.name.as_str().into(),
                        if c.default { "default" } else { "-" }.into(),
                        if c.has_secret { "set" } else { "none" }.into(),
                        Cell::Time(Some(c.created_at.clone())),
                    ]);
                }
                t.print();
            }
        }
        ConnectionsCommand::Delete { id, force } => {
            client.delete_connection(id, *force).await.map_err(|e| {
                let mut f = super::Failure::from(e);
                f.message = f.message.replace(
                    "delete anyway with force=true",
                    &format!("delete anyway with `flowctl connections delete {id} --force`"),
                );
                f
            })?;
            if json {
                print_json(&json!({"id": id, "deleted": true}));
            } else {
                println!("deleted {id}");
            }
        }
    }
    Ok(Exit::Ok)
}
