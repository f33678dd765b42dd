//! Listing: [`list`] a file, a folder or a glob pattern.

use super::error::StorageError;
use super::location::{Resolved, resolve, runtime, split_scheme};

/// One file found by [`list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// The file's location, in the form the caller wrote (a relative path stays relative).
    pub location: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, in microseconds since the epoch, when the backend knows it.
    pub modified: Option<i64>,
}

/// Lists the files a location names, sorted by location.
///
/// - A single file gives itself.
/// - A folder (an existing directory, or a location ending in `/`) gives the files directly
///   inside it; sub-folders are not entered.
/// - A glob pattern (`data/*.csv`, `logs/**/*.csv.gz`, `part-?.csv`; `glob` crate syntax on
///   the path part) gives the matching files; `*` does not cross `/`, `**` does. A pattern
///   that matches nothing gives an empty list.
///
/// A zip member location lists members: `data/x.zip!/` all of them, `data/x.zip!/*.shp` those
/// matching (see [`archive`](super::archive)), in archive order.
///
/// Hidden files (a name starting with `.`, such as the temporary files of an
/// [`AtomicWriter`](super::AtomicWriter) in progress) are skipped in folders and globs.
/// A file or folder that does not exist is [`StorageError::NotFound`]. `-` (standard
/// input) gives itself.
pub fn list(location: &str) -> Result<Vec<FileEntry>, StorageError> {
    if location == super::STDIO {
        return Ok(vec![FileEntry {
            location: location.to_string(),
            size: 0,
            modified: None,
        }]);
    }
    if let Some((zip, member)) = super::archive::split(location) {
        let found = super::archive::list(zip, member)?;
        let literal =
            !member.is_empty() && !member.ends_with('/') && !member.contains(['*', '?', '[']);
        if found.is_empty() && literal {
            return Err(StorageError::NotFound {
                op: "listing",
                location: location.to_string(),
            });
        }
        return Ok(found);
    }
    let (scheme, path) = split_scheme(location);
    let mut found = match path.find(['*', '?', '[']) {
        Some(first_meta) => list_glob(location, scheme, path, first_meta)?,
        None => list_plain(location)?,
    };
    found.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(found)
}

/// A file or a folder.
fn list_plain(location: &str) -> Result<Vec<FileEntry>, StorageError> {
    let r = resolve(location)?;
    if !r.path.is_empty() && !r.path.ends_with('/') {
        let op = blocking(&r, location)?;
        match op.stat(&r.path) {
            Ok(meta) if meta.is_file() => {
                return Ok(vec![entry(location.to_string(), &meta)]);
            }
            Ok(_) => {}
            // Object stores have no folders to stat: a missing key may still be a prefix.
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::backend("listing", location, e)),
        }
        let folder = Resolved {
            op: r.op.clone(),
            path: format!("{}/", r.path),
        };
        let found = list_folder(location, &format!("{location}/"), &folder, None)?;
        if found.is_empty() && !is_dir(&op, &folder.path) {
            return Err(StorageError::NotFound {
                op: "listing",
                location: location.to_string(),
            });
        }
        return Ok(found);
    }
    list_folder(location, location, &r, None)
}

fn is_dir(op: &opendal::blocking::Operator, path: &str) -> bool {
    op.stat(path).map(|m| m.is_dir()).unwrap_or(false)
}

/// A glob: list from the deepest folder without wildcards, keep what matches.
fn list_glob(
    location: &str,
    scheme: &str,
    path: &str,
    first_meta: usize,
) -> Result<Vec<FileEntry>, StorageError> {
    let base_len = path[..first_meta].rfind('/').map_or(0, |i| i + 1);
    let (base, pattern_text) = path.split_at(base_len);
    let pattern = glob::Pattern::new(pattern_text)
        .map_err(|e| StorageError::bad_location(location, format!("bad glob pattern: {e}")))?;
    let written_base = format!("{scheme}{base}");
    let resolve_base = if base.is_empty() && matches!(scheme, "" | "file://") {
        format!("{scheme}./")
    } else {
        written_base.clone()
    };
    let r = resolve(&resolve_base)?;
    let matcher = Matcher {
        pattern,
        recursive: pattern_text.contains('/'),
    };
    match list_folder(location, &written_base, &r, Some(&matcher)) {
        // A glob whose base folder does not exist matches nothing.
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        other => other,
    }
}

struct Matcher {
    pattern: glob::Pattern,
    recursive: bool,
}

/// Lists the files under the folder `r` (whose path ends with `/` or is the root); names are
/// given back as `written_base` + the part below the folder.
fn list_folder(
    location: &str,
    written_base: &str,
    r: &Resolved,
    matcher: Option<&Matcher>,
) -> Result<Vec<FileEntry>, StorageError> {
    let op = blocking(r, location)?;
    let options = opendal::options::ListOptions {
        recursive: matcher.is_some_and(|m| m.recursive),
        ..Default::default()
    };
    let entries = op
        .list_options(&r.path, options)
        .map_err(|e| StorageError::backend("listing", location, e))?;
    let match_options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let mut found = Vec::new();
    for e in entries {
        let meta = e.metadata();
        if meta.is_dir() {
            continue;
        }
        let full = e.path();
        let Some(rel) = full
            .strip_prefix(r.path.as_str())
            .or_else(|| full.strip_prefix(r.path.trim_start_matches('/')))
        else {
            continue;
        };
        if rel.is_empty() || rel.split('/').any(|s| s.starts_with('.')) {
            continue;
        }
        if let Some(m) = matcher
            && !m.pattern.matches_with(rel, match_options)
        {
            continue;
        }
        let name = format!("{written_base}{rel}");
        if meta.is_file() {
            found.push(entry(name, meta));
        } else {
            // Some backends list keys without metadata: ask for it.
            match op.stat(full) {
                Ok(m) if m.is_file() => found.push(entry(name, &m)),
                Ok(_) => {}
                Err(e) if e.kind() == opendal::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::backend("listing", &name, e)),
            }
        }
    }
    Ok(found)
}

fn entry(location: String, meta: &opendal::Metadata) -> FileEntry {
    FileEntry {
        location,
        size: meta.content_length(),
        modified: meta
            .last_modified()
            .map(|t| t.into_inner().as_microsecond()),
    }
}

fn blocking(r: &Resolved, location: &str) -> Result<opendal::blocking::Operator, StorageError> {
    let rt = runtime()?;
    let _guard = rt.enter();
    opendal::blocking::Operator::new(r.op.clone())
        .map_err(|e| StorageError::backend("opening", location, e))
}
