//! `stac_reader`: reads STAC items into features, from a STAC API's item search or from a
//! static catalogue.
//!
//! ```yaml
//! - id: scenes
//!   action: stac_reader
//!   with:
//!     url: https://earth-search.aws.element84.com/v1
//!     collections: [sentinel-2-l2a]
//!     bbox: [5.9, 45.8, 10.5, 47.8]
//!     datetime: 2024-01-01T00:00:00Z/2024-12-31T23:59:59Z
//!     chunks: 12
//!     concurrency: 8
//!     limit: 100
//! ```
//!
//! **Search.** `url` is the API root; items are searched at `{url}/search` with `GET` (the
//! default) or `POST` (`method`), with `collections`, `bbox`, `datetime` (an instant or an
//! interval, `..` for an open end), `limit` (items per page), and `query` / `filter`
//! passed through as given (a `filter` object is CQL2 JSON, a string CQL2 text). Pages are
//! followed by their `next` link: a GET of its `href`, or a POST of its `body` (merged
//! into the previous body with `merge: true`).
//!
//! **Concurrency.** The `datetime` interval is split into `chunks` equal slices and each
//! collection of `collections` is searched on its own: every (collection, slice) is a chain
//! of pages followed in order, and up to `concurrency` requests run at once across chains
//! (a 429 or 503 halves that, successes bring it back). Features come out chain by chain
//! (collections in the order given, slices in time order), pages in order: the same
//! features in the same order whatever the concurrency. Slices share their edges, so an
//! item on an edge is found twice: items are deduplicated by (collection, id) across the
//! whole search (about 60 bytes per item kept). Pages waiting for their turn wait on disk.
//!
//! **Static catalogues.** A `url` ending in `.json` (or `mode: catalog`) is a
//! `catalog.json`: its `child` links (catalogues, collections) and their `item` links are
//! followed, over HTTP or local files (a path or `file://`, read through the store; links
//! relative to the document), `concurrency` documents at a time, a level at a time; items
//! come out in catalogue order.
//!
//! **Items → features.** Attributes: `id`, `collection`, the item's `properties` in order
//! (`datetime`, `start_datetime`, `end_datetime`, `created` and `updated` typed as
//! datetimes when they are RFC 3339 date-times; other values as they are, nested objects
//! as maps; a property named `id`, `collection`, `assets`, `bbox` or `links` becomes
//! `properties.<name>`), `assets` (a map of the asset objects), and, with `include`,
//! `bbox` and `links`. The geometry is the item's, in EPSG:4326. An item with a null
//! geometry (STAC allows one, with no `bbox`) is a feature without geometry. An item that
//! is not an object, has no string `id`, has properties that are not an object or a
//! geometry that is not valid GeoJSON goes to `rejected` with `url`, `id` and
//! `_rejection_reason` (the page's URL and the item's place in it).
//!
//! **Failures.** Requests retry as `http_reader`'s do (`Retry-After`, backoff with jitter,
//! `retries`); timeouts, `max_response_bytes`, redirects only to http(s) and `headers`
//! (`{env: NAME, prefix: "Bearer "}`, never printed) too. A page that still fails, a page
//! that is not valid JSON, or a `next` link that leads back to a request already made in
//! its chain (a loop) becomes one feature on `rejected` with `url`, `status` and
//! `_rejection_reason`, and its chain stops there; `on_error: fail` fails the run instead.
//! Failed pages and dropped duplicates are counted in log lines.
//!
//! **Resume.** With `sluice run --job-dir DIR`, every page is kept in the node's journal as
//! it completes; `--resume` reads kept pages instead of fetching them again and yields the
//! same features in the same order.

mod catalog;
mod items;
mod search;

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::http::{
    HeaderValue, HttpError, JobOut, Method, Ordered, PageFile, PageStore, redact_url, run_ordered,
};
use sluice_runtime::input::SharedCache;
use sluice_runtime::shape::{GeometryShape, Shape, ShapeContext};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Emitter,
    NodeContext, NodeImpl, REJECTED_PORT, Source,
};

use super::http_input::{
    Failures, HttpParams, HttpSetup, OnError, default_concurrency, default_connect_timeout,
    default_max_redirects, default_max_response_bytes, default_retries, default_timeout, log_retry,
    report_throttling,
};
use catalog::{Doc, Fetcher, Loc};
use items::{Converted, Items};
use search::{Job, Search, Seen};

/// Pages of one chain that may wait for their turn (on disk; the channel holds their
/// file names).
const PAGES_AHEAD: usize = 1024;
/// The most datetime slices.
const MAX_CHUNKS: usize = 10_000;

/// Parameters of `stac_reader`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StacReaderParams {
    /// The STAC API root (items are searched at `{url}/search`), or a static catalogue's
    /// `catalog.json` (a URL, a local path or `file://`).
    pub url: String,
    /// `auto` (a `url` ending in `.json` is a static catalogue, anything else an API),
    /// `search` or `catalog`.
    #[serde(default)]
    pub mode: StacMode,
    /// `get` or `post` for the item search.
    #[serde(default)]
    pub method: SearchMethod,
    /// Collections searched, each on its own chain of pages (default: the API's choice,
    /// every collection).
    #[serde(default)]
    pub collections: Vec<String>,
    /// `[west, south, east, north]` (or 6 numbers with heights) in WGS 84.
    #[serde(default)]
    pub bbox: Option<Vec<f64>>,
    /// An RFC 3339 instant, or an interval `start/end` (`..` for an open end).
    #[serde(default)]
    pub datetime: Option<String>,
    /// Slices the `datetime` interval (which must then be closed) is split into, searched
    /// in parallel (default 1).
    #[serde(default = "one")]
    pub chunks: usize,
    /// Items per page asked of the API (default: the API's).
    #[serde(default)]
    pub limit: Option<u32>,
    /// The `query` extension's object, passed through as given.
    #[serde(default)]
    pub query: Option<serde_json::Value>,
    /// A CQL2 filter, passed through: an object (CQL2 JSON) or a string (CQL2 text).
    #[serde(default)]
    pub filter: Option<serde_json::Value>,
    /// Optional attributes: `bbox` (the item's bbox array) and `links` (its links).
    #[serde(default)]
    pub include: Vec<Include>,
    /// Requests in flight at most (1 to 64).
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
    /// The largest page read, in bytes (default 256 MiB); a larger one fails.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// Redirects followed at most (only to http and https; default 5).
    #[serde(default = "default_max_redirects")]
    pub max_redirects: u32,
    /// Tries after the first for a page that fails in a way that may pass (429, 5xx,
    /// timeouts, broken connections; default 5, at most 20).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// What a page that still fails does: `reject` (one feature on `rejected`, its chain
    /// stops) or `fail` (the run fails, naming the URL and status).
    #[serde(default)]
    pub on_error: OnError,
}

fn one() -> usize {
    1
}

/// Where the items come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StacMode {
    /// A `url` ending in `.json` is a catalogue, anything else an API.
    #[default]
    Auto,
    /// Item search of a STAC API.
    Search,
    /// A static catalogue.
    Catalog,
}

/// The HTTP method of the item search.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchMethod {
    /// Parameters in the query string.
    #[default]
    Get,
    /// Parameters in a JSON body.
    Post,
}

/// An optional attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Include {
    /// The item's `bbox`.
    Bbox,
    /// The item's `links`.
    Links,
}

/// The `stac_reader` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "stac_reader",
    ActionKind::Source,
    "Reads STAC items (API item search, GET or POST, or a static catalogue) concurrently: datetime slices and collections in parallel, pages in order, deduplicated.",
    schema_of::<StacReaderParams>,
    build,
)
.shape(shape)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.reads_from("url")
.example(
    "url: https://earth-search.aws.element84.com/v1\ncollections: [sentinel-2-l2a]\ndatetime: 2024-01-01T00:00:00Z/2024-12-31T23:59:59Z\nchunks: 12\nconcurrency: 8\n",
);

/// Properties are known only once items are read; the geometry is WGS 84.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let _: StacReaderParams = ctx.params()?;
    let shape =
        Shape::unread(ctx.node_id).with_geometry(GeometryShape::Present { crs: Some(4326) });
    Ok(vec![shape.clone(), Shape::unread(ctx.node_id).rejected()])
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: StacReaderParams = ctx.params()?;
    let mut errors = Vec::new();
    let setup = HttpSetup::new(HttpParams {
        concurrency: p.concurrency,
        headers: &p.headers,
        timeout: p.timeout,
        connect_timeout: p.connect_timeout,
        max_response_bytes: p.max_response_bytes,
        max_redirects: p.max_redirects,
        retries: p.retries,
        on_error: p.on_error,
    })
    .map_err(|e| errors.push(e))
    .ok();
    let catalog = match p.mode {
        StacMode::Auto => p
            .url
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
            .ends_with(".json"),
        StacMode::Search => false,
        StacMode::Catalog => true,
    };
    let is_http = matches!(Loc::parse(&p.url), Loc::Http(_));
    if p.url.trim().is_empty() {
        errors.push(ActionError::param("url", "must not be empty"));
    } else if !catalog && !is_http {
        errors.push(ActionError::param(
            "url",
            format!(
                "{}: an item search needs an http or https API root (a static catalogue's \
                 catalog.json may be a local file)",
                redact_url(&p.url)
            ),
        ));
    } else if is_http && let Err(e) = sluice_runtime::http::check_url(&p.url) {
        errors.push(ActionError::param("url", e.to_string()));
    }
    if let Some(b) = &p.bbox
        && !(b.len() == 4 || b.len() == 6)
    {
        errors.push(ActionError::param(
            "bbox",
            "give 4 numbers (or 6 with heights)",
        ));
    }
    if p.chunks == 0 || p.chunks > MAX_CHUNKS {
        errors.push(ActionError::param(
            "chunks",
            format!("give 1 to {MAX_CHUNKS}"),
        ));
    }
    let slices = match split_datetime(p.datetime.as_deref(), p.chunks.clamp(1, MAX_CHUNKS)) {
        Ok(s) => s,
        Err(e) => {
            errors.push(e);
            Vec::new()
        }
    };
    if catalog
        && (!p.collections.is_empty()
            || p.bbox.is_some()
            || p.datetime.is_some()
            || p.query.is_some()
            || p.filter.is_some()
            || p.limit.is_some())
    {
        errors.push(ActionError::param(
            "url",
            "a static catalogue is read whole: collections, bbox, datetime, limit, query and \
             filter are item search parameters (filter the features downstream)",
        ));
    }
    ActionError::collect(errors)?;
    let Some(setup) = setup else {
        return Err(ActionError::param("", "invalid parameters"));
    };
    let include_bbox = p.include.contains(&Include::Bbox);
    let include_links = p.include.contains(&Include::Links);
    let fingerprint = serde_json::json!({
        "url": p.url, "catalog": catalog, "method": format!("{:?}", p.method),
        "collections": p.collections, "bbox": p.bbox, "slices": slices, "limit": p.limit,
        "query": p.query, "filter": p.filter, "include": [include_bbox, include_links],
    })
    .to_string();
    let mode = if catalog {
        Mode::Catalog(Loc::parse(&p.url))
    } else {
        let root = p.url.trim_end_matches('/');
        let collections: Vec<Option<String>> = if p.collections.is_empty() {
            vec![None]
        } else {
            p.collections.iter().cloned().map(Some).collect()
        };
        let jobs = collections
            .iter()
            .flat_map(|c| {
                slices.iter().map(move |d| Job {
                    collection: c.clone(),
                    datetime: d.clone(),
                })
            })
            .collect();
        Mode::Search(
            Search {
                endpoint: format!("{root}/search"),
                method: match p.method {
                    SearchMethod::Get => Method::Get,
                    SearchMethod::Post => Method::Post,
                },
                bbox: p.bbox,
                limit: p.limit,
                query: p.query,
                filter: p.filter,
            },
            jobs,
        )
    };
    Ok(BuiltAction::new(NodeImpl::Source(Box::new(StacReader {
        mode,
        setup,
        include_bbox,
        include_links,
        fingerprint,
    }))))
}

/// The `datetime` of each slice: the parameter itself for one chunk, else the closed
/// interval cut into `chunks` equal slices (each sharing its edges with its neighbours).
fn split_datetime(
    datetime: Option<&str>,
    chunks: usize,
) -> Result<Vec<Option<String>>, ActionError> {
    let Some(text) = datetime else {
        if chunks > 1 {
            return Err(ActionError::param(
                "chunks",
                "slicing needs a closed `datetime` interval (start/end)",
            ));
        }
        return Ok(vec![None]);
    };
    let parse = |s: &str| {
        DateTime::parse_from_rfc3339(s.trim())
            .map(|d| d.with_timezone(&Utc))
            .map_err(|e| {
                ActionError::param(
                    "datetime",
                    format!("{s}: not an RFC 3339 date-time ({e}); write 2024-01-01T00:00:00Z"),
                )
            })
    };
    let (start, end) = match text.split_once('/') {
        None => {
            parse(text)?;
            if chunks > 1 {
                return Err(ActionError::param(
                    "chunks",
                    "slicing needs a closed `datetime` interval (start/end), not an instant",
                ));
            }
            return Ok(vec![Some(text.to_string())]);
        }
        Some((a, b)) => (a.trim(), b.trim()),
    };
    let open = |s: &str| s.is_empty() || s == "..";
    if open(start) || open(end) {
        if !open(start) {
            parse(start)?;
        }
        if !open(end) {
            parse(end)?;
        }
        if chunks > 1 {
            return Err(ActionError::param(
                "chunks",
                "slicing needs a closed `datetime` interval: both ends given",
            ));
        }
        return Ok(vec![Some(text.to_string())]);
    }
    let (s, e) = (parse(start)?, parse(end)?);
    if e < s {
        return Err(ActionError::param(
            "datetime",
            "the interval ends before it starts",
        ));
    }
    if chunks == 1 {
        return Ok(vec![Some(text.to_string())]);
    }
    let (s_us, e_us) = (s.timestamp_micros(), e.timestamp_micros());
    let span = i128::from(e_us - s_us);
    let at = |k: usize| -> String {
        let t = s_us + (span * k as i128 / chunks as i128) as i64;
        DateTime::<Utc>::from_timestamp_micros(t)
            .unwrap_or(s)
            .to_rfc3339_opts(SecondsFormat::AutoSi, true)
    };
    Ok((0..chunks)
        .map(|k| Some(format!("{}/{}", at(k), at(k + 1))))
        .collect())
}

enum Mode {
    Search(Search, Vec<Job>),
    Catalog(Loc),
}

struct StacReader {
    mode: Mode,
    setup: HttpSetup,
    include_bbox: bool,
    include_links: bool,
    fingerprint: String,
}

const ACCEPT: &str = "application/geo+json, application/json;q=0.9, */*;q=0.5";

/// What a search worker hands the node thread.
enum Got {
    Page(PageFile),
    Failed(String, HttpError),
    Loop(String),
}

/// The node thread's side: items into features, failures into rejected features.
struct Out<'o, 'a> {
    out: &'o mut Emitter,
    items: Items<'a>,
    failures: Failures,
    next_id: u64,
    replayed: u64,
}

impl Out<'_, '_> {
    /// Emits the items of one document (a page or an item file).
    fn document(
        &mut self,
        input: Box<dyn std::io::Read + Send>,
        url: &str,
        ctx: &NodeContext,
    ) -> Result<(), ActionError> {
        let mut converted = Vec::new();
        let read = self.items.read(input, url, &mut converted);
        for c in converted {
            match c {
                Converted::Feature(mut f) => {
                    f.set_id(self.next_id);
                    self.next_id += 1;
                    self.out.emit(f)?;
                }
                Converted::Rejected(mut f) => {
                    f.set_id(self.next_id);
                    self.next_id += 1;
                    self.out.emit_rejected(f)?;
                }
                Converted::Duplicate => {}
            }
        }
        if let Err(message) = read {
            self.failed(url, Some(200), format!("{url}: {message}"))?;
        }
        ctx.check_cancelled()
    }

    fn failed(
        &mut self,
        url: &str,
        status: Option<u16>,
        reason: String,
    ) -> Result<(), ActionError> {
        let mut f = self.failures.page(url, status, reason)?;
        f.set_id(self.next_id);
        self.next_id += 1;
        self.out.emit_rejected(f)
    }
}

impl Source for StacReader {
    fn run(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        let (client, limit) = self.setup.start(ACCEPT)?;
        let store = PageStore::new(ctx, &self.fingerprint)?;
        let fetcher = Fetcher {
            client: &client,
            limit: &limit,
            policy: &self.setup.policy,
            store: &store,
        };
        let shared = SharedCache::new();
        let mut o = Out {
            out,
            items: Items::new(&shared, self.include_bbox, self.include_links),
            failures: Failures::new(self.setup.on_error),
            next_id: 0,
            replayed: 0,
        };
        let concurrency = self.setup.concurrency;
        match &self.mode {
            Mode::Search(search, jobs) => {
                run_search(ctx, &fetcher, search, jobs, concurrency, &mut o)?
            }
            Mode::Catalog(root) => run_catalog(ctx, &fetcher, root.clone(), concurrency, &mut o)?,
        }
        if o.replayed > 0 {
            ctx.log(format!(
                "{} page(s) read from the journal instead of fetched again",
                o.replayed
            ));
        }
        if o.items.duplicates > 0 {
            ctx.log(format!(
                "{} duplicate item(s) dropped (the same collection and id, found again at a \
                 slice's edge)",
                o.items.duplicates
            ));
        }
        o.failures.report(ctx, "page");
        report_throttling(ctx, &limit);
        Ok(())
    }
}

/// The item search: every job's chain of pages, in job order.
fn run_search(
    ctx: &NodeContext,
    fetcher: &Fetcher<'_>,
    search: &Search,
    jobs: &[Job],
    concurrency: usize,
    o: &mut Out<'_, '_>,
) -> Result<(), ActionError> {
    let work = |j: usize, job: &Job, jo: &mut JobOut<'_, Got>| {
        let mut request = match search.first(job) {
            Ok(r) => r,
            Err(e) => return jo.send(Got::Failed(redact_url(&search.endpoint), e)),
        };
        let mut seen = Seen::default();
        seen.first_time(&request);
        for n in 0u64.. {
            let key = format!("j{j}-p{n}");
            let page = match fetcher.store.saved(&key) {
                Some(p) => p,
                None => {
                    let mut on_retry = log_retry(ctx);
                    match fetcher.store.fetch(
                        &key,
                        fetcher.client,
                        fetcher.limit,
                        fetcher.policy,
                        &request,
                        ctx,
                        &mut on_retry,
                    )? {
                        Ok(p) => p,
                        Err(HttpError::Cancelled) => return Err(ActionError::Cancelled),
                        Err(e) => return jo.send(Got::Failed(redact_url(&request.url), e)),
                    }
                }
            };
            // A page that cannot be read stops its chain; the node thread reports it when
            // it reads the items.
            let next = search::next_request(&page.path, &request);
            jo.send(Got::Page(page))?;
            match next {
                Ok(Some(next)) => {
                    if !seen.first_time(&next) {
                        return jo.send(Got::Loop(redact_url(&next.url)));
                    }
                    request = next;
                }
                Ok(None) | Err(_) => return Ok(()),
            }
        }
        Ok(())
    };
    // A chain's pages wait on disk, and what waits in its channel is a file name: chains
    // behind the front one keep fetching (up to PAGES_AHEAD pages) instead of stalling.
    run_ordered(
        ctx,
        jobs,
        Ordered::new(concurrency, PAGES_AHEAD),
        &work,
        &mut |_, got| match got {
            Got::Page(page) => {
                o.replayed += u64::from(page.replayed);
                let doc = Doc::Page(page);
                let result = doc.open().and_then(|r| o.document(r, &doc.url(), ctx));
                fetcher.release(&doc);
                result
            }
            Got::Failed(url, e) => {
                let mut f = o.failures.request(&url, &e)?;
                f.set_id(o.next_id);
                o.next_id += 1;
                o.out.emit_rejected(f)
            }
            Got::Loop(url) => o.failed(
                &url,
                None,
                format!(
                    "{url}: the next link leads back to a request already made in this chain \
                     (a next-link loop); paging stopped"
                ),
            ),
        },
    )
}

/// A static catalogue: walk it, then read its items in order.
fn run_catalog(
    ctx: &NodeContext,
    fetcher: &Fetcher<'_>,
    root: Loc,
    concurrency: usize,
    o: &mut Out<'_, '_>,
) -> Result<(), ActionError> {
    let items = catalog::walk(ctx, fetcher, root, concurrency, &mut |(
        url,
        status,
        reason,
    )| {
        o.failed(&url, status, reason)
    })?;
    enum Item {
        Doc(Doc),
        Failed(catalog::Failure),
    }
    let work = |i: usize, loc: &Loc, jo: &mut JobOut<'_, Item>| match fetcher.get(
        loc,
        &format!("i{i}"),
        ctx,
    )? {
        Ok(doc) => jo.send(Item::Doc(doc)),
        Err(f) => jo.send(Item::Failed(f)),
    };
    run_ordered(
        ctx,
        &items,
        Ordered::new(concurrency, 1),
        &work,
        &mut |_, item| match item {
            Item::Doc(doc) => {
                if let Doc::Page(p) = &doc {
                    o.replayed += u64::from(p.replayed);
                }
                // A local item file that cannot be opened is a failed document.
                let result = match doc.open() {
                    Ok(r) => o.document(r, &doc.url(), ctx),
                    Err(e) => o.failed(&doc.url(), None, e.to_string()),
                };
                fetcher.release(&doc);
                result
            }
            Item::Failed((url, status, reason)) => o.failed(&url, status, reason),
        },
    )
}

#[cfg(test)]
mod tests;
