//! Retries: how long to wait before trying a request again, and the loop that does it.
//!
//! - An answer with `Retry-After` (429 Too Many Requests, 503 Service Unavailable; seconds
//!   or an HTTP date) waits at least that long, and at least the backoff below, capped at
//!   [`RetryPolicy::max_wait`].
//! - Otherwise the wait is exponential: `base × 2^attempt`, capped at `max_wait`, times a
//!   random factor in [0.5, 1) ("equal jitter"), so that workers that failed together do
//!   not come back together.
//! - Only failures that may pass are retried ([`HttpError::is_retryable`]), at most
//!   [`RetryPolicy::retries`] times.
//! - Every wait selects on the run's cancel token and a timer channel: a cancelled run
//!   stops waiting at once. Nothing sleeps.

use std::time::Duration;

use chrono::{DateTime, Utc};
use crossbeam_channel::{after, select};

use super::HttpError;
use super::client::{Client, Fetched, Request, Rewind};
use super::limiter::AdaptiveLimit;
use crate::cancel::CancelToken;

/// How often and how long to retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries after the first (0: never retry).
    pub retries: u32,
    /// The first backoff.
    pub base: Duration,
    /// The longest wait, whatever `Retry-After` says.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 5,
            base: Duration::from_millis(250),
            max_wait: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The jittered exponential backoff before try `attempt + 1` (`attempt` counts from 0).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max_wait);
        exp.mul_f64(0.5 + fastrand::f64() * 0.5)
    }

    /// The wait before retrying after `error` on try `attempt` (from 0): at least the
    /// server's `Retry-After`, at least the backoff, at most `max_wait`.
    pub fn delay(&self, attempt: u32, error: &HttpError) -> Duration {
        let backoff = self.backoff(attempt);
        let asked = match error {
            HttpError::Status {
                retry_after: Some(d),
                ..
            } => *d,
            _ => Duration::ZERO,
        };
        asked.max(backoff).min(self.max_wait)
    }
}

/// Parses a `Retry-After` value: whole seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, the wait until then from `now`; a date in the past
/// is no wait). Anything else is `None`.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when.with_timezone(&Utc) - now;
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Waits `d`, or less when the run is cancelled ([`HttpError::Cancelled`]).
pub fn wait(d: Duration, cancel: &CancelToken) -> Result<(), HttpError> {
    if cancel.is_cancelled() {
        return Err(HttpError::Cancelled);
    }
    if d.is_zero() {
        return Ok(());
    }
    select! {
        recv(cancel.receiver()) -> _ => Err(HttpError::Cancelled),
        recv(after(d)) -> _ => Ok(()),
    }
}

/// What happened on one failed try, for a log line: the error, the wait before the next
/// try, and that try's number (from 2).
pub type OnRetry<'a> = dyn FnMut(&HttpError, Duration, u32) + 'a;

/// Fetches `request` into `out` under `limit`, retrying by `policy`. Each try takes a
/// permit of the limit (a 429 or 503 halves it, a success counts towards growing it) and
/// starts `out` again from empty; `on_retry` hears about each failed try that is retried.
/// The last error is returned when the tries run out.
pub fn fetch_with_retry(
    client: &Client,
    limit: &AdaptiveLimit,
    policy: &RetryPolicy,
    request: &Request,
    out: &mut dyn Rewind,
    cancel: &CancelToken,
    on_retry: &mut OnRetry<'_>,
) -> Result<Fetched, HttpError> {
    let mut attempt = 0;
    loop {
        let permit = limit.acquire(cancel)?;
        out.rewind().map_err(|e| HttpError::Io {
            context: "starting the answer's file again".into(),
            source: e,
        })?;
        let result = client.fetch(request, out.as_write(), cancel);
        let error = match result {
            Ok(fetched) => {
                permit.success();
                return Ok(fetched);
            }
            Err(e) => e,
        };
        if matches!(error.status(), Some(429 | 503)) {
            permit.throttled();
        } else {
            drop(permit);
        }
        if !error.is_retryable() || attempt >= policy.retries {
            return Err(error);
        }
        let d = policy.delay(attempt, &error);
        attempt += 1;
        on_retry(&error, d, attempt + 1);
        wait(d, cancel)?;
    }
}
