//! The seed's complete "Process Customer Order" example, end to end: the real
//! server computes the total, creates the invoice at a Stripe stand-in and
//! emails the confirmation through a real SMTP server; the connection's secret
//! appears nowhere it should not.

use crate::common::smtp::SmtpServer;
use crate::common::stripe::StripeStandIn;
use crate::common::*;
use serde_json::{Value, json};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

const SECRET: &str = "sk_test_flowctl";

#[tokio::test(flavor = "multi_thread")]
async fn process_customer_order_runs_for_real() {
    if !have_python_module("aiosmtpd") {
        return;
    }
    let stripe = StripeStandIn::start().await;
    stripe.fail_items.store(1, Ordering::SeqCst);
    let s = Server::start_with(&["-v"]);
    let smtp = SmtpServer::start(s.home.path());

    // Connections through the CLI, the secret from an environment variable.
    let mut cmd = std::process::Command::new(BIN);
    env_for(&mut cmd, s.home.path());
    let out = cmd
        .env("STRIPE_KEY", SECRET)
        .args([
            "connections",
            "create",
            "--provider",
            "stripe",
            "--name",
            "Stripe (test)",
            "--id",
            "conn_stripe_test",
        ])
        .args([
            "--config",
            &json!({"baseUrl": stripe.url}).to_string(),
            "--secret-env",
            "STRIPE_KEY",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let smtp_config =
        json!({"host": "127.0.0.1", "port": smtp.port, "tls": "none", "from": "shop@example.com"});
    let out = s.cli(&[
        "connections",
        "create",
        "--provider",
        "smtp",
        "--name",
        "Local SMTP",
        "--config",
        &smtp_config.to_string(),
        "--default",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = s.cli(&["apply", "workflows/process_customer_order.json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Without a connection for Stripe the trigger would be refused; with the
    // seed's `connectionId` shape it is accepted.
    let input: Value = serde_json::from_str(
        &std::fs::read_to_string("workflows/process_customer_order.input.json").unwrap(),
    )
    .unwrap();
    let (status, v) = s
        .post(
            "/api/v1/workflows/wf_process_customer_order/run",
            json!({"input": input, "connectionId": "conn_stripe_test"}),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let run_id = v["data"]["runId"].as_str().unwrap().to_string();
    let run = s.wait_for_run(&run_id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        run["steps"][0]["output"],
        json!({"subtotal": 4498, "tax": 359.84, "total": 4857.84})
    );
    assert_eq!(
        run["steps"][1]["attempts"], 2,
        "the 500 from Stripe was retried"
    );
    assert_eq!(run["steps"][1]["output"]["number"], "INV-0042");
    assert_eq!(
        run["steps"][2]["output"]["accepted"],
        json!(["customer@example.com"])
    );

    // Exactly what Stripe received: form-encoded, bearer secret, derived idempotency keys.
    let reqs = stripe.requests();
    let summary: Vec<(String, String, Option<String>, String)> = reqs
        .iter()
        .map(|r| {
            (
                r.method.clone(),
                r.path.clone(),
                r.idempotency_key.clone(),
                r.body.clone(),
            )
        })
        .collect();
    let key = |suffix: &str| Some(format!("{run_id}:create-invoice{suffix}"));
    let invoice_body = "currency=usd&customer=cus_demo&metadata[source]=api-order&pending_invoice_items_behavior=exclude".to_string();
    let item_body =
        "amount=4858&currency=usd&customer=cus_demo&invoice=in_1&metadata[source]=api-order"
            .to_string();
    assert_eq!(
        summary,
        vec![
            (
                "POST".into(),
                "/v1/invoices".into(),
                key(""),
                invoice_body.clone()
            ),
            (
                "POST".into(),
                "/v1/invoiceitems".into(),
                key(":item"),
                item_body.clone()
            ),
            // The retry repeats the step with the same keys, so Stripe replays instead of duplicating.
            ("POST".into(), "/v1/invoices".into(), key(""), invoice_body),
            (
                "POST".into(),
                "/v1/invoiceitems".into(),
                key(":item"),
                item_body
            ),
            (
                "POST".into(),
                "/v1/invoices/in_1/finalize".into(),
                key(":finalize"),
                String::new()
            ),
        ]
    );
    for r in &reqs {
        assert_eq!(r.auth.as_deref(), Some("Bearer sk_test_flowctl"));
        if r.method == "POST" {
            assert_eq!(
                r.content_type.as_deref(),
                Some("application/x-www-form-urlencoded")
            );
        }
    }

    // The confirmation as the SMTP server received it.
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    let msg = mail_parser::MessageParser::default()
        .parse(&messages[0])
        .unwrap();
    assert_eq!(msg.subject(), Some("Order Confirmed - Invoice #INV-0042"));
    assert_eq!(
        msg.to().unwrap().first().unwrap().address(),
        Some("customer@example.com")
    );
    assert_eq!(
        msg.from().unwrap().first().unwrap().address(),
        Some("shop@example.com")
    );
    let html = msg.body_html(0).unwrap();
    assert!(html.contains("<p>Total: $4857.84</p>"), "{html}");

    // The secret is nowhere: API answers, run data, debug logs, the database file.
    let (_, conns) = s.get("/api/v1/connections").await;
    let (_, one) = s.get("/api/v1/connections/conn_stripe_test").await;
    assert_eq!(one["data"]["hasSecret"], true);
    let (_, run_again) = s.get(&format!("/api/v1/runs/{run_id}")).await;
    for text in [
        conns.to_string(),
        one.to_string(),
        run_again.to_string(),
        s.logs(),
    ] {
        assert!(!text.contains(SECRET), "secret leaked into: {text}");
    }
    assert!(s.logs().contains("DEBUG"), "the server ran with debug logs");
    for file in std::fs::read_dir(s.home.path()).unwrap().flatten() {
        let bytes = std::fs::read(file.path()).unwrap_or_default();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "secret in clear in {:?}",
            file.path()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn trigger_is_refused_when_connections_cannot_resolve() {
    let s = Server::start();
    let out = s.cli(&["apply", "workflows/process_customer_order.json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let input = json!({"customerId": "cus_1", "items": []});
    let (status, v) = s
        .post(
            "/api/v1/workflows/wf_process_customer_order/run",
            json!({"input": input}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "CONNECTION_REQUIRED");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("create-invoice"),
        "{v}"
    );

    let (status, v) = s
        .post(
            "/api/v1/workflows/wf_process_customer_order/run",
            json!({"input": input, "connectionId": "conn_nope"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("INVALID_CONNECTION"))
    );

    // An inactive connection is invalid too; nothing was queued by any of these.
    s.post("/api/v1/connections", json!({"provider": "stripe", "name": "off", "id": "conn_off", "status": "inactive", "secret": "x"})).await;
    let (status, v) = s
        .post(
            "/api/v1/workflows/wf_process_customer_order/run",
            json!({"input": input, "connectionId": "conn_off"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("INVALID_CONNECTION"))
    );
    let (_, runs) = s.get("/api/v1/runs").await;
    assert_eq!(runs["data"], json!([]));

    // The CLI lists and deletes connections; a deleted one is gone.
    let out = s.cli(&["connections", "list"]);
    assert!(
        stdout(&out).contains("conn_off") && stdout(&out).contains("inactive"),
        "{}",
        stdout(&out)
    );
    let out = s.cli(&["connections", "delete", "conn_off"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (status, _) = s.get("/api/v1/connections/conn_off").await;
    assert_eq!(status, 404);
    let out = s.cli(&["connections", "delete", "conn_off"]);
    assert_eq!(out.status.code(), Some(2), "deleting it again is a 404");
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_recipient_names_the_template() {
    if !have_python_module("aiosmtpd") {
        return;
    }
    let s = Server::start();
    let smtp = SmtpServer::start(s.home.path());
    s.post("/api/v1/connections", json!({"provider": "smtp", "name": "smtp", "config": {"host": "127.0.0.1", "port": smtp.port, "tls": "none", "from": "a@example.com"}})).await;
    s.apply(
        json!({"name": "Mailer", "steps": [{"id": "notify", "type": "email",
        "config": {"to": "{{input.customerEmail}}", "subject": "hi", "body": {"text": "hello"}}}]}),
    )
    .await;
    let run_id = s.trigger("wf_mailer", json!({})).await;
    let run = s.wait_for_run(&run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "failed");
    let message = run["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("'to' is empty") && message.contains("{{input.customerEmail}}"),
        "{message}"
    );
    assert_eq!(
        run["steps"][0]["attempts"], 1,
        "a config error is not retried"
    );
    assert!(
        run["steps"][0]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("input.customerEmail"),
        "{run}"
    );
    assert!(smtp.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn email_over_starttls_and_implicit_tls() {
    if !have_python_module("aiosmtpd") || !have("openssl", Command::new("openssl").arg("version")) {
        return;
    }
    use crate::common::smtp::SmtpTls;
    let s = Server::start();
    s.apply(
        json!({"name": "Secure Mail", "steps": [{"id": "notify", "type": "email",
        "config": {"to": "ops@example.com", "subject": "over {{ input.mode }}",
                   "body": {"text": "plain", "html": "<b>rich</b>"}}}]}),
    )
    .await;
    for (mode, tls) in [("starttls", SmtpTls::StartTls), ("tls", SmtpTls::Implicit)] {
        let dir = s.home.path().join(mode);
        std::fs::create_dir_all(&dir).unwrap();
        let smtp = SmtpServer::start_tls(&dir, tls);
        let conn = json!({"provider": "smtp", "name": mode, "id": "conn_mail", "default": true,
            "config": {"host": "127.0.0.1", "port": smtp.port, "tls": mode, "from": "a@example.com", "acceptInvalidCerts": true}});
        let (status, v) = s.post("/api/v1/connections", conn).await;
        assert!(status == 200 || status == 201, "{v}");
        let run_id = s.trigger("wf_secure_mail", json!({"mode": mode})).await;
        let run = s.wait_for_run(&run_id, Duration::from_secs(20)).await;
        assert_eq!(run["status"], "completed", "{mode}: {run}");
        let messages = smtp.messages();
        assert_eq!(messages.len(), 1, "{mode}");
        let msg = mail_parser::MessageParser::default()
            .parse(&messages[0])
            .unwrap();
        assert_eq!(msg.subject(), Some(format!("over {mode}").as_str()));
        assert_eq!(msg.body_text(0).as_deref(), Some("plain"));
        assert!(
            msg.body_html(0).unwrap().contains("<b>rich</b>"),
            "multipart/alternative with both parts"
        );
    }
}
