//! Static catalogues: `catalog.json` → `child` links (catalogues, collections) → `item`
//! links, over local files (through the store) or HTTP, walked a level at a time with
//! bounded workers, then the items fetched the same way, in catalogue order.

use std::collections::HashSet;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use sluice_runtime::http::{
    AdaptiveLimit, Client, HttpError, JobOut, Ordered, PageFile, PageStore, Request, RetryPolicy,
    join_url, redact_url, run_ordered,
};
use sluice_runtime::{ActionError, NodeContext, store};

use super::super::http_input::log_retry;

/// Where a catalogue document is: a URL, or a local path (or `file://` URL).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Loc {
    Http(String),
    File(String),
}

impl Loc {
    pub(super) fn parse(text: &str) -> Loc {
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            Loc::Http(text.to_string())
        } else {
            Loc::File(text.to_string())
        }
    }

    /// A link of this document, resolved against it.
    fn join(&self, href: &str) -> Result<Loc, String> {
        let lower = href.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return Ok(Loc::Http(href.to_string()));
        }
        match self {
            Loc::Http(base) => join_url(base, href)
                .map(Loc::Http)
                .map_err(|e| e.to_string()),
            Loc::File(base) => {
                if href.contains("://") && !lower.starts_with("file://") {
                    return Err(format!(
                        "link {href}: only http, https and local files are read"
                    ));
                }
                let (prefix, base_path) = match base.strip_prefix("file://") {
                    Some(p) => ("file://", p),
                    None => ("", base.as_str()),
                };
                let href_path = href.strip_prefix("file://").unwrap_or(href);
                let joined = if Path::new(href_path).is_absolute() {
                    PathBuf::from(href_path)
                } else {
                    Path::new(base_path)
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(href_path)
                };
                Ok(Loc::File(format!(
                    "{prefix}{}",
                    normalize(&joined).display()
                )))
            }
        }
    }

    /// The location as messages show it.
    pub(super) fn shown(&self) -> String {
        match self {
            Loc::Http(u) => redact_url(u),
            Loc::File(p) => p.clone(),
        }
    }
}

/// `a/./b/../c` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A fetched document: an answer on disk, or a local file.
pub(super) enum Doc {
    Page(PageFile),
    Local(String),
}

impl Doc {
    pub(super) fn open(&self) -> Result<Box<dyn Read + Send>, ActionError> {
        match self {
            Doc::Page(p) => std::fs::File::open(&p.path)
                .map(|f| Box::new(f) as Box<dyn Read + Send>)
                .map_err(|e| ActionError::io(format!("reading {}", p.path.display()), e)),
            Doc::Local(l) => Ok(store::open_read(l)?),
        }
    }

    pub(super) fn url(&self) -> String {
        match self {
            Doc::Page(p) => p.url.clone(),
            Doc::Local(l) => l.clone(),
        }
    }
}

/// A document that could not be had: its location, the status when one came, the reason.
pub(super) type Failure = (String, Option<u16>, String);

/// Fetches documents: HTTP into the page store (journal or spill folder), files as they are.
pub(super) struct Fetcher<'a> {
    pub client: &'a Client,
    pub limit: &'a AdaptiveLimit,
    pub policy: &'a RetryPolicy,
    pub store: &'a PageStore,
}

impl Fetcher<'_> {
    pub(super) fn get(
        &self,
        loc: &Loc,
        key: &str,
        ctx: &NodeContext,
    ) -> Result<Result<Doc, Failure>, ActionError> {
        match loc {
            Loc::File(path) => Ok(Ok(Doc::Local(path.clone()))),
            Loc::Http(url) => {
                if let Some(p) = self.store.saved(key) {
                    return Ok(Ok(Doc::Page(p)));
                }
                let mut on_retry = log_retry(ctx);
                let request = Request::get(url.clone());
                match self.store.fetch(
                    key,
                    self.client,
                    self.limit,
                    self.policy,
                    &request,
                    ctx,
                    &mut on_retry,
                )? {
                    Ok(p) => Ok(Ok(Doc::Page(p))),
                    Err(HttpError::Cancelled) => Err(ActionError::Cancelled),
                    Err(e) => Ok(Err((redact_url(url), e.status(), e.to_string()))),
                }
            }
        }
    }

    pub(super) fn release(&self, doc: &Doc) {
        if let Doc::Page(p) = doc {
            self.store.release(p);
        }
    }
}

#[derive(Deserialize)]
struct Links {
    #[serde(default)]
    links: Option<Vec<serde_json::Value>>,
}

/// What one catalogue document links to.
enum Found {
    Links { children: Vec<Loc>, items: Vec<Loc> },
    Failed(Failure),
}

/// Walks the catalogue at `root`, level by level (`concurrency` documents at a time), and
/// returns its item locations in order (each once); documents that cannot be read go to
/// `failed` in order.
pub(super) fn walk(
    ctx: &NodeContext,
    fetcher: &Fetcher<'_>,
    root: Loc,
    concurrency: usize,
    failed: &mut dyn FnMut(Failure) -> Result<(), ActionError>,
) -> Result<Vec<Loc>, ActionError> {
    let mut seen: HashSet<Loc> = HashSet::from([root.clone()]);
    let mut level = vec![root];
    let mut items = Vec::new();
    let mut depth = 0usize;
    while !level.is_empty() {
        let mut next = Vec::new();
        let work = |i: usize, loc: &Loc, jo: &mut JobOut<'_, Found>| {
            let doc = match fetcher.get(loc, &format!("d{depth}-{i}"), ctx)? {
                Ok(doc) => doc,
                Err(f) => return jo.send(Found::Failed(f)),
            };
            let parsed = doc.open().and_then(|r| {
                serde_json::from_reader::<_, Links>(BufReader::new(r))
                    .map_err(|e| ActionError::data(Some(doc.url()), format!("invalid JSON: {e}")))
            });
            fetcher.release(&doc);
            let links = match parsed {
                Ok(l) => l.links.unwrap_or_default(),
                Err(e) => return jo.send(Found::Failed((loc.shown(), None, e.to_string()))),
            };
            let (mut children, mut item_links) = (Vec::new(), Vec::new());
            for link in links {
                let rel = link.get("rel").and_then(serde_json::Value::as_str);
                let href = link.get("href").and_then(serde_json::Value::as_str);
                let (Some(rel), Some(href)) = (rel, href) else {
                    continue;
                };
                let target = match rel {
                    "child" => &mut children,
                    "item" => &mut item_links,
                    _ => continue,
                };
                match loc.join(href) {
                    Ok(l) => target.push(l),
                    Err(e) => {
                        return jo.send(Found::Failed((
                            loc.shown(),
                            None,
                            format!("{}: {e}", loc.shown()),
                        )));
                    }
                }
            }
            jo.send(Found::Links {
                children,
                items: item_links,
            })
        };
        run_ordered(
            ctx,
            &level,
            Ordered::new(concurrency, 1),
            &work,
            &mut |_, found| match found {
                Found::Links {
                    children,
                    items: found_items,
                } => {
                    for c in children {
                        if seen.insert(c.clone()) {
                            next.push(c);
                        }
                    }
                    for it in found_items {
                        if seen.insert(it.clone()) {
                            items.push(it);
                        }
                    }
                    Ok(())
                }
                Found::Failed(f) => failed(f),
            },
        )?;
        level = next;
        depth += 1;
    }
    Ok(items)
}
