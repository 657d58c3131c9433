//! Store tests against a real PostgreSQL database (`FLOWCTL_TEST_PG_URL` or
//! `FLOWCTL_TEST_DATABASE_URL`, e.g. from `scripts/pg-cluster.sh`; skipped
//! without one outside CI): concurrent writes share transactions, and a
//! failing command or a stale fencing token fails alone in its batch.

use super::PgStore;
use crate::engine::{RunStatus, StepRecord, StepStatus};
use crate::store::*;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A store on a new, empty database of the test cluster.
pub(crate) async fn store(test: &str) -> Option<PgStore> {
    let base = ["FLOWCTL_TEST_PG_URL", "FLOWCTL_TEST_DATABASE_URL"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()));
    let Some(base) = base else {
        assert!(
            std::env::var("CI").is_err(),
            "{test}: FLOWCTL_TEST_PG_URL is not set (CI starts a cluster with scripts/pg-cluster.sh)"
        );
        eprintln!(
            "skipping {test}: set FLOWCTL_TEST_PG_URL (scripts/pg-cluster.sh start DIR PORT)"
        );
        return None;
    };
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "u_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        crate::time::now_ms() % 1_000_000
    );
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("connect to the test cluster");
    let conn = tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    drop(client);
    let _ = conn.await;
    let (url, query) = base.split_once('?').unwrap_or((base.as_str(), ""));
    let slash = url
        .rfind('/')
        .filter(|&i| i > url.find("://").unwrap_or(0) + 2);
    let url = match slash {
        Some(i) => format!("{}/{name}", &url[..i]),
        None => format!("{url}/{name}"),
    };
    let url = if query.is_empty() {
        url
    } else {
        format!("{url}?{query}")
    };
    Some(
        PgStore::connect(&url)
            .await
            .expect("open the PostgreSQL store"),
    )
}

fn new_run(id: String) -> NewRun {
    NewRun {
        id,
        workflow_id: "wf".into(),
        workflow_version: 1,
        input: json!({"n": 1}),
        idempotency_key: None,
        connection_id: None,
        trigger_type: TriggerType::Api,
        scheduled_at: None,
        delay_ms: 0,
        idempotency_ttl_ms: 1000,
    }
}

fn completed() -> RunWrite {
    RunWrite {
        spawn: None,
        suspend: false,
        fanout: None,
        break_loop: false,
        suspension: None,
        status: RunStatus::Completed,
        started_at: Some(1),
        completed_at: Some(2),
        output: json!({"ok": true}),
        error: None,
        park_until: None,
        steps: vec![StepRecord {
            status: StepStatus::Completed,
            attempts: 1,
            output: json!({"a": 1}),
            ..StepRecord::blank(0, "a")
        }],
    }
}

#[tokio::test]
async fn concurrent_triggers_share_transactions() {
    let Some(s) = store("concurrent_triggers_share_transactions").await else {
        return;
    };
    let before = s.writer().batches();
    let jobs: Vec<_> = (0..60)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.create_run(new_run(crate::ids::run_id())).await })
        })
        .collect();
    let mut seqs = std::collections::HashSet::new();
    for j in jobs {
        match j.await.unwrap().unwrap() {
            TriggerOutcome::Created(r) => assert!(seqs.insert(r.seq), "seq {} twice", r.seq),
            TriggerOutcome::Replayed(_) => panic!("no idempotency key: nothing to replay"),
        }
    }
    assert_eq!(seqs.len(), 60);
    assert_eq!(s.queue_depth().await.unwrap(), 60);
    let batches = s.writer().batches() - before;
    assert!(
        batches <= 20,
        "60 concurrent triggers took {batches} transactions"
    );
}

#[tokio::test]
async fn a_failing_command_fails_alone_in_its_batch() {
    let Some(s) = store("a_failing_command_fails_alone_in_its_batch").await else {
        return;
    };
    let dup = crate::ids::run_id();
    let jobs: Vec<_> = (0..21)
        .map(|i| {
            let s = s.clone();
            // Two triggers with one run id: the unique index refuses the second.
            let id = if i < 2 {
                dup.clone()
            } else {
                crate::ids::run_id()
            };
            tokio::spawn(async move { s.create_run(new_run(id)).await })
        })
        .collect();
    let mut ok = 0;
    let mut failed = 0;
    for j in jobs {
        match j.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(e.to_string().contains("duplicate key"), "{e}");
                failed += 1;
            }
        }
    }
    assert_eq!((ok, failed), (20, 1));
    assert_eq!(s.queue_depth().await.unwrap(), 20);
    s.check_writable().await.unwrap();
}

#[tokio::test]
async fn stale_tokens_fail_alone_in_a_batch_of_commits() {
    let Some(s) = store("stale_tokens_fail_alone_in_a_batch_of_commits").await else {
        return;
    };
    for _ in 0..10 {
        s.create_run(new_run(crate::ids::run_id())).await.unwrap();
    }
    let claims = s.claim("node_a", 10, 30_000).await.unwrap();
    assert_eq!(claims.len(), 10);
    let jobs: Vec<_> = claims
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let s = s.clone();
            let mut key = c.key();
            if i % 2 == 1 {
                key.token += 1; // a token this node never held
            }
            tokio::spawn(async move { s.commit(key, completed()).await })
        })
        .collect();
    for (i, j) in jobs.into_iter().enumerate() {
        let want = if i % 2 == 0 {
            CommitOutcome::Saved
        } else {
            CommitOutcome::LeaseLost
        };
        assert_eq!(j.await.unwrap().unwrap(), want, "commit {i}");
    }
    for (i, c) in claims.iter().enumerate() {
        let run = s.get_run(c.run.id.clone()).await.unwrap();
        if i % 2 == 0 {
            assert_eq!(run.status, RunStatus::Completed);
            assert_eq!(run.steps.len(), 1);
            assert_eq!(run.output, json!({"ok": true}));
        } else {
            assert_eq!(run.status, RunStatus::Pending);
            assert!(run.steps.is_empty());
        }
    }
    // The five refused runs are still held, and finish under their real token.
    assert_eq!(s.queue_depth().await.unwrap(), 0);
    for c in claims.iter().skip(1).step_by(2) {
        assert_eq!(
            s.commit(c.key(), completed()).await.unwrap(),
            CommitOutcome::Saved
        );
    }
    let counts = s.count_runs_by_status().await.unwrap();
    assert_eq!(counts, vec![(RunStatus::Completed, 10)]);
}

fn running() -> RunWrite {
    RunWrite {
        spawn: None,
        suspend: false,
        fanout: None,
        break_loop: false,
        suspension: None,
        status: RunStatus::Running,
        started_at: Some(1),
        completed_at: None,
        output: json!(null),
        error: None,
        park_until: None,
        steps: vec![StepRecord {
            status: StepStatus::Running,
            attempts: 1,
            ..StepRecord::blank(0, "a")
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lease_renewals_and_batches_of_commits_never_deadlock() {
    let Some(s) = store("lease_renewals_and_batches_of_commits_never_deadlock").await else {
        return;
    };
    for _ in 0..60 {
        s.create_run(new_run(crate::ids::run_id())).await.unwrap();
    }
    let claims = s.claim("node_a", 60, 30_000).await.unwrap();
    assert_eq!(claims.len(), 60);
    let keys: Vec<ClaimRef> = claims.iter().map(|c| c.key()).collect();
    // The heartbeat names its claims in one order, the commits of one
    // batch arrive in another: both must take the rows in one order.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut errors = vec![];
    let mut rounds = 0;
    while std::time::Instant::now() < until {
        let mut reversed = keys.clone();
        reversed.reverse();
        let beat = {
            let s = s.clone();
            tokio::spawn(async move { s.heartbeat("node_a", reversed, 30_000).await })
        };
        let commits: Vec<_> = keys
            .iter()
            .map(|k| {
                let (s, k) = (s.clone(), *k);
                tokio::spawn(async move { s.commit(k, running()).await })
            })
            .collect();
        match beat.await.unwrap() {
            Ok(report) => assert!(report.lost.is_empty(), "{report:?}"),
            Err(e) => errors.push(e.to_string()),
        }
        for c in commits {
            match c.await.unwrap() {
                Ok(outcome) => assert_eq!(outcome, CommitOutcome::Saved),
                Err(e) => errors.push(e.to_string()),
            }
        }
        rounds += 1;
    }
    assert!(errors.is_empty(), "after {rounds} rounds: {errors:?}");
}
