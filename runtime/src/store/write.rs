//! [`AtomicWriter`]: output appears whole on commit, or not at all.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::StorageError;
use super::location::{resolve, runtime};

/// Bytes gathered before one backend write.
const WRITE_BUFFER: usize = 256 * 1024;

/// A buffered writer whose output appears only when [`AtomicWriter::commit`] succeeds.
///
/// Where the backend can rename (local files), bytes go to a hidden sibling
/// `.<name>.<unique>.sluice-tmp` in the target's folder (folders are created as needed), and
/// `commit` renames it over the target. Where it cannot (object stores, `memory://`), bytes go
/// to the target itself, which those stores publish only when the upload is closed.
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
    op: opendal::Operator,
    target: String,
    temp: Option<String>,
    writer: Option<opendal::Writer>,
    buf: Vec<u8>,
    written: u64,
}

impl std::fmt::Debug for AtomicWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicWriter")
            .field("location", &self.location)
            .field("temp", &self.temp)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl AtomicWriter {
    /// Starts writing `location` (a plain path, `file://`, `memory://`...).
    pub fn create(location: &str) -> Result<AtomicWriter, StorageError> {
        let r = resolve(location)?;
        let Some(name) = r.path.rsplit('/').next().filter(|n| !n.is_empty()) else {
            return Err(StorageError::bad_location(
                location,
                "expected a file name, found a folder",
            ));
        };
        let temp = r.op.info().capability().rename.then(|| {
            let folder = &r.path[..r.path.len() - name.len()];
            format!("{folder}.{name}.{}.sluice-tmp", unique())
        });
        let rt = runtime()?;
        let writer = rt
            .block_on(r.op.writer(temp.as_deref().unwrap_or(&r.path)))
            .map_err(|e| StorageError::backend("writing", location, e))?;
        Ok(AtomicWriter {
            location: location.to_string(),
            op: r.op,
            target: r.path,
            temp,
            writer: Some(writer),
            buf: Vec::with_capacity(WRITE_BUFFER),
            written: 0,
        })
    }

    /// The location being written, as given to [`AtomicWriter::create`].
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Hands the buffered bytes to the backend.
    fn flush_buffer(&mut self) -> Result<(), StorageError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(StorageError::bad_location(
                &self.location,
                "writer already finished",
            ));
        };
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(WRITE_BUFFER));
        runtime()?
            .block_on(writer.write(chunk))
            .map_err(|e| StorageError::backend("writing", &self.location, e))
    }

    /// Flushes, closes and moves the output into place. On error the temporary output is
    /// removed.
    pub fn commit(mut self) -> Result<(), StorageError> {
        self.flush_buffer()?;
        let rt = runtime()?;
        if let Some(mut w) = self.writer.take() {
            rt.block_on(w.close())
                .map_err(|e| StorageError::backend("writing", &self.location, e))?;
        }
        if let Some(temp) = self.temp.as_deref() {
            rt.block_on(self.op.rename(temp, &self.target))
                .map_err(|e| StorageError::backend("committing", &self.location, e))?;
            // Renamed: nothing left to clean up.
            self.temp = None;
        }
        Ok(())
    }

    /// Drops the output: the temporary file is removed and the target is not touched.
    pub fn abort(self) {
        drop(self);
    }

    fn cleanup(&mut self) {
        let Ok(rt) = runtime() else { return };
        if let Some(mut w) = self.writer.take() {
            let _ = rt.block_on(w.abort());
        }
        if let Some(temp) = self.temp.take() {
            let _ = rt.block_on(self.op.delete(&temp));
        }
    }
}

impl Drop for AtomicWriter {
    fn drop(&mut self) {
        self.cleanup();
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

/// A name part no other writer of this or another process uses at the same time.
fn unique() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{:x}{:08x}{n:x}", std::process::id(), nanos)
}
