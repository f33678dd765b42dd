//! What every file reader shares before and around its own format: the file-input
//! parameters (`path`, `read_ahead`, `extensions`) validated in one place, and opening a
//! text file (gzip by name, byte order mark, leading white space).
//!
//! Listing the path and reading several files at once is the runtime's
//! ([`sluice_runtime::input`]): a reader implements `FileSource` for one file, and its
//! action is a `FileReader` over the [`Files`] made here.

use std::io::{BufRead, BufReader, Read};

use sluice_runtime::ActionError;
use sluice_runtime::input::Files;
use sluice_runtime::store;

/// The files of a reader from its file-input parameters: checks `path` (not empty) and
/// `read_ahead` (at least 1), and resolves `extensions` against the reader's `defaults`
/// (see [`extensions_param`]).
pub(crate) fn files_param(
    path: String,
    read_ahead: Option<usize>,
    extensions: Option<Vec<String>>,
    defaults: &[&str],
    gzip: bool,
) -> Result<Files, ActionError> {
    check_path(&path)?;
    if read_ahead == Some(0) {
        return Err(ActionError::param("read_ahead", "must be at least 1"));
    }
    Ok(Files::new(path)
        .read_ahead(read_ahead)
        .extensions(extensions_param(extensions, defaults, gzip)))
}

/// Whether validation may read the head of `location` to learn its schema: a regular local
/// file (not standard input, a FIFO or a device, which reading would consume), or a file of
/// the in-process `memory://` store; never a remote store.
pub(crate) fn peekable(location: &str) -> bool {
    if location.starts_with("memory://") {
        return true;
    }
    let path = match location.strip_prefix("file://") {
        Some(p) => p,
        None if location == "-" || location.contains("://") => return false,
        None => location,
    };
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// The `path` of an input: anything but empty (or white space).
pub(crate) fn check_path(path: &str) -> Result<(), ActionError> {
    if path.trim().is_empty() {
        return Err(ActionError::param("path", "must not be empty"));
    }
    Ok(())
}

/// The `extensions` parameter of a file reader: the given endings (a leading dot dropped,
/// lower case), or the reader's defaults, each also with `.gz` when `gzip` is true.
pub(crate) fn extensions_param(
    given: Option<Vec<String>>,
    defaults: &[&str],
    gzip: bool,
) -> Vec<String> {
    match given {
        Some(list) => list
            .into_iter()
            .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
            .collect(),
        None => defaults
            .iter()
            .map(|e| e.to_string())
            .chain(defaults.iter().filter(|_| gzip).map(|e| format!("{e}.gz")))
            .collect(),
    }
}

/// The buffer size of text readers.
const TEXT_BUFFER: usize = 256 * 1024;

/// Whether a text file is decompressed when read (its name ends in `.gz`).
fn gzipped(location: &str) -> bool {
    location.ends_with(".gz")
}

/// Opens a text file for buffered reading, decompressing it when the name ends in `.gz`.
pub(crate) fn open_buffered(location: &str) -> Result<Box<dyn BufRead + Send>, ActionError> {
    let raw = store::open_read(location)?;
    let input: Box<dyn Read + Send> = if gzipped(location) {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            TEXT_BUFFER,
            raw,
        )))
    } else {
        raw
    };
    Ok(Box::new(BufReader::with_capacity(TEXT_BUFFER, input)))
}

/// Whether the bytes [`open_buffered`] gives of `location` can be read at known offsets
/// (for a byte range of one file in a partitioned run): not standard input, not a file
/// decompressed as it is read.
pub(crate) fn text_at_offsets(location: &str) -> bool {
    location != store::STDIO && !gzipped(location)
}

/// Whether a file can be read twice (a first pass that counts, a second that reads its
/// part): anything but standard input.
pub(crate) fn rereadable(location: &str) -> bool {
    location != store::STDIO
}

/// Opens a text file that [`text_at_offsets`] accepts through the store's seekable reader
/// (local or not): the buffered bytes from offset 0, and the file's length.
pub(crate) fn open_text_with_len(
    location: &str,
) -> Result<(Box<dyn BufRead + Send>, u64), ActionError> {
    let file = store::open_seekable(location)?;
    let len = file.len();
    Ok((Box::new(BufReader::with_capacity(TEXT_BUFFER, file)), len))
}

/// The first byte of a text file that is not white space, and how many line breaks come
/// before it (to be added to line numbers counted from where reading resumes).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Start {
    /// The first byte other than white space; `None` for an empty or blank file.
    pub byte: Option<u8>,
    /// Line breaks consumed before it.
    pub lines: u64,
}

/// Drops a UTF-8 byte order mark and finds the first byte that is not white space, without
/// consuming it (white space is consumed only when a whole buffer of it must be skipped).
pub(crate) fn first_byte(r: &mut dyn BufRead, location: &str) -> Result<Start, ActionError> {
    let io = |e| ActionError::io(format!("reading {location}"), e);
    if r.fill_buf().map_err(io)?.starts_with(b"\xef\xbb\xbf") {
        r.consume(3);
    }
    let mut lines = 0;
    loop {
        let buf = r.fill_buf().map_err(io)?;
        if buf.is_empty() {
            return Ok(Start { byte: None, lines });
        }
        if let Some(i) = buf.iter().position(|b| !b.is_ascii_whitespace()) {
            return Ok(Start {
                byte: Some(buf[i]),
                lines,
            });
        }
        lines += buf.iter().filter(|b| **b == b'\n').count() as u64;
        let n = buf.len();
        r.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_byte_skips_bom_and_peeks_past_space() {
        let mut r: &[u8] = b"\xef\xbb\xbf \n\t[1]";
        let start = first_byte(&mut r, "x").unwrap();
        assert_eq!(
            start,
            Start {
                byte: Some(b'['),
                lines: 0
            }
        );
        assert_eq!(
            r, b" \n\t[1]",
            "white space within the buffer is not consumed"
        );
        let mut small = BufReader::with_capacity(2, &b"\n\n\n {}"[..]);
        let start = first_byte(&mut small, "x").unwrap();
        assert_eq!(
            start,
            Start {
                byte: Some(b'{'),
                lines: 3
            }
        );
        let mut empty: &[u8] = b"  \n";
        assert_eq!(first_byte(&mut empty, "x").unwrap().byte, None);
    }

    #[test]
    fn parameters_are_checked_and_extensions_resolved() {
        let err = |r: Result<Files, ActionError>| match r {
            Err(ActionError::Param { path, .. }) => path,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(err(files_param(" ".into(), None, None, &[], false)), "path");
        assert_eq!(
            err(files_param("x".into(), Some(0), None, &[], false)),
            "read_ahead"
        );
        let files = files_param("x".into(), Some(2), None, &["csv", "tsv"], true).unwrap();
        assert_eq!(files.read_ahead, Some(2));
        assert_eq!(files.extensions, ["csv", "tsv", "csv.gz", "tsv.gz"]);
        let given = Some(vec![".TXT".to_string(), "dat".to_string()]);
        let files = files_param("x".into(), None, given, &["csv"], true).unwrap();
        assert_eq!(files.extensions, ["txt", "dat"]);
    }
}
