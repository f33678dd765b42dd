//! [`Commit`]: several outputs appear together, or none does.

use std::cell::RefCell;
use std::io;
use std::path::{Path, PathBuf};

use super::claim::Claim;
use super::error::StorageError;
use super::location::{STDIO, runtime};
use super::stale::{ASIDE_SUFFIX, marked_name};
use super::target::{next, not_a_file};

thread_local! {
    static STAGING: RefCell<Option<Vec<Staged>>> = const { RefCell::new(None) };
}

/// Removes `folders` (innermost first) that are empty; a folder something else has put a
/// file in stays, and so do the folders above it.
pub(super) fn remove_empty(folders: &[PathBuf]) {
    for f in folders {
        if std::fs::remove_dir(f).is_err() {
            break;
        }
    }
}

/// An output written out and ready to be moved into place.
pub(super) enum Staged {
    Local {
        location: String,
        /// The temporary file; `None` once renamed into place.
        temp: Option<PathBuf>,
        target: PathBuf,
        /// Folders made for it, innermost first: removed again (when empty) if it is not
        /// published.
        made: Vec<PathBuf>,
        _claim: Claim,
    },
    Direct {
        location: String,
        writer: Option<opendal::Writer>,
        _claim: Claim,
    },
    Stdout {
        _claim: Claim,
    },
}

impl Staged {
    pub(super) fn location(&self) -> &str {
        match self {
            Staged::Local { location, .. } | Staged::Direct { location, .. } => location,
            Staged::Stdout { .. } => STDIO,
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        match self {
            Staged::Local { temp, made, .. } => {
                if let Some(t) = temp.take() {
                    let _ = std::fs::remove_file(t);
                    remove_empty(made);
                }
            }
            Staged::Direct { writer, .. } => {
                if let (Some(mut w), Ok(rt)) = (writer.take(), runtime()) {
                    let _ = rt.block_on(w.abort());
                }
            }
            Staged::Stdout { .. } => {}
        }
    }
}

/// Moves `staged` into place, or, inside a [`Commit`] begun on this thread, adds it to the
/// outputs that commit moves into place together.
pub(super) fn stage_or_publish(staged: Staged) -> Result<(), StorageError> {
    let alone = STAGING.with(|s| match s.borrow_mut().as_mut() {
        Some(list) => {
            list.push(staged);
            None
        }
        None => Some(staged),
    });
    match alone {
        None => Ok(()),
        Some(one) => publish(vec![one]).map(|_| ()).map_err(|e| *e.failed),
    }
}

/// Commits several outputs as one: every target is checked before any is replaced, and if
/// moving one into place fails, those already moved are put back as they were.
///
/// Between [`Commit::begin`] and [`Commit::publish`], [`AtomicWriter::commit`](super::AtomicWriter::commit) on the same
/// thread only makes its output ready. Dropping the `Commit` without publishing removes
/// every output made ready.
///
/// ```
/// use std::io::Write;
/// use sluice_runtime::store::{AtomicWriter, Commit};
///
/// let commit = Commit::begin();
/// for name in ["memory://commit-doc/a.txt", "memory://commit-doc/b.txt"] {
///     let mut w = AtomicWriter::create(name)?;
///     w.write_all(b"x")?;
///     w.commit()?; // ready, not yet visible
/// }
/// let written = commit.publish()?;
/// assert_eq!(written.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Commit {
    /// Not `Send`: the staging list belongs to the thread that began the commit.
    _thread: std::marker::PhantomData<*const ()>,
}

impl Commit {
    /// Starts collecting the outputs committed on this thread.
    pub fn begin() -> Commit {
        STAGING.with(|s| *s.borrow_mut() = Some(Vec::new()));
        Commit {
            _thread: std::marker::PhantomData,
        }
    }

    /// Outputs made ready so far.
    pub fn staged(&self) -> usize {
        STAGING.with(|s| s.borrow().as_ref().map_or(0, Vec::len))
    }

    /// Moves every output made ready into place, or none of them. Gives the locations
    /// written, in order.
    pub fn publish(self) -> Result<Vec<String>, CommitError> {
        let staged = STAGING.with(|s| s.borrow_mut().take()).unwrap_or_default();
        publish(staged)
    }
}

impl Drop for Commit {
    fn drop(&mut self) {
        // Not published: the staged outputs are dropped, which removes them.
        let staged = STAGING.with(|s| s.borrow_mut().take());
        drop(staged);
    }
}

/// Committing several outputs failed: what failed, and exactly what was and was not written.
#[derive(Debug, thiserror::Error)]
#[error("{failed}; {}", summary(.written, .not_written, .restored))]
pub struct CommitError {
    /// The failure.
    pub failed: Box<StorageError>,
    /// The index (in commit order) of the output that failed.
    pub failed_output: usize,
    /// Outputs in place after the failure (streamed to standard output, or not restorable).
    pub written: Vec<String>,
    /// Outputs not written (their targets are as they were before the run).
    pub not_written: Vec<String>,
    /// Outputs that had been moved into place and were put back as they were.
    pub restored: Vec<String>,
}

fn summary(written: &[String], not_written: &[String], restored: &[String]) -> String {
    let list = |v: &[String]| v.join(", ");
    let mut s = if written.is_empty() {
        "no output was written".to_string()
    } else {
        format!(
            "written: {}; not written: {}",
            list(written),
            if not_written.is_empty() {
                "nothing else".to_string()
            } else {
                list(not_written)
            }
        )
    };
    if !restored.is_empty() {
        s.push_str(&format!(" ({} put back as before the run)", list(restored)));
    }
    s
}

/// Checks every target, then moves local outputs into place (keeping each replaced file
/// aside until all are in place), then closes the uploads of other stores.
fn publish(mut staged: Vec<Staged>) -> Result<Vec<String>, CommitError> {
    let locations: Vec<String> = staged.iter().map(|s| s.location().to_string()).collect();
    let streamed: Vec<String> = staged
        .iter()
        .filter(|s| matches!(s, Staged::Stdout { .. }))
        .map(|_| "- (standard output, written as the run went)".to_string())
        .collect();
    let fail = |failed_output: usize,
                failed: StorageError,
                written: Vec<String>,
                restored: Vec<String>| {
        let not_written = locations
            .iter()
            .filter(|l| *l != STDIO && !written.contains(l))
            .cloned()
            .collect();
        CommitError {
            failed: Box::new(failed),
            failed_output,
            written: streamed.iter().cloned().chain(written).collect(),
            not_written,
            restored,
        }
    };
    // 1. Check every target before replacing any.
    for (i, s) in staged.iter().enumerate() {
        if let Staged::Local {
            location,
            temp: Some(temp),
            target,
            ..
        } = s
            && let Err(e) = check_target(location, temp, target)
        {
            return Err(fail(i, e, Vec::new(), Vec::new()));
        }
    }
    // 2. Local files: rename into place, the previous file kept aside.
    let mut done: Vec<(usize, Option<PathBuf>)> = Vec::new();
    for (i, s) in staged.iter_mut().enumerate() {
        let Staged::Local {
            location,
            temp,
            target,
            ..
        } = s
        else {
            continue;
        };
        let Some(t) = temp.as_ref() else { continue };
        let moved = move_into_place(location, t, target);
        match moved {
            Ok(aside) => {
                *temp = None;
                done.push((i, aside));
            }
            Err(e) => {
                let (written, restored) = roll_back(&staged, &done);
                return Err(fail(i, e, written, restored));
            }
        }
    }
    // 3. Other stores: closing the upload publishes it.
    let mut closed = Vec::new();
    for i in 0..staged.len() {
        let Staged::Direct {
            location, writer, ..
        } = &mut staged[i]
        else {
            continue;
        };
        if let Some(mut w) = writer.take() {
            let r = runtime().and_then(|rt| {
                rt.block_on(w.close())
                    .map(|_| ())
                    .map_err(|e| StorageError::backend("writing", location, e))
            });
            if let Err(e) = r {
                let (mut written, restored) = roll_back(&staged, &done);
                written.extend(closed);
                return Err(fail(i, e, written, restored));
            }
            closed.push(location.clone());
        }
    }
    // 4. All in place: the previous versions can go.
    for (_, aside) in done {
        if let Some(a) = aside {
            let _ = std::fs::remove_file(a);
        }
    }
    Ok(locations)
}

/// The target must still be a file (or missing); the temporary file gets its permissions.
fn check_target(location: &str, temp: &Path, target: &Path) -> Result<(), StorageError> {
    match std::fs::metadata(target) {
        Ok(m) if m.is_file() => std::fs::set_permissions(temp, m.permissions())
            .map_err(|e| StorageError::io("keeping the permissions of", location, e)),
        Ok(m) => Err(not_a_file(location, &m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("checking", location, e)),
    }
}

/// Renames `temp` over `target`, first moving an existing target aside; gives the aside path.
fn move_into_place(
    location: &str,
    temp: &Path,
    target: &Path,
) -> Result<Option<PathBuf>, StorageError> {
    let aside = match std::fs::symlink_metadata(target) {
        Ok(_) => {
            let name = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let aside = target.with_file_name(marked_name(&name, next(), ASIDE_SUFFIX));
            // The previous file is kept under a second name (a hard link), so the target
            // never goes missing: the rename below replaces it in one step, and a reader sees
            // the old file or the new one. Where links cannot be made, it is moved aside.
            if std::fs::hard_link(target, &aside).is_err() {
                std::fs::rename(target, &aside)
                    .map_err(|e| StorageError::io("committing", location, e))?;
            }
            Some(aside)
        }
        Err(_) => None,
    };
    if let Err(e) = std::fs::rename(temp, target) {
        if let Some(a) = &aside {
            if std::fs::symlink_metadata(target).is_ok() {
                let _ = std::fs::remove_file(a);
            } else {
                let _ = std::fs::rename(a, target);
            }
        }
        return Err(StorageError::io("committing", location, e));
    }
    Ok(aside)
}

/// Puts back the outputs already moved into place; gives (still written, put back).
fn roll_back(staged: &[Staged], done: &[(usize, Option<PathBuf>)]) -> (Vec<String>, Vec<String>) {
    let mut written = Vec::new();
    let mut restored = Vec::new();
    for (i, aside) in done.iter().rev() {
        let Staged::Local {
            location, target, ..
        } = &staged[*i]
        else {
            continue;
        };
        let ok = match aside {
            Some(a) => std::fs::rename(a, target).is_ok(),
            None => std::fs::remove_file(target).is_ok(),
        };
        if ok {
            restored.push(location.clone());
        } else {
            written.push(location.clone());
        }
    }
    written.reverse();
    restored.reverse();
    (written, restored)
}
