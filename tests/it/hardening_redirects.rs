//! A connection's secret never follows a redirect to another origin (the
//! probe's redirect leak): http steps with a connection refuse cross-origin
//! redirects and follow same-origin ones with their headers; Stripe steps
//! follow none.

use crate::common::{Api, Server};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "hk_topsecret_123";

/// Every request an origin saw: (path, x-api-key, authorization).
type Seen = Arc<Mutex<Vec<(String, Option<String>, Option<String>)>>>;

fn record(seen: &Seen, path: &str, h: &HeaderMap) {
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(String::from);
    seen.lock()
        .unwrap()
        .push((path.into(), get("x-api-key"), get("authorization")));
}

async fn spawn(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Origin B: the attacker's side of a redirect; records what reached it.
async fn other_origin() -> (String, Seen) {
    let seen: Seen = Default::default();
    let app = Router::new()
        .route(
            "/{*rest}",
            any(|State(s): State<Seen>, h: HeaderMap| async move {
                record(&s, "other", &h);
                axum::Json(json!({"stolen": true}))
            }),
        )
        .with_state(seen.clone());
    (spawn(app).await, seen)
}

/// Origin A: the connection's own origin; `/away` redirects to `other`,
/// `/here` redirects to its own `/final`.
async fn own_origin(other: String) -> (String, Seen) {
    let seen: Seen = Default::default();
    let away = other.clone();
    let app = Router::new()
        .route(
            "/away",
            get(move |State(s): State<Seen>, h: HeaderMap| {
                let to = format!("{away}/stolen");
                async move {
                    record(&s, "away", &h);
                    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
                }
            }),
        )
        .route(
            "/here",
            get(|State(s): State<Seen>, h: HeaderMap| async move {
                record(&s, "here", &h);
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(header::LOCATION, "/final")],
                )
                    .into_response()
            }),
        )
        .route(
            "/final",
            get(|State(s): State<Seen>, h: HeaderMap| async move {
                record(&s, "final", &h);
                axum::Json(json!({"final": true}))
            }),
        )
        .route(
            "/v1/customers",
            any(move |State(s): State<Seen>, h: HeaderMap| {
                let to = format!("{other}/v1/customers");
                async move {
                    record(&s, "stripe", &h);
                    (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, to)]).into_response()
                }
            }),
        )
        .with_state(seen.clone());
    (spawn(app).await, seen)
}

async fn run_step(s: &Server, wf: &str, step: Value) -> Value {
    s.apply(json!({"id": wf, "name": wf, "steps": [step]}))
        .await;
    let (status, v) = s
        .post(&format!("/api/v1/workflows/{wf}/activate"), json!({}))
        .await;
    assert!(status == 200 || status == 400, "{v}");
    let run = s.trigger(wf, json!({})).await;
    s.wait_for_run(&run, Duration::from_secs(20)).await
}

#[tokio::test]
async fn connection_secrets_never_follow_a_redirect_to_another_origin() {
    let (other, other_seen) = other_origin().await;
    let (own, own_seen) = own_origin(other.clone()).await;
    let s = Server::start();
    let (status, v) = s
        .post(
            "/api/v1/connections",
            json!({"provider": "http", "name": "api", "id": "conn_api",
                   "config": {"baseUrl": own, "authHeader": "x-api-key"}, "secret": SECRET}),
        )
        .await;
    assert_eq!(status, 201, "{v}");

    // Cross-origin: refused, and the other origin is never called at all.
    let run = run_step(
        &s,
        "wf_away",
        json!({"id": "h", "type": "action", "action": "http.request",
               "config": {"url": "/away"}, "retryConfig": {"maxAttempts": 1}}),
    )
    .await;
    assert_eq!(run["status"], "failed", "{run}");
    let err = &run["steps"][0]["error"];
    assert_eq!(err["code"], "REDIRECT_REFUSED", "{run}");
    assert!(
        err["message"].as_str().unwrap().contains(&other),
        "names the other origin: {err}"
    );
    assert!(!run.to_string().contains(SECRET));
    assert!(
        other_seen.lock().unwrap().is_empty(),
        "the other origin was called: {:?}",
        other_seen.lock().unwrap()
    );
    assert_eq!(own_seen.lock().unwrap()[0].1.as_deref(), Some(SECRET));

    // Same origin: followed, with the connection's header on both hops.
    let run = run_step(
        &s,
        "wf_here",
        json!({"id": "h", "type": "action", "action": "http.request", "config": {"url": "/here"}}),
    )
    .await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["steps"][0]["output"]["body"]["final"], true, "{run}");
    let seen = own_seen.lock().unwrap().clone();
    let last = seen.last().unwrap();
    assert_eq!(
        (last.0.as_str(), last.1.as_deref()),
        ("final", Some(SECRET))
    );
}

#[tokio::test]
async fn stripe_steps_follow_no_redirect() {
    let (other, other_seen) = other_origin().await;
    let (own, own_seen) = own_origin(other).await;
    let s = Server::start();
    let (status, v) = s
        .post(
            "/api/v1/connections",
            json!({"provider": "stripe", "name": "stripe", "id": "conn_stripe",
                   "config": {"baseUrl": own}, "secret": "sk_test_secret_42", "default": true}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let run = run_step(
        &s,
        "wf_stripe",
        json!({"id": "c", "type": "action", "action": "stripe.createCustomer",
               "config": {"email": "a@example.com"}, "retryConfig": {"maxAttempts": 1}}),
    )
    .await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["steps"][0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("307"),
        "{run}"
    );
    assert_eq!(own_seen.lock().unwrap().len(), 1);
    assert!(other_seen.lock().unwrap().is_empty());
}
