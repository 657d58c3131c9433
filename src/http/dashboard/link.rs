//! One-time login links (`flowctl open`): an API client asks for a link with
//! its key; opening the link once, within two minutes, starts a dashboard
//! session for that key. Nobody copies a key out of the credentials file.
//!
//! A link's ticket is stored like a session, but under the hash of
//! `"ticket:" + token`, so the token can never pass as a session cookie, and
//! it is deleted when used.

use super::PageError;
use super::session::{COOKIE_NAME, SESSION_MS};
use crate::http::AppState;
use crate::time::now_ms;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

/// How long a login link can be used.
pub const LINK_MS: i64 = 2 * 60 * 1000;

fn ticket_hash(token: &str) -> String {
    crate::ids::hash_api_key(&format!("ticket:{token}"))
}

/// A new ticket for `key_id`; returns the path of the link and when it expires.
pub async fn create(
    state: &AppState,
    key_id: String,
) -> Result<(String, i64), crate::store::StoreError> {
    let token = crate::ids::base62(43);
    let now = now_ms();
    state
        .store
        .create_ui_session(
            ticket_hash(&token),
            key_id,
            crate::ids::base62(32),
            now,
            now + LINK_MS,
        )
        .await?;
    Ok((format!("/ui/login/link?t={token}"), now + LINK_MS))
}

/// `GET /ui/login/link?t=…`: trade the ticket for a session, once.
pub async fn redeem(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let token = q.get("t").map(String::as_str).unwrap_or("");
    let hash = ticket_hash(token);
    let now = now_ms();
    let found = if token.is_empty() {
        None
    } else {
        state.store.ui_session(hash.clone(), now).await?
    };
    let Some(ticket) = found else {
        return Err(PageError::new(
            StatusCode::UNAUTHORIZED,
            "This login link is unknown, used or expired: run `flowctl open` again for a new one",
        ));
    };
    state.store.delete_ui_session(hash).await?;
    let session_id = crate::ids::base62(43);
    state
        .store
        .create_ui_session(
            crate::ids::hash_api_key(&session_id),
            ticket.key_id,
            crate::ids::base62(32),
            now,
            now + SESSION_MS,
        )
        .await?;
    // A page that moves on by itself rather than a redirect: the link comes
    // from outside (a terminal), and a SameSite=Strict cookie set during a
    // cross-site redirect chain would not be sent to the next page.
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content="0; url=/ui/runs";
                link rel="icon" type="image/svg+xml" href=(super::icon_url());
                link rel="stylesheet" href=(super::css_url());
                title { "Logged in · flowctl" }
            }
            body { p { "Logged in. " a href="/ui/runs" { "Continue to the dashboard" } } }
        }
    };
    let mut resp = (StatusCode::OK, page).into_response();
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{COOKIE_NAME}={session_id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_MS / 1000,
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    Ok(resp)
}
