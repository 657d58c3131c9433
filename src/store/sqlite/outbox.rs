//! The outbox on SQLite. `append_*` run inside the writer's transaction of
//! the run write that causes the events (so they commit with it, in the
//! same group commit: no fsync of their own); the rest is the `Outbox` port.

use super::{SqliteStore, from_json, to_json};
use crate::engine::{RunError, RunStatus};
use crate::notify::{self, EndpointNext, EventType, Filter, Next, RunChange};
use crate::store::decisions::unfinished_sql;
use crate::store::{
    AttemptRow, AttemptWrite, ClaimRef, DeliveryClaim, DeliveryRow, DeliveryStatus, EndpointRow,
    NewEndpoint, Outbox, Result, RunWrite, StoreError,
};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

/// Every endpoint's filter (few rows; read only when there is an event to place).
fn filters(c: &Connection) -> Result<Vec<(String, Filter)>> {
    let mut stmt = c.prepare_cached("SELECT id, events, workflow_ids FROM webhook_endpoints")?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(id, events, wfs)| Ok((id, filter_of(events, wfs)?)))
        .collect()
}

fn filter_of(events: Option<String>, wfs: Option<String>) -> Result<Filter> {
    let list = |s: Option<String>| -> Result<Option<Vec<String>>> {
        s.map(|s| serde_json::from_str(&s).map_err(StoreError::from))
            .transpose()
    };
    Ok(Filter {
        events: list(events)?,
        workflow_ids: list(wfs)?,
    })
}

fn any_endpoint(c: &Connection) -> Result<bool> {
    Ok(
        c.prepare_cached("SELECT EXISTS (SELECT 1 FROM webhook_endpoints)")?
            .query_row([], |r| r.get(0))?,
    )
}

/// Record `events` about `subject` (a run, or an endpoint for system
/// events) with `data`, and one delivery per endpoint that wants each;
/// nothing when none does. `sequence` continues the subject's.
fn append(
    c: &Connection,
    subject: &str,
    run_seq: Option<i64>,
    workflow_id: Option<&str>,
    events: &[(EventType, Value)],
    now: i64,
) -> Result<()> {
    let endpoints = filters(c)?;
    let mut sequence: Option<i64> = None;
    for (event, data) in events {
        let wanting: Vec<&String> = endpoints
            .iter()
            .filter(|(_, f)| f.wants(event.as_str(), workflow_id))
            .map(|(id, _)| id)
            .collect();
        if wanting.is_empty() {
            continue;
        }
        let seq_no = match sequence {
            Some(s) => s + 1,
            None => c
                .prepare_cached(
                    "SELECT COALESCE(MAX(sequence), 0) + 1 FROM outbox_events WHERE subject = ?1",
                )?
                .query_row([subject], |r| r.get(0))?,
        };
        sequence = Some(seq_no);
        c.prepare_cached(
            "INSERT INTO outbox_events (id, type, subject, run_seq, sequence, occurred_at, data) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            notify::new_id("evt"),
            event.as_str(),
            subject,
            run_seq,
            seq_no,
            now,
            to_json(data)
        ])?;
        let event_seq = c.last_insert_rowid();
        let mut put = c.prepare_cached(
            "INSERT INTO webhook_deliveries (id, endpoint_id, event_seq, subject, sequence, next_at, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        )?;
        for endpoint in wanting {
            put.execute(params![
                notify::new_id("msg"),
                endpoint,
                event_seq,
                subject,
                seq_no,
                now
            ])?;
        }
    }
    Ok(())
}

/// The events of a claimed run's commit, appended before its fenced update
/// in the same transaction and under the same fence (the writer thread is
/// alone, so the update that follows sees the same row). A refused commit
/// finds no row here either, and appends nothing.
pub(super) fn on_commit(c: &Connection, claim: ClaimRef, w: &RunWrite, now: i64) -> Result<()> {
    if !any_endpoint(c)? {
        return Ok(());
    }
    let prior: Option<(String, String, Option<i64>)> = c
        .prepare_cached(&format!(
            "SELECT id, workflow_id, started_at FROM runs WHERE seq = ?1 AND lease_token = ?2 \
             AND ready = 0 AND status IN ({}) AND (cancel_requested = 0 OR ?3)",
            unfinished_sql()
        ))?
        .query_row(
            params![claim.seq, claim.token, w.status == RunStatus::Cancelled],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((run_id, workflow_id, stored_started)) = prior else {
        return Ok(());
    };
    // The update keeps a stored `started_at` (COALESCE), so does this.
    let started_at = stored_started.or(w.started_at);
    let events = notify::run_events(RunChange {
        was_started: stored_started.is_some(),
        was_finished: false,
        status: w.status,
        started: started_at.is_some(),
    });
    if events.is_empty() {
        return Ok(());
    }
    let events = notify::event_snapshots(
        &events,
        w.status,
        started_at,
        w.completed_at,
        &w.output,
        &RunError::to_value(&w.error),
    );
    append(
        c,
        &run_id,
        Some(claim.seq),
        Some(&workflow_id),
        &events,
        now,
    )
}

/// The event of a run ended outside a claim (a cancel of a queued or parked
/// run, its children's cancel), after the update in the same transaction
/// (which leaves `started_at` as it was).
pub(super) fn on_ended(c: &Connection, seq: i64, status: RunStatus, now: i64) -> Result<()> {
    if !any_endpoint(c)? {
        return Ok(());
    }
    type Row = (
        String,
        String,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<String>,
    );
    let row: Option<Row> = c
        .prepare_cached(
            "SELECT id, workflow_id, started_at, completed_at, output, error FROM runs WHERE seq = ?1",
        )?
        .query_row([seq], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .optional()?;
    let Some((run_id, workflow_id, started_at, completed_at, output, error)) = row else {
        return Ok(());
    };
    let events = notify::run_events(RunChange {
        was_started: started_at.is_some(),
        was_finished: false,
        status,
        started: started_at.is_some(),
    });
    let events = notify::event_snapshots(
        &events,
        status,
        started_at,
        completed_at,
        &from_json(output)?,
        &from_json(error)?,
    );
    append(c, &run_id, Some(seq), Some(&workflow_id), &events, now)
}

const ENDPOINT_COLUMNS: &str = "id, url, description, events, workflow_ids, secret, enabled, \
     created_at, disabled_at, disabled_reason, failing_since";

type RawEndpoint = (EndpointRow, Option<String>, Option<String>);

fn endpoint_row(r: &rusqlite::Row) -> rusqlite::Result<RawEndpoint> {
    Ok((
        EndpointRow {
            id: r.get(0)?,
            url: r.get(1)?,
            description: r.get(2)?,
            filter: Filter::default(),
            secret: r.get(5)?,
            enabled: r.get::<_, i64>(6)? != 0,
            created_at: r.get(7)?,
            disabled_at: r.get(8)?,
            disabled_reason: r.get(9)?,
            failing_since: r.get(10)?,
        },
        r.get(3)?,
        r.get(4)?,
    ))
}

fn endpoint_decode((mut e, events, wfs): RawEndpoint) -> Result<EndpointRow> {
    e.filter = filter_of(events, wfs)?;
    Ok(e)
}

fn endpoint_by_id(c: &Connection, id: &str) -> Result<EndpointRow> {
    let raw = c
        .prepare_cached(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?1"
        ))?
        .query_row([id], endpoint_row)
        .optional()?
        .ok_or(StoreError::NotFound("webhook endpoint"))?;
    endpoint_decode(raw)
}

const DELIVERY_COLUMNS: &str = "d.seq, d.id, d.endpoint_id, e.id, e.type, d.subject, r.id, \
     d.sequence, e.occurred_at, d.status, d.attempts, d.next_at, d.created_at, d.delivered_at";
const DELIVERY_FROM: &str = "webhook_deliveries d JOIN outbox_events e ON e.seq = d.event_seq \
     LEFT JOIN runs r ON r.seq = e.run_seq";

fn delivery_row(r: &rusqlite::Row) -> rusqlite::Result<DeliveryRow> {
    let status: String = r.get(9)?;
    Ok(DeliveryRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        endpoint_id: r.get(2)?,
        event_id: r.get(3)?,
        event_type: r.get(4)?,
        subject: r.get(5)?,
        run_id: r.get(6)?,
        sequence: r.get(7)?,
        occurred_at: r.get(8)?,
        status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Pending),
        attempts: r.get(10)?,
        next_at: r.get(11)?,
        created_at: r.get(12)?,
        delivered_at: r.get(13)?,
        attempt_log: vec![],
    })
}

fn attempts_of(c: &Connection, delivery_seq: i64) -> Result<Vec<AttemptRow>> {
    Ok(c.prepare_cached(
        "SELECT at, status_code, duration_ms, response, error FROM webhook_attempts \
         WHERE delivery_seq = ?1 ORDER BY n",
    )?
    .query_map([delivery_seq], |r| {
        Ok(AttemptRow {
            at: r.get(0)?,
            status_code: r.get(1)?,
            duration_ms: r.get(2)?,
            response: r.get(3)?,
            error: r.get(4)?,
        })
    })?
    .collect::<rusqlite::Result<Vec<_>>>()?)
}

fn delivery_by(c: &Connection, clause: &str, key: &dyn rusqlite::ToSql) -> Result<DeliveryRow> {
    c.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_FROM} WHERE {clause}"
    ))?
    .query_row([key], delivery_row)
    .optional()?
    .ok_or(StoreError::NotFound("delivery"))
}

/// Due and claimable: see `Outbox::claim_deliveries`.
const DUE: &str = "d.status = 'pending' AND d.next_at <= ?1 \
     AND (d.lease_until IS NULL OR d.lease_until < ?1) \
     AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.id = d.endpoint_id AND w.enabled = 1) \
     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id \
       AND p.subject = d.subject AND p.sequence < d.sequence AND p.status = 'pending')";

#[async_trait]
impl Outbox for SqliteStore {
    async fn create_endpoint(&self, e: NewEndpoint) -> Result<EndpointRow> {
        let now = crate::time::now_ms();
        self.write(move |c| {
            let list = |l: &Option<Vec<String>>| l.as_ref().map(|l| Value::from(l.clone()).to_string());
            c.execute(
                "INSERT INTO webhook_endpoints (id, url, description, events, workflow_ids, secret, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    e.id,
                    e.url,
                    e.description,
                    list(&e.filter.events),
                    list(&e.filter.workflow_ids),
                    e.secret,
                    now
                ],
            )?;
            endpoint_by_id(c, &e.id)
        })
        .await
    }

    async fn list_endpoints(&self) -> Result<Vec<EndpointRow>> {
        self.read(|c| {
            let raw = c
                .prepare_cached(&format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, id"
                ))?
                .query_map([], endpoint_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            raw.into_iter().map(endpoint_decode).collect()
        })
        .await
    }

    async fn get_endpoint(&self, id: String) -> Result<EndpointRow> {
        self.read(move |c| endpoint_by_id(c, &id)).await
    }

    async fn delete_endpoint(&self, id: String) -> Result<()> {
        self.write(move |c| {
            endpoint_by_id(c, &id)?;
            c.execute(
                "DELETE FROM webhook_attempts WHERE delivery_seq IN \
                 (SELECT seq FROM webhook_deliveries WHERE endpoint_id = ?1)",
                [&id],
            )?;
            c.execute(
                "DELETE FROM webhook_deliveries WHERE endpoint_id = ?1",
                [&id],
            )?;
            c.execute("DELETE FROM webhook_endpoints WHERE id = ?1", [&id])?;
            Ok(())
        })
        .await
    }

    async fn enable_endpoint(&self, id: String) -> Result<EndpointRow> {
        let now = crate::time::now_ms();
        self.write(move |c| {
            endpoint_by_id(c, &id)?;
            c.execute(
                "UPDATE webhook_endpoints SET enabled = 1, disabled_at = NULL, disabled_reason = NULL, \
                 failing_since = NULL WHERE id = ?1",
                [&id],
            )?;
            c.execute(
                "UPDATE webhook_deliveries SET next_at = MIN(next_at, ?2) \
                 WHERE endpoint_id = ?1 AND status = 'pending'",
                params![id, now],
            )?;
            endpoint_by_id(c, &id)
        })
        .await
    }

    async fn list_deliveries(&self, endpoint_id: String, limit: usize) -> Result<Vec<DeliveryRow>> {
        self.read(move |c| {
            endpoint_by_id(c, &endpoint_id)?;
            let mut rows = c
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_FROM} WHERE d.endpoint_id = ?1 \
                     ORDER BY d.seq DESC LIMIT ?2"
                ))?
                .query_map(params![endpoint_id, limit as i64], delivery_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for d in &mut rows {
                d.attempt_log = attempts_of(c, d.seq)?;
            }
            Ok(rows)
        })
        .await
    }

    async fn redeliver(&self, delivery_id: String) -> Result<DeliveryRow> {
        let now = crate::time::now_ms();
        self.write(move |c| {
            let old: Option<(String, i64, String, i64)> = c
                .prepare_cached(
                    "SELECT endpoint_id, event_seq, subject, sequence FROM webhook_deliveries WHERE id = ?1",
                )?
                .query_row([&delivery_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()?;
            let (endpoint, event_seq, subject, sequence) =
                old.ok_or(StoreError::NotFound("delivery"))?;
            let id = notify::new_id("msg");
            c.prepare_cached(
                "INSERT INTO webhook_deliveries (id, endpoint_id, event_seq, subject, sequence, next_at, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            )?
            .execute(params![id, endpoint, event_seq, subject, sequence, now])?;
            delivery_by(c, "d.id = ?1", &id)
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        owner: String,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<DeliveryClaim>> {
        let now = crate::time::now_ms();
        // Only the lease is taken on the writer thread (it is every run's
        // bottleneck); what the POST needs is read afterwards on a reader.
        let leased: Vec<(i64, i64)> = self
            .write(move |c| {
                let picked: Vec<i64> = c
                    .prepare_cached(&format!(
                        "SELECT d.seq FROM webhook_deliveries d WHERE {DUE} ORDER BY d.next_at, d.seq LIMIT ?2"
                    ))?
                    .query_map(params![now, limit as i64], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let mut mark = c.prepare_cached(
                    "UPDATE webhook_deliveries SET lease_owner = ?2, lease_until = ?3, \
                     lease_token = lease_token + 1 WHERE seq = ?1 RETURNING lease_token",
                )?;
                let mut out = Vec::with_capacity(picked.len());
                for seq in picked {
                    let token: i64 = mark.query_row(params![seq, owner, now + lease_ms], |r| r.get(0))?;
                    out.push((seq, token));
                }
                Ok(out)
            })
            .await?;
        if leased.is_empty() {
            return Ok(vec![]);
        }
        self.read(move |c| {
            let mut out = Vec::with_capacity(leased.len());
            for (seq, token) in leased {
                let delivery = delivery_by(c, "d.seq = ?1", &seq)?;
                let (url, secret, failing_since, data): (String, Vec<u8>, Option<i64>, String) = c
                    .prepare_cached(
                        "SELECT w.url, w.secret, w.failing_since, e.data FROM webhook_deliveries d \
                         JOIN webhook_endpoints w ON w.id = d.endpoint_id \
                         JOIN outbox_events e ON e.seq = d.event_seq WHERE d.seq = ?1",
                    )?
                    .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
                out.push(DeliveryClaim {
                    delivery,
                    token,
                    url,
                    secret,
                    data: from_json(Some(data))?,
                    failing_since,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn record_attempts(&self, writes: Vec<AttemptWrite>) -> Result<Vec<bool>> {
        self.write(move |c| writes.iter().map(|w| record(c, w)).collect())
            .await
    }

    async fn outbox_backlog(&self) -> Result<i64> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'",
            )?
            .query_row([], |r| r.get(0))?)
        })
        .await
    }

    async fn next_delivery_due(&self) -> Result<Option<i64>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT MIN(d.next_at) FROM webhook_deliveries d JOIN webhook_endpoints w \
                 ON w.id = d.endpoint_id AND w.enabled = 1 WHERE d.status = 'pending'",
            )?
            .query_row([], |r| r.get(0))?)
        })
        .await
    }
}

/// One attempt's record, in the writer's transaction (fenced by its token).
fn record(c: &Connection, w: &AttemptWrite) -> Result<bool> {
    let (status, next_at, delivered_at) = match w.next {
        Next::Delivered => ("delivered", None, Some(w.attempt.at)),
        Next::RetryAt(at) => ("pending", Some(at), None),
        Next::Failed => ("failed", None, None),
    };
    let n = c
        .prepare_cached(
            "UPDATE webhook_deliveries SET status = ?3, attempts = attempts + 1, \
             next_at = COALESCE(?4, next_at), delivered_at = ?5, lease_owner = NULL, lease_until = NULL \
             WHERE seq = ?1 AND lease_token = ?2 AND status = 'pending' RETURNING attempts",
        )?
        .query_row(params![w.seq, w.token, status, next_at, delivered_at], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?;
    let Some(n) = n else {
        return Ok(false);
    };
    c.prepare_cached(
        "INSERT INTO webhook_attempts (delivery_seq, n, at, status_code, duration_ms, response, error) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        w.seq,
        n,
        w.attempt.at,
        w.attempt.status_code,
        w.attempt.duration_ms,
        w.attempt.response,
        w.attempt.error
    ])?;
    match w.endpoint {
        EndpointNext::Healthy => {
            c.prepare_cached(
                "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ?1 AND failing_since IS NOT NULL",
            )?
            .execute([&w.endpoint_id])?;
        }
        EndpointNext::FailingSince(t) => {
            c.prepare_cached(
                "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, ?2) WHERE id = ?1",
            )?
            .execute(params![w.endpoint_id, t])?;
        }
        EndpointNext::Disable => disable(c, &w.endpoint_id, w.attempt.at)?,
    }
    Ok(true)
}

/// Disable a failing endpoint and record `endpoint.disabled` (for the other
/// endpoints that want it), in the attempt's transaction.
fn disable(c: &Connection, id: &str, now: i64) -> Result<()> {
    let n = c.execute(
        "UPDATE webhook_endpoints SET enabled = 0, disabled_at = ?2, \
         disabled_reason = 'failing for too long' WHERE id = ?1 AND enabled = 1",
        params![id, now],
    )?;
    if n == 0 {
        return Ok(());
    }
    let e = endpoint_by_id(c, id)?;
    let data = notify::endpoint_data(
        &e.id,
        &e.url,
        e.description.as_deref(),
        e.failing_since,
        now,
    );
    // The disabled endpoint itself gets nothing more until it is enabled.
    let subject = format!("endpoint:{id}");
    append(
        c,
        &subject,
        None,
        None,
        &[(EventType::EndpointDisabled, data)],
        now,
    )
}

impl SqliteStore {
    /// Start-up recovery for a server holding the file lock: no other
    /// process holds a delivery, so every lease is dropped at once.
    pub async fn release_all_deliveries(&self) -> Result<usize> {
        self.write(|c| {
            Ok(c.execute(
                "UPDATE webhook_deliveries SET lease_owner = NULL, lease_until = NULL, \
                 lease_token = lease_token + 1 WHERE status = 'pending' AND lease_until IS NOT NULL",
                [],
            )?)
        })
        .await
    }
}
