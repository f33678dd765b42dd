//! [`StorageError`]: what went wrong, on which location, doing what.

use crate::error::ActionError;

/// A storage failure, naming the location (as the user wrote it) and the operation.
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
    #[error("{op} {location}: {source}")]
    Backend {
        /// What was being done.
        op: &'static str,
        /// The location as written.
        location: String,
        /// The cause (boxed: opendal's error is large).
        #[source]
        source: Box<opendal::Error>,
    },
    /// The storage I/O runtime could not start.
    #[error("starting the storage runtime: {0}")]
    Runtime(String),
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
                source: Box::new(source),
            }
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
        matches!(self, StorageError::NotFound { .. })
    }

    /// The closest `std::io::ErrorKind`.
    pub fn io_kind(&self) -> std::io::ErrorKind {
        use opendal::ErrorKind as K;
        match self {
            StorageError::NotFound { .. } => std::io::ErrorKind::NotFound,
            StorageError::BadLocation { .. } => std::io::ErrorKind::InvalidInput,
            StorageError::Backend { source, .. } => match source.kind() {
                K::PermissionDenied => std::io::ErrorKind::PermissionDenied,
                K::AlreadyExists => std::io::ErrorKind::AlreadyExists,
                K::IsADirectory => std::io::ErrorKind::IsADirectory,
                K::NotADirectory => std::io::ErrorKind::NotADirectory,
                K::Unsupported => std::io::ErrorKind::Unsupported,
                _ => std::io::ErrorKind::Other,
            },
            StorageError::Runtime(_) => std::io::ErrorKind::Other,
        }
    }

    /// Converts into an [`std::io::Error`] carrying this error (for `Read`/`Write` impls).
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::new(self.io_kind(), self)
    }
}

impl From<StorageError> for ActionError {
    /// A storage error becomes [`ActionError::Io`] whose context names the operation and
    /// the location (`reading data/in.csv`).
    fn from(e: StorageError) -> ActionError {
        let kind = e.io_kind();
        let (context, cause) = match &e {
            StorageError::NotFound { op, location } => {
                (format!("{op} {location}"), "not found".to_string())
            }
            StorageError::BadLocation { location, message } => {
                (format!("opening {location}"), message.clone())
            }
            StorageError::Backend {
                op,
                location,
                source,
            } => (format!("{op} {location}"), source.to_string()),
            StorageError::Runtime(m) => ("starting the storage runtime".to_string(), m.clone()),
        };
        ActionError::io(context, std::io::Error::new(kind, cause))
    }
}

/// Converts a [`StorageError`] into an [`ActionError`] (the same as `ActionError::from`).
pub fn to_action_error(e: StorageError) -> ActionError {
    e.into()
}
