//! `http.request` against a real axum server on 127.0.0.1: request shape, output shape,
//! retry classification, timeouts and connection base URL + secret header.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{AppendHeaders, IntoResponse, Response};
use flowctl::actions::{ActionContext, ActionKind, Actions, ResolvedConnection};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Value>>>);

async fn spawn(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn handler(
    State(seen): State<Seen>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let header_map: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
        .collect();
    let request = json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "headers": header_map,
        "body": body,
    });
    seen.0.lock().unwrap().push(request.clone());
    match uri.path() {
        "/busy" => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "7")],
            "down for maintenance",
        )
            .into_response(),
        "/bad" => (StatusCode::BAD_REQUEST, "bad   thing\n happened").into_response(),
        "/missing" => (StatusCode::NOT_FOUND, axum::Json(json!({"error": "nope"}))).into_response(),
        "/text" => "hello there".into_response(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late".into_response()
        }
        _ => (
            StatusCode::CREATED,
            AppendHeaders([
                ("x-served-by", "test"),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2"),
            ]),
            axum::Json(request),
        )
            .into_response(),
    }
}

async fn server() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new().fallback(handler).with_state(seen.clone());
    (format!("http://{}", spawn(app).await), seen)
}

fn ctx(timeout_ms: u64) -> ActionContext<'static> {
    ActionContext {
        run_id: "run_1",
        step_id: "call",
        timeout: Duration::from_millis(timeout_ms),
    }
}

async fn run(
    config: Value,
    conn: Option<&ResolvedConnection>,
) -> Result<Value, flowctl::actions::ActionError> {
    Actions::new()
        .execute(ActionKind::HttpRequest, &config, conn, &ctx(10_000))
        .await
}

#[tokio::test]
async fn sends_json_body_headers_and_query_and_returns_status_headers_body() {
    let (base, _) = server().await;
    let out = run(
        json!({
            "method": "post",
            "url": format!("{base}/echo"),
            "headers": {"X-Trace": "t-1", "x-count": 3},
            "query": {"q": "a b", "n": [1, 2], "skip": null},
            "body": {"total": 4857.84, "items": [1, 2]},
        }),
        None,
    )
    .await
    .unwrap();
    assert_eq!(out["status"], 201);
    assert_eq!(out["headers"]["x-served-by"], "test");
    assert_eq!(out["headers"]["set-cookie"], "a=1, b=2");
    assert_eq!(out["headers"]["content-type"], "application/json");
    let echoed = &out["body"];
    assert_eq!(echoed["method"], "POST");
    let mut query: Vec<&str> = echoed["query"].as_str().unwrap().split('&').collect();
    query.sort();
    assert_eq!(query, ["n=1", "n=2", "q=a+b"]);
    assert_eq!(echoed["headers"]["x-trace"], "t-1");
    assert_eq!(echoed["headers"]["x-count"], "3");
    assert_eq!(echoed["headers"]["content-type"], "application/json");
    let sent: Value = serde_json::from_str(echoed["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent, json!({"total": 4857.84, "items": [1, 2]}));
}

#[tokio::test]
async fn non_json_bodies_are_strings_and_expect_status_is_honoured() {
    let (base, seen) = server().await;
    let out = run(json!({"url": format!("{base}/text")}), None)
        .await
        .unwrap();
    assert_eq!(out["body"], "hello there");
    assert_eq!(out["status"], 200);

    let out = run(
        json!({"url": format!("{base}/missing"), "expectStatus": [404, 410]}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(out["body"], json!({"error": "nope"}));

    let err = run(
        json!({"url": format!("{base}/text"), "expectStatus": 201}),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "HTTP_STATUS");
    assert!(!err.retryable);

    // A raw string body with a non-JSON content type is sent as is.
    run(
        json!({"method": "PUT", "url": format!("{base}/raw"), "headers": {"content-type": "text/plain"}, "body": "a=1"}),
        None,
    )
    .await
    .unwrap();
    let last = seen.0.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last["body"], "a=1");
    assert_eq!(last["headers"]["content-type"], "text/plain");
}

#[tokio::test]
async fn status_503_with_retry_after_is_retryable() {
    let (base, _) = server().await;
    let err = run(json!({"url": format!("{base}/busy?token=abc")}), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, "HTTP_STATUS");
    assert!(err.retryable);
    assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
    assert!(err.message.contains("503"), "{}", err.message);
    assert!(
        err.message.contains("down for maintenance"),
        "{}",
        err.message
    );
    assert!(
        !err.message.contains("token=abc"),
        "query strings stay out of messages: {}",
        err.message
    );
}

#[tokio::test]
async fn status_400_is_not_retryable_and_quotes_the_body() {
    let (base, _) = server().await;
    let err = run(
        json!({"method": "DELETE", "url": format!("{base}/bad")}),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "HTTP_STATUS");
    assert!(!err.retryable);
    assert_eq!(err.retry_after, None);
    assert!(
        err.message.starts_with("HTTP 400 Bad Request from DELETE"),
        "{}",
        err.message
    );
    assert!(
        err.message.ends_with("bad thing happened"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn timeouts_are_retryable() {
    let (base, _) = server().await;
    let started = Instant::now();
    let err = run(
        json!({"url": format!("{base}/slow"), "timeoutMs": 200}),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "TIMEOUT");
    assert!(err.retryable);
    assert!(started.elapsed() < Duration::from_secs(3));

    // The step budget applies too, when it is the smaller one.
    let err = Actions::new()
        .execute(
            ActionKind::HttpRequest,
            &json!({"url": format!("{base}/slow"), "timeoutMs": 60_000}),
            None,
            &ctx(150),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, "TIMEOUT");
}

#[tokio::test]
async fn refused_connections_are_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = run(json!({"url": format!("http://{addr}/x")}), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, "CONNECT");
    assert!(err.retryable);
}

#[tokio::test]
async fn connection_supplies_base_url_default_headers_and_secret() {
    let (base, seen) = server().await;
    let conn = ResolvedConnection {
        id: "conn_api".into(),
        provider: flowctl::store::ConnectionProvider::Http,
        config: json!({"baseUrl": format!("{base}/api/"), "headers": {"x-tenant": "acme", "x-trace": "conn"}, "authHeader": "x-api-key"}),
        secret: Some("key-s3cr3t-value".into()),
    };
    let out = run(
        json!({"url": "/v1/orders", "headers": {"x-trace": "step"}}),
        Some(&conn),
    )
    .await
    .unwrap();
    let got = seen.0.lock().unwrap().last().cloned().unwrap();
    assert_eq!(got["path"], "/api/v1/orders");
    assert_eq!(got["headers"]["x-api-key"], "key-s3cr3t-value");
    assert_eq!(got["headers"]["x-tenant"], "acme");
    assert_eq!(got["headers"]["x-trace"], "step", "step headers win");
    assert!(got["headers"].get("authorization").is_none());
    // The server echoed the secret back; the step output must not carry it.
    assert!(!out.to_string().contains("key-s3cr3t-value"), "{out}");
    assert_eq!(out["body"]["headers"]["x-api-key"], "[REDACTED]");

    // Default: Authorization: Bearer <secret>.
    let bearer = ResolvedConnection {
        config: json!({"baseUrl": base.clone()}),
        secret: Some("tok-123456".into()),
        ..conn.clone()
    };
    run(json!({"url": "echo"}), Some(&bearer)).await.unwrap();
    let got = seen.0.lock().unwrap().last().cloned().unwrap();
    assert_eq!(got["headers"]["authorization"], "Bearer tok-123456");

    // An absolute URL on another origin gets neither the secret nor the default headers.
    let (other, other_seen) = server().await;
    run(json!({"url": format!("{other}/hook")}), Some(&conn))
        .await
        .unwrap();
    let got = other_seen.0.lock().unwrap().last().cloned().unwrap();
    assert!(got["headers"].get("x-api-key").is_none(), "{got}");
    assert!(got["headers"].get("x-tenant").is_none(), "{got}");
}

#[tokio::test]
async fn bad_config_is_rejected_without_a_call() {
    for (config, needle) in [
        (json!({"url": "/relative"}), "must be absolute"),
        (json!({"url": ""}), "'url' is empty"),
        (
            json!({"url": "http://127.0.0.1:1/", "method": "FETCH"}),
            "'method'",
        ),
        (
            json!({"url": "http://127.0.0.1:1/", "headers": "x"}),
            "headers must be an object",
        ),
        (
            json!({"url": "http://127.0.0.1:1/", "timeoutMs": -1}),
            "timeoutMs",
        ),
    ] {
        let err = run(config, None).await.unwrap_err();
        assert_eq!(err.code, "INVALID_CONFIG");
        assert!(!err.retryable);
        assert!(
            err.message.contains(needle),
            "{} lacks {needle}",
            err.message
        );
    }
    let smtp = ResolvedConnection {
        id: "c".into(),
        provider: flowctl::store::ConnectionProvider::Smtp,
        config: json!({}),
        secret: None,
    };
    let err = run(json!({"url": "http://127.0.0.1:1/"}), Some(&smtp))
        .await
        .unwrap_err();
    assert_eq!(err.code, "INVALID_CONFIG");
}
