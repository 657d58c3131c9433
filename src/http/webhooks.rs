//! `POST /webhooks/{path}`: inbound webhook triggers. No API key, so nothing
//! is read from the body before the request has shown what it can from its
//! headers: the per-IP limit, a path somebody listens on (the catalog's
//! index, no scan), the signature header each listener needs, then an intake
//! slot and room in the unauthenticated byte budget (`intake`). Only then is
//! the body read, and the delivery use case (`crate::delivery`) verifies,
//! deduplicates and fans it out; the answer comes once the runs are committed.

use super::AppState;
use super::error::ApiError;
use super::intake::{Refused, read_body};
use super::params::{Path, parse_query};
use crate::delivery::Delivery;
use crate::time::now_ms;
use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

pub async fn receive(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(path): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Everything refused before the body is read closes the connection.
    let limit = state.intake.body_limit;
    let before_body = async {
        if let Some(d) = state
            .limits
            .check_webhook(&state.store, &peer.ip().to_string())
            .await
            && !d.allowed
        {
            return Err(Refused(ApiError::RateLimited {
                limit: d.limit,
                retry_after_secs: d.retry_after_secs,
            }));
        }
        let query = parse_query(q.as_deref())?;
        let listeners = state
            .catalog
            .webhook_listeners(&path)
            .await
            .map_err(ApiError::from)?;
        let ready = state
            .deliveries()
            .prepare(&path, listeners, &headers)
            .await
            .map_err(ApiError::from)?;
        let admission = state.intake.admit(&headers, limit)?;
        Ok((query, ready, admission))
    };
    let (query, ready, _admission) = match before_body.await {
        Ok(ok) => ok,
        Err(refused) => return refused.into_response(),
    };
    let body = match read_body(body, limit).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let delivery = Delivery {
        headers: &headers,
        query: query.into_iter().collect(),
        body: &body,
        now_secs: now_ms() / 1000,
    };
    match state.deliveries().deliver(&path, ready, delivery).await {
        Ok(report) => super::ok(report).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
