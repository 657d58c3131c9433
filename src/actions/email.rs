//! `email` steps: build a MIME message and send it over SMTP with lettre.
//! Depends on lettre (tokio + rustls, no OpenSSL) and rand.
//!
//! Connection (`provider: "smtp"`): `host`, `port` (default by `tls`: `none` 25,
//! `starttls` 587, `tls` 465), `tls` (`none` | `starttls` | `tls`, default `starttls`),
//! `username` with the secret as password (AUTH PLAIN/LOGIN), `from` (default sender),
//! `acceptInvalidCerts` (for self-signed test relays only), `heloName`.
//!
//! Step config: `to`, `cc`, `bcc` (a string with commas, or an array of strings; each may be
//! `Name <a@b.c>`), `from` (overrides the connection's), `replyTo`, `subject`,
//! `body.html`, `body.text` (both → `multipart/alternative`), or `body` as a plain string.
//! Decisions:
//! * `to` empty after rendering → `INVALID_CONFIG` "email 'to' is empty" (the engine adds
//!   which template produced it); a malformed address → `INVALID_CONFIG` naming the field.
//! * The `Message-ID` is ours (`<random.flowctl@sender-domain>`) and is the output's
//!   `messageId`; `accepted` lists every envelope recipient (to, cc, bcc) — lettre fails the
//!   whole send if the server refuses any of them; `response` is the server's final reply.
//! * `Bcc` recipients get the mail but no `Bcc` header is sent.
//! * Retryable: connection refused/dropped (`CONNECT`), timeouts (`TIMEOUT`), SMTP 4xx
//!   transient replies and garbled replies (`SMTP`). Not retryable: SMTP 5xx permanent
//!   replies, TLS failures (a certificate problem does not heal by itself) and client-side
//!   errors such as no common AUTH mechanism (`SMTP`).

use std::time::Duration;

use lettre::message::{Mailbox, Mailboxes, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{Value, json};

use super::{ActionError, ResolvedConnection, opt_string, type_name};

pub(crate) async fn send(
    config: &Value,
    conn: Option<&ResolvedConnection>,
    budget: Duration,
) -> Result<Value, ActionError> {
    let conn = conn.ok_or_else(|| ActionError::invalid_config("email needs an smtp connection"))?;
    let (message, message_id) = build_message(config, conn)?;
    // Resolved here, not by lettre through getaddrinfo: the static binary has no NSS.
    let host = opt_string(&conn.config, "host")?.unwrap_or_default();
    let ip = match host.trim() {
        "" => None, // `transport` names the missing host
        name => Some(super::dns::resolve(name).await?),
    };
    let transport = transport(conn, budget, ip)?;
    let accepted: Vec<String> = message
        .envelope()
        .to()
        .iter()
        .map(ToString::to_string)
        .collect();
    let response = transport.send(message).await.map_err(smtp_error)?;
    let reply: Vec<&str> = response.message().collect();
    Ok(json!({
        "messageId": message_id,
        "accepted": accepted,
        "response": format!("{} {}", response.code(), reply.join(" ")).trim_end(),
    }))
}

fn build_message(
    config: &Value,
    conn: &ResolvedConnection,
) -> Result<(Message, String), ActionError> {
    let to = mailboxes(config, "to")?;
    if to.is_empty() {
        return Err(ActionError::empty("to", "email 'to' is empty"));
    }
    let from_text = match opt_string(config, "from")?.filter(|s| !s.trim().is_empty()) {
        Some(from) => from,
        None => opt_string(&conn.config, "from")?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                ActionError::invalid_config(format!(
                    "email has no sender: set 'from' on the step or on connection {}",
                    conn.id
                ))
            })?,
    };
    let from: Mailbox = from_text.trim().parse().map_err(|e| {
        ActionError::invalid_config(format!("email 'from': invalid address '{from_text}': {e}"))
    })?;

    let id = message_id(&from);
    let mut builder = Message::builder()
        .from(from)
        .subject(opt_string(config, "subject")?.unwrap_or_default())
        .message_id(Some(id.clone()));
    for mbox in to {
        builder = builder.to(mbox);
    }
    for mbox in mailboxes(config, "cc")? {
        builder = builder.cc(mbox);
    }
    for mbox in mailboxes(config, "bcc")? {
        builder = builder.bcc(mbox);
    }
    for mbox in mailboxes(config, "replyTo")? {
        builder = builder.reply_to(mbox);
    }

    let (html, text) = match config.get("body") {
        None | Some(Value::Null) => (None, None),
        Some(Value::String(text)) => (None, Some(text.clone())),
        Some(body @ Value::Object(_)) => (opt_string(body, "html")?, opt_string(body, "text")?),
        Some(other) => {
            return Err(ActionError::invalid_config(format!(
                "email 'body' must be an object {{html, text}} or a string, got {}",
                type_name(other)
            )));
        }
    };
    let built = match (html, text) {
        (Some(html), Some(text)) => {
            builder.multipart(MultiPart::alternative_plain_html(text, html))
        }
        (Some(html), None) => builder.singlepart(SinglePart::html(html)),
        (None, text) => builder.singlepart(SinglePart::plain(text.unwrap_or_default())),
    };
    let message =
        built.map_err(|e| ActionError::invalid_config(format!("email could not be built: {e}")))?;
    Ok((message, id))
}

/// `to`/`cc`/`bcc`/`replyTo`: a comma-separated string or an array of strings.
fn mailboxes(config: &Value, key: &str) -> Result<Vec<Mailbox>, ActionError> {
    let texts: Vec<&str> = match config.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| {
                v.as_str().ok_or_else(|| {
                    ActionError::invalid_config(format!(
                        "email '{key}' must hold addresses as strings, got {}",
                        type_name(v)
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(ActionError::invalid_config(format!(
                "email '{key}' must be a string or an array of strings, got {}",
                type_name(other)
            )));
        }
    };
    let mut out = Vec::new();
    for text in texts {
        let list = text.trim().trim_matches(|c| c == ',' || c == ';').trim();
        if list.is_empty() {
            continue;
        }
        let parsed: Mailboxes = list
            .parse()
            .or_else(|_| list.replace(';', ",").parse())
            .map_err(|e| {
                ActionError::invalid_config(format!("email '{key}': invalid address '{list}': {e}"))
            })?;
        out.extend(parsed);
    }
    Ok(out)
}

fn message_id(from: &Mailbox) -> String {
    let random: [u8; 16] = rand::random();
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("<{hex}.flowctl@{}>", from.email.domain())
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum TlsMode {
    None,
    StartTls,
    Tls,
}

fn transport(
    conn: &ResolvedConnection,
    budget: Duration,
    connect_to: Option<std::net::IpAddr>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, ActionError> {
    let cfg = &conn.config;
    let host = opt_string(cfg, "host")?
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            ActionError::invalid_config(format!("smtp connection {} has no 'host'", conn.id))
        })?;
    let mode = match opt_string(cfg, "tls")?
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("starttls") => TlsMode::StartTls,
        Some("none") => TlsMode::None,
        Some("tls") => TlsMode::Tls,
        Some(other) => {
            return Err(ActionError::invalid_config(format!(
                "smtp connection {}: 'tls' must be none, starttls or tls, got '{other}'",
                conn.id
            )));
        }
    };
    let port = match cfg.get("port") {
        None | Some(Value::Null) => default_port(mode),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|p| (1..=65535).contains(p))
            .map(|p| p as u16)
            .ok_or_else(|| {
                ActionError::invalid_config(format!(
                    "smtp connection {}: 'port' must be 1-65535, got {v}",
                    conn.id
                ))
            })?,
    };
    // Connect to the resolved address; TLS still verifies the certificate for `host`.
    let server = connect_to.map_or_else(|| host.clone(), |ip| ip.to_string());
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server)
        .port(port)
        .timeout(Some(budget));
    if mode != TlsMode::None {
        let accept_invalid = cfg.get("acceptInvalidCerts").and_then(Value::as_bool) == Some(true);
        let params = TlsParameters::builder(host)
            .dangerous_accept_invalid_certs(accept_invalid)
            .build()
            .map_err(|e| ActionError::new("SMTP", format!("TLS setup failed: {e}"), false))?;
        builder = builder.tls(match mode {
            TlsMode::StartTls => Tls::Required(params),
            _ => Tls::Wrapper(params),
        });
    }
    if let Some(name) = opt_string(cfg, "heloName")?.filter(|s| !s.is_empty()) {
        builder = builder.hello_name(ClientId::Domain(name));
    }
    let username = opt_string(cfg, "username")?.filter(|s| !s.is_empty());
    match (username, conn.secret.as_deref()) {
        (Some(user), Some(password)) => {
            builder = builder.credentials(Credentials::new(user, password.to_string()));
        }
        (Some(_), None) => {
            return Err(ActionError::invalid_config(format!(
                "smtp connection {} has a username but no secret (password)",
                conn.id
            )));
        }
        (None, _) => {}
    }
    Ok(builder.build())
}

fn default_port(mode: TlsMode) -> u16 {
    match mode {
        TlsMode::None => 25,
        TlsMode::StartTls => 587,
        TlsMode::Tls => 465,
    }
}

fn smtp_error(e: lettre::transport::smtp::Error) -> ActionError {
    // lettre's messages quote server replies and I/O causes, never credentials.
    let text = e.to_string();
    if e.is_timeout() {
        ActionError::new("TIMEOUT", format!("SMTP timed out: {text}"), true)
    } else if e.is_transient() {
        ActionError::new("SMTP", format!("SMTP server refused for now: {text}"), true)
    } else if e.is_permanent() {
        ActionError::new("SMTP", format!("SMTP server refused: {text}"), false)
    } else if e.is_tls() || e.is_client() {
        ActionError::new("SMTP", format!("SMTP failed: {text}"), false)
    } else if e.is_response() {
        ActionError::new(
            "SMTP",
            format!("SMTP server sent a bad reply: {text}"),
            true,
        )
    } else {
        ActionError::new("CONNECT", format!("SMTP connection failed: {text}"), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(config: Value) -> ResolvedConnection {
        ResolvedConnection {
            id: "conn_smtp".into(),
            provider: crate::store::ConnectionProvider::Smtp,
            config,
            secret: None,
        }
    }

    #[test]
    fn addresses_from_strings_and_arrays() {
        let cfg = json!({
            "to": "a@x.com, \"Doe, Jane\" <jane@x.com>",
            "cc": ["c@x.com", null, "d@x.com; e@x.com"],
            "bcc": "  ",
        });
        let to = mailboxes(&cfg, "to").unwrap();
        assert_eq!(to.len(), 2);
        assert_eq!(to[1].name.as_deref(), Some("Doe, Jane"));
        assert_eq!(mailboxes(&cfg, "cc").unwrap().len(), 3);
        assert!(mailboxes(&cfg, "bcc").unwrap().is_empty());
        assert!(mailboxes(&json!({"to": "not an address"}), "to").is_err());
        assert!(mailboxes(&json!({"to": 5}), "to").is_err());
    }

    #[test]
    fn empty_to_and_missing_sender_are_config_errors() {
        let c = conn(json!({"host": "h", "from": "shop@x.com"}));
        let err = build_message(&json!({"to": "", "subject": "s"}), &c).unwrap_err();
        assert_eq!(
            (err.code.as_str(), err.message.as_str()),
            ("INVALID_CONFIG", "email 'to' is empty")
        );
        assert!(!err.retryable);
        let err = build_message(&json!({"to": null}), &c).unwrap_err();
        assert_eq!(err.message, "email 'to' is empty");
        let err =
            build_message(&json!({"to": "a@x.com"}), &conn(json!({"host": "h"}))).unwrap_err();
        assert!(err.message.contains("no sender"), "{}", err.message);
    }

    #[test]
    fn ports_follow_tls_mode() {
        assert_eq!(default_port(TlsMode::None), 25);
        assert_eq!(default_port(TlsMode::StartTls), 587);
        assert_eq!(default_port(TlsMode::Tls), 465);
        let bad = conn(json!({"host": "h", "tls": "ssl"}));
        assert!(transport(&bad, Duration::from_secs(1), None).is_err());
        let ok = conn(json!({"host": "h", "tls": "tls", "port": "2465"}));
        assert!(transport(&ok, Duration::from_secs(1), None).is_ok());
    }
}
