//! Composition root: opens the store for serving (one server per database
//! file; runs a previous server held are queued again), binds the listener,
//! and runs the API, the worker (with its leases) and retention under one
//! shutdown signal.

use crate::catalog::Catalog;
use crate::config::ServeSettings;
use crate::credentials::{CredentialsFile, ServerEntry};
use crate::events::Events;
use crate::http::ratelimit::RateLimits;
use crate::http::{AppState, Limits, router};
use crate::metrics::Metrics;
use crate::secrets::SecretBox;
use crate::store::{NewApiKey, Store};
use crate::worker::{LeaseSettings, Worker};
use anyhow::Context;
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
    pub recovered: usize,
    /// The secret key file this start created, if any.
    pub created_key: Option<PathBuf>,
}

impl App {
    pub async fn build(settings: ServeSettings) -> anyhow::Result<App> {
        let (store, recovered) = Store::open_for_serving(&settings.db).await?;
        let (secrets, created_key) = load_secret_key(&settings.db)?;
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
            lease_settings(),
        );
        let worker_task = tokio::spawn(worker.run(stop_rx.clone(), self.settings.shutdown_grace));
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
        let _ = worker_task.await;
        retention.abort();
        self.store.close();
        Ok(())
    }

    /// Make sure this machine's credentials file holds a valid admin key for
    /// this database; returns its path when a new key was written.
    pub async fn ensure_local_credentials(&self, url: &str) -> anyhow::Result<Option<PathBuf>> {
        let mut file = CredentialsFile::load();
        let db =
            std::fs::canonicalize(&self.settings.db).unwrap_or_else(|_| self.settings.db.clone());
        // Our entry is the one whose key this store knows; other servers' entries stay.
        let mut ours = None;
        for e in &file.servers {
            let hash = crate::ids::hash_api_key(&e.api_key);
            if self.store.api_key_by_hash(hash).await?.is_some() {
                ours = Some(e.clone());
                break;
            }
        }
        if let Some(e) = ours {
            let moved = e.url != url || e.db.as_ref() != Some(&db);
            if moved || file.entry_for(url) != Some(&e) {
                file.upsert(ServerEntry {
                    url: url.into(),
                    api_key: e.api_key,
                    db: Some(db),
                });
                file.save()?;
            }
            return Ok(None);
        }
        let key = crate::ids::api_key();
        self.store
            .create_api_key(NewApiKey {
                id: crate::ids::key_id(),
                name: "local admin (created by flowctl serve)".into(),
                key_hash: crate::ids::hash_api_key(&key),
                scopes: vec!["admin".into()],
            })
            .await?;
        file.upsert(ServerEntry {
            url: url.into(),
            api_key: key,
            db: Some(db),
        });
        Ok(Some(file.save()?))
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

/// Lease timing: 30 s by default; `FLOWCTL_LEASE_MS` shortens it (tests
/// that exercise expiry, or operators who want faster rescue).
fn lease_settings() -> LeaseSettings {
    std::env::var("FLOWCTL_LEASE_MS")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .map(LeaseSettings::from_lease_ms)
        .unwrap_or_default()
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
        let cutoff = crate::time::now_ms() - i64::from(retention_days) * 24 * 3600 * 1000;
        loop {
            match store.purge(cutoff, PURGE_BATCH).await {
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
