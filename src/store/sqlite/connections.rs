//! Connections: stored credentials. The secret column holds ciphertext made
//! by the caller; this module never sees a secret in clear.

use super::{SqliteStore, from_json, to_json};
use crate::store::Connections;
use crate::store::{ConnectionRow, ConnectionWrite, Result, StoreError};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use serde_json::Value;

const COLUMNS: &str =
    "id, provider, name, status, is_default, config, secret, created_at, updated_at";

fn row(r: &rusqlite::Row) -> rusqlite::Result<(ConnectionRow, String)> {
    let status: String = r.get(3)?;
    let status = crate::store::columns::connection_status(&status).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let provider: String = r.get(1)?;
    let provider = crate::store::columns::connection_provider(&provider).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok((
        ConnectionRow {
            id: r.get(0)?,
            provider,
            name: r.get(2)?,
            status,
            is_default: r.get::<_, i64>(4)? != 0,
            config: Value::Null,
            secret: r.get(6)?,
            created_at: r.get(7)?,
            updated_at: r.get(8)?,
        },
        r.get(5)?,
    ))
}

fn decode((mut c, config): (ConnectionRow, String)) -> Result<ConnectionRow> {
    c.config = from_json(Some(config))?;
    Ok(c)
}

#[async_trait]
impl Connections for SqliteStore {
    /// Create, or replace the connection with this id (`true` = created).
    /// Setting `default` clears the provider's other default in the same commit.
    async fn put_connection(&self, w: ConnectionWrite) -> Result<(ConnectionRow, bool)> {
        let now = crate::time::now_ms();
        self.write(move |c| {
            let existing: Option<String> = c
                .query_row("SELECT provider FROM connections WHERE id = ?1", [&w.id], |r| r.get(0))
                .optional()?;
            if w.is_default {
                c.execute(
                    "UPDATE connections SET is_default = 0 WHERE provider = ?1 AND id != ?2",
                    params![w.provider.as_str(), w.id],
                )?;
            }
            if existing.is_some() {
                c.execute(
                    "UPDATE connections SET provider = ?2, name = ?3, status = ?4, is_default = ?5, config = ?6, \
                     secret = COALESCE(?7, secret), updated_at = ?8 WHERE id = ?1",
                    params![w.id, w.provider.as_str(), w.name, w.status.as_str(), w.is_default, to_json(&w.config), w.secret, now],
                )?;
            } else {
                c.execute(
                    "INSERT INTO connections (id, provider, name, status, is_default, config, secret, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                    params![w.id, w.provider.as_str(), w.name, w.status.as_str(), w.is_default, to_json(&w.config), w.secret, now],
                )?;
            }
            let stored = c.query_row(&format!("SELECT {COLUMNS} FROM connections WHERE id = ?1"), [&w.id], row)?;
            Ok((decode(stored)?, existing.is_none()))
        })
        .await
    }

    async fn list_connections(&self) -> Result<Vec<ConnectionRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM connections ORDER BY provider, id"
            ))?;
            let rows = stmt.query_map([], row)?;
            rows.map(|r| decode(r?)).collect()
        })
        .await
    }

    async fn get_connection(&self, id: String) -> Result<ConnectionRow> {
        self.read(move |c| {
            let found = c
                .prepare_cached(&format!("SELECT {COLUMNS} FROM connections WHERE id = ?1"))?
                .query_row([&id], row)
                .optional()?;
            decode(found.ok_or(StoreError::NotFound("connection"))?)
        })
        .await
    }

    async fn delete_connection(&self, id: String) -> Result<()> {
        self.write(move |c| {
            if c.execute("DELETE FROM connections WHERE id = ?1", [&id])? == 0 {
                return Err(StoreError::NotFound("connection"));
            }
            Ok(())
        })
        .await
    }
}
