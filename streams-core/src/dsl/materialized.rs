//! Options of stateful operators: how a result is materialized in a store (`Materialized`)
//! and how a stream is grouped (`Grouped`).

use std::sync::Arc;
use std::time::Duration;

use crate::graph::Data;
use crate::serde::Serde;
use crate::state::{StoreBuilder, Stores};
use crate::topology::{TopologyBuilder, TopologyError};

/// How the result of an aggregation or a table is kept: store name, serdes, in memory or
/// RocksDB, change-logged or not. Unset serdes default to the upstream ones when the
/// types match.
pub struct Materialized<K, V> {
    pub(crate) store_name: Option<String>,
    pub(crate) key_serde: Option<Arc<dyn Serde<K>>>,
    pub(crate) value_serde: Option<Arc<dyn Serde<V>>>,
    pub(crate) in_memory: bool,
    pub(crate) logging: bool,
    pub(crate) caching: bool,
    pub(crate) retention: Option<Duration>,
}

impl<K, V> Default for Materialized<K, V> {
    fn default() -> Self {
        Materialized {
            store_name: None,
            key_serde: None,
            value_serde: None,
            in_memory: false,
            logging: true,
            caching: true,
            retention: None,
        }
    }
}

impl<K, V> Materialized<K, V> {
    /// Defaults: a generated store name, upstream serdes, RocksDB, logged.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names the store, so it can be queried and its changelog is
    /// `<application.id>-<name>-changelog`.
    pub fn as_store(name: impl Into<String>) -> Self {
        Materialized {
            store_name: Some(name.into()),
            ..Self::default()
        }
    }

    /// Sets both serdes.
    pub fn with(key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        Materialized {
            key_serde: Some(Arc::new(key_serde)),
            value_serde: Some(Arc::new(value_serde)),
            ..Self::default()
        }
    }

    /// Sets the key serde.
    pub fn with_key_serde(mut self, serde: impl Serde<K>) -> Self {
        self.key_serde = Some(Arc::new(serde));
        self
    }

    /// Sets the value serde.
    pub fn with_value_serde(mut self, serde: impl Serde<V>) -> Self {
        self.value_serde = Some(Arc::new(serde));
        self
    }

    /// Names the store (see [`as_store`](Self::as_store)).
    pub fn with_store_name(mut self, name: impl Into<String>) -> Self {
        self.store_name = Some(name.into());
        self
    }

    /// Keeps the store in memory instead of RocksDB.
    pub fn in_memory(mut self) -> Self {
        self.in_memory = true;
        self
    }

    /// Turns change-logging of the store on (default) or off.
    pub fn with_logging(mut self, enabled: bool) -> Self {
        self.logging = enabled;
        self
    }

    /// Turns the record cache of the store on (default) or off. With it, updates of a
    /// key between commits are merged and only the latest is forwarded downstream (at
    /// commit or on eviction), as in Kafka Streams; without it, every update is.
    pub fn with_caching(mut self, enabled: bool) -> Self {
        self.caching = enabled;
        self
    }

    /// How long windowed results are kept (window and session stores only). Defaults to
    /// the window size (or inactivity gap) plus the grace period, the shortest that
    /// works; raise it to query older windows.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }
}

/// A store ready to be connected: its name and serdes.
pub(crate) struct MaterializedStore<K, V> {
    pub name: String,
    pub key_serde: Arc<dyn Serde<K>>,
    pub value_serde: Arc<dyn Serde<V>>,
}

impl<K: Data, V: Data> Materialized<K, V> {
    /// Declares the store in `b`, falling back to `key`/`value` serdes. Reports a
    /// missing serde (naming `operator`) and returns `None` when neither is known.
    pub(crate) fn declare(
        self,
        b: &mut TopologyBuilder,
        prefix: &str,
        key: Option<Arc<dyn Serde<K>>>,
        value: Option<Arc<dyn Serde<V>>>,
    ) -> Option<MaterializedStore<K, V>> {
        self.declare_store(b, prefix, key, value, false)
    }

    /// Like [`declare`](Self::declare), for aggregation results: each value is stored
    /// with the timestamp of its latest update, which the next update's timestamp
    /// depends on.
    pub(crate) fn declare_timestamped(
        self,
        b: &mut TopologyBuilder,
        prefix: &str,
        key: Option<Arc<dyn Serde<K>>>,
        value: Option<Arc<dyn Serde<V>>>,
    ) -> Option<MaterializedStore<K, V>> {
        self.declare_store(b, prefix, key, value, true)
    }

    fn declare_store(
        self,
        b: &mut TopologyBuilder,
        prefix: &str,
        key: Option<Arc<dyn Serde<K>>>,
        value: Option<Arc<dyn Serde<V>>>,
        timestamped: bool,
    ) -> Option<MaterializedStore<K, V>> {
        let name = self
            .store_name
            .unwrap_or_else(|| b.next_name(&format!("{prefix}STATE-STORE-")));
        let key_serde = self.key_serde.or(key);
        let value_serde = self.value_serde.or(value);
        let (Some(key_serde), Some(value_serde)) = (key_serde.clone(), value_serde.clone()) else {
            let what = if key_serde.is_none() { "key" } else { "value" };
            b.report(TopologyError::MissingSerde { node: name, what });
            return None;
        };
        let store = Stores::key_value(name.clone(), key_serde.clone(), value_serde.clone())
            .with_logging(self.logging)
            .with_caching(self.caching);
        let store = if self.in_memory {
            store.in_memory()
        } else {
            store
        };
        let store = if timestamped {
            store.timestamped()
        } else {
            store
        };
        b.add_store(store.into_definition().0);
        Some(MaterializedStore {
            name,
            key_serde,
            value_serde,
        })
    }

    /// Resolves name and serdes, reporting a missing serde.
    fn resolve(
        &self,
        b: &mut TopologyBuilder,
        prefix: &str,
        key: Option<Arc<dyn Serde<K>>>,
        value: Option<Arc<dyn Serde<V>>>,
    ) -> Option<MaterializedStore<K, V>> {
        let name = self
            .store_name
            .clone()
            .unwrap_or_else(|| b.next_name(&format!("{prefix}STATE-STORE-")));
        let key_serde = self.key_serde.clone().or(key);
        let value_serde = self.value_serde.clone().or(value);
        match (key_serde, value_serde) {
            (Some(key_serde), Some(value_serde)) => Some(MaterializedStore {
                name,
                key_serde,
                value_serde,
            }),
            (k, _) => {
                let what = if k.is_none() { "key" } else { "value" };
                b.report(TopologyError::MissingSerde { node: name, what });
                None
            }
        }
    }

    /// Declares a window store for windows of `size_ms`, kept `min_retention_ms` at least.
    pub(crate) fn declare_window(
        self,
        b: &mut TopologyBuilder,
        prefix: &str,
        key: Option<Arc<dyn Serde<K>>>,
        value: Option<Arc<dyn Serde<V>>>,
        size_ms: i64,
        min_retention_ms: i64,
    ) -> Option<MaterializedStore<K, V>> {
        let store = self.resolve(b, prefix, key, value)?;
        let retention = self
            .retention
            .unwrap_or(Duration::from_millis(min_retention_ms.max(1) as u64));
        let builder = Stores::window(
            store.name.clone(),
            store.key_serde.clone(),
            store.value_serde.clone(),
            retention,
            Duration::from_millis(size_ms as u64),
            false,
        )
        .with_logging(self.logging)
        .with_caching(self.caching)
        .timestamped();
        let builder = if self.in_memory {
            builder.in_memory()
        } else {
            builder
        };
        b.add_store(builder.into_definition().0);
        Some(store)
    }

    /// Declares a session store kept `min_retention_ms` at least.
    pub(crate) fn declare_session(
        self,
        b: &mut TopologyBuilder,
        prefix: &str,
        key: Option<Arc<dyn Serde<K>>>,
        value: Option<Arc<dyn Serde<V>>>,
        min_retention_ms: i64,
    ) -> Option<MaterializedStore<K, V>> {
        let store = self.resolve(b, prefix, key, value)?;
        let retention = self
            .retention
            .unwrap_or(Duration::from_millis(min_retention_ms.max(1) as u64));
        let builder = Stores::session(
            store.name.clone(),
            store.key_serde.clone(),
            store.value_serde.clone(),
            retention,
        )
        .with_logging(self.logging)
        .with_caching(self.caching);
        let builder = if self.in_memory {
            builder.in_memory()
        } else {
            builder
        };
        b.add_store(builder.into_definition().0);
        Some(store)
    }
}

/// How a stream is grouped: serdes for the repartition topic (if one is needed) and its
/// name.
pub struct Grouped<K, V> {
    pub(crate) name: Option<String>,
    pub(crate) key_serde: Option<Arc<dyn Serde<K>>>,
    pub(crate) value_serde: Option<Arc<dyn Serde<V>>>,
}

impl<K, V> Default for Grouped<K, V> {
    fn default() -> Self {
        Grouped {
            name: None,
            key_serde: None,
            value_serde: None,
        }
    }
}

impl<K, V> Grouped<K, V> {
    /// Upstream serdes and a generated name.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets both serdes.
    pub fn with(key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        Grouped {
            name: None,
            key_serde: Some(Arc::new(key_serde)),
            value_serde: Some(Arc::new(value_serde)),
        }
    }

    /// Names the grouping; a repartition topic becomes `<application.id>-<name>-repartition`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}
