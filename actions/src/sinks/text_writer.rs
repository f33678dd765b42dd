//! The one `Sink` of the text writers (`csv_writer`, `jsonl_writer`, `geojson_writer`): a
//! [`TextWriter`] over a [`RecordEncoder`].
//!
//! An encoder knows only its format: the bytes that open a file (given its first feature),
//! the bytes of one feature, the bytes that close a file, and the bytes of a file that
//! received no feature. Everything else is here, once:
//!
//! - the parameters every text writer shares, checked in [`TextOutput::new`]: `path` names
//!   a file and may hold `{attribute}` placeholders (`sinks/partition.rs`), `max_open_files`
//!   is at least 1, `gzip` defaults to whether the name ends in `.gz`;
//! - each file is written through an [`Output`] (a temporary file of the runtime's store,
//!   or stdout for `-`, gzip or not) behind a 64 KiB buffer; a feature is encoded into one
//!   reused byte buffer and written whole;
//! - `finish` ends every file (footer, flush) and logs the count, `commit` renames them into
//!   place once the run has succeeded, `abort` (or a drop) removes them.

use std::io::{BufWriter, Write};

use sluice_runtime::store::AtomicWriter;
use sluice_runtime::{ActionError, Batch, BuiltAction, Feature, NodeContext, NodeImpl, Sink};

use super::Output;
use super::partition::{FileFormat, Partitioned, PathTemplate};

/// Bytes buffered in front of each open file.
const FILE_BUFFER: usize = 64 * 1024;

/// How one text format turns features into bytes. Every method appends to `buf`.
pub(crate) trait RecordEncoder: Send + 'static {
    /// What one file keeps from its first feature to its end (CSV: its columns).
    type State: Send;

    /// Starts a file whose first feature is `first`: its header, if any.
    fn header(&mut self, first: &Feature, buf: &mut Vec<u8>) -> Result<Self::State, ActionError>;

    /// Encodes one feature (with whatever separates it from the one before).
    fn encode(
        &mut self,
        state: &mut Self::State,
        f: &Feature,
        buf: &mut Vec<u8>,
    ) -> Result<(), ActionError>;

    /// Ends a file: its footer, if any.
    fn footer(&mut self, _state: Self::State, _buf: &mut Vec<u8>) {}

    /// The whole content of a file that received no feature (a path without placeholders
    /// still gets its file).
    fn empty(&mut self, _buf: &mut Vec<u8>) {}
}

/// The parameters every text writer shares, checked.
pub(crate) struct TextOutput {
    path: String,
    template: PathTemplate,
    gzip: bool,
    max_open_files: usize,
}

impl TextOutput {
    /// Checks `path` (a file, with well-formed placeholders) and `max_open_files` (at least
    /// 1); `gzip` defaults to whether `path` ends in `.gz`.
    pub(crate) fn new(
        path: String,
        gzip: Option<bool>,
        max_open_files: usize,
    ) -> Result<TextOutput, ActionError> {
        if path.trim().is_empty() || path.ends_with('/') {
            return Err(ActionError::param("path", "must name a file"));
        }
        let template = PathTemplate::parse(&path).map_err(|m| ActionError::param("path", m))?;
        if max_open_files == 0 {
            return Err(ActionError::param("max_open_files", "must be at least 1"));
        }
        let gzip = gzip.unwrap_or_else(|| path.ends_with(".gz"));
        Ok(TextOutput {
            path,
            template,
            gzip,
            max_open_files,
        })
    }

    /// The sink writing these files with `encoder`.
    pub(crate) fn writer<E: RecordEncoder>(self, encoder: E) -> TextWriter<E> {
        TextWriter {
            files: Partitioned::new(
                self.template,
                TextFormat {
                    encoder,
                    gzip: self.gzip,
                    buf: Vec::with_capacity(256),
                },
                self.max_open_files,
            ),
            path: self.path,
        }
    }

    /// The built sink action writing these files with `encoder`.
    pub(crate) fn build<E: RecordEncoder>(self, encoder: E) -> BuiltAction {
        BuiltAction::new(NodeImpl::Sink(Box::new(self.writer(encoder))))
    }
}

/// A text file sink: features encoded by `E`, one file or one per partition.
pub(crate) struct TextWriter<E: RecordEncoder> {
    pub(super) files: Partitioned<TextFormat<E>>,
    path: String,
}

/// A [`FileFormat`] made of an encoder: opens [`Output`]s and writes the encoded bytes.
pub(crate) struct TextFormat<E> {
    encoder: E,
    gzip: bool,
    /// One feature's bytes (reused).
    buf: Vec<u8>,
}

/// One open text file.
pub(crate) struct TextFile<S> {
    path: String,
    out: BufWriter<Output>,
    state: S,
}

fn io_error(path: &str, e: std::io::Error) -> ActionError {
    ActionError::io(format!("writing {path}"), e)
}

impl<E: RecordEncoder> TextFormat<E> {
    /// Writes what the encoder put in `buf`, and empties it.
    fn drain(&mut self, out: &mut impl Write, path: &str) -> Result<(), ActionError> {
        let result = out.write_all(&self.buf);
        self.buf.clear();
        result.map_err(|e| io_error(path, e))
    }
}

impl<E: RecordEncoder> FileFormat for TextFormat<E> {
    type File = TextFile<E::State>;

    fn open(&mut self, path: &str, first: &Feature) -> Result<Self::File, ActionError> {
        let mut out = BufWriter::with_capacity(FILE_BUFFER, Output::create(path, self.gzip)?);
        self.buf.clear();
        let state = self.encoder.header(first, &mut self.buf)?;
        self.drain(&mut out, path)?;
        Ok(TextFile {
            path: path.to_string(),
            out,
            state,
        })
    }

    fn write(&mut self, file: &mut Self::File, f: &Feature) -> Result<(), ActionError> {
        self.buf.clear();
        self.encoder.encode(&mut file.state, f, &mut self.buf)?;
        self.drain(&mut file.out, &file.path)
    }

    fn finish(&mut self, file: Self::File) -> Result<AtomicWriter, ActionError> {
        let TextFile {
            path,
            mut out,
            state,
        } = file;
        self.buf.clear();
        self.encoder.footer(state, &mut self.buf);
        self.drain(&mut out, &path)?;
        let output = out
            .into_inner()
            .map_err(|e| io_error(&path, e.into_error()))?;
        output.finish(&path)
    }

    fn empty(&mut self, path: &str) -> Result<AtomicWriter, ActionError> {
        let mut out = Output::create(path, self.gzip)?;
        self.buf.clear();
        self.encoder.empty(&mut self.buf);
        self.drain(&mut out, path)?;
        out.finish(path)
    }
}

impl<E: RecordEncoder> Sink for TextWriter<E> {
    fn write(
        &mut self,
        _input: usize,
        batch: Batch,
        _ctx: &NodeContext,
    ) -> Result<(), ActionError> {
        for f in &batch {
            self.files.write(f)?;
        }
        Ok(())
    }

    fn finish(&mut self, ctx: &NodeContext) -> Result<(), ActionError> {
        self.files.finish()?;
        ctx.log(format!(
            "wrote {} features to {} ({} files)",
            self.files.written,
            self.path,
            self.files.files()
        ));
        Ok(())
    }

    fn commit(&mut self) -> Result<(), ActionError> {
        self.files.commit()
    }

    fn abort(&mut self) {
        // Dropping the writers removes their temporary files.
        self.files.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_runtime::Value;

    /// Writes each feature's id between a header and a footer.
    struct Ids;

    impl RecordEncoder for Ids {
        type State = u32;
        fn header(&mut self, _first: &Feature, buf: &mut Vec<u8>) -> Result<u32, ActionError> {
            buf.extend_from_slice(b"[");
            Ok(0)
        }
        fn encode(
            &mut self,
            n: &mut u32,
            f: &Feature,
            buf: &mut Vec<u8>,
        ) -> Result<(), ActionError> {
            *n += 1;
            write!(buf, "{}:{};", n, f.id()).unwrap();
            Ok(())
        }
        fn footer(&mut self, n: u32, buf: &mut Vec<u8>) {
            write!(buf, "]{n}").unwrap();
        }
        fn empty(&mut self, buf: &mut Vec<u8>) {
            buf.extend_from_slice(b"none");
        }
    }

    fn run(path: &str, features: Vec<Feature>) -> String {
        let ctx = NodeContext::standalone("t");
        let mut w = TextOutput::new(path.into(), None, 64).unwrap().writer(Ids);
        w.write(0, features, &ctx).unwrap();
        w.finish(&ctx).unwrap();
        w.commit().unwrap();
        String::from_utf8(sluice_runtime::testing::read_bytes(path).unwrap()).unwrap()
    }

    #[test]
    fn header_features_footer_or_the_empty_file() {
        let f = |id| Feature::from_pairs(id, [("a", Value::Int(1))]);
        assert_eq!(
            run("memory://text_writer/ids.txt", vec![f(4), f(9)]),
            "[1:4;2:9;]2"
        );
        assert_eq!(run("memory://text_writer/none.txt", Vec::new()), "none");
    }

    #[test]
    fn shared_parameters_are_checked() {
        for (path, max, want) in [
            ("", 1, "path"),
            ("out/", 1, "path"),
            ("out/{a.txt", 1, "path"),
            ("x.txt", 0, "max_open_files"),
        ] {
            match TextOutput::new(path.into(), None, max) {
                Err(ActionError::Param { path, .. }) => assert_eq!(path, want),
                Err(other) => panic!("unexpected {other:?}"),
                Ok(_) => panic!("{path:?} accepted"),
            }
        }
        assert!(TextOutput::new("x.csv.gz".into(), None, 1).unwrap().gzip);
        assert!(
            !TextOutput::new("x.csv.gz".into(), Some(false), 1)
                .unwrap()
                .gzip
        );
    }
}
