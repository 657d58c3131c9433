//! The HTTP adapter: the API (docs/api.md) with its axum router, auth and
//! scopes, thin handlers, and the web dashboard (`dashboard/`, server-rendered
//! pages on the same state, auth and error mapping). Every API answer,
//! including unknown routes, wrong methods and panics, is the JSON envelope;
//! the error mapping lives in `error.rs`. Use cases live outside
//! (`trigger`, `runs`, `workflows`); handlers parse, call them and render.

pub(crate) mod auth;
mod body;
mod connections;
pub mod dashboard;
pub(crate) mod error;
mod health;
pub mod intake;
mod openapi;
pub(crate) mod params;
pub mod ratelimit;
mod runs;
pub mod server;
mod test_delivery;
mod ui_links;
pub(crate) mod views;
mod webhooks;
mod workflow_targets;
mod workflows;

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
    /// What requests without credentials may hold before they authenticate.
    pub intake: intake::Intake,
    /// How long webhook event ids are remembered (`--webhook-dedupe-hours`).
    pub webhook_dedupe_ms: i64,
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
            intake: intake::Intake::new(
                intake::unauthenticated_slots(16_384),
                intake::DEFAULT_BUDGET_BYTES,
                1024 * 1024,
            ),
            webhook_dedupe_ms: crate::delivery::DEFAULT_DEDUPE_HOURS as i64 * 3_600_000,
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

    /// The webhook delivery use case.
    pub fn deliveries(&self) -> crate::delivery::Deliveries {
        crate::delivery::Deliveries {
            triggers: self.triggers(),
            secrets: self.secrets.clone(),
            dedupe_ttl_ms: self.webhook_dedupe_ms,
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
        .route("/runs/{id}/redrive", post(runs::redrive))
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
        .merge(dashboard::routes(state.clone()))
        .route("/healthz", get(health::healthz))
        .merge(metrics)
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/webhooks/{*path}", post(webhooks::receive))
        .fallback(error::not_found_fallback)
        .method_not_allowed_fallback(error::method_not_allowed_fallback)
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(axum::middleware::map_response(nosniff))
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

/// No answer is ever sniffed into something it is not (JSON as HTML).
async fn nosniff(mut resp: axum::response::Response) -> axum::response::Response {
    resp.headers_mut()
        .entry(axum::http::header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(axum::http::HeaderValue::from_static("nosniff"));
    resp
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
