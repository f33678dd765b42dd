//! Reading a job folder: [`Job`].

use std::io::Read;
use std::path::Path;

use super::error::{CaptureError, nearest};
use super::manifest::{EdgeEntry, FORMAT, FileEntry, MANIFEST, Manifest, VERSION};
use crate::error::ActionError;
use crate::feature::Feature;
use crate::memory::spill::{Rows, SpillReader};
use crate::store::{local_path, open_read};

/// A job folder opened for reading: its manifest, and the features of its edges.
///
/// It works on a finished job and on a running one: the manifest lists only the files
/// that have landed. Open it again to see files that landed since.
///
/// ```
/// use sluice_runtime::capture::{CaptureError, Job};
/// let err = Job::open("memory://doc/no-such-job").unwrap_err();
/// assert!(matches!(err, CaptureError::NoJob { .. }));
/// ```
#[derive(Debug, Clone)]
pub struct Job {
    location: String,
    manifest: Manifest,
}

impl Job {
    /// Opens the job folder at `location` (a path, `file://`, `memory://` ...): reads and
    /// checks its manifest.
    pub fn open(location: &str) -> Result<Job, CaptureError> {
        let location = location.trim_end_matches('/').to_string();
        let at = format!("{location}/{MANIFEST}");
        let mut text = String::new();
        match open_read(&at) {
            Ok(mut r) => r
                .read_to_string(&mut text)
                .map_err(|e| corrupt(&location, e))?,
            Err(e) if e.is_not_found() => return Err(CaptureError::NoJob { job: location }),
            Err(e) => return Err(e.into()),
        };
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| corrupt(&location, e))?;
        if manifest.format != FORMAT {
            return Err(corrupt(
                &location,
                format!("format is \"{}\", not \"{FORMAT}\"", manifest.format),
            ));
        }
        if manifest.version != VERSION {
            return Err(corrupt(
                &location,
                format!(
                    "version {} (this sluice reads version {VERSION})",
                    manifest.version
                ),
            ));
        }
        for e in &manifest.edges {
            for f in &e.files {
                let bad_path =
                    f.path.starts_with('/') || f.path.split('/').any(|p| p == ".." || p.is_empty());
                if bad_path || f.schema >= e.schemas.len() {
                    return Err(corrupt(
                        &location,
                        format!("edge \"{}\": bad file entry \"{}\"", e.name, f.path),
                    ));
                }
            }
            if e.files.iter().map(|f| f.features).sum::<u64>() != e.features {
                return Err(corrupt(
                    &location,
                    format!(
                        "edge \"{}\": its files do not add up to its feature count",
                        e.name
                    ),
                ));
            }
        }
        Ok(Job { location, manifest })
    }

    /// The job folder.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The captured edges.
    pub fn edges(&self) -> &[EdgeEntry] {
        &self.manifest.edges
    }

    /// The captured edge called `name`: its name (spaces around `->` do not matter) or its
    /// full `node.port->node.port` form. An unknown name gets the nearest names.
    pub fn edge(&self, name: &str) -> Result<&EdgeEntry, CaptureError> {
        let wanted = super::select::compact(name);
        self.edges()
            .iter()
            .find(|e| e.name == wanted || format!("{}->{}", e.from, e.to) == wanted)
            .ok_or_else(|| CaptureError::UnknownEdge {
                name: name.to_string(),
                suggestions: nearest(&wanted, self.edges().iter().map(|e| e.name.as_str())),
            })
    }

    /// Up to `limit` features of edge `edge`, after the first `offset`, in the order they
    /// crossed it. Only the files holding them are opened, and only the rows needed are
    /// decoded.
    pub fn read(
        &self,
        edge: &str,
        offset: u64,
        limit: usize,
    ) -> Result<Vec<Feature>, CaptureError> {
        let entry = self.edge(edge)?;
        let mut out = Vec::with_capacity(limit.min(64 * 1024));
        let mut skip = offset;
        for f in &entry.files {
            if out.len() >= limit {
                break;
            }
            if skip >= f.features {
                skip -= f.features;
                continue;
            }
            let rows = Rows::Range {
                skip: skip as usize,
                limit: limit - out.len(),
            };
            skip = 0;
            for feature in self.open_file(f, rows)? {
                out.push(feature.map_err(|e| file_error(e, self, f))?);
            }
        }
        Ok(out)
    }

    /// Every feature of the file `f` of one of this job's edges, in order.
    pub(crate) fn file_features(
        &self,
        f: &FileEntry,
    ) -> Result<impl Iterator<Item = Result<Feature, CaptureError>> + '_, CaptureError> {
        let reader = self.open_file(f, Rows::All)?;
        let f = f.clone();
        Ok(reader.map(move |r| r.map_err(|e| file_error(e, self, &f))))
    }

    fn open_file(&self, f: &FileEntry, rows: Rows) -> Result<SpillReader, CaptureError> {
        let at = format!("{}/{}", self.location, f.path);
        let label = Path::new(&at);
        let opened = match local_path(&at) {
            Some(path) => {
                let path = path?;
                let file = std::fs::File::open(&path)
                    .map_err(|e| ActionError::io(format!("opening capture file {at}"), e))?;
                SpillReader::open_input(file, label, rows)
            }
            None => {
                let mut bytes = Vec::new();
                open_read(&at)?
                    .read_to_end(&mut bytes)
                    .map_err(|e| ActionError::io(format!("reading capture file {at}"), e))?;
                SpillReader::open_input(bytes::Bytes::from(bytes), label, rows)
            }
        };
        opened.map_err(|e| file_error(e, self, f))
    }
}

fn corrupt(job: &str, message: impl ToString) -> CaptureError {
    CaptureError::CorruptManifest {
        job: job.to_string(),
        message: message.to_string(),
    }
}

/// A read error of a capture file, worded for capture files (they use spill's layout).
fn file_error(e: ActionError, job: &Job, f: &FileEntry) -> CaptureError {
    match e {
        ActionError::Data { location, message } => CaptureError::File(ActionError::Data {
            location: Some(match location {
                Some(l) => l.replacen("spill file", "capture file", 1),
                None => format!("capture file {}/{}", job.location, f.path),
            }),
            message,
        }),
        other => CaptureError::File(other),
    }
}
