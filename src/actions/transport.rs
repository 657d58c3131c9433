//! Transport helpers shared by `http.request` and `stripe.*`: classification of reqwest
//! failures (retryable or not), `Retry-After`, bounded body reads, error excerpts.
//! Depends on reqwest only.

use std::time::Duration;

use reqwest::header::HeaderMap;

use super::ActionError;

/// Bodies above this fail with `RESPONSE_TOO_LARGE`: they would bloat the run's stored output.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// Most redirects any request follows.
const MAX_REDIRECTS: usize = 10;

/// The HTTP clients of the actions, one per redirect policy (a policy is fixed
/// per client in reqwest). They share no state; each keeps its own pool.
#[derive(Clone)]
pub(crate) struct Clients {
    /// Requests without a connection's credentials: up to 10 redirects anywhere.
    pub open: reqwest::Client,
    /// Requests with a connection's headers or secret: redirects only within
    /// the origin of the first request, so the credentials never reach another.
    pub same_origin: reqwest::Client,
    /// Stripe: its API never redirects, so a redirect is an answer, not followed.
    pub no_redirects: reqwest::Client,
}

impl Clients {
    pub fn new() -> Clients {
        let build = |policy: reqwest::redirect::Policy| {
            reqwest::Client::builder()
                .user_agent(concat!("flowctl/", env!("CARGO_PKG_VERSION")))
                .redirect(policy)
                .build()
                .expect("the HTTP client configuration is static and valid")
        };
        let same_origin = reqwest::redirect::Policy::custom(|attempt| {
            let first = attempt.previous().first().cloned();
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            match first {
                Some(first) if first.origin() != attempt.url().origin() => {
                    let to = attempt.url().origin().ascii_serialization();
                    let from = first.origin().ascii_serialization();
                    attempt.error(CrossOriginRedirect { from, to })
                }
                _ => attempt.follow(),
            }
        });
        Clients {
            open: build(reqwest::redirect::Policy::limited(MAX_REDIRECTS)),
            same_origin: build(same_origin),
            no_redirects: build(reqwest::redirect::Policy::none()),
        }
    }
}

/// A redirect that would carry a connection's credentials to another origin.
#[derive(Debug)]
struct CrossOriginRedirect {
    from: String,
    to: String,
}

impl std::fmt::Display for CrossOriginRedirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} redirected to another origin, {}; the connection's credentials are sent only \
             to its own origin, so the redirect was not followed (call the new URL directly, \
             or give it its own connection)",
            self.from, self.to
        )
    }
}

impl std::error::Error for CrossOriginRedirect {}

/// The `CrossOriginRedirect` somewhere in the error's source chain.
fn cross_origin(e: &reqwest::Error) -> Option<&CrossOriginRedirect> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(found) = s.downcast_ref::<CrossOriginRedirect>() {
            return Some(found);
        }
        source = s.source();
    }
    None
}

/// Classify a transport-level failure (no HTTP status was received).
pub(crate) fn transport_error(e: reqwest::Error) -> ActionError {
    if let Some(refused) = cross_origin(&e) {
        return ActionError::new("REDIRECT_REFUSED", refused.to_string(), false);
    }
    // reqwest's Display names the URL, never header values.
    let detail = std::error::Error::source(&e)
        .map(|s| format!("{e}: {s}"))
        .unwrap_or_else(|| e.to_string());
    if e.is_timeout() {
        ActionError::new("TIMEOUT", detail, true)
    } else if e.is_connect() {
        ActionError::new("CONNECT", detail, true)
    } else if e.is_builder() || e.is_redirect() {
        ActionError::new("INVALID_CONFIG", detail, false)
    } else {
        ActionError::new("NETWORK", detail, true)
    }
}

/// `Retry-After` in delta-seconds (the HTTP-date form is ignored: the backoff applies).
/// `Retry-After` as delay-seconds or as an HTTP date (RFC 9110); a date in
/// the past means "now".
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    let wait = at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis(wait.max(0) as u64))
}

/// Read the whole body, refusing more than 10 MiB.
pub(crate) async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, ActionError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
        if out.len() + chunk.len() > MAX_BODY {
            return Err(ActionError::new(
                "RESPONSE_TOO_LARGE",
                format!("response body exceeds {} MiB", MAX_BODY / (1024 * 1024)),
                false,
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The first 200 characters of a body, whitespace collapsed, for error messages.
pub(crate) fn excerpt(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match collapsed.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &collapsed[..cut]),
        None if collapsed.is_empty() => "(empty body)".to_string(),
        None => collapsed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_short() {
        let long = "x ".repeat(500);
        assert!(excerpt(&long).chars().count() <= 201);
        assert_eq!(excerpt("  "), "(empty body)");
    }

    #[test]
    fn retry_after_seconds_and_http_dates() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "12".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(12)));
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(
            retry_after(&h),
            Some(Duration::ZERO),
            "a past date means now"
        );
        let soon = (chrono::Utc::now() + std::time::Duration::from_secs(30)).to_rfc2822();
        h.insert("retry-after", soon.parse().unwrap());
        let wait = retry_after(&h).unwrap();
        assert!(
            wait > Duration::from_secs(28) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
