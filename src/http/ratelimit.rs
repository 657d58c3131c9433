//! Per-key rate limits by category (docs/api.md): execute (triggers), read (GET)
//! and write (everything else), each a GCRA limiter from `governor` keyed by
//! API key id, so one key's burst never affects another key.

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
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            execute: 500,
            read: 1000,
            write: 200,
        }
    }
}

struct Category {
    limit: u32,
    limiter: KeyedLimiter,
}

#[derive(Clone, Default)]
pub struct RateLimits {
    execute: Option<Arc<Category>>,
    read: Option<Arc<Category>>,
    write: Option<Arc<Category>>,
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

fn category(per_minute: u32) -> Option<Arc<Category>> {
    let limit = NonZeroU32::new(per_minute)?;
    let limiter = RateLimiter::keyed(Quota::per_minute(limit))
        .with_middleware::<StateInformationMiddleware>();
    Some(Arc::new(Category {
        limit: per_minute,
        limiter,
    }))
}

impl RateLimits {
    pub fn new(cfg: RateLimitConfig) -> RateLimits {
        RateLimits {
            execute: category(cfg.execute),
            read: category(cfg.read),
            write: category(cfg.write),
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

    pub fn check(&self, method: &Method, path: &str, key_id: &str) -> Option<Decision> {
        let c = self.category_for(method, path)?;
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
