//! The suite on PostgreSQL: with `FLOWCTL_TEST_DATABASE_URL` set (a
//! throw-away cluster, e.g. from `scripts/pg-cluster.sh`), every server the
//! harness starts gets a fresh database of its own on that cluster. Tests
//! that need PostgreSQL whatever the suite runs on (several nodes) use that
//! cluster, or `FLOWCTL_TEST_PG_URL`.

use std::sync::atomic::{AtomicUsize, Ordering};

pub fn base_url() -> Option<String> {
    std::env::var("FLOWCTL_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// The cluster for tests that need PostgreSQL whichever store the suite
/// runs on (multi-node tests): `None` (skip) outside CI when none is given;
/// in CI a missing cluster fails the test.
pub fn cluster_or_skip(test: &str) -> Option<String> {
    let url = base_url().or_else(|| {
        std::env::var("FLOWCTL_TEST_PG_URL")
            .ok()
            .filter(|s| !s.trim().is_empty())
    });
    if url.is_none() {
        assert!(
            std::env::var("CI").is_err(),
            "{test}: neither FLOWCTL_TEST_PG_URL nor FLOWCTL_TEST_DATABASE_URL is set (CI starts a cluster with scripts/pg-cluster.sh)"
        );
        eprintln!(
            "skipping {test}: set FLOWCTL_TEST_PG_URL to a PostgreSQL cluster (scripts/pg-cluster.sh start DIR)"
        );
    }
    url
}

/// A new, empty database on the test cluster, or `None` on SQLite.
pub fn fresh_database() -> Option<String> {
    base_url().map(|base| create_database(&base))
}

pub fn create_database(base: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "t_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        rand_suffix()
    );
    let admin = base.to_string();
    let create = name.clone();
    // Its own runtime on its own thread: callers may be inside one already.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                .await
                .expect("connect to FLOWCTL_TEST_DATABASE_URL");
            tokio::spawn(conn);
            client
                .batch_execute(&format!("CREATE DATABASE {create}"))
                .await
                .expect("create a test database");
        });
    })
    .join()
    .expect("create database thread");
    with_database(base, &name)
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
}

/// `base` with its database name replaced by `name`.
fn with_database(base: &str, name: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, format!("?{q}")),
        None => (base, String::new()),
    };
    let after_scheme = head.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = head[after_scheme..]
        .find('/')
        .map(|i| after_scheme + i)
        .unwrap_or(head.len());
    format!("{}/{name}{query}", &head[..host_end])
}
