//! `stripe.*` actions over Stripe's REST API (form-encoded requests, JSON answers).
//! Depends on reqwest, rust_decimal and the sibling `form`/`http` helpers.
//!
//! Decisions:
//! * Base URL `https://api.stripe.com` unless the connection's `config.baseUrl`;
//!   `Authorization: Bearer <secret>` (a connection without a secret is `INVALID_CONFIG`);
//!   optional `config.apiVersion` → `Stripe-Version`.
//! * Every POST carries `Idempotency-Key: <runId>:<stepId>` (derived, so a retry or a
//!   resumed run replays instead of duplicating); the extra calls of `createInvoice` use
//!   `<runId>:<stepId>:item` and `:finalize`. GETs carry none (Stripe ignores them there).
//! * Config keys are camelCase and mapped to Stripe's snake_case at every level except
//!   inside `metadata`; `customerId` → `customer`; `invoiceId` is the path parameter. Any
//!   other key is passed through, so every Stripe parameter is reachable.
//! * `createCustomer` → `POST /v1/customers`; `retrieveCustomer` → `GET
//!   /v1/customers/{customerId}` (other keys, e.g. `expand`, go in the query);
//!   `finalizeInvoice` → `POST /v1/invoices/{invoiceId}/finalize`.
//! * `createInvoice` without `amount` → `POST /v1/invoices` with the parameters as given.
//!   With `amount`, three calls: `POST /v1/invoices` (draft; `pending_invoice_items_behavior
//!   =exclude` unless given), `POST /v1/invoiceitems {customer, invoice, amount, currency,
//!   description, metadata}` attached to *that* invoice, then `GET /v1/invoices/{id}` so the
//!   output shows the totals. Attaching the item to the invoice (rather than creating a
//!   pending item and `include`-ing it) keeps two concurrent runs for the same customer from
//!   sweeping up each other's items. `description` goes on the line item; `currency`
//!   (default `usd`, lowercased) on both. With `amount` the invoice is then finalized
//!   (`POST …/finalize`, so it has its `number`, which the seed's confirmation email
//!   shows) unless `finalize: false` keeps the draft; without `amount`, `finalize: true`
//!   asks for it.
//! * `amount` is in minor units (cents), as Stripe's API: the seed computes its total from
//!   prices like `1999`. A number or numeric string; a fractional amount (`4857.84`) is
//!   rounded to the nearest integer, ties to even (banker's rounding, no bias over many
//!   invoices) → `4858`.
//! * Errors: Stripe's `{"error": {message, type, code}}` → `STRIPE_ERROR` with Stripe's
//!   message. Retryable when Stripe says so (`Stripe-Should-Retry`), else for 429 and 5xx;
//!   connect errors and timeouts are retryable (`CONNECT`, `TIMEOUT`).

use reqwest::Method;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value};

use super::transport::{excerpt, read_body, retry_after, transport_error};
use super::{ActionContext, ActionError, ActionKind, ResolvedConnection, form, opt_string};

const DEFAULT_BASE: &str = "https://api.stripe.com";

struct Stripe<'a> {
    client: &'a reqwest::Client,
    base: String,
    secret: &'a str,
    api_version: Option<String>,
    idempotency_key: String,
}

pub(crate) async fn execute(
    client: &reqwest::Client,
    kind: ActionKind,
    config: &Value,
    conn: Option<&ResolvedConnection>,
    ctx: &ActionContext<'_>,
) -> Result<Value, ActionError> {
    let conn = conn
        .ok_or_else(|| ActionError::invalid_config(format!("{kind} needs a stripe connection")))?;
    let secret = conn
        .secret
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            ActionError::invalid_config(format!("stripe connection {} has no secret key", conn.id))
        })?;
    let base = opt_string(&conn.config, "baseUrl")?
        .unwrap_or_else(|| DEFAULT_BASE.to_string())
        .trim_end_matches('/')
        .to_string();
    let stripe = Stripe {
        client,
        base,
        secret: secret.trim(),
        api_version: opt_string(&conn.config, "apiVersion")?,
        idempotency_key: format!("{}:{}", ctx.run_id, ctx.step_id),
    };
    let mut params = params_of(config)?;
    match kind {
        ActionKind::StripeCreateCustomer => stripe.post("/v1/customers", &params, "").await,
        ActionKind::StripeRetrieveCustomer => {
            let id = take_id(&mut params, "customer", "customerId", kind)?;
            let path = format!("/v1/customers/{}", path_segment(&id));
            stripe.call(Method::GET, &path, &params, None).await
        }
        ActionKind::StripeFinalizeInvoice => {
            let id = take_id(&mut params, "invoice_id", "invoiceId", kind)?;
            let path = format!("/v1/invoices/{}/finalize", path_segment(&id));
            stripe.post(&path, &params, "").await
        }
        ActionKind::StripeCreateInvoice => create_invoice(&stripe, params).await,
        ActionKind::HttpRequest | ActionKind::Email => unreachable!("not a stripe action"),
    }
}

async fn create_invoice(
    stripe: &Stripe<'_>,
    mut params: Map<String, Value>,
) -> Result<Value, ActionError> {
    let customer = take_id(
        &mut params,
        "customer",
        "customerId",
        ActionKind::StripeCreateInvoice,
    )?;
    params.insert("customer".into(), Value::String(customer.clone()));
    // With an amount this is the "bill this customer" convenience, so the invoice is
    // finalized unless told otherwise: it then has its `number` (the seed's email uses it).
    let has_amount = params.get("amount").is_some_and(|v| !v.is_null());
    let finalize = match params.remove("finalize") {
        None | Some(Value::Null) => has_amount,
        Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(other) => {
            return Err(ActionError::invalid_config(format!(
                "stripe.createInvoice 'finalize' must be true or false, got {other}"
            )));
        }
    };
    let amount = match params.remove("amount") {
        None | Some(Value::Null) => None,
        Some(v) => Some(minor_units(&v)?),
    };
    let invoice = match amount {
        None => stripe.post("/v1/invoices", &params, "").await?,
        Some(amount) => {
            let currency = match params.remove("currency") {
                None | Some(Value::Null) => "usd".to_string(),
                Some(Value::String(c)) if !c.trim().is_empty() => c.trim().to_ascii_lowercase(),
                Some(other) => {
                    return Err(ActionError::invalid_config(format!(
                        "stripe.createInvoice 'currency' must be a currency code such as \"usd\", got {other}"
                    )));
                }
            };
            let description = params.remove("description");
            let mut item = Map::new();
            item.insert("customer".into(), Value::String(customer));
            item.insert("amount".into(), Value::from(amount));
            item.insert("currency".into(), Value::String(currency.clone()));
            if let Some(d) = description {
                item.insert("description".into(), d);
            }
            if let Some(m) = params.get("metadata") {
                item.insert("metadata".into(), m.clone());
            }
            params.insert("currency".into(), Value::String(currency));
            params
                .entry("pending_invoice_items_behavior")
                .or_insert_with(|| Value::String("exclude".into()));

            let draft = stripe.post("/v1/invoices", &params, "").await?;
            let id = object_id(&draft, "invoice")?;
            item.insert("invoice".into(), Value::String(id.clone()));
            stripe.post("/v1/invoiceitems", &item, ":item").await?;
            if !finalize {
                let path = format!("/v1/invoices/{}", path_segment(&id));
                return stripe.call(Method::GET, &path, &Map::new(), None).await;
            }
            draft
        }
    };
    if !finalize {
        return Ok(invoice);
    }
    let id = object_id(&invoice, "invoice")?;
    let path = format!("/v1/invoices/{}/finalize", path_segment(&id));
    stripe.post(&path, &Map::new(), ":finalize").await
}

impl Stripe<'_> {
    async fn post(
        &self,
        path: &str,
        params: &Map<String, Value>,
        key_suffix: &str,
    ) -> Result<Value, ActionError> {
        let key = format!("{}{key_suffix}", self.idempotency_key);
        self.call(Method::POST, path, params, Some(&key)).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        params: &Map<String, Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ActionError> {
        let pairs: Vec<(String, Value)> =
            params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let encoded = form::encode(&form::flatten(&pairs));
        let mut url = format!("{}{path}", self.base);
        let mut req = if method == Method::GET {
            if !encoded.is_empty() {
                url = format!("{url}?{encoded}");
            }
            self.client.get(&url)
        } else {
            self.client
                .request(method.clone(), &url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(encoded)
        };
        req = req.bearer_auth(self.secret);
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        if let Some(version) = &self.api_version {
            req = req.header("Stripe-Version", version);
        }
        let resp = req.send().await.map_err(transport_error)?;
        let status = resp.status();
        let should_retry = resp
            .headers()
            .get("stripe-should-retry")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.eq_ignore_ascii_case("true"));
        let wait = retry_after(resp.headers());
        let bytes = read_body(resp).await?;
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        if status.is_success() {
            return match parsed {
                Some(v) if v.is_object() => Ok(v),
                _ => Err(ActionError::new(
                    "STRIPE_ERROR",
                    format!(
                        "Stripe answered {method} {path} with {status} but not a JSON object: {}",
                        excerpt(&String::from_utf8_lossy(&bytes))
                    ),
                    false,
                )),
            };
        }
        let retryable = should_retry.unwrap_or(status.as_u16() == 429 || status.is_server_error());
        let error = parsed.as_ref().and_then(|v| v.get("error"));
        let message = match error.and_then(|e| e.get("message")).and_then(Value::as_str) {
            Some(msg) => {
                let mut tags: Vec<String> = ["type", "code"]
                    .iter()
                    .filter_map(|k| error.and_then(|e| e.get(*k)).and_then(Value::as_str))
                    .map(str::to_string)
                    .collect();
                tags.push(format!("HTTP {}", status.as_u16()));
                format!("{msg} (Stripe {})", tags.join(", "))
            }
            None => format!(
                "Stripe answered {method} {path} with HTTP {status}: {}",
                excerpt(&String::from_utf8_lossy(&bytes))
            ),
        };
        Err(ActionError::new("STRIPE_ERROR", message, retryable)
            .with_retry_after(wait.filter(|_| retryable)))
    }
}

/// The config as Stripe parameters: snake_case keys, `customerId` → `customer`.
fn params_of(config: &Value) -> Result<Map<String, Value>, ActionError> {
    let Value::Object(map) = form::snake_case_keys(config) else {
        return Ok(Map::new());
    };
    let mut out = Map::new();
    for (k, v) in map {
        let name = if k == "customer_id" {
            "customer".to_string()
        } else {
            k
        };
        out.insert(name, v);
    }
    Ok(out)
}

fn take_id(
    params: &mut Map<String, Value>,
    key: &str,
    config_name: &'static str,
    kind: ActionKind,
) -> Result<String, ActionError> {
    match params.remove(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        None | Some(Value::Null) | Some(Value::String(_)) => Err(ActionError::empty(
            config_name,
            format!("{kind} '{config_name}' is empty"),
        )),
        Some(other) => Err(ActionError::invalid_config(format!(
            "{kind} '{config_name}' must be a string, got {other}"
        ))),
    }
}

fn object_id(object: &Value, what: &str) -> Result<String, ActionError> {
    object
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            ActionError::new("STRIPE_ERROR", format!("Stripe's {what} has no id"), false)
        })
}

/// Stripe ids are `[A-Za-z0-9_]`; anything else is percent-encoded so it stays one segment.
fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An amount in minor units: a number or numeric string, rounded half-to-even.
pub(crate) fn minor_units(value: &Value) -> Result<i64, ActionError> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => String::new(),
    };
    let bad = || {
        ActionError::invalid_config(format!(
            "stripe.createInvoice 'amount' must be a number in minor units (cents), got {value}"
        ))
    };
    let decimal = text
        .parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| bad())?;
    decimal
        .round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven)
        .to_i64()
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts_round_half_to_even() {
        assert_eq!(minor_units(&json!(4857.84)).unwrap(), 4858);
        assert_eq!(minor_units(&json!(9900)).unwrap(), 9900);
        assert_eq!(minor_units(&json!("1999.5")).unwrap(), 2000);
        assert_eq!(minor_units(&json!(2000.5)).unwrap(), 2000);
        assert_eq!(minor_units(&json!(-150.5)).unwrap(), -150);
        assert_eq!(minor_units(&json!(1e3)).unwrap(), 1000);
        assert!(minor_units(&json!("ten")).is_err());
        assert!(minor_units(&json!(true)).is_err());
        assert!(minor_units(&json!(1e30)).is_err());
    }

    #[test]
    fn params_map_names() {
        let p = params_of(
            &json!({"customerId": "cus_1", "daysUntilDue": 30, "metadata": {"orderId": 1}}),
        )
        .unwrap();
        assert_eq!(p["customer"], "cus_1");
        assert_eq!(p["days_until_due"], 30);
        assert_eq!(p["metadata"]["orderId"], 1);
        assert_eq!(path_segment("cus_1/../x"), "cus_1%2F..%2Fx");
    }
}
