//! Streaming reads: [`open_read`].

use std::io::{self, Read};

use bytes::{Buf, Bytes};

use super::error::{StorageError, plain_io};
use super::location::{resolve, runtime};

/// How much one backend read fetches. Large enough that the per-call cost of the blocking
/// bridge vanishes, small enough that a reader holds little.
pub const READ_CHUNK: usize = 1 << 21;

/// Opens a file for streaming reads.
///
/// `location` is a plain path, a `file://` URL or a `memory://` key (and `s3://`/`gcs://` in
/// builds with those features), a zip member (`data/x.zip!/a.csv`, inflated on a thread of
/// its own as it is read), or `-` for standard input. The file is read in
/// [`READ_CHUNK`]-sized pieces as the caller consumes it, never whole. Compressed files are
/// returned as stored: callers decompress.
///
/// Must not be called from inside an async (tokio) context.
pub fn open_read(location: &str) -> Result<Box<dyn Read + Send>, StorageError> {
    if location == super::STDIO {
        return Ok(Box::new(io::stdin()));
    }
    if let Some((zip, member)) = super::archive::split(location) {
        return super::archive::stream(zip, member, location);
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
    let options = opendal::options::ReaderOptions {
        chunk: Some(READ_CHUNK),
        ..Default::default()
    };
    let reader = op
        .reader_options(&r.path, options)
        .map_err(|e| StorageError::backend("reading", location, e))?;
    let chunks = reader
        .into_bytes_iterator(..)
        .map_err(|e| StorageError::backend("reading", location, e))?;
    Ok(Box::new(ChunkReader {
        chunks,
        current: Bytes::new(),
    }))
}

/// A `Read` over the backend's stream of chunks: copies out of the current chunk, fetching
/// the next one when it is used up.
struct ChunkReader {
    chunks: opendal::blocking::StdBytesIterator,
    current: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.current.is_empty() {
            match self.chunks.next() {
                None => return Ok(0),
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => {
                    // The cause alone, in plain words: callers name the file they read.
                    return Err(io::Error::new(e.kind(), plain_io(&e)));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}
