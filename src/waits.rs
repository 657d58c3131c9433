//! Waiting for people and outside systems, outside the pure engine: approval
//! tokens (256 random bits, only their hash stored), callback tokens (derived
//! from the server's key, the run and the step, so a callback URL exists
//! before the run reaches its step), the form token of the approval page,
//! the links' base URL (`--public-url`), and the mailer that sends approval
//! links at least once without ever holding up a run's commit.

use crate::actions::{ActionContext, ActionKind, Actions, ResolvedConnection};
use crate::engine::{ConnectionRef, resolve};
use crate::secrets::SecretBox;
use crate::store::{ApprovalMail, ConnectionRow, Store};
use crate::workflow::CompiledWorkflow;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value, json};
use std::time::Duration;
use tokio::sync::watch;

/// A new approval token and its SHA-256 (hex), which is all the store keeps.
pub fn new_approval_token() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let token = format!("apv_{}", B64.encode(bytes));
    let hash = hash_token(&token);
    (token, hash)
}

pub fn hash_token(token: &str) -> String {
    crate::ids::hash_api_key(token)
}

/// The callback token of a run's step: `<base64url(run \n step)>.<base64url(mac)>`.
pub fn callback_token(secrets: &SecretBox, run_id: &str, step_id: &str) -> String {
    let what = format!("{run_id}\n{step_id}");
    let mac = secrets.mac(format!("callback\n{what}").as_bytes());
    format!("{}.{}", B64.encode(what.as_bytes()), B64.encode(mac))
}

/// The run and step a callback token names, if this server made it (constant-time check).
pub fn parse_callback_token(secrets: &SecretBox, token: &str) -> Option<(String, String)> {
    use subtle::ConstantTimeEq;
    let (what, mac) = token.split_once('.')?;
    let what = String::from_utf8(B64.decode(what).ok()?).ok()?;
    let mac = B64.decode(mac).ok()?;
    let expected = secrets.mac(format!("callback\n{what}").as_bytes());
    if mac.len() != expected.len() || !bool::from(mac.ct_eq(&expected)) {
        return None;
    }
    let (run, step) = what.split_once('\n')?;
    Some((run.to_string(), step.to_string()))
}

/// The form token of an approval page: derived from the approval token's hash,
/// so the page needs no session and the POST proves the page was loaded.
pub fn form_token(secrets: &SecretBox, token_hash: &str) -> String {
    B64.encode(secrets.mac(format!("approve-form\n{token_hash}").as_bytes()))
}

pub fn form_token_ok(secrets: &SecretBox, token_hash: &str, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    let expected = form_token(secrets, token_hash);
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// `{stepId: {url}}` for every callback `wait` step of the workflow.
pub fn callback_urls(
    secrets: &SecretBox,
    public_url: &str,
    wf: &CompiledWorkflow,
    run_id: &str,
) -> Value {
    let mut out = Map::new();
    for step in wf
        .steps
        .iter()
        .filter(|s| crate::workflow::waits::is_callback_wait(s))
    {
        let token = callback_token(secrets, run_id, &step.id);
        out.insert(
            step.id.clone(),
            json!({"url": format!("{}/callbacks/{token}", public_url.trim_end_matches('/'))}),
        );
    }
    if out.is_empty() {
        Value::Null
    } else {
        Value::Object(out)
    }
}

/// Whether an approver names an email address (gets a mail) rather than a group.
pub fn is_email(approver: &str) -> bool {
    let a = approver.trim();
    match a.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !a.contains(char::is_whitespace)
        }
        None => false,
    }
}

const MAIL_LEASE_MS: i64 = 120_000;
const MAIL_MAX_ATTEMPTS: i64 = 8;
const MAIL_POLL: Duration = Duration::from_secs(1);

/// Sends approval mails until `stop`: due ones are taken with a lease (a
/// crash sends them again), sent through the run's SMTP connection, then
/// forgotten; a failure is retried with backoff.
pub async fn run_mailer(
    store: Store,
    secrets: SecretBox,
    public_url: String,
    mut stop: watch::Receiver<bool>,
) {
    let actions = Actions::new();
    loop {
        if *stop.borrow() {
            return;
        }
        match store.claim_approval_mails(MAIL_LEASE_MS, 16).await {
            Ok(mails) => {
                for m in mails {
                    let hash = m.token_hash.clone();
                    let attempts = m.attempts + 1;
                    let retry_at = match send(&store, &secrets, &actions, &public_url, m).await {
                        Ok(()) => None,
                        Err(e) if attempts >= MAIL_MAX_ATTEMPTS => {
                            tracing::error!(error = %e, "approval mail not sent; giving up");
                            None
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, attempts, "approval mail not sent; retrying");
                            let backoff = 2_000i64.saturating_mul(1 << attempts.min(12));
                            Some(crate::time::now_ms() + backoff)
                        }
                    };
                    if let Err(e) = store.approval_mail_done(hash, retry_at).await {
                        tracing::warn!(error = %e, "cannot record an approval mail; it is sent again");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read approval mails"),
        }
        tokio::select! {
            _ = tokio::time::sleep(MAIL_POLL) => {}
            _ = stop.changed() => {}
        }
    }
}

async fn send(
    store: &Store,
    secrets: &SecretBox,
    actions: &Actions,
    public_url: &str,
    m: ApprovalMail,
) -> Result<(), String> {
    let token = secrets
        .decrypt(&m.sealed)
        .map_err(|_| "the approval token cannot be unsealed with this server's key".to_string())?;
    let all = store.list_connections().await.map_err(|e| e.to_string())?;
    let refs: Vec<ConnectionRef> = all.iter().map(ConnectionRow::as_ref).collect();
    let id = resolve(
        crate::store::ConnectionProvider::Smtp,
        m.connection_id.as_deref(),
        None,
        &refs,
    )
    .map_err(|_| "no usable smtp connection".to_string())?
    .ok_or_else(|| "approval mails need an active smtp connection".to_string())?
    .to_string();
    let row = all
        .into_iter()
        .find(|c| c.id == id)
        .ok_or("the smtp connection vanished")?;
    let secret = match &row.secret {
        None => None,
        Some(blob) => Some(
            secrets
                .decrypt(blob)
                .map_err(|_| "the smtp connection's secret cannot be decrypted".to_string())?,
        ),
    };
    let conn = ResolvedConnection {
        id: row.id,
        provider: row.provider,
        config: row.config,
        secret,
    };
    let link = format!("{}/approve/{token}", public_url.trim_end_matches('/'));
    let deadline = crate::time::rfc3339(m.expires_at);
    let text = format!(
        "{}\n\nApprove or reject: {link}\n\nRun {} (step {}) waits for your decision until {deadline}.\nThe link is yours alone; opening it changes nothing until you press a button.\n",
        m.reason, m.run_id, m.step_id
    );
    let config = json!({
        "to": m.approver,
        "subject": format!("Approval needed: {}", first_line(&m.reason)),
        "body": {"text": text},
    });
    let ctx = ActionContext {
        run_id: &m.run_id,
        step_id: &m.step_id,
        timeout: Duration::from_secs(30),
    };
    actions
        .execute(ActionKind::Email, &config, Some(&conn), &ctx)
        .await
        .map(|_| ())
        .map_err(|e| format!("{}: {}", e.code, e.message))
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    line.chars().take(120).collect()
}
