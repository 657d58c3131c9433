//! Store tests against a real SQLite file: group-commit isolation, the
//! lease protocol (expiry, fencing, heartbeat), cancel through the store,
//! the concurrency cap, and upgrading a database of the first schema.

use super::SqliteStore;
use crate::engine::{RunError, RunStatus, StepRecord, StepStatus};
use crate::store::*;
use serde_json::json;

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
    (dir, s)
}

async fn workflow(s: &SqliteStore, id: &str, concurrency: Option<u32>) {
    s.apply_workflow(WorkflowApply {
        id: id.into(),
        name: id.into(),
        definition: json!({"id": id, "steps": []}),
        status: None,
        concurrency,
    })
    .await
    .unwrap();
}

async fn run(s: &SqliteStore, wf: &str) -> RunRow {
    match s
        .create_run(NewRun {
            id: crate::ids::run_id(),
            workflow_id: wf.into(),
            workflow_version: 1,
            input: json!({}),
            idempotency_key: None,
            connection_id: None,
            trigger_type: TriggerType::Api,
            scheduled_at: None,
            delay_ms: 0,
            idempotency_ttl_ms: 1000,
        })
        .await
        .unwrap()
    {
        TriggerOutcome::Created(r) => r,
        TriggerOutcome::Replayed(_) => unreachable!(),
    }
}

fn progress(status: RunStatus) -> RunWrite {
    RunWrite {
        spawn: None,
        suspend: false,
        fanout: None,
        break_loop: false,
        suspension: None,
        status,
        started_at: Some(1),
        completed_at: status.is_terminal().then_some(2),
        output: json!(null),
        error: (status == RunStatus::Cancelled).then(RunError::cancelled),
        park_until: None,
        steps: vec![StepRecord {
            status: StepStatus::Running,
            attempts: 1,
            ..StepRecord::blank(0, "a")
        }],
    }
}

#[tokio::test]
async fn one_failing_or_panicking_job_fails_alone_in_its_group() {
    let (_d, s) = store();
    let mut jobs = vec![];
    for i in 0..50 {
        let s = s.clone();
        jobs.push(tokio::spawn(async move {
            s.write(move |c| {
                if i == 7 {
                    return Err(StoreError::Decode("job 7 fails".into()));
                }
                if i == 9 {
                    panic!("job 9 panics");
                }
                c.execute(
                    "INSERT INTO store_meta (key, value) VALUES (?1, 'x')",
                    [format!("k{i}")],
                )?;
                Ok(())
            })
            .await
        }));
    }
    let mut results = vec![];
    for j in jobs {
        results.push(j.await.unwrap());
    }
    assert!(matches!(results[7], Err(StoreError::Decode(_))));
    assert!(matches!(results[9], Err(StoreError::JobPanicked(_))));
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 48);
    let stored: i64 = s
        .read(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM store_meta WHERE key LIKE 'k%'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(stored, 48);
    // The writer survived the panic.
    s.check_writable().await.unwrap();
}

#[tokio::test]
async fn a_stale_token_writes_nothing() {
    let (_d, s) = store();
    workflow(&s, "wf", None).await;
    let r = run(&s, "wf").await;
    // A lease that has already run out, swept and claimed by another node.
    let first = s.claim("a", 10, -1).await.unwrap().remove(0);
    assert_eq!(s.sweep_expired().await.unwrap(), 1);
    let second = s.claim("b", 10, 30_000).await.unwrap().remove(0);
    assert!(second.token > first.token);
    assert_eq!(
        s.commit(first.key(), progress(RunStatus::Completed))
            .await
            .unwrap(),
        CommitOutcome::LeaseLost
    );
    let now = s.get_run(r.id.clone()).await.unwrap();
    assert_eq!(now.status, RunStatus::Pending);
    assert!(now.steps.is_empty());
    // The holder's write lands.
    assert_eq!(
        s.commit(second.key(), progress(RunStatus::Running))
            .await
            .unwrap(),
        CommitOutcome::Saved
    );
    assert_eq!(s.get_run(r.id).await.unwrap().status, RunStatus::Running);
}

#[tokio::test]
async fn an_expired_lease_is_claimed_again_while_a_live_one_is_not() {
    let (_d, s) = store();
    workflow(&s, "wf", None).await;
    run(&s, "wf").await;
    let held = s.claim("a", 10, 30_000).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(s.sweep_expired().await.unwrap(), 0);
    assert!(s.claim("b", 10, 30_000).await.unwrap().is_empty());
    // The heartbeat keeps it; a lost claim is reported.
    let report = s.heartbeat("a", vec![held[0].key()], -1).await.unwrap();
    assert!(report.lost.is_empty());
    assert_eq!(s.sweep_expired().await.unwrap(), 1);
    let again = s.claim("b", 10, 30_000).await.unwrap();
    assert_eq!(again.len(), 1);
    let report = s.heartbeat("a", vec![held[0].key()], 30_000).await.unwrap();
    assert_eq!(report.lost, vec![held[0].key()]);
}

#[tokio::test]
async fn cancel_is_recorded_in_the_store_and_honoured_at_the_next_write() {
    let (_d, s) = store();
    workflow(&s, "wf", None).await;
    // Queued: cancelled at once.
    let queued = run(&s, "wf").await;
    let c = s.cancel_run(queued.id.clone()).await.unwrap();
    assert_eq!(c.status, RunStatus::Cancelled);
    // Claimed and running: flagged; the holder's next write answers Cancelled.
    let r = run(&s, "wf").await;
    let claim = s.claim("a", 10, 30_000).await.unwrap().remove(0);
    assert_eq!(claim.run.id, r.id);
    s.commit(claim.key(), progress(RunStatus::Running))
        .await
        .unwrap();
    let flagged = s.cancel_run(r.id.clone()).await.unwrap();
    assert_eq!(flagged.status, RunStatus::Running);
    let report = s.heartbeat("a", vec![claim.key()], 30_000).await.unwrap();
    assert_eq!(report.cancelled, vec![claim.key()]);
    assert_eq!(
        s.commit(claim.key(), progress(RunStatus::Running))
            .await
            .unwrap(),
        CommitOutcome::Cancelled
    );
    assert_eq!(
        s.commit(claim.key(), progress(RunStatus::Cancelled))
            .await
            .unwrap(),
        CommitOutcome::Saved
    );
    let done = s.get_run(r.id.clone()).await.unwrap();
    assert_eq!(done.status, RunStatus::Cancelled);
    assert_eq!(done.error.unwrap().code, "CANCELLED");
    // Parked: cancelled at once, and no claim picks it up again.
    let p = run(&s, "wf").await;
    let claim = s.claim("a", 10, 30_000).await.unwrap().remove(0);
    let mut park = progress(RunStatus::Running);
    park.park_until = Some(crate::time::now_ms() - 1);
    s.commit(claim.key(), park).await.unwrap();
    assert_eq!(
        s.cancel_run(p.id.clone()).await.unwrap().status,
        RunStatus::Cancelled
    );
    assert!(s.claim("a", 10, 30_000).await.unwrap().is_empty());
}

#[tokio::test]
async fn claims_respect_a_workflows_concurrency_cap_in_order() {
    let (_d, s) = store();
    workflow(&s, "capped", Some(2)).await;
    workflow(&s, "free", None).await;
    let mut capped = vec![];
    for _ in 0..4 {
        capped.push(run(&s, "capped").await.id);
    }
    let free = run(&s, "free").await.id;
    let first = s.claim("a", 10, 30_000).await.unwrap();
    let ids: Vec<&str> = first.iter().map(|c| c.run.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![capped[0].as_str(), capped[1].as_str(), free.as_str()]
    );
    assert!(s.claim("a", 10, 30_000).await.unwrap().is_empty());
    // A parked run frees its slot; the next in line gets it.
    let mut park = progress(RunStatus::Running);
    park.park_until = Some(crate::time::now_ms() + 60_000);
    s.commit(first[0].key(), park).await.unwrap();
    let next = s.claim("a", 10, 30_000).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].run.id, capped[2]);
}

#[tokio::test]
async fn a_database_of_the_first_schema_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/schema_v1.db"),
        &path,
    )
    .unwrap();
    let s = SqliteStore::open(&path).unwrap();
    let version: i64 = s
        .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(version, super::migrations::LATEST);
    let wf = s.get_workflow("wf_old".into()).await.unwrap();
    assert_eq!(wf.latest_version, 1);
    let old = s.get_run("run_old".into()).await.unwrap();
    assert_eq!(old.status, RunStatus::Pending);
    assert_eq!(old.input, json!({"n": 1}));
    // The old run is claimable under the new lease protocol.
    let claim = s.claim("a", 10, 30_000).await.unwrap().remove(0);
    assert_eq!(claim.run.id, "run_old");
    assert_eq!(
        s.commit(claim.key(), progress(RunStatus::Running))
            .await
            .unwrap(),
        CommitOutcome::Saved
    );
}
