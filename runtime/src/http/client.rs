//! A blocking HTTP client with the limits an unattended reader needs.
//!
//! - Over `ureq` with rustls: no system TLS library, the Mozilla root certificates.
//! - Timeouts: `connect_timeout` (TCP and TLS handshake) and `timeout`, the whole request
//!   from the first byte sent to the last byte of the body read, so a server that sends its
//!   headers and then stalls (slow loris) is given up on in time.
//! - A size limit checked while the body streams to its destination: a response that says
//!   it is larger is refused before its body is read, one that does not say is cut off at
//!   the limit. The body is never held in memory whole.
//! - Redirects are followed here, not by `ureq`: at most `max_redirects`, only to `http`
//!   and `https` (`file://` or any other scheme is [`HttpError::BadRedirect`]); a 303, or a
//!   301/302 after a POST, continues as a GET; the configured headers are sent on to the
//!   same origin (scheme, host and port) only.
//! - Header values are [`Secret`]s: `Debug` and `Display` print `<redacted>`, and an
//!   error's text (the start of an error answer's body, say) has them blanked, so a token
//!   never reaches a log line, an event or a run report.

use std::fmt;
use std::io::{Read, Write};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{HttpError, redact_url};
use crate::cancel::CancelToken;

/// Bytes copied per read of a body.
const COPY_CHUNK: usize = 64 * 1024;
/// Bytes of an error answer's body kept for its message.
const DETAIL_BYTES: usize = 300;

/// A destination a body can be written to again from empty (a retried request starts
/// over).
pub trait Rewind: Write {
    /// Empties the destination.
    fn rewind(&mut self) -> std::io::Result<()>;
    /// The destination as a writer.
    fn as_write(&mut self) -> &mut dyn Write;
}

impl Rewind for std::fs::File {
    fn rewind(&mut self) -> std::io::Result<()> {
        use std::io::Seek;
        self.set_len(0)?;
        self.seek(std::io::SeekFrom::Start(0)).map(|_| ())
    }
    fn as_write(&mut self) -> &mut dyn Write {
        self
    }
}

impl Rewind for Vec<u8> {
    fn rewind(&mut self) -> std::io::Result<()> {
        self.clear();
        Ok(())
    }
    fn as_write(&mut self) -> &mut dyn Write {
        self
    }
}

/// A header value that is never printed: `Debug` and `Display` give `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, to send. Never format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a header's value comes from, as a workflow writes it: a literal string, or an
/// environment variable read when the run starts (with an optional prefix):
///
/// ```yaml
/// headers:
///   Accept: application/geo+json
///   Authorization: { env: STAC_TOKEN, prefix: "Bearer " }
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum HeaderValue {
    /// The value as written.
    Literal(String),
    /// The value of an environment variable, read when the run starts.
    Env {
        /// The variable's name (`STAC_TOKEN`).
        env: String,
        /// Text put before the variable's value (`"Bearer "`).
        #[serde(default)]
        prefix: String,
    },
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderValue::Literal(_) => f.write_str("Literal(<redacted>)"),
            HeaderValue::Env { env, .. } => write!(f, "Env({env})"),
        }
    }
}

/// The headers sent with every request, values kept as [`Secret`]s.
#[derive(Clone, Default, Debug)]
pub struct Headers(Vec<(String, Secret)>);

impl Headers {
    /// No headers.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Checks header names and literal values (at build time: a bad name is a parameter
    /// error before the run). Returns the message for the first problem.
    pub fn check<'a>(
        headers: impl IntoIterator<Item = (&'a String, &'a HeaderValue)>,
    ) -> Result<(), (String, String)> {
        for (name, value) in headers {
            if ureq::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err((name.clone(), "not a valid header name".into()));
            }
            let text = match value {
                HeaderValue::Literal(v) => v.as_str(),
                HeaderValue::Env { env, prefix } => {
                    if env.is_empty() {
                        return Err((name.clone(), "`env` names no variable".into()));
                    }
                    prefix.as_str()
                }
            };
            if ureq::http::HeaderValue::from_str(text).is_err() {
                return Err((
                    name.clone(),
                    "the value holds characters a header cannot (line breaks, control \
                     characters)"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// Resolves each value (reading environment variables now). A missing variable is
    /// [`HttpError::MissingEnv`], naming the header and the variable, never a value.
    pub fn resolve<'a>(
        headers: impl IntoIterator<Item = (&'a String, &'a HeaderValue)>,
    ) -> Result<Headers, HttpError> {
        let mut out = Vec::new();
        for (name, value) in headers {
            let text = match value {
                HeaderValue::Literal(v) => v.clone(),
                HeaderValue::Env { env, prefix } => match std::env::var(env) {
                    Ok(v) if !v.is_empty() => format!("{prefix}{v}"),
                    _ => {
                        return Err(HttpError::MissingEnv {
                            header: name.clone(),
                            var: env.clone(),
                        });
                    }
                },
            };
            if ureq::http::HeaderValue::from_str(&text).is_err() {
                return Err(HttpError::BadUrl {
                    url: String::new(),
                    message: format!(
                        "header {name}: the value holds characters a header cannot \
                         (line breaks, control characters)"
                    ),
                });
            }
            out.push((name.clone(), Secret(text)));
        }
        Ok(Headers(out))
    }

    /// Adds a header.
    pub fn push(&mut self, name: impl Into<String>, value: Secret) {
        self.0.push((name.into(), value));
    }

    /// The headers in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Secret)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// `text` with every header value in it (of four characters or more) replaced by
    /// `<redacted>`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (_, v) in &self.0 {
            if v.0.len() >= 4 {
                out = out.replace(&v.0, "<redacted>");
                // The part after a prefix ("Bearer "), should a server echo only that.
                if let Some((_, rest)) = v.0.split_once(' ')
                    && rest.len() >= 4
                {
                    out = out.replace(rest, "<redacted>");
                }
            }
        }
        out
    }
}

/// How a [`Client`] behaves.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Time to open a connection (TCP and TLS handshake).
    pub connect_timeout: Duration,
    /// Time for a whole request, the body read included.
    pub timeout: Duration,
    /// The largest body read, in bytes.
    pub max_bytes: u64,
    /// Redirects followed at most.
    pub max_redirects: u32,
    /// Sent with every request.
    pub headers: Headers,
    /// The `Accept` header (when `headers` has none).
    pub accept: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            max_bytes: 256 * 1024 * 1024,
            max_redirects: 5,
            headers: Headers::new(),
            accept: "application/json, application/geo+json, text/csv, */*;q=0.5".into(),
        }
    }
}

/// GET or POST.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET.
    Get,
    /// POST, with a JSON body.
    Post,
}

/// One request: the method, the URL and, for a POST, its JSON body.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Request {
    /// GET or POST.
    pub method: Method,
    /// An `http` or `https` URL.
    pub url: String,
    /// The JSON body of a POST.
    pub body: Option<Vec<u8>>,
}

impl Request {
    /// A GET of `url`.
    pub fn get(url: impl Into<String>) -> Request {
        Request {
            method: Method::Get,
            url: url.into(),
            body: None,
        }
    }

    /// A POST of `body` (JSON) to `url`.
    pub fn post(url: impl Into<String>, body: Vec<u8>) -> Request {
        Request {
            method: Method::Post,
            url: url.into(),
            body: Some(body),
        }
    }
}

/// What a successful request gave, its body already written out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// The status (2xx).
    pub status: u16,
    /// The URL that answered (after redirects).
    pub url: String,
    /// The `Content-Type`, without parameters, lower case.
    pub content_type: Option<String>,
    /// Body bytes written.
    pub bytes: u64,
}

/// A blocking HTTP client; cheap to share between threads (connections are pooled).
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    config: ClientConfig,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish()
    }
}

impl Client {
    /// A client with `config`.
    pub fn new(config: ClientConfig) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(config.connect_timeout))
            .timeout_global(Some(config.timeout))
            .max_redirects(0)
            .http_status_as_error(false)
            .max_idle_connections(128)
            .max_idle_connections_per_host(64)
            .build()
            .into();
        Client { agent, config }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Sends `request` and writes a 2xx answer's body to `out`, following redirects. An
    /// error status is [`HttpError::Status`] (with `Retry-After` when the server gave
    /// one); see the [module docs](self) for the limits.
    pub fn fetch(
        &self,
        request: &Request,
        out: &mut dyn Write,
        cancel: &CancelToken,
    ) -> Result<Fetched, HttpError> {
        let mut method = request.method;
        let mut body = request.body.clone();
        let mut url = parse_url(&request.url)?;
        let origin = url.origin();
        for _ in 0..=self.config.max_redirects {
            if cancel.is_cancelled() {
                return Err(HttpError::Cancelled);
            }
            let same_origin = url.origin() == origin;
            let mut response = self.send(method, url.as_str(), body.as_deref(), same_origin)?;
            let status = response.status().as_u16();
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                let location = header(&response, "location").ok_or_else(|| HttpError::Status {
                    url: redact_url(url.as_str()),
                    status,
                    retry_after: None,
                    detail: Some("a redirect without a Location header".into()),
                })?;
                let next = url.join(&location).map_err(|e| HttpError::BadRedirect {
                    url: redact_url(url.as_str()),
                    location: redact_url(&location),
                    message: format!("not a URL ({e})"),
                })?;
                if !matches!(next.scheme(), "http" | "https") {
                    return Err(HttpError::BadRedirect {
                        url: redact_url(url.as_str()),
                        location: redact_url(next.as_str()),
                        message: format!(
                            "only http and https redirects are followed, not {}:",
                            next.scheme()
                        ),
                    });
                }
                if status == 303 || (matches!(status, 301 | 302) && method == Method::Post) {
                    method = Method::Get;
                    body = None;
                }
                url = next;
                continue;
            }
            let shown = redact_url(url.as_str());
            if !(200..300).contains(&status) {
                let retry_after = header(&response, "retry-after")
                    .and_then(|v| super::retry::parse_retry_after(&v, chrono::Utc::now()));
                let detail = self.detail(response.body_mut().as_reader());
                return Err(HttpError::Status {
                    url: shown,
                    status,
                    retry_after,
                    detail,
                });
            }
            if let Some(len) =
                header(&response, "content-length").and_then(|v| v.trim().parse::<u64>().ok())
                && len > self.config.max_bytes
            {
                return Err(HttpError::TooLarge {
                    url: shown,
                    limit: self.config.max_bytes,
                });
            }
            let content_type = header(&response, "content-type").map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            });
            let bytes = self.copy(response.body_mut().as_reader(), out, &shown, cancel)?;
            return Ok(Fetched {
                status,
                url: url.to_string(),
                content_type,
                bytes,
            });
        }
        Err(HttpError::BadRedirect {
            url: redact_url(&request.url),
            location: redact_url(url.as_str()),
            message: format!("more than {} redirects", self.config.max_redirects),
        })
    }

    /// One exchange, no redirect followed.
    fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&[u8]>,
        with_headers: bool,
    ) -> Result<ureq::http::Response<ureq::Body>, HttpError> {
        let user_agent = concat!("sluice/", env!("CARGO_PKG_VERSION"));
        let has_accept = self
            .config
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("accept"));
        let result = match method {
            Method::Get => {
                let mut r = self.agent.get(url).header("User-Agent", user_agent);
                if !has_accept || !with_headers {
                    r = r.header("Accept", self.config.accept.as_str());
                }
                if with_headers {
                    for (k, v) in self.config.headers.iter() {
                        r = r.header(k, v.expose());
                    }
                }
                r.call()
            }
            Method::Post => {
                let mut r = self
                    .agent
                    .post(url)
                    .header("User-Agent", user_agent)
                    .header("Content-Type", "application/json");
                if !has_accept || !with_headers {
                    r = r.header("Accept", self.config.accept.as_str());
                }
                if with_headers {
                    for (k, v) in self.config.headers.iter() {
                        r = r.header(k, v.expose());
                    }
                }
                r.send(body.unwrap_or(b"{}"))
            }
        };
        result.map_err(|e| self.transport_error(url, &e))
    }

    /// A `ureq` error as an [`HttpError`], its text redacted.
    fn transport_error(&self, url: &str, e: &ureq::Error) -> HttpError {
        let url = redact_url(url);
        match e {
            ureq::Error::Timeout(_) => HttpError::Timeout {
                url,
                after: self.config.timeout,
            },
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                HttpError::Timeout {
                    url,
                    after: self.config.timeout,
                }
            }
            other => {
                let https = url.starts_with("https:");
                HttpError::Transport {
                    url,
                    message: self.config.headers.redact(&describe(other, https)),
                }
            }
        }
    }

    /// Copies a body to `out`, at most `max_bytes`, checking for cancellation per chunk.
    fn copy(
        &self,
        mut body: impl Read,
        out: &mut dyn Write,
        url: &str,
        cancel: &CancelToken,
    ) -> Result<u64, HttpError> {
        let mut buf = vec![0u8; COPY_CHUNK];
        let mut total: u64 = 0;
        loop {
            if cancel.is_cancelled() {
                return Err(HttpError::Cancelled);
            }
            let n = match body.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_error(url, &e)),
            };
            total += n as u64;
            if total > self.config.max_bytes {
                return Err(HttpError::TooLarge {
                    url: url.to_string(),
                    limit: self.config.max_bytes,
                });
            }
            out.write_all(&buf[..n]).map_err(|e| HttpError::Io {
                context: format!("storing the answer of {url}"),
                source: e,
            })?;
        }
    }

    /// An error while reading a body.
    fn read_error(&self, url: &str, e: &std::io::Error) -> HttpError {
        let text = e.to_string();
        if e.kind() == std::io::ErrorKind::TimedOut || text.contains("timeout") {
            HttpError::Timeout {
                url: url.to_string(),
                after: self.config.timeout,
            }
        } else {
            HttpError::Transport {
                url: url.to_string(),
                message: format!(
                    "reading the answer broke off: {}",
                    self.config.headers.redact(&text)
                ),
            }
        }
    }

    /// The start of an error answer's body, on one line, header values blanked.
    fn detail(&self, body: impl Read) -> Option<String> {
        let mut buf = Vec::with_capacity(DETAIL_BYTES);
        body.take(DETAIL_BYTES as u64).read_to_end(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf);
        let line: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let line = line.trim();
        (!line.is_empty()).then(|| self.config.headers.redact(line))
    }
}

/// A URL the client requests: parsed, `http` or `https`.
pub(super) fn parse_url(text: &str) -> Result<url::Url, HttpError> {
    let url = url::Url::parse(text).map_err(|e| HttpError::BadUrl {
        url: redact_url(text),
        message: format!("not a URL ({e})"),
    })?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(HttpError::BadUrl {
            url: redact_url(text),
            message: format!("only http and https URLs are fetched, not {other}:"),
        }),
    }
}

/// A response header as text.
fn header<B>(response: &ureq::http::Response<B>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// What a `ureq` error means, in words (`https`: the request was made over TLS).
fn describe(e: &ureq::Error, https: bool) -> String {
    match e {
        ureq::Error::HostNotFound => "host not found (DNS gave no address)".into(),
        ureq::Error::Rustls(_) | ureq::Error::Tls(_) | ureq::Error::Pem(_) => {
            format!("TLS handshake failed: {e}")
        }
        ureq::Error::Io(io) => {
            let text = io.to_string();
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
                std::io::ErrorKind::ConnectionReset => "connection reset by the server".into(),
                std::io::ErrorKind::UnexpectedEof => {
                    "the server closed the connection early".into()
                }
                // rustls reports a broken handshake as invalid data.
                std::io::ErrorKind::InvalidData if https => {
                    format!("TLS handshake failed: {text}")
                }
                _ if text.contains("lookup address") => format!("host not found (DNS: {text})"),
                _ => format!("request failed: {text}"),
            }
        }
        other => format!("request failed: {other}"),
    }
}
