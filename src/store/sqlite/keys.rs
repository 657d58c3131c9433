//! API keys: stored only as SHA-256 hashes, looked up by hash.

use super::SqliteStore;
use crate::store::ApiKeys;
use crate::store::{ApiKeyRow, NewApiKey, Result, StoreError};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

fn row_to_key(r: &rusqlite::Row) -> rusqlite::Result<ApiKeyRow> {
    let scopes: String = r.get(2)?;
    Ok(ApiKeyRow {
        id: r.get(0)?,
        name: r.get(1)?,
        scopes: scopes
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        created_at: r.get(3)?,
        revoked_at: r.get(4)?,
    })
}

#[async_trait]
impl ApiKeys for SqliteStore {
    async fn create_api_key(&self, key: NewApiKey) -> Result<()> {
        let now = crate::time::now_ms();
        self.write(move |c| {
            c.execute(
                "INSERT INTO api_keys (id, name, key_hash, scopes, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![key.id, key.name, key.key_hash, key.scopes.join(","), now],
            )?;
            Ok(())
        })
        .await
    }

    /// The active key with this hash, if any.
    async fn api_key_by_hash(&self, hash: String) -> Result<Option<ApiKeyRow>> {
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT id, name, scopes, created_at, revoked_at FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL",
            )?
            .query_row([hash], row_to_key)
            .optional()?)
        })
        .await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, name, scopes, created_at, revoked_at FROM api_keys ORDER BY created_at, id",
            )?;
            let rows = stmt.query_map([], row_to_key)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn revoke_api_key(&self, id: String) -> Result<()> {
        let now = crate::time::now_ms();
        self.write(move |c| {
            let n = c.execute(
                "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, now],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound("active API key"));
            }
            Ok(())
        })
        .await
    }
}
