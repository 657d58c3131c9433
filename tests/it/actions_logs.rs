//! Secrets stay out of logs: run actions with a connection secret under a TRACE-level
//! subscriber and search everything that was logged.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowctl::actions::{ActionContext, ActionKind, Actions, ResolvedConnection};
use serde_json::json;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn trace_logs_never_contain_the_secret() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|headers: axum::http::HeaderMap| async move {
        // Echo the credential back, in the body and in an error status.
        let auth = headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (
            axum::http::StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"message": format!("bad key {auth}")}})),
        )
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let secret = "sk_test_never_log_me_42";
    let ctx = ActionContext {
        run_id: "run_log",
        step_id: "s1",
        timeout: Duration::from_secs(5),
    };
    let actions = Actions::new();
    let http = ResolvedConnection {
        id: "conn_http".into(),
        provider: flowctl::store::ConnectionProvider::Http,
        config: json!({"baseUrl": format!("http://{addr}")}),
        secret: Some(secret.into()),
    };
    let stripe = ResolvedConnection {
        provider: flowctl::store::ConnectionProvider::Stripe,
        ..http.clone()
    };
    let smtp = ResolvedConnection {
        provider: flowctl::store::ConnectionProvider::Smtp,
        config: json!({"host": "127.0.0.1", "port": 1, "tls": "none", "username": "u", "from": "a@example.com"}),
        ..http.clone()
    };
    let e1 = actions
        .execute(
            ActionKind::HttpRequest,
            &json!({"url": "/x"}),
            Some(&http),
            &ctx,
        )
        .await
        .unwrap_err();
    let e2 = actions
        .execute(
            ActionKind::StripeCreateCustomer,
            &json!({}),
            Some(&stripe),
            &ctx,
        )
        .await
        .unwrap_err();
    let e3 = actions
        .execute(
            ActionKind::Email,
            &json!({"to": "b@example.com", "subject": "s"}),
            Some(&smtp),
            &ctx,
        )
        .await
        .unwrap_err();
    for e in [&e1, &e2, &e3] {
        assert!(!e.message.contains(secret), "{}", e.message);
        assert!(!format!("{e:?}").contains(secret));
    }
    assert!(format!("{http:?}").contains("conn_http") && !format!("{http:?}").contains(secret));

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("action failed"),
        "the subscriber captured the actions' logs:\n{logs}"
    );
    assert!(!logs.contains(secret), "secret in logs:\n{logs}");
}
