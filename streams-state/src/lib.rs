//! Byte-level state stores for the streams runtime.
//!
//! This crate knows nothing about serdes, topologies or Kafka clients: it stores bytes.
//! `streams-core` wraps these stores with typed serdes and implements
//! [`ChangeLogger`] by producing to changelog topics.
//!
//! * Store kinds, each a trait over `&[u8]` keys and values with in-memory
//!   (`BTreeMap`) and RocksDB implementations: [`KeyValueStore`], [`WindowStore`],
//!   [`SessionStore`], all extending [`StateStore`].
//! * Layers that wrap a store and add one concern: the record cache ([`cache`]:
//!   [`CachingKeyValueStore`], [`CachingWindowStore`], [`CachingSessionStore`] sharing a
//!   [`CacheBudget`], with flush listeners) and the change-logging wrappers [`LoggedKeyValueStore`],
//!   [`LoggedWindowStore`] and [`LoggedSessionStore`].
//! * Byte layouts shared with Kafka Streams: [`key_layout`] and [`timestamped`].
//! * Restoration from changelogs ([`restore`]), `.checkpoint` files ([`checkpoint`]) and
//!   locked per-task state directories ([`state_dir`]).
//!
//! Range queries return materialised `Vec`s (see [`key_value`] for why).
//!
//! ```
//! use streams_state::{InMemoryKeyValueStore, KeyValueStore};
//!
//! let mut store = InMemoryKeyValueStore::new("counts");
//! store.put(b"a", b"1")?;
//! store.put(b"b", b"2")?;
//! assert_eq!(store.get(b"a")?, Some(b"1".to_vec()));
//! assert_eq!(store.range(Some(b"a"), Some(b"b"))?.len(), 2);
//! # Ok::<(), streams_state::StoreError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cache;
pub mod changelog;
pub mod checkpoint;
pub mod error;
pub mod key_layout;
pub mod key_value;
pub mod restore;
mod retention;
pub mod rocks;
pub mod session;
pub mod state_dir;
pub mod store;
pub mod timestamped;
pub mod topic_partition;
pub mod window;

pub use cache::{
    CacheBudget, CachingKeyValueStore, CachingSessionStore, CachingWindowStore, FlushListener,
    CACHE_ENTRY_OVERHEAD_BYTES,
};
pub use changelog::{
    ChangeLogger, LoggedKeyValueStore, LoggedRecord, LoggedSessionStore, LoggedWindowStore,
    RecordTimestamp, RecordingChangeLogger,
};
pub use checkpoint::{OffsetCheckpoint, CHECKPOINT_FILE_NAME};
pub use error::{Result, StoreError};
pub use key_value::{InMemoryKeyValueStore, KeyValue, KeyValueStore, RocksDbKeyValueStore};
pub use restore::{
    ChangelogRecord, NoopRestoreListener, RestoreListener, StoreRestoration, TracingRestoreListener,
};
pub use rocks::{RocksDbCompression, RocksDbConfig};
pub use session::{
    InMemorySessionStore, RocksDbSessionStore, SessionEntry, SessionKey, SessionStore,
    SessionStoreOptions,
};
pub use state_dir::{StateDirectory, TaskDirLock, LOCK_FILE_NAME};
pub use store::StateStore;
pub use topic_partition::TopicPartition;
pub use window::{
    InMemoryWindowStore, RocksDbWindowStore, WindowEntry, WindowStore, WindowStoreOptions,
};
