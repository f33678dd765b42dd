//! [`StorageError`]: what went wrong, on which location, doing what, in plain words.

use crate::error::ActionError;

/// A storage failure, naming the location (as the user wrote it) and the operation.
///
/// Messages read `writing out/a.csv: permission denied`: the operation, the location, and
/// the cause as the operating system or the backend put it, without the backend's internal
/// context (which stays available in [`StorageError::Backend::detail`]).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The file (or folder) does not exist.
    #[error("{op} {location}: not found")]
    NotFound {
        /// What was being done (`reading`, `listing`...).
        op: &'static str,
        /// The location as written.
        location: String,
    },
    /// The location cannot be understood (unknown scheme, bad glob, empty path).
    #[error("{location}: {message}")]
    BadLocation {
        /// The location as written.
        location: String,
        /// What is wrong with it.
        message: String,
    },
    /// The storage backend failed.
    #[error("{op} {location}: {message}")]
    Backend {
        /// What was being done.
        op: &'static str,
        /// The location as written.
        location: String,
        /// The cause in plain words.
        message: String,
        /// The backend's own error, with its internal context (boxed: it is large).
        detail: Box<opendal::Error>,
    },
    /// A local file operation failed.
    #[error("{op} {location}: {}", plain_io(source))]
    Io {
        /// What was being done.
        op: &'static str,
        /// The location as written.
        location: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The output is something other than a regular file (a device, a FIFO, a socket, a
    /// folder).
    #[error("{location} is {what}; sluice writes regular files only{}", if *.folder { "" } else { " (write to - for standard output)" })]
    NotAFile {
        /// The location as written.
        location: String,
        /// What it is (`a folder`, `a device`...).
        what: &'static str,
        /// Whether it is a folder.
        folder: bool,
    },
    /// Two writers of the run claim the same output.
    #[error("{location} is written by both {first} and {second}; give each writer its own output")]
    Conflict {
        /// The output, as the second writer wrote it.
        location: String,
        /// The writer that claimed it first (`node "a"`).
        first: String,
        /// The writer that claimed it second.
        second: String,
    },
    /// The storage I/O runtime could not start.
    #[error("starting the storage runtime: {0}")]
    Runtime(String),
}

/// An I/O error in plain words: `permission denied`, not `Permission denied (os error 13)`.
pub(crate) fn plain_io(e: &std::io::Error) -> String {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<opendal::Error>()) {
        return plain_opendal(inner);
    }
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_string(),
        _ => text,
    };
    let mut c = text.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => text,
    }
}

/// The cause of an opendal error in plain words: the operating system's error when there is
/// one, else the backend's message, else the kind of error.
fn plain_opendal(e: &opendal::Error) -> String {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = cur {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return plain_io(io);
        }
        cur = s.source();
    }
    use opendal::ErrorKind as K;
    match e.kind() {
        K::NotFound => "not found".into(),
        K::PermissionDenied => "permission denied".into(),
        K::IsADirectory => "is a folder".into(),
        K::NotADirectory => "a part of the path is not a folder".into(),
        K::AlreadyExists => "already exists".into(),
        _ if !e.message().is_empty() => e.message().to_string(),
        k => k.to_string().to_lowercase(),
    }
}

impl StorageError {
    /// Wraps an opendal error, turning "not found" into [`StorageError::NotFound`].
    pub(crate) fn backend(op: &'static str, location: &str, source: opendal::Error) -> Self {
        if source.kind() == opendal::ErrorKind::NotFound {
            StorageError::NotFound {
                op,
                location: location.to_string(),
            }
        } else {
            StorageError::Backend {
                op,
                location: location.to_string(),
                message: plain_opendal(&source),
                detail: Box::new(source),
            }
        }
    }

    /// Wraps a local I/O error.
    pub(crate) fn io(op: &'static str, location: &str, source: std::io::Error) -> Self {
        StorageError::Io {
            op,
            location: location.to_string(),
            source,
        }
    }

    /// A location that cannot be understood.
    pub(crate) fn bad_location(location: &str, message: impl Into<String>) -> Self {
        StorageError::BadLocation {
            location: location.to_string(),
            message: message.into(),
        }
    }

    /// Whether the error says the location does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            StorageError::NotFound { .. } => true,
            StorageError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        }
    }

    /// The closest `std::io::ErrorKind`.
    pub fn io_kind(&self) -> std::io::ErrorKind {
        use opendal::ErrorKind as K;
        match self {
            StorageError::NotFound { .. } => std::io::ErrorKind::NotFound,
            StorageError::BadLocation { .. } => std::io::ErrorKind::InvalidInput,
            StorageError::Backend { detail, .. } => match detail.kind() {
                K::PermissionDenied => std::io::ErrorKind::PermissionDenied,
                K::AlreadyExists => std::io::ErrorKind::AlreadyExists,
                K::IsADirectory => std::io::ErrorKind::IsADirectory,
                K::NotADirectory => std::io::ErrorKind::NotADirectory,
                K::Unsupported => std::io::ErrorKind::Unsupported,
                _ => std::io::ErrorKind::Other,
            },
            StorageError::Io { source, .. } => source.kind(),
            StorageError::NotAFile { folder: true, .. } => std::io::ErrorKind::IsADirectory,
            StorageError::NotAFile { .. } => std::io::ErrorKind::InvalidInput,
            StorageError::Conflict { .. } => std::io::ErrorKind::AlreadyExists,
            StorageError::Runtime(_) => std::io::ErrorKind::Other,
        }
    }

    /// The cause alone, without the operation and location (`permission denied`).
    pub fn cause(&self) -> String {
        match self {
            StorageError::NotFound { .. } => "not found".to_string(),
            StorageError::BadLocation { message, .. } => message.clone(),
            StorageError::Backend { message, .. } => message.clone(),
            StorageError::Io { source, .. } => plain_io(source),
            StorageError::Runtime(m) => m.clone(),
            other @ (StorageError::NotAFile { .. } | StorageError::Conflict { .. }) => {
                other.to_string()
            }
        }
    }

    /// Converts into an [`std::io::Error`] for `Read`/`Write` impls. Its message is the
    /// cause alone: callers of `Write` name the file themselves (`writing out.csv: ...`).
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::new(self.io_kind(), self.cause())
    }
}

impl From<StorageError> for ActionError {
    /// A storage error becomes [`ActionError::Io`] whose context names the operation and
    /// the location (`reading data/in.csv`) and whose cause is in plain words.
    fn from(e: StorageError) -> ActionError {
        let kind = e.io_kind();
        let context = match &e {
            StorageError::NotFound { op, location }
            | StorageError::Backend { op, location, .. }
            | StorageError::Io { op, location, .. } => format!("{op} {location}"),
            StorageError::BadLocation { location, .. } => format!("opening {location}"),
            // These messages say everything themselves.
            StorageError::NotAFile { .. } | StorageError::Conflict { .. } => {
                return ActionError::Other(Box::new(e));
            }
            StorageError::Runtime(_) => "starting the storage runtime".to_string(),
        };
        ActionError::io(context, std::io::Error::new(kind, e.cause()))
    }
}

/// Converts a [`StorageError`] into an [`ActionError`] (the same as `ActionError::from`).
pub fn to_action_error(e: StorageError) -> ActionError {
    e.into()
}
