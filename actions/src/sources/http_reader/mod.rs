//! `http_reader`: GETs one URL, a list of URLs, or a URL template over ranges of numbers,
//! and reads each answer as JSON, JSON Lines, GeoJSON or CSV.
//!
//! ```yaml
//! - id: records
//!   action: http_reader
//!   with:
//!     url: "https://api.example.com/records?page={page}"
//!     range: { page: [1, 50] }
//!     format: auto
//!     concurrency: 8
//!     headers:
//!       Accept: application/json
//!       Authorization: { env: API_TOKEN, prefix: "Bearer " }
//! ```
//!
//! - `url` is one URL or a list; `{name}` in a URL is replaced by every value of
//!   `range.name`: `[from, to]` (integers, both included) or `[from, to, step]`. With several
//!   names every combination is fetched, names in alphabetical order, the last varying
//!   fastest. Only `http` and `https` are fetched.
//! - Up to `concurrency` requests are in flight (default 4, at most 64), but the features
//!   come out in request order, with the same ids as one request after another. Answers
//!   wait for their turn on disk (in the run's spill folder, or the journal), so memory holds
//!   only the pages being fetched and the one being read.
//! - `format: auto` reads the answer's `Content-Type` (`application/geo+json`, a JSON body
//!   that is a GeoJSON object, `application/json`, `application/x-ndjson`, `text/csv`), then
//!   the URL's extension; the body is read by `json_reader` (an array of objects or JSON
//!   Lines), `json_reader` with `format: lines`, `geojson_reader` or `csv_reader`, the same
//!   code that reads files. `reader_options` passes parameters to that reader
//!   (`geometry_field` and `crs` for JSON, `delimiter`, `columns`, `geometry` for CSV, ...).
//!   Rows a reader rejects go to `rejected` with their reason, the file named by its URL.
//! - Requests: `timeout` (the whole request, seconds), `connect_timeout`,
//!   `max_response_bytes` (a larger answer is cut off at the limit and fails), redirects
//!   (`max_redirects`, only to http and https: a redirect to `file://` fails), `headers`
//!   (a value is a string, or `{env: NAME, prefix: "Bearer "}`, read from the environment
//!   when the run starts; header values are never printed: not in logs, events, errors or
//!   the run report).
//! - 429 and 503 answers wait what `Retry-After` says (seconds or an HTTP date), other
//!   failures back off exponentially with jitter, `retries` times at most; a 429 or 503 also
//!   halves the requests in flight, which grow back by one every 8 successes.
//! - A page that still fails (an error status, a timeout, a body that cannot be read as its
//!   format) becomes one feature on `rejected` with `url`, `status` (null when no answer
//!   came) and `_rejection_reason`, and the run goes on; with `on_error: fail` it fails the
//!   run, naming the URL and the status. Failed pages are counted in a log line.
//! - With `sluice run --job-dir DIR`, each answer is kept in the node's journal as it
//!   completes; `--resume` after a crash, Ctrl-C or kill reads the kept answers instead of
//!   fetching them again, and yields the same features in the same order.

use std::collections::BTreeMap;
use std::io::Read;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::http::{
    HeaderValue, HttpError, JobOut, Ordered, PageFile, PageStore, Request, redact_url, run_ordered,
};
use sluice_runtime::shape::{Shape, ShapeContext};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Emitter,
    NodeContext, NodeImpl, REJECTED_PORT, REJECTION_REASON, Source, Value,
};

use super::http_input::{
    Failures, HttpParams, HttpSetup, OnError, default_concurrency, default_connect_timeout,
    default_max_redirects, default_max_response_bytes, default_retries, default_timeout, log_retry,
    report_throttling,
};

/// The most URLs one node fetches.
const MAX_URLS: usize = 1_000_000;
/// Bytes of an answer looked at to tell GeoJSON from other JSON.
const SNIFF_BYTES: u64 = 4096;

/// Parameters of `http_reader`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpReaderParams {
    /// One `http`/`https` URL or a list, fetched in order. `{name}` placeholders are filled
    /// from `range`.
    pub url: Urls,
    /// Values of the URL's placeholders: `{page: [1, 50]}` (1 to 50, both included) or
    /// `{offset: [0, 900, 100]}` (with a step). Several names: every combination, in
    /// alphabetical order of the names, the last varying fastest.
    #[serde(default)]
    pub range: BTreeMap<String, Vec<i64>>,
    /// How answers are read: `auto` (by Content-Type, then the URL's extension), `json`
    /// (an array of objects or JSON Lines), `jsonl`, `geojson` or `csv`.
    #[serde(default)]
    pub format: HttpFormat,
    /// Parameters passed to the reader of the format (`json_reader`, `geojson_reader` or
    /// `csv_reader`), e.g. `{geometry_field: geom, crs: 4326}` or `{delimiter: ";"}`.
    #[serde(default)]
    pub reader_options: serde_json::Map<String, serde_json::Value>,
    /// Requests in flight at most (1 to 64); features still come out in request order.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Headers sent with every request: a string, or `{env: NAME, prefix: "Bearer "}` for a
    /// value read from the environment when the run starts. Values are never printed.
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderValue>,
    /// Seconds a whole request may take, the body included (default 60).
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Seconds to open a connection, TLS included (default 10).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: f64,
    /// The largest answer read, in bytes (default 256 MiB); a larger one fails its page.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// Redirects followed at most (only to http and https; default 5).
    #[serde(default = "default_max_redirects")]
    pub max_redirects: u32,
    /// Tries after the first for a page that fails in a way that may pass (429, 5xx,
    /// timeouts, broken connections; default 5, at most 20).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// What a page that still fails does: `reject` (one feature on `rejected`) or `fail`.
    #[serde(default)]
    pub on_error: OnError,
}

/// One URL or several.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Urls {
    /// One URL.
    One(String),
    /// URLs fetched in order.
    Many(Vec<String>),
}

/// How an answer is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HttpFormat {
    /// By the answer's Content-Type, then the URL's extension; JSON when neither says.
    #[default]
    Auto,
    /// An array of objects, or JSON Lines (`json_reader`).
    Json,
    /// JSON Lines (`json_reader` with `format: lines`).
    Jsonl,
    /// A GeoJSON FeatureCollection, Feature or sequence (`geojson_reader`).
    Geojson,
    /// CSV (`csv_reader`).
    Csv,
}

/// The `http_reader` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "http_reader",
    ActionKind::Source,
    "GETs URLs (a list, or a template over ranges) concurrently and reads JSON, JSON Lines, GeoJSON or CSV answers in request order.",
    schema_of::<HttpReaderParams>,
    build,
)
.shape(shape)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.example(
    "url: \"https://api.example.com/records?page={page}\"\nrange: { page: [1, 50] }\nconcurrency: 8\n",
);

/// The attributes are known only once answers are read.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let _: HttpReaderParams = ctx.params()?;
    let shape = Shape::unread(ctx.node_id);
    Ok(vec![shape.clone(), shape.rejected()])
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: HttpReaderParams = ctx.params()?;
    let setup = HttpSetup::new(HttpParams {
        concurrency: p.concurrency,
        headers: &p.headers,
        timeout: p.timeout,
        connect_timeout: p.connect_timeout,
        max_response_bytes: p.max_response_bytes,
        max_redirects: p.max_redirects,
        retries: p.retries,
        on_error: p.on_error,
    });
    let urls = expand(&p.url, &p.range);
    let options = check_reader_options(p.format, &p.reader_options);
    let (setup, urls) = match (setup, urls, options) {
        (Ok(s), Ok(u), Ok(())) => (s, u),
        (s, u, o) => {
            return Err(
                ActionError::collect([s.err(), u.err(), o.err()].into_iter().flatten())
                    .err()
                    .unwrap_or_else(|| ActionError::param("", "invalid parameters")),
            );
        }
    };
    // What decides the features: a resumed journal written for anything else is refused.
    let fingerprint = serde_json::json!({
        "urls": urls,
        "format": format!("{:?}", p.format),
        "reader_options": p.reader_options,
    })
    .to_string();
    Ok(BuiltAction::new(NodeImpl::Source(Box::new(HttpReader {
        urls,
        format: p.format,
        reader_options: p.reader_options,
        setup,
        fingerprint,
    }))))
}

/// The URLs a `url` and `range` stand for, in order.
fn expand(urls: &Urls, range: &BTreeMap<String, Vec<i64>>) -> Result<Vec<String>, ActionError> {
    let templates: Vec<String> = match urls {
        Urls::One(u) => vec![u.clone()],
        Urls::Many(list) => list.clone(),
    };
    if templates.is_empty() {
        return Err(ActionError::param("url", "give at least one URL"));
    }
    let mut values: Vec<(String, Vec<i64>)> = Vec::new();
    let mut total: usize = 1;
    for (name, spec) in range {
        let (from, to, step) = match spec.as_slice() {
            [from, to] => (*from, *to, 1),
            [from, to, step] => (*from, *to, *step),
            _ => {
                return Err(ActionError::param(
                    format!("range.{name}"),
                    "give [from, to] or [from, to, step]",
                ));
            }
        };
        if step <= 0 || to < from {
            return Err(ActionError::param(
                format!("range.{name}"),
                "from must not be above to, and step must be above 0",
            ));
        }
        let count = ((to - from) / step + 1) as usize;
        total = total.saturating_mul(count);
        if total.saturating_mul(templates.len()) > MAX_URLS {
            return Err(ActionError::param(
                "range",
                format!("more than {MAX_URLS} URLs"),
            ));
        }
        values.push((
            name.clone(),
            (0..count as i64).map(|k| from + k * step).collect(),
        ));
        if !templates.iter().any(|t| t.contains(&format!("{{{name}}}"))) {
            return Err(ActionError::param(
                format!("range.{name}"),
                format!("no URL has a {{{name}}} placeholder"),
            ));
        }
    }
    let mut out = Vec::new();
    for (i, template) in templates.iter().enumerate() {
        let mut urls = vec![template.clone()];
        for (name, vals) in &values {
            let placeholder = format!("{{{name}}}");
            let placeholder = placeholder.as_str();
            urls = urls
                .iter()
                .flat_map(|u| {
                    vals.iter()
                        .map(move |v| u.replace(placeholder, &v.to_string()))
                })
                .collect();
        }
        for u in &urls {
            let at = if templates.len() == 1 {
                "url".to_string()
            } else {
                format!("url[{i}]")
            };
            if let Some(start) = u.find('{')
                && let Some(len) = u[start..].find('}')
                && u[start + 1..start + len]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(ActionError::param(
                    at,
                    format!(
                        "placeholder {} has no values in `range`",
                        &u[start..=start + len]
                    ),
                ));
            }
            sluice_runtime::http::check_url(u)
                .map_err(|e| ActionError::param(at, e.to_string()))?;
        }
        out.extend(urls);
    }
    Ok(out)
}

/// The reader of each format, and the parameters it gets besides `reader_options`.
fn reader_of(format: HttpFormat) -> (&'static ActionSpec, Option<(&'static str, &'static str)>) {
    match format {
        HttpFormat::Auto | HttpFormat::Json => {
            (&super::json_reader::SPEC, Some(("format", "auto")))
        }
        HttpFormat::Jsonl => (&super::json_reader::SPEC, Some(("format", "lines"))),
        HttpFormat::Geojson => (&super::geojson_reader::SPEC, None),
        HttpFormat::Csv => (&super::csv_reader::SPEC, None),
    }
}

/// `reader_options` must not set what the reader of a page is given, and (for a fixed
/// format) must be parameters its reader takes.
fn check_reader_options(
    format: HttpFormat,
    options: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), ActionError> {
    for key in ["path", "read_ahead", "extensions"] {
        if options.contains_key(key) {
            return Err(ActionError::param(
                format!("reader_options.{key}"),
                "set by http_reader for each answer",
            ));
        }
    }
    if format == HttpFormat::Auto {
        return Ok(());
    }
    build_reader(format, options, "answer.json", "check")
        .map(|_| ())
        .map_err(|e| match e {
            ActionError::Param { path, message } => ActionError::Param {
                path: if path.is_empty() {
                    "reader_options".into()
                } else {
                    format!("reader_options.{path}")
                },
                message,
            },
            other => other,
        })
}

/// Builds the reader of `format` for the file at `path`.
fn build_reader(
    format: HttpFormat,
    options: &serde_json::Map<String, serde_json::Value>,
    path: &str,
    node_id: &str,
) -> Result<Box<dyn Source>, ActionError> {
    let (spec, fixed) = reader_of(format);
    let mut params = options.clone();
    params.insert("path".into(), path.into());
    // The answer's file has no extension of the format: read it whatever its name.
    params.insert("extensions".into(), serde_json::json!([]));
    if let Some((k, v)) = fixed {
        params.insert(k.into(), v.into());
    }
    let params = serde_json::Value::Object(params);
    let built = (spec.build)(&BuildContext {
        node_id,
        params: &params,
    })?;
    match built.node {
        NodeImpl::Source(s) => Ok(s),
        _ => Err(ActionError::Other(
            format!("{} did not build a source", spec.name).into(),
        )),
    }
}

struct HttpReader {
    urls: Vec<String>,
    format: HttpFormat,
    reader_options: serde_json::Map<String, serde_json::Value>,
    setup: HttpSetup,
    fingerprint: String,
}

/// What a worker hands the node thread for one URL.
enum Got {
    Page(PageFile),
    Failed(String, HttpError),
}

const ACCEPT: &str =
    "application/json, application/geo+json, application/x-ndjson, text/csv, */*;q=0.5";

impl Source for HttpReader {
    fn run(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        let (client, limit) = self.setup.start(ACCEPT)?;
        let store = PageStore::new(ctx, &self.fingerprint)?;
        let policy = &self.setup.policy;
        let work = |i: usize, url: &String, jo: &mut JobOut<'_, Got>| {
            let key = format!("u{i}");
            if let Some(page) = store.saved(&key) {
                return jo.send(Got::Page(page));
            }
            let request = Request::get(url.clone());
            let mut on_retry = log_retry(ctx);
            match store.fetch(&key, &client, &limit, policy, &request, ctx, &mut on_retry)? {
                Ok(page) => jo.send(Got::Page(page)),
                Err(HttpError::Cancelled) => Err(ActionError::Cancelled),
                Err(e) => jo.send(Got::Failed(redact_url(url), e)),
            }
        };
        let mut failures = Failures::new(self.setup.on_error);
        let mut next_id = 0u64;
        let mut replayed = 0u64;
        run_ordered(
            ctx,
            &self.urls,
            Ordered::new(self.setup.concurrency, 1),
            &work,
            &mut |_, got| match got {
                Got::Page(page) => {
                    replayed += u64::from(page.replayed);
                    let result = self.emit_page(&page, ctx, out, &mut next_id, &mut failures);
                    store.release(&page);
                    result
                }
                Got::Failed(url, e) => {
                    let mut f = failures.request(&url, &e)?;
                    f.set_id(next_id);
                    next_id += 1;
                    out.emit_rejected(f)
                }
            },
        )?;
        if replayed > 0 {
            ctx.log(format!(
                "{replayed} answer(s) read from the journal instead of fetched again"
            ));
        }
        failures.report(ctx, "page");
        report_throttling(ctx, &limit);
        Ok(())
    }
}

impl HttpReader {
    /// Reads one answer with its format's reader and emits its features (then its
    /// rejected rows); an answer that cannot be read is a failed page.
    fn emit_page(
        &self,
        page: &PageFile,
        ctx: &NodeContext,
        out: &mut Emitter,
        next_id: &mut u64,
        failures: &mut Failures,
    ) -> Result<(), ActionError> {
        let path = page.path.to_string_lossy().to_string();
        let format = match self.format {
            HttpFormat::Auto => detect(page),
            f => f,
        };
        let mut buffer = Emitter::for_outputs(&[DEFAULT_PORT, REJECTED_PORT]);
        let read = build_reader(format, &self.reader_options, &path, &ctx.node_id)
            .and_then(|mut source| source.run(ctx, &mut buffer));
        match read {
            Ok(()) => {}
            Err(ActionError::Cancelled) => return Err(ActionError::Cancelled),
            Err(e) => {
                let reason = e.to_string().replace(&path, &page.url);
                let mut f = failures.page(&page.url, Some(200), reason)?;
                f.set_id(*next_id);
                *next_id += 1;
                return out.emit_rejected(f);
            }
        }
        let mut ports = buffer.into_buffers().into_iter();
        let features = ports.next().unwrap_or_default();
        let rejected = ports.next().unwrap_or_default();
        for mut f in features {
            f.set_id(*next_id);
            *next_id += 1;
            out.emit(f)?;
        }
        for mut f in rejected {
            // The reason names the answer's temporary file: name its URL instead.
            if let Some(Value::String(reason)) = f.get(REJECTION_REASON).cloned() {
                let text = reason.replace(&path, &page.url);
                f.set(REJECTION_REASON, Value::String(text.into()));
            }
            f.set_id(*next_id);
            *next_id += 1;
            out.emit_rejected(f)?;
        }
        ctx.check_cancelled()
    }
}

/// The format of an answer: its content type, a sniff of a JSON body, its URL's extension.
fn detect(page: &PageFile) -> HttpFormat {
    let by_type = match page.content_type.as_deref() {
        Some("application/geo+json" | "application/vnd.geo+json") => Some(HttpFormat::Geojson),
        Some(
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines",
        ) => Some(HttpFormat::Jsonl),
        Some("text/csv" | "application/csv") => Some(HttpFormat::Csv),
        Some("application/json" | "text/json") => Some(HttpFormat::Json),
        _ => None,
    };
    let path = page
        .url
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let by_extension = if path.ends_with(".geojson") {
        Some(HttpFormat::Geojson)
    } else if path.ends_with(".jsonl") || path.ends_with(".ndjson") {
        Some(HttpFormat::Jsonl)
    } else if path.ends_with(".csv") {
        Some(HttpFormat::Csv)
    } else if path.ends_with(".json") {
        Some(HttpFormat::Json)
    } else {
        None
    };
    match by_type.or(by_extension).unwrap_or(HttpFormat::Json) {
        HttpFormat::Json if looks_like_geojson(page) => HttpFormat::Geojson,
        f => f,
    }
}

/// Whether a JSON answer is a GeoJSON object: it starts with `{` and names a
/// FeatureCollection or Feature type near its start.
fn looks_like_geojson(page: &PageFile) -> bool {
    let Ok(file) = std::fs::File::open(&page.path) else {
        return false;
    };
    let mut head = Vec::new();
    if file.take(SNIFF_BYTES).read_to_end(&mut head).is_err() {
        return false;
    }
    let text = String::from_utf8_lossy(&head);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    // A GeoJSON text sequence (one Feature per line) is GeoJSON too.
    text.starts_with('{')
        && (text.contains("\"FeatureCollection\"") || text.contains("\"Feature\""))
}

#[cfg(test)]
mod tests;
