//! Storage: every read and write of a workflow's data goes through here, on top of opendal.
//!
//! A location is a plain path (`data/in.csv`, relative to the current folder), a `file://`
//! URL, a `memory://` key (one in-memory store per process, for tests and embedders), or,
//! in builds with the `s3` / `gcs` cargo features, `s3://bucket/key` / `gcs://bucket/key`.
//! A workflow that reads `s3://...` needs no code change, only a build with the feature.
//!
//! - [`open_read`] streams a file in large chunks (never whole); [`open_seekable`] reads at
//!   any offset, counting the bytes it fetches; [`local_file`] gives a local path (a
//!   temporary copy where the file is not local);
//! - a zip member is a location of its own (`data/x.zip!/a.shp`, see [`archive`]) for all
//!   of these and for [`list`] (`data/x.zip!/*.shp`);
//! - [`list`] expands a file, a folder or a glob pattern into [`FileEntry`]s;
//! - [`AtomicWriter`] writes to a temporary name and renames on [`AtomicWriter::commit`], so
//!   a failed or cancelled run leaves no partial output; [`Commit`] moves several outputs
//!   into place together, or none;
//! - `-` is standard input to [`open_read`] and [`list`], and standard output to
//!   [`AtomicWriter`] (streamed);
//! - [`stale`] finds and removes what killed processes left behind.
//!
//! opendal's blocking calls run on one small tokio runtime owned by this module, created on
//! first use; node threads block on it. None of these functions may be called from inside an
//! async context.
//!
//! ```
//! use std::io::{Read, Write};
//! use sluice_runtime::store::{AtomicWriter, list, open_read};
//!
//! let mut w = AtomicWriter::create("memory://doc/out.txt")?;
//! w.write_all(b"hello")?;
//! w.commit()?;
//!
//! let mut text = String::new();
//! open_read("memory://doc/out.txt")?.read_to_string(&mut text)?;
//! assert_eq!(text, "hello");
//! assert_eq!(list("memory://doc/*.txt")?.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod archive;
mod claim;
mod commit;
mod error;
mod list;
mod local;
mod location;
mod read;
mod seekable;
pub mod stale;
mod target;
mod write;

pub use claim::set_writer_name;
pub use commit::{Commit, CommitError};
pub use error::{StorageError, to_action_error};
pub use list::{FileEntry, list};
pub use local::{LocalFile, local_file};
pub use location::{STDIO, output_key};
pub(crate) use location::{local_path, split_scheme};
pub use read::{READ_CHUNK, open_read};
pub use seekable::{SEEK_CHUNK, SeekableReader, open_seekable};
pub use write::AtomicWriter;

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::error::ActionError;

    fn read_all(location: &str) -> Vec<u8> {
        let mut v = Vec::new();
        open_read(location).unwrap().read_to_end(&mut v).unwrap();
        v
    }

    fn write_file(location: &str, data: &[u8]) {
        let mut w = AtomicWriter::create(location).unwrap();
        w.write_all(data).unwrap();
        w.commit().unwrap();
    }

    fn names(dir: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_library_writes_the_local_temporary_file_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.db");
        let loc = target.to_str().unwrap();
        let mut w = AtomicWriter::create(loc).unwrap();
        let temp = w.local_temp_file().unwrap().to_path_buf();
        std::fs::write(&temp, b"built by path").unwrap();
        assert!(!target.exists());
        w.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"built by path");
        assert!(!temp.exists());
        // Aborted: neither the target nor the temporary file is left.
        let mut w = AtomicWriter::create(dir.path().join("b.db").to_str().unwrap()).unwrap();
        let temp = w.local_temp_file().unwrap().to_path_buf();
        std::fs::write(&temp, b"x").unwrap();
        w.abort();
        assert!(!temp.exists() && !dir.path().join("b.db").exists());
        // Other stores have no local file: the bytes go through the writer.
        let mut w = AtomicWriter::create("memory://lt/x.db").unwrap();
        assert!(w.local_temp_file().is_none());
    }

    #[test]
    fn memory_write_then_read_back() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        write_file("memory://store-tests/big.bin", &data);
        assert_eq!(read_all("memory://store-tests/big.bin"), data);
    }

    #[test]
    fn file_paths_and_file_urls_write_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/deeper/out.txt");
        let loc = path.to_string_lossy().into_owned();
        // Folders are created as needed; chunks larger than the read chunk come back whole.
        let data: Vec<u8> = (0..(READ_CHUNK * 2 + 17)).map(|i| (i % 7) as u8).collect();
        write_file(&loc, &data);
        assert_eq!(std::fs::read(&path).unwrap(), data);
        assert_eq!(read_all(&loc), data);
        assert_eq!(read_all(&format!("file://{loc}")), data);
    }

    #[test]
    fn missing_file_is_not_found_naming_the_location() {
        let dir = tempfile::tempdir().unwrap();
        let loc = dir.path().join("nope.csv").to_string_lossy().into_owned();
        let e = open_read(&loc).err().unwrap();
        assert!(e.is_not_found(), "{e}");
        assert!(e.to_string().contains("nope.csv"), "{e}");
        let a: ActionError = e.into();
        match a {
            ActionError::Io { context, source } => {
                assert!(context.contains("nope.csv"));
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(open_read("memory://store-tests/missing").is_err());
    }

    #[test]
    fn a_replaced_output_is_never_missing_for_a_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.json");
        let loc = path.to_string_lossy().into_owned();
        write_file(&loc, b"0");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let text = std::fs::read_to_string(&path).expect("the file is always there");
                    assert!(!text.is_empty(), "never half written");
                    reads += 1;
                }
                reads
            })
        };
        for i in 1..=300 {
            let mut w = AtomicWriter::create(&loc).unwrap();
            w.write_all(i.to_string().as_bytes()).unwrap();
            w.commit().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "300");
        // Nothing is left beside it.
        assert_eq!(names(dir.path()), ["manifest.json"]);
    }

    #[test]
    fn an_aborted_output_takes_back_the_folders_made_for_it_and_no_others() {
        let dir = tempfile::tempdir().unwrap();
        let loc = dir
            .path()
            .join("a/b/out.csv")
            .to_string_lossy()
            .into_owned();
        let mut w = AtomicWriter::create(&loc).unwrap();
        w.write_all(&vec![b'x'; 600_000]).unwrap();
        w.flush().unwrap();
        assert!(dir.path().join("a/b").is_dir());
        w.abort();
        assert!(
            !dir.path().join("a").exists(),
            "a/b made for the output stays"
        );

        // A folder that was there before stays; one that holds another file stays too.
        std::fs::create_dir(dir.path().join("kept")).unwrap();
        let loc = dir
            .path()
            .join("kept/new/out.csv")
            .to_string_lossy()
            .into_owned();
        let mut w = AtomicWriter::create(&loc).unwrap();
        w.write_all(&vec![b'x'; 600_000]).unwrap();
        w.flush().unwrap();
        std::fs::write(dir.path().join("kept/new/other.txt"), b"mine").unwrap();
        drop(w);
        assert!(dir.path().join("kept/new/other.txt").is_file());

        // A committed output keeps its folders.
        let loc = dir
            .path()
            .join("c/d/out.csv")
            .to_string_lossy()
            .into_owned();
        let mut w = AtomicWriter::create(&loc).unwrap();
        w.write_all(b"a\n1\n").unwrap();
        w.commit().unwrap();
        assert!(dir.path().join("c/d/out.csv").is_file());
    }

    #[test]
    fn abort_and_drop_leave_no_file_commit_leaves_the_final_one() {
        let dir = tempfile::tempdir().unwrap();
        let loc = dir.path().join("out.csv").to_string_lossy().into_owned();

        let mut w = AtomicWriter::create(&loc).unwrap();
        // More than the write buffer, so a temporary file really exists on disk.
        w.write_all(&vec![b'x'; 600_000]).unwrap();
        w.flush().unwrap();
        assert_eq!(names(dir.path()).len(), 1);
        assert!(names(dir.path())[0].ends_with(".sluice-tmp"));
        w.abort();
        assert!(names(dir.path()).is_empty());

        let mut w = AtomicWriter::create(&loc).unwrap();
        w.write_all(&vec![b'y'; 600_000]).unwrap();
        drop(w);
        assert!(names(dir.path()).is_empty());

        write_file(&loc, b"a,b\n1,2\n");
        assert_eq!(names(dir.path()), vec!["out.csv".to_string()]);
        assert_eq!(std::fs::read(&loc).unwrap(), b"a,b\n1,2\n");

        // An aborted rewrite keeps the committed file as it was.
        let mut w = AtomicWriter::create(&loc).unwrap();
        w.write_all(b"partial").unwrap();
        w.flush().unwrap();
        w.abort();
        assert_eq!(std::fs::read(&loc).unwrap(), b"a,b\n1,2\n");
        assert_eq!(names(dir.path()), vec!["out.csv".to_string()]);
    }

    #[test]
    fn memory_abort_publishes_nothing() {
        let mut w = AtomicWriter::create("memory://store-tests/aborted.txt").unwrap();
        w.write_all(b"nope").unwrap();
        w.flush().unwrap();
        w.abort();
        assert!(open_read("memory://store-tests/aborted.txt").is_err());
    }

    #[test]
    fn empty_output_commits_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let loc = dir.path().join("empty.txt").to_string_lossy().into_owned();
        AtomicWriter::create(&loc).unwrap().commit().unwrap();
        assert_eq!(std::fs::read(&loc).unwrap(), b"");
    }

    #[test]
    fn list_folder_glob_and_single_file() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_string_lossy().into_owned();
        for name in ["b.csv", "a.csv", "c.txt", "sub/d.csv", ".hidden.csv"] {
            std::fs::create_dir_all(dir.path().join(name).parent().unwrap()).unwrap();
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        let locs = |v: Vec<FileEntry>| -> Vec<String> {
            v.into_iter()
                .map(|e| e.location[base.len()..].to_string())
                .collect()
        };

        let folder = list(&base).unwrap();
        assert_eq!(locs(folder.clone()), vec!["/a.csv", "/b.csv", "/c.txt"]);
        assert_eq!(folder[0].size, 5);
        assert!(folder[0].modified.is_some());
        assert_eq!(locs(list(&format!("{base}/")).unwrap()).len(), 3);

        assert_eq!(
            locs(list(&format!("{base}/*.csv")).unwrap()),
            vec!["/a.csv", "/b.csv"]
        );
        assert_eq!(
            locs(list(&format!("{base}/**/*.csv")).unwrap()),
            vec!["/a.csv", "/b.csv", "/sub/d.csv"]
        );
        assert_eq!(
            locs(list(&format!("{base}/[ab].csv")).unwrap()),
            vec!["/a.csv", "/b.csv"]
        );
        assert!(list(&format!("{base}/*.parquet")).unwrap().is_empty());
        assert!(list(&format!("{base}/missing/*.csv")).unwrap().is_empty());

        let one = list(&format!("{base}/c.txt")).unwrap();
        assert_eq!(locs(one), vec!["/c.txt"]);
        assert!(list(&format!("{base}/zzz.csv")).unwrap_err().is_not_found());
        assert!(list(&format!("{base}/[.csv")).is_err());
    }

    #[test]
    fn list_memory_glob_and_prefix() {
        write_file("memory://list-tests/x/1.csv", b"1");
        write_file("memory://list-tests/x/2.csv", b"22");
        write_file("memory://list-tests/x/3.txt", b"333");
        let got = list("memory://list-tests/x/*.csv").unwrap();
        assert_eq!(
            got.iter().map(|e| e.location.as_str()).collect::<Vec<_>>(),
            vec!["memory://list-tests/x/1.csv", "memory://list-tests/x/2.csv"]
        );
        assert_eq!(got[1].size, 2);
        assert_eq!(list("memory://list-tests/x").unwrap().len(), 3);
        assert_eq!(list("memory://list-tests/x/3.txt").unwrap()[0].size, 3);
        assert!(list("memory://list-tests/none").is_err());
        // A glob at the root of the store.
        write_file("memory://list-tests-root.tsv", b"r");
        let root = list("memory://*.tsv").unwrap();
        assert!(
            root.iter()
                .any(|e| e.location == "memory://list-tests-root.tsv"),
            "{root:?}"
        );
    }

    #[test]
    fn relative_locations_stay_relative_in_listings() {
        // The crate folder is the current folder under `cargo test`.
        let got = list("src/store/*.rs").unwrap();
        assert!(
            got.iter().any(|e| e.location == "src/store/mod.rs"),
            "{got:?}"
        );
    }

    #[test]
    fn a_commit_checks_every_target_before_replacing_any() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv").to_string_lossy().into_owned();
        let b = dir.path().join("b.csv").to_string_lossy().into_owned();
        std::fs::write(&a, "old").unwrap();
        let commit = Commit::begin();
        for loc in [&a, &b] {
            let mut w = AtomicWriter::create(loc).unwrap();
            w.write_all(b"new").unwrap();
            w.commit().unwrap();
        }
        assert_eq!(commit.staged(), 2);
        // The second target became a folder after its writer started.
        std::fs::create_dir(&b).unwrap();
        let e = commit.publish().unwrap_err();
        assert_eq!(e.failed_output, 1);
        assert!(e.written.is_empty());
        assert_eq!(e.not_written.len(), 2);
        assert!(e.to_string().contains("is a folder"), "{e}");
        assert!(e.to_string().contains("no output was written"), "{e}");
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old");
        assert_eq!(names(dir.path()), vec!["a.csv", "b.csv"]);
    }

    #[test]
    fn a_failed_rename_puts_back_what_was_already_moved() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv").to_string_lossy().into_owned();
        let fresh = dir.path().join("fresh.csv").to_string_lossy().into_owned();
        let b = dir.path().join("b.csv").to_string_lossy().into_owned();
        std::fs::write(&a, "old").unwrap();
        let commit = Commit::begin();
        let mut b_temp = None;
        for loc in [&a, &fresh, &b] {
            let mut w = AtomicWriter::create(loc).unwrap();
            w.write_all(b"new").unwrap();
            if *loc == b {
                b_temp = w.temp_path().map(|p| p.to_path_buf());
            }
            w.commit().unwrap();
        }
        // The last rename fails: its temporary file is gone.
        std::fs::remove_file(b_temp.unwrap()).unwrap();
        let e = commit.publish().unwrap_err();
        assert_eq!(e.failed_output, 2);
        assert!(e.written.is_empty(), "{e}");
        assert_eq!(e.restored, vec![a.clone(), fresh.clone()]);
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old");
        assert_eq!(names(dir.path()), vec!["a.csv"]);

        // And when all succeed, nothing is left aside.
        let commit = Commit::begin();
        for loc in [&a, &b] {
            let mut w = AtomicWriter::create(loc).unwrap();
            w.write_all(b"new").unwrap();
            w.commit().unwrap();
        }
        assert_eq!(commit.publish().unwrap().len(), 2);
        assert_eq!(names(dir.path()), vec!["a.csv", "b.csv"]);
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new");
    }

    #[test]
    fn two_writers_of_one_output_conflict_until_the_first_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let loc = dir.path().join("x.csv").to_string_lossy().into_owned();
        let dotted = dir.path().join("./x.csv").to_string_lossy().into_owned();
        let first = AtomicWriter::create(&loc).unwrap();
        let e = AtomicWriter::create(&dotted).unwrap_err();
        assert!(matches!(e, StorageError::Conflict { .. }), "{e}");
        assert!(e.to_string().contains("is written by both"), "{e}");
        drop(first);
        AtomicWriter::create(&dotted).unwrap().abort();
        let m = AtomicWriter::create("memory://claims/x").unwrap();
        assert!(AtomicWriter::create("memory://claims/x").is_err());
        drop(m);
    }

    #[test]
    fn storage_errors_are_in_plain_words() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "x").unwrap();
        let loc = dir
            .path()
            .join("file/out.csv")
            .to_string_lossy()
            .into_owned();
        let e = AtomicWriter::create(&loc).unwrap_err().to_string();
        assert!(e.contains(&format!("{loc}: not a directory")), "{e}");
        for internal in ["context", "service", "=>", "os error"] {
            assert!(!e.contains(internal), "{internal:?} in {e}");
        }
        let action: ActionError = AtomicWriter::create(&loc).unwrap_err().into();
        assert_eq!(action.to_string().matches(&loc).count(), 1, "{action}");
        assert!(output_key("a/./b.csv") == output_key("a/b.csv"));
        assert_eq!(output_key("-"), "-");
    }
}
