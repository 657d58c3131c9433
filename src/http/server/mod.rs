//! The HTTP/1.1 server loop around the router, with the connection hygiene
//! that `axum::serve` lacks: request headers within `header_timeout` (10 s),
//! a body within `body_timeout` (30 s), idle keep-alive closed after
//! `idle_timeout` (60 s), a cap on open connections (the oldest idle one makes
//! room for a newcomer), a `Content-Length` over the limit refused with 413
//! before any body is read, and a shutdown that ends on time whatever clients do.
//! Depends on hyper, hyper-util, tokio and the router.

mod io;

pub use io::{BodyTimeout, body_timeout_in};

use super::error::ApiError;
use axum::Router;
use axum::response::IntoResponse;
use hyper::body::{Body, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use io::{DeadlineBody, Watched};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub body_limit: usize,
    /// After the stop signal: how long requests in flight may still take.
    pub grace: Duration,
}

/// Raise the soft limit on open files to the hard limit (systemd and most
/// shells start services at 1 024) and return the limit now in force.
pub fn raise_fd_limit() -> u64 {
    let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap_or((1024, 1024));
    match rlimit::increase_nofile_limit(hard) {
        Ok(now) => now,
        Err(e) => {
            tracing::debug!(error = %e, "cannot raise the open-file limit");
            soft
        }
    }
}

/// The default connection cap: three quarters of the open-file limit (the
/// rest is for the database, the worker's outgoing calls and the runtime).
pub fn default_max_connections(fd_limit: u64) -> usize {
    ((fd_limit.saturating_mul(3) / 4) as usize).clamp(16, 16_384)
}

/// One open connection, as the accept loop and its own task see it.
struct Conn {
    /// The client's address (the per-IP webhook limit reads it as `ConnectInfo`).
    peer: std::net::SocketAddr,
    /// Requests being handled now (0 or 1 for HTTP/1.1).
    in_flight: AtomicUsize,
    /// A request's body is still arriving.
    body_pending: AtomicBool,
    /// When the first byte of a request head arrived (or the connection was
    /// accepted) while no request was in flight; None once the head is read.
    head_started: Mutex<Option<Instant>>,
    /// When the connection last became idle; the oldest idle one is evicted.
    idle_since: Mutex<Instant>,
    evict: Notify,
    /// Wakes the connection's task to arm the header deadline.
    head_begun: Notify,
}

impl Conn {
    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }
}

type Registry = Arc<Mutex<HashMap<u64, Arc<Conn>>>>;

/// Serve `router` on `listener` until `stop` turns true; then close idle and
/// half-sent connections at once, let requests in flight finish for up to
/// `grace`, and drop whatever is left.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: ServerConfig,
    mut stop: watch::Receiver<bool>,
) {
    let config = Arc::new(config);
    let registry: Registry = Default::default();
    let next_id = AtomicU64::new(0);
    let mut tasks = JoinSet::new();
    let mut last_accept_error = None::<Instant>;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors or a connection reset before accept:
                // log at most once a second and keep going.
                if last_accept_error.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                    tracing::warn!(error = %e, "accept failed");
                    last_accept_error = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if !make_room(&registry, config.max_connections) {
            tracing::debug!("connection cap reached and no idle connection to close");
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let conn = Arc::new(Conn {
            peer,
            in_flight: AtomicUsize::new(0),
            body_pending: AtomicBool::new(false),
            head_started: Mutex::new(Some(now)),
            idle_since: Mutex::new(now),
            evict: Notify::new(),
            head_begun: Notify::new(),
        });
        registry.lock().insert(id, conn.clone());
        let registry = registry.clone();
        let task = serve_connection(stream, conn, router.clone(), config.clone(), stop.clone());
        tasks.spawn(async move {
            task.await;
            registry.lock().remove(&id);
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(config.grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = tasks.len(),
            "closing connections still busy after the shutdown grace"
        );
        tasks.abort_all();
    }
}

/// Below the cap, or the oldest idle connection was told to close: true.
/// The evicted one leaves the registry at once, so a burst of newcomers
/// evicts one each instead of all picking the same victim. (The locks cannot
/// be poisoned: a panic elsewhere never switches the cap off.)
fn make_room(registry: &Registry, max: usize) -> bool {
    let mut r = registry.lock();
    if r.len() < max {
        return true;
    }
    let oldest = r
        .iter()
        .filter(|(_, c)| c.is_idle())
        .min_by_key(|(_, c)| *c.idle_since.lock())
        .map(|(id, _)| *id);
    match oldest.and_then(|id| r.remove(&id)) {
        Some(c) => {
            c.evict.notify_one();
            true
        }
        None => false,
    }
}

async fn serve_connection(
    stream: TcpStream,
    conn: Arc<Conn>,
    router: Router,
    config: Arc<ServerConfig>,
    mut stop: watch::Receiver<bool>,
) {
    let io = TokioIo::new(Watched {
        inner: stream,
        conn: conn.clone(),
    });
    let svc_conn = conn.clone();
    let svc_config = config.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        handle(req, svc_conn.clone(), router.clone(), svc_config.clone())
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper times the wait for each request head from the end of the previous
    // answer: that is the idle keep-alive timeout. The shorter limit on a head
    // once it has started is enforced below.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.idle_timeout)
        .keep_alive(true);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        // The head deadline is re-armed whenever a head begins (no polling).
        let started = *conn.head_started.lock();
        let deadline = started.map(|t| tokio::time::Instant::from_std(t + config.header_timeout));
        let far = tokio::time::Instant::now() + config.idle_timeout;
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = conn.evict.notified() => {
                if conn.is_idle() {
                    return;
                }
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                // Idle, half-sent head or half-sent body: nothing worth waiting for.
                if conn.is_idle() || conn.body_pending.load(Ordering::Acquire) {
                    return;
                }
                connection.as_mut().graceful_shutdown();
            }
            _ = conn.head_begun.notified() => {}
            _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => {
                let started = *conn.head_started.lock();
                if conn.is_idle() && started.is_some_and(|t| t.elapsed() >= config.header_timeout) {
                    tracing::debug!("request head not received in time; closing the connection");
                    return;
                }
            }
        }
    }
}

/// One request: refuse an oversized `Content-Length` before reading anything,
/// put the body under its deadline, and keep the connection's state current.
async fn handle(
    req: hyper::Request<Incoming>,
    conn: Arc<Conn>,
    router: Router,
    config: Arc<ServerConfig>,
) -> Result<axum::response::Response, std::convert::Infallible> {
    let _busy = InFlight::enter(conn.clone());
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > config.body_limit as u64) {
        // The body stays unread, so hyper closes the connection after this
        // answer; `Connection: close` tells the client not to reuse it.
        let mut answer = ApiError::PayloadTooLarge(format!(
            "Request body is too large: Content-Length {} is over the limit of {} bytes",
            declared.unwrap_or_default(),
            config.body_limit
        ))
        .into_response();
        answer.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
        return Ok(answer);
    }
    let mut req = req;
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(conn.peer));
    let req = req.map(|body| {
        conn.body_pending
            .store(!body.is_end_stream(), Ordering::Release);
        axum::body::Body::new(DeadlineBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(config.body_timeout)),
            timeout: config.body_timeout,
            conn: conn.clone(),
        })
    });
    Ok(router.oneshot(req).await.unwrap_or_else(|e| match e {}))
}

/// Marks the connection busy while a request is handled.
struct InFlight(Arc<Conn>);

impl InFlight {
    fn enter(conn: Arc<Conn>) -> InFlight {
        *conn.head_started.lock() = None;
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(conn)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.idle_since.lock() = Instant::now();
        self.0.body_pending.store(false, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_stays_well_under_the_file_limit() {
        assert_eq!(default_max_connections(1024), 768);
        assert_eq!(default_max_connections(1_048_576), 16_384);
        assert_eq!(default_max_connections(10), 16);
    }
}
