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
    /// Runs executed at once by this server (1 or more)
    #[arg(long, default_value_t = 32, value_name = "N")]
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
    /// Log format on stderr
    #[arg(long, default_value = "text", value_parser = ["text", "json"], value_name = "FORMAT")]
    pub log_format: String,
}

pub async fn serve(args: ServeArgs) -> CmdResult {
    if args.workers == 0 {
        return Err(Failure::usage("--workers must be 1 or more"));
    }
    let settings = ServeSettings {
        listen: loopback_literal(&args.listen),
        db: args.db.unwrap_or_else(crate::config::default_db_path),
        workers: args.workers,
        retention_days: args.retention_days,
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
        body_limit_bytes: args.body_limit,
        rate_limits: crate::http::ratelimit::RateLimitConfig {
            execute: args.rate_limit_execute,
            read: args.rate_limit_read,
            write: args.rate_limit_write,
        },
    };
    let db = settings.db.clone();
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
        exit: Exit::Usage,
        message: format!("{e:#}"),
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
    say(format!("database {}", db.display()));
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
