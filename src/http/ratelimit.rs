//! Per-key rate limits by category (docs/api.md): execute (triggers), read (GET)
//! and write (everything else), each a GCRA bucket keyed by API key id, so
//! one key's burst never affects another key; inbound webhooks per client
//! IP, and dashboard logins per client IP and per key prefix (never one
//! bucket for everyone). A store shared by several nodes keeps the buckets
//! (one per key, never one per node); otherwise they are `governor`
//! limiters in this process.

use axum::http::{HeaderMap, HeaderValue, Method};
use governor::clock::DefaultClock;
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;

type KeyedLimiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// Requests per minute per key; 0 turns a category off.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitConfig {
    pub execute: u32,
    pub read: u32,
    pub write: u32,
    /// `POST /webhooks/…` per client IP (no API key there).
    pub webhook: u32,
    /// Dashboard login attempts per client IP (and failed ones per key prefix).
    pub login: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            execute: 500,
            read: 1000,
            write: 200,
            webhook: 10_000,
            login: 30,
        }
    }
}

struct Category {
    name: &'static str,
    limit: u32,
    limiter: KeyedLimiter,
}

#[derive(Clone, Default)]
pub struct RateLimits {
    execute: Option<Arc<Category>>,
    read: Option<Arc<Category>>,
    write: Option<Arc<Category>>,
    webhook: Option<Arc<Category>>,
    login: Option<Arc<Category>>,
}

/// The outcome for one request, with what its headers should say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the key's allowance is full again.
    pub reset_secs: u64,
    /// Seconds until the next request would be allowed (denied requests).
    pub retry_after_secs: u64,
}

fn category(name: &'static str, per_minute: u32) -> Option<Arc<Category>> {
    let limit = NonZeroU32::new(per_minute)?;
    let limiter = RateLimiter::keyed(Quota::per_minute(limit))
        .with_middleware::<StateInformationMiddleware>();
    Some(Arc::new(Category {
        name,
        limit: per_minute,
        limiter,
    }))
}

impl RateLimits {
    pub fn new(cfg: RateLimitConfig) -> RateLimits {
        RateLimits {
            execute: category("execute", cfg.execute),
            read: category("read", cfg.read),
            write: category("write", cfg.write),
            webhook: category("webhook", cfg.webhook),
            login: category("login", cfg.login),
        }
    }

    fn category_for(&self, method: &Method, path: &str) -> Option<&Category> {
        let c = if method == Method::POST && path.ends_with("/run") {
            &self.execute
        } else if method == Method::GET || method == Method::HEAD {
            &self.read
        } else {
            &self.write
        };
        c.as_deref()
    }

    /// The decision for one request: from the store's shared bucket when it
    /// keeps them, else (or when the store fails) from this process's own.
    pub async fn check_in(
        &self,
        store: &crate::store::Store,
        method: &Method,
        path: &str,
        key_id: &str,
    ) -> Option<Decision> {
        shared_or_local(self.category_for(method, path)?, store, key_id).await
    }

    pub fn check(&self, method: &Method, path: &str, key_id: &str) -> Option<Decision> {
        decide(self.category_for(method, path)?, key_id)
    }

    /// Inbound webhooks are limited per client IP, in the shared bucket
    /// when the store keeps them.
    pub async fn check_webhook(&self, store: &crate::store::Store, ip: &str) -> Option<Decision> {
        shared_or_local(self.webhook.as_deref()?, store, &format!("ip:{ip}")).await
    }

    /// A dashboard login attempt from `ip`: each client address has its own
    /// bucket, so a stranger's guesses never lock anyone else out.
    pub async fn check_login_ip(&self, store: &crate::store::Store, ip: &str) -> Option<Decision> {
        shared_or_local(self.login.as_deref()?, store, &format!("ip:{ip}")).await
    }

    /// A failed login with a key starting with `prefix` (guesses at one
    /// key spread over many addresses). Only failures are charged, so the
    /// right key is never refused by it.
    pub async fn check_login_prefix(
        &self,
        store: &crate::store::Store,
        prefix: &str,
    ) -> Option<Decision> {
        shared_or_local(self.login.as_deref()?, store, &format!("prefix:{prefix}")).await
    }
}

/// The decision from the store's shared bucket when it keeps them, else
/// (or when the store fails) from this process's own.
async fn shared_or_local(c: &Category, store: &crate::store::Store, key: &str) -> Option<Decision> {
    let emission_ms = (60_000 / i64::from(c.limit)).max(1);
    let burst_ms = emission_ms * i64::from(c.limit);
    match store
        .rate_hit(key.to_string(), c.name, emission_ms, burst_ms)
        .await
    {
        Ok(Some(state)) => Some(shared_decision(c.limit, emission_ms, burst_ms, state)),
        Ok(None) => decide(c, key),
        Err(e) => {
            tracing::warn!(error = %e, "shared rate limit unavailable; limiting in this node");
            decide(c, key)
        }
    }
}

fn decide(c: &Category, key_id: &str) -> Option<Decision> {
    let per_cell_secs = 60.0 / f64::from(c.limit);
    let reset = |remaining: u32| {
        (f64::from(c.limit - remaining.min(c.limit)) * per_cell_secs).ceil() as u64
    };
    Some(match c.limiter.check_key(&key_id.to_string()) {
        Ok(snapshot) => {
            let remaining = snapshot.remaining_burst_capacity();
            Decision {
                allowed: true,
                limit: c.limit,
                remaining,
                reset_secs: reset(remaining),
                retry_after_secs: 0,
            }
        }
        Err(not_until) => {
            use governor::clock::Clock;
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            Decision {
                allowed: false,
                limit: c.limit,
                remaining: 0,
                reset_secs: reset(0),
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
        }
    })
}

/// GCRA: a request is allowed while the bucket's theoretical arrival time
/// stays within `burst_ms` of now; each request moves it by `emission_ms`.
fn shared_decision(
    limit: u32,
    emission_ms: i64,
    burst_ms: i64,
    s: crate::store::RateState,
) -> Decision {
    let ahead = (s.tat_ms - s.now_ms).max(0);
    let remaining = ((burst_ms - ahead) / emission_ms).clamp(0, i64::from(limit)) as u32;
    let secs = |ms: i64| (ms.max(0) as u64).div_ceil(1000);
    Decision {
        allowed: s.allowed,
        limit,
        remaining: if s.allowed { remaining } else { 0 },
        reset_secs: secs(ahead),
        retry_after_secs: if s.allowed {
            0
        } else {
            secs(ahead + emission_ms - burst_ms).max(1)
        },
    }
}

impl Decision {
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(self.reset_secs));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_and_per_key_isolation() {
        let limits = RateLimits::new(RateLimitConfig {
            execute: 3,
            read: 0,
            write: 1,
            webhook: 0,
            login: 0,
        });
        assert!(
            limits.check(&Method::GET, "/api/v1/runs", "k").is_none(),
            "read is off"
        );
        let run = |key| {
            limits
                .check(&Method::POST, "/api/v1/workflows/wf_a/run", key)
                .unwrap()
        };
        assert!(run("a").allowed && run("a").allowed && run("a").allowed);
        let denied = run("a");
        assert!(!denied.allowed);
        assert!(denied.retry_after_secs >= 1);
        assert!(run("b").allowed, "another key is unaffected");
        let w = limits
            .check(&Method::POST, "/api/v1/workflows", "a")
            .unwrap();
        assert_eq!((w.allowed, w.limit, w.remaining), (true, 1, 0));
    }
}
