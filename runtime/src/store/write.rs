//! [`AtomicWriter`]: output appears whole on commit, or not at all.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::claim::Claim;
use super::commit::{Staged, stage_or_publish};
use super::error::StorageError;
use super::location::{STDIO, local_path, output_key, resolve, runtime};
use super::stale::{TEMP_SUFFIX, clean_folder_once, marked_name};
use super::target::{next, output_target};

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
/// [`set_writer_name`](super::set_writer_name)).
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
        /// The folders that did not exist and are made for the output, innermost first:
        /// removed again (when empty) if the output is not committed.
        made: Vec<PathBuf>,
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
                let made: Vec<PathBuf> = folder
                    .ancestors()
                    .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
                    .map(Path::to_path_buf)
                    .collect();
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
                        made,
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

    /// For a local output, the temporary file this writer will move into place, for a
    /// library that writes files by path itself (SQLite): the writer's own stream is closed
    /// first, so the caller owns the file's contents (nothing written through this writer
    /// before is kept). [`commit`](AtomicWriter::commit) and abort work as usual, and the
    /// file's name marks it as this process's, so a killed run's copy is cleaned up like
    /// any other temporary output. `None` for other stores: write the bytes through the
    /// writer.
    pub fn local_temp_file(&mut self) -> Option<&Path> {
        let Dest::Local { writer, temp, .. } = &mut self.dest else {
            return None;
        };
        if let Some(mut w) = writer.take()
            && let Ok(rt) = runtime()
        {
            let _ = rt.block_on(w.abort());
        }
        self.buf.clear();
        Some(temp)
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
                made,
            } => {
                // From here the staged value owns the temporary file.
                let staged = Staged::Local {
                    location,
                    temp: Some(temp),
                    target,
                    made,
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
    /// Inside a [`Commit`](super::Commit) (on the thread that began it), the output is only made ready
    /// here, and moved into place with the others by
    /// [`Commit::publish`](super::Commit::publish).
    pub fn commit(self) -> Result<(), StorageError> {
        stage_or_publish(self.stage()?)
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
            Dest::Local {
                writer, temp, made, ..
            } => {
                if let (Some(mut w), Ok(rt)) = (writer.take(), runtime()) {
                    let _ = rt.block_on(w.abort());
                }
                let _ = std::fs::remove_file(temp);
                super::commit::remove_empty(made);
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
