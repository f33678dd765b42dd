//! Tests of concurrent file reading.

use super::*;
use crate::{Schema, Slice, Value};
use std::io::Read;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fake reader: each file holds a row count; rows become features `file`, `row`. A file
/// whose content is `fail` fails; `slow` files emit many chunks. With `splits`, it reads
/// only the rows of its part (`part.range(rows)`); it records the parts it was given.
struct Counting {
    schema: Arc<Schema>,
    active: AtomicUsize,
    max_active: AtomicUsize,
    splits: bool,
    parts: parking_lot::Mutex<Vec<(String, Slice)>>,
}

impl FileSource for Counting {
    fn read_file(
        &self,
        location: &str,
        _ctx: &NodeContext,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError> {
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_active.fetch_max(now, Ordering::SeqCst);
        let mut text = String::new();
        store::open_read(location)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        let result = (|| {
            if text == "fail" {
                return Err(ActionError::data(Some(location.to_string()), "bad file"));
            }
            let n: i64 = text.parse().unwrap();
            let part = out.part();
            self.parts.lock().push((location.to_string(), part));
            let rows = part.range(n as u64);
            for row in rows.start as i64..rows.end as i64 {
                out.emit(Feature::new(
                    99,
                    self.schema.clone(),
                    vec![Value::from(location), Value::Int(row)],
                ))?;
            }
            Ok(())
        })();
        self.active.fetch_sub(1, Ordering::SeqCst);
        result
    }

    fn splits_files(&self) -> bool {
        self.splits
    }
}

fn put(location: &str, text: &str) {
    let mut w = store::AtomicWriter::create(location).unwrap();
    w.write_all(text.as_bytes()).unwrap();
    w.commit().unwrap();
}

fn counting() -> Counting {
    Counting {
        schema: Schema::new(["file", "row"]),
        active: AtomicUsize::new(0),
        max_active: AtomicUsize::new(0),
        splits: false,
        parts: parking_lot::Mutex::new(Vec::new()),
    }
}

fn run(dir: &str, read_ahead: Option<usize>) -> (Result<(), ActionError>, Vec<Feature>, usize) {
    let src = counting();
    let mut out = Emitter::buffer(1);
    let r =
        Files::new(dir)
            .read_ahead(read_ahead)
            .read(&src, &NodeContext::standalone("t"), &mut out);
    (
        r,
        out.into_buffers().remove(0),
        src.max_active.load(Ordering::SeqCst),
    )
}

#[test]
fn concurrent_reads_emit_in_file_order_with_sequential_ids() {
    // Sizes chosen so later files are much smaller than earlier ones (they finish first).
    let sizes = [5000, 3, 2500, 0, 1, 4000, 7, 2];
    for (i, n) in sizes.iter().enumerate() {
        put(&format!("memory://input/order/f{i}.txt"), &n.to_string());
    }
    let (seq_r, seq, seq_active) = run("memory://input/order/*.txt", Some(1));
    seq_r.unwrap();
    assert_eq!(seq_active, 1);
    let (par_r, par, par_active) = run("memory://input/order/*.txt", None);
    par_r.unwrap();
    assert!(par_active <= 4, "read-ahead of the standalone context");
    assert_eq!(seq.len(), sizes.iter().sum::<usize>());
    let key = |f: &Feature| (f.id(), f.values().to_vec());
    assert_eq!(
        seq.iter().map(key).collect::<Vec<_>>(),
        par.iter().map(key).collect::<Vec<_>>()
    );
    assert_eq!(
        par.iter().map(Feature::id).collect::<Vec<_>>(),
        (0..par.len() as u64).collect::<Vec<_>>()
    );
    assert!(Arc::ptr_eq(par[0].schema(), par[par.len() - 1].schema()));
}

#[test]
fn a_failing_file_fails_after_the_earlier_files_were_emitted() {
    put("memory://input/fail/a.txt", "3000");
    put("memory://input/fail/b.txt", "fail");
    put("memory://input/fail/c.txt", "10");
    for read_ahead in [Some(1), None] {
        let (r, got, _) = run("memory://input/fail/*.txt", read_ahead);
        match r {
            Err(ActionError::Data { location, .. }) => {
                assert_eq!(location.as_deref(), Some("memory://input/fail/b.txt"))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(got.len(), 3000, "all of a.txt, nothing of c.txt");
    }
}

#[test]
fn cancel_stops_the_workers() {
    for i in 0..6 {
        put(&format!("memory://input/cancel/f{i}.txt"), "100000");
    }
    let src = counting();
    let ctx = NodeContext::standalone("t");
    ctx.cancel.cancel();
    let mut out = Emitter::buffer(1);
    let r = Files::new("memory://input/cancel/*.txt").read(&src, &ctx, &mut out);
    assert!(matches!(r, Err(ActionError::Cancelled)), "{r:?}");
}

#[test]
fn no_match_is_not_found() {
    let (r, _, _) = run("memory://input/none/*.txt", None);
    match r {
        Err(ActionError::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_folder_or_glob_gives_only_the_extensions_taken() {
    put("memory://input/ext/a.txt", "2");
    put("memory://input/ext/b.TXT.gz", "fail");
    put("memory://input/ext/c.dat", "fail");
    put("memory://input/ext/d.txt", "1");
    let ctx = NodeContext::standalone("t");
    let read = |files: Files| {
        let mut out = Emitter::buffer(1);
        let mut source = FileReader::new(files, counting());
        source
            .run(&ctx, &mut out)
            .map(|()| out.into_buffers().remove(0).len())
    };
    let txt = Files::new("memory://input/ext").extensions(["txt"]);
    assert_eq!(read(txt).unwrap(), 3);
    // A file named on its own is read whatever its name.
    let named = Files::new("memory://input/ext/c.dat").extensions(["txt"]);
    assert!(matches!(read(named), Err(ActionError::Data { .. })));
    match read(Files::new("memory://input/ext/*").extensions(["csv"])) {
        Err(ActionError::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// The parts a [`Counting`] reader was given, by file.
type Parts = Vec<(String, Slice)>;

/// Reads `path` as slice `slice` with a [`Counting`] reader: the `(file, row)` pairs, and the
/// parts the reader was given.
fn read_slice(
    path: &str,
    slice: Slice,
    splits: bool,
    read_ahead: Option<usize>,
) -> Result<(Vec<(String, i64)>, Parts), ActionError> {
    let src = Counting {
        splits,
        ..counting()
    };
    let ctx = NodeContext::standalone("t").with_slice(slice);
    let mut out = Emitter::buffer(1);
    Files::new(path)
        .read_ahead(read_ahead)
        .read(&src, &ctx, &mut out)?;
    let got = out.into_buffers().remove(0);
    let ids: Vec<u64> = got.iter().map(Feature::id).collect();
    assert_eq!(ids, (0..got.len() as u64).collect::<Vec<_>>(), "ids from 0");
    let rows = got
        .iter()
        .map(|f| match (&f.values()[0], &f.values()[1]) {
            (Value::String(file), Value::Int(row)) => (file.to_string(), *row),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    Ok((rows, src.parts.into_inner()))
}

#[test]
fn slices_of_many_files_read_files_by_index_each_whole() {
    let sizes = [3, 0, 2500, 1, 7];
    for (i, n) in sizes.iter().enumerate() {
        put(&format!("memory://input/slices/f{i}.txt"), &n.to_string());
    }
    let path = "memory://input/slices/*.txt";
    for splits in [false, true] {
        for read_ahead in [Some(1), None] {
            let (whole, _) = read_slice(path, Slice::WHOLE, splits, read_ahead).unwrap();
            assert_eq!(whole.len(), sizes.iter().sum::<usize>());
            for n in 1..=8u64 {
                let mut joined = Vec::new();
                for i in 0..n {
                    let slice = Slice::new(i, n).unwrap();
                    let (rows, parts) = read_slice(path, slice, splits, read_ahead).unwrap();
                    // The files of this slice: the listing's `index_range`, in order.
                    let files: Vec<String> = parts.iter().map(|(l, _)| l.clone()).collect();
                    let mut sorted = files.clone();
                    sorted.sort();
                    assert_eq!(files.len(), sorted.len());
                    let expected: Vec<String> = slice
                        .index_range(sizes.len())
                        .map(|k| format!("memory://input/slices/f{k}.txt"))
                        .collect();
                    assert_eq!(sorted, expected, "slice {slice}");
                    assert!(
                        parts.iter().all(|(_, p)| *p == Slice::WHOLE),
                        "each file of a list is read whole: {parts:?}"
                    );
                    joined.extend(rows);
                }
                assert_eq!(
                    joined, whole,
                    "n {n}, splits {splits}, read-ahead {read_ahead:?}"
                );
            }
        }
    }
}

#[test]
fn one_file_is_split_only_by_a_reader_that_splits_files() {
    put("memory://input/one/only.txt", "10");
    let path = "memory://input/one/only.txt";
    let (whole, parts) = read_slice(path, Slice::WHOLE, true, None).unwrap();
    assert_eq!(whole.len(), 10);
    assert_eq!(parts[0].1, Slice::WHOLE);
    for n in 1..=13u64 {
        let mut split = Vec::new();
        let mut unsplit = Vec::new();
        for i in 0..n {
            let slice = Slice::new(i, n).unwrap();
            // A reader that splits gets this slice as the file's part.
            let (rows, parts) = read_slice(path, slice, true, None).unwrap();
            assert_eq!(parts, vec![(path.to_string(), slice)]);
            split.extend(rows);
            // Another reads it whole in the first slice, and is not called in the others.
            let (rows, parts) = read_slice(path, slice, false, None).unwrap();
            if slice.is_first() {
                assert_eq!(parts, vec![(path.to_string(), Slice::WHOLE)]);
                assert_eq!(rows, whole);
            } else {
                assert!(parts.is_empty() && rows.is_empty(), "slice {slice}");
            }
            unsplit.extend(rows);
        }
        assert_eq!(split, whole, "n {n}");
        assert_eq!(unsplit, whole, "n {n}");
    }
}

#[test]
fn every_slice_reports_a_path_that_matches_nothing() {
    for slice in [
        Slice::WHOLE,
        Slice::new(0, 3).unwrap(),
        Slice::new(2, 3).unwrap(),
    ] {
        match read_slice("memory://input/slices-none/*.txt", slice, false, None) {
            Err(ActionError::Io { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn a_cancelled_slice_stops() {
    for i in 0..6 {
        put(&format!("memory://input/cancel-slice/f{i}.txt"), "100000");
    }
    let src = counting();
    let ctx = NodeContext::standalone("t").with_slice(Slice::new(1, 2).unwrap());
    ctx.cancel.cancel();
    let mut out = Emitter::buffer(1);
    let r = Files::new("memory://input/cancel-slice/*.txt").read(&src, &ctx, &mut out);
    assert!(matches!(r, Err(ActionError::Cancelled)), "{r:?}");
}
