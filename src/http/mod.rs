//! The HTTP API (docs/api.md): axum router, auth and scopes, thin handlers. Every
//! answer, including unknown routes, wrong methods and panics, is the JSON
//! envelope; the error mapping lives in `error.rs`.

pub(crate) mod auth;
mod body;
mod connections;
pub(crate) mod error;
mod health;
mod openapi;
pub(crate) mod params;
pub mod ratelimit;
pub(crate) mod runs;
pub mod server;
mod test_delivery;
mod ui_links;
pub(crate) mod views;
mod webhooks;
pub(crate) mod workflows;

pub use auth::SCOPES;
pub use error::ApiError;

use crate::catalog::Catalog;
use crate::events::Events;
use crate::metrics::Metrics;
use crate::secrets::SecretBox;
use crate::store::Store;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use ratelimit::RateLimits;
use serde::Serialize;
use std::any::Any;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub catalog: Catalog,
    pub events: Events,
    pub keys: auth::KeyCache,
    pub secrets: SecretBox,
    pub limits: RateLimits,
    pub metrics: Metrics,
}

impl AppState {
    pub fn new(
        store: Store,
        catalog: Catalog,
        events: Events,
        secrets: SecretBox,
        limits: RateLimits,
        metrics: Metrics,
    ) -> AppState {
        AppState {
            store,
            catalog,
            events,
            keys: Default::default(),
            secrets,
            limits,
            metrics,
        }
    }
}

impl AppState {
    /// The trigger use case over this state's store, catalog and signals.
    pub fn triggers(&self) -> crate::trigger::Triggers {
        crate::trigger::Triggers {
            store: self.store.clone(),
            catalog: self.catalog.clone(),
            events: self.events.clone(),
        }
    }
}

pub struct Limits {
    pub body_bytes: usize,
    /// `/metrics` needs a key with the `admin` scope (listening beyond loopback).
    pub metrics_need_key: bool,
}

pub fn router(state: AppState, limits: Limits) -> Router {
    let api = Router::new()
        .route("/workflows", get(workflows::list).post(workflows::apply))
        .route(
            "/workflows/{id}",
            get(workflows::show).delete(workflows::archive),
        )
        .route("/workflows/{id}/run", post(runs::trigger))
        .route("/workflows/{id}/test-delivery", post(test_delivery::sign))
        .route("/ui-links", post(ui_links::create))
        .route("/workflows/{id}/activate", post(workflows::activate))
        .route("/workflows/{id}/pause", post(workflows::pause))
        .route("/workflows/{id}/versions/{n}", get(workflows::version))
        .route("/runs", get(runs::list))
        .route("/runs/{id}", get(runs::show))
        .route("/runs/{id}/cancel", post(runs::cancel))
        .route("/runs/{id}/replay", post(runs::replay))
        .route(
            "/connections",
            get(connections::list).post(connections::create),
        )
        .route(
            "/connections/{id}",
            get(connections::show).delete(connections::delete),
        )
        .route_layer(from_fn_with_state(state.clone(), auth::authenticate));
    let mut metrics = Router::new().route("/metrics", get(health::metrics));
    if limits.metrics_need_key {
        metrics = metrics
            .route_layer(axum::middleware::from_fn(auth::require_admin))
            .route_layer(from_fn_with_state(state.clone(), auth::authenticate));
    }
    Router::new()
        .nest("/api/v1", api)
        // The dashboard's pages: cookie sessions, never API keys (and the API never the cookie).
        .merge(crate::dashboard::routes(state.clone()))
        .route("/healthz", get(health::healthz))
        .merge(metrics)
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/webhooks/{*path}", post(webhooks::receive))
        .fallback(error::not_found_fallback)
        .method_not_allowed_fallback(error::method_not_allowed_fallback)
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(FastUuid))
        .with_state(state)
}

/// Request ids as random UUIDs from the thread-local generator
/// (tower-http's `MakeRequestUuid` makes a `getrandom` system call for each).
#[derive(Clone, Copy)]
struct FastUuid;

impl MakeRequestId for FastUuid {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        axum::http::HeaderValue::from_str(&crate::ids::uuid_v4())
            .ok()
            .map(RequestId::new)
    }
}

/// Every log line of a request carries its id (also echoed as `x-request-id`).
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
}

fn panic_response(_: Box<dyn Any + Send + 'static>) -> axum::response::Response {
    ApiError::Internal("a request handler panicked".into()).into_response()
}

/// `{"success": true, "data": …}`
#[derive(Serialize)]
pub struct Envelope<T: Serialize> {
    pub success: bool,
    pub data: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<crate::api::ListMeta>,
}

pub fn ok<T: Serialize>(data: T) -> axum::Json<Envelope<T>> {
    axum::Json(Envelope {
        success: true,
        data,
        meta: None,
    })
}

pub fn ok_list<T: Serialize>(data: T, meta: crate::api::ListMeta) -> axum::Json<Envelope<T>> {
    axum::Json(Envelope {
        success: true,
        data,
        meta: Some(meta),
    })
}
