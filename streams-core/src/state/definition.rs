//! Declaring stores: what kind, with which serdes, persistent or in memory, logged or not.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use crate::graph::Data;
use crate::serde::Serde;

/// The serdes of a key-value store, kept type-erased in its definition.
pub(crate) struct KvSerdes<K, V> {
    pub key: Arc<dyn Serde<K>>,
    pub value: Arc<dyn Serde<V>>,
}

/// What kind of store a definition declares, with the settings of its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreKind {
    /// A key-value store.
    KeyValue,
    /// A window store: values per key and window start.
    Window {
        /// How long windows are kept behind stream time, in ms.
        retention_ms: i64,
        /// Width of the windows, in ms (window end = start + size).
        window_size_ms: i64,
        /// Whether several values per key and window are kept (stream-stream joins).
        retain_duplicates: bool,
    },
    /// A session store: aggregates per key and session.
    Session {
        /// How long sessions are kept after they end, behind stream time, in ms.
        retention_ms: i64,
    },
}

impl StoreKind {
    /// How the kind is called in messages ("a key-value store").
    pub fn describe(&self) -> &'static str {
        match self {
            StoreKind::KeyValue => "a key-value store",
            StoreKind::Window { .. } => "a window store",
            StoreKind::Session { .. } => "a session store",
        }
    }

    /// How long the changelog must keep records: `None` for key-value stores (compacted
    /// only), otherwise the store's retention plus one day, as Kafka Streams does.
    pub fn changelog_retention_ms(&self) -> Option<i64> {
        match self {
            StoreKind::KeyValue => None,
            StoreKind::Window { retention_ms, .. } | StoreKind::Session { retention_ms } => {
                Some(retention_ms.saturating_add(CHANGELOG_ADDITIONAL_RETENTION_MS))
            }
        }
    }
}

/// What window and session changelogs keep beyond the store's retention (Kafka's
/// `windowstore.changelog.additional.retention.ms` default: one day).
pub(crate) const CHANGELOG_ADDITIONAL_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// A store as the topology declares it; instantiated once per task.
pub(crate) struct StoreDefinition {
    pub name: String,
    pub kind: StoreKind,
    pub persistent: bool,
    pub logging: bool,
    /// Whether the write cache (when the runtime has one) sits in front of the store.
    pub caching: bool,
    /// Whether values are stored with the timestamp of their latest update, in Kafka's
    /// `ValueAndTimestamp` layout (aggregation results, whose output timestamp depends
    /// on the previous one); the typed handles strip it.
    pub timestamped: bool,
    /// A `KvSerdes<K, V>` (window and session stores too: their key and value serdes).
    pub serdes: Arc<dyn Any + Send + Sync>,
    /// Key and value type names, for error messages.
    pub types: (&'static str, &'static str),
}

/// Something that declares a store; see [`Stores`].
pub trait StoreBuilder {
    /// The store's name.
    fn name(&self) -> &str;

    #[doc(hidden)]
    fn into_definition(self) -> StoreDefinitionHandle;
}

/// Opaque result of [`StoreBuilder::into_definition`].
#[doc(hidden)]
pub struct StoreDefinitionHandle(pub(crate) StoreDefinition);

/// Factory of store declarations, as Kafka Streams' `Stores`.
pub struct Stores;

impl Stores {
    /// A key-value store named `name`, persistent (RocksDB) and logged by default.
    pub fn key_value<K: Data, V: Data>(
        name: impl Into<String>,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> KeyValueStoreBuilder<K, V> {
        KeyValueStoreBuilder {
            name: name.into(),
            persistent: true,
            logging: true,
            caching: true,
            timestamped: false,
            serdes: KvSerdes {
                key: Arc::new(key_serde),
                value: Arc::new(value_serde),
            },
        }
    }

    /// A window store named `name`, persistent (RocksDB, segmented by time) and logged by
    /// default. Windows `window_size` wide are kept `retention` behind stream time (the
    /// largest window start written); with `retain_duplicates` every value put for a key
    /// and window is kept (as stream-stream joins need) instead of the latest one.
    ///
    /// # Panics
    /// If `window_size` is zero or `retention` is shorter than `window_size` (Kafka
    /// Streams refuses both too).
    pub fn window<K: Data, V: Data>(
        name: impl Into<String>,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        retention: Duration,
        window_size: Duration,
        retain_duplicates: bool,
    ) -> WindowStoreBuilder<K, V> {
        let name = name.into();
        let retention_ms = millis(retention);
        let window_size_ms = millis(window_size);
        assert!(
            window_size_ms > 0,
            "window store {name}: the window size must be at least 1 ms"
        );
        assert!(
            retention_ms >= window_size_ms,
            "window store {name}: the retention ({retention_ms} ms) must not be shorter than the window size ({window_size_ms} ms)"
        );
        WindowStoreBuilder {
            common: Common::new(name, key_serde, value_serde),
            retention_ms,
            window_size_ms,
            retain_duplicates,
        }
    }

    /// A session store named `name`, persistent (RocksDB, segmented by session end) and
    /// logged by default. Sessions are kept `retention` after they end, behind stream
    /// time (the latest session end written).
    ///
    /// # Panics
    /// If `retention` is zero.
    pub fn session<K: Data, V: Data>(
        name: impl Into<String>,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        retention: Duration,
    ) -> SessionStoreBuilder<K, V> {
        let name = name.into();
        let retention_ms = millis(retention);
        assert!(
            retention_ms > 0,
            "session store {name}: the retention must be at least 1 ms"
        );
        SessionStoreBuilder {
            common: Common::new(name, key_serde, value_serde),
            retention_ms,
        }
    }
}

/// `duration` in whole milliseconds, saturating at `i64::MAX`.
fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// What every store builder holds besides the settings of its kind.
struct Common<K, V> {
    name: String,
    persistent: bool,
    logging: bool,
    caching: bool,
    timestamped: bool,
    serdes: KvSerdes<K, V>,
}

impl<K: Data, V: Data> Common<K, V> {
    fn new(name: String, key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        Common {
            name,
            persistent: true,
            logging: true,
            caching: false,
            timestamped: false,
            serdes: KvSerdes {
                key: Arc::new(key_serde),
                value: Arc::new(value_serde),
            },
        }
    }

    fn into_definition(self, kind: StoreKind) -> StoreDefinitionHandle {
        StoreDefinitionHandle(StoreDefinition {
            name: self.name,
            kind,
            persistent: self.persistent,
            logging: self.logging,
            caching: self.caching,
            timestamped: self.timestamped,
            serdes: Arc::new(self.serdes),
            types: (std::any::type_name::<K>(), std::any::type_name::<V>()),
        })
    }
}

/// Declares a key-value store. Made by [`Stores::key_value`].
pub struct KeyValueStoreBuilder<K, V> {
    name: String,
    persistent: bool,
    logging: bool,
    caching: bool,
    timestamped: bool,
    serdes: KvSerdes<K, V>,
}

impl<K: Data, V: Data> KeyValueStoreBuilder<K, V> {
    /// Keeps the store in memory instead of RocksDB; it is rebuilt from its changelog
    /// whenever a task starts.
    pub fn in_memory(mut self) -> Self {
        self.persistent = false;
        self
    }

    /// Turns change-logging on (the default) or off. An unlogged store starts empty on
    /// every new owner and is not restored after failures.
    pub fn with_logging(mut self, enabled: bool) -> Self {
        self.logging = enabled;
        self
    }

    /// Turns the record cache on (the default; its size is the runtime's
    /// `store_cache_max_bytes`) or off for this store.
    pub fn with_caching(mut self, enabled: bool) -> Self {
        self.caching = enabled;
        self
    }

    /// Stores each value with the timestamp of its latest update (aggregations).
    pub(crate) fn timestamped(mut self) -> Self {
        self.timestamped = true;
        self
    }
}

impl<K: Data, V: Data> StoreBuilder for KeyValueStoreBuilder<K, V> {
    fn name(&self) -> &str {
        &self.name
    }

    fn into_definition(self) -> StoreDefinitionHandle {
        StoreDefinitionHandle(StoreDefinition {
            name: self.name,
            kind: StoreKind::KeyValue,
            persistent: self.persistent,
            logging: self.logging,
            caching: self.caching,
            timestamped: self.timestamped,
            serdes: Arc::new(self.serdes),
            types: (std::any::type_name::<K>(), std::any::type_name::<V>()),
        })
    }
}

/// Declares a window store. Made by [`Stores::window`].
pub struct WindowStoreBuilder<K, V> {
    common: Common<K, V>,
    retention_ms: i64,
    window_size_ms: i64,
    retain_duplicates: bool,
}

impl<K: Data, V: Data> WindowStoreBuilder<K, V> {
    /// Keeps the store in memory instead of RocksDB; it is rebuilt from its changelog
    /// whenever a task starts.
    pub fn in_memory(mut self) -> Self {
        self.common.persistent = false;
        self
    }

    /// Turns change-logging on (the default) or off. An unlogged store starts empty on
    /// every new owner and is not restored after failures.
    pub fn with_logging(mut self, enabled: bool) -> Self {
        self.common.logging = enabled;
        self
    }

    /// Puts the store behind the runtime's record cache (off by default for stores
    /// declared here, as in Kafka Streams; the DSL turns it on unless
    /// `Materialized::with_caching(false)`). Its size is the runtime's
    /// `store_cache_max_bytes`.
    pub fn with_caching(mut self, enabled: bool) -> Self {
        self.common.caching = enabled;
        self
    }

    /// Stores each value with the largest timestamp among the records of its window
    /// (windowed aggregations; Kafka's timestamped window store layout).
    pub(crate) fn timestamped(mut self) -> Self {
        self.common.timestamped = true;
        self
    }
}

impl<K: Data, V: Data> StoreBuilder for WindowStoreBuilder<K, V> {
    fn name(&self) -> &str {
        &self.common.name
    }

    fn into_definition(self) -> StoreDefinitionHandle {
        self.common.into_definition(StoreKind::Window {
            retention_ms: self.retention_ms,
            window_size_ms: self.window_size_ms,
            retain_duplicates: self.retain_duplicates,
        })
    }
}

/// Declares a session store. Made by [`Stores::session`].
pub struct SessionStoreBuilder<K, V> {
    common: Common<K, V>,
    retention_ms: i64,
}

impl<K: Data, V: Data> SessionStoreBuilder<K, V> {
    /// Keeps the store in memory instead of RocksDB; it is rebuilt from its changelog
    /// whenever a task starts.
    pub fn in_memory(mut self) -> Self {
        self.common.persistent = false;
        self
    }

    /// Turns change-logging on (the default) or off. An unlogged store starts empty on
    /// every new owner and is not restored after failures.
    pub fn with_logging(mut self, enabled: bool) -> Self {
        self.common.logging = enabled;
        self
    }

    /// Puts the store behind the runtime's record cache (off by default for stores
    /// declared here, as in Kafka Streams; the DSL turns it on unless
    /// `Materialized::with_caching(false)`). Its size is the runtime's
    /// `store_cache_max_bytes`.
    pub fn with_caching(mut self, enabled: bool) -> Self {
        self.common.caching = enabled;
        self
    }
}

impl<K: Data, V: Data> StoreBuilder for SessionStoreBuilder<K, V> {
    fn name(&self) -> &str {
        &self.common.name
    }

    fn into_definition(self) -> StoreDefinitionHandle {
        self.common.into_definition(StoreKind::Session {
            retention_ms: self.retention_ms,
        })
    }
}
