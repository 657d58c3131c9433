//! The web dashboard `flowctl serve` serves under `/ui`: server-rendered HTML
//! (maud, auto-escaping), with its CSS and one small script embedded in the
//! binary. Pages read through the same store ports and call the same use cases
//! (`trigger`, `runs`, `workflows`) as the API handlers; sessions and CSRF live
//! in `session.rs`. A part of the HTTP adapter: it uses the parent's state,
//! auth, parameters, views and error mapping; only the router mounts it.

mod approve;
mod blocks;
mod endpoints;
mod family;
mod layout;
pub(crate) mod link;
mod overview;
mod runs;
mod session;
mod timeline;
mod workflows;

use crate::http::{ApiError, AppState};
use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use std::collections::HashMap;
use std::sync::LazyLock;

/// No inline script or style anywhere, so the policy needs no `unsafe-*`.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/runs") }))
        .route("/ui", get(|| async { Redirect::to("/ui/runs") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/runs") }))
        .route("/ui/login", get(session::login_page).post(session::login))
        .route("/ui/login/link", get(link::redeem))
        .route("/ui/logout", post(session::logout))
        .route("/ui/runs", get(runs::list))
        .route("/ui/runs/{id}", get(runs::show))
        .route("/ui/runs/{id}/cancel", post(runs::cancel))
        .route("/ui/runs/{id}/replay", post(runs::replay))
        .route("/ui/workflows", get(workflows::list))
        .route("/ui/workflows/{id}", get(workflows::show))
        .route("/ui/workflows/{id}/activate", post(workflows::activate))
        .route("/ui/workflows/{id}/pause", post(workflows::pause))
        .route("/ui/workflows/{id}/run", post(workflows::run_now))
        .route("/ui/overview", get(overview::show))
        .route("/ui/endpoints", get(endpoints::list))
        .route("/ui/endpoints/{id}/enable", post(endpoints::enable))
        .route("/ui/deliveries/{id}/redeliver", post(endpoints::redeliver))
        .route("/ui/assets/{name}", get(asset))
        .route("/approve/{token}", get(approve::page).post(approve::decide))
        .route("/ui/approvals", get(approve::inbox))
        .route("/ui/approvals/{run}/{step}", post(approve::decide_ui))
        .route("/ui/{*rest}", get(not_found).post(not_found))
        .route_layer(from_fn(security_headers))
        .with_state(state)
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: with it Chromium sends `Origin: null` on form posts,
    // which the same-origin check would (rightly) refuse.
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// One embedded file, addressed by a hash of its content so it can be cached for good.
struct Asset {
    url: String,
    body: &'static [u8],
    content_type: &'static str,
}

fn asset_entry(stem: &str, ext: &str, body: &'static [u8], content_type: &'static str) -> Asset {
    let hash = crate::ids::hash_api_key(&String::from_utf8_lossy(body));
    Asset {
        url: format!("/ui/assets/{stem}.{}.{ext}", &hash[..12]),
        body,
        content_type,
    }
}

static ASSETS: LazyLock<[Asset; 3]> = LazyLock::new(|| {
    [
        asset_entry(
            "app",
            "css",
            include_bytes!("assets/app.css"),
            "text/css; charset=utf-8",
        ),
        asset_entry(
            "app",
            "js",
            include_bytes!("assets/app.js"),
            "text/javascript; charset=utf-8",
        ),
        asset_entry(
            "icon",
            "svg",
            include_bytes!("assets/icon.svg"),
            "image/svg+xml",
        ),
    ]
});

pub fn css_url() -> &'static str {
    &ASSETS[0].url
}

pub fn js_url() -> &'static str {
    &ASSETS[1].url
}

pub fn icon_url() -> &'static str {
    &ASSETS[2].url
}

async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let wanted = format!("/ui/assets/{name}");
    match ASSETS.iter().find(|a| a.url == wanted) {
        Some(a) => (
            [
                (CONTENT_TYPE, a.content_type),
                (CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            a.body,
        )
            .into_response(),
        None => PageError::new(StatusCode::NOT_FOUND, "No such asset").into_response(),
    }
}

async fn not_found() -> PageError {
    PageError::new(StatusCode::NOT_FOUND, "No such dashboard page")
}

/// A rendered page with its status.
pub struct Page {
    status: StatusCode,
    markup: Markup,
}

impl Page {
    pub fn new(status: StatusCode, markup: Markup) -> Page {
        Page { status, markup }
    }

    pub fn ok(markup: Markup) -> Page {
        Page::new(StatusCode::OK, markup)
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        (self.status, self.markup).into_response()
    }
}

/// A failure shown as a page. The status comes from the API's one error mapping.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: &str) -> PageError {
        PageError {
            status,
            message: message.to_string(),
        }
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> PageError {
        let (status, _, message) = e.parts();
        if status.is_server_error() {
            // The API's own response logs the cause; do the same here.
            tracing::error!(error = ?e, "dashboard request failed");
        }
        PageError { status, message }
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> PageError {
        PageError::from(ApiError::from(e))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = html! {
            section.error-page {
                h1 { (self.status.as_u16()) " " (title) }
                p role="alert" { (self.message) }
                p { a href="/ui/runs" { "Back to runs" } }
            }
        };
        let shell = layout::Shell::anonymous(title);
        (self.status, layout::page(&shell, body)).into_response()
    }
}

/// A urlencoded form whose rejection is a page, not plain text.
pub struct FormData(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PageError> {
        axum::Form::<HashMap<String, String>>::from_request(req, state)
            .await
            .map(|f| FormData(f.0))
            .map_err(|e| PageError::new(StatusCode::BAD_REQUEST, &e.body_text()))
    }
}

/// The `{id}` path segment; a segment that cannot be decoded is a 400 page.
pub struct PathId(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathId {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, PageError> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|p| PathId(p.0))
            .map_err(|e| PageError::new(StatusCode::BAD_REQUEST, &e.body_text()))
    }
}

/// The query string as a map; bad encoding is a 400 page.
pub fn query_map(raw: Option<&str>) -> Result<HashMap<String, String>, PageError> {
    crate::http::params::parse_query(raw).map_err(PageError::from)
}
