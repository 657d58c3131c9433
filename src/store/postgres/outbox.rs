//! The outbox on PostgreSQL. A run write's events are appended by one
//! statement in the write's own transaction (the writer runs it just before
//! the fenced commit, under the same fence, locking the same queue row), so
//! they cost no transaction or WAL flush of their own; the rest is the
//! `Outbox` port. Which events a write causes is `notify::commit_events`
//! (pure): both outcomes are computed here and the statement picks the one
//! the stored `started_at` calls for.

use super::{Db, PgStore, pg};
use crate::engine::{RunError, RunStatus};
use crate::notify::{self, EndpointNext, EventType, Filter, Next};
use crate::store::{
    AttemptRow, AttemptWrite, ClaimRef, DeliveryClaim, DeliveryRow, DeliveryStatus, EndpointRow,
    NewEndpoint, Outbox, Result, RunWrite, StoreError,
};
use async_trait::async_trait;
use std::sync::LazyLock;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

type Boxed = Vec<Box<dyn ToSql + Send + Sync>>;

/// Appends the events of `r(seq, id, workflow_id, was_started)`: `$4`/`$5`
/// the types and data if the run had not started, `$6`/`$7` if it had; one
/// delivery per endpoint that wants each; nothing when none does.
fn append_sql(source: &str) -> String {
    format!(
        "WITH {source}, \
         ev AS (SELECT u.type, u.data, u.n FROM r, \
           UNNEST(CASE WHEN r.was_started THEN $6::TEXT[] ELSE $4::TEXT[] END, \
                  CASE WHEN r.was_started THEN $7::TEXT[] ELSE $5::TEXT[] END) \
           WITH ORDINALITY AS u(type, data, n)), \
         wanted AS (SELECT ev.n, w.id AS endpoint_id FROM ev CROSS JOIN r JOIN webhook_endpoints w \
           ON (w.events IS NULL OR ev.type = ANY(w.events)) \
           AND (w.workflow_ids IS NULL OR r.workflow_id = ANY(w.workflow_ids))), \
         base AS (SELECT COALESCE(MAX(e.sequence), 0) AS s FROM outbox_events e, r WHERE e.subject = r.id), \
         numbered AS (SELECT ev.type, ev.data, ev.n, base.s + ROW_NUMBER() OVER (ORDER BY ev.n) AS sequence \
           FROM ev, base WHERE ev.n IN (SELECT n FROM wanted)), \
         ins AS (INSERT INTO outbox_events (id, type, subject, run_seq, sequence, occurred_at, data) \
           SELECT 'evt_' || replace(gen_random_uuid()::TEXT, '-', ''), numbered.type, r.id, r.seq, \
             numbered.sequence, flowctl_now_ms(), numbered.data FROM numbered, r \
           RETURNING seq, subject, sequence) \
         INSERT INTO webhook_deliveries (id, endpoint_id, event_seq, subject, sequence, next_at, created_at) \
         SELECT 'msg_' || replace(gen_random_uuid()::TEXT, '-', ''), wanted.endpoint_id, ins.seq, \
           ins.subject, ins.sequence, flowctl_now_ms(), flowctl_now_ms() \
         FROM ins JOIN numbered ON numbered.sequence = ins.sequence JOIN wanted ON wanted.n = numbered.n"
    )
}

/// The claimed run, under the commit's fence (`$1` seq, `$2` token, `$3` a
/// cancel is being finished), its queue row locked as the commit locks it.
static COMMIT_APPEND: LazyLock<String> = LazyLock::new(|| {
    append_sql(
        "q AS (SELECT seq FROM run_queue WHERE seq = $1 AND lease_token = $2 \
           AND lease_until IS NOT NULL AND (NOT cancel_requested OR $3) FOR UPDATE), \
         r AS (SELECT runs.seq, runs.id, runs.workflow_id, runs.started_at IS NOT NULL AS was_started \
           FROM runs JOIN q ON q.seq = runs.seq)",
    )
});

/// A run ended outside a claim (`$1` seq; `$2`, `$3` unused).
static ENDED_APPEND: LazyLock<String> = LazyLock::new(|| {
    append_sql(
        "r AS (SELECT seq, id, workflow_id, started_at IS NOT NULL AS was_started FROM runs \
           WHERE seq = $1 AND $2::BIGINT IS NOT NULL AND $3::BOOLEAN IS NOT NULL)",
    )
});

fn split(events: Vec<(EventType, serde_json::Value)>) -> (Vec<String>, Vec<String>) {
    events
        .into_iter()
        .map(|(t, d)| (t.as_str().to_string(), d.to_string()))
        .unzip()
}

/// The statement (and parameters) that appends a claimed run's commit's events.
pub(super) fn on_commit(claim: ClaimRef, w: &RunWrite) -> super::writer::Stmt {
    let (if_unstarted, if_started) = notify::commit_events(w.status, w.started_at.is_some());
    let error = RunError::to_value(&w.error);
    let snap = |events: &[EventType]| {
        split(notify::event_snapshots(
            events,
            w.status,
            w.started_at,
            w.completed_at,
            &w.output,
            &error,
        ))
    };
    let (t1, d1) = snap(&if_unstarted);
    let (t2, d2) = snap(&if_started);
    let params: Boxed = vec![
        Box::new(claim.seq),
        Box::new(claim.token),
        Box::new(w.status == RunStatus::Cancelled),
        Box::new(t1),
        Box::new(d1),
        Box::new(t2),
        Box::new(d2),
    ];
    super::writer::Stmt {
        sql: COMMIT_APPEND.as_str(),
        params,
    }
}

/// Append the event of a run that ended outside a claim (a cancel of a
/// queued or parked run), in the caller's transaction, after the update.
pub(super) async fn on_ended(db: &Db<'_, '_>, seq: i64, status: RunStatus) -> Result<()> {
    let Some(row) = db
        .query_opt(
            "SELECT started_at, completed_at, output, error FROM runs WHERE seq = $1",
            &[&seq],
        )
        .await?
    else {
        return Ok(());
    };
    let started_at: Option<i64> = row.get(0);
    let output = crate::store::columns::from_json(row.get(2))?;
    let error = crate::store::columns::from_json(row.get(3))?;
    let events = notify::run_events(notify::RunChange {
        was_started: started_at.is_some(),
        was_finished: false,
        status,
        started: started_at.is_some(),
    });
    let (t, d) = split(notify::event_snapshots(
        &events,
        status,
        started_at,
        row.get(1),
        &output,
        &error,
    ));
    db.query(&ENDED_APPEND, &[&seq, &0i64, &false, &t, &d, &t, &d])
        .await?;
    Ok(())
}

/// The events of runs a cancel ended (the run and its unfinished
/// descendants), in the cancel's transaction.
pub(super) async fn on_cancelled(db: &Db<'_, '_>, ids: &[String]) -> Result<()> {
    for id in ids {
        if let Some(row) = db
            .query_opt("SELECT seq FROM runs WHERE id = $1", &[id])
            .await?
        {
            on_ended(db, row.get(0), RunStatus::Cancelled).await?;
        }
    }
    Ok(())
}

const ENDPOINT_COLUMNS: &str = "id, url, description, events, workflow_ids, secret, enabled, \
     created_at, disabled_at, disabled_reason, failing_since";

fn endpoint_row(r: &Row) -> EndpointRow {
    EndpointRow {
        id: r.get(0),
        url: r.get(1),
        description: r.get(2),
        filter: Filter {
            events: r.get(3),
            workflow_ids: r.get(4),
        },
        secret: r.get(5),
        enabled: r.get(6),
        created_at: r.get(7),
        disabled_at: r.get(8),
        disabled_reason: r.get(9),
        failing_since: r.get(10),
    }
}

async fn endpoint_by_id(db: &Db<'_, '_>, id: &str) -> Result<EndpointRow> {
    db.query_opt(
        &format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"),
        &[&id],
    )
    .await?
    .map(|r| endpoint_row(&r))
    .ok_or(StoreError::NotFound("webhook endpoint"))
}

const DELIVERY_COLUMNS: &str = "d.seq, d.id, d.endpoint_id, e.id, e.type, d.subject, r.id, \
     d.sequence, e.occurred_at, d.status, d.attempts, d.next_at, d.created_at, d.delivered_at";
const DELIVERY_FROM: &str = "webhook_deliveries d JOIN outbox_events e ON e.seq = d.event_seq \
     LEFT JOIN runs r ON r.seq = e.run_seq";

fn delivery_row(r: &Row) -> DeliveryRow {
    let status: String = r.get(9);
    DeliveryRow {
        seq: r.get(0),
        id: r.get(1),
        endpoint_id: r.get(2),
        event_id: r.get(3),
        event_type: r.get(4),
        subject: r.get(5),
        run_id: r.get(6),
        sequence: r.get(7),
        occurred_at: r.get(8),
        status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Pending),
        attempts: r.get(10),
        next_at: r.get(11),
        created_at: r.get(12),
        delivered_at: r.get(13),
        attempt_log: vec![],
    }
}

async fn delivery_by_seq(db: &Db<'_, '_>, seq: i64) -> Result<DeliveryRow> {
    db.query_opt(
        &format!("SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_FROM} WHERE d.seq = $1"),
        &[&seq],
    )
    .await?
    .map(|r| delivery_row(&r))
    .ok_or(StoreError::NotFound("delivery"))
}

#[async_trait]
impl Outbox for PgStore {
    async fn create_endpoint(&self, e: NewEndpoint) -> Result<EndpointRow> {
        let c = self.client().await?;
        let db = Db::Client(&c);
        db.query(
            "INSERT INTO webhook_endpoints (id, url, description, events, workflow_ids, secret, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, flowctl_now_ms())",
            &[&e.id, &e.url, &e.description, &e.filter.events, &e.filter.workflow_ids, &e.secret],
        )
        .await?;
        endpoint_by_id(&db, &e.id).await
    }

    async fn list_endpoints(&self) -> Result<Vec<EndpointRow>> {
        let c = self.client().await?;
        let rows = Db::Client(&c)
            .query(
                &format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, id"
                ),
                &[],
            )
            .await?;
        Ok(rows.iter().map(endpoint_row).collect())
    }

    async fn get_endpoint(&self, id: String) -> Result<EndpointRow> {
        let c = self.client().await?;
        endpoint_by_id(&Db::Client(&c), &id).await
    }

    async fn delete_endpoint(&self, id: String) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let db = Db::Tx(&tx);
        endpoint_by_id(&db, &id).await?;
        db.query(
            "DELETE FROM webhook_attempts WHERE delivery_seq IN \
             (SELECT seq FROM webhook_deliveries WHERE endpoint_id = $1)",
            &[&id],
        )
        .await?;
        db.query(
            "DELETE FROM webhook_deliveries WHERE endpoint_id = $1",
            &[&id],
        )
        .await?;
        db.query("DELETE FROM webhook_endpoints WHERE id = $1", &[&id])
            .await?;
        tx.commit().await.map_err(pg)
    }

    async fn enable_endpoint(&self, id: String) -> Result<EndpointRow> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let db = Db::Tx(&tx);
        endpoint_by_id(&db, &id).await?;
        db.query(
            "UPDATE webhook_endpoints SET enabled = TRUE, disabled_at = NULL, disabled_reason = NULL, \
             failing_since = NULL WHERE id = $1",
            &[&id],
        )
        .await?;
        db.query(
            "UPDATE webhook_deliveries SET next_at = LEAST(next_at, flowctl_now_ms()) \
             WHERE endpoint_id = $1 AND status = 'pending'",
            &[&id],
        )
        .await?;
        let row = endpoint_by_id(&db, &id).await?;
        tx.commit().await.map_err(pg)?;
        Ok(row)
    }

    async fn list_deliveries(&self, endpoint_id: String, limit: usize) -> Result<Vec<DeliveryRow>> {
        let c = self.client().await?;
        let db = Db::Client(&c);
        endpoint_by_id(&db, &endpoint_id).await?;
        let rows = db
            .query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_FROM} WHERE d.endpoint_id = $1 \
                     ORDER BY d.seq DESC LIMIT $2"
                ),
                &[&endpoint_id, &(limit as i64)],
            )
            .await?;
        let mut out: Vec<DeliveryRow> = rows.iter().map(delivery_row).collect();
        let seqs: Vec<i64> = out.iter().map(|d| d.seq).collect();
        let attempts = db
            .query(
                "SELECT delivery_seq, at, status_code, duration_ms, response, error FROM webhook_attempts \
                 WHERE delivery_seq = ANY($1) ORDER BY delivery_seq, n",
                &[&seqs],
            )
            .await?;
        for a in attempts {
            let seq: i64 = a.get(0);
            if let Some(d) = out.iter_mut().find(|d| d.seq == seq) {
                d.attempt_log.push(AttemptRow {
                    at: a.get(1),
                    status_code: a.get(2),
                    duration_ms: a.get(3),
                    response: a.get(4),
                    error: a.get(5),
                });
            }
        }
        Ok(out)
    }

    async fn redeliver(&self, delivery_id: String) -> Result<DeliveryRow> {
        let c = self.client().await?;
        let db = Db::Client(&c);
        let seq: i64 = db
            .query_opt(
                "INSERT INTO webhook_deliveries (id, endpoint_id, event_seq, subject, sequence, next_at, created_at) \
                 SELECT $2, endpoint_id, event_seq, subject, sequence, flowctl_now_ms(), flowctl_now_ms() \
                 FROM webhook_deliveries WHERE id = $1 RETURNING seq",
                &[&delivery_id, &notify::new_id("msg")],
            )
            .await?
            .ok_or(StoreError::NotFound("delivery"))?
            .get(0);
        delivery_by_seq(&db, seq).await
    }

    async fn claim_deliveries(
        &self,
        owner: String,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<DeliveryClaim>> {
        let c = self.client().await?;
        let db = Db::Client(&c);
        // One statement: candidates locked (skipping those another node is
        // claiming), leased, and returned with what the POST needs.
        let rows = db
            .query(
                "WITH c AS (SELECT d.seq FROM webhook_deliveries d \
                   JOIN webhook_endpoints w ON w.id = d.endpoint_id AND w.enabled \
                   WHERE d.status = 'pending' AND d.next_at <= flowctl_now_ms() \
                   AND (d.lease_until IS NULL OR d.lease_until < flowctl_now_ms()) \
                   AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id \
                     AND p.subject = d.subject AND p.sequence < d.sequence AND p.status = 'pending') \
                   ORDER BY d.next_at, d.seq LIMIT $2 FOR UPDATE OF d SKIP LOCKED), \
                 u AS (UPDATE webhook_deliveries d SET lease_owner = $1, lease_until = flowctl_now_ms() + $3, \
                   lease_token = d.lease_token + 1 FROM c WHERE d.seq = c.seq RETURNING d.seq, d.lease_token) \
                 SELECT u.seq, u.lease_token, w.url, w.secret, w.failing_since, e.data \
                 FROM u JOIN webhook_deliveries d ON d.seq = u.seq \
                 JOIN webhook_endpoints w ON w.id = d.endpoint_id JOIN outbox_events e ON e.seq = d.event_seq",
                &[&owner, &(limit as i64), &lease_ms],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let seq: i64 = r.get(0);
            let delivery = delivery_by_seq(&db, seq).await?;
            let data: String = r.get(5);
            out.push(DeliveryClaim {
                delivery,
                token: r.get(1),
                url: r.get(2),
                secret: r.get(3),
                failing_since: r.get(4),
                data: crate::store::columns::from_json(Some(data))?,
            });
        }
        Ok(out)
    }

    async fn record_attempts(&self, writes: Vec<AttemptWrite>) -> Result<Vec<bool>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let db = Db::Tx(&tx);
        let mut out = Vec::with_capacity(writes.len());
        for w in &writes {
            out.push(record(&db, w).await?);
        }
        tx.commit().await.map_err(pg)?;
        Ok(out)
    }

    async fn outbox_backlog(&self) -> Result<i64> {
        let c = self.client().await?;
        Ok(Db::Client(&c)
            .query_one(
                "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'",
                &[],
            )
            .await?
            .get(0))
    }

    async fn next_delivery_due(&self) -> Result<Option<i64>> {
        let c = self.client().await?;
        Ok(Db::Client(&c)
            .query_one(
                "SELECT MIN(d.next_at) FROM webhook_deliveries d JOIN webhook_endpoints w \
                 ON w.id = d.endpoint_id AND w.enabled WHERE d.status = 'pending'",
                &[],
            )
            .await?
            .get(0))
    }
}

/// One attempt's record, in the caller's transaction (fenced by its token).
async fn record(db: &Db<'_, '_>, w: &AttemptWrite) -> Result<bool> {
    let (status, next_at, delivered_at) = match w.next {
        Next::Delivered => ("delivered", None, Some(w.attempt.at)),
        Next::RetryAt(at) => ("pending", Some(at), None),
        Next::Failed => ("failed", None, None),
    };
    let Some(row) = db
        .query_opt(
            "UPDATE webhook_deliveries SET status = $3, attempts = attempts + 1, \
             next_at = COALESCE($4, next_at), delivered_at = $5, lease_owner = NULL, lease_until = NULL \
             WHERE seq = $1 AND lease_token = $2 AND status = 'pending' RETURNING attempts",
            &[&w.seq, &w.token, &status, &next_at, &delivered_at],
        )
        .await?
    else {
        return Ok(false);
    };
    let n: i64 = row.get(0);
    db.query(
        "INSERT INTO webhook_attempts (delivery_seq, n, at, status_code, duration_ms, response, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &w.seq,
            &n,
            &w.attempt.at,
            &w.attempt.status_code,
            &w.attempt.duration_ms,
            &w.attempt.response,
            &w.attempt.error,
        ],
    )
    .await?;
    match w.endpoint {
        EndpointNext::Healthy => {
            db.query(
                "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
                &[&w.endpoint_id],
            )
            .await?;
        }
        EndpointNext::FailingSince(t) => {
            db.query(
                "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2) WHERE id = $1",
                &[&w.endpoint_id, &t],
            )
            .await?;
        }
        EndpointNext::Disable => disable(db, &w.endpoint_id, w.attempt.at).await?,
    }
    Ok(true)
}

/// Disable a failing endpoint and record `endpoint.disabled` for the
/// endpoints that want it, in the attempt's transaction.
async fn disable(db: &Db<'_, '_>, id: &str, now: i64) -> Result<()> {
    let n = db
        .query(
            "UPDATE webhook_endpoints SET enabled = FALSE, disabled_at = $2, \
             disabled_reason = 'failing for too long' WHERE id = $1 AND enabled RETURNING id",
            &[&id, &now],
        )
        .await?;
    if n.is_empty() {
        return Ok(());
    }
    let e = endpoint_by_id(db, id).await?;
    let data = notify::endpoint_data(
        &e.id,
        &e.url,
        e.description.as_deref(),
        e.failing_since,
        now,
    )
    .to_string();
    let subject = format!("endpoint:{id}");
    let kind = EventType::EndpointDisabled.as_str();
    db.query(
        "WITH wanted AS (SELECT id FROM webhook_endpoints WHERE events IS NULL OR $2 = ANY(events)), \
         ins AS (INSERT INTO outbox_events (id, type, subject, run_seq, sequence, occurred_at, data) \
           SELECT $4, $2, $1, NULL, (SELECT COALESCE(MAX(sequence), 0) + 1 FROM outbox_events WHERE subject = $1), \
             flowctl_now_ms(), $3 WHERE EXISTS (SELECT 1 FROM wanted) RETURNING seq, sequence) \
         INSERT INTO webhook_deliveries (id, endpoint_id, event_seq, subject, sequence, next_at, created_at) \
         SELECT 'msg_' || replace(gen_random_uuid()::TEXT, '-', ''), wanted.id, ins.seq, $1, ins.sequence, \
           flowctl_now_ms(), flowctl_now_ms() FROM ins, wanted",
        &[&subject, &kind, &data, &notify::new_id("evt")],
    )
    .await?;
    Ok(())
}
