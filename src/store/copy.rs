//! `flowctl db copy`: move a SQLite deployment to an empty PostgreSQL
//! database. The SQLite side (`sqlite/export.rs`) reads every table in one
//! read transaction (one consistent snapshot, so the server may keep
//! running) on a blocking thread and streams rows in batches; the
//! PostgreSQL side (`postgres/import.rs`) writes them with `COPY` inside one
//! transaction, so a failure leaves the target as empty as it was. Rows
//! travel as plain cells, in the column order both sides agree on per table.
//! Connection secrets are copied as the ciphertext they are.

use super::StoreError;
use crate::secrets::SecretBox;
use std::path::{Path, PathBuf};

/// One column value as SQLite stored it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

pub type Row = Vec<Cell>;

/// What the reader sends: the start of a table, then its rows in batches.
#[derive(Debug)]
pub enum Chunk {
    Table(&'static str),
    Rows(Vec<Row>),
}

/// Rows per batch sent from the reader to the writer.
pub const BATCH: usize = 2000;

/// Rows copied per table, in copy order.
#[derive(Debug, Default, Clone)]
pub struct CopyReport {
    pub tables: Vec<(&'static str, u64)>,
    /// Whether the secret key's check value was stored on the target.
    pub key_check_stored: bool,
    /// A server was still running on the SQLite file during the copy.
    pub source_served: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("no database at {0}: pass --db PATH (or set FLOWCTL_DB) naming the SQLite file")]
    SourceMissing(PathBuf),
    #[error("cannot read {path}: {cause}")]
    Source { path: String, cause: StoreError },
    #[error(
        "cannot reach PostgreSQL at {url}: {reason}; check the URL, that the server runs and that it accepts connections from this host"
    )]
    Unreachable { url: String, reason: String },
    #[error(
        "{url} already holds flowctl data ({found}); copy into a new, empty database (CREATE DATABASE …) — nothing was written"
    )]
    NotEmpty { url: String, found: String },
    #[error("{0}")]
    SecretKey(String),
    #[error("copy to {url} failed, nothing was written: {cause}")]
    Target { url: String, cause: StoreError },
}

impl CopyError {
    /// The caller's mistake (exit 2) rather than a failing server (exit 3).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            CopyError::SourceMissing(_) | CopyError::NotEmpty { .. } | CopyError::SecretKey(_)
        )
    }
}

/// The key that encrypted the source's connection secrets, without creating
/// one: `FLOWCTL_SECRET_KEY`, else `secret.key` beside the database file.
pub fn source_key(db: &Path) -> Result<Option<SecretBox>, CopyError> {
    if let Ok(text) = std::env::var("FLOWCTL_SECRET_KEY") {
        return SecretBox::from_key_text(&text)
            .map(Some)
            .map_err(|e| CopyError::SecretKey(format!("FLOWCTL_SECRET_KEY: {e}")));
    }
    let path = db.parent().unwrap_or(Path::new(".")).join("secret.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => SecretBox::from_key_text(&text)
            .map(Some)
            .map_err(|e| CopyError::SecretKey(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CopyError::SecretKey(format!("{}: {e}", path.display()))),
    }
}

/// Copy the SQLite database at `db` into the empty PostgreSQL database at
/// `url`. `key` (see `source_key`) must open every stored secret; its check
/// value is stored so that nodes with another key refuse to start.
pub async fn sqlite_to_postgres(
    db: &Path,
    url: &str,
    key: Option<SecretBox>,
) -> Result<CopyReport, CopyError> {
    if !db.is_file() {
        return Err(CopyError::SourceMissing(db.to_path_buf()));
    }
    let mut target = super::postgres::import::Target::open(url).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(4);
    let path = db.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || {
        super::sqlite::export::export(&path, BATCH, |chunk| tx.blocking_send(chunk).is_ok())
    });
    let mut report = CopyReport {
        source_served: super::sqlite::export::in_use(db),
        ..CopyReport::default()
    };
    let mut current: Option<&'static str> = None;
    let written = async {
        while let Some(chunk) = rx.recv().await {
            match chunk {
                Chunk::Table(name) => {
                    if current.is_some() {
                        target.end_table().await?;
                    }
                    target.begin_table(name).await?;
                    report.tables.push((name, 0));
                    current = Some(name);
                }
                Chunk::Rows(rows) => {
                    if current == Some("connections") {
                        check_secrets(&rows, key.as_ref())?;
                    }
                    if let Some(last) = report.tables.last_mut() {
                        last.1 += rows.len() as u64;
                    }
                    target.write_rows(&rows).await?;
                }
            }
        }
        if current.is_some() {
            target.end_table().await?;
        }
        Ok::<(), CopyError>(())
    }
    .await;
    // Closing the channel stops a reader still sending after a failure.
    drop(rx);
    let read = reader.await.map_err(|e| CopyError::Source {
        path: db.display().to_string(),
        cause: StoreError::JobPanicked(e.to_string()),
    })?;
    read.map_err(|cause| CopyError::Source {
        path: db.display().to_string(),
        cause,
    })?;
    written?;
    report.key_check_stored = match &key {
        Some(k) => {
            target.store_key_check(k).await?;
            true
        }
        None => false,
    };
    target.commit().await?;
    Ok(report)
}

/// Every secret (the connections' only blob column) must open with the key
/// the target's nodes will use; otherwise they would copy unusable secrets.
fn check_secrets(rows: &[Row], key: Option<&SecretBox>) -> Result<(), CopyError> {
    let blobs = rows.iter().flatten().filter_map(|c| match c {
        Cell::Blob(b) => Some(b),
        _ => None,
    });
    for blob in blobs {
        let Some(key) = key else {
            return Err(CopyError::SecretKey(
                "the connections' secrets are encrypted, but no key was found: set \
                 FLOWCTL_SECRET_KEY, or keep secret.key beside the database file"
                    .into(),
            ));
        };
        if key.decrypt(blob).is_err() {
            return Err(CopyError::SecretKey(
                "the secret key does not open the stored connection secrets: set \
                 FLOWCTL_SECRET_KEY (or secret.key beside the database) to the key the SQLite \
                 server uses — nothing was written"
                    .into(),
            ));
        }
    }
    Ok(())
}
