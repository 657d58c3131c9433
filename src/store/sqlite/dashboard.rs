//! Reads and writes only the web dashboard needs: its sessions (stored as
//! hashes, alive while their API key is), the filtered run list with keyset
//! paging, and the overview's figures. Every query here uses an index and
//! none counts over the whole history, so pages stay fast on large stores.

use super::{SqliteStore, from_json};
use crate::store::Dashboard;
use crate::store::decisions::unfinished_sql;
use crate::store::{Overview, Result, RunPage, RunSearch, RunSummary, UiSession};
use async_trait::async_trait;
use rusqlite::types::ToSql;
use rusqlite::{OptionalExtension, params};
use serde_json::Value;

fn summary_row(r: &rusqlite::Row) -> rusqlite::Result<(RunSummary, Option<String>)> {
    Ok((
        RunSummary {
            seq: r.get(0)?,
            id: r.get(1)?,
            workflow_id: r.get(2)?,
            workflow_version: r.get(3)?,
            status: r.get(4)?,
            error: Value::Null,
            idempotency_key: r.get(6)?,
            created_at: r.get(7)?,
            started_at: r.get(8)?,
            completed_at: r.get(9)?,
            trigger_type: r.get(10)?,
        },
        r.get(5)?,
    ))
}

const HOUR_MS: i64 = 60 * 60 * 1000;

#[async_trait]
impl Dashboard for SqliteStore {
    /// Store a new session (its id only as a hash); expired ones are removed on the way.
    async fn create_ui_session(
        &self,
        id_hash: String,
        key_id: String,
        csrf_token: String,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        self.write(move |c| {
            c.prepare_cached(
                "DELETE FROM ui_sessions WHERE id_hash IN \
                 (SELECT id_hash FROM ui_sessions WHERE expires_at <= ?1 LIMIT 100)",
            )?
            .execute([now])?;
            c.prepare_cached(
                "INSERT INTO ui_sessions (id_hash, key_id, csrf_token, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![id_hash, key_id, csrf_token, now, expires_at])?;
            Ok(())
        })
        .await
    }

    /// The live session with this hash: unexpired, and its key not revoked.
    async fn ui_session(&self, id_hash: String, now: i64) -> Result<Option<UiSession>> {
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT s.key_id, k.name, k.scopes, s.csrf_token FROM ui_sessions s \
                 JOIN api_keys k ON k.id = s.key_id \
                 WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND k.revoked_at IS NULL",
            )?
            .query_row(params![id_hash, now], |r| {
                let scopes: String = r.get(2)?;
                Ok(UiSession {
                    key_id: r.get(0)?,
                    key_name: r.get(1)?,
                    scopes: scopes
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect(),
                    csrf_token: r.get(3)?,
                })
            })
            .optional()?)
        })
        .await
    }

    async fn delete_ui_session(&self, id_hash: String) -> Result<()> {
        self.write(move |c| {
            c.prepare_cached("DELETE FROM ui_sessions WHERE id_hash = ?1")?
                .execute([id_hash])?;
            Ok(())
        })
        .await
    }

    /// Newest first, keyset-paged on `seq`. The SQL names only the filters
    /// given, so SQLite walks the matching index in order. Filters no single
    /// index covers (say a workflow, a status and a trigger type at once) are
    /// searched in growing windows of `seq` until the page is full or the time
    /// budget is spent; then `resume_before` says where the next page goes on.
    async fn search_runs(&self, f: RunSearch) -> Result<RunPage> {
        self.read(move |c| {
            let mut clauses: Vec<&str> = Vec::new();
            let mut args: Vec<Box<dyn ToSql>> = Vec::new();
            let point_lookup = f.q.is_some();
            if let Some(q) = f.q {
                // Two point lookups (unique id, indexed key) instead of an OR the
                // planner might answer with a backwards scan of all runs.
                clauses.push(
                    "seq IN (SELECT seq FROM runs WHERE id = ? \
                     UNION ALL SELECT seq FROM runs WHERE idempotency_key = ?)",
                );
                args.push(Box::new(q));
            }
            // Loop items' and parallel branches' runs show under their parent, not in
            // the list (unless asked for by trigger type or id). The clause takes one
            // parameter like the others: an empty name no run has.
            let hide_items = (f.trigger_type.is_none() && !point_lookup).then(String::new);
            for (clause, value) in [
                ("status = ?", f.status),
                ("workflow_id = ?", f.workflow_id),
                (TRIGGER_TYPE_CLAUSE, f.trigger_type),
                ("trigger_type NOT IN ('loop', 'parallel', ?)", hide_items),
            ] {
                if let Some(v) = value {
                    clauses.push(clause);
                    args.push(Box::new(v));
                }
            }
            clauses.push("seq < ?");
            clauses.push("seq >= ?");
            let mut sql = String::from(
                "SELECT seq, id, workflow_id, workflow_version, status, error, idempotency_key, \
                 created_at, started_at, completed_at, ",
            );
            sql.push_str(TRIGGER_TYPE_COLUMN);
            sql.push_str(" FROM runs");
            for (i, clause) in clauses.iter().enumerate() {
                sql.push_str(if i == 0 { " WHERE " } else { " AND " });
                // Each clause has one parameter (used once or twice): number it.
                sql.push_str(&clause.replace('?', &format!("?{}", i + 1)));
            }
            sql.push_str(&format!(" ORDER BY seq DESC LIMIT ?{}", clauses.len() + 1));
            let mut stmt = c.prepare_cached(&sql)?;
            // Two statements: SQLite answers a lone MIN or MAX from the end of
            // the primary key, but scans the table for both in one.
            let oldest: Option<i64> = c
                .prepare_cached("SELECT MIN(seq) FROM runs")?
                .query_row([], |r| r.get(0))?;
            let newest: Option<i64> = c
                .prepare_cached("SELECT MAX(seq) FROM runs")?
                .query_row([], |r| r.get(0))?;
            let (Some(oldest), Some(newest)) = (oldest, newest) else {
                return Ok(RunPage::default());
            };
            let started = std::time::Instant::now();
            let mut hi = f.before_seq.unwrap_or(i64::MAX).min(newest + 1);
            let mut window: i64 = 4096;
            let mut out = RunPage::default();
            while hi > oldest && out.runs.len() < f.limit {
                let lo = if point_lookup {
                    i64::MIN
                } else {
                    hi.saturating_sub(window)
                };
                let mut bound: Vec<&dyn ToSql> = args.iter().map(|b| b.as_ref()).collect();
                let want = (f.limit - out.runs.len()) as i64;
                bound.extend([&hi as &dyn ToSql, &lo, &want]);
                let rows = stmt.query_map(bound.as_slice(), summary_row)?;
                for row in rows {
                    let (mut run, error) = row?;
                    run.error = from_json(error)?;
                    out.runs.push(run);
                }
                hi = lo;
                window = window.saturating_mul(2);
                if out.runs.len() < f.limit && hi > oldest && started.elapsed() >= f.budget {
                    out.resume_before = Some(hi);
                    break;
                }
            }
            Ok(out)
        })
        .await
    }

    /// Runs per minute by status over the last hour, runs in flight, queue
    /// depth and duration percentiles of the hour's finished runs.
    async fn overview(&self, now: i64) -> Result<Overview> {
        self.read(move |c| {
            let since = now - HOUR_MS;
            let mut stmt = c.prepare_cached(
                "SELECT (completed_at - ?1) / 60000 AS m, status, COUNT(*) FROM runs \
                 WHERE completed_at >= ?1 GROUP BY m, status ORDER BY m",
            )?;
            let per_minute = stmt
                .query_map([since], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut stmt = c.prepare_cached(
                &format!(
"SELECT status, COUNT(*) FROM runs WHERE status IN ({}) GROUP BY status",
 unfinished_sql()
),
            )?;
            let in_flight = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let queue_depth: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM runs WHERE ready = 1 AND not_before <= ?1")?
                .query_row([now], |r| r.get(0))?;
            let finished: i64 = c
                .prepare_cached(
                    "SELECT COUNT(*) FROM runs WHERE completed_at >= ?1 AND started_at IS NOT NULL",
                )?
                .query_row([since], |r| r.get(0))?;
            let percentile = |p: f64| -> Result<Option<i64>> {
                if finished == 0 {
                    return Ok(None);
                }
                let offset = (((finished as f64) * p).ceil() as i64 - 1).max(0);
                Ok(c.prepare_cached(
                    "SELECT completed_at - started_at AS d FROM runs \
                     WHERE completed_at >= ?1 AND started_at IS NOT NULL ORDER BY d LIMIT 1 OFFSET ?2",
                )?
                .query_row(params![since, offset], |r| r.get(0))
                .optional()?)
            };
            let p50_ms = percentile(0.50)?;
            let p99_ms = percentile(0.99)?;
            Ok(Overview {
                since,
                per_minute,
                in_flight,
                queue_depth,
                p50_ms,
                p99_ms,
            })
        })
        .await
    }
}

/// How each run started (`runs_by_trigger` serves the filter in order).
const TRIGGER_TYPE_COLUMN: &str = "trigger_type";
const TRIGGER_TYPE_CLAUSE: &str = "trigger_type = ?";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ApiKeys;
    use std::time::Duration;

    /// 10 000 runs; every 7th is `failed`, every 3rd of those also `webhook`.
    async fn store_with_runs() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("f.db")).unwrap();
        store
            .write(|c| {
                c.execute_batch(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
                     INSERT INTO runs (seq, id, workflow_id, workflow_version, status, input, idempotency_key,
                                       created_at, ready, trigger_type)
                     SELECT i, printf('run_%06d', i), 'wf', 1,
                            CASE WHEN i % 7 = 0 THEN 'failed' ELSE 'completed' END, '{}',
                            CASE WHEN i % 10 = 0 THEN 'k' || i END, i, 0,
                            CASE WHEN i % 21 = 0 THEN 'webhook' ELSE 'api' END FROM n",
                )?;
                Ok(())
            })
            .await
            .unwrap();
        (dir, store)
    }

    fn search(limit: usize) -> RunSearch {
        RunSearch {
            limit,
            budget: Duration::from_secs(5),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn filters_page_newest_first_without_gaps_or_repeats() {
        let (_dir, store) = store_with_runs().await;
        let mut f = search(20);
        f.status = Some("failed".into());
        f.trigger_type = Some("webhook".into());
        // A zero budget stops after every window: paging must still find each match once.
        f.budget = Duration::ZERO;
        let mut seen = vec![];
        loop {
            let page = store.search_runs(f.clone()).await.unwrap();
            seen.extend(page.runs.iter().map(|r| r.seq));
            let next = match (page.runs.len() == f.limit, page.resume_before) {
                (true, _) => page.runs.last().map(|r| r.seq),
                (false, resume) => resume,
            };
            match next {
                Some(seq) => f.before_seq = Some(seq),
                None => break,
            }
        }
        let expected: Vec<i64> = (1..=10000).rev().filter(|i| i % 21 == 0).collect();
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn search_finds_a_run_by_id_or_by_idempotency_key() {
        let (_dir, store) = store_with_runs().await;
        for (q, seq) in [("run_000123", 123), ("k4560", 4560)] {
            let mut f = search(5);
            f.q = Some(q.into());
            let page = store.search_runs(f).await.unwrap();
            assert_eq!(page.runs.iter().map(|r| r.seq).collect::<Vec<_>>(), [seq]);
        }
        let mut f = search(5);
        f.q = Some("nothing".into());
        assert!(store.search_runs(f).await.unwrap().runs.is_empty());
    }

    #[tokio::test]
    async fn sessions_end_with_their_key() {
        let (_dir, store) = store_with_runs().await;
        store
            .create_api_key(crate::store::NewApiKey {
                id: "key_1".into(),
                name: "k".into(),
                key_hash: "h".into(),
                scopes: vec!["runs:read".into()],
            })
            .await
            .unwrap();
        store
            .create_ui_session("s".into(), "key_1".into(), "t".into(), 0, 100)
            .await
            .unwrap();
        let found = store.ui_session("s".into(), 50).await.unwrap().unwrap();
        assert_eq!(
            (found.scopes, found.csrf_token),
            (vec!["runs:read".to_string()], "t".into())
        );
        assert!(
            store.ui_session("s".into(), 100).await.unwrap().is_none(),
            "expired"
        );
        store.revoke_api_key("key_1".into()).await.unwrap();
        assert!(
            store.ui_session("s".into(), 70).await.unwrap().is_none(),
            "revoked"
        );
    }
}
