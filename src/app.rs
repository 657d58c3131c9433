//! Composition root: opens the store (holding the data dir's lock), recovers
//! runs left in flight, binds the listener, and runs the API, the worker, the
//! schedule loop and retention under one shutdown signal.

use crate::catalog::Catalog;
use crate::config::{Credentials, ServeSettings};
use crate::events::Events;
use crate::http::ratelimit::RateLimits;
use crate::http::{AppState, Limits, router};
use crate::metrics::Metrics;
use crate::secrets::SecretBox;
use crate::store::Store;
use crate::worker::Worker;
use anyhow::Context;
use std::fs::File;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub struct App {
    listener: TcpListener,
    store: Store,
    state: AppState,
    settings: ServeSettings,
    _lock: File,
    pub recovered: usize,
    /// The secret key file this start created, if any.
    pub created_key: Option<PathBuf>,
}

impl App {
    pub async fn build(settings: ServeSettings) -> anyhow::Result<App> {
        let lock = lock_data_dir(&settings.db)?;
        let (secrets, created_key) = load_secret_key(&settings.db)?;
        let store = Store::open(&settings.db)?;
        let recovered = store.requeue_in_flight().await?;
        let listener = TcpListener::bind(&settings.listen).await.with_context(|| {
            format!(
                "cannot listen on {} (is another server running? use --listen)",
                settings.listen
            )
        })?;
        let catalog = Catalog::new(store.clone());
        let state = AppState::new(
            store.clone(),
            catalog,
            Events::default(),
            secrets,
            RateLimits::new(settings.rate_limits),
            Metrics::new(),
        );
        Ok(App {
            listener,
            store,
            state,
            settings,
            _lock: lock,
            recovered,
            created_key,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serve until `shutdown` resolves; then stop claiming, give runs in
    /// flight the grace period, and return.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker = Worker::new(
            self.store.clone(),
            self.state.catalog.clone(),
            self.state.events.clone(),
            self.state.secrets.clone(),
            self.state.metrics.clone(),
            self.settings.workers,
        );
        let worker_task = tokio::spawn(worker.run(stop_rx.clone(), self.settings.shutdown_grace));
        let scheduler = tokio::spawn(
            crate::schedule::Scheduler::new(self.state.triggers()).run(stop_rx.clone()),
        );
        let retention = tokio::spawn(retention_loop(
            self.store.clone(),
            self.settings.retention_days,
            stop_rx.clone(),
        ));
        let app = router(
            self.state.clone(),
            Limits {
                body_bytes: self.settings.body_limit_bytes,
            },
        );
        let mut server_stop = stop_rx.clone();
        let signal_tx = stop_tx.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = signal_tx.send(true);
        });
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|s| *s).await;
            })
            .await?;
        let _ = stop_tx.send(true);
        let _ = scheduler.await;
        let _ = worker_task.await;
        retention.abort();
        self.store.close();
        Ok(())
    }

    /// Make sure this machine's credentials file holds a valid admin key for
    /// this database; returns its path when a new key was written.
    pub async fn ensure_local_credentials(&self, url: &str) -> anyhow::Result<Option<PathBuf>> {
        if let Some(c) = crate::config::load_credentials()
            && self
                .store
                .api_key_by_hash(crate::ids::hash_api_key(&c.api_key))
                .await?
                .is_some()
        {
            if c.url != url {
                crate::config::save_credentials(&Credentials {
                    url: url.into(),
                    api_key: c.api_key,
                })?;
            }
            return Ok(None);
        }
        let key = crate::ids::api_key();
        self.store
            .create_api_key(
                crate::ids::key_id(),
                "local admin (created by flowctl serve)".into(),
                crate::ids::hash_api_key(&key),
                vec!["admin".into()],
                crate::time::now_ms(),
            )
            .await?;
        let path = crate::config::save_credentials(&Credentials {
            url: url.into(),
            api_key: key,
        })?;
        Ok(Some(path))
    }
}

/// The key that encrypts connection secrets: `FLOWCTL_SECRET_KEY`, else a
/// key file beside the database, created (mode 0600) on first start.
fn load_secret_key(db: &std::path::Path) -> anyhow::Result<(SecretBox, Option<PathBuf>)> {
    if let Ok(text) = std::env::var("FLOWCTL_SECRET_KEY") {
        let key = SecretBox::from_key_text(&text).context("FLOWCTL_SECRET_KEY")?;
        return Ok((key, None));
    }
    let path = db
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("secret.key");
    let (key, created) = SecretBox::load_or_create(&path)
        .with_context(|| format!("secret key file {}", path.display()))?;
    Ok((key, created.then_some(path)))
}

/// One server per database file: a second one would double-execute runs.
fn lock_data_dir(db: &std::path::Path) -> anyhow::Result<File> {
    if let Some(dir) = db.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let lock_path = PathBuf::from(format!("{}.lock", db.display()));
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    file.try_lock().map_err(|_| {
        anyhow::anyhow!(
            "another flowctl serve is using {}; stop it or pass a different --db",
            db.display()
        )
    })?;
    Ok(file)
}

const PURGE_BATCH: usize = 500;

/// Purge finished runs past retention and expired idempotency keys, in small
/// batches so triggers are never held up.
async fn retention_loop(store: Store, retention_days: u32, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let now = crate::time::now_ms();
        let cutoff = now - i64::from(retention_days) * 24 * 3600 * 1000;
        loop {
            match store.purge(cutoff, now, PURGE_BATCH).await {
                Ok(n) if n == PURGE_BATCH => tokio::task::yield_now().await,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "retention purge failed");
                    break;
                }
            }
        }
    }
}
