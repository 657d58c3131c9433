//! `flowctl connections create|list|delete` (through the API). Secrets are
//! read from an environment variable or a file, never from the command line,
//! so they stay out of shell history and `ps`.

use super::runs::text;
use super::{CmdResult, Exit, Failure, print_json};
use crate::client::Client;
use clap::Subcommand;
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// Create a connection (or replace the one with the same --id)
    Create {
        /// stripe, smtp or http
        #[arg(long)]
        provider: String,
        #[arg(long)]
        name: String,
        /// conn_… (generated when absent)
        #[arg(long)]
        id: Option<String>,
        /// Provider settings: inline JSON or @file (e.g. {"host": "smtp.example.com", "port": 587})
        #[arg(long)]
        config: Option<String>,
        /// Name of an environment variable holding the secret
        #[arg(long, conflicts_with = "secret_file")]
        secret_env: Option<String>,
        /// File holding the secret (trailing newline ignored)
        #[arg(long)]
        secret_file: Option<PathBuf>,
        /// Make it the provider's default connection
        #[arg(long)]
        default: bool,
    },
    List,
    Delete {
        id: String,
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
            let resp = client.post("/api/v1/connections", &body).await?;
            if json {
                print_json(&resp.data);
            } else {
                println!("{}", text(&resp.data, "id"));
            }
        }
        ConnectionsCommand::List => {
            let resp = client.get("/api/v1/connections").await?;
            if json {
                print_json(&resp.data);
            } else {
                for c in resp.data.as_array().into_iter().flatten() {
                    let default = if c["default"] == true {
                        " (default)"
                    } else {
                        ""
                    };
                    let secret = if c["hasSecret"] == true {
                        "secret set"
                    } else {
                        "no secret"
                    };
                    println!(
                        "{}  {:<6} {:<8} {}{}  [{}]",
                        text(c, "id"),
                        text(c, "provider"),
                        text(c, "status"),
                        text(c, "name"),
                        default,
                        secret
                    );
                }
            }
        }
        ConnectionsCommand::Delete { id } => {
            client.delete(&format!("/api/v1/connections/{id}")).await?;
            println!("deleted {id}");
        }
    }
    Ok(Exit::Ok)
}
