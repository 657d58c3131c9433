//! Dashboard sessions: logging in by pasting an API key, the session cookie
//! (HttpOnly, SameSite=Strict, Secure behind TLS), and the CSRF defence every
//! state-changing `/ui` request passes: a same-origin `Sec-Fetch-Site` /
//! `Origin` and the session's synchronizer token.

use super::layout::{self, Shell};
use super::{FormData, Page, PageError};
use crate::http::AppState;
use crate::http::auth::Principal;
use crate::http::intake::{LOGIN_BODY_LIMIT, read_body};
use crate::store::UiSession;
use crate::time::now_ms;
use axum::extract::FromRequest;
use axum::extract::{ConnectInfo, FromRequestParts, Query, Request, State};
use axum::http::header::{COOKIE, HOST, LOCATION, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use std::collections::HashMap;
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

/// Failed logins are also limited per this many leading characters of the
/// key tried (`wfk_` and 8 more).
const KEY_PREFIX_CHARS: usize = 12;

pub const COOKIE_NAME: &str = "flowctl_session";
/// Sessions last 12 hours; revoking the key ends them at once.
pub(super) const SESSION_MS: i64 = 12 * 60 * 60 * 1000;

/// A logged-in dashboard user: the key's scopes decide what is shown and allowed.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub key_name: String,
    pub csrf_token: String,
}

impl Session {
    pub fn can(&self, scope: crate::scope::Scope) -> bool {
        self.principal.require(&[scope]).is_ok()
    }
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_string())
}

fn from_row(row: UiSession) -> Session {
    Session {
        principal: Principal {
            key_id: row.key_id,
            scopes: crate::scope::Scope::parse_all(&row.scopes),
        },
        key_name: row.key_name,
        csrf_token: row.csrf_token,
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let found = match cookie_value(&parts.headers) {
            Some(id) => state
                .store
                .ui_session(crate::ids::hash_api_key(&id), now_ms())
                .await
                .map_err(|e| PageError::from(e).into_response())?,
            None => None,
        };
        match found {
            Some(row) => Ok(from_row(row)),
            // Pages send the browser to the login form; actions are refused.
            None if parts.method == Method::GET => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/ui/runs");
                let to = format!("/ui/login?next={}", urlencode(next));
                Err(Redirect::to(&to).into_response())
            }
            None => Err(PageError::new(
                StatusCode::FORBIDDEN,
                "Not logged in: log in to the dashboard first",
            )
            .into_response()),
        }
    }
}

/// Percent-encode everything but unreserved characters (for `?next=`).
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Only local paths under `/ui/` are followed after login (no open
/// redirect), and only visible ASCII (no CR/LF or other control characters,
/// which no `Location` header can carry): anything else goes to the runs.
fn safe_next(next: Option<&String>) -> String {
    match next {
        Some(n)
            if n.starts_with("/ui/")
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.len() <= 2048
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n.clone()
        }
        _ => "/ui/runs".into(),
    }
}

/// Refuse cross-site requests: `Sec-Fetch-Site` must say same-origin, and an
/// `Origin`, when sent, must be this host. A request with neither is refused too.
pub fn check_same_origin(headers: &HeaderMap) -> Result<(), PageError> {
    let forbidden = |why: &str| {
        Err(PageError::new(
            StatusCode::FORBIDDEN,
            &format!("Cross-site request refused: {why}"),
        ))
    };
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if let Some(site) = site
        && site != "same-origin"
    {
        return forbidden(&format!("Sec-Fetch-Site is '{site}'"));
    }
    let origin = headers.get(ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(o), Some(h)) => {
            let bare = o
                .strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"));
            if bare != Some(h) {
                return forbidden(&format!("Origin '{o}' is not this server"));
            }
        }
        (Some(o), None) => return forbidden(&format!("Origin '{o}' without a Host")),
        (None, _) if site.is_none() => return forbidden("no Origin or Sec-Fetch-Site header"),
        (None, _) => {}
    }
    Ok(())
}

/// Same-origin check plus the form's CSRF token against the session's.
pub fn check_csrf(
    headers: &HeaderMap,
    session: &Session,
    form: &HashMap<String, String>,
) -> Result<(), PageError> {
    check_same_origin(headers)?;
    let given = form.get("csrf").map(String::as_str).unwrap_or("");
    if !bool::from(given.as_bytes().ct_eq(session.csrf_token.as_bytes())) {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Missing or wrong CSRF token: reload the page and try again",
        ));
    }
    Ok(())
}

pub async fn login_page(Query(q): Query<HashMap<String, String>>) -> Page {
    login_form(&safe_next(q.get("next")), None, StatusCode::OK)
}

fn login_form(next: &str, error: Option<&str>, status: StatusCode) -> Page {
    let body = html! {
        section.login aria-labelledby="login-title" {
            h1 #login-title { "Log in to flowctl" }
            p { "Paste an API key. It is checked once and never stored in the browser: the session cookie stands for it until you log out or the key is revoked." }
            @if let Some(e) = error {
                p.error role="alert" { (e) }
            }
            form method="post" action="/ui/login" {
                input type="hidden" name="next" value=(next);
                label for="api-key" { "API key" }
                input #api-key type="password" name="key" autocomplete="off" required spellcheck="false" placeholder="wfk_…";
                button type="submit" { "Log in" }
            }
        }
    };
    Page::new(status, layout::page(&Shell::anonymous("Log in"), body))
}

/// `POST /ui/login`. Nobody is authenticated yet, so everything that can be
/// decided from the headers comes first (same origin, this address's login
/// limit), then an intake slot, and the form is read only up to
/// `LOGIN_BODY_LIMIT`. Attempts are limited per client address, failed ones
/// also per key prefix: a stranger's guesses never lock anyone else out.
pub async fn login(State(state): State<AppState>, req: Request) -> Result<Response, PageError> {
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    check_same_origin(headers)?;
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let limited = |d: crate::http::ratelimit::Decision| {
        PageError::from(crate::http::ApiError::RateLimited {
            limit: d.limit,
            retry_after_secs: d.retry_after_secs,
        })
    };
    if let Some(d) = state.limits.check_login_ip(&state.store, &ip).await
        && !d.allowed
    {
        return Err(limited(d));
    }
    let _admission = state
        .intake
        .admit(headers, LOGIN_BODY_LIMIT)
        .map_err(|r| PageError::from(r.0))?;
    let bytes = read_body(body, LOGIN_BODY_LIMIT).await?;
    let mut form_req = Request::new(axum::body::Body::from(bytes));
    if let Some(ct) = headers.get(axum::http::header::CONTENT_TYPE) {
        form_req
            .headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, ct.clone());
    }
    *form_req.method_mut() = axum::http::Method::POST;
    let FormData(form) = FormData::from_request(form_req, &state).await?;
    let next = safe_next(form.get("next"));
    let key = form.get("key").map(|k| k.trim()).unwrap_or("");
    let found = if key.is_empty() {
        None
    } else {
        state
            .store
            .api_key_by_hash(crate::ids::hash_api_key(key))
            .await?
    };
    let Some(key_row) = found else {
        let prefix: String = key.chars().take(KEY_PREFIX_CHARS).collect();
        if let Some(d) = state.limits.check_login_prefix(&state.store, &prefix).await
            && !d.allowed
        {
            return Err(limited(d));
        }
        tracing::info!(client = %ip, "dashboard login with an invalid or revoked key");
        return Ok(login_form(
            &next,
            Some("Invalid or revoked API key"),
            StatusCode::UNAUTHORIZED,
        )
        .into_response());
    };
    let session_id = crate::ids::base62(43);
    let now = now_ms();
    state
        .store
        .create_ui_session(
            crate::ids::hash_api_key(&session_id),
            key_row.id,
            crate::ids::base62(32),
            now,
            now + SESSION_MS,
        )
        .await?;
    let secure = behind_tls(headers);
    let cookie = format!(
        "{COOKIE_NAME}={session_id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_MS / 1000,
        if secure { "; Secure" } else { "" }
    );
    // `next` holds only visible ASCII (safe_next), so both headers are valid.
    let location = HeaderValue::from_str(&next).unwrap_or(HeaderValue::from_static("/ui/runs"));
    let mut resp = StatusCode::SEE_OTHER.into_response();
    resp.headers_mut().insert(LOCATION, location);
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    Ok(resp)
}

/// A TLS-terminating proxy in front says so; then the cookie is `Secure`.
fn behind_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

pub async fn logout(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    FormData(form): FormData,
) -> Result<Response, PageError> {
    check_csrf(&headers, &session, &form)?;
    if let Some(id) = cookie_value(&headers) {
        state
            .store
            .delete_ui_session(crate::ids::hash_api_key(&id))
            .await?;
    }
    let mut resp = Redirect::to("/ui/login").into_response();
    resp.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_static("flowctl_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_origin_rules() {
        let ok = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert!(check_same_origin(&ok).is_ok());
        let no_fetch_meta = headers(&[("host", "a:1"), ("origin", "http://a:1")]);
        assert!(check_same_origin(&no_fetch_meta).is_ok());
        for bad in [
            headers(&[("host", "a:1"), ("origin", "http://evil:1")]),
            headers(&[
                ("host", "a:1"),
                ("origin", "http://a:1"),
                ("sec-fetch-site", "cross-site"),
            ]),
            headers(&[("host", "a:1"), ("sec-fetch-site", "same-site")]),
            headers(&[("host", "a:1")]),
        ] {
            assert!(check_same_origin(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn next_stays_on_the_dashboard() {
        assert_eq!(
            safe_next(Some(&"/ui/runs?status=failed".into())),
            "/ui/runs?status=failed"
        );
        assert_eq!(safe_next(Some(&"//evil.example/ui/".into())), "/ui/runs");
        assert_eq!(safe_next(Some(&"https://evil.example".into())), "/ui/runs");
        assert_eq!(safe_next(None), "/ui/runs");
        assert_eq!(safe_next(Some(&"/ui/runs\r\nX-A: b".into())), "/ui/runs");
        assert_eq!(safe_next(Some(&"/ui/runs\u{7f}".into())), "/ui/runs");
        assert_eq!(safe_next(Some(&"/ui/r\u{e9}".into())), "/ui/runs");
    }
}
