//! The error type of every fallible store operation.

use std::path::PathBuf;

/// Errors raised by state stores, the change-logging and caching layers, checkpoint files
/// and the state directory.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// RocksDB reported an error for the named store.
    #[error("RocksDB error in store `{store}`: {source}")]
    RocksDb {
        /// Name of the store.
        store: String,
        /// The RocksDB error.
        #[source]
        source: rocksdb::Error,
    },
    /// A file-system operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The store was used after [`StateStore::close`](crate::StateStore::close).
    #[error("store `{0}` is closed")]
    Closed(String),
    /// A `.checkpoint` file exists but cannot be parsed.
    #[error("corrupt checkpoint file {}: {reason}", path.display())]
    CorruptCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Another instance (or another handle in this process) holds the task directory lock.
    #[error("task directory {} is locked by another stream thread or instance", path.display())]
    DirectoryLocked {
        /// The task directory.
        path: PathBuf,
    },
    /// Stored or restored bytes do not have the expected layout (for example a
    /// timestamped value shorter than 8 bytes or a window key shorter than its suffix).
    #[error("malformed bytes in store `{store}`: {reason}")]
    Malformed {
        /// Name of the store.
        store: String,
        /// What is wrong.
        reason: String,
    },
    /// A caller passed an argument the store cannot accept.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// This [`StateDirectory`](crate::StateDirectory) already holds the lock on the task
    /// directory; a task must be locked once and the guard kept for as long as it is owned.
    #[error("task directory {} is already locked by this state directory", path.display())]
    LockAlreadyHeld {
        /// The task directory.
        path: PathBuf,
    },
    /// A [`ChangeLogger`](crate::ChangeLogger) could not record a change.
    #[error("changelog write for store `{store}` failed: {reason}")]
    Changelog {
        /// Name of the store.
        store: String,
        /// What went wrong.
        reason: String,
    },
}

impl StoreError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps a RocksDB error with the name of the store it concerns.
    pub fn rocksdb(store: &str, source: rocksdb::Error) -> Self {
        StoreError::RocksDb {
            store: store.to_owned(),
            source,
        }
    }

    /// Builds a [`StoreError::Malformed`].
    pub fn malformed(store: &str, reason: impl Into<String>) -> Self {
        StoreError::Malformed {
            store: store.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, StoreError>;
