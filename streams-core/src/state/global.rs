//! Global stores: a full copy of a topic on every instance, shared by all tasks and
//! stream threads, kept up to date by the runtime's global thread (or the test driver).
//! The topic is its own changelog; processors only read global stores.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use streams_state::{InMemoryKeyValueStore, KeyValueStore as BytesKeyValueStore, StoreError};

use super::typed::StoreCodec;
use super::StoreDefinition;
use crate::processor::ProcessError;

/// A global table as the topology declares it: the topic and the store it fills.
#[derive(Clone)]
pub(crate) struct GlobalTableSpec {
    pub topic: String,
    pub store: Arc<StoreDefinition>,
}

/// One global store.
pub(crate) struct GlobalSlot {
    pub definition: Arc<StoreDefinition>,
    pub topic: String,
    store: Mutex<Box<dyn BytesKeyValueStore>>,
}

impl GlobalSlot {
    fn lock(&self) -> MutexGuard<'_, Box<dyn BytesKeyValueStore>> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// All global stores of an instance. Kept in memory and rebuilt from their topics on
/// every start.
#[derive(Default)]
pub(crate) struct GlobalStores {
    slots: HashMap<String, GlobalSlot>,
    by_topic: HashMap<String, String>,
}

impl GlobalStores {
    /// Empty stores for `specs`.
    pub fn new(specs: &[GlobalTableSpec]) -> Self {
        let mut stores = GlobalStores::default();
        for spec in specs {
            stores
                .by_topic
                .insert(spec.topic.clone(), spec.store.name.clone());
            stores.slots.insert(
                spec.store.name.clone(),
                GlobalSlot {
                    definition: spec.store.clone(),
                    topic: spec.topic.clone(),
                    store: Mutex::new(Box::new(InMemoryKeyValueStore::new(
                        spec.store.name.clone(),
                    ))),
                },
            );
        }
        stores
    }

    /// The store `name`.
    pub fn slot(&self, name: &str) -> Option<&GlobalSlot> {
        self.slots.get(name)
    }

    /// Whether `topic` feeds a global store.
    pub fn reads(&self, topic: &str) -> bool {
        self.by_topic.contains_key(topic)
    }

    /// The topics feeding global stores.
    pub fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.by_topic.keys().cloned().collect();
        topics.sort();
        topics
    }

    /// Applies a record of `topic`: stores the value bytes, or deletes the key for a null
    /// value. Records without a key are ignored.
    pub fn apply(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let (Some(name), Some(key)) = (self.by_topic.get(topic), key) else {
            return Ok(());
        };
        let mut store = self.slots[name].lock();
        match value {
            Some(value) => store.put(key, value),
            None => store.delete(key).map(|_| ()),
        }
    }
}

/// Read access to a global store, typed by its serdes. Get it from a processor context
/// with [`global_store`](crate::processor::TaskContext::global_store).
pub struct GlobalKeyValueStore<'a, K, V> {
    codec: StoreCodec<'a, K, V>,
    slot: &'a GlobalSlot,
}

impl<'a, K: 'static, V: 'static> GlobalKeyValueStore<'a, K, V> {
    pub(crate) fn from_slot(slot: &'a GlobalSlot) -> Result<Self, ProcessError> {
        Ok(GlobalKeyValueStore {
            codec: StoreCodec::for_definition(&slot.definition, &slot.topic)?,
            slot,
        })
    }

    /// The current value of `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>, ProcessError> {
        let key = self.codec.key_bytes(key)?;
        let bytes = self
            .slot
            .lock()
            .get(&key)
            .map_err(|e| self.codec.error(e))?;
        bytes.map(|b| self.codec.value(&b)).transpose()
    }

    /// Every entry, in key order.
    pub fn all(&self) -> Result<Vec<(K, V)>, ProcessError> {
        let entries = self.slot.lock().all().map_err(|e| self.codec.error(e))?;
        entries
            .into_iter()
            .map(|(k, v)| Ok((self.codec.key(&k)?, self.codec.value(&v)?)))
            .collect()
    }
}
