//! Splitting delimited text into records: RFC 4180 quoting, with what a faithful reader needs
//! and a generic CSV parser does not give — whether each field was quoted (so `""` is an empty
//! string and an empty field is null), the line and byte where each record starts, and a hard
//! stop with a location when a quoted field never closes or a field grows past a limit.
//!
//! Rules, as common CSV readers apply them: a record ends at `\n`, `\r\n` or `\r` outside
//! quotes; empty lines are skipped; a field that starts with the quote character is quoted
//! until a quote that is not doubled (`""` inside is one quote), and text after the closing
//! quote is kept as is; a quote inside an unquoted field is an ordinary character.
//!
//! A record starts at a *record boundary*: the start of the input, or the byte after a line
//! break (`\n`, a `\r` not followed by `\n`, or `\r\n`) that is outside quotes. For a slice
//! of a file, [`Records::skip_to`] moves on to the first boundary at or after an offset with
//! a scan of the bytes for quotes and line breaks (no field is copied), and
//! [`Records::set_limit`] ends the records at the first boundary at or after another: the
//! slices of a file split at the same boundaries the whole read finds, so they hold its
//! records exactly. Line numbers count every line break before a byte (in quotes too, `\r\n`
//! once), so they are the same whichever byte reading started from.

use std::io::{self, BufRead};

/// Why splitting stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    /// A quoted field reached the end of the input without its closing quote.
    #[error(
        "line {line}: a quoted field opened at byte {byte} is never closed (the quote runs to the end of the file)"
    )]
    UnclosedQuote {
        /// The line the field starts on (1-based).
        line: u64,
        /// The byte offset of its opening quote.
        byte: u64,
    },
    /// A field grew past the limit (usually an unbalanced quote swallowing the rest of the file).
    #[error(
        "line {line}: a field starting at byte {byte} is longer than {limit} bytes (an unbalanced quote? raise `max_field_bytes` if the data really has such fields)"
    )]
    FieldTooLong {
        /// The line the field starts on (1-based).
        line: u64,
        /// The byte offset where the field starts.
        byte: u64,
        /// The limit in bytes.
        limit: usize,
    },
    /// The input could not be read.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// One record: its fields' bytes (quotes removed), and where it came from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Record {
    bytes: Vec<u8>,
    /// End offset in `bytes` of each field.
    ends: Vec<usize>,
    /// Whether each field was quoted.
    quoted: Vec<bool>,
    /// The byte offset in the input where each field starts.
    starts: Vec<u64>,
    line: u64,
}

impl Record {
    /// Number of fields.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The bytes of field `i`.
    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.bytes[start..end])
    }

    /// Whether field `i` was written in quotes.
    pub(crate) fn quoted(&self, i: usize) -> bool {
        self.quoted.get(i).copied().unwrap_or(false)
    }

    /// The byte offset in the input where field `i` starts.
    pub(crate) fn start(&self, i: usize) -> u64 {
        self.starts.get(i).copied().unwrap_or(0)
    }

    /// The line the record starts on (1-based).
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// The fields in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len()).map(move |i| self.get(i).unwrap_or_default())
    }

    fn push_field(&mut self, quoted: bool, start: u64) {
        self.ends.push(self.bytes.len());
        self.quoted.push(quoted);
        self.starts.push(start);
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.quoted.clear();
        self.starts.clear();
    }
}

/// Splits a byte stream into [`Record`]s.
pub(crate) struct Records<R> {
    input: R,
    delimiter: u8,
    quote: u8,
    max_field: usize,
    /// The line of the next unread byte (1-based).
    line: u64,
    /// The offset of the next unread byte.
    offset: u64,
    /// The previous record ended with `\r`: a `\n` right after it belongs to it.
    after_cr: bool,
    /// A quoted field's bytes read so far end with `\r`: its line break is counted once the
    /// next byte shows whether it is a `\r\n`.
    quoted_cr: bool,
    /// No record starting at or after this offset is read.
    limit: u64,
}

/// Where the scanner is inside a record.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field.
    FieldStart,
    /// Inside an unquoted field (or after a closing quote).
    Unquoted,
    /// Inside quotes.
    Quoted,
    /// Just read a quote inside quotes: a second one is a literal quote, anything else
    /// closes the quotes.
    QuoteInQuoted,
}

impl<R: BufRead> Records<R> {
    /// A splitter over `input`; fields longer than `max_field` bytes stop it with an error.
    pub(crate) fn new(input: R, delimiter: u8, quote: u8, max_field: usize) -> Records<R> {
        Records {
            input,
            delimiter,
            quote,
            max_field,
            line: 1,
            offset: 0,
            after_cr: false,
            quoted_cr: false,
            limit: u64::MAX,
        }
    }

    /// The offset of the next unread byte: after a record, the record boundary the next one
    /// starts at (or the `\n` of a `\r\n` before it).
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Ends the records at the first record boundary at or after `limit`: a record that
    /// starts before it is read whole, even when it runs past it; none starting at or after
    /// it is.
    pub(crate) fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
    }

    /// The input's next bytes, retrying an interrupted read.
    fn fill(&mut self) -> io::Result<&[u8]> {
        loop {
            match self.input.fill_buf() {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.input.fill_buf()
    }

    /// After a record that ended with `\r`, takes the `\n` of a `\r\n`: the reader is then
    /// at a record boundary.
    fn settle_cr(&mut self) -> io::Result<()> {
        if self.after_cr {
            if self.fill()?.first() == Some(&b'\n') {
                self.input.consume(1);
                self.offset += 1;
            }
            self.after_cr = false;
        }
        Ok(())
    }

    /// Moves on from a record boundary, without reading the records, to the first record
    /// boundary at or after offset `target` (or the end of the input), keeping the line count.
    /// It follows the splitter's quoting rules exactly (a quote opens a quoted field only at
    /// the start of a field) but looks only at quotes and line breaks, with `memchr`.
    ///
    /// An unclosed quote is no error here: the boundary is then the end of the input, and the
    /// record with the quote fails where it is read.
    pub(crate) fn skip_to(&mut self, target: u64) -> Result<(), RecordError> {
        // Outside quotes: whether the next byte starts a field (it follows a record boundary
        // or a delimiter), and whether it starts a record.
        let mut field_start = true;
        let mut record_start = true;
        // Inside quotes; just after a quote inside quotes.
        let mut quoted = false;
        let mut quote_in_quoted = false;
        loop {
            self.settle_cr()?;
            if record_start && !quoted && self.offset >= target {
                return Ok(());
            }
            let (delimiter, quote, base) = (self.delimiter, self.quote, self.offset);
            // A `\r` of a quoted field at the end of the last buffer.
            let mut quoted_cr = self.quoted_cr;
            let buf = self.fill()?;
            if buf.is_empty() {
                return Ok(());
            }
            let n = buf.len();
            let mut i = 0;
            let mut lines = 0u64;
            let mut after_cr = false;
            while i < n {
                if quote_in_quoted {
                    quote_in_quoted = false;
                    if buf[i] == quote {
                        // A doubled quote: still inside.
                        i += 1;
                        continue;
                    }
                    quoted = false;
                    field_start = false;
                    record_start = false;
                }
                if quoted {
                    if quoted_cr {
                        quoted_cr = false;
                        if buf[i] != b'\n' {
                            lines += 1;
                        }
                    }
                    let rest = &buf[i..];
                    match memchr::memchr(quote, rest) {
                        Some(k) => {
                            lines += count_line_breaks(&rest[..k]);
                            quote_in_quoted = true;
                            i += k + 1;
                        }
                        None => {
                            let (counted, pending) = line_breaks_open_end(rest);
                            lines += counted;
                            quoted_cr = pending;
                            i = n;
                        }
                    }
                    continue;
                }
                let rest = &buf[i..];
                match memchr::memchr3(quote, b'\n', b'\r', rest) {
                    None => {
                        field_start = rest.last() == Some(&delimiter);
                        record_start = false;
                        i = n;
                    }
                    Some(k) => {
                        let c = rest[k];
                        if c == quote {
                            let starts_field = if k == 0 {
                                field_start
                            } else {
                                rest[k - 1] == delimiter
                            };
                            quoted = starts_field;
                            field_start = false;
                            record_start = false;
                            i += k + 1;
                        } else {
                            // A line break outside quotes: a record boundary follows (after
                            // the `\n` of a `\r\n`).
                            lines += 1;
                            i += k + 1;
                            field_start = true;
                            record_start = true;
                            if c == b'\r' {
                                if i == n {
                                    // Whether a `\n` follows is for the next buffer to say.
                                    after_cr = true;
                                    break;
                                }
                                if buf[i] == b'\n' {
                                    i += 1;
                                }
                            }
                            if base + i as u64 >= target {
                                break;
                            }
                        }
                    }
                }
            }
            self.input.consume(i);
            self.offset += i as u64;
            self.line += lines;
            self.quoted_cr = quoted_cr;
            self.after_cr = after_cr;
        }
    }

    /// Reads the next non-empty record into `rec`; `false` at the end of the input.
    pub(crate) fn read(&mut self, rec: &mut Record) -> Result<bool, RecordError> {
        loop {
            rec.clear();
            match self.read_one(rec)? {
                None => return Ok(false),
                // An empty line: skip it.
                Some(true) => continue,
                Some(false) => return Ok(true),
            }
        }
    }

    /// One line's worth: `None` at the end, `Some(true)` for an empty line.
    fn read_one(&mut self, rec: &mut Record) -> Result<Option<bool>, RecordError> {
        self.settle_cr()?;
        if self.offset >= self.limit {
            return Ok(None);
        }
        let mut state = State::FieldStart;
        // The current field: where it starts, on which line, whether it was quoted, and
        // where its bytes start in `rec.bytes`.
        let mut field_start = self.offset;
        let mut field_line = self.line;
        let mut field_quoted = false;
        let mut field_from = 0usize;
        let mut started = false;
        rec.line = self.line;
        loop {
            let buf = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if buf.is_empty() {
                return match state {
                    State::Quoted => Err(RecordError::UnclosedQuote {
                        line: field_line,
                        byte: field_start,
                    }),
                    _ if !started => Ok(None),
                    _ => {
                        rec.push_field(field_quoted, field_start);
                        Ok(Some(false))
                    }
                };
            }
            let n = buf.len();
            let mut i = 0;
            // `Some(empty_line)` once the record's line break is read.
            let mut done = None;
            while i < n && done.is_none() {
                match state {
                    State::FieldStart => {
                        field_start = self.offset + i as u64;
                        field_line = self.line;
                        field_from = rec.bytes.len();
                        let c = buf[i];
                        if c == b'\n' || c == b'\r' {
                            if started {
                                // The empty last field after a delimiter.
                                rec.push_field(false, field_start);
                            }
                            self.after_cr = c == b'\r';
                            self.line += 1;
                            i += 1;
                            done = Some(!started);
                        } else if c == self.quote {
                            started = true;
                            field_quoted = true;
                            state = State::Quoted;
                            i += 1;
                        } else {
                            started = true;
                            field_quoted = false;
                            state = State::Unquoted;
                        }
                    }
                    State::Unquoted => {
                        let rest = &buf[i..];
                        match memchr::memchr3(self.delimiter, b'\n', b'\r', rest) {
                            None => {
                                rec.bytes.extend_from_slice(rest);
                                i = n;
                            }
                            Some(k) => {
                                rec.bytes.extend_from_slice(&rest[..k]);
                                let c = rest[k];
                                i += k + 1;
                                rec.push_field(field_quoted, field_start);
                                state = State::FieldStart;
                                if c != self.delimiter {
                                    self.after_cr = c == b'\r';
                                    self.line += 1;
                                    done = Some(false);
                                }
                            }
                        }
                    }
                    State::Quoted => {
                        let rest = &buf[i..];
                        if std::mem::take(&mut self.quoted_cr) && rest[0] != b'\n' {
                            // The `\r` that ended the last buffer was a line break of its own.
                            self.line += 1;
                        }
                        let k = memchr::memchr(self.quote, rest).unwrap_or(rest.len());
                        rec.bytes.extend_from_slice(&rest[..k]);
                        if k < rest.len() {
                            self.line += count_line_breaks(&rest[..k]);
                            state = State::QuoteInQuoted;
                            i += k + 1;
                        } else {
                            // The field goes on in the next buffer: a `\r` at the end is
                            // counted once the next byte is known.
                            let (counted, pending) = line_breaks_open_end(rest);
                            self.line += counted;
                            self.quoted_cr = pending;
                            i = n;
                        }
                    }
                    State::QuoteInQuoted => {
                        let c = buf[i];
                        if c == self.quote {
                            // A doubled quote is one literal quote.
                            rec.bytes.push(c);
                            state = State::Quoted;
                            i += 1;
                        } else {
                            // The quotes closed: a delimiter or a line break ends the field
                            // as usual; other text after the closing quote is kept.
                            state = State::Unquoted;
                        }
                    }
                }
                if rec.bytes.len() - field_from > self.max_field {
                    return Err(RecordError::FieldTooLong {
                        line: field_line,
                        byte: field_start,
                        limit: self.max_field,
                    });
                }
            }
            self.input.consume(i);
            self.offset += i as u64;
            if let Some(empty) = done {
                return Ok(Some(empty));
            }
        }
    }
}

/// The line breaks of `b` when more bytes may follow it: a `\r` at its end is not counted
/// (`true`: it is pending), since a `\n` after it would make one `\r\n`.
fn line_breaks_open_end(b: &[u8]) -> (u64, bool) {
    match b.split_last() {
        Some((b'\r', head)) => (count_line_breaks(head), true),
        _ => (count_line_breaks(b), false),
    }
}

/// The line breaks of `b`, which nothing follows on the same line.
fn count_line_breaks(b: &[u8]) -> u64 {
    // `\r\n` counts once; a lone `\r` counts as a line break too.
    let lf = memchr::memchr_iter(b'\n', b).count() as u64;
    let cr_alone = memchr::memchr_iter(b'\r', b)
        .filter(|&k| b.get(k + 1) != Some(&b'\n'))
        .count() as u64;
    lf + cr_alone
}
