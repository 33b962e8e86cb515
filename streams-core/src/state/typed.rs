//! What the typed store handles share: the type check against a slot's definition and
//! the conversions between typed keys and values and the bytes of the store.

use streams_state::timestamped::{split_timestamped_value, timestamped_value};

use super::definition::StoreKind;
use super::task_stores::StoreSlot;
use super::KvSerdes;
use super::StoreDefinition;
use crate::processor::ProcessError;
use crate::serde::SerdeError;

/// Serializes and deserializes the keys and values of one store, and names it in errors.
pub(crate) struct StoreCodec<'a, K, V> {
    pub name: &'a str,
    /// The changelog topic, passed to the serdes.
    pub topic: &'a str,
    pub serdes: &'a KvSerdes<K, V>,
    /// Values are stored behind the 8-byte timestamp of their latest update.
    pub timestamped: bool,
}

impl<'a, K: 'static, V: 'static> StoreCodec<'a, K, V> {
    /// The codec of `slot`; fails if the store was declared with other types.
    pub fn for_slot(slot: &'a StoreSlot) -> Result<Self, ProcessError> {
        Self::for_definition(&slot.definition, &slot.topic)
    }

    /// The codec of a store declared by `definition`, whose serdes see `topic`.
    pub fn for_definition(
        definition: &'a StoreDefinition,
        topic: &'a str,
    ) -> Result<Self, ProcessError> {
        let serdes = definition
            .serdes
            .downcast_ref::<KvSerdes<K, V>>()
            .ok_or_else(|| ProcessError::Store {
                store: definition.name.clone(),
                reason: format!(
                    "it holds {}/{}, not {}/{}",
                    definition.types.0,
                    definition.types.1,
                    std::any::type_name::<K>(),
                    std::any::type_name::<V>()
                ),
            })?;
        Ok(StoreCodec {
            name: &definition.name,
            topic,
            serdes,
            timestamped: definition.timestamped,
        })
    }
}

impl<K: 'static, V: 'static> StoreCodec<'_, K, V> {
    /// An error of this store.
    pub fn error(&self, reason: impl std::fmt::Display) -> ProcessError {
        ProcessError::Store {
            store: self.name.to_string(),
            reason: reason.to_string(),
        }
    }

    fn serde_error(&self, what: &str, error: SerdeError) -> ProcessError {
        self.error(format!("{what} serde: {error}"))
    }

    /// The bytes of `key`, which must not serialize to null.
    pub fn key_bytes(&self, key: &K) -> Result<Vec<u8>, ProcessError> {
        self.serdes
            .key
            .serialize(self.topic, key)
            .map_err(|e| self.serde_error("key", e))?
            .ok_or_else(|| self.error("keys must not serialize to null"))
    }

    /// The bytes of `value`; `None` when it serializes to null.
    pub fn value_bytes(&self, value: &V) -> Result<Option<Vec<u8>>, ProcessError> {
        self.serdes
            .value
            .serialize(self.topic, value)
            .map_err(|e| self.serde_error("value", e))
    }

    /// The key stored as `bytes`.
    pub fn key(&self, bytes: &[u8]) -> Result<K, ProcessError> {
        self.serdes
            .key
            .deserialize(self.topic, Some(bytes))
            .map_err(|e| self.serde_error("key", e))
    }

    /// The value stored as `bytes`.
    pub fn value(&self, bytes: &[u8]) -> Result<V, ProcessError> {
        self.value_and_timestamp(bytes).map(|(value, _)| value)
    }

    /// The value stored as `bytes`, with the timestamp stored with it (in timestamped
    /// stores).
    pub fn value_and_timestamp(&self, bytes: &[u8]) -> Result<(V, Option<i64>), ProcessError> {
        let (timestamp, bytes) = if self.timestamped {
            let (timestamp, bytes) = split_timestamped_value(bytes)
                .ok_or_else(|| self.error("a stored value lacks its timestamp"))?;
            (Some(timestamp), bytes)
        } else {
            (None, bytes)
        };
        let value = self
            .serdes
            .value
            .deserialize(self.topic, Some(bytes))
            .map_err(|e| self.serde_error("value", e))?;
        Ok((value, timestamp))
    }

    /// The stored form of `value` with `timestamp`: the serialized value, behind the
    /// timestamp in timestamped stores. `None` when it serializes to null.
    pub fn stored_value(&self, value: &V, timestamp: i64) -> Result<Option<Vec<u8>>, ProcessError> {
        Ok(self.value_bytes(value)?.map(|bytes| {
            if self.timestamped {
                timestamped_value(timestamp, &bytes)
            } else {
                bytes
            }
        }))
    }
}

/// The error for a store reached through the handle of another kind, e.g. a window
/// store asked for as a key-value store.
pub(crate) fn wrong_kind(slot: &StoreSlot, wanted: &str) -> ProcessError {
    let accessor = match slot.definition.kind {
        StoreKind::KeyValue => "key_value_store",
        StoreKind::Window { .. } => "window_store",
        StoreKind::Session { .. } => "session_store",
    };
    ProcessError::Store {
        store: slot.definition.name.clone(),
        reason: format!(
            "it is {}, not {wanted}; reach it with {accessor}",
            slot.definition.kind.describe()
        ),
    }
}
