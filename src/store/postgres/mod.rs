//! The PostgreSQL store: many `flowctl serve` nodes on one database. A pool
//! of connections serves the ports; the run queue is a small hot table
//! (`run_queue`) apart from run history, claimed with `FOR UPDATE SKIP
//! LOCKED`, fenced by a token on every write, with every time decision on
//! the database clock. One dedicated connection per node listens for
//! wake-ups, finishes and cancels from other nodes (`notify.rs`); a slow poll
//! stays as the backstop. Trigger inserts and run commits go through the
//! node's writer (`writer.rs`), which commits every write waiting at that
//! moment in one transaction: one WAL flush for many runs.

mod children;
mod dashboard;
mod errors;
pub(crate) mod import;
pub(crate) mod inspect;
mod migrations;
mod notify;
mod queue;
mod ratelimit;
mod registry;
mod runs;
mod schedules;
#[cfg(test)]
pub(crate) mod tests;
mod tls;
mod writer;

pub(crate) use errors::{pg, pool};

use crate::store::{Cluster, Health, RateState, Result, StoreError};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use std::sync::{Arc, Mutex};

/// Connections per node in the pool (the listener has one more of its own).
pub const POOL_SIZE: usize = 10;

/// Writer tasks per node (`writer.rs`): each commits one batch at a time.
const WRITER_TASKS: usize = 2;

#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    config: tokio_postgres::Config,
    tls: tls::Tls,
    notifier: notify::Notifier,
    writer: writer::Writer,
    /// When a write last failed for want of the database (for `/healthz`).
    last_unavailable: Mutex<Option<(std::time::Instant, String)>>,
}

/// The URL without its password, for messages: the userinfo's password and
/// a `password` query parameter (which libpq and tokio-postgres accept too)
/// become `***`. A URL that does not parse is replaced whole, since where its
/// password sits cannot be known.
pub fn redact(url: &str) -> String {
    const HIDDEN: &str = "***";
    let Ok(mut parsed) = url::Url::parse(url) else {
        return format!("<a database URL that does not parse: {HIDDEN}>");
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some(HIDDEN));
    }
    if parsed.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    HIDDEN.to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

impl PgStore {
    /// Connect, migrate (under an advisory lock) and start the notifier.
    pub async fn connect(url: &str) -> Result<PgStore> {
        let open_error = |reason: String| StoreError::Open {
            path: redact(url),
            reason,
        };
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| open_error(format!("{e}")))?;
        if config.get_application_name().is_none() {
            config.application_name("flowctl");
        }
        config.connect_timeout(std::time::Duration::from_secs(10));
        let tls = tls::prepare(&mut config).map_err(open_error)?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(10)))
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            .build()
            .map_err(|e| open_error(e.to_string()))?;
        {
            let mut client = pool
                .get()
                .await
                .map_err(|e| open_error(pool_error_text(e)))?;
            migrations::migrate(&mut client).await?;
        }
        let notifier = notify::Notifier::start(pool.clone());
        let writer = writer::Writer::start(pool.clone(), WRITER_TASKS);
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                config,
                tls,
                notifier,
                writer,
                last_unavailable: Mutex::new(None),
            }),
        })
    }

    pub(crate) async fn client(&self) -> Result<Object> {
        match self.inner.pool.get().await {
            Ok(c) => Ok(c),
            Err(e) => {
                let e = pool(e);
                self.note_failure(&e);
                Err(e)
            }
        }
    }

    pub(crate) fn note_failure(&self, e: &StoreError) {
        if e.is_unavailable()
            && let Ok(mut g) = self.inner.last_unavailable.lock()
        {
            *g = Some((std::time::Instant::now(), e.to_string()));
        }
    }

    /// Record an unavailable-storage failure on the way out.
    pub(crate) fn seen<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.note_failure(e);
        }
        r
    }

    fn writer(&self) -> &writer::Writer {
        &self.inner.writer
    }

    pub(crate) fn notifier(&self) -> &notify::Notifier {
        &self.inner.notifier
    }

    /// A real write, and any database failure of the last few seconds.
    pub async fn check_writable(&self) -> Result<()> {
        let c = self.client().await?;
        let r = c
            .execute(
                "INSERT INTO store_meta (key, value) VALUES ('health_probe', flowctl_now_ms()::TEXT) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[],
            )
            .await
            .map_err(pg);
        self.seen(r)?;
        let recent = self
            .inner
            .last_unavailable
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .filter(|(at, _)| at.elapsed() < std::time::Duration::from_secs(3));
        match recent {
            Some((_, cause)) => Err(StoreError::Unavailable(cause)),
            None => Ok(()),
        }
    }

    pub fn close(&self) {
        self.inner.notifier.stop();
        self.inner.pool.close();
    }
}

fn pool_error_text(e: deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => e.to_string(),
        },
        other => other.to_string(),
    }
}

/// JSON column helpers (text columns, as in the SQLite store).
pub(crate) use crate::store::columns::{from_json, opt_json};

/// A pooled connection or an open transaction: every statement goes
/// through the connection's prepared-statement cache.
pub(crate) enum Db<'a, 'b> {
    Client(&'a deadpool_postgres::ClientWrapper),
    Tx(&'a deadpool_postgres::Transaction<'b>),
}

type Params<'p> = &'p [&'p (dyn tokio_postgres::types::ToSql + Sync)];

impl Db<'_, '_> {
    async fn stmt(&self, sql: &str) -> Result<tokio_postgres::Statement> {
        match self {
            Db::Client(c) => c.prepare_cached(sql).await,
            Db::Tx(t) => t.prepare_cached(sql).await,
        }
        .map_err(pg)
    }

    pub async fn query(&self, sql: &str, p: Params<'_>) -> Result<Vec<tokio_postgres::Row>> {
        let s = self.stmt(sql).await?;
        match self {
            Db::Client(c) => c.query(&s, p).await,
            Db::Tx(t) => t.query(&s, p).await,
        }
        .map_err(pg)
    }

    pub async fn query_opt(&self, sql: &str, p: Params<'_>) -> Result<Option<tokio_postgres::Row>> {
        let s = self.stmt(sql).await?;
        match self {
            Db::Client(c) => c.query_opt(&s, p).await,
            Db::Tx(t) => t.query_opt(&s, p).await,
        }
        .map_err(pg)
    }

    pub async fn query_one(&self, sql: &str, p: Params<'_>) -> Result<tokio_postgres::Row> {
        let s = self.stmt(sql).await?;
        match self {
            Db::Client(c) => c.query_one(&s, p).await,
            Db::Tx(t) => t.query_one(&s, p).await,
        }
        .map_err(pg)
    }
}

#[async_trait]
impl Health for PgStore {
    async fn check(&self) -> Result<()> {
        self.check_writable().await
    }
    fn close(&self) {
        PgStore::close(self)
    }
}

#[async_trait]
impl crate::store::ports::Redrives for PgStore {
    async fn redrive_run(&self, id: String) -> Result<Option<crate::store::RunRow>> {
        let r = async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(pg)?;
            let db = Db::Tx(&tx);
            let run = runs::run_by_id(&db, &id, false)
                .await?
                .ok_or(StoreError::NotFound("run"))?;
            if !children::redrive(&db, run.seq).await? {
                return Ok(None);
            }
            let run = runs::run_by_id(&db, &id, true).await?;
            tx.commit().await.map_err(pg)?;
            Ok(run)
        }
        .await;
        if matches!(r, Ok(Some(_))) {
            self.notifier().send(notify::Note::Queued);
        }
        self.seen(r)
    }
}

#[async_trait]
impl Cluster for PgStore {
    /// Store `value` under `key` unless one is there; returns the stored one.
    async fn meta_init(&self, key: &'static str, value: String) -> Result<String> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO store_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key, &value],
        )
        .await
        .map_err(pg)?;
        let row = c
            .query_one("SELECT value FROM store_meta WHERE key = $1", &[&key])
            .await
            .map_err(pg)?;
        Ok(row.get(0))
    }

    async fn rate_hit(
        &self,
        key: String,
        category: &'static str,
        emission_ms: i64,
        burst_ms: i64,
    ) -> Result<Option<RateState>> {
        self.gcra_hit(key, category, emission_ms, burst_ms).await
    }

    /// Start this node's listener: notifications from every node reach
    /// `events` (wake the dispatcher, answer long-polls, abort cancelled steps).
    fn attach_events(&self, events: &crate::events::Events) {
        let events = events.clone();
        if std::env::var("FLOWCTL_PG_NOTIFY").as_deref() == Ok("off") {
            tracing::info!("FLOWCTL_PG_NOTIFY=off: this node polls once a second");
            return;
        }
        tokio::spawn(notify::listen(
            self.inner.config.clone(),
            self.inner.tls.clone(),
            self.inner.pool.clone(),
            events,
            self.inner.notifier.stopped(),
        ));
    }
}

#[cfg(test)]
mod redact_tests {
    use super::redact;

    #[test]
    fn passwords_in_the_userinfo_and_the_query_are_hidden() {
        assert_eq!(
            redact("postgres://u:s3cret@db.example:5432/app"),
            "postgres://u:***@db.example:5432/app"
        );
        let r = redact("postgres://u@db.example/app?sslmode=require&password=s3cret");
        assert!(!r.contains("s3cret"), "{r}");
        assert!(
            r.contains("sslmode=require") && r.contains("password=***"),
            "{r}"
        );
        let r = redact("postgresql://u:a%40b@h/db?password=x%26y");
        assert!(!r.contains("a%40b") && !r.contains("x%26y"), "{r}");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        let r = redact("postgres://u:s3cret@[::1/db");
        assert!(!r.contains("s3cret"), "{r}");
    }
}
