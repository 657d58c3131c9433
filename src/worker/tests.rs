//! The worker against a real SQLite store, with a stand-in run-queue port
//! in front of it that counts claims and commits or refuses commits the
//! way a store does when a cancel was recorded meanwhile (on another node,
//! with its notification lost).

use super::{LeaseSettings, Worker};
use crate::catalog::Catalog;
use crate::engine::{RunStatus, StepStatus};
use crate::events::Events;
use crate::metrics::Metrics;
use crate::secrets::SecretBox;
use crate::store::*;
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::watch;

const KEY: &str = "8f3c0e6a1d2b4c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";
/// A worker that loops is stopped here, so the test fails instead of hanging.
const MAX_COMMITS: usize = 20;

/// Forwards to the store, except: commits from the `refuse_from`-th on that
/// do not finish the run as cancelled are answered `Cancelled`.
struct StandIn {
    inner: Arc<dyn RunQueue>,
    refuse_from: usize,
    commits: Mutex<Vec<RunStatus>>,
    claims: AtomicUsize,
    claimed: AtomicUsize,
}

impl StandIn {
    fn new(store: &Store, refuse_from: usize) -> Arc<StandIn> {
        Arc::new(StandIn {
            inner: store.run_queue(),
            refuse_from,
            commits: Mutex::new(vec![]),
            claims: AtomicUsize::new(0),
            claimed: AtomicUsize::new(0),
        })
    }
}

#[async_trait::async_trait]
impl RunQueue for StandIn {
    async fn claim(&self, owner: &str, limit: usize, lease_ms: i64) -> Result<Vec<Claim>> {
        self.claims.fetch_add(1, Ordering::SeqCst);
        let got = self.inner.claim(owner, limit, lease_ms).await?;
        self.claimed.fetch_add(got.len(), Ordering::SeqCst);
        Ok(got)
    }
    async fn commit(&self, claim: ClaimRef, write: RunWrite) -> Result<CommitOutcome> {
        let n = {
            let mut c = self.commits.lock();
            c.push(write.status);
            c.len()
        };
        if n > MAX_COMMITS {
            return Ok(CommitOutcome::LeaseLost);
        }
        if n > self.refuse_from && write.status != RunStatus::Cancelled {
            return Ok(CommitOutcome::Cancelled);
        }
        self.inner.commit(claim, write).await
    }
    async fn heartbeat(
        &self,
        owner: &str,
        claims: Vec<ClaimRef>,
        lease_ms: i64,
    ) -> Result<HeartbeatReport> {
        self.inner.heartbeat(owner, claims, lease_ms).await
    }
    async fn release(&self, claims: Vec<ClaimRef>) -> Result<()> {
        self.inner.release(claims).await
    }
    async fn sweep_expired(&self) -> Result<usize> {
        self.inner.sweep_expired().await
    }
    async fn next_due(&self) -> Result<Option<i64>> {
        self.inner.next_due().await
    }
    async fn queue_depth(&self) -> Result<i64> {
        self.inner.queue_depth().await
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    worker: Worker,
}

fn fixture(workers: usize) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("t.db")).expect("store");
    let worker = Worker::new(
        store.clone(),
        Catalog::new(store.clone()),
        Events::default(),
        SecretBox::from_key_text(KEY).expect("key"),
        Metrics::new(),
        workers,
        LeaseSettings::default(),
    );
    Fixture {
        _dir: dir,
        store,
        worker,
    }
}

/// An upstream answering every POST after `delay_ms`; returns its URL and
/// how many calls it has seen.
async fn upstream(delay_ms: u64) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move || {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                axum::Json(json!({"ok": true}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, calls)
}

async fn apply(store: &Store, id: &str, steps: Value, concurrency: Option<u32>) {
    store
        .apply_workflow(WorkflowApply {
            id: id.into(),
            name: id.into(),
            definition: json!({"id": id, "name": id, "steps": steps}),
            status: None,
            concurrency,
        })
        .await
        .expect("apply");
}

fn http_step(id: &str, url: &str) -> Value {
    json!({"id": id, "type": "action", "action": "http.request",
           "config": {"method": "POST", "url": url}})
}

async fn create(store: &Store, wf: &str) -> RunRow {
    let new = NewRun {
        id: crate::ids::run_id(),
        workflow_id: wf.into(),
        workflow_version: 1,
        input: json!({}),
        idempotency_key: None,
        connection_id: None,
        trigger_type: TriggerType::Api,
        idempotency_ttl_ms: 1000,
        scheduled_at: None,
        delay_ms: 0,
    };
    match store.create_run(new).await.expect("create") {
        TriggerOutcome::Created(r) | TriggerOutcome::Replayed(r) => r,
    }
}

/// Claim the run for the worker under test and interpret it to the end.
async fn execute_one(f: &Fixture, queue: Arc<StandIn>) {
    let worker = f.worker.clone().with_queue(queue);
    let mut claimed = f
        .store
        .claim(&worker.owner, 1, 30_000)
        .await
        .expect("claim");
    let claim = claimed.pop().expect("a run to claim");
    let held = worker.claims.hold(&claim);
    tokio::time::timeout(Duration::from_secs(20), worker.execute(claim, held))
        .await
        .expect("the worker gives the run up or ends it");
}

#[tokio::test]
async fn a_refused_commit_is_followed_by_one_cancel_and_nothing_more() {
    let f = fixture(1);
    let (url, _) = upstream(0).await;
    apply(&f.store, "wf_one", json!([http_step("a", &url)]), None).await;
    let run = create(&f.store, "wf_one").await;
    // Every commit that does not cancel is refused, the first one too.
    let queue = StandIn::new(&f.store, 0);
    execute_one(&f, queue.clone()).await;
    let commits = queue.commits.lock().clone();
    assert!(commits.len() <= 2, "commits: {commits:?}");
    assert_eq!(commits.last(), Some(&RunStatus::Cancelled), "{commits:?}");
    let stored = f.store.get_run(run.id).await.expect("run");
    assert_eq!(stored.status, RunStatus::Cancelled);
}

#[tokio::test]
async fn a_cancel_that_arrives_while_the_last_step_finishes_ends_the_run_cancelled() {
    let f = fixture(1);
    let (url, calls) = upstream(0).await;
    apply(&f.store, "wf_last", json!([http_step("a", &url)]), None).await;
    let run = create(&f.store, "wf_last").await;
    // The step's start is written; its success (the run's finish) is refused.
    let queue = StandIn::new(&f.store, 1);
    execute_one(&f, queue.clone()).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let commits = queue.commits.lock().clone();
    assert_eq!(
        commits,
        vec![
            RunStatus::Running,
            RunStatus::Completed,
            RunStatus::Cancelled
        ],
        "one cancel after the refused finish, from the state the store holds"
    );
    let stored = f.store.get_run(run.id).await.expect("run");
    assert_eq!(stored.status, RunStatus::Cancelled);
    let steps: Vec<StepStatus> = stored.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        steps,
        vec![StepStatus::Skipped],
        "no step stays running on record"
    );
}

#[tokio::test]
async fn runs_waiting_behind_a_concurrency_cap_do_not_make_the_dispatcher_spin() {
    let f = fixture(4);
    apply(&f.store, "wf_capped", json!([]), Some(1)).await;
    create(&f.store, "wf_capped").await;
    // Another holder has the one slot, for longer than the test.
    let held = f.store.claim("node_other", 1, 60_000).await.expect("claim");
    assert_eq!(held.len(), 1);
    for _ in 0..20 {
        create(&f.store, "wf_capped").await;
    }
    let queue = StandIn::new(&f.store, usize::MAX);
    let worker = f.worker.clone().with_queue(queue.clone());
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(worker.run(stopped, Duration::from_secs(1)));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let _ = stop.send(true);
    task.await.expect("worker stops");
    let claims = queue.claims.load(Ordering::SeqCst);
    assert_eq!(queue.claimed.load(Ordering::SeqCst), 0, "the cap holds");
    // The dispatcher looks once, then sleeps until a slot frees or the
    // backstop poll (1 s); a spinning one claims thousands of times.
    assert!(
        claims <= 3,
        "{claims} claims while the cap held every run back"
    );
}

#[tokio::test]
async fn a_busy_node_claims_no_more_runs_than_it_can_start() {
    let f = fixture(2);
    let (url, calls) = upstream(1_500).await;
    apply(&f.store, "wf_slow", json!([http_step("a", &url)]), None).await;
    for _ in 0..6 {
        create(&f.store, "wf_slow").await;
    }
    let queue = StandIn::new(&f.store, usize::MAX);
    let worker = f.worker.clone().with_queue(queue.clone());
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(worker.run(stopped, Duration::from_secs(5)));
    // Both workers are busy with a step...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while calls.load(Ordering::SeqCst) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "two steps started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ...and for the rest of that step the other four stay in the queue,
    // free for any other node.
    for _ in 0..10 {
        assert_eq!(
            queue.claimed.load(Ordering::SeqCst),
            2,
            "claimed beyond the free workers"
        );
        assert_eq!(f.store.queue_depth().await.expect("depth"), 4);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(true);
    task.await.expect("worker stops");
}
