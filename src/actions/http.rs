//! `http.request`: one HTTP call with a JSON body, and the transport helpers Stripe shares
//! (error classification, `Retry-After`, bounded body reads). Depends on reqwest.
//!
//! Config: `method` (default GET), `url`, `headers`, `query`, `body`, `timeoutMs`,
//! `expectStatus`. Decisions:
//! * `url` is absolute (`http`/`https`), or relative to an `http` connection's
//!   `config.baseUrl`, joined as text (`https://x/api` + `/users` = `https://x/api/users`).
//! * The connection's `config.headers` and its secret (as `Authorization: Bearer <secret>`, or
//!   raw in the header named by `config.authHeader`, e.g. `x-api-key`) are sent only to the
//!   connection's origin: for a relative URL, an absolute URL with the base URL's scheme,
//!   host and port, or any URL when the connection has no `baseUrl`. Step headers win.
//! * Redirects: a request that carries the connection's headers or secret follows
//!   redirects (up to 10) only within the origin it was sent to; a redirect to another
//!   scheme, host or port fails the step (`REDIRECT_REFUSED`, not retried) instead of
//!   calling that origin, with or without the credentials. Other requests follow up to
//!   10 redirects anywhere (reqwest drops `Authorization` and cookies across hosts).
//! * `body`: any JSON is sent as JSON; a string body is sent raw when the step's
//!   `content-type` header says it is not JSON (text, form data, XML).
//! * `query`: scalars rendered canonically, arrays repeat the key, `null` is omitted.
//! * `expectStatus`: a number, a class such as `"2xx"`, or an array of them; default 2xx.
//! * Output `{status, headers, body}`: header names lowercased, repeated headers joined
//!   with `, `; the body parsed when the content type is JSON (`…/json`, `…+json`), else a
//!   string; empty → `null`. Bodies over 10 MiB fail (`RESPONSE_TOO_LARGE`).
//! * Retryable: connect and network errors, timeouts, 429 and 5xx (with `Retry-After` in
//!   seconds → `retry_after`). Any other unexpected status fails at once (`HTTP_STATUS`,
//!   message with status, method, URL without its query and a 200-character body excerpt).

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde_json::{Map, Value, json};

use super::transport::{excerpt, read_body, retry_after, transport_error};
use super::{ActionError, ResolvedConnection, opt_string, type_name};

pub(crate) fn timeout_override(config: &Value) -> Result<Option<Duration>, ActionError> {
    match config.get("timeoutMs") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(ms) if ms > 0.0 && ms.is_finite() => Ok(Some(Duration::from_millis(ms as u64))),
            _ => Err(ActionError::invalid_config(format!(
                "http.request 'timeoutMs' must be a positive number, got {v}"
            ))),
        },
    }
}

pub(crate) async fn request(
    clients: &super::transport::Clients,
    config: &Value,
    conn: Option<&ResolvedConnection>,
) -> Result<Value, ActionError> {
    let method = match opt_string(config, "method")? {
        None => Method::GET,
        Some(m) => parse_method(&m)?,
    };
    let url_text = opt_string(config, "url")?.unwrap_or_default();
    let base = conn
        .map(|c| opt_string(&c.config, "baseUrl"))
        .transpose()?
        .flatten();
    let (url, use_connection) = resolve_url(url_text.trim(), base.as_deref())?;

    let mut headers = HeaderMap::new();
    if let Some(c) = conn.filter(|_| use_connection) {
        add_headers(&mut headers, c.config.get("headers"), "connection headers")?;
        if let Some(secret) = c.secret.as_deref().filter(|s| !s.is_empty()) {
            let (name, value) = auth_header(c, secret)?;
            headers.insert(name, value);
        }
    }
    // A request carrying the connection's headers or secret follows redirects only
    // within its origin; any other request follows them as a browser would.
    let client = if headers.is_empty() {
        &clients.open
    } else {
        &clients.same_origin
    };
    add_headers(&mut headers, config.get("headers"), "headers")?;

    let mut req = client.request(method.clone(), url.clone());
    let query = query_pairs(config.get("query"))?;
    if !query.is_empty() {
        req = req.query(&query);
    }
    match config.get("body") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) if declares_non_json(&headers) => req = req.body(text.clone()),
        Some(body) => req = req.json(body),
    }
    // Set last so that step headers (e.g. their own content-type) win over `.json()`.
    req = req.headers(headers);

    let expected = parse_expect(config.get("expectStatus"))?;
    let resp = req.send().await.map_err(transport_error)?;
    let status = resp.status();
    let headers_out = headers_json(resp.headers());
    let retry_after = retry_after(resp.headers());
    let is_json = is_json_content(resp.headers());
    let bytes = read_body(resp).await?;
    let body = body_value(&bytes, is_json);

    if !expected.matches(status.as_u16()) {
        let retryable = status.as_u16() == 429 || status.is_server_error();
        let mut shown = url.clone();
        shown.set_query(None);
        let message = format!(
            "HTTP {status} from {method} {shown}: {}",
            excerpt(&String::from_utf8_lossy(&bytes))
        );
        return Err(ActionError::new("HTTP_STATUS", message, retryable)
            .with_retry_after(retry_after.filter(|_| retryable)));
    }
    Ok(json!({"status": status.as_u16(), "headers": headers_out, "body": body}))
}

fn parse_method(m: &str) -> Result<Method, ActionError> {
    let upper = m.trim().to_ascii_uppercase();
    match upper.as_str() {
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => {
            Ok(Method::from_bytes(upper.as_bytes()).expect("standard method"))
        }
        _ => Err(ActionError::invalid_config(format!(
            "http.request 'method' must be GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS, got '{m}'"
        ))),
    }
}

/// The URL to call, and whether the connection's headers and secret may go with it.
fn resolve_url(url: &str, base: Option<&str>) -> Result<(Url, bool), ActionError> {
    if url.is_empty() {
        return Err(ActionError::empty("url", "http.request 'url' is empty"));
    }
    let absolute = url.starts_with("http://") || url.starts_with("https://");
    let parse = |text: &str, what: &str| {
        Url::parse(text)
            .map_err(|e| ActionError::invalid_config(format!("invalid {what} '{text}': {e}")))
    };
    match (absolute, base) {
        (true, None) => Ok((parse(url, "url")?, true)),
        (true, Some(base)) => {
            let url = parse(url, "url")?;
            let same_origin = parse(base, "connection baseUrl")?.origin() == url.origin();
            Ok((url, same_origin))
        }
        (false, Some(base)) => {
            let joined = format!(
                "{}/{}",
                base.trim_end_matches('/'),
                url.trim_start_matches('/')
            );
            let url = parse(&joined, "url")?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ActionError::invalid_config(format!(
                    "connection baseUrl must be http or https, got '{base}'"
                )));
            }
            Ok((url, true))
        }
        (false, None) => Err(ActionError::invalid_config(format!(
            "http.request 'url' must be absolute (http:// or https://) unless an http connection \
             with a baseUrl is used, got '{url}'"
        ))),
    }
}

fn auth_header(
    conn: &ResolvedConnection,
    secret: &str,
) -> Result<(HeaderName, HeaderValue), ActionError> {
    let name = opt_string(&conn.config, "authHeader")?.unwrap_or_else(|| "authorization".into());
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
        ActionError::invalid_config(format!(
            "connection authHeader '{name}' is not a header name"
        ))
    })?;
    let text = if name == reqwest::header::AUTHORIZATION {
        format!("Bearer {secret}")
    } else {
        secret.to_string()
    };
    // The error must not quote the value: it is the secret.
    let mut value = HeaderValue::from_str(&text).map_err(|_| {
        ActionError::invalid_config(format!(
            "the secret of connection {} is not a valid HTTP header value",
            conn.id
        ))
    })?;
    value.set_sensitive(true);
    Ok((name, value))
}

fn add_headers(
    headers: &mut HeaderMap,
    value: Option<&Value>,
    what: &str,
) -> Result<(), ActionError> {
    let map = match value {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(ActionError::invalid_config(format!(
                "{what} must be an object, got {}",
                type_name(other)
            )));
        }
    };
    for (name, v) in map {
        let text = match v {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            Value::Number(_) | Value::Bool(_) => v.to_string(),
            other => {
                return Err(ActionError::invalid_config(format!(
                    "{what}: '{name}' must be a string, got {}",
                    type_name(other)
                )));
            }
        };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ActionError::invalid_config(format!("{what}: '{name}' is not a valid header name"))
        })?;
        let value = HeaderValue::from_str(&text).map_err(|_| {
            ActionError::invalid_config(format!("{what}: the value of '{name}' is not valid"))
        })?;
        headers.insert(name, value);
    }
    Ok(())
}

fn declares_non_json(headers: &HeaderMap) -> bool {
    headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| !ct.to_ascii_lowercase().contains("json"))
}

fn query_pairs(value: Option<&Value>) -> Result<Vec<(String, String)>, ActionError> {
    let map = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(ActionError::invalid_config(format!(
                "http.request 'query' must be an object, got {}",
                type_name(other)
            )));
        }
    };
    let scalar = |k: &str, v: &Value| -> Result<Option<String>, ActionError> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            Value::Number(_) | Value::Bool(_) => Ok(Some(v.to_string())),
            other => Err(ActionError::invalid_config(format!(
                "http.request query '{k}' must be a scalar or an array of scalars, got {}",
                type_name(other)
            ))),
        }
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let items = match v {
            Value::Array(items) => items.iter().collect(),
            v => vec![v],
        };
        for item in items {
            if let Some(text) = scalar(k, item)? {
                out.push((k.clone(), text));
            }
        }
    }
    Ok(out)
}

enum StatusRule {
    Exact(u16),
    Class(u16),
}

struct Expected(Vec<StatusRule>);

impl Expected {
    fn matches(&self, status: u16) -> bool {
        self.0.iter().any(|rule| match rule {
            StatusRule::Exact(s) => *s == status,
            StatusRule::Class(c) => status / 100 == *c,
        })
    }
}

fn parse_expect(value: Option<&Value>) -> Result<Expected, ActionError> {
    let one = |v: &Value| -> Result<StatusRule, ActionError> {
        let bad = || {
            ActionError::invalid_config(format!(
                "http.request 'expectStatus' must be a status (200), a class (\"2xx\") or an array of them, got {v}"
            ))
        };
        match v {
            Value::Number(n) => n
                .as_u64()
                .filter(|s| (100..=599).contains(s))
                .map(|s| StatusRule::Exact(s as u16))
                .ok_or_else(bad),
            Value::String(s) => {
                let s = s.trim().to_ascii_lowercase();
                if let Ok(n) = s.parse::<u16>() {
                    return Ok(StatusRule::Exact(n));
                }
                match s.as_bytes() {
                    [d @ b'1'..=b'5', b'x', b'x'] => Ok(StatusRule::Class(u16::from(d - b'0'))),
                    _ => Err(bad()),
                }
            }
            _ => Err(bad()),
        }
    };
    match value {
        None | Some(Value::Null) => Ok(Expected(vec![StatusRule::Class(2)])),
        Some(Value::Array(items)) if !items.is_empty() => {
            Ok(Expected(items.iter().map(one).collect::<Result<_, _>>()?))
        }
        Some(v) => Ok(Expected(vec![one(v)?])),
    }
}

fn is_json_content(headers: &HeaderMap) -> bool {
    headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|mime| mime.ends_with("/json") || mime.ends_with("+json"))
}

fn body_value(bytes: &[u8], is_json: bool) -> Value {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return if is_json || bytes.is_empty() {
            Value::Null
        } else {
            Value::String(String::from_utf8_lossy(bytes).into_owned())
        };
    }
    if is_json && let Ok(v) = serde_json::from_slice(bytes) {
        return v;
    }
    Value::String(String::from_utf8_lossy(bytes).into_owned())
}

fn headers_json(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for (name, value) in headers {
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match out.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&text);
            }
            _ => {
                out.insert(name.as_str().to_string(), Value::String(text));
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_resolve_against_the_connection_origin() {
        let (u, with) = resolve_url("/users/1", Some("https://api.x.com/v1/")).unwrap();
        assert_eq!(u.as_str(), "https://api.x.com/v1/users/1");
        assert!(with);
        let (_, with) =
            resolve_url("https://api.x.com/other", Some("https://api.x.com/v1")).unwrap();
        assert!(with);
        let (_, with) = resolve_url("https://evil.example/", Some("https://api.x.com")).unwrap();
        assert!(!with, "the secret must not go to another origin");
        assert!(resolve_url("/x", None).is_err());
        assert!(resolve_url("", None).is_err());
        assert!(resolve_url("x", Some("ftp://h")).is_err());
    }

    #[test]
    fn expect_status_forms() {
        assert!(parse_expect(None).unwrap().matches(204));
        assert!(!parse_expect(None).unwrap().matches(304));
        let e = parse_expect(Some(&serde_json::json!([200, "4xx"]))).unwrap();
        assert!(e.matches(200) && e.matches(404) && !e.matches(201));
        assert!(parse_expect(Some(&serde_json::json!("abc"))).is_err());
        assert!(parse_expect(Some(&serde_json::json!(99))).is_err());
    }
}
