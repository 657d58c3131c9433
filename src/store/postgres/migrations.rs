//! Embedded, numbered migrations tracked in `flowctl_schema`, applied in one
//! transaction under a transaction-scoped advisory lock: nodes starting at
//! once migrate once (the others wait, then find nothing to do). A database
//! written by a newer flowctl is refused untouched.

use super::errors::pg;
use crate::store::{Result, StoreError};
use tokio_postgres::Client;

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_initial.sql"),
    include_str!("migrations/002_triggers.sql"),
    include_str!("migrations/003_dashboard.sql"),
    include_str!("migrations/004_recoveries.sql"),
    include_str!("migrations/005_child_runs.sql"),
];

pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// The advisory lock key that serialises migrations ("flowctl" in ASCII).
const MIGRATION_LOCK: i64 = 0x0066_6c6f_7763_746c;

pub async fn migrate(client: &mut Client) -> Result<()> {
    let tx = client.transaction().await.map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS flowctl_schema (version BIGINT NOT NULL)")
        .await
        .map_err(pg)?;
    let current: i64 = tx
        .query_opt("SELECT version FROM flowctl_schema", &[])
        .await
        .map_err(pg)?
        .map(|r| r.get(0))
        .unwrap_or(0);
    if current > LATEST {
        return Err(StoreError::TooNew {
            found: current,
            supported: LATEST,
        });
    }
    if current == LATEST {
        return tx.commit().await.map_err(pg);
    }
    for sql in &MIGRATIONS[current as usize..] {
        tx.batch_execute(sql).await.map_err(pg)?;
    }
    tx.execute("DELETE FROM flowctl_schema", &[])
        .await
        .map_err(pg)?;
    tx.execute(
        "INSERT INTO flowctl_schema (version) VALUES ($1)",
        &[&LATEST],
    )
    .await
    .map_err(pg)?;
    tx.commit().await.map_err(pg)
}
