//! The typed window store handle processors use.

use streams_state::{RecordTimestamp, WindowEntry, WindowStore as BytesWindowStore};

use super::definition::StoreKind;
use super::task_stores::{ByteStore, SharedStore, StoreSlot};
use super::typed::{wrong_kind, StoreCodec};
use super::Windowed;
use crate::processor::ProcessError;

/// A window store of one task, typed by its serdes: values per key and window start.
/// Get one from a processor's context with
/// [`window_store`](crate::processor::TaskContext::window_store).
///
/// Window starts are epoch milliseconds and must not be negative. Stream time is the
/// largest window start written; windows starting at or before stream time minus the
/// retention are dropped and no longer returned. Time bounds are inclusive; key bounds
/// compare serialized keys (unsigned bytes) and are inclusive. Writes go to the changelog
/// too when the store is logged, keyed as Kafka's window stores log them (key bytes,
/// 8-byte window start, 4-byte sequence number).
pub struct WindowStore<'a, K, V> {
    codec: StoreCodec<'a, K, V>,
    store: &'a SharedStore<dyn BytesWindowStore>,
    window_size_ms: i64,
    /// The time of the record being processed: the timestamp `put` stores in
    /// timestamped stores.
    clock: &'a RecordTimestamp,
}

impl<'a, K: 'static, V: 'static> WindowStore<'a, K, V> {
    /// The typed handle of `slot`; fails if it is not a window store or holds other types.
    pub(crate) fn from_slot(slot: &'a StoreSlot) -> Result<Self, ProcessError> {
        let (ByteStore::Window(store), StoreKind::Window { window_size_ms, .. }) =
            (&slot.store, slot.definition.kind)
        else {
            return Err(wrong_kind(slot, "a window store"));
        };
        Ok(WindowStore {
            codec: StoreCodec::for_slot(slot)?,
            store,
            window_size_ms,
            clock: &slot.clock,
        })
    }
}

impl<K: 'static, V: 'static> WindowStore<'_, K, V> {
    fn windowed(&self, entry: WindowEntry) -> Result<(Windowed<K>, V), ProcessError> {
        let key = self.codec.key(&entry.key)?;
        let end = entry.window_start.saturating_add(self.window_size_ms);
        Ok((
            Windowed::new(key, entry.window_start, end),
            self.codec.value(&entry.value)?,
        ))
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        self.codec.name
    }

    /// The width of the store's windows in milliseconds; windows end at start + size.
    pub fn window_size_ms(&self) -> i64 {
        self.window_size_ms
    }

    /// How long windows are kept behind stream time, in milliseconds.
    pub fn retention_ms(&self) -> i64 {
        self.store.lock().borrow().retention_ms()
    }

    /// The largest window start written so far, `i64::MIN` while empty.
    pub fn observed_stream_time(&self) -> i64 {
        self.store.lock().borrow().observed_stream_time()
    }

    /// Stores `value` for `key` in the window starting at `window_start`. A value
    /// serializing to null removes the window (and is ignored when duplicates are kept).
    /// Writes to windows that have already expired are dropped.
    pub fn put(&self, key: &K, value: &V, window_start: i64) -> Result<(), ProcessError> {
        self.put_with_timestamp(key, value, window_start, self.clock.get())
    }

    /// Like [`put`](Self::put), storing `timestamp` with the value (kept by timestamped
    /// stores only).
    pub(crate) fn put_with_timestamp(
        &self,
        key: &K,
        value: &V,
        window_start: i64,
        timestamp: i64,
    ) -> Result<(), ProcessError> {
        let key = self.codec.key_bytes(key)?;
        let value = self.codec.stored_value(value, timestamp)?;
        self.store
            .lock()
            .borrow_mut()
            .put(&key, value.as_deref(), window_start)
            .map_err(|e| self.codec.error(e))
    }

    /// The value of `key` in the window starting exactly at `window_start` (the first
    /// one put when duplicates are kept).
    pub fn fetch(&self, key: &K, window_start: i64) -> Result<Option<V>, ProcessError> {
        Ok(self
            .fetch_with_timestamp(key, window_start)?
            .map(|(value, _)| value))
    }

    /// Like [`fetch`](Self::fetch), with the timestamp stored with the value (`None` in
    /// stores that keep none).
    pub(crate) fn fetch_with_timestamp(
        &self,
        key: &K,
        window_start: i64,
    ) -> Result<Option<(V, Option<i64>)>, ProcessError> {
        let key = self.codec.key_bytes(key)?;
        let bytes = self
            .store
            .lock()
            .borrow()
            .fetch(&key, window_start)
            .map_err(|e| self.codec.error(e))?;
        bytes
            .map(|b| self.codec.value_and_timestamp(&b))
            .transpose()
    }

    /// Like [`fetch_time_range`](Self::fetch_time_range), with the timestamp stored with
    /// each value (`None` in stores that keep none).
    pub(crate) fn fetch_time_range_with_timestamps(
        &self,
        key: &K,
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<(i64, V, Option<i64>)>, ProcessError> {
        let key = self.codec.key_bytes(key)?;
        let entries = self
            .store
            .lock()
            .borrow()
            .fetch_time_range(&key, time_from, time_to)
            .map_err(|e| self.codec.error(e))?;
        entries
            .into_iter()
            .map(|(start, v)| {
                let (value, timestamp) = self.codec.value_and_timestamp(&v)?;
                Ok((start, value, timestamp))
            })
            .collect()
    }

    /// The values of `key` in windows starting within `[time_from, time_to]`, as
    /// `(window start, value)` by ascending start (duplicates in put order).
    pub fn fetch_time_range(
        &self,
        key: &K,
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<(i64, V)>, ProcessError> {
        Ok(self
            .fetch_time_range_with_timestamps(key, time_from, time_to)?
            .into_iter()
            .map(|(start, value, _)| (start, value))
            .collect())
    }

    /// Entries with `key_from <= key <= key_to` (`None` leaves an end open) in windows
    /// starting within `[time_from, time_to]`, by window start, then key.
    pub fn fetch_range(
        &self,
        key_from: Option<&K>,
        key_to: Option<&K>,
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<(Windowed<K>, V)>, ProcessError> {
        let key_from = key_from.map(|k| self.codec.key_bytes(k)).transpose()?;
        let key_to = key_to.map(|k| self.codec.key_bytes(k)).transpose()?;
        let entries = self
            .store
            .lock()
            .borrow()
            .fetch_range(key_from.as_deref(), key_to.as_deref(), time_from, time_to)
            .map_err(|e| self.codec.error(e))?;
        entries.into_iter().map(|e| self.windowed(e)).collect()
    }

    /// Entries of every key in windows starting within `[time_from, time_to]`, by
    /// window start, then key.
    pub fn fetch_all(
        &self,
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<(Windowed<K>, V)>, ProcessError> {
        self.fetch_range(None, None, time_from, time_to)
    }

    /// Every live entry, by window start, then key.
    pub fn all(&self) -> Result<Vec<(Windowed<K>, V)>, ProcessError> {
        let entries = self
            .store
            .lock()
            .borrow()
            .all()
            .map_err(|e| self.codec.error(e))?;
        entries.into_iter().map(|e| self.windowed(e)).collect()
    }
}
