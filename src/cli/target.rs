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

/// What people type for a server: `host:port`, `:3000`, a URL with a trailing
/// `/` or `/api/v1`. All become `http://host:port` (the scheme kept if given).
pub fn normalize_url(raw: &str) -> String {
    let mut url = raw.trim().to_string();
    if !url.contains("://") {
        let host = if url.starts_with(':') {
            format!("localhost{url}")
        } else {
            url
        };
        url = format!("http://{host}");
    }
    let mut trimmed = url.trim_end_matches('/');
    for suffix in ["/api/v1", "/api"] {
        if let Some(t) = trimmed.strip_suffix(suffix) {
            trimmed = t.trim_end_matches('/');
            break;
        }
    }
    trimmed.to_string()
}

/// Whether something listens at the URL's host and port (a TCP connect, no
/// request): a wrong port must be reported as that, not as a missing key.
fn reachable(url: &str) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("'{url}' is not a URL: {e}"))?;
    let host = parsed.host_str().unwrap_or("localhost").to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addrs: Vec<_> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = String::from("no address");
    for a in addrs {
        match std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(3)) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

pub fn client(top: &TopClientOpts, opts: &ClientOpts) -> Result<Client, Failure> {
    let creds = CredentialsFile::load();
    let path = crate::config::credentials_path();
    let url = opts
        .url
        .clone()
        .or_else(|| top.url.clone())
        .or_else(|| env("FLOWCTL_URL"))
        .map(|u| normalize_url(&u))
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
    // No key for this URL: first make sure a server is there at all.
    if let Err(reason) = reachable(&url) {
        let mut message = crate::client::ClientError::Unreachable {
            url: url.clone(),
            reason,
        }
        .to_string();
        if !creds.servers.is_empty() {
            let known: Vec<&str> = creds.servers.iter().map(|e| e.url.as_str()).collect();
            message.push_str(&format!(
                "\n  servers this machine has keys for: {}",
                known.join(", ")
            ));
        }
        return Err(Failure {
            exit: super::Exit::Server,
            message,
        });
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

#[cfg(test)]
mod tests {
    #[test]
    fn urls_are_normalized() {
        use super::normalize_url as n;
        assert_eq!(n("127.0.0.1:3000"), "http://127.0.0.1:3000");
        assert_eq!(n(":3000"), "http://localhost:3000");
        assert_eq!(n("http://h:1/api/v1/"), "http://h:1");
        assert_eq!(n("https://h/api/v1"), "https://h");
        assert_eq!(n("http://h:1/"), "http://h:1");
    }
}
