//! What `http_reader` and `stac_reader` share: the checks of their HTTP parameters, the
//! client, limiter and retry policy they build from them, the pages they reject, and the
//! count of failed pages they report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::http::{
    AdaptiveLimit, Client, ClientConfig, HeaderValue, Headers, HttpError, RetryPolicy,
};
use sluice_runtime::{ActionError, Feature, NodeContext, REJECTION_REASON, Schema, Value};

/// The most requests in flight a reader may ask for.
pub(crate) const MAX_CONCURRENCY: usize = 64;

/// What a page that still fails after its retries does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// It becomes one feature on the `rejected` port (`url`, `status`,
    /// `_rejection_reason`), and the run goes on.
    #[default]
    Reject,
    /// It fails the run, naming the URL and the status.
    Fail,
}

pub(crate) fn default_concurrency() -> usize {
    4
}
pub(crate) fn default_timeout() -> f64 {
    60.0
}
pub(crate) fn default_connect_timeout() -> f64 {
    10.0
}
pub(crate) fn default_max_response_bytes() -> u64 {
    256 * 1024 * 1024
}
pub(crate) fn default_max_redirects() -> u32 {
    5
}
pub(crate) fn default_retries() -> u32 {
    5
}

/// The HTTP parameters both readers take, checked.
#[derive(Debug, Clone)]
pub(crate) struct HttpSetup {
    pub concurrency: usize,
    pub headers: BTreeMap<String, HeaderValue>,
    pub config: ClientConfig,
    pub policy: RetryPolicy,
    pub on_error: OnError,
}

/// The raw values of the shared parameters, as the params structs hold them.
pub(crate) struct HttpParams<'a> {
    pub concurrency: usize,
    pub headers: &'a BTreeMap<String, HeaderValue>,
    pub timeout: f64,
    pub connect_timeout: f64,
    pub max_response_bytes: u64,
    pub max_redirects: u32,
    pub retries: u32,
    pub on_error: OnError,
}

impl HttpSetup {
    /// Checks the shared parameters, each problem named by its parameter.
    pub(crate) fn new(p: HttpParams<'_>) -> Result<HttpSetup, ActionError> {
        let mut errors = Vec::new();
        if p.concurrency == 0 || p.concurrency > MAX_CONCURRENCY {
            errors.push(ActionError::param(
                "concurrency",
                format!(
                    "{} requests in flight: give 1 to {MAX_CONCURRENCY}",
                    p.concurrency
                ),
            ));
        }
        let seconds = |name: &str, v: f64, errors: &mut Vec<ActionError>| {
            if v.is_finite() && v > 0.0 && v <= 86_400.0 {
                Duration::from_secs_f64(v)
            } else {
                errors.push(ActionError::param(
                    name,
                    format!("{v}: give a number of seconds above 0 (at most a day)"),
                ));
                Duration::from_secs(1)
            }
        };
        let timeout = seconds("timeout", p.timeout, &mut errors);
        let connect_timeout = seconds("connect_timeout", p.connect_timeout, &mut errors);
        if p.max_response_bytes == 0 {
            errors.push(ActionError::param(
                "max_response_bytes",
                "must be at least 1",
            ));
        }
        if p.retries > 20 {
            errors.push(ActionError::param("retries", "at most 20"));
        }
        if let Err((name, message)) = Headers::check(p.headers.iter()) {
            errors.push(ActionError::param(format!("headers.{name}"), message));
        }
        ActionError::collect(errors)?;
        Ok(HttpSetup {
            concurrency: p.concurrency,
            headers: p.headers.clone(),
            config: ClientConfig {
                connect_timeout,
                timeout,
                max_bytes: p.max_response_bytes,
                max_redirects: p.max_redirects,
                ..ClientConfig::default()
            },
            policy: RetryPolicy {
                retries: p.retries,
                ..RetryPolicy::default()
            },
            on_error: p.on_error,
        })
    }

    /// The client (header values read from the environment now) and the limiter, when the
    /// run starts.
    pub(crate) fn start(&self, accept: &str) -> Result<(Client, AdaptiveLimit), ActionError> {
        let headers = Headers::resolve(self.headers.iter()).map_err(ActionError::from)?;
        let config = ClientConfig {
            headers,
            accept: accept.to_string(),
            ..self.config.clone()
        };
        Ok((Client::new(config), AdaptiveLimit::new(self.concurrency)))
    }
}

/// Failed pages: the rejected feature of each, and the count for the log line.
pub(crate) struct Failures {
    schema: Arc<Schema>,
    pub count: u64,
    on_error: OnError,
}

impl Failures {
    pub(crate) fn new(on_error: OnError) -> Failures {
        Failures {
            schema: Schema::new(["url", "status", REJECTION_REASON]),
            count: 0,
            on_error,
        }
    }

    /// A page that failed: a rejected feature to emit, or (`on_error: fail`) the error
    /// that fails the run.
    pub(crate) fn page(
        &mut self,
        url: &str,
        status: Option<u16>,
        reason: String,
    ) -> Result<Feature, ActionError> {
        self.count += 1;
        if self.on_error == OnError::Fail {
            // The reason names the URL already, or is given it.
            let located = if reason.starts_with(url) {
                None
            } else {
                Some(url.to_string())
            };
            return Err(ActionError::data(
                located,
                format!("{reason} (on_error: fail)"),
            ));
        }
        Ok(Feature::new(
            0,
            self.schema.clone(),
            vec![
                Value::String(url.into()),
                status.map_or(Value::Null, |s| Value::Int(i64::from(s))),
                Value::String(reason.into()),
            ],
        ))
    }

    /// A request's error as a failed page.
    pub(crate) fn request(&mut self, url: &str, e: &HttpError) -> Result<Feature, ActionError> {
        self.page(url, e.status(), e.to_string())
    }

    /// Says how many pages failed (a log line; the rejected port's count is in the report).
    pub(crate) fn report(&self, ctx: &NodeContext, what: &str) {
        if self.count > 0 {
            ctx.log(format!(
                "{} {what}(s) failed after their retries and went to the rejected port",
                self.count
            ));
        }
    }
}

/// Says how far the server made the requests in flight go down (a log line), when it
/// asked to slow down at all.
pub(crate) fn report_throttling(ctx: &NodeContext, limit: &AdaptiveLimit) {
    let (lowest, halvings) = limit.history();
    if halvings > 0 {
        ctx.log(format!(
            "the server asked to slow down {halvings} time(s): requests in flight went as low \
             as {lowest}"
        ));
    }
}

/// A log line for a retried request (never a header value: errors carry none).
pub(crate) fn log_retry(ctx: &NodeContext) -> impl FnMut(&HttpError, Duration, u32) + '_ {
    move |e: &HttpError, wait: Duration, attempt: u32| {
        ctx.log(format!("{e}; try {attempt} in {:.1} s", wait.as_secs_f64()))
    }
}
