//! Settings and well-known paths: defaults < FLOWCTL_* env < flags (clap
//! reads env and flags; this module supplies the defaults). Loading settings
//! never writes files.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const DEFAULT_URL: &str = "http://localhost:3000";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";

fn base_dirs() -> Option<directories::BaseDirs> {
    directories::BaseDirs::new()
}

/// `<user data dir>/flowctl/flowctl.db`
pub fn default_db_path() -> PathBuf {
    base_dirs()
        .map(|d| d.data_dir().join("flowctl"))
        .unwrap_or_else(|| PathBuf::from(".flowctl"))
        .join("flowctl.db")
}

/// `<user config dir>/flowctl/credentials.json`, written by `serve` on first start.
pub fn credentials_path() -> PathBuf {
    base_dirs()
        .map(|d| d.config_dir().join("flowctl"))
        .unwrap_or_else(|| PathBuf::from(".flowctl"))
        .join("credentials.json")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub url: String,
    pub api_key: String,
}

pub fn load_credentials() -> Option<Credentials> {
    let text = std::fs::read_to_string(credentials_path()).ok()?;
    serde_json::from_str(&text).ok()
}

/// Write the credentials file with mode 0600 (it holds an admin key).
pub fn save_credentials(c: &Credentials) -> std::io::Result<PathBuf> {
    let path = credentials_path();
    if let Some(dir) = path.parent() {
        crate::store::maintenance::create_private_dir(dir)?;
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
        serde_json::to_string_pretty(c)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    Ok(path)
}

/// Everything `flowctl serve` needs.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub listen: String,
    pub db: PathBuf,
    pub workers: usize,
    pub retention_days: u32,
    pub shutdown_grace: std::time::Duration,
    pub body_limit_bytes: usize,
    pub rate_limits: crate::http::ratelimit::RateLimitConfig,
    pub connections: ConnectionLimits,
    /// Serve `/metrics` without a key even when listening beyond loopback.
    pub metrics_public: bool,
}

/// How long clients may take, and how many may be connected at once.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub header_timeout: std::time::Duration,
    pub body_timeout: std::time::Duration,
    pub idle_timeout: std::time::Duration,
    /// None: three quarters of the open-file limit.
    pub max_connections: Option<usize>,
}
