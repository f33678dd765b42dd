//! Zip archives read as folders: `data/parcels.zip!/parcels.shp` names a member,
//! `data/parcels.zip!/*.shp` globs members, and `data/parcels.zip!/` lists them all.
//!
//! The archive itself is any location [`open_seekable`] reads (local,
//! `memory://`, object stores). A member read from start to end ([`open_read`]) is inflated
//! on a thread of its own, a megabyte or two ahead of the reader; one read at random
//! offsets ([`open_seekable`], `local_file`) is first extracted to an unnamed temporary file
//! that the system removes when it is closed (even if the process is killed), so a member
//! of any size costs disk, not memory.
//!
//! [`open_read`]: super::open_read

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use super::error::StorageError;
use super::list::FileEntry;
use super::seekable::{SeekableReader, open_seekable};

/// What separates an archive's location from the member inside it.
pub const MEMBER_SEPARATOR: &str = "!/";

/// Splits `data/x.zip!/dir/a.shp` into the archive (`data/x.zip`) and the member path
/// (`dir/a.shp`, possibly empty or a glob). `None` when the location names no member.
pub fn split(location: &str) -> Option<(&str, &str)> {
    let at = location.find(MEMBER_SEPARATOR)?;
    let (zip, member) = (&location[..at], &location[at + MEMBER_SEPARATOR.len()..]);
    zip.to_ascii_lowercase()
        .ends_with(".zip")
        .then_some((zip, member))
}

fn open(zip: &str) -> Result<zip::ZipArchive<SeekableReader>, StorageError> {
    let reader = open_seekable(zip)?;
    zip::ZipArchive::new(reader)
        .map_err(|e| StorageError::bad_location(zip, format!("not a readable zip archive: {e}")))
}

/// Whether a member is one a listing shows: a file, not a folder, and not the resource
/// forks macOS adds (`__MACOSX/`, `._name`).
fn listed(name: &str) -> bool {
    !name.ends_with('/')
        && !name.starts_with("__MACOSX/")
        && !name.rsplit('/').next().is_some_and(|n| n.starts_with("._"))
}

/// The members of `zip` that `pattern` matches (all of them when it is empty; `*` does not
/// cross `/`, `**` does), as `zip!/member` locations in archive order.
pub(crate) fn list(zip: &str, pattern: &str) -> Result<Vec<FileEntry>, StorageError> {
    let location = format!("{zip}{MEMBER_SEPARATOR}{pattern}");
    let mut archive = open(zip)?;
    let matcher =
        if pattern.is_empty() || pattern.ends_with('/') {
            None
        } else {
            Some(glob::Pattern::new(pattern).map_err(|e| {
                StorageError::bad_location(&location, format!("bad glob pattern: {e}"))
            })?)
        };
    let options = glob::MatchOptions {
        require_literal_separator: true,
        ..Default::default()
    };
    let mut found = Vec::new();
    for i in 0..archive.len() {
        let (name, size) = match archive.by_index_raw(i) {
            Ok(entry) => match entry.name() {
                Ok(name) => (name.into_owned(), entry.size()),
                Err(_) => continue,
            },
            Err(e) => {
                return Err(StorageError::bad_location(
                    zip,
                    format!("reading member {i} of the archive: {e}"),
                ));
            }
        };
        let take = listed(&name)
            && match &matcher {
                None => name.starts_with(pattern),
                Some(m) => m.matches_with(&name, options),
            };
        if take {
            found.push(FileEntry {
                location: format!("{zip}{MEMBER_SEPARATOR}{name}"),
                size,
                modified: None,
            });
        }
    }
    Ok(found)
}

/// The error for a member `zip` does not hold, listing (some of) what it holds.
fn no_member(
    archive: &zip::ZipArchive<SeekableReader>,
    zip: &str,
    member: &str,
    location: &str,
) -> StorageError {
    let names: Vec<String> = archive
        .file_names()
        .filter_map(Result::ok)
        .filter(|n| listed(n))
        .map(|n| n.into_owned())
        .collect();
    let shown = names.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
    let more = if names.len() > 8 { ", ..." } else { "" };
    StorageError::bad_location(
        location,
        format!("{zip} has no member {member} (it holds: {shown}{more})"),
    )
}

/// How much of a member one message of [`stream`] carries.
const STREAM_CHUNK: usize = 1 << 20;

/// Streams `member` of `zip`: a thread of its own inflates it, at most two chunks ahead of
/// the reader, so inflating overlaps with whatever the reader does with the bytes. The
/// thread ends when the member does, on an error (passed on to the reader), or when the
/// reader is dropped.
pub(crate) fn stream(
    zip: &str,
    member: &str,
    location: &str,
) -> Result<Box<dyn Read + Send>, StorageError> {
    let mut archive = open(zip)?;
    if archive.index_for_name(member).is_none() {
        return Err(no_member(&archive, zip, member, location));
    }
    let (tx, rx) = crossbeam_channel::bounded::<std::io::Result<Vec<u8>>>(2);
    let name = member.to_string();
    let inflate = move || {
        let mut entry = match archive.by_name(&name) {
            Ok(entry) => entry,
            Err(e) => {
                let _ = tx.send(Err(std::io::Error::other(e)));
                return;
            }
        };
        loop {
            let mut chunk = vec![0u8; STREAM_CHUNK];
            let mut filled = 0;
            while filled < chunk.len() {
                match entry.read(&mut chunk[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
            chunk.truncate(filled);
            let end = chunk.is_empty();
            // An empty chunk says the member ended (a closed channel alone could be a
            // thread that died).
            if tx.send(Ok(chunk)).is_err() || end {
                return;
            }
        }
    };
    std::thread::Builder::new()
        .name("sluice-unzip".into())
        .spawn(inflate)
        .map_err(|e| StorageError::io("reading", location, e))?;
    Ok(Box::new(ChunkStream {
        rx,
        current: Vec::new(),
        at: 0,
        ended: false,
    }))
}

/// The reading end of [`stream`].
struct ChunkStream {
    rx: crossbeam_channel::Receiver<std::io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
    ended: bool,
}

impl Read for ChunkStream {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.current.len() {
            if self.ended || out.is_empty() {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => self.ended = true,
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(std::io::Error::other(
                        "the thread inflating the zip member stopped",
                    ));
                }
            }
        }
        let n = out.len().min(self.current.len() - self.at);
        out[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Extracts `member` of `zip` to an unnamed temporary file, positioned at its start.
/// `location` (the whole `zip!/member`) names it in errors.
pub(crate) fn extract(zip: &str, member: &str, location: &str) -> Result<File, StorageError> {
    let mut archive = open(zip)?;
    if archive.index_for_name(member).is_none() {
        return Err(no_member(&archive, zip, member, location));
    }
    let mut entry = match archive.by_name(member) {
        Ok(entry) => entry,
        Err(e) => {
            return Err(StorageError::bad_location(
                location,
                format!("reading the member: {e}"),
            ));
        }
    };
    let mut file = tempfile::tempfile().map_err(|e| StorageError::io("extracting", location, e))?;
    std::io::copy(&mut entry, &mut file)
        .map_err(|e| StorageError::io("extracting", location, e))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| StorageError::io("extracting", location, e))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, SeekFrom, Write};

    use crate::store::{AtomicWriter, list, local_file, open_read, open_seekable};

    /// A zip at `location` holding `members` (name, bytes), the first stored, the rest
    /// deflated.
    fn zip_at(location: &str, members: &[(&str, &[u8])]) {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut buf);
        for (i, (name, bytes)) in members.iter().enumerate() {
            let method = if i == 0 {
                zip::CompressionMethod::Stored
            } else {
                zip::CompressionMethod::Deflated
            };
            let options = zip::write::SimpleFileOptions::default().compression_method(method);
            w.start_file(*name, options).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap();
        let mut out = AtomicWriter::create(location).unwrap();
        out.write_all(buf.get_ref()).unwrap();
        out.commit().unwrap();
    }

    fn read_all(location: &str) -> Vec<u8> {
        let mut v = Vec::new();
        open_read(location).unwrap().read_to_end(&mut v).unwrap();
        v
    }

    #[test]
    fn members_are_listed_globbed_and_read() {
        let big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        zip_at(
            "memory://zip/a.zip",
            &[
                ("parcels.shp", b"shp bytes"),
                ("parcels.dbf", &big),
                ("sub/roads.shp", b"roads"),
                ("__MACOSX/._parcels.shp", b"fork"),
                ("sub/", b""),
            ],
        );
        let names =
            |l: &str| -> Vec<String> { list(l).unwrap().into_iter().map(|e| e.location).collect() };
        assert_eq!(
            names("memory://zip/a.zip!/"),
            [
                "memory://zip/a.zip!/parcels.shp",
                "memory://zip/a.zip!/parcels.dbf",
                "memory://zip/a.zip!/sub/roads.shp"
            ]
        );
        assert_eq!(
            names("memory://zip/a.zip!/*.shp"),
            ["memory://zip/a.zip!/parcels.shp"]
        );
        assert_eq!(
            names("memory://zip/a.zip!/**/*.shp"),
            [
                "memory://zip/a.zip!/parcels.shp",
                "memory://zip/a.zip!/sub/roads.shp"
            ]
        );
        assert_eq!(names("memory://zip/a.zip!/*.gpkg"), Vec::<String>::new());
        let sizes: Vec<u64> = list("memory://zip/a.zip!/parcels.*")
            .unwrap()
            .iter()
            .map(|e| e.size)
            .collect();
        assert_eq!(sizes, [9, big.len() as u64]);
        assert_eq!(read_all("memory://zip/a.zip!/parcels.shp"), b"shp bytes");
        assert_eq!(read_all("memory://zip/a.zip!/parcels.dbf"), big);
        let mut r = open_seekable("memory://zip/a.zip!/parcels.dbf").unwrap();
        assert_eq!(r.len(), big.len() as u64);
        r.seek(SeekFrom::Start(400_000)).unwrap();
        let mut four = [0u8; 4];
        r.read_exact(&mut four).unwrap();
        assert_eq!(four, 100_000u32.to_le_bytes());
        let local = local_file("memory://zip/a.zip!/sub/roads.shp").unwrap();
        assert!(local.is_copy());
        assert_eq!(std::fs::read(local.path()).unwrap(), b"roads");
        let path = local.path().to_path_buf();
        drop(local);
        assert!(!path.exists(), "the temporary copy is removed");
    }

    #[test]
    fn a_damaged_member_is_an_error_not_a_short_read() {
        let big: Vec<u8> = (0..3_000_000u32)
            .map(|i| (i % 7) as u8 ^ (i >> 12) as u8)
            .collect();
        zip_at(
            "memory://zip/e.zip",
            &[("head.txt", b"h"), ("big.bin", &big)],
        );
        let mut bytes = Vec::new();
        open_read("memory://zip/e.zip")
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        // Flip bytes inside the deflated data (after the first member and the second's
        // local header), keeping the archive's directory intact.
        for at in [200, 300, 400] {
            bytes[at] ^= 0x55;
        }
        let mut w = AtomicWriter::create("memory://zip/e2.zip").unwrap();
        w.write_all(&bytes).unwrap();
        w.commit().unwrap();
        let mut out = Vec::new();
        let read = open_read("memory://zip/e2.zip!/big.bin").and_then(|mut r| {
            r.read_to_end(&mut out)
                .map_err(|e| crate::store::StorageError::io("reading", "e2", e))
        });
        assert!(
            read.is_err(),
            "read {} of {} bytes without an error",
            out.len(),
            big.len()
        );
        // Dropping a stream half way is fine (its thread stops).
        let mut r = open_read("memory://zip/e.zip!/big.bin").unwrap();
        let mut first = [0u8; 10];
        r.read_exact(&mut first).unwrap();
        assert_eq!(first, big[..10]);
        drop(r);
    }

    #[test]
    fn a_missing_member_or_a_file_that_is_no_zip_is_named() {
        zip_at("memory://zip/b.zip", &[("one.csv", b"a\n1\n")]);
        let e = open_read("memory://zip/b.zip!/two.csv").err().unwrap();
        assert_eq!(
            e.to_string(),
            "memory://zip/b.zip!/two.csv: memory://zip/b.zip has no member two.csv (it holds: one.csv)"
        );
        let e = list("memory://zip/b.zip!/two.csv").unwrap_err();
        assert!(e.is_not_found(), "{e}");
        let mut w = AtomicWriter::create("memory://zip/c.zip").unwrap();
        w.write_all(b"this is not a zip").unwrap();
        w.commit().unwrap();
        let e = open_read("memory://zip/c.zip!/x.csv").err().unwrap();
        assert!(
            e.to_string()
                .starts_with("memory://zip/c.zip: not a readable zip archive"),
            "{e}"
        );
        let e = open_read("memory://zip/none.zip!/x.csv").err().unwrap();
        assert!(e.is_not_found(), "{e}");
    }

    #[test]
    fn a_reader_given_a_zip_reads_its_members_with_its_extensions() {
        zip_at(
            "memory://zip/d.zip",
            &[("b.csv", b"x\n"), ("a.csv", b"y\n"), ("readme.txt", b"hi")],
        );
        let files = crate::input::Files::new("memory://zip/d.zip").extensions(["csv"]);
        assert_eq!(
            files.locations(),
            ["memory://zip/d.zip!/b.csv", "memory://zip/d.zip!/a.csv"]
        );
        // A reader that reads zip files itself gets the archive.
        let files = crate::input::Files::new("memory://zip/d.zip").extensions(["zip"]);
        assert_eq!(files.locations(), ["memory://zip/d.zip"]);
    }

    #[test]
    fn seekable_reads_fetch_only_what_is_read() {
        let bytes: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = AtomicWriter::create("memory://seek/big.bin").unwrap();
        w.write_all(&bytes).unwrap();
        w.commit().unwrap();
        let mut r = open_seekable("memory://seek/big.bin").unwrap();
        assert_eq!(r.len(), 4_000_000);
        let mut head = [0u8; 8];
        r.read_exact(&mut head).unwrap();
        assert_eq!(head, bytes[..8]);
        r.seek(SeekFrom::End(-10)).unwrap();
        let mut tail = Vec::new();
        r.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, bytes[bytes.len() - 10..]);
        r.seek(SeekFrom::Start(2_000_000)).unwrap();
        let mut mid = vec![0u8; 100_000];
        r.read_exact(&mut mid).unwrap();
        assert_eq!(mid, bytes[2_000_000..2_100_000]);
        let fetched = r.bytes_fetched();
        assert!(
            fetched < 300_000,
            "fetched {fetched} bytes of 4 MB for 100 kB read"
        );
        assert!(r.seek(SeekFrom::Current(-3_000_000)).is_err());
        // Local files work the same way; a local path is its own local file.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        std::fs::write(&p, &bytes[..1000]).unwrap();
        let loc = p.to_str().unwrap();
        let mut r = open_seekable(loc).unwrap();
        r.seek(SeekFrom::Start(990)).unwrap();
        let mut end = Vec::new();
        r.read_to_end(&mut end).unwrap();
        assert_eq!(end, bytes[990..1000]);
        let local = local_file(loc).unwrap();
        assert!(!local.is_copy());
        assert_eq!(local.path(), p);
        assert!(
            local_file(dir.path().join("nope").to_str().unwrap())
                .unwrap_err()
                .is_not_found()
        );
        assert!(open_seekable("-").is_err());
    }
}
