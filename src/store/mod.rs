//! Durable storage behind ports (`ports.rs`): the worker, the handlers and
//! the catalog hold a `Store` and call the port traits; `sqlite/` (one
//! process, one file: the default) and `postgres/` (many nodes, one
//! database) implement them. Nothing outside this module knows which one it has.

pub mod admission;
mod columns;
#[cfg(test)]
mod contract;
pub mod copy;
pub mod decisions;
pub mod maintenance;
pub mod ports;
mod postgres;
mod records;
mod sqlite;

pub(crate) use postgres::inspect::check as check_postgres;
pub use postgres::redact as redact_url;

pub use ports::{
    ApiKeys, Backend, Claim, ClaimRef, Cluster, CommitOutcome, Connections, Dashboard, Health,
    HeartbeatReport, RateState, Registry, RunQueue, RunWrite, Runs, Schedules,
};
pub use records::*;

/// The due time PostgreSQL's queue row of a suspended run carries (never);
/// `db copy` writes it for SQLite's suspended runs.
pub(crate) const SUSPENDED_DUE: i64 = i64::MAX;

use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Any other error of the database (SQLite or PostgreSQL).
    #[error("database error: {0}")]
    Backend(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(
        "the database was written by a newer flowctl (schema version {found}, this binary knows {supported}); upgrade flowctl — the file was left untouched"
    )]
    TooNew { found: i64, supported: i64 },
    /// SQLite says the file is damaged or not a database.
    #[error("the database file is corrupt: {0}")]
    Corrupt(String),
    /// A stored value that does not decode (JSON, a status name).
    #[error("a stored value cannot be decoded: {0}")]
    Decode(String),
    /// Disk full, read-only or unreachable storage: the request changed
    /// nothing and may be retried once the cause is gone.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Another connection holds the database's write lock for too long.
    #[error("the database is busy: {0}")]
    Busy(String),
    #[error("cannot begin a write transaction: {0}")]
    Begin(String),
    #[error("cannot commit a write transaction: {0}")]
    Commit(String),
    #[error("a write job panicked: {0}")]
    JobPanicked(String),
    #[error("the database writer has stopped")]
    Closed,
    #[error("cannot open database {path}: {reason}")]
    Open { path: String, reason: String },
    /// Another server holds this database file.
    #[error("{0}")]
    InUse(String),
}

impl StoreError {
    /// The request may be retried unchanged once storage is back.
    pub fn is_unavailable(&self) -> bool {
        ports::is_transient(self)
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Decode(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A handle on the configured store; cheap to clone. Port methods are
/// called through it (`store.get_run(..)` with the port trait in scope).
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl Store {
    /// The narrow ports, for consumers that need only one (the worker sees
    /// the queue and connections, never dashboard queries).
    pub fn run_queue(&self) -> Arc<dyn RunQueue> {
        self.backend.clone()
    }
    pub fn registry(&self) -> Arc<dyn Registry> {
        self.backend.clone()
    }
    pub fn connections(&self) -> Arc<dyn Connections> {
        self.backend.clone()
    }
}

/// The HTTP adapter and the use cases see every port.
impl std::ops::Deref for Store {
    type Target = dyn Backend;
    fn deref(&self) -> &Self::Target {
        self.backend.as_ref()
    }
}

/// Where the store lives: a SQLite file, or a PostgreSQL URL.
#[derive(Debug, Clone)]
pub enum Location {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Location {
    /// `--database-url` when given (it must be `postgres://` or
    /// `postgresql://`), else the SQLite file.
    pub fn choose(
        url: Option<String>,
        db: std::path::PathBuf,
    ) -> std::result::Result<Location, String> {
        match url.filter(|u| !u.trim().is_empty()) {
            None => Ok(Location::Sqlite(db)),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(Location::Postgres(u))
            }
            Some(u) => Err(format!(
                "--database-url must start with postgres:// or postgresql:// (got '{}'); \
                 for a SQLite file use --db",
                redact_url(&u)
            )),
        }
    }

    /// For messages: the file, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(u) => redact_url(u),
        }
    }
}

impl Store {
    /// Open the store at `location` for a command that shares it with
    /// running servers (keys, connections).
    pub async fn connect(location: &Location) -> Result<Store> {
        match location {
            Location::Sqlite(path) => Store::open(path),
            Location::Postgres(url) => Ok(Store::from_backend(Arc::new(
                postgres::PgStore::connect(url).await?,
            ))),
        }
    }

    /// Open the store for serving. SQLite: as `open_for_serving`. PostgreSQL:
    /// other nodes may hold leases, so nothing is requeued at once; runs of
    /// a dead node come back when their leases expire.
    pub async fn serve_at(location: &Location) -> Result<(Store, usize)> {
        match location {
            Location::Sqlite(path) => Store::open_for_serving(path).await,
            Location::Postgres(_) => Ok((Store::connect(location).await?, 0)),
        }
    }

    pub fn from_backend(backend: Arc<dyn Backend>) -> Store {
        Store { backend }
    }

    /// Open (creating when missing) and migrate the database at `path`, for
    /// a command that shares it (keys, connections) with a running server.
    pub fn open(path: &Path) -> Result<Store> {
        Ok(Store::from_backend(Arc::new(sqlite::SqliteStore::open(
            path,
        )?)))
    }

    /// Open the database for serving: refuse when another server holds the
    /// same database file (by whatever path), and put every run a previous
    /// server held back in the queue. Returns how many runs were resumed.
    pub async fn open_for_serving(path: &Path) -> Result<(Store, usize)> {
        let store = sqlite::SqliteStore::open_exclusive(path)?;
        let recovered = store.requeue_all_claimed().await?;
        Ok((Store::from_backend(Arc::new(store)), recovered))
    }
}
