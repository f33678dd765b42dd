//! Where fetched bodies wait for the node thread: the node's journal, or the spill folder.
//!
//! - With a journal (`--job-dir`), each page is fetched into a temporary file of the
//!   journal and, once whole, synced and renamed to its key ([`crate::journal`]); a small
//!   `<key>.meta` file written first records the answer's URL and content type. A resumed
//!   run finds the page by its key ([`PageStore::saved`]) and does not fetch it again.
//! - Without one, pages go to files in the run's spill folder, removed once the node thread
//!   has read them ([`PageStore::release`]) and, at the latest, with the folder when the run
//!   ends.
//!
//! Either way a page lives on disk while it waits its turn, never in memory.

use std::fs::File;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::client::{Client, Fetched, Request};
use super::limiter::AdaptiveLimit;
use super::retry::{OnRetry, RetryPolicy, fetch_with_retry};
use super::{HttpError, redact_url};
use crate::journal::Journal;
use crate::memory::SpillDir;
use crate::{ActionError, NodeContext};

/// A page's body on disk, with what the answer said about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageFile {
    /// The file holding the body.
    pub path: PathBuf,
    /// The URL that answered (after redirects; a password in it hidden).
    pub url: String,
    /// The answer's content type, without parameters.
    pub content_type: Option<String>,
    /// Whether the page came from the journal of an earlier run, not from the server.
    pub replayed: bool,
    temporary: bool,
}

/// What `<key>.meta` holds.
#[derive(Serialize, Deserialize)]
struct Meta {
    url: String,
    content_type: Option<String>,
}

/// Where one node's pages wait: see the [module docs](self).
#[derive(Debug, Clone)]
pub enum PageStore {
    /// In the node's journal, kept for a resumed run.
    Journal(Journal),
    /// In the run's spill folder, removed once read.
    Temp(SpillDir),
}

impl PageStore {
    /// The node's journal for parameters of fingerprint `fingerprint` when the run keeps
    /// journals, else the spill folder.
    pub fn new(ctx: &NodeContext, fingerprint: &str) -> Result<PageStore, ActionError> {
        Ok(match ctx.journal(fingerprint)? {
            Some(j) => PageStore::Journal(j),
            None => PageStore::Temp(ctx.spill.clone()),
        })
    }

    /// The journal, when pages are kept in one.
    pub fn journal(&self) -> Option<&Journal> {
        match self {
            PageStore::Journal(j) => Some(j),
            PageStore::Temp(_) => None,
        }
    }

    /// The page recorded under `key` by an earlier run, when resuming.
    pub fn saved(&self, key: &str) -> Option<PageFile> {
        let PageStore::Journal(j) = self else {
            return None;
        };
        if !j.resumed() {
            return None;
        }
        let path = j.get(key)?;
        let meta: Meta = std::fs::read(j.get(&format!("{key}.meta"))?)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())?;
        Some(PageFile {
            path,
            url: meta.url,
            content_type: meta.content_type,
            replayed: true,
            temporary: false,
        })
    }

    /// Fetches `request` (with retries, under `limit`) into a page stored under `key`. The
    /// outer error is the store's own (a disk that cannot be written); the inner one is the
    /// request's, for the caller to reject or fail with.
    #[allow(clippy::too_many_arguments)]
    pub fn fetch(
        &self,
        key: &str,
        client: &Client,
        limit: &AdaptiveLimit,
        policy: &RetryPolicy,
        request: &Request,
        ctx: &NodeContext,
        on_retry: &mut OnRetry<'_>,
    ) -> Result<Result<PageFile, HttpError>, ActionError> {
        match self {
            PageStore::Journal(j) => {
                let (temp, mut file) = j.temp(key)?;
                let fetched = fetch_with_retry(
                    client,
                    limit,
                    policy,
                    request,
                    &mut file,
                    &ctx.cancel,
                    on_retry,
                );
                let fetched = match fetched {
                    Ok(f) => f,
                    Err(e) => {
                        drop(file);
                        let _ = std::fs::remove_file(&temp);
                        return Ok(Err(e));
                    }
                };
                let meta = meta_of(&fetched);
                let bytes =
                    serde_json::to_vec(&meta).map_err(|e| ActionError::Other(Box::new(e)))?;
                j.write_atomic(&format!("{key}.meta"), &bytes)?;
                let path = j.commit(key, &temp, file)?;
                Ok(Ok(PageFile {
                    path,
                    url: meta.url,
                    content_type: meta.content_type,
                    replayed: false,
                    temporary: false,
                }))
            }
            PageStore::Temp(spill) => {
                let path = spill.new_path(&format!("page-{key}"))?;
                let mut file = File::create(&path)
                    .map_err(|e| ActionError::io(format!("creating {}", path.display()), e))?;
                let fetched = fetch_with_retry(
                    client,
                    limit,
                    policy,
                    request,
                    &mut file,
                    &ctx.cancel,
                    on_retry,
                );
                drop(file);
                match fetched {
                    Ok(f) => {
                        let meta = meta_of(&f);
                        Ok(Ok(PageFile {
                            path,
                            url: meta.url,
                            content_type: meta.content_type,
                            replayed: false,
                            temporary: true,
                        }))
                    }
                    Err(e) => {
                        let _ = std::fs::remove_file(&path);
                        Ok(Err(e))
                    }
                }
            }
        }
    }

    /// Done with a page: a temporary one is removed, a journal's kept.
    pub fn release(&self, page: &PageFile) {
        if page.temporary {
            let _ = std::fs::remove_file(&page.path);
        }
    }
}

fn meta_of(f: &Fetched) -> Meta {
    Meta {
        url: redact_url(&f.url),
        content_type: f.content_type.clone(),
    }
}
