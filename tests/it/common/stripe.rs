//! A local stand-in for Stripe's API (it cannot be reached from here): records
//! every request and answers like Stripe for the invoice flow. flowctl talks
//! to it through the production code path, via the connection's `baseUrl`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq)]
pub struct StripeRequest {
    pub method: String,
    pub path: String,
    pub auth: Option<String>,
    pub idempotency_key: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

#[derive(Clone, Default)]
pub struct StripeStandIn {
    pub url: String,
    pub seen: Arc<Mutex<Vec<StripeRequest>>>,
    /// Answer this many invoice-item calls with a 500 first.
    pub fail_items: Arc<AtomicUsize>,
}

async fn handle(
    State(s): State<StripeStandIn>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    s.seen.lock().unwrap().push(StripeRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        auth: header("authorization"),
        idempotency_key: header("idempotency-key"),
        content_type: header("content-type"),
        body,
    });
    let err = |status: StatusCode, message: &str, kind: &str| {
        (
            status,
            axum::Json(json!({"error": {"message": message, "type": kind}})),
        )
            .into_response()
    };
    if header("authorization").as_deref() != Some("Bearer sk_test_flowctl") {
        return err(
            StatusCode::UNAUTHORIZED,
            "Invalid API Key provided",
            "invalid_request_error",
        );
    }
    match (method.as_str(), uri.path()) {
        ("POST", "/v1/invoices") => axum::Json(json!({"id": "in_1", "object": "invoice", "status": "draft", "number": null})).into_response(),
        ("POST", "/v1/invoiceitems") => {
            if s.fail_items.load(Ordering::SeqCst) > 0 {
                s.fail_items.fetch_sub(1, Ordering::SeqCst);
                return err(StatusCode::INTERNAL_SERVER_ERROR, "An unknown error occurred", "api_error");
            }
            axum::Json(json!({"id": "ii_1", "object": "invoiceitem", "invoice": "in_1"})).into_response()
        }
        ("POST", "/v1/invoices/in_1/finalize") => {
            axum::Json(json!({"id": "in_1", "object": "invoice", "status": "open", "number": "INV-0042", "total": 4858})).into_response()
        }
        _ => err(StatusCode::NOT_FOUND, "Unrecognized request URL", "invalid_request_error"),
    }
}

impl StripeStandIn {
    pub async fn start() -> StripeStandIn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s = StripeStandIn {
            url: format!("http://{}", listener.local_addr().unwrap()),
            ..Default::default()
        };
        let app = Router::new().fallback(handle).with_state(s.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        s
    }

    pub fn requests(&self) -> Vec<StripeRequest> {
        self.seen.lock().unwrap().clone()
    }
}
