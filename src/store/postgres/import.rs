//! The PostgreSQL side of `flowctl db copy`: one connection, one
//! transaction. The target is migrated first (so an empty database gets its
//! tables), its flowctl tables are locked against nodes starting meanwhile
//! and must be empty; then each table arrives through `COPY … FROM STDIN`
//! (text format) in the column order `sqlite/export.rs` reads. Nothing is
//! visible until `commit`; dropping a `Target` rolls everything back.

use super::errors::pg;
use super::{migrations, redact, tls};
use crate::secrets::SecretBox;
use crate::store::StoreError;
use crate::store::copy::{Cell, CopyError, Row};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use std::pin::Pin;
use tokio_postgres::{Client, CopyInSink};

/// Target tables and the columns each receives, in copy order.
const COLUMNS: &[(&str, &str)] = &[
    (
        "workflows",
        "id, name, status, latest_version, created_at, updated_at, concurrency",
    ),
    (
        "workflow_versions",
        "workflow_id, version, definition, created_at",
    ),
    (
        "runs",
        "seq, id, workflow_id, workflow_version, status, input, output, error, idempotency_key, \
         connection_id, created_at, started_at, completed_at, cancel_requested, trigger_type, \
         parent_run_id, parent_step_id, root_run_id, depth, child_key, parent_waits, deadline_at, \
         redrive_count",
    ),
    (
        "run_queue",
        "seq, workflow_id, not_before, lease_token, cancel_requested",
    ),
    (
        "steps",
        "run_seq, idx, step_id, status, output, error, warnings, attempts, started_at, completed_at",
    ),
    (
        "approvals",
        "run_id, step_id, workflow_id, reason, approvers, required, status, resolution, \
         created_at, expires_at, decided_at",
    ),
    (
        "approval_tokens",
        "token_hash, run_id, step_id, approver, sealed, mail_due, mail_attempts",
    ),
    (
        "approval_decisions",
        "run_id, step_id, decided_by, decision, comment, decided_at",
    ),
    ("callbacks", "run_id, step_id, body, headers, received_at"),
    ("idempotency_keys", "workflow_id, key, run_id, expires_at"),
    (
        "api_keys",
        "id, name, key_hash, scopes, created_at, revoked_at",
    ),
    (
        "connections",
        "id, provider, name, status, is_default, config, secret, created_at, updated_at",
    ),
    ("schedules", "workflow_id, version, next_at, updated_at"),
    (
        "schedule_fires",
        "workflow_id, scheduled_at, run_id, fired_at",
    ),
    (
        "ui_sessions",
        "id_hash, key_id, csrf_token, created_at, expires_at",
    ),
];

/// An open copy: a connection inside its transaction.
pub struct Target {
    client: Client,
    url: String,
    sink: Option<Pin<Box<CopyInSink<Bytes>>>>,
}

/// Open a plain connection (no pool, no listener) with the store's TLS rules.
pub(crate) async fn connect(url: &str) -> Result<Client, CopyError> {
    let unreachable = |reason: String| CopyError::Unreachable {
        url: redact(url),
        reason,
    };
    let mut config: tokio_postgres::Config =
        url.parse().map_err(|e| unreachable(format!("{e}")))?;
    config.application_name("flowctl db");
    config.connect_timeout(std::time::Duration::from_secs(10));
    let tls = tls::prepare(&mut config).map_err(unreachable)?;
    let (client, conn) = config
        .connect(tls)
        .await
        .map_err(|e| unreachable(db_text(&e)))?;
    tokio::spawn(conn);
    Ok(client)
}

/// PostgreSQL's own message when it sent one, else the client's.
pub(crate) fn db_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_string();
    }
    // "error connecting to server" alone hides the cause (refused, timed out).
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

impl Target {
    /// Connect, migrate, lock and check that no flowctl rows are there.
    pub async fn open(url: &str) -> Result<Target, CopyError> {
        let mut client = connect(url).await?;
        let fail = |cause: StoreError| CopyError::Target {
            url: redact(url),
            cause,
        };
        migrations::migrate(&mut client).await.map_err(fail)?;
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| fail(pg(e)))?;
        let tables: Vec<&str> = COLUMNS.iter().map(|(t, _)| *t).collect();
        // Nodes starting meanwhile wait for the copy rather than write
        // their first API key between the check and the copy.
        client
            .batch_execute(&format!(
                "LOCK TABLE {} IN EXCLUSIVE MODE",
                tables.join(", ")
            ))
            .await
            .map_err(|e| fail(pg(e)))?;
        let mut found = Vec::new();
        for table in ["workflows", "runs", "api_keys", "connections", "schedules"] {
            let n: i64 = client
                .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
                .await
                .map_err(|e| fail(pg(e)))?
                .get(0);
            if n > 0 {
                found.push(format!("{n} {}", table.replace('_', " ")));
            }
        }
        if !found.is_empty() {
            return Err(CopyError::NotEmpty {
                url: redact(url),
                found: found.join(", "),
            });
        }
        Ok(Target {
            client,
            url: url.to_string(),
            sink: None,
        })
    }

    fn fail(&self, e: tokio_postgres::Error) -> CopyError {
        CopyError::Target {
            url: redact(&self.url),
            cause: pg(e),
        }
    }

    pub async fn begin_table(&mut self, table: &str) -> Result<(), CopyError> {
        let Some((_, cols)) = COLUMNS.iter().find(|(t, _)| *t == table) else {
            return Err(CopyError::Target {
                url: redact(&self.url),
                cause: StoreError::Decode(format!("no copy columns for table {table}")),
            });
        };
        let sink = self
            .client
            .copy_in(&format!("COPY {table} ({cols}) FROM STDIN"))
            .await
            .map_err(|e| self.fail(e))?;
        self.sink = Some(Box::pin(sink));
        Ok(())
    }

    pub async fn write_rows(&mut self, rows: &[Row]) -> Result<(), CopyError> {
        let mut buf = BytesMut::with_capacity(rows.len() * 256);
        for row in rows {
            encode_row(&mut buf, row);
        }
        let Some(sink) = self.sink.as_mut() else {
            return Ok(());
        };
        let sent = sink.send(buf.freeze()).await;
        sent.map_err(|e| self.fail(e))
    }

    pub async fn end_table(&mut self) -> Result<(), CopyError> {
        if let Some(mut sink) = self.sink.take() {
            let finished = sink.as_mut().finish().await;
            finished.map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    /// Store the check value of the key the copied secrets are sealed with
    /// (nodes with another key then refuse to start); an existing value
    /// must open with the same key.
    pub async fn store_key_check(&mut self, key: &SecretBox) -> Result<(), CopyError> {
        self.client
            .execute(
                "INSERT INTO store_meta (key, value) VALUES ('secret_key_check', $1) \
                 ON CONFLICT (key) DO NOTHING",
                &[&key.check_value()],
            )
            .await
            .map_err(|e| self.fail(e))?;
        let stored: String = self
            .client
            .query_one(
                "SELECT value FROM store_meta WHERE key = 'secret_key_check'",
                &[],
            )
            .await
            .map_err(|e| self.fail(e))?
            .get(0);
        if !key.opens_check(&stored) {
            return Err(CopyError::SecretKey(format!(
                "{} was set up with another secret key than the SQLite deployment's; copy into \
                 a new database, or use the same key — nothing was written",
                redact(&self.url)
            )));
        }
        Ok(())
    }

    /// Move the run sequence past the copied runs, then commit.
    pub async fn commit(self) -> Result<(), CopyError> {
        self.client
            .batch_execute(
                "SELECT setval(pg_get_serial_sequence('runs', 'seq'), \
                 COALESCE((SELECT MAX(seq) FROM runs), 0) + 1, false); COMMIT",
            )
            .await
            .map_err(|e| self.fail(e))
    }
}

/// One row in COPY's text format: tab-separated, `\N` for NULL, bytea as
/// `\\x` hex; 0/1 are valid input for the boolean columns.
fn encode_row(buf: &mut BytesMut, row: &Row) {
    for (i, cell) in row.iter().enumerate() {
        if i > 0 {
            buf.put_u8(b'\t');
        }
        match cell {
            Cell::Null => buf.put_slice(b"\\N"),
            Cell::Int(n) => buf.put_slice(n.to_string().as_bytes()),
            Cell::Real(x) => buf.put_slice(x.to_string().as_bytes()),
            Cell::Text(s) => escape(buf, s),
            Cell::Blob(b) => {
                buf.put_slice(b"\\\\x");
                for byte in b {
                    buf.put_slice(format!("{byte:02x}").as_bytes());
                }
            }
        }
    }
    buf.put_u8(b'\n');
}

fn escape(buf: &mut BytesMut, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => buf.put_slice(b"\\\\"),
            b'\t' => buf.put_slice(b"\\t"),
            b'\n' => buf.put_slice(b"\\n"),
            b'\r' => buf.put_slice(b"\\r"),
            other => buf.put_u8(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_the_format_needs() {
        let mut buf = BytesMut::new();
        let row = vec![
            Cell::Text("a\tb\\c\nd".into()),
            Cell::Null,
            Cell::Int(-7),
            Cell::Blob(vec![0, 255]),
        ];
        encode_row(&mut buf, &row);
        assert_eq!(&buf[..], b"a\\tb\\\\c\\nd\t\\N\t-7\t\\\\x00ff\n");
    }
}
