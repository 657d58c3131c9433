//! error handling as data: after a step error, retry (when, with
//! backoff and jitter), continue, or fail the run.

use crate::workflow::{CompiledStep, ErrorHandling};

#[derive(Debug, Clone, PartialEq)]
pub enum FailureDecision {
    /// Try again at this time (ms since epoch).
    RetryAt(i64),
    /// Record the step as failed and go on with the next one.
    Continue,
    /// Record the step as failed and fail the run.
    FailRun,
}

/// `attempts` counts the attempt that just failed (1 for the first).
/// `jitter` is a number in [0, 1) drawn by the caller; `retry_after_ms`
/// comes from a `Retry-After` header and wins over the backoff when larger.
pub fn on_step_error(
    step: &CompiledStep,
    attempts: u32,
    retryable: bool,
    retry_after_ms: Option<u64>,
    now: i64,
    jitter: f64,
) -> FailureDecision {
    match step.error_handling {
        ErrorHandling::Continue if !retryable || attempts >= step.retry.max_attempts => {
            FailureDecision::Continue
        }
        ErrorHandling::Fail => FailureDecision::FailRun,
        ErrorHandling::Retry | ErrorHandling::Continue
            if retryable && attempts < step.retry.max_attempts =>
        {
            let rc = &step.retry;
            let exp = rc
                .backoff_multiplier
                .powi(attempts.saturating_sub(1) as i32);
            let base = (rc.initial_delay_ms as f64 * exp).min(rc.max_delay_ms as f64);
            // Full jitter on the upper half keeps retries spread but never immediate.
            let delay = base * (0.5 + 0.5 * jitter.clamp(0.0, 1.0));
            let delay = (delay as u64).max(retry_after_ms.unwrap_or(0));
            FailureDecision::RetryAt(now + delay as i64)
        }
        ErrorHandling::Continue => FailureDecision::Continue,
        ErrorHandling::Retry => FailureDecision::FailRun,
    }
}
