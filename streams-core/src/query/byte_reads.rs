//! Reads of one task's store as bytes, as the query service serves them: keys and
//! values in the store's serialized form, values without the timestamp timestamped
//! stores keep in front of them.

use streams_state::timestamped::split_timestamped_value;
use streams_state::StoreError;

use crate::state::task_stores::{ByteStore, StoreSlot};

/// Why a byte read failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The store is of another kind than the query needs.
    #[error("store {store} is {actual}, not {wanted}")]
    WrongKind {
        store: String,
        actual: &'static str,
        wanted: &'static str,
    },
    /// The store failed.
    #[error("store {store} failed: {source}")]
    Store {
        store: String,
        #[source]
        source: StoreError,
    },
    /// A stored value lacks the timestamp its store keeps.
    #[error("store {0} holds a value without its timestamp")]
    Corrupt(String),
}

/// An entry of a key-value store: key, value.
pub(crate) type EntryBytes = (Vec<u8>, Vec<u8>);
/// A window of a window store: key, window start, value.
pub(crate) type WindowBytes = (Vec<u8>, i64, Vec<u8>);
/// A session of a session store: key, start, end, value.
pub(crate) type SessionBytes = (Vec<u8>, i64, i64, Vec<u8>);

fn name(slot: &StoreSlot) -> String {
    slot.definition.name.clone()
}

fn wrong_kind(slot: &StoreSlot, wanted: &'static str) -> ReadError {
    ReadError::WrongKind {
        store: name(slot),
        actual: slot.definition.kind.describe(),
        wanted,
    }
}

fn failed(slot: &StoreSlot) -> impl Fn(StoreError) -> ReadError + '_ {
    move |source| ReadError::Store {
        store: name(slot),
        source,
    }
}

/// The value bytes of a stored value: without its timestamp in timestamped stores.
fn plain(slot: &StoreSlot, stored: Vec<u8>) -> Result<Vec<u8>, ReadError> {
    if !slot.definition.timestamped {
        return Ok(stored);
    }
    split_timestamped_value(&stored)
        .map(|(_, value)| value.to_vec())
        .ok_or_else(|| ReadError::Corrupt(name(slot)))
}

/// The value of `key` in a key-value store.
pub(crate) fn get(slot: &StoreSlot, key: &[u8]) -> Result<Option<Vec<u8>>, ReadError> {
    let ByteStore::KeyValue(store) = &slot.store else {
        return Err(wrong_kind(slot, "a key-value store"));
    };
    let stored = store.lock().borrow().get(key).map_err(failed(slot))?;
    stored.map(|v| plain(slot, v)).transpose()
}

/// Entries of a key-value store: those whose key starts with `prefix` when given,
/// otherwise those within the inclusive bounds.
pub(crate) fn range(
    slot: &StoreSlot,
    from: Option<&[u8]>,
    to: Option<&[u8]>,
    prefix: Option<&[u8]>,
) -> Result<Vec<EntryBytes>, ReadError> {
    let ByteStore::KeyValue(store) = &slot.store else {
        return Err(wrong_kind(slot, "a key-value store"));
    };
    let entries = {
        let guard = store.lock();
        let store = guard.borrow();
        match prefix {
            Some(prefix) => store.prefix_scan(prefix),
            None => store.range(from, to),
        }
        .map_err(failed(slot))?
    };
    entries
        .into_iter()
        .map(|(k, v)| Ok((k, plain(slot, v)?)))
        .collect()
}

/// Windows of `key` (or of the keys within the inclusive bounds when `key` is `None`)
/// starting within `[time_from, time_to]`.
pub(crate) fn windows(
    slot: &StoreSlot,
    key: Option<&[u8]>,
    key_bounds: (Option<&[u8]>, Option<&[u8]>),
    time_from: i64,
    time_to: i64,
) -> Result<Vec<WindowBytes>, ReadError> {
    let ByteStore::Window(store) = &slot.store else {
        return Err(wrong_kind(slot, "a window store"));
    };
    let entries: Vec<WindowBytes> = {
        let guard = store.lock();
        let store = guard.borrow();
        match key {
            Some(key) => store
                .fetch_time_range(key, time_from, time_to)
                .map_err(failed(slot))?
                .into_iter()
                .map(|(start, value)| (key.to_vec(), start, value))
                .collect(),
            None => store
                .fetch_range(key_bounds.0, key_bounds.1, time_from, time_to)
                .map_err(failed(slot))?
                .into_iter()
                .map(|e| (e.key, e.window_start, e.value))
                .collect(),
        }
    };
    entries
        .into_iter()
        .map(|(k, start, v)| Ok((k, start, plain(slot, v)?)))
        .collect()
}

/// Every live session of `key` in a session store.
pub(crate) fn sessions(slot: &StoreSlot, key: &[u8]) -> Result<Vec<SessionBytes>, ReadError> {
    let ByteStore::Session(store) = &slot.store else {
        return Err(wrong_kind(slot, "a session store"));
    };
    let entries = store.lock().borrow().fetch(key).map_err(failed(slot))?;
    entries
        .into_iter()
        .map(|e| {
            Ok((
                e.session.key,
                e.session.start,
                e.session.end,
                plain(slot, e.value)?,
            ))
        })
        .collect()
}
