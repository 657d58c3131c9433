//! The only module with SQL. One SQLite file in WAL mode; a dedicated writer
//! thread commits every write job, grouping all jobs waiting at that moment
//! into one transaction (group commit: one fsync for many triggers), and a
//! small pool of read connections serves queries off the async runtime.

mod connections;
mod dashboard;
mod keys;
mod migrations;
mod queue;
mod runs;
mod schedules;
mod workflows;

pub use connections::{ConnectionRow, ConnectionWrite};
pub use dashboard::{Overview, RunPage, RunSearch, RunSummary, UiSession};
pub use keys::ApiKeyRow;
pub use queue::RunUpdate;
pub use runs::{NewRun, RunFilter, RunRow, StepRecord, TriggerOutcome};
pub use schedules::{ScheduleRow, ScheduleState};
pub use workflows::{ApplyOutcome, WorkflowRow};

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(
        "the database was written by a newer flowctl (schema version {found}, this binary knows {supported}); upgrade flowctl — the file was left untouched"
    )]
    TooNew { found: i64, supported: i64 },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the database writer has stopped")]
    Closed,
    #[error("cannot open database {path}: {reason}")]
    Open { path: String, reason: String },
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

type Deliver = Box<dyn FnOnce(Result<()>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Deliver + Send>;

/// Largest number of jobs grouped into one transaction.
const MAX_BATCH: usize = 512;
const READERS: usize = 8;

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    checkpointer_stop: Arc<AtomicBool>,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    readers: Mutex<Vec<Connection>>,
}

fn open_conn(path: &Path, flags: OpenFlags) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, flags).map_err(|e| StoreError::Open {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // Refuse a newer file before anything (even the WAL switch) writes to it.
    migrations::check_not_newer(&conn)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )?;
    // Without a stable plan SQLite re-prepares statements with `LIMIT ?` and
    // similar bindings on every run, which defeats the statement cache.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl Store {
    /// Open (creating when missing) and migrate the database, then start the writer thread.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        }
        let mut writer = open_conn(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )?;
        // SPEC §5 promises durability across power loss, not only process
        // crashes: every (group) commit fsyncs the WAL. Group commit keeps
        // that to one fsync for all writes waiting at that moment.
        writer.pragma_update(None, "synchronous", "FULL")?;
        // The writer touches the tails of every index on each commit; a larger
        // page cache keeps them in memory (readers keep the 2 MiB default).
        writer.pragma_update(None, "cache_size", -16_000)?;
        // Checkpoints run on their own thread (below) so the writer never
        // stalls copying pages; this is only a backstop if that one lags.
        writer.pragma_update(None, "wal_autocheckpoint", 10_000)?;
        migrations::migrate(&mut writer)?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("flowctl-db-writer".into())
            .spawn(move || writer_loop(writer, rx))
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        let checkpointer_path = path.to_path_buf();
        let checkpointer_stop = stop.clone();
        let _ = std::thread::Builder::new()
            .name("flowctl-db-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer_path, &checkpointer_stop));
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                checkpointer_stop: stop,
                writer: Mutex::new(Some(tx)),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Run `f` inside the writer's current transaction; resolves after COMMIT.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            let result = in_savepoint(conn, f);
            Box::new(move |commit: Result<()>| {
                let _ = tx.send(commit.and(result));
            })
        });
        self.send(job)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    fn send(&self, job: Job) -> Result<()> {
        let guard = self.inner.writer.lock().map_err(|_| StoreError::Closed)?;
        guard
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(job)
            .map_err(|_| StoreError::Closed)
    }

    /// Run `f` on a pooled read connection on the blocking thread pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().ok().and_then(|mut p| p.pop());
            let conn = match pooled {
                Some(c) => c,
                None => open_conn(&inner.path, OpenFlags::SQLITE_OPEN_READ_WRITE)?,
            };
            let result = f(&conn);
            if let Ok(mut pool) = inner.readers.lock()
                && pool.len() < READERS
            {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// A real round trip to the database file, for health checks.
    pub async fn ping(&self) -> Result<()> {
        self.read(|c| {
            Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(|_| ())?)
        })
        .await
    }

    /// Stop accepting writes; the writer thread exits after draining its queue.
    pub fn close(&self) {
        if let Ok(mut w) = self.inner.writer.lock() {
            w.take();
        }
        self.inner.checkpointer_stop.store(true, Ordering::Relaxed);
    }
}

/// Each job gets a savepoint so one failing job does not undo its neighbours.
fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    // Cached statements: these run twice per write job, on the writer's hot path.
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    let result = f(conn);
    if result.is_err() {
        conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
    }
    conn.prepare_cached("RELEASE job")?.execute([])?;
    result
}

/// Copy WAL pages into the database file in the background (PASSIVE: never
/// blocks the writer or readers), keeping the WAL short.
fn checkpoint_loop(path: &Path, stop: &AtomicBool) {
    let Ok(conn) = open_conn(path, OpenFlags::SQLITE_OPEN_READ_WRITE) else {
        return;
    };
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(25));
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "background checkpoint failed; retrying");
        }
    }
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let begun = conn.execute_batch("BEGIN IMMEDIATE");
        if let Err(e) = begun {
            tracing::error!(error = %e, "cannot begin a write transaction");
            for job in jobs {
                // Jobs still need an answer; run none of them.
                drop(job);
            }
            continue;
        }
        let delivers: Vec<Deliver> = jobs.into_iter().map(|job| job(&conn)).collect();
        let committed = conn.execute_batch("COMMIT").map_err(StoreError::from);
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for deliver in delivers {
            let c = match &committed {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Corrupt(format!("commit failed: {e}"))),
            };
            deliver(c);
        }
    }
}

/// JSON column helpers.
pub(crate) fn to_json(v: &serde_json::Value) -> String {
    v.to_string()
}

pub(crate) fn from_json(s: Option<String>) -> Result<serde_json::Value> {
    match s {
        None => Ok(serde_json::Value::Null),
        Some(s) => Ok(serde_json::from_str(&s)?),
    }
}
