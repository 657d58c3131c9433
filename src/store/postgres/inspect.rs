//! `flowctl db check --database-url`: what flowctl itself can tell about a
//! shared database without changing it — reachable, its schema version
//! against this binary's, the secret key's check value against the local
//! key, the queue's state (expired leases nobody rescued mean no live node)
//! and the connection budget. Page-level checks are PostgreSQL's own
//! (`pg_amcheck`), and are not repeated here.

use super::import::{connect, db_text};
use super::{migrations, redact};
use crate::secrets::SecretBox;
use crate::store::copy::CopyError;
use serde::Serialize;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PgCheck {
    pub database: String,
    pub server_version: String,
    /// `None` when flowctl never ran on this database.
    pub schema_version: Option<i64>,
    pub supported_schema_version: i64,
    /// "matches", "differs", "not stored" (no node started yet) or
    /// "not checked" (no local key).
    pub secret_key: &'static str,
    pub runs: Option<i64>,
    pub queued: Option<i64>,
    pub leased: Option<i64>,
    pub expired_leases: Option<i64>,
    pub max_connections: i64,
    pub flowctl_connections: i64,
    pub problems: Vec<String>,
}

/// Read-only checks of the database at `url` (`key`: this host's secret key).
pub async fn check(url: &str, key: Option<&SecretBox>) -> Result<PgCheck, CopyError> {
    let client = connect(url).await?;
    let fail = |e: tokio_postgres::Error| CopyError::Unreachable {
        url: redact(url),
        reason: db_text(&e),
    };
    let one = |sql: &'static str| {
        let c = &client;
        async move { c.query_one(sql, &[]).await }
    };
    let server_version: String = one("SHOW server_version").await.map_err(fail)?.get(0);
    let max_connections: i64 = one("SELECT current_setting('max_connections')::BIGINT")
        .await
        .map_err(fail)?
        .get(0);
    let flowctl_connections: i64 = one(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'flowctl' \
         AND datname = current_database()",
    )
    .await
    .map_err(fail)?
    .get(0);
    let has_schema: bool = one("SELECT to_regclass('flowctl_schema') IS NOT NULL")
        .await
        .map_err(fail)?
        .get(0);
    let mut report = PgCheck {
        database: redact(url),
        server_version,
        schema_version: None,
        supported_schema_version: migrations::LATEST,
        secret_key: "not checked",
        runs: None,
        queued: None,
        leased: None,
        expired_leases: None,
        max_connections,
        flowctl_connections,
        problems: Vec::new(),
    };
    if !has_schema {
        report.problems.push(
            "no flowctl tables: start a node (flowctl serve --database-url …) or copy a SQLite \
             deployment (flowctl db copy --to …) first"
                .into(),
        );
        return Ok(report);
    }
    let version: Option<i64> = client
        .query_opt("SELECT version FROM flowctl_schema", &[])
        .await
        .map_err(fail)?
        .map(|r| r.get(0));
    report.schema_version = version;
    match version {
        Some(v) if v > migrations::LATEST => report.problems.push(format!(
            "schema version {v} is newer than this flowctl ({}): upgrade the binary before \
             starting nodes with it",
            migrations::LATEST
        )),
        Some(v) if v < migrations::LATEST => {
            // Not a problem: the first node of this version migrates it.
        }
        Some(_) => {}
        None => report
            .problems
            .push("flowctl_schema holds no version: the tables were not created by flowctl".into()),
    }
    if version.is_none_or(|v| v > migrations::LATEST) {
        return Ok(report);
    }
    let stored: Option<String> = client
        .query_opt(
            "SELECT value FROM store_meta WHERE key = 'secret_key_check'",
            &[],
        )
        .await
        .map_err(fail)?
        .map(|r| r.get(0));
    report.secret_key = match (key, stored) {
        (None, _) => "not checked",
        (Some(_), None) => "not stored",
        (Some(k), Some(s)) if k.opens_check(&s) => "matches",
        (Some(_), Some(_)) => {
            report.problems.push(
                "the secret key of this host differs from the one the nodes use: connection \
                 secrets would not decrypt; give every node the same FLOWCTL_SECRET_KEY"
                    .into(),
            );
            "differs"
        }
    };
    // Suspended runs (due at `store::SUSPENDED_DUE`, i64::MAX) wait for children, not in the queue.
    let row = one("SELECT (SELECT COUNT(*) FROM runs), \
                COUNT(*) FILTER (WHERE lease_until IS NULL AND not_before < 9223372036854775807), \
                COUNT(*) FILTER (WHERE lease_until IS NOT NULL), \
                COUNT(*) FILTER (WHERE lease_until < flowctl_now_ms() - 60000) \
         FROM run_queue")
    .await
    .map_err(fail)?;
    report.runs = Some(row.get(0));
    report.queued = Some(row.get(1));
    report.leased = Some(row.get(2));
    let expired: i64 = row.get(3);
    report.expired_leases = Some(expired);
    if expired > 0 {
        report.problems.push(format!(
            "{expired} run(s) hold leases that expired over a minute ago: no live node is \
             rescuing them; start a node (flowctl serve --database-url …)"
        ));
    }
    Ok(report)
}
