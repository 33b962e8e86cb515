//! The typed key-value store handle processors use.

use streams_state::{KeyValueStore as BytesKeyValueStore, RecordTimestamp};

use super::task_stores::{ByteStore, SharedStore, StoreSlot};
use super::typed::{wrong_kind, StoreCodec};
use crate::processor::ProcessError;

/// A key-value store of one task, typed by its serdes. Get one from a processor's
/// context with [`key_value_store`](crate::processor::TaskContext::key_value_store).
///
/// Keys are ordered by their serialized bytes (unsigned), as in Kafka Streams; range
/// bounds are inclusive. Writes go to the changelog too when the store is logged.
pub struct KeyValueStore<'a, K, V> {
    codec: StoreCodec<'a, K, V>,
    store: &'a SharedStore<dyn BytesKeyValueStore>,
    /// The time of the record being processed: the timestamp `put` stores in
    /// timestamped stores.
    clock: &'a RecordTimestamp,
}

impl<'a, K: 'static, V: 'static> KeyValueStore<'a, K, V> {
    /// The typed handle of `slot`; fails if the store holds other types.
    pub(crate) fn from_slot(slot: &'a StoreSlot) -> Result<Self, ProcessError> {
        let ByteStore::KeyValue(store) = &slot.store else {
            return Err(wrong_kind(slot, "a key-value store"));
        };
        Ok(KeyValueStore {
            codec: StoreCodec::<K, V>::for_slot(slot)?,
            store,
            clock: &slot.clock,
        })
    }

    fn decode(&self, (k, v): (Vec<u8>, Vec<u8>)) -> Result<(K, V), ProcessError> {
        Ok((self.codec.key(&k)?, self.codec.value(&v)?))
    }

    /// The serialized form of `key`, as the store orders it.
    pub(crate) fn key_bytes(&self, key: &K) -> Result<Vec<u8>, ProcessError> {
        self.codec.key_bytes(key)
    }

    /// The key serialized as `bytes`.
    pub(crate) fn key_from_bytes(&self, bytes: &[u8]) -> Result<K, ProcessError> {
        self.codec.key(bytes)
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        self.codec.name
    }

    /// The value for `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>, ProcessError> {
        Ok(self.get_with_timestamp(key)?.map(|(value, _)| value))
    }

    /// The value for `key` and, in stores that keep them (aggregation results), the
    /// timestamp of its latest update.
    pub(crate) fn get_with_timestamp(
        &self,
        key: &K,
    ) -> Result<Option<(V, Option<i64>)>, ProcessError> {
        let key = self.codec.key_bytes(key)?;
        let bytes = self
            .store
            .lock()
            .borrow()
            .get(&key)
            .map_err(|e| self.codec.error(e))?;
        bytes
            .map(|b| self.codec.value_and_timestamp(&b))
            .transpose()
    }

    /// Stores `value` for `key`. A value serializing to null deletes the key.
    pub fn put(&self, key: &K, value: &V) -> Result<(), ProcessError> {
        self.put_with_timestamp(key, value, self.clock.get())
    }

    /// Stores `value` for `key` with `timestamp` as the time of its latest update (kept
    /// by timestamped stores only). A value serializing to null deletes the key.
    pub(crate) fn put_with_timestamp(
        &self,
        key: &K,
        value: &V,
        timestamp: i64,
    ) -> Result<(), ProcessError> {
        let key = self.codec.key_bytes(key)?;
        let value = self.codec.stored_value(value, timestamp)?;
        let guard = self.store.lock();
        let mut store = guard.borrow_mut();
        match value {
            Some(bytes) => store.put(&key, &bytes),
            None => store.delete(&key).map(|_| ()),
        }
        .map_err(|e| self.codec.error(e))
    }

    /// Stores `value` unless `key` has one; returns the existing value.
    pub fn put_if_absent(&self, key: &K, value: &V) -> Result<Option<V>, ProcessError> {
        if let Some(existing) = self.get(key)? {
            return Ok(Some(existing));
        }
        self.put(key, value)?;
        Ok(None)
    }

    /// Removes `key`; returns its previous value.
    pub fn delete(&self, key: &K) -> Result<Option<V>, ProcessError> {
        let key = self.codec.key_bytes(key)?;
        let old = self
            .store
            .lock()
            .borrow_mut()
            .delete(&key)
            .map_err(|e| self.codec.error(e))?;
        old.map(|b| self.codec.value(&b)).transpose()
    }

    /// Entries with `from <= key <= to` in key order; `None` leaves an end open.
    pub fn range(&self, from: Option<&K>, to: Option<&K>) -> Result<Vec<(K, V)>, ProcessError> {
        let from = from.map(|k| self.codec.key_bytes(k)).transpose()?;
        let to = to.map(|k| self.codec.key_bytes(k)).transpose()?;
        let entries = self
            .store
            .lock()
            .borrow()
            .range(from.as_deref(), to.as_deref())
            .map_err(|e| self.codec.error(e))?;
        entries.into_iter().map(|e| self.decode(e)).collect()
    }

    /// Entries whose serialized key starts with the serialized `prefix` (useful with
    /// string keys).
    pub fn prefix_scan(&self, prefix: &K) -> Result<Vec<(K, V)>, ProcessError> {
        let prefix = self.codec.key_bytes(prefix)?;
        let entries = self
            .store
            .lock()
            .borrow()
            .prefix_scan(&prefix)
            .map_err(|e| self.codec.error(e))?;
        entries.into_iter().map(|e| self.decode(e)).collect()
    }

    /// Every entry in key order.
    pub fn all(&self) -> Result<Vec<(K, V)>, ProcessError> {
        self.range(None, None)
    }

    /// An estimate of the number of entries.
    pub fn approximate_num_entries(&self) -> Result<u64, ProcessError> {
        self.store
            .lock()
            .borrow()
            .approximate_num_entries()
            .map_err(|e| self.codec.error(e))
    }
}
