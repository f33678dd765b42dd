//! Output paths with `{attribute}` placeholders: one file per distinct value, for the text
//! writers (`csv_writer`, `jsonl_writer`, `geojson_writer`).
//!
//! A `path` such as `out/by_cat/{category}.csv` sends each feature to the file named by its
//! value of `category`; placeholders may appear anywhere in the path (`out/{year}/{kind}.csv`),
//! `{{` and `}}` are literal braces. A path without placeholders is one file, as before.
//!
//! # File names from values
//!
//! A value is written as its text (dates ISO 8601, floats as they print), then made safe for
//! a file name: `/`, `\`, `:`, `*`, `?`, `"`, `<`, `>`, `|`, `[`, `]` and control characters
//! become `_`, a leading `.` becomes `_` (so `..` and hidden names cannot appear), an empty
//! text becomes `_empty`, a null or missing attribute `_null`, and the text is cut at 200
//! bytes. Two values that clean up to the same text share a file.
//!
//! # Open files and parts: the rule
//!
//! At most `max_open_files` files are open (encoders and their buffers) at once. When a
//! feature needs one more, the least recently used open file is finished: its bytes are
//! flushed to its temporary file, which waits, uncommitted, for the run to succeed. If that
//! partition receives features again, they go to a NEW file next to it, `name.part2.csv`
//! (then `part3`...; the number goes before the extension, and before `.gz`), because a
//! finished temporary file cannot be appended to. Every file of a partition is complete and
//! valid on its own (a CSV part has its own header, a GeoJSON part is a whole
//! FeatureCollection), so `out/by_cat/*.csv` reads everything back. Sorting or grouping the
//! input by the partition attributes avoids parts altogether.
//!
//! Nothing is visible until the run succeeds: every file (open or finished) is committed
//! in `Sink::commit` and removed by `Sink::abort`. A finished file still holds its storage
//! handle until then (the store has no "close now, rename later" step), so
//! `max_open_files` bounds the memory of open encoders, not the number of partitions.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_runtime::store::AtomicWriter;
use sluice_runtime::{ActionError, Feature, NodeContext, Schema};

/// Longest file-name part made from one value, in bytes.
const MAX_NAME_BYTES: usize = 200;

/// How one file format writes features to one file.
pub(crate) trait FileFormat {
    /// An open file.
    type File;
    /// Opens `path`, whose first feature will be `first`.
    fn open(&mut self, path: &str, first: &Feature) -> Result<Self::File, ActionError>;
    /// Writes one feature.
    fn write(&mut self, file: &mut Self::File, f: &Feature) -> Result<(), ActionError>;
    /// Writes features bound for one file, in order (a format may encode them on the pool,
    /// and drop them there).
    fn write_batch(
        &mut self,
        file: &mut Self::File,
        features: Vec<Feature>,
        _ctx: &NodeContext,
    ) -> Result<(), ActionError> {
        for f in &features {
            self.write(file, f)?;
        }
        Ok(())
    }
    /// Ends the file (footer, flush); the writer is committed later.
    fn finish(&mut self, file: Self::File) -> Result<AtomicWriter, ActionError>;
    /// The file to write when a path without placeholders received no feature.
    fn empty(&mut self, path: &str) -> Result<AtomicWriter, ActionError>;
}

/// A parsed output path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PathTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Attribute(String),
}

impl PathTemplate {
    /// Parses `{name}` placeholders; the error says what is wrong (for `path`).
    pub(crate) fn parse(path: &str) -> Result<PathTemplate, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = path.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') | None => {
                                return Err(format!(
                                    "unclosed placeholder \"{{{name}\" (write {{{{ for a literal brace)"
                                ));
                            }
                            Some(c) => name.push(c),
                        }
                    }
                    let name = name.trim().to_string();
                    if name.is_empty() {
                        return Err("empty placeholder \"{}\"".to_string());
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Attribute(name));
                }
                '}' => return Err("unmatched \"}\" (write }} for a literal brace)".to_string()),
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(PathTemplate { parts })
    }

    /// Whether the path has no placeholder.
    pub(crate) fn is_static(&self) -> bool {
        !self.parts.iter().any(|p| matches!(p, Part::Attribute(_)))
    }

    /// The attribute names of the placeholders.
    fn attributes(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Attribute(a) => Some(a.as_str()),
            Part::Text(_) => None,
        })
    }

    /// The path with no placeholder filled (for a static path, the path itself).
    pub(crate) fn text(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Attribute(a) => format!("{{{a}}}"),
            })
            .collect()
    }
}

/// Makes a value's text safe as (part of) a file name. See the [module docs](self).
pub(crate) fn sanitize(text: &str, out: &mut String) {
    if text.is_empty() {
        out.push_str("_empty");
        return;
    }
    let start = out.len();
    for (i, c) in text.char_indices() {
        if out.len() - start + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        let bad = matches!(
            c,
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' | '[' | ']'
        ) || c.is_control()
            || (i == 0 && c == '.');
        out.push(if bad { '_' } else { c });
    }
}

/// The name of part `n` (2, 3...) of `path`: `a/b.csv` -> `a/b.part2.csv`,
/// `a/b.csv.gz` -> `a/b.part2.csv.gz`, `a/b` -> `a/b.part2`.
pub(crate) fn part_path(path: &str, n: u32) -> String {
    let name_start = path.rfind('/').map_or(0, |i| i + 1);
    let (stem_end, gz) = match path.strip_suffix(".gz") {
        Some(rest) if rest.len() > name_start => (rest.len(), true),
        _ => (path.len(), false),
    };
    let name = &path[name_start..stem_end];
    let ext_at = match name.rfind('.') {
        Some(i) if i > 0 => name_start + i,
        _ => stem_end,
    };
    format!(
        "{}.part{n}{}{}",
        &path[..ext_at],
        &path[ext_at..stem_end],
        if gz { ".gz" } else { "" }
    )
}

struct OpenFile<T> {
    file: T,
    last_used: u64,
}

/// Writes features to the files a [`PathTemplate`] names. See the [module docs](self).
pub(crate) struct Partitioned<F: FileFormat> {
    template: PathTemplate,
    /// The path, when it has no placeholder.
    static_path: Option<String>,
    format: F,
    max_open: usize,
    /// Open files by partition path.
    open: HashMap<String, OpenFile<F::File>>,
    /// Files opened so far per partition path (1: only the first).
    parts: HashMap<String, u32>,
    /// Finished files waiting for the commit.
    pending: Vec<AtomicWriter>,
    /// For each schema seen last, the positions of the placeholder attributes.
    lookup: Option<(Arc<Schema>, Vec<Option<usize>>)>,
    key: String,
    tick: u64,
    /// Features written.
    pub(crate) written: u64,
    /// The most files open at once (tested against `max_open`).
    pub(crate) max_open_seen: usize,
}

impl<F: FileFormat> Partitioned<F> {
    /// Writes through `format` to the files `template` names, at most `max_open` at once.
    pub(crate) fn new(template: PathTemplate, format: F, max_open: usize) -> Self {
        Partitioned {
            static_path: template.is_static().then(|| template.text()),
            template,
            format,
            max_open: max_open.max(1),
            open: HashMap::new(),
            parts: HashMap::new(),
            pending: Vec::new(),
            lookup: None,
            key: String::new(),
            tick: 0,
            written: 0,
            max_open_seen: 0,
        }
    }

    /// Writes to the one file `path` instead (a folder of parts names its file only when
    /// the task is known). Only before anything was written.
    pub(crate) fn retarget(&mut self, path: String) {
        debug_assert!(self.open.is_empty() && self.parts.is_empty() && self.written == 0);
        self.template = PathTemplate {
            parts: vec![Part::Text(path.clone())],
        };
        self.static_path = Some(path);
    }

    /// Writes a batch: to one file in one go when the path has no placeholder, else
    /// feature by feature to each one's partition.
    pub(crate) fn write_batch(
        &mut self,
        batch: Vec<Feature>,
        ctx: &NodeContext,
    ) -> Result<(), ActionError> {
        let (Some(path), Some(first)) = (self.static_path.clone(), batch.first()) else {
            for f in &batch {
                self.write(f)?;
            }
            return Ok(());
        };
        let n = batch.len() as u64;
        self.open_for(&path, first)?;
        if let Some(open) = self.open.get_mut(&path) {
            self.format.write_batch(&mut open.file, batch, ctx)?;
        }
        self.written += n;
        Ok(())
    }

    /// Writes one feature to its partition's file.
    pub(crate) fn write(&mut self, f: &Feature) -> Result<(), ActionError> {
        self.render(f);
        let key = self.key.clone();
        self.open_for(&key, f)?;
        if let Some(open) = self.open.get_mut(&key) {
            self.format.write(&mut open.file, f)?;
        }
        self.written += 1;
        Ok(())
    }

    /// Makes sure partition `key` has an open file (opened with `first` as its first
    /// feature), and marks it used now.
    fn open_for(&mut self, key: &str, first: &Feature) -> Result<(), ActionError> {
        self.tick += 1;
        if let Some(open) = self.open.get_mut(key) {
            open.last_used = self.tick;
            return Ok(());
        }
        let file = self.open_file(key, first)?;
        self.open.insert(
            key.to_string(),
            OpenFile {
                file,
                last_used: self.tick,
            },
        );
        self.max_open_seen = self.max_open_seen.max(self.open.len());
        Ok(())
    }

    /// The partition path of `f` into `self.key`.
    fn render(&mut self, f: &Feature) {
        self.key.clear();
        if let Some(path) = &self.static_path {
            self.key.push_str(path);
            return;
        }
        let stale = match &self.lookup {
            Some((schema, _)) => !Arc::ptr_eq(schema, f.schema()),
            None => true,
        };
        if stale {
            let slots = self
                .template
                .attributes()
                .map(|a| f.schema().index_of(a))
                .collect();
            self.lookup = Some((f.schema().clone(), slots));
        }
        let slots = self
            .lookup
            .as_ref()
            .map(|(_, s)| s.as_slice())
            .unwrap_or(&[]);
        let mut slot = slots.iter();
        let mut text = String::new();
        for part in &self.template.parts {
            match part {
                Part::Text(t) => self.key.push_str(t),
                Part::Attribute(_) => {
                    match slot.next().copied().flatten().map(|i| &f.values()[i]) {
                        None | Some(sluice_runtime::Value::Null) => self.key.push_str("_null"),
                        Some(v) => {
                            use std::fmt::Write as _;
                            text.clear();
                            let _ = write!(text, "{v}");
                            sanitize(&text, &mut self.key);
                        }
                    }
                }
            }
        }
    }

    /// Opens the next file of partition `key`, finishing the least recently used open file
    /// first when `max_open` are open.
    fn open_file(&mut self, key: &str, first: &Feature) -> Result<F::File, ActionError> {
        if self.open.len() >= self.max_open {
            let oldest = self
                .open
                .iter()
                .min_by_key(|(_, o)| o.last_used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest
                && let Some(o) = self.open.remove(&oldest)
            {
                self.pending.push(self.format.finish(o.file)?);
            }
        }
        let n = self.parts.entry(key.to_string()).or_insert(0);
        *n += 1;
        let path = if *n == 1 {
            key.to_string()
        } else {
            part_path(key, *n)
        };
        self.format.open(&path, first)
    }

    /// Number of files open now.
    #[cfg(test)]
    pub(crate) fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Finishes every open file (in path order); a path without placeholders that received
    /// nothing still gets its (empty) file.
    pub(crate) fn finish(&mut self) -> Result<(), ActionError> {
        let mut open: Vec<(String, OpenFile<F::File>)> = self.open.drain().collect();
        open.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, o) in open {
            self.pending.push(self.format.finish(o.file)?);
        }
        if let Some(path) = &self.static_path
            && self.parts.is_empty()
        {
            self.pending.push(self.format.empty(path)?);
        }
        Ok(())
    }

    /// Files finished so far (all of them after [`Partitioned::finish`]).
    pub(crate) fn files(&self) -> usize {
        self.pending.len()
    }

    /// Moves every finished file into place.
    pub(crate) fn commit(&mut self) -> Result<(), ActionError> {
        for w in self.pending.drain(..) {
            w.commit()?;
        }
        Ok(())
    }

    /// Drops every file, open or finished: their temporary files are removed.
    pub(crate) fn abort(&mut self) {
        self.open.clear();
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_runtime::Value;
    use std::io::{Read, Write};

    /// Writes one line per feature: the value of `v`.
    struct Lines;

    impl FileFormat for Lines {
        type File = AtomicWriter;
        fn open(&mut self, path: &str, _first: &Feature) -> Result<AtomicWriter, ActionError> {
            Ok(AtomicWriter::create(path)?)
        }
        fn write(&mut self, file: &mut AtomicWriter, f: &Feature) -> Result<(), ActionError> {
            writeln!(file, "{}", f.get("v").unwrap()).map_err(|e| ActionError::io("w", e))
        }
        fn finish(&mut self, file: AtomicWriter) -> Result<AtomicWriter, ActionError> {
            Ok(file)
        }
        fn empty(&mut self, path: &str) -> Result<AtomicWriter, ActionError> {
            Ok(AtomicWriter::create(path)?)
        }
    }

    fn read(location: &str) -> String {
        let mut s = String::new();
        sluice_runtime::store::open_read(location)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    #[test]
    fn templates_parse_and_reject_bad_braces() {
        let t = PathTemplate::parse("out/{a}/x-{ b }.csv").unwrap();
        assert!(!t.is_static());
        assert_eq!(t.attributes().collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(t.text(), "out/{a}/x-{b}.csv");
        let t = PathTemplate::parse("out/{{lit}}.csv").unwrap();
        assert!(t.is_static());
        assert_eq!(t.text(), "out/{lit}.csv");
        assert!(
            PathTemplate::parse("out/{a.csv")
                .unwrap_err()
                .contains("unclosed")
        );
        assert!(
            PathTemplate::parse("out/{}.csv")
                .unwrap_err()
                .contains("empty")
        );
        assert!(
            PathTemplate::parse("out/a}.csv")
                .unwrap_err()
                .contains("unmatched")
        );
    }

    #[test]
    fn values_become_safe_names_and_parts_keep_extensions() {
        let clean = |s: &str| {
            let mut out = String::new();
            sanitize(s, &mut out);
            out
        };
        assert_eq!(clean("../etc/passwd"), "_._etc_passwd");
        assert_eq!(clean(".."), "_.");
        assert_eq!(clean("a:b*c?\n"), "a_b_c__");
        assert_eq!(clean(""), "_empty");
        assert_eq!(clean("Zoë"), "Zoë");
        assert_eq!(clean(&"é".repeat(150)).len(), 200);
        assert_eq!(part_path("out/b.csv", 2), "out/b.part2.csv");
        assert_eq!(part_path("out/b.csv.gz", 3), "out/b.part3.csv.gz");
        assert_eq!(part_path("out.d/b", 2), "out.d/b.part2");
        assert_eq!(part_path("a.b.jsonl", 2), "a.b.part2.jsonl");
    }

    #[test]
    fn at_most_max_open_files_and_reopened_partitions_get_parts() {
        let mut p = Partitioned::new(
            PathTemplate::parse("memory://partition/lru/{cat}.txt").unwrap(),
            Lines,
            2,
        );
        let schema = Schema::new(["cat", "v"]);
        // a b c a d a b with two open files: `c` closes `a`, the second `a` closes `b` and
        // opens a.part2, `d` closes `c`, the third `a` finds a.part2 open, the second `b`
        // closes `d` and opens b.part2.
        for (i, cat) in ["a", "b", "c", "a", "d", "a", "b"].iter().enumerate() {
            let f = Feature::new(
                i as u64,
                schema.clone(),
                vec![Value::from(*cat), Value::Int(i as i64)],
            );
            p.write(&f).unwrap();
            assert!(p.open_count() <= 2);
        }
        // A feature with no `cat` goes to `_null`.
        p.write(&Feature::from_pairs(9, [("v", Value::Int(9))]))
            .unwrap();
        assert_eq!(p.max_open_seen, 2);
        p.finish().unwrap();
        assert!(
            sluice_runtime::store::open_read("memory://partition/lru/a.txt").is_err(),
            "nothing is visible before the commit"
        );
        p.commit().unwrap();
        let base = "memory://partition/lru";
        assert_eq!(read(&format!("{base}/a.txt")), "0\n");
        assert_eq!(read(&format!("{base}/a.part2.txt")), "3\n5\n");
        assert_eq!(read(&format!("{base}/b.txt")), "1\n");
        assert_eq!(read(&format!("{base}/b.part2.txt")), "6\n");
        assert_eq!(read(&format!("{base}/c.txt")), "2\n");
        assert_eq!(read(&format!("{base}/d.txt")), "4\n");
        assert_eq!(read(&format!("{base}/_null.txt")), "9\n");
        assert_eq!(p.written, 8);
    }

    #[test]
    fn abort_publishes_nothing_and_static_paths_get_an_empty_file() {
        let mut p = Partitioned::new(
            PathTemplate::parse("memory://partition/abort/{cat}.txt").unwrap(),
            Lines,
            1,
        );
        for cat in ["x", "y", "x"] {
            p.write(&Feature::from_pairs(
                0,
                [("cat", Value::from(cat)), ("v", Value::Int(1))],
            ))
            .unwrap();
        }
        p.abort();
        assert!(
            sluice_runtime::store::list("memory://partition/abort/*")
                .unwrap()
                .is_empty()
        );
        let mut p = Partitioned::new(
            PathTemplate::parse("memory://partition/static.txt").unwrap(),
            Lines,
            4,
        );
        p.finish().unwrap();
        assert_eq!(p.files(), 1);
        p.commit().unwrap();
        assert_eq!(read("memory://partition/static.txt"), "");
    }
}
