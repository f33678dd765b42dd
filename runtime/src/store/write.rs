//! [`AtomicWriter`]: output appears whole on commit, or not at all; [`Commit`]: several
//! outputs appear together, or none does.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::error::StorageError;
use super::location::{STDIO, local_path, output_key, resolve, runtime};
use super::stale::{ASIDE_SUFFIX, TEMP_SUFFIX, clean_folder_once, marked_name};

/// Bytes gathered before one backend write.
const WRITE_BUFFER: usize = 256 * 1024;

/// How standard output is named in messages.
const STDOUT_NAME: &str = "standard output";

/// A buffered writer whose output appears only when [`AtomicWriter::commit`] succeeds.
///
/// - **Local files**: bytes go to a hidden sibling `.<name>.<pid>-<start>-<n>.sluice-tmp` in
///   the target's folder (folders are created as needed), and `commit` renames it over the
///   target, keeping the permissions of the file it replaces. A target that is a symbolic
///   link is written through: the temporary file is made beside the file the link points
///   to, and the link stays. A target that is a folder, a device, a FIFO or a socket is
///   refused when the writer is created. The temporary name carries the process id and
///   start time, so leftovers of a killed process are recognised and removed later (see
///   `stale.rs`).
/// - **Object stores, `memory://`**: bytes go to the target itself, which those stores
///   publish only when the upload is closed (on commit).
/// - **`-`**: standard output, streamed as it is written (no temporary file; an aborted
///   run cannot take back what was already written).
///
/// While a writer exists, no other writer of the process may write the same output: the
/// second `create` fails with [`StorageError::Conflict`], naming both writers (see
/// [`set_writer_name`]).
///
/// [`abort`](AtomicWriter::abort), or dropping the writer without committing (a failed or
/// cancelled run), removes the temporary file: a run that does not finish leaves no partial
/// output, and an existing file at the target is left as it was.
///
/// Writes are buffered (256 KiB), so many small writes are cheap.
///
/// Must not be used from inside an async (tokio) context.
pub struct AtomicWriter {
    location: String,
    dest: Dest,
    buf: Vec<u8>,
    written: u64,
    claim: Claim,
}

enum Dest {
    /// A local file: a temporary sibling of `target`, renamed on commit.
    Local {
        writer: Option<opendal::Writer>,
        temp: PathBuf,
        target: PathBuf,
    },
    /// A store that publishes on close.
    Direct { writer: Option<opendal::Writer> },
    /// Standard output.
    Stdout,
}

impl std::fmt::Debug for AtomicWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let temp = match &self.dest {
            Dest::Local { temp, .. } => Some(temp),
            _ => None,
        };
        f.debug_struct("AtomicWriter")
            .field("location", &self.location)
            .field("temp", &temp)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl AtomicWriter {
    /// Starts writing `location` (a plain path, `file://`, `memory://`..., or `-` for
    /// standard output).
    pub fn create(location: &str) -> Result<AtomicWriter, StorageError> {
        if location == STDIO {
            return Ok(AtomicWriter {
                location: location.to_string(),
                claim: Claim::take(STDIO.to_string(), STDOUT_NAME)?,
                dest: Dest::Stdout,
                buf: Vec::with_capacity(WRITE_BUFFER),
                written: 0,
            });
        }
        let r = resolve(location)?;
        let Some(name) = r.path.rsplit('/').next().filter(|n| !n.is_empty()) else {
            return Err(StorageError::bad_location(
                location,
                "expected a file name, found a folder",
            ));
        };
        let rt = runtime()?;
        match local_path(location) {
            Some(abs) => {
                let target = output_target(location, &abs?)?;
                let claim = Claim::take(target.to_string_lossy().into_owned(), location)?;
                let folder = target.parent().unwrap_or(Path::new("/"));
                let name = target
                    .file_name()
                    .map_or_else(|| name.to_string(), |n| n.to_string_lossy().into_owned());
                if folder.is_dir() {
                    clean_folder_once(folder);
                }
                let temp = folder.join(marked_name(&name, next(), TEMP_SUFFIX));
                let t = resolve(&temp.to_string_lossy())?;
                let writer = rt
                    .block_on(t.op.writer(&t.path))
                    .map_err(|e| StorageError::backend("writing", location, e))?;
                Ok(AtomicWriter {
                    location: location.to_string(),
                    dest: Dest::Local {
                        writer: Some(writer),
                        temp,
                        target,
                    },
                    buf: Vec::with_capacity(WRITE_BUFFER),
                    written: 0,
                    claim,
                })
            }
            None => {
                let claim = Claim::take(output_key(location), location)?;
                let writer = rt
                    .block_on(r.op.writer(&r.path))
                    .map_err(|e| StorageError::backend("writing", location, e))?;
                Ok(AtomicWriter {
                    location: location.to_string(),
                    dest: Dest::Direct {
                        writer: Some(writer),
                    },
                    buf: Vec::with_capacity(WRITE_BUFFER),
                    written: 0,
                    claim,
                })
            }
        }
    }

    /// The location being written, as given to [`AtomicWriter::create`].
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// The temporary file, for local outputs (tests look for leftovers with it).
    pub fn temp_path(&self) -> Option<&Path> {
        match &self.dest {
            Dest::Local { temp, .. } => Some(temp),
            _ => None,
        }
    }

    /// Hands the buffered bytes to the backend.
    fn flush_buffer(&mut self) -> Result<(), StorageError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(WRITE_BUFFER));
        let writer = match &mut self.dest {
            Dest::Stdout => {
                let mut out = io::stdout().lock();
                return out
                    .write_all(&chunk)
                    .map_err(|e| StorageError::io("writing", STDOUT_NAME, e));
            }
            Dest::Local { writer, .. } | Dest::Direct { writer } => writer.as_mut(),
        };
        let Some(writer) = writer else {
            return Err(StorageError::bad_location(
                &self.location,
                "writer already finished",
            ));
        };
        runtime()?
            .block_on(writer.write(chunk))
            .map_err(|e| StorageError::backend("writing", &self.location, e))
    }

    /// Writes out everything and gets ready to be moved into place.
    fn stage(mut self) -> Result<Staged, StorageError> {
        self.flush_buffer()?;
        let claim = std::mem::take(&mut self.claim);
        let location = std::mem::take(&mut self.location);
        match std::mem::replace(&mut self.dest, Dest::Stdout) {
            Dest::Stdout => {
                io::stdout()
                    .lock()
                    .flush()
                    .map_err(|e| StorageError::io("writing", STDOUT_NAME, e))?;
                Ok(Staged::Stdout { _claim: claim })
            }
            Dest::Local {
                writer,
                temp,
                target,
            } => {
                // From here the staged value owns the temporary file.
                let staged = Staged::Local {
                    location,
                    temp: Some(temp),
                    target,
                    _claim: claim,
                };
                if let Some(mut w) = writer {
                    let closed = runtime()?.block_on(w.close());
                    if let Err(e) = closed {
                        let location = staged.location().to_string();
                        drop(staged);
                        return Err(StorageError::backend("writing", &location, e));
                    }
                }
                Ok(staged)
            }
            Dest::Direct { writer } => Ok(Staged::Direct {
                location,
                writer,
                _claim: claim,
            }),
        }
    }

    /// Flushes, closes and moves the output into place. On error the temporary output is
    /// removed and the target is left as it was.
    ///
    /// Inside a [`Commit`] (on the thread that began it), the output is only made ready
    /// here, and moved into place with the others by [`Commit::publish`].
    pub fn commit(self) -> Result<(), StorageError> {
        let staged = self.stage()?;
        let staged = STAGING.with(|s| match s.borrow_mut().as_mut() {
            Some(list) => {
                list.push(staged);
                None
            }
            None => Some(staged),
        });
        match staged {
            None => Ok(()),
            Some(one) => publish(vec![one]).map(|_| ()).map_err(|e| *e.failed),
        }
    }

    /// Drops the output: the temporary file is removed and the target is not touched.
    pub fn abort(self) {
        drop(self);
    }
}

impl Drop for AtomicWriter {
    fn drop(&mut self) {
        match &mut self.dest {
            Dest::Stdout => {}
            Dest::Local { writer, temp, .. } => {
                if let (Some(mut w), Ok(rt)) = (writer.take(), runtime()) {
                    let _ = rt.block_on(w.abort());
                }
                let _ = std::fs::remove_file(temp);
            }
            Dest::Direct { writer } => {
                if let (Some(mut w), Ok(rt)) = (writer.take(), runtime()) {
                    let _ = rt.block_on(w.abort());
                }
            }
        }
    }
}

impl Write for AtomicWriter {
    #[inline]
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        self.written += data.len() as u64;
        if self.buf.len() >= WRITE_BUFFER {
            self.flush_buffer().map_err(StorageError::into_io)?;
        }
        Ok(data.len())
    }

    #[inline]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.write(data).map(|_| ())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_buffer().map_err(StorageError::into_io)
    }
}

/// A number no other temporary name of this process uses.
fn next() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------------
// What the output is: symbolic links followed, special files refused
// ---------------------------------------------------------------------------------------------

/// The file an output location really writes: symbolic links followed (to a file that may
/// not exist yet). Folders, devices, FIFOs and sockets are refused.
fn output_target(location: &str, abs: &Path) -> Result<PathBuf, StorageError> {
    match std::fs::metadata(abs) {
        Ok(m) if m.is_file() => {
            return std::fs::canonicalize(abs)
                .map_err(|e| StorageError::io("resolving", location, e));
        }
        Ok(m) => return Err(not_a_file(location, &m)),
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(StorageError::io("checking", location, e));
        }
        Err(_) => {}
    }
    // Missing, or a link to something missing: follow the links by hand.
    let mut p = abs.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&p)
                    .map_err(|e| StorageError::io("resolving", location, e))?;
                p = match p.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(StorageError::bad_location(
        location,
        "too many levels of symbolic links",
    ))
}

fn not_a_file(location: &str, m: &std::fs::Metadata) -> StorageError {
    let what = if m.is_dir() {
        "a folder"
    } else {
        special_kind(m)
    };
    StorageError::NotAFile {
        location: location.to_string(),
        what,
        folder: m.is_dir(),
    }
}

#[cfg(unix)]
fn special_kind(m: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_block_device() || t.is_char_device() {
        "a device"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::Metadata) -> &'static str {
    "a special file"
}

// ---------------------------------------------------------------------------------------------
// Claims: one writer per output
// ---------------------------------------------------------------------------------------------

thread_local! {
    static WRITER_NAME: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Names the writers this thread creates from now on (`node "save"`), for the message when
/// two writers claim one output. The executor calls it on each node thread.
pub fn set_writer_name(name: impl Into<String>) {
    WRITER_NAME.with(|n| *n.borrow_mut() = Some(name.into()));
}

fn claims() -> &'static Mutex<HashMap<String, String>> {
    static CLAIMS: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    CLAIMS.get_or_init(Default::default)
}

/// An output claimed by a writer until it is committed or dropped.
#[derive(Default)]
struct Claim {
    key: Option<String>,
}

impl Claim {
    fn take(key: String, location: &str) -> Result<Claim, StorageError> {
        let me = WRITER_NAME
            .with(|n| n.borrow().clone())
            .unwrap_or_else(|| "another writer".to_string());
        let mut map = claims().lock();
        if let Some(first) = map.get(&key) {
            let first = if *first == me {
                format!("{me} (twice)")
            } else {
                first.clone()
            };
            return Err(StorageError::Conflict {
                location: location.to_string(),
                first,
                second: me,
            });
        }
        map.insert(key.clone(), me);
        Ok(Claim { key: Some(key) })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            claims().lock().remove(&k);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Committing several outputs together
// ---------------------------------------------------------------------------------------------

thread_local! {
    static STAGING: RefCell<Option<Vec<Staged>>> = const { RefCell::new(None) };
}

/// An output written out and ready to be moved into place.
enum Staged {
    Local {
        location: String,
        /// The temporary file; `None` once renamed into place.
        temp: Option<PathBuf>,
        target: PathBuf,
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
    fn location(&self) -> &str {
        match self {
            Staged::Local { location, .. } | Staged::Direct { location, .. } => location,
            Staged::Stdout { .. } => STDIO,
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        match self {
            Staged::Local { temp, .. } => {
                if let Some(t) = temp.take() {
                    let _ = std::fs::remove_file(t);
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

/// Commits several outputs as one: every target is checked before any is replaced, and if
/// moving one into place fails, those already moved are put back as they were.
///
/// Between [`Commit::begin`] and [`Commit::publish`], [`AtomicWriter::commit`] on the same
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
            std::fs::rename(target, &aside)
                .map_err(|e| StorageError::io("committing", location, e))?;
            Some(aside)
        }
        Err(_) => None,
    };
    if let Err(e) = std::fs::rename(temp, target) {
        if let Some(a) = &aside {
            let _ = std::fs::rename(a, target);
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
