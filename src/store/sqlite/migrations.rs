//! Embedded, numbered migrations tracked by `PRAGMA user_version`, applied in
//! one transaction. A file written by a newer flowctl is refused untouched.
//! Each migration carries its own number (numbers may have gaps), and
//! `user_version` is the highest number applied.

use crate::store::StoreError;
use rusqlite::Connection;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/001_initial.sql")),
    (2, include_str!("migrations/002_connections.sql")),
    (3, include_str!("migrations/003_leases.sql")),
    (5, include_str!("migrations/005_triggers.sql")),
    (6, include_str!("migrations/006_dashboard_sessions.sql")),
    (7, include_str!("migrations/007_recoveries.sql")),
    (11, include_str!("migrations/011_child_runs.sql")),
    (13, include_str!("migrations/013_fanouts.sql")),
    (14, include_str!("migrations/014_waits.sql")),
    (15, include_str!("migrations/015_outbox.sql")),
];

pub const LATEST: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

pub fn check_not_newer(conn: &Connection) -> Result<i64, StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > LATEST {
        return Err(StoreError::TooNew {
            found: current,
            supported: LATEST,
        });
    }
    Ok(current)
}

pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current = check_not_newer(conn)?;
    if current == LATEST {
        return Ok(());
    }
    let tx = conn.transaction()?;
    for (_, sql) in MIGRATIONS.iter().filter(|(n, _)| *n > current) {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", LATEST)?;
    tx.commit()?;
    Ok(())
}
