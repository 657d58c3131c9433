//! `email` steps against a real (minimal) SMTP server on 127.0.0.1: lettre talks to it
//! unchanged; the received MIME message is parsed and checked.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use flowctl::actions::{ActionContext, ActionError, ActionKind, Actions, ResolvedConnection};
use mail_parser::MessageParser;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Debug, Clone, Default)]
struct Received {
    mail_from: String,
    rcpt_to: Vec<String>,
    auth: Option<String>,
    data: String,
}

/// A tiny SMTP server (RFC 5321 subset: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT).
struct SmtpServer {
    addr: SocketAddr,
    mails: Arc<Mutex<Vec<Received>>>,
}

impl SmtpServer {
    /// `rcpt_reply`: answer every RCPT with this line instead of `250` (e.g. `"450 4.2.1 busy"`).
    async fn start(rcpt_reply: Option<&'static str>) -> SmtpServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let store = mails.clone();
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = session(socket, store, rcpt_reply).await;
                });
            }
        });
        SmtpServer { addr, mails }
    }

    fn mails(&self) -> Vec<Received> {
        self.mails.lock().unwrap().clone()
    }
}

async fn session(
    socket: tokio::net::TcpStream,
    store: Arc<Mutex<Vec<Received>>>,
    rcpt_reply: Option<&'static str>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    let mut current = Received::default();
    let mut auth = None;
    write.write_all(b"220 localhost ESMTP test\r\n").await?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250-localhost\r\n250-8BITMIME\r\n250 AUTH PLAIN LOGIN".into()
        } else if upper.starts_with("AUTH PLAIN ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(&cmd[11..])
                .unwrap();
            auth = Some(String::from_utf8(decoded).unwrap());
            "235 2.7.0 Authentication successful".into()
        } else if upper.starts_with("MAIL FROM:") {
            current = Received {
                auth: auth.clone(),
                ..Received::default()
            };
            current.mail_from = address(&cmd[10..]);
            "250 2.1.0 Ok".into()
        } else if upper.starts_with("RCPT TO:") {
            match rcpt_reply {
                Some(reply) => reply.into(),
                None => {
                    current.rcpt_to.push(address(&cmd[8..]));
                    "250 2.1.5 Ok".into()
                }
            }
        } else if upper == "DATA" {
            write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            current.data = data;
            store.lock().unwrap().push(std::mem::take(&mut current));
            "250 2.0.0 Ok: queued as T1".into()
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 Ok".into()
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.2 Command not recognized".into()
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
}

fn address(arg: &str) -> String {
    let arg = arg.trim().trim_start_matches('<');
    arg.split('>').next().unwrap_or_default().to_string()
}

fn smtp_conn(addr: SocketAddr) -> ResolvedConnection {
    ResolvedConnection {
        id: "conn_smtp".into(),
        provider: flowctl::store::ConnectionProvider::Smtp,
        config: json!({"host": "127.0.0.1", "port": addr.port(), "tls": "none", "username": "mailer", "from": "Shop <shop@example.com>"}),
        secret: Some("smtp-pass-1".into()),
    }
}

async fn send(config: Value, conn: Option<&ResolvedConnection>) -> Result<Value, ActionError> {
    let ctx = ActionContext {
        run_id: "run_1",
        step_id: "send-confirmation",
        timeout: Duration::from_secs(10),
    };
    Actions::new()
        .execute(ActionKind::Email, &config, conn, &ctx)
        .await
}

/// The seed's `send-confirmation` step, rendered.
#[tokio::test]
async fn html_email_is_delivered_with_auth_recipients_and_subject() {
    let server = SmtpServer::start(None).await;
    let html = "<p>Thank you for your order!</p><p>Total: $4857.84</p>";
    let out = send(
        json!({"action": "send", "to": "customer@example.com", "subject": "Order Confirmed - Invoice #INV-0001", "body": {"html": html}}),
        Some(&smtp_conn(server.addr)),
    )
    .await
    .unwrap();
    assert_eq!(out["accepted"], json!(["customer@example.com"]));
    assert!(
        out["response"].as_str().unwrap().starts_with("250"),
        "{out}"
    );
    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.mail_from, "shop@example.com");
    assert_eq!(mail.rcpt_to, ["customer@example.com"]);
    assert_eq!(mail.auth.as_deref(), Some("\0mailer\0smtp-pass-1"));

    let msg = MessageParser::default()
        .parse(mail.data.as_bytes())
        .unwrap();
    assert_eq!(msg.subject(), Some("Order Confirmed - Invoice #INV-0001"));
    assert_eq!(
        msg.to().unwrap().first().unwrap().address(),
        Some("customer@example.com")
    );
    assert_eq!(msg.from().unwrap().first().unwrap().name(), Some("Shop"));
    assert_eq!(msg.body_html(0).unwrap().trim(), html);
    assert!(
        msg.header_raw("Content-Type")
            .unwrap()
            .contains("text/html")
    );
    let id = out["messageId"].as_str().unwrap();
    assert!(id.ends_with("@example.com>"), "{id}");
    assert_eq!(format!("<{}>", msg.message_id().unwrap()), id);
}

#[tokio::test]
async fn text_and_html_make_multipart_alternative_with_cc_bcc_reply_to() {
    let server = SmtpServer::start(None).await;
    let out = send(
        json!({
            "to": ["a@example.com"],
            "cc": "b@example.com, \"Carl, Jr\" <c@example.com>",
            "bcc": "hidden@example.com",
            "from": "Ops <ops@example.org>",
            "replyTo": "reply@example.org",
            "subject": "Déjà vu ✓",
            "body": {"text": "plain version", "html": "<b>html version</b>"},
        }),
        Some(&smtp_conn(server.addr)),
    )
    .await
    .unwrap();
    assert_eq!(
        out["accepted"],
        json!([
            "a@example.com",
            "b@example.com",
            "c@example.com",
            "hidden@example.com"
        ])
    );
    let mail = &server.mails()[0];
    assert_eq!(mail.mail_from, "ops@example.org");
    assert_eq!(mail.rcpt_to.len(), 4);
    assert!(
        !mail.data.to_ascii_lowercase().contains("\nbcc:"),
        "Bcc header leaked:\n{}",
        mail.data
    );

    let msg = MessageParser::default()
        .parse(mail.data.as_bytes())
        .unwrap();
    assert!(
        msg.header_raw("Content-Type")
            .unwrap()
            .contains("multipart/alternative")
    );
    assert_eq!(msg.subject(), Some("Déjà vu ✓"));
    assert_eq!(msg.body_text(0).unwrap().trim(), "plain version");
    assert_eq!(msg.body_html(0).unwrap().trim(), "<b>html version</b>");
    assert_eq!(msg.cc().unwrap().iter().count(), 2);
    assert_eq!(
        msg.reply_to().unwrap().first().unwrap().address(),
        Some("reply@example.org")
    );
}

#[tokio::test]
async fn empty_to_fails_before_any_delivery() {
    let server = SmtpServer::start(None).await;
    for to in [json!(""), json!(null), json!([]), json!(" , ")] {
        let err = send(
            json!({"to": to, "subject": "s", "body": {"html": "x"}}),
            Some(&smtp_conn(server.addr)),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, "INVALID_CONFIG");
        assert_eq!(err.message, "email 'to' is empty");
        assert!(!err.retryable);
    }
    assert!(server.mails().is_empty());
    let err = send(json!({"to": "a@example.com"}), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, "INVALID_CONFIG");
}

#[tokio::test]
async fn smtp_transient_replies_retry_permanent_ones_do_not() {
    let busy = SmtpServer::start(Some("450 4.2.1 Mailbox busy, try later")).await;
    let err = send(
        json!({"to": "a@example.com", "subject": "s"}),
        Some(&smtp_conn(busy.addr)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "SMTP");
    assert!(err.retryable, "{}", err.message);
    assert!(err.message.contains("Mailbox busy"), "{}", err.message);

    let gone = SmtpServer::start(Some("550 5.1.1 No such user")).await;
    let err = send(
        json!({"to": "a@example.com", "subject": "s"}),
        Some(&smtp_conn(gone.addr)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "SMTP");
    assert!(!err.retryable, "{}", err.message);
    assert!(!err.message.contains("smtp-pass-1"));
}

#[tokio::test]
async fn refused_connection_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = send(
        json!({"to": "a@example.com", "subject": "s"}),
        Some(&smtp_conn(addr)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "CONNECT");
    assert!(err.retryable, "{}", err.message);
}
