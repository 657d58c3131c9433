//! Error handling as data: after a step error, retry (when, with backoff and
//! jitter), continue, or fail the run.

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
/// `jitter` is a number in [0, 1) drawn by the caller. A `Retry-After`
/// (`retry_after_ms`) wins over the backoff when larger, but the wait never
/// exceeds `maxDelayMs` nor ends past the run's `deadline`, and no input
/// overflows.
pub fn on_step_error(
    step: &CompiledStep,
    attempts: u32,
    retryable: bool,
    retry_after_ms: Option<u64>,
    now: i64,
    deadline: Option<i64>,
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
                .powi(attempts.saturating_sub(1).min(1024) as i32);
            let max = rc.max_delay_ms as f64;
            let base = (rc.initial_delay_ms as f64 * exp).min(max);
            // Full jitter on the upper half keeps retries spread but never immediate.
            let delay = base * (0.5 + 0.5 * jitter.clamp(0.0, 1.0));
            let asked = retry_after_ms.unwrap_or(0).min(rc.max_delay_ms) as f64;
            // f64 → i64 saturates; the sum is bounded by maxDelayMs anyway.
            let delay = delay.max(asked).min(max) as i64;
            let mut at = now.saturating_add(delay);
            if let Some(d) = deadline {
                at = at.min(d);
            }
            FailureDecision::RetryAt(at)
        }
        ErrorHandling::Continue => FailureDecision::Continue,
        ErrorHandling::Retry => FailureDecision::FailRun,
    }
}
