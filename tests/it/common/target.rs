//! A local HTTP target for `http.request` steps: counts calls per name and
//! can answer slowly, or fail a number of times first.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
pub struct Target {
    pub url: String,
    calls: Arc<Mutex<Vec<(String, Instant)>>>,
    failures_left: Arc<Mutex<HashMap<String, u32>>>,
}

#[derive(serde::Deserialize, Default)]
struct Opts {
    delay_ms: Option<u64>,
    /// Answer `status` this many times before succeeding.
    fail: Option<u32>,
    status: Option<u16>,
    retry_after: Option<u64>,
}

async fn hit(State(t): State<Target>, Path(name): Path<String>, Query(o): Query<Opts>) -> Response {
    t.calls.lock().unwrap().push((name.clone(), Instant::now()));
    if let Some(ms) = o.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let fail_now = {
        let mut left = t.failures_left.lock().unwrap();
        let n = left.entry(name.clone()).or_insert(o.fail.unwrap_or(0));
        if *n > 0 {
            *n -= 1;
            true
        } else {
            false
        }
    };
    if fail_now || (o.fail.is_none() && o.status.is_some()) {
        let status = StatusCode::from_u16(o.status.unwrap_or(503)).unwrap();
        let mut headers = HeaderMap::new();
        if let Some(s) = o.retry_after {
            headers.insert("retry-after", HeaderValue::from(s));
        }
        return (status, headers, axum::Json(json!({"error": "nope"}))).into_response();
    }
    axum::Json(json!({"name": name, "ok": true})).into_response()
}

impl Target {
    pub async fn start() -> Target {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let t = Target {
            url: format!("http://{}", listener.local_addr().unwrap()),
            ..Default::default()
        };
        let app = Router::new()
            .route("/hit/{name}", axum::routing::any(hit))
            .with_state(t.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        t
    }

    pub fn count(&self, name: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .count()
    }

    pub fn times(&self, name: &str) -> Vec<Instant> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .collect()
    }

    /// An `http.request` step calling this target.
    pub fn step(&self, id: &str, query: &str) -> serde_json::Value {
        json!({"id": id, "type": "action", "action": "http.request",
               "retryConfig": {"maxAttempts": 3, "initialDelayMs": 100, "maxDelayMs": 1000},
               "config": {"method": "POST", "url": format!("{}/hit/{id}?{query}", self.url), "body": {"run": "{{runId}}"}}})
    }
}
