//! Local interactive queries: typed read-only views of one of this instance's stores,
//! over the tasks that run here (Kafka Streams' composite read-only stores). Views read
//! through the stores' own locks (see `state/queryable.rs`): they never wait for
//! processing or commits. Entries come task by task (partition order), each task's in
//! the store's order, as Kafka Streams' composite iterators do.

use std::marker::PhantomData;
use std::sync::Arc;

use super::StreamsError;
use crate::processor::{ProcessError, TaskId};
use crate::state::task_stores::StoreSlot;
use crate::state::{KeyValueStore, SessionStore, WindowStore, Windowed};

/// The error of a store operation inside a query: the store is of another kind or
/// types, or the store itself failed (say, closed by a task migrating away).
fn query_error(error: ProcessError) -> StreamsError {
    StreamsError::InvalidState(format!("store query failed: {error}"))
}

/// The slots of one store in this instance's running tasks, by task.
pub(crate) type Slots = Vec<(TaskId, Arc<StoreSlot>)>;

/// `slots` if each holds a store `check` accepts (the right kind and types).
fn checked(
    slots: Slots,
    check: impl Fn(&StoreSlot) -> Result<(), ProcessError>,
) -> Result<Slots, StreamsError> {
    for (_, slot) in &slots {
        check(slot).map_err(query_error)?;
    }
    Ok(slots)
}

/// What `read` finds in the first slot where it finds something (a key lives in one task).
fn first<T>(
    slots: &Slots,
    mut read: impl FnMut(&StoreSlot) -> Result<Option<T>, ProcessError>,
) -> Result<Option<T>, StreamsError> {
    for (_, slot) in slots {
        if let Some(found) = read(slot).map_err(query_error)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Runs `read` on every slot, collecting what each returns.
fn collect<T>(
    slots: &Slots,
    mut read: impl FnMut(&StoreSlot) -> Result<Vec<T>, ProcessError>,
) -> Result<Vec<T>, StreamsError> {
    let mut out = Vec::new();
    for (_, slot) in slots {
        out.extend(read(slot).map_err(query_error)?);
    }
    Ok(out)
}

/// A read-only view of key-value store `name` over this instance's running tasks; made
/// by [`KafkaStreams::key_value_store`](super::KafkaStreams::key_value_store).
pub struct ReadOnlyKeyValueStore<K, V> {
    slots: Slots,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K: 'static, V: 'static> ReadOnlyKeyValueStore<K, V> {
    pub(crate) fn new(slots: Slots) -> Result<Self, StreamsError> {
        Ok(ReadOnlyKeyValueStore {
            slots: checked(slots, |slot| {
                KeyValueStore::<K, V>::from_slot(slot).map(drop)
            })?,
            types: PhantomData,
        })
    }

    fn each(
        &self,
        mut read: impl FnMut(&KeyValueStore<'_, K, V>) -> Result<Vec<(K, V)>, ProcessError>,
    ) -> Result<Vec<(K, V)>, StreamsError> {
        collect(&self.slots, |slot| read(&KeyValueStore::from_slot(slot)?))
    }

    /// The value of `key`, if a task of this instance holds it (keys of partitions that
    /// run elsewhere are not found here).
    pub fn get(&self, key: &K) -> Result<Option<V>, StreamsError> {
        first(&self.slots, |slot| {
            KeyValueStore::<K, V>::from_slot(slot)?.get(key)
        })
    }

    /// Entries with `from <= key <= to` (`None` leaves an end open).
    pub fn range(&self, from: Option<&K>, to: Option<&K>) -> Result<Vec<(K, V)>, StreamsError> {
        self.each(|store| store.range(from, to))
    }

    /// Entries whose serialized key starts with the serialized `prefix`.
    pub fn prefix_scan(&self, prefix: &K) -> Result<Vec<(K, V)>, StreamsError> {
        self.each(|store| store.prefix_scan(prefix))
    }

    /// Every entry.
    pub fn all(&self) -> Result<Vec<(K, V)>, StreamsError> {
        self.each(|store| store.all())
    }

    /// An estimate of the number of entries.
    pub fn approximate_num_entries(&self) -> Result<u64, StreamsError> {
        let mut total = 0u64;
        for (_, slot) in &self.slots {
            let store = KeyValueStore::<K, V>::from_slot(slot).map_err(query_error)?;
            total = total.saturating_add(store.approximate_num_entries().map_err(query_error)?);
        }
        Ok(total)
    }
}

/// A read-only view of window store `name` over this instance's running tasks; made by
/// [`KafkaStreams::window_store`](super::KafkaStreams::window_store).
pub struct ReadOnlyWindowStore<K, V> {
    slots: Slots,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K: 'static, V: 'static> ReadOnlyWindowStore<K, V> {
    pub(crate) fn new(slots: Slots) -> Result<Self, StreamsError> {
        Ok(ReadOnlyWindowStore {
            slots: checked(slots, |slot| WindowStore::<K, V>::from_slot(slot).map(drop))?,
            types: PhantomData,
        })
    }

    /// The value of `key` in the window starting at `window_start`.
    pub fn fetch(&self, key: &K, window_start: i64) -> Result<Option<V>, StreamsError> {
        first(&self.slots, |slot| {
            WindowStore::<K, V>::from_slot(slot)?.fetch(key, window_start)
        })
    }

    /// The windows of `key` starting within `[time_from, time_to]`, as `(window start,
    /// value)` by ascending start.
    pub fn fetch_time_range(
        &self,
        key: &K,
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<(i64, V)>, StreamsError> {
        collect(&self.slots, |slot| {
            WindowStore::<K, V>::from_slot(slot)?.fetch_time_range(key, time_from, time_to)
        })
    }

    /// Entries with `key_from <= key <= key_to` (`None` leaves an end open) in windows
    /// starting within `[time_from, time_to]`.
    pub fn fetch_range(
        &self,
        key_from: Option<&K>,
        key_to: Option<&K>,
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<(Windowed<K>, V)>, StreamsError> {
        collect(&self.slots, |slot| {
            WindowStore::<K, V>::from_slot(slot)?.fetch_range(key_from, key_to, time_from, time_to)
        })
    }

    /// Every live window of every key.
    pub fn all(&self) -> Result<Vec<(Windowed<K>, V)>, StreamsError> {
        collect(&self.slots, |slot| {
            WindowStore::<K, V>::from_slot(slot)?.all()
        })
    }
}

/// A read-only view of session store `name` over this instance's running tasks; made by
/// [`KafkaStreams::session_store`](super::KafkaStreams::session_store).
pub struct ReadOnlySessionStore<K, V> {
    slots: Slots,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K: 'static, V: 'static> ReadOnlySessionStore<K, V> {
    pub(crate) fn new(slots: Slots) -> Result<Self, StreamsError> {
        Ok(ReadOnlySessionStore {
            slots: checked(slots, |slot| {
                SessionStore::<K, V>::from_slot(slot).map(drop)
            })?,
            types: PhantomData,
        })
    }

    /// Every session of `key`, by end, then start.
    pub fn fetch(&self, key: &K) -> Result<Vec<(Windowed<K>, V)>, StreamsError> {
        collect(&self.slots, |slot| {
            SessionStore::<K, V>::from_slot(slot)?.fetch(key)
        })
    }

    /// Sessions of `key` ending at or after `earliest_session_end` and starting at or
    /// before `latest_session_start`, by end, then start.
    pub fn find_sessions(
        &self,
        key: &K,
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<Vec<(Windowed<K>, V)>, StreamsError> {
        collect(&self.slots, |slot| {
            SessionStore::<K, V>::from_slot(slot)?.find_sessions(
                key,
                earliest_session_end,
                latest_session_start,
            )
        })
    }

    /// The aggregate of the session of `key` from exactly `start` to `end`.
    pub fn fetch_session(&self, key: &K, start: i64, end: i64) -> Result<Option<V>, StreamsError> {
        first(&self.slots, |slot| {
            SessionStore::<K, V>::from_slot(slot)?.fetch_session(key, start, end)
        })
    }
}
