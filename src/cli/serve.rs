//! `flowctl serve`: the API server and the worker.

use super::{CmdResult, Exit, Failure};
use crate::app::App;
use crate::config::ServeSettings;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on, HOST:PORT (port 0 picks a free port)
    #[arg(long, env = "FLOWCTL_LISTEN", default_value = crate::config::DEFAULT_LISTEN, value_name = "HOST:PORT")]
    pub listen: String,
    /// SQLite database file; created 0600 on first start [default: <user data dir>/flowctl/flowctl.db]
    #[arg(long, env = "FLOWCTL_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// PostgreSQL URL (postgres://user:pass@host/db?sslmode=require): many
    /// nodes share one database; the secret key must be the same on each
    #[arg(long, env = "FLOWCTL_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Runs executed at once
    #[arg(long, default_value_t = 32)]
    pub workers: usize,
    /// Finished runs older than this many days are purged
    #[arg(long, default_value_t = 30, value_name = "DAYS")]
    pub retention_days: u32,
    /// Seconds that steps in flight get to finish on shutdown (SIGTERM, Ctrl-C)
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub shutdown_grace: u64,
    /// Largest accepted request body, in bytes (larger ones: 413 PAYLOAD_TOO_LARGE)
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub body_limit: usize,
    /// Trigger requests per API key per minute (0 = no limit)
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub rate_limit_execute: u32,
    /// GET requests per API key per minute (0 = no limit)
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub rate_limit_read: u32,
    /// Other POST, PUT and DELETE requests per API key per minute (0 = no limit)
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub rate_limit_write: u32,
    /// Most API connections open at once; at the cap the oldest idle one is
    /// closed for a newcomer [default: three quarters of the open-file limit]
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Seconds a client has to send a request's headers
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,
    /// Seconds a client has to send a request's body
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout: u64,
    /// Seconds an idle keep-alive connection stays open
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: u64,
    /// Serve /metrics without a key even when listening beyond loopback
    /// (otherwise it needs a key with the admin scope there)
    #[arg(long)]
    pub metrics_public: bool,
    /// Inbound webhook requests per client IP per minute (0 = no limit)
    #[arg(long, default_value_t = 10_000)]
    pub rate_limit_webhook: u32,
    /// Largest value a template may render and a step may output, in bytes of JSON
    /// (larger: the step fails with OUTPUT_TOO_LARGE)
    #[arg(long, env = "FLOWCTL_MAX_VALUE_BYTES", default_value_t = crate::limits::DEFAULT_MAX_VALUE_BYTES,
          value_name = "BYTES", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1024..))]
    pub max_value_bytes: usize,
    /// A run taken back this many times from a server that died (or hung) while executing
    /// it fails with RUN_INTERRUPTED instead of being resumed again (0 = resume forever)
    #[arg(long, env = "FLOWCTL_MAX_RUN_RECOVERIES", default_value_t = crate::limits::DEFAULT_MAX_RECOVERIES, value_name = "N")]
    pub max_run_recoveries: u32,
    /// Dashboard login attempts per client IP per minute, and failed ones
    /// per key prefix (0 = no limit)
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub rate_limit_login: u32,
    /// Bytes that requests without credentials (webhook deliveries, dashboard
    /// logins) may hold in memory at once; beyond it they get 503 SERVER_BUSY
    #[arg(long, default_value_t = crate::http::intake::DEFAULT_BUDGET_BYTES, value_name = "BYTES")]
    pub unauthenticated_body_budget: usize,
    /// Hours a webhook event id is remembered, so a provider's retry starts
    /// nothing (Stripe retries for 3 days)
    #[arg(long, default_value_t = crate::delivery::DEFAULT_DEDUPE_HOURS, value_name = "HOURS",
          value_parser = clap::value_parser!(u64).range(1..=8760))]
    pub webhook_dedupe_hours: u64,
    /// A notification endpoint failing this long (no success since its first
    /// failure) is disabled and `endpoint.disabled` is recorded: a number with
    /// ms, s, m, h or d
    #[arg(long, default_value = "5d", value_name = "DURATION",
          value_parser = crate::notify::parse_duration_ms)]
    pub endpoint_disable_after: i64,
    /// The address people and outside systems reach this server at, e.g.
    /// https://flows.example.com: approval links in mails and callback URLs
    /// start with it [default: http://<the listening address>]
    #[arg(long, env = "FLOWCTL_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Log format on stderr: text or json
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

impl ServeArgs {
    /// The settings these flags ask for; the in-process test harness builds
    /// its servers through here too, so both see the same defaults.
    pub fn settings(&self) -> ServeSettings {
        ServeSettings {
            listen: loopback_literal(&self.listen),
            db: self
                .db
                .clone()
                .unwrap_or_else(crate::config::default_db_path),
            database_url: self.database_url.clone(),
            workers: self.workers,
            retention_days: self.retention_days,
            shutdown_grace: Duration::from_secs(self.shutdown_grace),
            body_limit_bytes: self.body_limit,
            rate_limits: crate::http::ratelimit::RateLimitConfig {
                execute: self.rate_limit_execute,
                read: self.rate_limit_read,
                write: self.rate_limit_write,
                webhook: self.rate_limit_webhook,
                login: self.rate_limit_login,
            },
            unauthenticated_body_budget: self.unauthenticated_body_budget,
            webhook_dedupe_hours: self.webhook_dedupe_hours,
            connections: crate::config::ConnectionLimits {
                header_timeout: Duration::from_secs(self.header_timeout),
                body_timeout: Duration::from_secs(self.body_timeout),
                idle_timeout: Duration::from_secs(self.idle_timeout),
                max_connections: self.max_connections.filter(|n| *n > 0),
            },
            metrics_public: self.metrics_public,
            run_limits: crate::limits::RunLimits {
                max_value_bytes: self.max_value_bytes,
                max_recoveries: self.max_run_recoveries,
            },
            endpoint_disable_after_ms: self.endpoint_disable_after,
            public_url: self.public_url.clone(),
        }
    }
}

pub async fn serve(args: ServeArgs) -> CmdResult {
    if args.workers == 0 {
        return Err(Failure::usage("--workers must be 1 or more"));
    }
    let listen = check_listen(&args.listen).map_err(Failure::usage)?;
    let settings = ServeSettings {
        listen,
        ..args.settings()
    };
    let db =
        match crate::store::Location::choose(settings.database_url.clone(), settings.db.clone()) {
            Ok(location) => location.describe(),
            Err(e) => return Err(Failure::usage(e)),
        };
    // With `--log-format json` every line on stderr is a JSON log event.
    let json_logs = args.log_format == "json";
    let say = |message: String| {
        if json_logs {
            tracing::info!("{message}");
        } else {
            eprintln!("{message}");
        }
    };
    let app = App::build(settings).await.map_err(|e| Failure {
        // A mistake in the flags or environment is usage (2); a file, store or
        // network failure is the server's side (3).
        exit: if crate::app::Misconfigured::is_in(&e) {
            Exit::Usage
        } else {
            Exit::Server
        },
        message: crate::app::error_chain(&e),
    })?;
    let url = format!("http://{}", app.addr());
    match app.ensure_local_credentials(&url).await {
        Ok(Some(path)) => say(format!(
            "created an admin API key for {url} in {} (mode 0600); `flowctl` commands on this machine use it for that URL",
            path.display()
        )),
        Ok(None) => {}
        Err(e) => say(format!("warning: could not write local credentials: {e:#}")),
    }
    if let Some(path) = &app.created_key {
        say(format!(
            "created the secret key for connection credentials in {} (mode 0600); keep it with the database",
            path.display()
        ));
    }
    if app.recovered > 0 {
        say(format!(
            "resuming {} run(s) that were in flight",
            app.recovered
        ));
    }
    say(format!("database {db}"));
    tracing::debug!(max_connections = app.max_connections, "connection cap");
    say(format!("flowctl listening on {url}"));
    app.run_until_stopped(shutdown_signal())
        .await
        .map_err(|e| Failure {
            exit: Exit::Server,
            message: format!("{e:#}"),
        })?;
    say("flowctl stopped".into());
    Ok(Exit::Ok)
}

/// `--listen` in its normalized form, or a message that shows the expected one.
/// Checked before anything is opened, so a typo is reported as a typo (not as
/// a busy database or port).
fn check_listen(listen: &str) -> Result<String, String> {
    let normalized = loopback_literal(listen);
    if normalized.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(normalized);
    }
    // A host name with a numeric port is left to the resolver.
    let named = normalized.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.contains(':') && port.parse::<u16>().is_ok()
    });
    if named {
        return Ok(normalized);
    }
    let hint = match listen.trim() {
        "" => String::new(),
        l if !l.contains(':') && l.parse::<u16>().is_ok() => format!("; did you mean :{l}?"),
        l if !l.contains(':') => format!("; did you mean {l}:3000?"),
        _ => String::new(),
    };
    Err(format!(
        "--listen '{listen}' is not an address to listen on: expected HOST:PORT, \
         e.g. 127.0.0.1:3000, localhost:3000, :3000 (loopback), 0.0.0.0:3000 (every interface), \
         [::1]:3000, or port 0 for a free port{hint}"
    ))
}

/// `localhost:3000` → `127.0.0.1:3000`: binding then needs no name lookup
/// (the static binary has no NSS, and localhost is always the loopback).
fn loopback_literal(listen: &str) -> String {
    match listen.rsplit_once(':') {
        Some((host, port)) if host.eq_ignore_ascii_case("localhost") || host.is_empty() => {
            format!("127.0.0.1:{port}")
        }
        _ => listen.to_string(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
