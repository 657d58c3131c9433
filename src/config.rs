//! Settings and well-known paths: defaults < FLOWCTL_* env < flags (clap
//! reads env and flags; this module supplies the defaults). Loading settings
//! never writes files.

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

/// `<user config dir>/flowctl/credentials.json`: one entry per server (see `credentials`).
pub fn credentials_path() -> PathBuf {
    base_dirs()
        .map(|d| d.config_dir().join("flowctl"))
        .unwrap_or_else(|| PathBuf::from(".flowctl"))
        .join("credentials.json")
}

/// Everything `flowctl serve` needs.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub listen: String,
    pub db: PathBuf,
    /// A PostgreSQL URL: the store is there (and `db` only locates the
    /// secret key file).
    pub database_url: Option<String>,
    pub workers: usize,
    pub retention_days: u32,
    pub shutdown_grace: std::time::Duration,
    pub body_limit_bytes: usize,
    pub rate_limits: crate::http::ratelimit::RateLimitConfig,
    /// Bytes requests without credentials may hold in memory at once.
    pub unauthenticated_body_budget: usize,
    /// Hours a webhook event id is remembered.
    pub webhook_dedupe_hours: u64,
    pub connections: ConnectionLimits,
    /// Serve `/metrics` without a key even when listening beyond loopback.
    pub metrics_public: bool,
    /// The budget of template results and step outputs, and the poison-pill count.
    pub run_limits: crate::limits::RunLimits,
    /// A notification endpoint failing this long is disabled (`--endpoint-disable-after`).
    pub endpoint_disable_after_ms: i64,
    /// The address people and outside systems reach this server at: the base of
    /// approval links in mails and of callback URLs. None: the listening address.
    pub public_url: Option<String>,
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
