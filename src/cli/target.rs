//! Which server a client command talks to, and with which key: `--url` /
//! `--api-key`, then `FLOWCTL_URL` / `FLOWCTL_API_KEY`, then the credentials
//! file entry for that URL. The key's origin travels with the client so a 401
//! can say which key was refused.

use super::Failure;
use crate::client::Client;
use crate::credentials::CredentialsFile;
use clap::Args;

/// `--url` / `--api-key` written before the command (`flowctl --url U run …`).
#[derive(Debug, Clone, Default, Args)]
pub struct TopClientOpts {
    /// Server URL for client commands [env: FLOWCTL_URL] [default: the server recorded in the credentials file, else http://localhost:3000]
    #[arg(long = "url", value_name = "URL")]
    pub url: Option<String>,
    /// API key for client commands [env: FLOWCTL_API_KEY] [default: the credentials file's key for the server's URL]
    #[arg(long = "api-key", value_name = "KEY")]
    pub api_key: Option<String>,
}

/// The same options, accepted after a client command (`flowctl run … --url U`).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Server options")]
pub struct ClientOpts {
    /// Server URL [env: FLOWCTL_URL] [default: the server recorded in the credentials file, else http://localhost:3000]
    #[arg(long = "url", value_name = "URL", global = true)]
    pub url: Option<String>,
    /// API key [env: FLOWCTL_API_KEY] [default: the credentials file's key for the server's URL]
    #[arg(long = "api-key", value_name = "KEY", global = true)]
    pub api_key: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub fn client(top: &TopClientOpts, opts: &ClientOpts) -> Result<Client, Failure> {
    let creds = CredentialsFile::load();
    let path = crate::config::credentials_path();
    let url = opts
        .url
        .clone()
        .or_else(|| top.url.clone())
        .or_else(|| env("FLOWCTL_URL"))
        .or_else(|| creds.default_entry().map(|e| e.url.clone()))
        .unwrap_or_else(|| crate::config::DEFAULT_URL.to_string());
    if let Some(key) = opts.api_key.clone().or_else(|| top.api_key.clone()) {
        return Ok(Client::new(&url, &key).with_key_origin("--api-key"));
    }
    if let Some(key) = env("FLOWCTL_API_KEY") {
        return Ok(Client::new(&url, &key).with_key_origin("FLOWCTL_API_KEY"));
    }
    if let Some(e) = creds.entry_for(&url) {
        let db =
            e.db.as_ref()
                .map(|d| format!(", database {}", d.display()))
                .unwrap_or_default();
        let origin = format!(
            "the credentials file entry for {} ({}{db}; restarting that `flowctl serve` refreshes it)",
            e.url,
            path.display()
        );
        return Ok(Client::new(&url, &e.api_key).with_key_origin(origin));
    }
    if creds.servers.is_empty() {
        return Err(Failure::usage(
            "no API key: set FLOWCTL_API_KEY or run flowctl serve once on this machine",
        ));
    }
    let known: Vec<&str> = creds.servers.iter().map(|e| e.url.as_str()).collect();
    Err(Failure::usage(format!(
        "no API key for {url}: {} has keys for {}; pass --url with one of those, or --api-key / FLOWCTL_API_KEY for this server",
        path.display(),
        known.join(", ")
    )))
}
