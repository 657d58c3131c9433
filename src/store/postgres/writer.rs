//! The node's write path on PostgreSQL: group commit. Keyless trigger
//! inserts and fenced run commits are queued to a writer task, which takes
//! every command waiting (up to `MAX_BATCH`), sends them pipelined on one
//! connection inside one transaction (`BEGIN`, the lock of the queue rows
//! when a commit ends a run, one multi-row insert for all the triggers, one
//! fenced statement per commit and the statements that follow it — a child
//! spawned, a finished child recorded on its parent —, `COMMIT`: one round
//! trip and one WAL flush for the whole batch) and answers each caller once
//! the transaction committed. A stale fencing token is not an error: that
//! command's statement matches nothing and only its caller hears so. A
//! statement that fails aborts the transaction, so the batch is then run
//! again one command per transaction, and only the failing command fails.
//! Durability is unchanged: nobody is answered before `COMMIT` returned.

use super::{Result, StoreError, pg};
use deadpool_postgres::{Object, Pool};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// Commands in one transaction at most.
const MAX_BATCH: usize = 256;

/// A trigger without idempotency key or schedule occurrence: its run and
/// queue row.
pub(super) struct InsertCmd {
    pub id: String,
    pub workflow_id: String,
    pub workflow_version: i64,
    pub input: String,
    pub connection_id: Option<String>,
    pub trigger_type: &'static str,
    pub delay_ms: i64,
}

/// A claimed run's new state; `sql` is one of `queue::COMMIT_SQL`, chosen by
/// what happens to the queue row, and the parameters are its `$1…$18`.
pub(super) struct CommitCmd {
    /// The run's queue row, which the statement locks first.
    pub seq: i64,
    pub sql: &'static str,
    pub params: Vec<Box<dyn ToSql + Send + Sync>>,
    /// Statements after the commit's own, in its transaction (a child run
    /// created, a finished child recorded on its parent). Each one checks
    /// for itself that it applies, so it changes nothing when the fence
    /// refused the commit.
    pub then: Vec<Stmt>,
    /// The run ends: its waiting parent's queue row, which `then` may
    /// update, is locked at the start of the batch, in `seq` order with the
    /// batch's own rows.
    pub lock_parent: bool,
}

/// One more statement of a commit's transaction.
pub(super) struct Stmt {
    pub sql: &'static str,
    pub params: Vec<Box<dyn ToSql + Send + Sync>>,
}

/// Locks, in `seq` order, the queue rows of a batch's commits and of the
/// waiting parents of the runs it ends (`$1` every commit's run, `$2` those
/// that end), so the parent of a child that finishes is never locked after
/// a row with a higher `seq`: the one lock order of the store.
const LOCK_SQL: &str = "SELECT q.seq FROM run_queue q WHERE q.seq IN (SELECT UNNEST($1::BIGINT[]) \
       UNION SELECT p.seq FROM runs k JOIN runs p ON p.id = k.parent_run_id \
       WHERE k.seq = ANY($2::BIGINT[]) AND k.parent_waits) \
     ORDER BY q.seq FOR UPDATE OF q";

enum Cmd {
    /// Answered with the run's `(seq, created_at)`.
    Insert(InsertCmd, oneshot::Sender<Result<(i64, i64)>>),
    /// Answered with the run id when saved, `None` when the fence refused it.
    Commit(CommitCmd, oneshot::Sender<Result<Option<String>>>),
}

const INSERT_SQL: &str = "WITH u AS (SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], \
       $5::TEXT[], $6::TEXT[], $7::BIGINT[]) WITH ORDINALITY \
       AS u(id, workflow_id, workflow_version, input, connection_id, trigger_type, delay_ms, n)), \
     r AS (INSERT INTO runs (id, workflow_id, workflow_version, status, input, connection_id, created_at, trigger_type) \
       SELECT id, workflow_id, workflow_version, 'pending', input, connection_id, flowctl_now_ms(), trigger_type \
       FROM u ORDER BY n RETURNING seq, id, workflow_id, created_at), \
     q AS (INSERT INTO run_queue (seq, workflow_id, not_before) \
       SELECT r.seq, r.workflow_id, r.created_at + u.delay_ms FROM r JOIN u ON u.id = r.id) \
     SELECT id, seq, created_at FROM r";

#[derive(Clone)]
pub(super) struct Writer {
    tx: mpsc::UnboundedSender<Cmd>,
    /// Batches written so far (the tests check that writes share them).
    #[cfg_attr(not(test), allow(dead_code))]
    batches: Arc<AtomicU64>,
}

impl Writer {
    /// Start `tasks` writer tasks sharing one queue (each runs one batch at
    /// a time, so at most `tasks` pool connections are writing).
    pub fn start(pool: Pool, tasks: usize) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        let batches = Arc::new(AtomicU64::new(0));
        for _ in 0..tasks.max(1) {
            tokio::spawn(write_loop(pool.clone(), rx.clone(), batches.clone()));
        }
        Writer { tx, batches }
    }

    #[cfg(test)]
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    pub async fn insert(&self, cmd: InsertCmd) -> Result<(i64, i64)> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Insert(cmd, tx))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    pub async fn commit(&self, cmd: CommitCmd) -> Result<Option<String>> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Commit(cmd, tx))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

async fn write_loop(
    pool: Pool,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Cmd>>>,
    batches: Arc<AtomicU64>,
) {
    loop {
        let mut batch = Vec::new();
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(cmd) => batch.push(cmd),
                None => return,
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
        }
        let client = match pool.get().await {
            Ok(c) => c,
            Err(e) => {
                let e = super::pool(e);
                for cmd in batch {
                    answer_err(cmd, &e);
                }
                continue;
            }
        };
        batches.fetch_add(1, Ordering::Relaxed);
        write_batch(&client, batch).await;
    }
}

/// Write the batch in one transaction, or (when a statement failed) each
/// command in a transaction of its own.
async fn write_batch(client: &Object, batch: Vec<Cmd>) {
    let mut inserts = vec![];
    let mut commits = vec![];
    for cmd in batch {
        match cmd {
            Cmd::Insert(c, reply) => inserts.push((c, reply)),
            Cmd::Commit(c, reply) => commits.push((c, reply)),
        }
    }
    // Row locks are taken in one order everywhere (queue rows by `seq`, as
    // the heartbeat, release and sweep take them), so a batch never
    // deadlocks with them or with another writer's batch.
    commits.sort_by_key(|(c, _)| c.seq);
    let ins: Vec<&InsertCmd> = inserts.iter().map(|(c, _)| c).collect();
    let com: Vec<&CommitCmd> = commits.iter().map(|(c, _)| c).collect();
    match run(client, &ins, &com).await {
        Ok((inserted, committed)) => {
            for ((_, reply), ids) in inserts.into_iter().zip(inserted) {
                let _ = reply.send(Ok(ids));
            }
            for ((_, reply), id) in commits.into_iter().zip(committed) {
                let _ = reply.send(Ok(id));
            }
        }
        Err(e) if ins.len() + com.len() == 1 || matches!(e, StoreError::Unavailable(_)) => {
            // Alone already, or the database is gone: nothing to isolate.
            for (_, reply) in inserts {
                let _ = reply.send(Err(dup(&e)));
            }
            for (_, reply) in commits {
                let _ = reply.send(Err(dup(&e)));
            }
        }
        Err(_) => {
            for (c, reply) in inserts {
                let r = run(client, &[&c], &[]).await.map(|(mut i, _)| i.remove(0));
                let _ = reply.send(r);
            }
            for (c, reply) in commits {
                let r = run(client, &[], &[&c]).await.map(|(_, mut c)| c.remove(0));
                let _ = reply.send(r);
            }
        }
    }
}

pub(super) type Rows = std::result::Result<Vec<Row>, tokio_postgres::Error>;
pub(super) type Pending<'a> = Pin<Box<dyn Future<Output = Rows> + Send + 'a>>;

/// One transaction: the inserts as one statement, each commit as one, all
/// sent before the first answer comes back. A single statement needs no
/// `BEGIN`/`COMMIT` (it is atomic on its own).
async fn run(
    client: &Object,
    inserts: &[&InsertCmd],
    commits: &[&CommitCmd],
) -> Result<(Vec<(i64, i64)>, Vec<Option<String>>)> {
    // Prepared (and cached on the connection) before the pipeline starts,
    // so nothing in it waits for an answer before sending the next message.
    let insert_stmt = match inserts.is_empty() {
        true => None,
        false => Some(client.prepare_cached(INSERT_SQL).await.map_err(pg)?),
    };
    let lock_stmt = match commits.iter().any(|c| c.lock_parent) {
        false => None,
        true => Some(client.prepare_cached(LOCK_SQL).await.map_err(pg)?),
    };
    let all_seqs: Vec<i64> = commits.iter().map(|c| c.seq).collect();
    let ending: Vec<i64> = commits
        .iter()
        .filter(|c| c.lock_parent)
        .map(|c| c.seq)
        .collect();
    let lock_params: [&(dyn ToSql + Sync); 2] = [&all_seqs, &ending];
    // Each commit's statement, then the statements that follow it.
    let mut commit_stmts = Vec::with_capacity(commits.len());
    for c in commits {
        let mut stmts = vec![client.prepare_cached(c.sql).await.map_err(pg)?];
        for t in &c.then {
            stmts.push(client.prepare_cached(t.sql).await.map_err(pg)?);
        }
        commit_stmts.push(stmts);
    }
    let ids: Vec<&str> = inserts.iter().map(|c| c.id.as_str()).collect();
    let wfs: Vec<&str> = inserts.iter().map(|c| c.workflow_id.as_str()).collect();
    let versions: Vec<i64> = inserts.iter().map(|c| c.workflow_version).collect();
    let inputs: Vec<&str> = inserts.iter().map(|c| c.input.as_str()).collect();
    let conns: Vec<Option<&str>> = inserts.iter().map(|c| c.connection_id.as_deref()).collect();
    let types: Vec<&str> = inserts.iter().map(|c| c.trigger_type).collect();
    let delays: Vec<i64> = inserts.iter().map(|c| c.delay_ms).collect();
    let insert_params: [&(dyn ToSql + Sync); 7] =
        [&ids, &wfs, &versions, &inputs, &conns, &types, &delays];
    // Per commit: its own statement's parameters, then each `then`'s.
    let commit_params: Vec<Vec<Vec<&(dyn ToSql + Sync)>>> = commits
        .iter()
        .map(|c| {
            std::iter::once(as_params(&c.params))
                .chain(c.then.iter().map(|t| as_params(&t.params)))
                .collect()
        })
        .collect();

    let statements = usize::from(lock_stmt.is_some())
        + usize::from(insert_stmt.is_some())
        + commit_stmts.iter().map(Vec::len).sum::<usize>();
    let wrapped = statements > 1;
    let c: &tokio_postgres::Client = client;
    let mut pipeline: Vec<Pending<'_>> = vec![];
    if wrapped {
        pipeline.push(Box::pin(async move {
            c.batch_execute("BEGIN").await.map(|_| vec![])
        }));
    }
    if let Some(s) = &lock_stmt {
        pipeline.push(Box::pin(c.query(s, &lock_params)));
    }
    if let Some(s) = &insert_stmt {
        pipeline.push(Box::pin(c.query(s, &insert_params)));
    }
    for (stmts, params) in commit_stmts.iter().zip(&commit_params) {
        for (s, p) in stmts.iter().zip(params) {
            pipeline.push(Box::pin(c.query(s, p)));
        }
    }
    if wrapped {
        pipeline.push(Box::pin(async move {
            c.batch_execute("COMMIT").await.map(|_| vec![])
        }));
    }
    let mut answers = in_order(pipeline).await.into_iter();
    // After a failed statement the server answers `COMMIT` with a rollback,
    // so every answer is checked before the batch counts as written. (A
    // statement that fails before it is sent, on encoding its parameters,
    // would not abort the transaction; the parameter types are fixed by
    // the statements above, so that cannot happen at run time.)
    let mut first_error = None;
    let mut results: Vec<Vec<Row>> = vec![];
    if wrapped && let Some(Err(e)) = answers.next() {
        first_error.get_or_insert(e);
    }
    for a in answers.by_ref().take(statements) {
        match a {
            Ok(rows) => results.push(rows),
            Err(e) => {
                first_error.get_or_insert(e);
                results.push(vec![]);
            }
        }
    }
    if let Some(Err(e)) = answers.next() {
        first_error.get_or_insert(e);
    }
    if let Some(e) = first_error {
        return Err(pg(e));
    }
    let mut results = results.into_iter();
    if lock_stmt.is_some() {
        results.next();
    }
    let mut inserted = Vec::with_capacity(inserts.len());
    if insert_stmt.is_some() {
        let rows = results.next().unwrap_or_default();
        let by_id: std::collections::HashMap<String, (i64, i64)> = rows
            .iter()
            .map(|r| (r.get::<_, String>(0), (r.get(1), r.get(2))))
            .collect();
        for c in inserts {
            let ids = by_id
                .get(&c.id)
                .copied()
                .ok_or_else(|| StoreError::Backend(format!("run {} was not inserted", c.id)))?;
            inserted.push(ids);
        }
    }
    // A commit's answer is its own statement's; what its `then` returned is not needed.
    let mut committed = Vec::with_capacity(commits.len());
    for stmts in &commit_stmts {
        let rows = results.next().unwrap_or_default();
        committed.push(rows.first().map(|r| r.get::<_, String>(0)));
        results.by_ref().take(stmts.len() - 1).for_each(drop);
    }
    Ok((inserted, committed))
}

fn as_params(ps: &[Box<dyn ToSql + Send + Sync>]) -> Vec<&(dyn ToSql + Sync)> {
    ps.iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// Drive the futures together, polling them in their order, so each sends
/// its messages on the connection in that order (tokio-postgres sends a
/// request when its future is first polled).
pub(super) async fn in_order(mut futs: Vec<Pending<'_>>) -> Vec<Rows> {
    let mut out: Vec<Option<Rows>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

fn answer_err(cmd: Cmd, e: &StoreError) {
    match cmd {
        Cmd::Insert(_, reply) => {
            let _ = reply.send(Err(dup(e)));
        }
        Cmd::Commit(_, reply) => {
            let _ = reply.send(Err(dup(e)));
        }
    }
}

/// The same failure for each caller of a batch.
fn dup(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(s) => StoreError::Unavailable(s.clone()),
        StoreError::Busy(s) => StoreError::Busy(s.clone()),
        StoreError::Closed => StoreError::Closed,
        other => StoreError::Backend(other.to_string()),
    }
}
