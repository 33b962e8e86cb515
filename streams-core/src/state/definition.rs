//! Declaring stores: what kind, with which serdes, persistent or in memory, logged or not.

use std::any::Any;
use std::sync::Arc;

use crate::graph::Data;
use crate::serde::Serde;

/// The serdes of a key-value store, kept type-erased in its definition.
pub(crate) struct KvSerdes<K, V> {
    pub key: Arc<dyn Serde<K>>,
    pub value: Arc<dyn Serde<V>>,
}

/// A store as the topology declares it; instantiated once per task.
pub(crate) struct StoreDefinition {
    pub name: String,
    pub persistent: bool,
    pub logging: bool,
    /// A `KvSerdes<K, V>`.
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
            serdes: KvSerdes {
                key: Arc::new(key_serde),
                value: Arc::new(value_serde),
            },
        }
    }
}

/// Declares a key-value store. Made by [`Stores::key_value`].
pub struct KeyValueStoreBuilder<K, V> {
    name: String,
    persistent: bool,
    logging: bool,
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
}

impl<K: Data, V: Data> StoreBuilder for KeyValueStoreBuilder<K, V> {
    fn name(&self) -> &str {
        &self.name
    }

    fn into_definition(self) -> StoreDefinitionHandle {
        StoreDefinitionHandle(StoreDefinition {
            name: self.name,
            persistent: self.persistent,
            logging: self.logging,
            serdes: Arc::new(self.serdes),
            types: (std::any::type_name::<K>(), std::any::type_name::<V>()),
        })
    }
}
