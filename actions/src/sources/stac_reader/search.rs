//! Item search: the first request of each job (a collection × a slice of the datetime
//! interval), and the `next` links that lead from one page to the next.

use std::collections::HashSet;
use std::io::BufReader;

use serde::Deserialize;
use sluice_runtime::http::{HttpError, Method, Request, join_url, with_query};

/// One chain of pages: a collection (or all the search names) and a datetime slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Job {
    /// The collection searched, or `None` for the search's own `collections` (or none).
    pub collection: Option<String>,
    /// The datetime (an instant or an interval), or none.
    pub datetime: Option<String>,
}

/// What every search request shares.
#[derive(Debug, Clone)]
pub(super) struct Search {
    /// `{url}/search`.
    pub endpoint: String,
    pub method: Method,
    pub bbox: Option<Vec<f64>>,
    pub limit: Option<u32>,
    pub query: Option<serde_json::Value>,
    pub filter: Option<serde_json::Value>,
}

impl Search {
    /// The first request of `job`.
    pub(super) fn first(&self, job: &Job) -> Result<Request, HttpError> {
        match self.method {
            Method::Get => {
                let mut pairs: Vec<(&str, String)> = Vec::new();
                if let Some(c) = &job.collection {
                    pairs.push(("collections", c.clone()));
                }
                if let Some(b) = &self.bbox {
                    let text: Vec<String> = b.iter().map(|v| v.to_string()).collect();
                    pairs.push(("bbox", text.join(",")));
                }
                if let Some(d) = &job.datetime {
                    pairs.push(("datetime", d.clone()));
                }
                if let Some(l) = self.limit {
                    pairs.push(("limit", l.to_string()));
                }
                if let Some(q) = &self.query {
                    pairs.push(("query", q.to_string()));
                }
                if let Some(f) = &self.filter {
                    match f {
                        serde_json::Value::String(text) => {
                            pairs.push(("filter", text.clone()));
                            pairs.push(("filter-lang", "cql2-text".into()));
                        }
                        other => {
                            pairs.push(("filter", other.to_string()));
                            pairs.push(("filter-lang", "cql2-json".into()));
                        }
                    }
                }
                let pairs: Vec<(&str, &str)> =
                    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
                Ok(Request::get(with_query(&self.endpoint, &pairs)?))
            }
            Method::Post => {
                let mut body = serde_json::Map::new();
                if let Some(c) = &job.collection {
                    body.insert("collections".into(), serde_json::json!([c]));
                }
                if let Some(b) = &self.bbox {
                    body.insert("bbox".into(), serde_json::json!(b));
                }
                if let Some(d) = &job.datetime {
                    body.insert("datetime".into(), d.clone().into());
                }
                if let Some(l) = self.limit {
                    body.insert("limit".into(), l.into());
                }
                if let Some(q) = &self.query {
                    body.insert("query".into(), q.clone());
                }
                if let Some(f) = &self.filter {
                    let lang = if f.is_string() {
                        "cql2-text"
                    } else {
                        "cql2-json"
                    };
                    body.insert("filter".into(), f.clone());
                    body.insert("filter-lang".into(), lang.into());
                }
                let bytes = serde_json::to_vec(&serde_json::Value::Object(body)).map_err(|e| {
                    HttpError::BadUrl {
                        url: self.endpoint.clone(),
                        message: format!("the search body: {e}"),
                    }
                })?;
                Ok(Request::post(self.endpoint.clone(), bytes))
            }
        }
    }
}

/// A page's links, read without its items.
#[derive(Deserialize)]
struct PageLinks {
    #[serde(default)]
    links: Option<Vec<serde_json::Value>>,
}

/// The request a page's `next` link asks for, after `previous` (the request that gave the
/// page): a GET of its `href`, or a POST of its `body` (merged into the previous body with
/// `merge: true`; the previous body when it gives none). `None`: the last page. An error
/// is a page that cannot be read (the node thread reports it when it reads the items).
pub(super) fn next_request(
    page: &std::path::Path,
    previous: &Request,
) -> Result<Option<Request>, String> {
    let file = std::fs::File::open(page).map_err(|e| e.to_string())?;
    let links: PageLinks =
        serde_json::from_reader(BufReader::new(file)).map_err(|e| e.to_string())?;
    let Some(next) = links
        .links
        .unwrap_or_default()
        .into_iter()
        .find(|l| l.get("rel").and_then(serde_json::Value::as_str) == Some("next"))
    else {
        return Ok(None);
    };
    let href = next
        .get("href")
        .and_then(serde_json::Value::as_str)
        .ok_or("a next link without an href")?;
    let url = join_url(&previous.url, href).map_err(|e| e.to_string())?;
    let method = next
        .get("method")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("GET")
        .to_ascii_uppercase();
    match method.as_str() {
        "GET" => Ok(Some(Request::get(url))),
        "POST" => {
            let previous_body = previous
                .body
                .as_deref()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                .unwrap_or_else(|| serde_json::json!({}));
            let merge = next
                .get("merge")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
            let body = match (next.get("body"), merge) {
                (Some(serde_json::Value::Object(b)), true) => {
                    let mut merged = previous_body.as_object().cloned().unwrap_or_default();
                    for (k, v) in b {
                        merged.insert(k.clone(), v.clone());
                    }
                    serde_json::Value::Object(merged)
                }
                (Some(b), _) => b.clone(),
                (None, _) => previous_body,
            };
            let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
            Ok(Some(Request::post(url, bytes)))
        }
        other => Err(format!("a next link with method {other}")),
    }
}

/// The requests of one chain so far, to stop at a `next` link that leads back.
#[derive(Default)]
pub(super) struct Seen(HashSet<Request>);

impl Seen {
    /// Records `r`; false when it was already made (a loop).
    pub(super) fn first_time(&mut self, r: &Request) -> bool {
        self.0.insert(r.clone())
    }
}
