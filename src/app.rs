//! Composition root: opens the store for serving (SQLite: one server per
//! database file, runs a previous server held are queued again; PostgreSQL:
//! any number of nodes on one database), binds the listener, and runs the
//! API, the worker (with its leases), the schedule loop and retention under
//! one shutdown signal.

use crate::catalog::Catalog;
use crate::config::ServeSettings;
use crate::credentials::{CredentialsFile, ServerEntry};
use crate::events::Events;
use crate::http::ratelimit::RateLimits;
use crate::http::{AppState, Limits, router};
use crate::metrics::Metrics;
use crate::secrets::SecretBox;
use crate::store::{Location, NewApiKey, Store};
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
    /// The cap on open API connections in force.
    pub max_connections: usize,
    pub recovered: usize,
    /// The secret key file this start created, if any.
    pub created_key: Option<PathBuf>,
}

impl App {
    pub async fn build(settings: ServeSettings) -> anyhow::Result<App> {
        let fd_limit = crate::http::server::raise_fd_limit();
        let max_connections = settings
            .connections
            .max_connections
            .unwrap_or_else(|| crate::http::server::default_max_connections(fd_limit));
        let location = Location::choose(settings.database_url.clone(), settings.db.clone())
            .map_err(anyhow::Error::msg)?;
        // The port first: a busy one must fail before the database, its
        // WAL or the secret key file exist.
        let listener = TcpListener::bind(&settings.listen).await.map_err(|e| {
            let message = format!(
                "cannot listen on {}: {e} (is another server running? use --listen)",
                settings.listen
            );
            if e.kind() == std::io::ErrorKind::InvalidInput {
                anyhow::Error::new(Misconfigured(message))
            } else {
                anyhow::anyhow!(message)
            }
        })?;
        let (store, recovered) = Store::serve_at(&location).await?;
        let (secrets, created_key) = load_secret_key(&settings.db)?;
        check_secret_key(&store, &secrets).await?;
        let catalog = Catalog::new(store.clone());
        let events = Events::default();
        store.attach_events(&events);
        let mut state = AppState::new(
            store.clone(),
            catalog,
            events,
            secrets,
            RateLimits::new(settings.rate_limits),
            Metrics::new(),
        );
        state.intake = crate::http::intake::Intake::new(
            crate::http::intake::unauthenticated_slots(max_connections),
            settings.unauthenticated_body_budget,
            settings.body_limit_bytes,
        );
        state.webhook_dedupe_ms = (settings.webhook_dedupe_hours as i64).saturating_mul(3_600_000);
        Ok(App {
            listener,
            store,
            state,
            settings,
            max_connections,
            recovered,
            created_key,
        })
    }

    /// The store this app serves; the in-process test harness creates its
    /// API keys through it.
    pub fn store(&self) -> &Store {
        &self.store
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
        )
        .with_limits(self.settings.run_limits);
        let worker_task = tokio::spawn(worker.run(stop_rx.clone(), self.settings.shutdown_grace));
        let scheduler = tokio::spawn(
            crate::schedule::Scheduler::new(self.state.triggers()).run(stop_rx.clone()),
        );
        let retention = tokio::spawn(retention_loop(
            self.store.clone(),
            self.settings.retention_days,
            stop_rx.clone(),
        ));
        // Beyond loopback, metrics are for admins unless the operator says otherwise.
        let local = self.addr().ip().is_loopback();
        let app = router(
            self.state.clone(),
            Limits {
                body_bytes: self.settings.body_limit_bytes,
                metrics_need_key: !local && !self.settings.metrics_public,
            },
        );
        let signal_tx = stop_tx.clone();
        let events = self.state.events.clone();
        tokio::spawn(async move {
            shutdown.await;
            events.stop();
            let _ = signal_tx.send(true);
        });
        let server = crate::http::server::ServerConfig {
            header_timeout: self.settings.connections.header_timeout,
            body_timeout: self.settings.connections.body_timeout,
            idle_timeout: self.settings.connections.idle_timeout,
            max_connections: self.max_connections,
            body_limit: self.settings.body_limit_bytes,
            grace: self.settings.shutdown_grace,
        };
        crate::http::server::serve(self.listener, app, server, stop_rx.clone()).await;
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
                scopes: vec![crate::scope::Scope::Admin.as_str().into()],
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
        let key = SecretBox::from_key_text(&text)
            .map_err(|e| Misconfigured(format!("FLOWCTL_SECRET_KEY: {e}")))?;
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

/// Every node sharing a store must encrypt connection secrets with the same
/// key: the first one stores a value sealed with its key, and a node whose
/// key cannot open it refuses to start (instead of writing secrets no other
/// node can read).
async fn check_secret_key(store: &Store, secrets: &SecretBox) -> anyhow::Result<()> {
    let stored = store
        .meta_init("secret_key_check", secrets.check_value())
        .await?;
    if !secrets.opens_check(&stored) {
        return Err(anyhow::Error::new(Misconfigured(
            "this node's secret key differs from the one the database's other nodes use \
             (connection secrets would not decrypt); give every node the same FLOWCTL_SECRET_KEY \
             or secret.key file"
                .into(),
        )));
    }
    Ok(())
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

/// A start-up failure that is the caller's mistake (flags, environment, a
/// second server on the same file): `serve` exits 2 for it, 3 for the rest.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Misconfigured(pub String);

impl Misconfigured {
    /// Also a database from a newer flowctl: the fix is the caller's (upgrade).
    pub fn is_in(e: &anyhow::Error) -> bool {
        e.chain().any(|c| {
            c.is::<Misconfigured>()
                || matches!(
                    c.downcast_ref::<crate::store::StoreError>(),
                    Some(
                        crate::store::StoreError::TooNew { .. }
                            | crate::store::StoreError::InUse(_)
                    )
                )
        })
    }
}

/// An error and its causes on one line, each said once (SQLite's text is
/// otherwise repeated by every layer that wraps it).
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for part in e.chain() {
        let text = part.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
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
