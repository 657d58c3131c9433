//! The web dashboard's reads and writes on PostgreSQL: its sessions (stored
//! as hashes, alive while their API key is), the filtered run list with
//! keyset paging on `seq`, and the overview's figures. The planner walks the
//! `seq`-ordered indexes for the run list, so no time budget is needed here
//! (`resume_before` stays `None`).

use super::{Db, PgStore, from_json};
use crate::store::Dashboard;
use crate::store::decisions::unfinished_sql;
use crate::store::{Overview, Result, RunPage, RunSearch, RunSummary, UiSession};
use async_trait::async_trait;
use tokio_postgres::types::ToSql;

const HOUR_MS: i64 = 60 * 60 * 1000;

#[async_trait]
impl Dashboard for PgStore {
    async fn create_ui_session(
        &self,
        id_hash: String,
        key_id: String,
        csrf_token: String,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        let c = self.client().await?;
        let db = Db::Client(&c);
        db.query(
            "DELETE FROM ui_sessions WHERE id_hash IN \
             (SELECT id_hash FROM ui_sessions WHERE expires_at <= $1 LIMIT 100)",
            &[&now],
        )
        .await?;
        db.query(
            "INSERT INTO ui_sessions (id_hash, key_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[&id_hash, &key_id, &csrf_token, &now, &expires_at],
        )
        .await?;
        Ok(())
    }

    async fn ui_session(&self, id_hash: String, now: i64) -> Result<Option<UiSession>> {
        let c = self.client().await?;
        let row = Db::Client(&c)
            .query_opt(
                "SELECT s.key_id, k.name, k.scopes, s.csrf_token FROM ui_sessions s \
                 JOIN api_keys k ON k.id = s.key_id \
                 WHERE s.id_hash = $1 AND s.expires_at > $2 AND k.revoked_at IS NULL",
                &[&id_hash, &now],
            )
            .await?;
        Ok(row.map(|r| {
            let scopes: String = r.get(2);
            UiSession {
                key_id: r.get(0),
                key_name: r.get(1),
                scopes: scopes
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                csrf_token: r.get(3),
            }
        }))
    }

    async fn delete_ui_session(&self, id_hash: String) -> Result<()> {
        let c = self.client().await?;
        Db::Client(&c)
            .query("DELETE FROM ui_sessions WHERE id_hash = $1", &[&id_hash])
            .await?;
        Ok(())
    }

    /// Newest first, keyset-paged on `seq`; the SQL names only the filters given.
    async fn search_runs(&self, f: RunSearch) -> Result<RunPage> {
        let mut clauses: Vec<String> = Vec::new();
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        if let Some(q) = f.q {
            args.push(Box::new(q));
            let n = args.len();
            clauses.push(format!(
                "seq IN (SELECT seq FROM runs WHERE id = ${n} \
                 UNION ALL SELECT seq FROM runs WHERE idempotency_key = ${n})"
            ));
        }
        for (column, value) in [
            ("status", f.status),
            ("workflow_id", f.workflow_id),
            ("trigger_type", f.trigger_type),
        ] {
            if let Some(v) = value {
                args.push(Box::new(v));
                clauses.push(format!("{column} = ${}", args.len()));
            }
        }
        if let Some(before) = f.before_seq {
            args.push(Box::new(before));
            clauses.push(format!("seq < ${}", args.len()));
        }
        let limit = i64::try_from(f.limit).unwrap_or(i64::MAX);
        args.push(Box::new(limit));
        let mut sql = String::from(
            "SELECT seq, id, workflow_id, workflow_version, status, error, idempotency_key, \
             created_at, started_at, completed_at, trigger_type FROM runs",
        );
        for (i, clause) in clauses.iter().enumerate() {
            sql.push_str(if i == 0 { " WHERE " } else { " AND " });
            sql.push_str(clause);
        }
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", args.len()));
        let params: Vec<&(dyn ToSql + Sync)> = args
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let c = self.client().await?;
        let rows = Db::Client(&c).query(&sql, &params).await?;
        let mut out = RunPage::default();
        for r in rows {
            out.runs.push(RunSummary {
                seq: r.get(0),
                id: r.get(1),
                workflow_id: r.get(2),
                workflow_version: r.get(3),
                status: r.get(4),
                error: from_json(r.get(5))?,
                idempotency_key: r.get(6),
                created_at: r.get(7),
                started_at: r.get(8),
                completed_at: r.get(9),
                trigger_type: r.get(10),
            });
        }
        Ok(out)
    }

    /// Runs per minute by status over the last hour, runs in flight, queue
    /// depth and duration percentiles of the hour's finished runs.
    async fn overview(&self, now: i64) -> Result<Overview> {
        let since = now - HOUR_MS;
        let c = self.client().await?;
        let db = Db::Client(&c);
        let per_minute = db
            .query(
                "SELECT (completed_at - $1) / 60000 AS m, status, COUNT(*) FROM runs \
                 WHERE completed_at >= $1 GROUP BY m, status ORDER BY m",
                &[&since],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let in_flight = db
            .query(
                &format!(
                    "SELECT status, COUNT(*) FROM runs WHERE status IN ({}) \
                 GROUP BY status",
                    unfinished_sql()
                ),
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let queue_depth: i64 = db
            .query_one(
                "SELECT COUNT(*) FROM run_queue WHERE lease_until IS NULL AND not_before <= $1",
                &[&now],
            )
            .await?
            .get(0);
        let p = db
            .query_one(
                "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY completed_at - started_at), \
                 percentile_disc(0.99) WITHIN GROUP (ORDER BY completed_at - started_at) \
                 FROM runs WHERE completed_at >= $1 AND started_at IS NOT NULL",
                &[&since],
            )
            .await?;
        Ok(Overview {
            since,
            per_minute,
            in_flight,
            queue_depth,
            p50_ms: p.get(0),
            p99_ms: p.get(1),
        })
    }
}
