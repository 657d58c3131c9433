//! The local credentials file (`<user config dir>/flowctl/credentials.json`,
//! mode 0600): one entry per server URL, written by `flowctl serve`, read by
//! the client commands. Two servers on one machine each keep their own key;
//! a client picks the entry for the URL it talks to.
//!
//! The top-level `url`/`apiKey` mirror the default entry (the server on the
//! default URL, else the first one recorded) for scripts that read the file.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerEntry {
    pub url: String,
    pub api_key: String,
    /// The database the key lives in, so messages can say where to create another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(default)]
    pub servers: Vec<ServerEntry>,
}

/// `http://localhost:3000`, `http://127.0.0.1:3000/` and `http://[::1]:3000` are one server.
pub fn same_server(a: &str, b: &str) -> bool {
    match (normalize(a), normalize(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.trim_end_matches('/') == b.trim_end_matches('/'),
    }
}

fn normalize(url: &str) -> Option<(String, String, u16)> {
    let u = reqwest::Url::parse(url).ok()?;
    let host = u.host_str()?.to_ascii_lowercase();
    let host = match host.as_str() {
        "localhost" | "127.0.0.1" | "[::1]" | "::1" | "0.0.0.0" | "[::]" => "loopback".into(),
        _ => host,
    };
    Some((u.scheme().to_string(), host, u.port_or_known_default()?))
}

impl CredentialsFile {
    /// The file, or an empty one when it is absent or unreadable.
    pub fn load() -> CredentialsFile {
        Self::load_from(&crate::config::credentials_path())
    }

    pub fn load_from(path: &Path) -> CredentialsFile {
        let Ok(text) = std::fs::read_to_string(path) else {
            return CredentialsFile::default();
        };
        let mut file: CredentialsFile = serde_json::from_str(&text).unwrap_or_default();
        // A file from before per-server entries: its one server.
        if file.servers.is_empty()
            && let (Some(url), Some(api_key)) = (file.url.clone(), file.api_key.clone())
        {
            file.servers.push(ServerEntry {
                url,
                api_key,
                db: None,
            });
        }
        file
    }

    pub fn entry_for(&self, url: &str) -> Option<&ServerEntry> {
        self.servers.iter().find(|e| same_server(&e.url, url))
    }

    /// The server a client talks to without `--url`: the one on the default URL, else the first.
    pub fn default_entry(&self) -> Option<&ServerEntry> {
        self.entry_for(crate::config::DEFAULT_URL)
            .or_else(|| self.servers.first())
    }

    /// Record `entry`; it replaces any entry for the same URL or the same key.
    pub fn upsert(&mut self, entry: ServerEntry) {
        self.servers
            .retain(|e| !same_server(&e.url, &entry.url) && e.api_key != entry.api_key);
        self.servers.push(entry);
    }

    /// Write the file with mode 0600 (it holds admin keys).
    pub fn save(&mut self) -> std::io::Result<PathBuf> {
        let default = self.default_entry().cloned();
        self.url = default.as_ref().map(|e| e.url.clone());
        self.api_key = default.map(|e| e.api_key);
        let path = crate::config::credentials_path();
        if let Some(dir) = path.parent() {
            // 0700 whatever the umask (as the data dir): the file holds admin keys.
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                b.mode(0o700);
            }
            b.create(dir)?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        use std::io::Write;
        f.write_all(
            serde_json::to_string_pretty(self)
                .unwrap_or_default()
                .as_bytes(),
        )?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(url: &str, key: &str) -> ServerEntry {
        ServerEntry {
            url: url.into(),
            api_key: key.into(),
            db: None,
        }
    }

    #[test]
    fn loopback_spellings_are_one_server() {
        assert!(same_server(
            "http://localhost:3000",
            "http://127.0.0.1:3000/"
        ));
        assert!(same_server("http://[::1]:3000", "http://localhost:3000"));
        assert!(!same_server(
            "http://localhost:3000",
            "http://localhost:3911"
        ));
        assert!(same_server("http://example.com", "http://example.com:80"));
    }

    #[test]
    fn one_entry_per_url_and_a_stable_default() {
        let mut f = CredentialsFile::default();
        f.upsert(entry("http://127.0.0.1:3000", "k1"));
        f.upsert(entry("http://127.0.0.1:3911", "k2"));
        assert_eq!(f.default_entry().unwrap().api_key, "k1");
        assert_eq!(f.entry_for("http://localhost:3911").unwrap().api_key, "k2");
        // The first server moves to another port: its entry moves with it.
        f.upsert(entry("http://127.0.0.1:4000", "k1"));
        assert_eq!(f.servers.len(), 2);
        assert!(f.entry_for("http://localhost:3000").is_none());
        assert_eq!(f.default_entry().unwrap().api_key, "k2");
    }
}
