//! Random-access reads: [`open_seekable`], for formats whose readers jump around a file
//! (an index first, then only the records it points at) instead of streaming it.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::archive;
use super::error::StorageError;
use super::location::{resolve, runtime};

/// How much one backend read fetches after a seek when the caller reads less: small enough
/// that a reader following an index fetches little beyond what it needs.
pub const SEEK_CHUNK: usize = 16 * 1024;

/// The most one backend read fetches ahead while the caller reads on sequentially.
const MAX_AHEAD: usize = super::READ_CHUNK;

/// A file opened for reading at any offset: `Read + Seek + Send`. Reads go to the backend
/// in ranges that start at [`SEEK_CHUNK`] after a seek and double while the caller reads on
/// from where the last range ended (up to 2 MiB), so a reader that follows an index fetches
/// little more than it reads and one that streams makes few calls. A read larger than the
/// range goes to the backend at the caller's size. Every byte the backend returns is counted
/// in [`SeekableReader::bytes_fetched`].
///
/// A zip member (`data/x.zip!/a.fgb`) is first extracted to an unnamed temporary file
/// (deflate cannot be entered in the middle); its count is then what that file gives.
pub struct SeekableReader {
    source: Backing,
    len: u64,
    pos: u64,
    /// The bytes of `[buf_start, buf_start + buf.len())`.
    buf: Bytes,
    buf_start: u64,
    /// The size of the next fetch.
    ahead: usize,
    fetched: Arc<AtomicU64>,
}

enum Backing {
    Backend(opendal::blocking::Reader),
    File(std::fs::File),
}

/// Opens `location` for random access. See [`SeekableReader`]. Standard input (`-`) cannot
/// be sought and is refused.
///
/// Must not be called from inside an async (tokio) context.
pub fn open_seekable(location: &str) -> Result<SeekableReader, StorageError> {
    if location == super::STDIO {
        return Err(StorageError::bad_location(
            location,
            "standard input cannot be read at random offsets; give a file",
        ));
    }
    if let Some((zip, member)) = archive::split(location) {
        let file = archive::extract(zip, member, location)?;
        let len = file
            .metadata()
            .map_err(|e| StorageError::io("reading", location, e))?
            .len();
        return Ok(SeekableReader::new(Backing::File(file), len));
    }
    let r = resolve(location)?;
    if r.path.is_empty() || r.path.ends_with('/') {
        return Err(StorageError::bad_location(
            location,
            "expected a file, found a folder",
        ));
    }
    let rt = runtime()?;
    let _guard = rt.enter();
    let op = opendal::blocking::Operator::new(r.op)
        .map_err(|e| StorageError::backend("opening", location, e))?;
    let len = op
        .stat(&r.path)
        .map_err(|e| StorageError::backend("reading", location, e))?
        .content_length();
    let reader = op
        .reader(&r.path)
        .map_err(|e| StorageError::backend("reading", location, e))?;
    Ok(SeekableReader::new(Backing::Backend(reader), len))
}

impl SeekableReader {
    fn new(source: Backing, len: u64) -> SeekableReader {
        SeekableReader {
            source,
            len,
            pos: 0,
            buf: Bytes::new(),
            buf_start: 0,
            ahead: SEEK_CHUNK,
            fetched: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many bytes have been fetched from the backend so far (what a remote store
    /// would bill), including what was fetched ahead and not yet read.
    pub fn bytes_fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    /// A handle that keeps reporting [`SeekableReader::bytes_fetched`] after the reader has
    /// been moved into a decoder.
    pub fn fetch_counter(&self) -> Arc<AtomicU64> {
        self.fetched.clone()
    }

    /// Fetches `[start, start + want)` (cut at the end of the file).
    fn fetch(&mut self, start: u64, want: usize) -> io::Result<Bytes> {
        let end = (start + want as u64).min(self.len);
        if start >= end {
            return Ok(Bytes::new());
        }
        let bytes = match &mut self.source {
            Backing::Backend(r) => r.read(start..end).map_err(io::Error::other)?.to_bytes(),
            Backing::File(f) => {
                f.seek(SeekFrom::Start(start))?;
                let mut v = vec![0; (end - start) as usize];
                f.read_exact(&mut v)?;
                Bytes::from(v)
            }
        };
        self.fetched
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(bytes)
    }
}

impl Read for SeekableReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() || self.pos >= self.len {
            return Ok(0);
        }
        let buf_end = self.buf_start + self.buf.len() as u64;
        if !(self.buf_start..buf_end).contains(&self.pos) {
            // Reading on from the last range: fetch more at a time; elsewhere: start small.
            self.ahead = if self.pos == buf_end && !self.buf.is_empty() {
                (self.ahead * 2).min(MAX_AHEAD)
            } else {
                SEEK_CHUNK
            };
            if out.len() >= self.ahead {
                // A large read goes straight to the caller's buffer size.
                let bytes = self.fetch(self.pos, out.len())?;
                out[..bytes.len()].copy_from_slice(&bytes);
                self.pos += bytes.len() as u64;
                return Ok(bytes.len());
            }
            self.buf = self.fetch(self.pos, self.ahead)?;
            self.buf_start = self.pos;
            if self.buf.is_empty() {
                return Ok(0);
            }
        }
        let at = (self.pos - self.buf_start) as usize;
        let n = out.len().min(self.buf.len() - at);
        out[..n].copy_from_slice(&self.buf[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SeekableReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(n) => {
                self.pos = n;
                Ok(n)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            )),
        }
    }
}
