//! The SQLite store: the only code with SQL. One file in WAL mode; a
//! dedicated writer thread commits every write job, grouping all jobs waiting
//! at that moment into one transaction (group commit: one fsync for many
//! triggers), and a small pool of read connections serves queries off the
//! async runtime. A job that fails or panics fails alone (its own savepoint).

mod children;
mod connections;
mod dashboard;
mod errors;
pub(crate) mod export;
mod fanout;
mod keys;
mod lock;
mod migrations;
mod outbox;
mod queue;
mod runs;
mod schedules;
mod waits;
mod workflows;

pub(crate) use errors::classify;

use super::{Result, StoreError, maintenance};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Deliver = Box<dyn FnOnce(Result<()>) + Send>;
/// A write job: run inside the open transaction (`Some`), or told that the
/// transaction could not begin (`None`) so it answers with that error.
type Job = Box<dyn FnOnce(std::result::Result<&Connection, StoreError>) -> Deliver + Send>;

/// Largest number of jobs grouped into one transaction.
const MAX_BATCH: usize = 512;
const READERS: usize = 8;

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    checkpointer_stop: Arc<AtomicBool>,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    readers: Mutex<Vec<Connection>>,
    /// When a write last failed for want of storage (for `/healthz`).
    last_unavailable: Arc<Mutex<Option<(std::time::Instant, String)>>>,
    /// The OS lock on the database file held by a serving process.
    _lock: Option<std::fs::File>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    checkpointer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Set once a query met a corrupt page: `/healthz` says so until a restart.
    corrupt: Mutex<Option<String>>,
}

impl Inner {
    /// Remember (and log once, naming the file) that the file is corrupt.
    fn note(&self, e: StoreError) -> StoreError {
        let StoreError::Corrupt(cause) = &e else {
            return e;
        };
        if let Ok(mut seen) = self.corrupt.lock()
            && seen.is_none()
        {
            tracing::error!(
                file = %self.path.display(),
                %cause,
                "the database file is corrupt; /healthz now answers 503 STORAGE_CORRUPT \
                 (stop the server, run flowctl db check, restore a backup)"
            );
            *seen = Some(cause.clone());
        }
        crate::store::maintenance::corrupt(&self.path, cause)
    }
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

impl SqliteStore {
    /// Open (creating when missing) and migrate the database, then start the writer thread.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        SqliteStore::open_with(path, None)
    }

    /// As `open`, for a server: first take an exclusive OS lock on the
    /// database file itself, so a second server is refused by whatever path
    /// (symlink, hard link) it reaches the file.
    pub fn open_exclusive(path: &Path) -> Result<SqliteStore> {
        let lock = lock::lock_database_file(path)?;
        SqliteStore::open_with(path, Some(lock))
    }

    fn open_with(path: &Path, lock: Option<std::fs::File>) -> Result<SqliteStore> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            maintenance::create_private_dir(dir).map_err(|e| StoreError::Open {
                path: dir.display().to_string(),
                reason: e.to_string(),
            })?;
        }
        // Created 0600 before SQLite opens it: its -wal and -shm take its mode.
        maintenance::create_private_file(path).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let named = |e| maintenance::name_the_file(path, e);
        let mut writer = open_conn(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
        .map_err(named)?;
        // docs/workflows.md promises durability across power loss, not only process
        // crashes: every (group) commit fsyncs the WAL. Group commit keeps
        // that to one fsync for all writes waiting at that moment.
        writer.pragma_update(None, "synchronous", "FULL")?;
        // The writer touches the tails of every index on each commit; a larger
        // page cache keeps them in memory (readers keep the 2 MiB default).
        writer.pragma_update(None, "cache_size", -16_000)?;
        // Checkpoints run on their own thread (below) so the writer never
        // stalls copying pages; this is only a backstop if that one lags.
        writer.pragma_update(None, "wal_autocheckpoint", 10_000)?;
        migrations::migrate(&mut writer).map_err(named)?;
        maintenance::check_at_start(&writer, path)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let last_unavailable = Arc::new(Mutex::new(None));
        let failures = last_unavailable.clone();
        let writer_thread = std::thread::Builder::new()
            .name("flowctl-db-writer".into())
            .spawn(move || writer_loop(writer, rx, failures))
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        let checkpointer_path = path.to_path_buf();
        let checkpointer_stop = stop.clone();
        let checkpointer_thread = std::thread::Builder::new()
            .name("flowctl-db-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer_path, &checkpointer_stop))
            .ok();
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                checkpointer_stop: stop,
                writer: Mutex::new(Some(tx)),
                readers: Mutex::new(Vec::new()),
                last_unavailable,
                _lock: lock,
                writer_thread: Mutex::new(Some(writer_thread)),
                checkpointer_thread: Mutex::new(checkpointer_thread),
                corrupt: Mutex::new(None),
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
            let result = conn.and_then(|conn| in_savepoint(conn, f));
            Box::new(move |commit: Result<()>| {
                let _ = tx.send(commit.and(result));
            })
        });
        self.send(job)?;
        rx.await
            .map_err(|_| StoreError::Closed)?
            .map_err(|e| self.inner.note(e))
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
            let result = f(&conn).map_err(|e| inner.note(e));
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

    /// A real write through the writer thread (so a dead writer, a full
    /// disk or a read-only file all show), and any storage failure of the
    /// last few seconds: a small probe may fit where real writes do not.
    pub async fn check_writable(&self) -> Result<()> {
        // A `SELECT`/probe write would not touch a damaged page: remember it.
        if let Some(cause) = self.inner.corrupt.lock().ok().and_then(|c| c.clone()) {
            return Err(crate::store::maintenance::corrupt(&self.inner.path, &cause));
        }
        self.write(|c| {
            c.prepare_cached(
                "INSERT INTO store_meta (key, value) VALUES ('health_probe', ?1) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )?
            .execute([crate::time::now_ms().to_string()])?;
            Ok(())
        })
        .await?;
        let recent = self
            .inner
            .last_unavailable
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .filter(|(at, _)| at.elapsed() < UNHEALTHY_AFTER_FAILURE);
        match recent {
            Some((_, cause)) => Err(StoreError::Unavailable(cause)),
            None => Ok(()),
        }
    }

    /// Stop writing, wait for the writer to drain, close every connection,
    /// then checkpoint and truncate the WAL so the `.db` file alone holds
    /// every committed write.
    pub fn close(&self) {
        if let Ok(mut w) = self.inner.writer.lock() {
            w.take();
        }
        self.inner.checkpointer_stop.store(true, Ordering::Relaxed);
        for slot in [&self.inner.writer_thread, &self.inner.checkpointer_thread] {
            if let Some(handle) = slot.lock().ok().and_then(|mut h| h.take()) {
                let _ = handle.join();
            }
        }
        if let Ok(mut pool) = self.inner.readers.lock() {
            pool.clear();
        }
        match maintenance::checkpoint_truncate(&self.inner.path) {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                "the final WAL checkpoint could not finish (a reader was busy); \
                 the -wal file holds the newest writes, keep it with the database"
            ),
            Err(e) => tracing::warn!(error = %e, "the final WAL checkpoint failed"),
        }
    }
}

#[async_trait::async_trait]
impl crate::store::Health for SqliteStore {
    async fn check(&self) -> Result<()> {
        self.check_writable().await
    }
    fn close(&self) {
        SqliteStore::close(self)
    }
}

/// One process owns the file: nothing to tell other nodes.
impl crate::store::Cluster for SqliteStore {}

/// How long `/healthz` reports a storage failure after the last one.
const UNHEALTHY_AFTER_FAILURE: std::time::Duration = std::time::Duration::from_secs(3);

/// Each job gets a savepoint so one failing (or panicking) job does not undo
/// its neighbours, and the writer thread survives it.
fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    // Cached statements: these run twice per write job, on the writer's hot path.
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
        .unwrap_or_else(|panic| Err(StoreError::JobPanicked(panic_text(&panic))));
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

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

type Failures = Arc<Mutex<Option<(std::time::Instant, String)>>>;

fn note_failure(failures: &Failures, e: &StoreError) {
    if e.is_unavailable()
        && let Ok(mut g) = failures.lock()
    {
        *g = Some((std::time::Instant::now(), e.to_string()));
    }
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Job>, failures: Failures) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let e = classify(e, StoreError::Begin);
            tracing::error!(error = %e, "cannot begin a write transaction");
            note_failure(&failures, &e);
            // Every job still gets an answer: this error, with nothing run.
            for job in jobs {
                job(Err(clone_error(&e)))(Ok(()));
            }
            continue;
        }
        let delivers: Vec<Deliver> = jobs.into_iter().map(|job| job(Ok(&conn))).collect();
        let committed = conn
            .execute_batch("COMMIT")
            .map_err(|e| classify(e, StoreError::Commit));
        if let Err(e) = &committed {
            tracing::error!(error = %e, "cannot commit a write transaction");
            note_failure(&failures, e);
            let _ = conn.execute_batch("ROLLBACK");
        }
        for deliver in delivers {
            deliver(committed.as_ref().map(|_| ()).map_err(clone_error));
        }
    }
}

/// Store errors carry text only, so one cause can answer many jobs.
fn clone_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Busy(m) => StoreError::Busy(m.clone()),
        StoreError::Begin(m) => StoreError::Begin(m.clone()),
        StoreError::Commit(m) => StoreError::Commit(m.clone()),
        other => StoreError::Backend(other.to_string()),
    }
}

/// JSON column helpers.
pub(crate) fn to_json(v: &serde_json::Value) -> String {
    v.to_string()
}

pub(crate) use crate::store::columns::from_json;

#[cfg(test)]
mod tests;
