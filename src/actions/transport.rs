//! Transport helpers shared by `http.request` and `stripe.*`: classification of reqwest
//! failures (retryable or not), `Retry-After`, bounded body reads, error excerpts.
//! Depends on reqwest only.

use std::time::Duration;

use reqwest::header::HeaderMap;

use super::ActionError;

/// Bodies above this fail with `RESPONSE_TOO_LARGE`: they would bloat the run's stored output.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// Classify a transport-level failure (no HTTP status was received).
pub(crate) fn transport_error(e: reqwest::Error) -> ActionError {
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
