//! `stripe.*` against a local Stripe stand-in (axum on 127.0.0.1): exact form bodies,
//! `Authorization`, derived `Idempotency-Key`s (the same on a retry), error mapping.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use flowctl::actions::{ActionContext, ActionError, ActionKind, Actions, ResolvedConnection};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
struct Req {
    method: String,
    path: String,
    query: Option<String>,
    auth: Option<String>,
    idempotency_key: Option<String>,
    content_type: Option<String>,
    body: String,
}

#[derive(Clone, Default)]
struct Stand {
    seen: Arc<Mutex<Vec<Req>>>,
    /// How many more `POST /v1/invoices` answer 500.
    fail_invoices: Arc<AtomicUsize>,
}

fn stripe_error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Response {
    let mut error = json!({"message": message, "type": kind});
    if let Some(code) = code {
        error["code"] = json!(code);
    }
    (status, axum::Json(json!({"error": error}))).into_response()
}

async fn stripe(
    State(stand): State<Stand>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string());
    let auth = header("authorization");
    stand.seen.lock().unwrap().push(Req {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        auth: auth.clone(),
        idempotency_key: header("idempotency-key"),
        content_type: header("content-type"),
        body,
    });
    if auth.as_deref() != Some("Bearer sk_test_123") {
        let key = auth.unwrap_or_default().replace("Bearer ", "");
        let msg = format!("Invalid API Key provided: {key}");
        return stripe_error(
            StatusCode::UNAUTHORIZED,
            &msg,
            "invalid_request_error",
            None,
        );
    }
    let invoice = json!({"id": "in_1", "object": "invoice", "status": "draft", "number": null, "total": 0, "currency": "usd"});
    match (method.as_str(), uri.path()) {
        ("POST", "/v1/customers") => axum::Json(json!({"id": "cus_new", "object": "customer"})).into_response(),
        ("GET", "/v1/customers/cus_123") => axum::Json(json!({"id": "cus_123", "object": "customer"})).into_response(),
        ("GET", path) if path.starts_with("/v1/customers/") => stripe_error(
            StatusCode::NOT_FOUND,
            "No such customer: 'cus_missing'",
            "invalid_request_error",
            Some("resource_missing"),
        ),
        ("POST", "/v1/invoices") => {
            let left = stand.fail_invoices.load(Ordering::SeqCst);
            if left > 0 {
                stand.fail_invoices.store(left - 1, Ordering::SeqCst);
                return stripe_error(StatusCode::INTERNAL_SERVER_ERROR, "An unknown error occurred", "api_error", None);
            }
            axum::Json(invoice).into_response()
        }
        ("POST", "/v1/invoiceitems") => {
            axum::Json(json!({"id": "ii_1", "object": "invoiceitem", "invoice": "in_1", "amount": 4858})).into_response()
        }
        ("GET", "/v1/invoices/in_1") => {
            axum::Json(json!({"id": "in_1", "object": "invoice", "status": "draft", "number": null, "total": 4858})).into_response()
        }
        ("POST", "/v1/invoices/in_1/finalize") => {
            axum::Json(json!({"id": "in_1", "object": "invoice", "status": "open", "number": "INV-0001", "total": 4858}))
                .into_response()
        }
        _ => stripe_error(StatusCode::NOT_FOUND, "Unrecognized request URL", "invalid_request_error", None),
    }
}

async fn stand() -> (Stand, ResolvedConnection) {
    let stand = Stand::default();
    let app = Router::new().fallback(stripe).with_state(stand.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let conn = ResolvedConnection {
        id: "conn_stripe".into(),
        provider: flowctl::store::ConnectionProvider::Stripe,
        config: json!({"baseUrl": format!("http://{addr}")}),
        secret: Some("sk_test_123".into()),
    };
    (stand, conn)
}

async fn exec(
    kind: ActionKind,
    config: Value,
    conn: &ResolvedConnection,
) -> Result<Value, ActionError> {
    let ctx = ActionContext {
        run_id: "run_abc",
        step_id: "create-invoice",
        timeout: Duration::from_secs(10),
    };
    Actions::new()
        .execute(kind, &config, Some(conn), &ctx)
        .await
}

fn post(path: &str, key: &str, body: &str) -> Req {
    Req {
        method: "POST".into(),
        path: path.into(),
        query: None,
        auth: Some("Bearer sk_test_123".into()),
        idempotency_key: Some(key.into()),
        content_type: Some("application/x-www-form-urlencoded".into()),
        body: body.into(),
    }
}

fn get(path: &str, query: Option<&str>) -> Req {
    Req {
        method: "GET".into(),
        path: path.into(),
        query: query.map(str::to_string),
        auth: Some("Bearer sk_test_123".into()),
        idempotency_key: None,
        content_type: None,
        body: String::new(),
    }
}

/// The seed's `create-invoice` step: amount 4857.84 (cents, from the transform) → 4858;
/// with an amount the invoice is finalized by default, so it has its number.
#[tokio::test]
async fn create_invoice_with_amount_sends_exact_requests_and_replays_keys_on_retry() {
    let (stand, conn) = stand().await;
    let config =
        json!({"customerId": "cus_123", "amount": 4857.84, "metadata": {"source": "api-order"}});
    let out = exec(ActionKind::StripeCreateInvoice, config.clone(), &conn)
        .await
        .unwrap();
    assert_eq!(out["id"], "in_1");
    assert_eq!(out["total"], 4858);
    assert_eq!(out["number"], "INV-0001");
    let expected = vec![
        post(
            "/v1/invoices",
            "run_abc:create-invoice",
            "currency=usd&customer=cus_123&metadata[source]=api-order&pending_invoice_items_behavior=exclude",
        ),
        post(
            "/v1/invoiceitems",
            "run_abc:create-invoice:item",
            "amount=4858&currency=usd&customer=cus_123&invoice=in_1&metadata[source]=api-order",
        ),
        post(
            "/v1/invoices/in_1/finalize",
            "run_abc:create-invoice:finalize",
            "",
        ),
    ];
    assert_eq!(*stand.seen.lock().unwrap(), expected);

    // A retry of the same step (same run, same step id) sends the same keys and bodies.
    exec(ActionKind::StripeCreateInvoice, config, &conn)
        .await
        .unwrap();
    let seen = stand.seen.lock().unwrap();
    assert_eq!(seen[3..], expected[..]);
}

#[tokio::test]
async fn create_invoice_can_finalize_and_maps_currency_and_description() {
    let (stand, conn) = stand().await;
    let config = json!({
        "customerId": "cus_123", "amount": "1999", "currency": "EUR",
        "description": "Order #42", "daysUntilDue": 30, "collectionMethod": "send_invoice", "finalize": true
    });
    let out = exec(ActionKind::StripeCreateInvoice, config, &conn)
        .await
        .unwrap();
    assert_eq!(out["number"], "INV-0001");
    let seen = stand.seen.lock().unwrap();
    assert_eq!(
        seen[0].body,
        "collection_method=send_invoice&currency=eur&customer=cus_123&days_until_due=30&pending_invoice_items_behavior=exclude"
    );
    assert_eq!(
        seen[1].body,
        "amount=1999&currency=eur&customer=cus_123&description=Order%20%2342&invoice=in_1"
    );
    assert_eq!(
        seen[2],
        post(
            "/v1/invoices/in_1/finalize",
            "run_abc:create-invoice:finalize",
            ""
        )
    );
    assert_eq!(seen.len(), 3);
}

#[tokio::test]
async fn create_invoice_without_amount_is_one_call() {
    let (stand, conn) = stand().await;
    let config = json!({"customerId": "cus_123", "autoAdvance": false, "pendingInvoiceItemsBehavior": "include"});
    exec(ActionKind::StripeCreateInvoice, config, &conn)
        .await
        .unwrap();
    let seen = stand.seen.lock().unwrap();
    assert_eq!(
        *seen,
        vec![post(
            "/v1/invoices",
            "run_abc:create-invoice",
            "auto_advance=false&customer=cus_123&pending_invoice_items_behavior=include"
        )]
    );
}

#[tokio::test]
async fn create_customer_retrieve_customer_and_finalize_invoice() {
    let (stand, conn) = stand().await;
    let out = exec(
        ActionKind::StripeCreateCustomer,
        json!({"email": "jo@example.com", "invoiceSettings": {"footer": "Thanks!"}, "metadata": {"crmId": 7}, "name": "Jo Doe"}),
        &conn,
    )
    .await
    .unwrap();
    assert_eq!(out["id"], "cus_new");
    let out = exec(
        ActionKind::StripeRetrieveCustomer,
        json!({"customerId": "cus_123", "expand": ["default_source"]}),
        &conn,
    )
    .await
    .unwrap();
    assert_eq!(out["id"], "cus_123");
    exec(
        ActionKind::StripeFinalizeInvoice,
        json!({"invoiceId": "in_1", "autoAdvance": true}),
        &conn,
    )
    .await
    .unwrap();
    let seen = stand.seen.lock().unwrap();
    assert_eq!(
        *seen,
        vec![
            post(
                "/v1/customers",
                "run_abc:create-invoice",
                "email=jo%40example.com&invoice_settings[footer]=Thanks%21&metadata[crmId]=7&name=Jo%20Doe"
            ),
            get("/v1/customers/cus_123", Some("expand[0]=default_source")),
            post(
                "/v1/invoices/in_1/finalize",
                "run_abc:create-invoice",
                "auto_advance=true"
            ),
        ]
    );
}

#[tokio::test]
async fn stripe_errors_carry_stripe_message_and_retry_class() {
    let (stand, conn) = stand().await;
    let err = exec(
        ActionKind::StripeRetrieveCustomer,
        json!({"customerId": "cus_missing"}),
        &conn,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "STRIPE_ERROR");
    assert!(!err.retryable);
    assert_eq!(
        err.message,
        "No such customer: 'cus_missing' (Stripe invalid_request_error, resource_missing, HTTP 404)"
    );

    stand.fail_invoices.store(1, Ordering::SeqCst);
    let err = exec(
        ActionKind::StripeCreateInvoice,
        json!({"customerId": "cus_123", "amount": 100}),
        &conn,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "STRIPE_ERROR");
    assert!(err.retryable, "5xx is retryable");
    assert!(
        err.message.starts_with("An unknown error occurred"),
        "{}",
        err.message
    );
    // The retry succeeds with the same idempotency key as the failed attempt.
    exec(
        ActionKind::StripeCreateInvoice,
        json!({"customerId": "cus_123", "amount": 100}),
        &conn,
    )
    .await
    .unwrap();
    let seen = stand.seen.lock().unwrap();
    let keys: Vec<_> = seen[1..]
        .iter()
        .filter(|r| r.path == "/v1/invoices")
        .map(|r| r.idempotency_key.clone())
        .collect();
    assert_eq!(keys, vec![Some("run_abc:create-invoice".to_string()); 2]);
}

#[tokio::test]
async fn secrets_stay_out_of_errors_and_missing_secret_is_a_config_error() {
    let (_stand, conn) = stand().await;
    let wrong = ResolvedConnection {
        secret: Some("sk_test_wrong_key_999".into()),
        ..conn.clone()
    };
    let err = exec(ActionKind::StripeCreateCustomer, json!({}), &wrong)
        .await
        .unwrap_err();
    assert_eq!(err.code, "STRIPE_ERROR");
    assert!(!err.retryable);
    assert!(
        !err.message.contains("sk_test_wrong_key_999"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("Invalid API Key provided: [REDACTED]"),
        "{}",
        err.message
    );

    let none = ResolvedConnection {
        secret: None,
        ..conn.clone()
    };
    let err = exec(ActionKind::StripeCreateCustomer, json!({}), &none)
        .await
        .unwrap_err();
    assert_eq!(err.code, "INVALID_CONFIG");
    assert!(!err.retryable);

    let ctx = ActionContext {
        run_id: "r",
        step_id: "s",
        timeout: Duration::from_secs(5),
    };
    let err = Actions::new()
        .execute(ActionKind::StripeCreateCustomer, &json!({}), None, &ctx)
        .await
        .unwrap_err();
    assert_eq!(err.code, "INVALID_CONFIG");

    let err = exec(
        ActionKind::StripeCreateInvoice,
        json!({"customerId": "cus_123", "amount": "lots"}),
        &conn,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "INVALID_CONFIG");
    let err = exec(
        ActionKind::StripeCreateInvoice,
        json!({"customerId": ""}),
        &conn,
    )
    .await
    .unwrap_err();
    assert_eq!(err.message, "stripe.createInvoice 'customerId' is empty");
}

#[tokio::test]
async fn unreachable_stripe_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let conn = ResolvedConnection {
        id: "conn_stripe".into(),
        provider: flowctl::store::ConnectionProvider::Stripe,
        config: json!({"baseUrl": format!("http://{addr}")}),
        secret: Some("sk_test_123".into()),
    };
    let err = exec(ActionKind::StripeCreateCustomer, json!({}), &conn)
        .await
        .unwrap_err();
    assert_eq!(err.code, "CONNECT");
    assert!(err.retryable);
}
