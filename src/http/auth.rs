//! API-key authentication (`x-api-key` or `Authorization: Bearer`) by hash
//! lookup, with a short cache so revocations from the CLI take effect within
//! seconds, and per-route scope checks.

use super::AppState;
use super::error::ApiError;
use crate::scope::Scope;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CACHE_TTL: Duration = Duration::from_secs(2);
/// Bodies of rejected requests up to this size are read so the connection stays usable.
const DRAIN_LIMIT: usize = 64 * 1024;

/// The caller, as established by its key.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: String,
    pub scopes: Vec<Scope>,
}

impl Principal {
    /// Passes when the key has any of `scopes` (or `admin`).
    pub fn require(&self, scopes: &[Scope]) -> Result<(), ApiError> {
        if self
            .scopes
            .iter()
            .any(|s| *s == Scope::Admin || scopes.contains(s))
        {
            Ok(())
        } else {
            let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
            Err(ApiError::Forbidden(format!(
                "API key lacks the required scope: {}",
                names.join(" or ")
            )))
        }
    }
}

/// The presented key → who it is (None: unknown or revoked), and when that
/// was read. Keyed by the key itself, compared exactly, so a cached caller
/// costs no SHA-256; the hash is computed only for the store lookup.
type KeyEntries = HashMap<String, (Option<Principal>, Instant)>;

#[derive(Clone, Default)]
pub struct KeyCache {
    entries: Arc<Mutex<KeyEntries>>,
}

/// The key the request presents: `x-api-key` wins over `Authorization: Bearer`.
/// A header that is there but not text is an error of its own, not "missing".
fn presented_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let not_text = |name: &str| {
        ApiError::Unauthorized(format!(
            "The {name} header is not valid text: API keys are printable ASCII (wfk_…)"
        ))
    };
    if let Some(v) = headers.get("x-api-key") {
        return v
            .to_str()
            .map(|k| Some(k.trim()))
            .map_err(|_| not_text("x-api-key"));
    }
    let Some(v) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| not_text("Authorization"))?;
    Ok(v.strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .map(str::trim))
}

/// For routes only an `admin` key may see (`/metrics` beyond loopback).
pub async fn require_admin(req: Request, next: Next) -> Result<Response, ApiError> {
    match req.extensions().get::<Principal>() {
        Some(p) if p.scopes.contains(&Scope::Admin) => Ok(next.run(req).await),
        Some(_) => Err(ApiError::Forbidden(
            "API key lacks the required scope: admin".into(),
        )),
        None => Err(ApiError::Unauthorized(
            "Missing API key: send it in the x-api-key header".into(),
        )),
    }
}

/// A trigger whose `Idempotency-Key` header names a run that already exists
/// (and whose key is still remembered) starts nothing: it is not charged to the
/// execute limit, so re-running a batch is not paced like new work. The
/// trigger handler refuses a body whose `idempotencyKey` differs from the
/// header, so the header cannot buy a new run for free.
async fn known_replay(state: &AppState, target: Option<(String, String)>) -> bool {
    let Some((workflow, key)) = target else {
        return false;
    };
    let key = key.as_str();
    let found = state
        .store
        .search_runs(crate::store::RunSearch {
            status: None,
            workflow_id: Some(workflow),
            trigger_type: None,
            q: Some(key.to_string()),
            before_seq: None,
            limit: 1,
            budget: Duration::from_millis(50),
        })
        .await;
    let now = crate::time::now_ms();
    found.is_ok_and(|page| {
        page.runs.iter().any(|r| {
            r.idempotency_key.as_deref() == Some(key)
                && now - r.created_at < crate::trigger::IDEMPOTENCY_TTL_MS
        })
    })
}

/// The workflow and `Idempotency-Key` of a trigger request, if it is one.
fn replay_target(req: &Request) -> Option<(String, String)> {
    if req.method() != axum::http::Method::POST {
        return None;
    }
    // Inside the nested `/api/v1` router the prefix is already stripped.
    let path = req.uri().path();
    let workflow = path
        .strip_prefix("/api/v1")
        .unwrap_or(path)
        .strip_prefix("/workflows/")
        .and_then(|p| p.strip_suffix("/run"))
        .filter(|w| !w.contains('/'))?;
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= 255)?;
    Some((workflow.to_string(), key.to_string()))
}

pub async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(key) = presented_key(req.headers())? else {
        return Err(ApiError::Unauthorized(
            "Missing API key: send it in the x-api-key header".into(),
        ));
    };
    let cached = state.keys.entries.lock().ok().and_then(|m| {
        m.get(key)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(p, _)| p.clone())
    });
    let principal = match cached {
        Some(p) => p,
        None => {
            let found = state
                .store
                .api_key_by_hash(crate::ids::hash_api_key(key))
                .await?;
            let p = found.map(|row| Principal {
                key_id: row.id,
                scopes: Scope::parse_all(&row.scopes),
            });
            if let Ok(mut m) = state.keys.entries.lock() {
                if m.len() > 10_000 {
                    m.clear();
                }
                m.insert(key.to_string(), (p.clone(), Instant::now()));
            }
            p
        }
    };
    let Some(principal) = principal else {
        return Err(ApiError::Unauthorized("Invalid or revoked API key".into()));
    };
    // Logs name the key's id, never the key.
    tracing::debug!(key_id = %principal.key_id, "authenticated");
    let target = replay_target(&req);
    let decision = if known_replay(&state, target).await {
        None
    } else {
        state
            .limits
            .check_in(
                &state.store,
                req.method(),
                req.uri().path(),
                &principal.key_id,
            )
            .await
    };
    let mut response = match decision {
        Some(d) if !d.allowed => {
            state.metrics.rate_limited();
            // Read the (small) body anyway: an unread body makes hyper close the
            // connection, and keep-alive clients would see a broken pipe next.
            let _ = axum::body::to_bytes(req.into_body(), DRAIN_LIMIT).await;
            ApiError::RateLimited {
                limit: d.limit,
                retry_after_secs: d.retry_after_secs,
            }
            .into_response()
        }
        _ => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
    };
    if let Some(d) = decision {
        d.write_headers(response.headers_mut());
    }
    Ok(response)
}
