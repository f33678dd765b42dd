//! The one `Sink` of the text writers (`csv_writer`, `jsonl_writer`, `geojson_writer`): a
//! [`TextWriter`] over a [`RecordEncoder`].
//!
//! An encoder knows only its format: the bytes that open a file (given its first feature),
//! the bytes of one feature, the bytes that close a file, and the bytes of a file that
//! received no feature. Everything else is here, once:
//!
//! - the parameters every text writer shares, checked in [`TextOutput::new`]: `path` names
//!   a file and may hold `{attribute}` placeholders (`sinks/partition.rs`), or, ending in
//!   `/`, a folder of parts (`part-00000.csv`; in a partitioned run each task writes the
//!   part of its index, [`part_path`]), `max_open_files` is at least 1, `gzip` defaults to
//!   whether the name ends in `.gz`;
//! - each file is written through an [`Output`] (a temporary file of the runtime's store,
//!   or stdout for `-`, gzip or not) behind a 64 KiB buffer; a feature is encoded into one
//!   reused byte buffer and written whole;
//! - `finish` ends every file (footer, flush) and logs the count, `commit` renames them into
//!   place once the run has succeeded, `abort` (or a drop) removes them;
//! - a batch bound for one file (a path without placeholders) is encoded on the shared pool,
//!   in chunks, each into its own byte buffer, and the buffers are written in order: the
//!   file's bytes are the same as encoding one feature after the other
//!   ([`RecordEncoder::PARALLEL`] says when an encoder allows it).

use std::io::{BufWriter, Write};

use rayon::prelude::*;
use sluice_runtime::store::AtomicWriter;
use sluice_runtime::{ActionError, Batch, BuiltAction, Feature, NodeContext, NodeImpl, Sink};

use super::Output;
use super::partition::{FileFormat, Partitioned, PathTemplate};

/// Bytes buffered in front of each open file.
const FILE_BUFFER: usize = 64 * 1024;
/// Batches shorter than this are encoded on the sink's thread.
const PARALLEL_MIN: usize = 256;
/// Fewest features per chunk encoded on the pool.
const CHUNK_MIN: usize = 64;

/// How one text format turns features into bytes. Every method appends to `buf`.
pub(crate) trait RecordEncoder: Clone + Send + Sync + 'static {
    /// The file name extension of the format (`csv`), for the files of a folder of parts.
    const EXTENSION: &'static str;

    /// What one file keeps from its first feature to its end (CSV: its columns).
    type State: Clone + Send + Sync;

    /// Whether features may be encoded in parallel: encoding a feature with a clone of the
    /// state taken after any earlier feature of the file was encoded gives the same bytes as
    /// encoding it in turn (the state is a cache or a "not the first" flag, not a counter).
    const PARALLEL: bool = false;

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
    /// `path` names a folder of parts (it ends in `/`).
    parts: bool,
}

/// The name of the part a task writes in a folder of parts: `part-00003.csv`.
pub(crate) fn part_name(task: u32, extension: &str, gzip: bool) -> String {
    format!(
        "part-{task:05}.{extension}{}",
        if gzip { ".gz" } else { "" }
    )
}

/// The path of the part this run writes in the folder of parts `folder` (task `slice.index`
/// of `slice.count`), after checking that the folder holds no part of a run with more tasks
/// (it would be read as part of this output: it is an error, not something removed).
pub(crate) fn part_path(
    folder: &str,
    slice: sluice_runtime::Slice,
    extension: &str,
    gzip: bool,
) -> Result<String, ActionError> {
    let suffix = format!(".{extension}{}", if gzip { ".gz" } else { "" });
    if let Ok(entries) = std::fs::read_dir(folder) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let index = name
                .strip_prefix("part-")
                .and_then(|r| r.strip_suffix(suffix.as_str()))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(i) = index
                && i >= u64::from(slice.count)
            {
                return Err(ActionError::param(
                    "path",
                    format!(
                        "the folder of parts {folder} holds {name}, a part of an earlier run \
                         with more than {} part(s); remove it (or write to an empty folder)",
                        slice.count
                    ),
                ));
            }
        }
    }
    Ok(format!(
        "{folder}{}",
        part_name(slice.index, extension, gzip)
    ))
}

impl TextOutput {
    /// Checks `path` (a file, with well-formed placeholders) and `max_open_files` (at least
    /// 1); `gzip` defaults to whether `path` ends in `.gz`.
    pub(crate) fn new(
        path: String,
        gzip: Option<bool>,
        max_open_files: usize,
    ) -> Result<TextOutput, ActionError> {
        if path.trim().is_empty() || path == "/" {
            return Err(ActionError::param("path", "must name a file"));
        }
        let parts = path.ends_with('/');
        let template = PathTemplate::parse(&path).map_err(|m| ActionError::param("path", m))?;
        if parts && !template.is_static() {
            return Err(ActionError::param(
                "path",
                "a folder of parts (a path ending in /) cannot hold {attribute} placeholders",
            ));
        }
        if max_open_files == 0 {
            return Err(ActionError::param("max_open_files", "must be at least 1"));
        }
        let gzip = gzip.unwrap_or_else(|| path.ends_with(".gz"));
        Ok(TextOutput {
            path,
            template,
            gzip,
            max_open_files,
            parts,
        })
    }

    /// The sink writing these files with `encoder`.
    pub(crate) fn writer<E: RecordEncoder>(self, encoder: E) -> TextWriter<E> {
        let parts = self.parts.then(|| (self.path.clone(), self.gzip));
        TextWriter {
            parts,
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
    /// A folder of parts and whether they are gzipped: the file (`part-00000.csv`, or the
    /// task's index in a partitioned run) is named when the first batch or the end comes.
    parts: Option<(String, bool)>,
}

impl<E: RecordEncoder> TextWriter<E> {
    /// Names the part this run writes, once.
    fn name_part(&mut self, ctx: &NodeContext) -> Result<(), ActionError> {
        if let Some((folder, gzip)) = self.parts.take() {
            self.files
                .retarget(part_path(&folder, ctx.slice(), E::EXTENSION, gzip)?);
        }
        Ok(())
    }
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

    fn write_batch(
        &mut self,
        file: &mut Self::File,
        mut features: Vec<Feature>,
        ctx: &NodeContext,
    ) -> Result<(), ActionError> {
        let threads = ctx.pool.current_num_threads();
        if !E::PARALLEL || features.len() < PARALLEL_MIN || threads < 2 {
            for f in &features {
                self.write(file, f)?;
            }
            return Ok(());
        }
        // The first feature in turn, so the state is past anything a first feature changes.
        self.write(file, &features[0])?;
        let chunk = (features.len() - 1).div_ceil(threads * 2).max(CHUNK_MIN);
        // Owned chunks, so each is also dropped on the pool (freeing features is a good part
        // of a writer's work), in order from the second feature.
        let chunks = sluice_runtime::feature::split_batch(features.split_off(1), chunk);
        let (encoder, state) = (&self.encoder, &file.state);
        let encoded: Vec<Result<Vec<u8>, ActionError>> = ctx.install(|| {
            chunks
                .into_par_iter()
                .map(|part| {
                    ctx.pool_job(|| {
                        let (mut encoder, mut state) = (encoder.clone(), state.clone());
                        let mut buf = Vec::with_capacity(part.len() * 128);
                        for (i, f) in part.iter().enumerate() {
                            sluice_runtime::feature::prefetch_ahead(&part, i);
                            encoder.encode(&mut state, f, &mut buf)?;
                        }
                        drop(part);
                        Ok(buf)
                    })
                })
                .collect()
        });
        for bytes in encoded {
            file.out
                .write_all(&bytes?)
                .map_err(|e| io_error(&file.path, e))?;
        }
        Ok(())
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
    fn write(&mut self, _input: usize, batch: Batch, ctx: &NodeContext) -> Result<(), ActionError> {
        self.name_part(ctx)?;
        self.files.write_batch(batch, ctx)
    }

    fn finish(&mut self, ctx: &NodeContext) -> Result<(), ActionError> {
        self.name_part(ctx)?;
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
    #[derive(Clone)]
    struct Ids;

    impl RecordEncoder for Ids {
        const EXTENSION: &'static str = "ids";
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

    /// Features of two schemas (one with a column missing), strings that need quoting,
    /// nulls, dates and geometries: enough that a chunk boundary falls anywhere.
    fn varied(n: u64) -> Vec<Feature> {
        let full = sluice_runtime::Schema::new(["id", "name", "when", "x"]);
        let short = sluice_runtime::Schema::new(["x", "id"]);
        (0..n)
            .map(|i| {
                let f = if i % 7 == 3 {
                    Feature::new(
                        i,
                        short.clone(),
                        vec![Value::Float(i as f64 / 3.0), Value::Int(i as i64)],
                    )
                } else {
                    Feature::new(
                        i,
                        full.clone(),
                        vec![
                            Value::Int(i as i64),
                            Value::from(format!("n, \"{i}\"\n")),
                            if i % 5 == 0 {
                                Value::Null
                            } else {
                                Value::DateTime(i as i64 * 1_234_567_891)
                            },
                            Value::Float(-(i as f64) * 0.1),
                        ],
                    )
                };
                f.with_geometry(Some(sluice_runtime::Geometry::new(
                    geo_types::Geometry::Point(geo_types::Point::new(i as f64, 0.5)),
                )))
            })
            .collect()
    }

    /// A batch encoded on a pool of four threads gives the bytes one thread gives, for every
    /// text writer.
    #[test]
    fn parallel_encoding_writes_the_bytes_of_sequential_encoding() {
        use sluice_runtime::testing::Harness;
        let specs = [
            (
                &crate::sinks::csv_writer::SPEC,
                serde_json::json!({ "geometry": "wkt" }),
                "csv",
            ),
            (
                &crate::sinks::jsonl_writer::SPEC,
                serde_json::json!({}),
                "jsonl",
            ),
            (
                &crate::sinks::geojson_writer::SPEC,
                serde_json::json!({}),
                "geojson",
            ),
        ];
        for (spec, params, ext) in specs {
            let mut outputs = Vec::new();
            for threads in [1, 4] {
                let path = format!("memory://text_writer/par-{threads}.{ext}");
                let mut p = params.clone();
                p["path"] = serde_json::Value::from(path.clone());
                let harness = Harness {
                    threads,
                    batch_size: 3000,
                    ..Harness::default()
                };
                harness
                    .run_processor(spec, p, vec![varied(10_000)])
                    .unwrap();
                outputs.push(sluice_runtime::testing::read_bytes(&path).unwrap());
            }
            assert!(outputs[0].len() > 100_000, "{ext}");
            assert!(
                outputs[0] == outputs[1],
                "{ext}: parallel encoding changed the bytes"
            );
        }
    }

    #[test]
    fn shared_parameters_are_checked() {
        for (path, max, want) in [
            ("", 1, "path"),
            ("/", 1, "path"),
            ("out/{a}/", 1, "path"),
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
