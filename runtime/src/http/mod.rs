//! HTTP for readers of APIs: a blocking client with limits, retries that honour
//! `Retry-After`, an adaptive concurrency limit, and ordered concurrent fetching.
//!
//! No action starts a thread: the concurrency lives here, like the file readers' in
//! [`crate::input`]. An API reader (`http_reader`, `stac_reader` in the action library)
//! describes its work as a list of *jobs* (a URL; a chain of pages that follow `next`
//! links), and [`ordered::run_ordered`] runs them on scoped worker threads and hands the
//! results to the node thread in job order:
//!
//! ```text
//!                 work queue (job order)            one channel per job in flight
//!  node thread ──(i, tx_i)──► worker 1 ─ page files ─► rx_0 ┐ node thread parses rx_0's
//!  (emits in   ──(i, tx_i)──► worker 2 ─ page files ─► rx_1 ├ pages to the end, then
//!   job order)                 ...                     rx_2 ┘ rx_1's, ... (features in order)
//!                    every request: limiter permit ─► client ─► retry policy
//! ```
//!
//! - [`client`]: [`Client`] over `ureq` (rustls): connect and whole-request timeouts, a
//!   response size limit enforced while the body streams (a 10 GB answer stops at the
//!   limit), redirects followed by hand, bounded, and only to `http`/`https` (a redirect to
//!   `file://` is an error), headers whose values may come from environment variables and
//!   are never printed ([`Secret`]).
//! - [`retry`]: [`RetryPolicy`]: 429 and 503 wait what `Retry-After` says (seconds or an
//!   HTTP date), other failures back off exponentially with jitter; a bounded number of
//!   tries; every wait wakes at once when the run is cancelled.
//! - [`limiter`]: [`AdaptiveLimit`]: requests in flight at most a limit that halves after
//!   a 429 and grows by one after a run of successes (AIMD), between 1 and the maximum.
//! - [`ordered`]: the workers and the node thread's ordered receive.
//! - [`pages`]: where fetched bodies wait for the node thread: the node's journal (so a
//!   killed run resumes without fetching them again, see [`crate::journal`]) or the run's
//!   spill folder. Pages wait on disk, so memory holds only the pages being fetched and the
//!   one being parsed, whatever the lead of the later jobs.
//!
//! Errors are [`HttpError`]s, each naming the URL (with any password in it hidden); they
//! never hold a header value.

pub mod client;
pub mod limiter;
pub mod ordered;
pub mod pages;
pub mod retry;

pub use client::{
    Client, ClientConfig, Fetched, HeaderValue, Headers, Method, Request, Rewind, Secret,
};
pub use limiter::{AdaptiveLimit, Permit};
pub use ordered::{JobOut, Ordered, run_ordered};
pub use pages::{PageFile, PageStore};
pub use retry::{RetryPolicy, fetch_with_retry, parse_retry_after};

use std::time::Duration;

use crate::error::ActionError;

/// Why a request failed. Each names the URL it was for (passwords hidden, see
/// [`redact_url`]); none holds a header value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL cannot be requested (not http or https, not a URL at all).
    #[error("{url}: {message}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The server could not be reached or the exchange broke off (DNS, refused
    /// connection, TLS, a connection closed early).
    #[error("{url}: {message}")]
    Transport {
        /// The URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// The request took longer than allowed.
    #[error("{url}: no complete answer within {after:?} (timeout)")]
    Timeout {
        /// The URL.
        url: String,
        /// The limit that passed.
        after: Duration,
    },
    /// The server answered with an error status.
    #[error("{url}: HTTP {status}{}", .detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// How long the server asked to wait (`Retry-After`), when it said.
        retry_after: Option<Duration>,
        /// The start of the answer's body, when it had one.
        detail: Option<String>,
    },
    /// The answer is larger than the size limit.
    #[error("{url}: the answer is larger than the limit of {limit} bytes (max_response_bytes)")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// A redirect leads somewhere the client does not go.
    #[error("{url}: redirect to {location}: {message}")]
    BadRedirect {
        /// The URL that redirected.
        url: String,
        /// Where it pointed.
        location: String,
        /// Why it is not followed.
        message: String,
    },
    /// A header's value names an environment variable that is not set.
    #[error("header {header}: environment variable {var} is not set")]
    MissingEnv {
        /// The header.
        header: String,
        /// The variable.
        var: String,
    },
    /// Writing the body where it waits failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The run was cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl HttpError {
    /// The status code, for an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether trying again may help: 408, 425, 429, 500, 502, 503 and 504, timeouts and
    /// broken exchanges; not a bad URL, a refused redirect, a size limit or a missing
    /// variable.
    pub fn is_retryable(&self) -> bool {
        match self {
            HttpError::Status { status, .. } => {
                matches!(status, 408 | 425 | 429 | 500 | 502 | 503 | 504)
            }
            HttpError::Transport { .. } | HttpError::Timeout { .. } => true,
            _ => false,
        }
    }
}

impl From<HttpError> for ActionError {
    fn from(e: HttpError) -> ActionError {
        match e {
            HttpError::Cancelled => ActionError::Cancelled,
            HttpError::Io { context, source } => ActionError::Io { context, source },
            other => ActionError::Other(Box::new(other)),
        }
    }
}

/// Checks that `url` is an `http` or `https` URL the client would request.
pub fn check_url(url: &str) -> Result<(), HttpError> {
    client::parse_url(url).map(|_| ())
}

/// `href` resolved against `base` (a relative link of a page against the page's URL); the
/// result must be `http` or `https`.
pub fn join_url(base: &str, href: &str) -> Result<String, HttpError> {
    let base = client::parse_url(base)?;
    let joined = base.join(href).map_err(|e| HttpError::BadUrl {
        url: redact_url(href),
        message: format!("not a URL ({e})"),
    })?;
    client::parse_url(joined.as_str()).map(|u| u.to_string())
}

/// `url` with `pairs` appended to its query, each percent-encoded
/// (`with_query("https://x/search", &[("limit", "10")])` → `https://x/search?limit=10`).
pub fn with_query(url: &str, pairs: &[(&str, &str)]) -> Result<String, HttpError> {
    let mut u = client::parse_url(url)?;
    if !pairs.is_empty() {
        let mut q = u.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    Ok(u.to_string())
}

/// `url` with the password of its user information replaced by `***`
/// (`https://me:secret@host/x` → `https://me:***@host/x`), for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests;
