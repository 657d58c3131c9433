//! Embedded, numbered migrations tracked by `PRAGMA user_version`, applied in
//! one transaction. A file written by a newer flowctl is refused untouched.

use super::StoreError;
use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_initial.sql"),
    include_str!("migrations/002_connections.sql"),
    include_str!("migrations/006_dashboard_sessions.sql"),
];

pub const LATEST: i64 = MIGRATIONS.len() as i64;

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
    for sql in &MIGRATIONS[current as usize..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", LATEST)?;
    tx.commit()?;
    Ok(())
}
