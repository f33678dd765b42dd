//! Locations (`data/in.csv`, `file:///tmp/x`, `memory://t/a.csv`, `s3://bucket/key`) resolved
//! to an opendal operator and a path inside it, plus the small tokio runtime opendal runs on.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use parking_lot::Mutex;

use super::error::StorageError;

/// The tokio runtime every storage call blocks on. Two workers are plenty: the local
/// filesystem work itself runs on tokio's blocking pool, and the callers are node threads.
pub(crate) fn runtime() -> Result<&'static tokio::runtime::Runtime, StorageError> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .max_blocking_threads(16)
                .thread_name("sluice-io")
                // Object stores talk HTTP through this runtime (sockets and timers).
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| StorageError::Runtime(e.clone()))
}

/// A location resolved to an operator and a path inside it.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    /// The operator of the backend.
    pub op: opendal::Operator,
    /// The path inside the operator (no leading `/`; a folder ends with `/`).
    pub path: String,
}

/// The scheme prefix of a location (`memory://`), or `""` for plain paths.
pub(crate) fn split_scheme(location: &str) -> (&str, &str) {
    match location.find("://") {
        // A one-letter "scheme" is a Windows drive (`C://`), not a URL.
        Some(i) if i > 1 && location[..i].chars().all(|c| c.is_ascii_alphanumeric()) => {
            location.split_at(i + 3)
        }
        _ => ("", location),
    }
}

/// Resolves a location. A trailing `/` is kept on the path (it names a folder).
pub(crate) fn resolve(location: &str) -> Result<Resolved, StorageError> {
    let (scheme, rest) = split_scheme(location);
    match scheme {
        "" | "file://" => resolve_fs(location, rest),
        "memory://" => Ok(Resolved {
            op: memory_operator(location)?,
            path: clean_object_path(location, rest)?,
        }),
        "s3://" | "gcs://" | "gs://" => resolve_object_store(location, scheme, rest),
        _ => Err(StorageError::bad_location(
            location,
            format!(
                "unsupported scheme \"{}\" (use a path, file://, memory://, s3:// or gcs://)",
                scheme.trim_end_matches("://")
            ),
        )),
    }
}

/// A local path: made absolute (against the current folder) and normalised lexically; the
/// operator is rooted at the filesystem root (`/`, or the drive on Windows).
fn resolve_fs(location: &str, path: &str) -> Result<Resolved, StorageError> {
    let (root, parts, folder) = lexical(location, path)?;
    let mut rel = parts.join("/");
    if folder && !rel.is_empty() {
        rel.push('/');
    }
    Ok(Resolved {
        op: fs_operator(location, &root)?,
        path: rel,
    })
}

/// A local path made absolute and normalised lexically: the root (`/`, or a drive), the
/// parts below it, and whether it names a folder (ends with a separator).
fn lexical(location: &str, path: &str) -> Result<(PathBuf, Vec<String>, bool), StorageError> {
    if path.is_empty() {
        return Err(StorageError::bad_location(location, "empty path"));
    }
    let folder = path.ends_with('/') || path.ends_with(std::path::MAIN_SEPARATOR);
    let p = Path::new(path);
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| {
                StorageError::bad_location(location, format!("cannot read the current folder: {e}"))
            })?
            .join(p)
    };
    let mut root = PathBuf::new();
    let mut parts: Vec<String> = Vec::new();
    for c in abs.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => root.push(c.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop();
            }
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
        }
    }
    Ok((root, parts, folder))
}

/// The absolute local path of a plain path or `file://` location; `None` for other schemes.
pub(crate) fn local_path(location: &str) -> Option<Result<PathBuf, StorageError>> {
    let (scheme, rest) = split_scheme(location);
    if !matches!(scheme, "" | "file://") || location == STDIO {
        return None;
    }
    Some(lexical(location, rest).map(|(root, parts, _)| {
        let mut p = root;
        p.extend(parts);
        p
    }))
}

/// The location that means standard output to writers and standard input to readers.
pub const STDIO: &str = "-";

/// The output a location names, normalised so that two spellings of one output compare
/// equal: `out/a.csv`, `./out/a.csv` and `file:///<cwd>/out/a.csv` give one key. A location
/// that cannot be understood gives itself.
pub fn output_key(location: &str) -> String {
    if location == STDIO {
        return STDIO.to_string();
    }
    if let Some(Ok(p)) = local_path(location) {
        return format!("file://{}", p.to_string_lossy());
    }
    let (scheme, rest) = split_scheme(location);
    match clean_object_path(location, rest) {
        Ok(p) => format!("{scheme}{p}"),
        Err(_) => location.to_string(),
    }
}

/// An object path (`memory://`, `s3://bucket/`): leading slashes dropped, `.` and `..`
/// rejected because object stores have no such entries.
fn clean_object_path(location: &str, path: &str) -> Result<String, StorageError> {
    let path = path.trim_start_matches('/');
    if path.split('/').any(|s| s == "." || s == "..") {
        return Err(StorageError::bad_location(
            location,
            "\".\" and \"..\" are not allowed in an object store path",
        ));
    }
    Ok(path.to_string())
}

fn cached(
    key: String,
    make: impl FnOnce() -> Result<opendal::Operator, StorageError>,
) -> Result<opendal::Operator, StorageError> {
    static OPERATORS: OnceLock<Mutex<HashMap<String, opendal::Operator>>> = OnceLock::new();
    let mut map = OPERATORS.get_or_init(Default::default).lock();
    if let Some(op) = map.get(&key) {
        return Ok(op.clone());
    }
    let op = make()?;
    map.insert(key, op.clone());
    Ok(op)
}

fn fs_operator(location: &str, root: &Path) -> Result<opendal::Operator, StorageError> {
    let root = root.to_string_lossy().into_owned();
    cached(format!("fs:{root}"), || {
        let builder = opendal::services::Fs::default().root(&root);
        opendal::Operator::new(builder).map_err(|e| StorageError::backend("opening", location, e))
    })
}

/// The process-wide in-memory store: what one part of a process writes to `memory://x`
/// another part can read back.
fn memory_operator(location: &str) -> Result<opendal::Operator, StorageError> {
    cached("memory".to_string(), || {
        opendal::Operator::new(opendal::services::Memory::default())
            .map_err(|e| StorageError::backend("opening", location, e))
    })
}

fn resolve_object_store(
    location: &str,
    scheme: &str,
    rest: &str,
) -> Result<Resolved, StorageError> {
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(StorageError::bad_location(location, "missing bucket name"));
    }
    let path = clean_object_path(location, key)?;
    let op = object_store_operator(location, scheme, bucket)?;
    Ok(Resolved { op, path })
}

#[cfg_attr(not(any(feature = "s3", feature = "gcs")), allow(unused_variables))]
fn object_store_operator(
    location: &str,
    scheme: &str,
    bucket: &str,
) -> Result<opendal::Operator, StorageError> {
    match scheme {
        #[cfg(feature = "s3")]
        "s3://" => cached(format!("s3:{bucket}"), || {
            opendal::install_default();
            // Credentials come from the usual AWS_* environment (and profiles); the
            // endpoint (an S3-compatible server) and region are read here, as AWS tools do.
            let var = |names: &[&str]| {
                names
                    .iter()
                    .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
            };
            let mut builder = opendal::services::S3::default().bucket(bucket);
            if let Some(endpoint) = var(&["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]) {
                builder = builder.endpoint(&endpoint);
            }
            if let Some(region) = var(&["AWS_REGION", "AWS_DEFAULT_REGION"]) {
                builder = builder.region(&region);
            }
            opendal::Operator::new(builder)
                .map_err(|e| StorageError::backend("opening", location, e))
        }),
        #[cfg(feature = "gcs")]
        "gcs://" | "gs://" => cached(format!("gcs:{bucket}"), || {
            opendal::install_default();
            // Credentials come from GOOGLE_APPLICATION_CREDENTIALS.
            let builder = opendal::services::Gcs::default().bucket(bucket);
            opendal::Operator::new(builder)
                .map_err(|e| StorageError::backend("opening", location, e))
        }),
        _ => {
            let feature = if scheme == "s3://" { "s3" } else { "gcs" };
            Err(StorageError::bad_location(
                location,
                format!(
                    "this build of sluice has no {feature} support (cargo feature `{feature}`)"
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_split_but_drive_letters_do_not() {
        assert_eq!(split_scheme("memory://a/b"), ("memory://", "a/b"));
        assert_eq!(split_scheme("data/x.csv"), ("", "data/x.csv"));
        assert_eq!(split_scheme("C://x"), ("", "C://x"));
    }

    #[test]
    fn relative_paths_become_absolute_and_normalised() {
        let r = resolve("a/./b/../c.csv").unwrap();
        let cwd = std::env::current_dir().unwrap();
        let expected = cwd.join("a/c.csv");
        assert!(
            expected
                .to_string_lossy()
                .replace('\\', "/")
                .ends_with(&r.path)
        );
        assert!(r.path.ends_with("a/c.csv"));
        assert!(!r.path.starts_with('/'));
    }

    #[test]
    fn bad_locations_are_named() {
        let e = resolve("ftp://host/x").unwrap_err().to_string();
        assert!(
            e.contains("ftp://host/x") && e.contains("unsupported scheme"),
            "{e}"
        );
        assert!(resolve("memory://a/../b").is_err());
        assert!(resolve("").is_err());
    }
}
