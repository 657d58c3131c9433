//! The bare program `scripts/bench.sh` measures flowctl against: the least
//! code that does the same durable work as a three-step run, so the ratio
//! shows what flowctl's own layers cost on top of axum and SQLite.
//!
//! `POST /run` (JSON body, `x-api-key` compared with a constant) inserts the
//! run and answers `202` once its group commit is on disk. A task per run
//! then computes the three steps (subtotal/tax/total, discount, a summary
//! line) and writes each one as its own durable update: the first marks the
//! run running, the last stores the output and marks it completed. One
//! writer thread groups every job waiting at that moment into one
//! transaction; the file is in WAL mode with `synchronous = FULL`, so every
//! group commit fsyncs the WAL before any of its jobs is answered, as
//! flowctl's writer does. Unfinished runs are picked up again at start.
//!
//! ```sh
//! cargo run --release --example bare_durable -- DB_PATH [API_KEY]
//! ```
//! `GET /item` answers a small constant JSON object at once: the local HTTP
//! server that the benchmark's `http.request` workflow calls.
//! It prints `bare listening on http://127.0.0.1:PORT` (port 0: any free one).
//! The `runs` table has `seq` and `status` like flowctl's, so the benchmark
//! counts both programs' runs with the same query.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use rusqlite::{Connection, params};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce(&Connection) -> rusqlite::Result<()> + Send>;
type Done = oneshot::Sender<Result<(), String>>;

struct App {
    writer: mpsc::Sender<(Job, Done)>,
    key: String,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Group commit: everything queued now goes into one transaction (one fsync).
fn writer_loop(conn: Connection, rx: mpsc::Receiver<(Job, Done)>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let begun = conn.execute_batch("BEGIN IMMEDIATE");
        let results: Vec<_> = batch
            .into_iter()
            .map(|(job, done)| {
                let r = begun.as_ref().map_err(|e| e.to_string()).and_then(|_| {
                    // A failing job must not undo its neighbours.
                    conn.execute_batch("SAVEPOINT j")
                        .map_err(|e| e.to_string())?;
                    let r = job(&conn).map_err(|e| e.to_string());
                    if r.is_err() {
                        let _ = conn.execute_batch("ROLLBACK TO j");
                    }
                    let _ = conn.execute_batch("RELEASE j");
                    r
                });
                (r, done)
            })
            .collect();
        let committed = match begun {
            Ok(()) => conn.execute_batch("COMMIT").map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        for (r, done) in results {
            let _ = done.send(committed.clone().and(r));
        }
    }
}

impl App {
    async fn write(&self, job: Job) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send((job, tx))
            .map_err(|_| "writer stopped".to_string())?;
        rx.await.map_err(|_| "writer stopped".to_string())?
    }
}

fn step(idx: usize, input: &Value, prev: &[Value]) -> Value {
    let items = input["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    match idx {
        0 => {
            let sub: f64 = items
                .iter()
                .map(|i| i["quantity"].as_f64().unwrap_or(0.0) * i["price"].as_f64().unwrap_or(0.0))
                .sum();
            json!({"subtotal": sub, "tax": sub * 0.08, "total": sub * 1.08})
        }
        1 => {
            let total = prev[0]["total"].as_f64().unwrap_or(0.0);
            let round = |x: f64| (x * 100.0).round() / 100.0;
            json!({"discount": round(total * 0.1), "due": round(total * 0.9)})
        }
        _ => {
            let cur = input["currency"].as_str().unwrap_or("usd").to_uppercase();
            json!({"itemCount": items.len(), "line": format!(
                "{} item(s), due {} {cur} (total {})", items.len(), prev[1]["due"], prev[0]["total"])})
        }
    }
}

/// The three steps, each committed durably before the next starts.
async fn execute(app: Arc<App>, seq: i64, input: Value) {
    let mut outs: Vec<Value> = Vec::with_capacity(3);
    for idx in 0..3 {
        let out = step(idx, &input, &outs);
        let text = out.to_string();
        outs.push(out);
        let finish = (idx == 2).then(|| {
            json!({"total": outs[0]["total"], "due": outs[1]["due"], "summary": outs[2]["line"]})
                .to_string()
        });
        let job: Job = Box::new(move |c| {
            let t = now_ms();
            c.prepare_cached(
                "INSERT INTO steps (run_seq, idx, status, output, completed_at) \
                 VALUES (?1, ?2, 'completed', ?3, ?4)",
            )?
            .execute(params![seq, idx as i64, text, t])?;
            match (idx, finish) {
                (0, _) => c
                    .prepare_cached("UPDATE runs SET status = 'running', started_at = ?2 WHERE seq = ?1")?
                    .execute(params![seq, t])
                    .map(drop),
                (_, Some(output)) => c
                    .prepare_cached(
                        "UPDATE runs SET status = 'completed', output = ?2, completed_at = ?3 WHERE seq = ?1",
                    )?
                    .execute(params![seq, output, t])
                    .map(drop),
                _ => Ok(()),
            }
        });
        if let Err(e) = app.write(job).await {
            eprintln!("run {seq}: step {idx} not saved: {e}");
            return;
        }
    }
}

async fn trigger(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(app.key.as_str()) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "bad key"})));
    }
    let Some(input) = body.get("input").filter(|v| v.is_object()).cloned() else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "input"})));
    };
    let id = format!("run_{:x}{:08x}", now_ms(), rand::random::<u32>());
    // The insert and the steps run in a task of their own: a client that
    // hangs up after the commit must not leave its run unexecuted.
    let (ack_tx, ack_rx) = oneshot::channel::<Result<(), String>>();
    let (rid, text) = (id.clone(), input.to_string());
    let worker = app.clone();
    tokio::spawn(async move {
        let (seq_tx, seq_rx) = oneshot::channel();
        let job: Job = Box::new(move |c| {
            c.prepare_cached(
                "INSERT INTO runs (id, status, input, created_at) VALUES (?1, 'pending', ?2, ?3)",
            )?
            .execute(params![rid, text, now_ms()])?;
            let _ = seq_tx.send(c.last_insert_rowid());
            Ok(())
        });
        let written = worker.write(job).await;
        let ok = written.is_ok();
        let _ = ack_tx.send(written);
        if let (true, Ok(seq)) = (ok, seq_rx.await) {
            execute(worker, seq, input).await;
        }
    });
    match ack_rx.await {
        Ok(Ok(())) => (
            StatusCode::ACCEPTED,
            Json(json!({"id": id, "status": "pending"})),
        ),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": e}))),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "lost"})),
        ),
    }
}

fn open(path: &str) -> rusqlite::Result<Connection> {
    let c = Connection::open(path)?;
    c.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE IF NOT EXISTS runs (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
           status TEXT NOT NULL, input TEXT NOT NULL, output TEXT, created_at INTEGER NOT NULL,
           started_at INTEGER, completed_at INTEGER);
         CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status, seq);
         CREATE TABLE IF NOT EXISTS steps (run_seq INTEGER NOT NULL, idx INTEGER NOT NULL,
           status TEXT NOT NULL, output TEXT, completed_at INTEGER,
           PRIMARY KEY (run_seq, idx)) WITHOUT ROWID;",
    )?;
    Ok(c)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: bare_durable DB_PATH [API_KEY]")?;
    let key = args.next().unwrap_or_else(|| "bare-key".into());
    let conn = open(&path)?;
    // Runs a previous process accepted but did not finish start over.
    let unfinished: Vec<(i64, String)> = conn
        .prepare("SELECT seq, input FROM runs WHERE status IN ('pending', 'running')")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    conn.execute_batch(
        "DELETE FROM steps WHERE run_seq IN (SELECT seq FROM runs WHERE status <> 'completed')",
    )?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || writer_loop(conn, rx));
    let app = Arc::new(App { writer: tx, key });
    for (seq, input) in unfinished {
        tokio::spawn(execute(app.clone(), seq, serde_json::from_str(&input)?));
    }
    let router = Router::new()
        .route("/run", post(trigger))
        // A fast local target for the benchmark's http.request workflow.
        .route(
            "/item",
            get(|| async { Json(json!({"sku": "W-1", "price": 19.99, "stock": 42})) }),
        )
        .with_state(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    eprintln!("bare listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}
