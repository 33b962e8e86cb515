//! [`CachingWindowStore`]: the record cache in front of a window store.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::core::{CacheBudget, DirtyBatch, DirtyEntry, FlushListener, LastMiss, RecordCache};
use crate::error::{Result, StoreError};
use crate::key_layout::{composite_upper_bound, split_window_store_key, window_store_key};
use crate::retention::{check_timestamp, Retention};
use crate::window::{WindowEntry, WindowStore};

/// A window of a key: `(window start, key)`, the order of window-store results.
type WindowAt = (i64, Vec<u8>);

/// A record cache over a [`WindowStore`] (Kafka's `CachingWindowStore`).
///
/// Entries are cached under the window-store key layout (key, window start, sequence
/// number 0), which is also the key the flush listener receives. Reads merge the cache
/// with the wrapped store and hide windows that expired; flushes and evictions behave as
/// in [`CachingKeyValueStore`](super::CachingKeyValueStore). Stores that retain
/// duplicates (stream-stream joins) are not cached: every write goes straight through, as
/// Kafka never caches them either.
pub struct CachingWindowStore<S: WindowStore> {
    inner: S,
    cache: RecordCache,
    listener: Option<FlushListener>,
    last_miss: LastMiss,
    /// Stream time as this layer has seen it (writes reach the wrapped store late).
    retention: Retention,
}

impl<S: WindowStore> CachingWindowStore<S> {
    /// Wraps `inner` with a cache drawing on `budget`.
    pub fn new(inner: S, budget: CacheBudget) -> Self {
        let mut retention = Retention::new(inner.retention_ms());
        retention.observe(inner.observed_stream_time());
        CachingWindowStore {
            inner,
            cache: RecordCache::new(budget),
            listener: None,
            last_miss: LastMiss::default(),
            retention,
        }
    }

    /// Sets the listener called for every flushed entry, keyed in the window-store layout
    /// ([`split_window_store_key`] gives key and window start back).
    pub fn set_flush_listener(
        &mut self,
        listener: impl FnMut(&[u8], Option<&[u8]>, Option<&[u8]>) + Send + 'static,
    ) {
        self.listener = Some(Box::new(listener));
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Number of entries waiting to be flushed.
    pub fn dirty_count(&self) -> usize {
        self.cache.dirty_count()
    }

    fn caching(&self) -> bool {
        self.cache.is_enabled() && !self.inner.retain_duplicates()
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.is_open() {
            Ok(())
        } else {
            Err(StoreError::Closed(self.inner.name().to_owned()))
        }
    }

    /// Writes `batch` to the wrapped store in one call, then hands each entry, with the
    /// value it replaced, to the listener. A delete of a window the store does not hold
    /// is skipped.
    fn flush_batch(&mut self, batch: DirtyBatch) -> Result<()> {
        let mut writes = Vec::with_capacity(batch.len());
        let mut flushed = Vec::with_capacity(batch.len());
        for DirtyEntry {
            key: store_key,
            value: new,
            stored,
        } in batch
        {
            let Some((key, start, _)) = split_window_store_key(&store_key) else {
                continue;
            };
            let old = match stored {
                Some(stored) => stored,
                None => self.inner.fetch(key, start)?,
            };
            if new.is_none() && old.is_none() {
                continue;
            }
            writes.push((key.to_vec(), new, start));
            flushed.push((store_key, old));
        }
        if writes.is_empty() {
            return Ok(());
        }
        self.inner.put_all(&writes)?;
        if let Some(listener) = self.listener.as_mut() {
            for ((store_key, old), (_, new, _)) in flushed.iter().zip(&writes) {
                listener(store_key, new.as_deref(), old.as_deref());
            }
        }
        Ok(())
    }

    /// Cached windows of keys in `[key_from, key_to]` starting in `[from, to]`, as
    /// `((start, key), value)`; `None` values are cached deletes.
    fn cached(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        from: i64,
        to: i64,
    ) -> Vec<(WindowAt, Option<Vec<u8>>)> {
        let lower = key_from.map_or(Bound::Unbounded, Bound::Included);
        // Scan only up to the last key that can match, not to the end of the cache.
        // Encoded window starts order as the numbers do only when they share a sign.
        let upper = key_to
            .filter(|_| (from < 0) == (to < 0))
            .map(|t| composite_upper_bound(t, &window_store_key(b"", to, u32::MAX)));
        let upper = upper.as_deref().map_or(Bound::Unbounded, Bound::Included);
        self.cache
            .range((lower, upper))
            .filter_map(|(store_key, value)| {
                let (key, start, _) = split_window_store_key(store_key)?;
                let in_keys = key_from.is_none_or(|f| key >= f) && key_to.is_none_or(|t| key <= t);
                (in_keys && (from..=to).contains(&start) && !self.retention.is_expired(start))
                    .then(|| ((start, key.to_vec()), value.map(<[u8]>::to_vec)))
            })
            .collect()
    }

    fn merged(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        from: i64,
        to: i64,
    ) -> Result<Vec<WindowEntry>> {
        let mut merged: BTreeMap<WindowAt, Vec<u8>> = self
            .inner
            .fetch_range(key_from, key_to, from, to)?
            .into_iter()
            .filter(|e| !self.retention.is_expired(e.window_start))
            .map(|e| ((e.window_start, e.key), e.value))
            .collect();
        for (at, value) in self.cached(key_from, key_to, from, to) {
            match value {
                Some(v) => merged.insert(at, v),
                None => merged.remove(&at),
            };
        }
        Ok(merged
            .into_iter()
            .map(|((window_start, key), value)| WindowEntry {
                key,
                window_start,
                value,
            })
            .collect())
    }
}

caching_state_store!(CachingWindowStore<S: WindowStore>, |layer| layer.retention.observe(layer.inner.observed_stream_time()));

impl<S: WindowStore> WindowStore for CachingWindowStore<S> {
    fn put(&mut self, key: &[u8], value: Option<&[u8]>, window_start: i64) -> Result<()> {
        self.check_open()?;
        if !self.caching() {
            if self.inner.retain_duplicates() {
                return self.inner.put(key, value, window_start);
            }
            let store_key = window_store_key(key, window_start, 0);
            let stored = self.last_miss.take_for(&store_key);
            return self.flush_batch(vec![DirtyEntry {
                key: store_key,
                value: value.map(<[u8]>::to_vec),
                stored,
            }]);
        }
        check_timestamp("window start", window_start)?;
        self.retention.observe(window_start);
        if self.retention.is_expired(window_start) {
            tracing::debug!(store = %self.inner.name(), window_start, "skipping write to expired window");
            return Ok(());
        }
        let store_key = window_store_key(key, window_start, 0);
        let stored = self.last_miss.take_for(&store_key);
        let evicted =
            self.cache
                .write_over(&store_key, value, stored.as_ref().map(Option::as_deref));
        self.flush_batch(evicted)
    }

    fn fetch(&self, key: &[u8], window_start: i64) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        if self.retention.is_expired(window_start) {
            return Ok(None);
        }
        let store_key = window_store_key(key, window_start, 0);
        match self.cache.get(&store_key) {
            Some(value) => Ok(value.map(<[u8]>::to_vec)),
            None => {
                let stored = self.inner.fetch(key, window_start)?;
                self.last_miss.record(&store_key, stored.as_deref());
                Ok(stored)
            }
        }
    }

    fn fetch_time_range(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>> {
        if self.inner.retain_duplicates() {
            return self.inner.fetch_time_range(key, time_from, time_to);
        }
        Ok(self
            .merged(Some(key), Some(key), time_from, time_to)?
            .into_iter()
            .map(|e| (e.window_start, e.value))
            .collect())
    }

    fn fetch_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<WindowEntry>> {
        if self.inner.retain_duplicates() {
            return self.inner.fetch_range(key_from, key_to, time_from, time_to);
        }
        self.check_open()?;
        if key_from.zip(key_to).is_some_and(|(f, t)| f > t) {
            return Ok(Vec::new());
        }
        self.merged(key_from, key_to, time_from, time_to)
    }

    fn retention_ms(&self) -> i64 {
        self.inner.retention_ms()
    }

    fn retain_duplicates(&self) -> bool {
        self.inner.retain_duplicates()
    }

    fn observed_stream_time(&self) -> i64 {
        self.retention
            .stream_time()
            .max(self.inner.observed_stream_time())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::store::StateStore;
    use crate::window::{InMemoryWindowStore, WindowStoreOptions};

    /// A flushed window: key, window start, new value, old value.
    type Record = (Vec<u8>, i64, Option<Vec<u8>>, Option<Vec<u8>>);
    type Flushed = Arc<Mutex<Vec<Record>>>;

    fn cached(
        budget: usize,
        retention_ms: i64,
    ) -> (CachingWindowStore<InMemoryWindowStore>, Flushed) {
        let inner = InMemoryWindowStore::new("w", WindowStoreOptions::new(retention_ms)).unwrap();
        let mut store = CachingWindowStore::new(inner, CacheBudget::new(budget));
        let flushed: Flushed = Arc::default();
        let sink = flushed.clone();
        store.set_flush_listener(move |k, new, old| {
            let (key, start, _) = split_window_store_key(k).unwrap();
            sink.lock().unwrap().push((
                key.to_vec(),
                start,
                new.map(<[u8]>::to_vec),
                old.map(<[u8]>::to_vec),
            ));
        });
        (store, flushed)
    }

    fn take(flushed: &Flushed) -> Vec<Record> {
        std::mem::take(&mut *flushed.lock().unwrap())
    }

    fn v(bytes: &[u8]) -> Option<Vec<u8>> {
        Some(bytes.to_vec())
    }

    #[test]
    fn cached_range_reads_find_keys_that_prefix_others_and_nothing_past_the_bound() {
        let (mut store, _) = cached(1 << 20, 1 << 40);
        // "a" is a prefix of "a\x00": with a late window start, "a"'s entry sorts after
        // "a\x00"'s entries of early starts.
        let keys: [&[u8]; 4] = [b"a", b"a\x00", b"a\x01", b"b"];
        let starts = [0, 5, 300, 1 << 33];
        for key in keys {
            for start in starts {
                store.put(key, Some(key), start).unwrap();
            }
        }
        for key in keys {
            let got: Vec<i64> = store
                .fetch_time_range(key, 0, 1 << 33)
                .unwrap()
                .into_iter()
                .map(|(start, value)| {
                    assert_eq!(value, key, "a window of another key");
                    start
                })
                .collect();
            assert_eq!(got, starts, "windows of {key:?}");
        }
        let got: Vec<(Vec<u8>, i64)> = store
            .fetch_range(Some(b"a"), Some(b"a\x00"), 5, 300)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.window_start))
            .collect();
        assert_eq!(
            got,
            vec![
                (b"a".to_vec(), 5),
                (b"a\x00".to_vec(), 5),
                (b"a".to_vec(), 300),
                (b"a\x00".to_vec(), 300)
            ]
        );
    }

    #[test]
    fn a_write_after_a_read_that_missed_the_cache_flushes_the_right_old_value() {
        // Room for one entry: every new window evicts (and flushes) the previous one.
        let entry = 1 + 12 + 1 + crate::cache::CACHE_ENTRY_OVERHEAD_BYTES;
        let (mut store, flushed) = cached(entry, 1_000);
        store.put(b"a", Some(b"1"), 0).unwrap();
        store.put(b"b", Some(b"1"), 0).unwrap();
        store.put(b"c", Some(b"1"), 0).unwrap();
        take(&flushed);
        // "a" left the cache; the read goes to the wrapped store, the write after it
        // carries what it found as the old value.
        assert_eq!(store.fetch(b"a", 0).unwrap(), v(b"1"));
        store.put(b"a", Some(b"2"), 0).unwrap();
        // A read of one key, then a write of another: the other's old value is read.
        assert_eq!(store.fetch(b"x", 0).unwrap(), None);
        store.put(b"b", Some(b"2"), 0).unwrap();
        // A read that found nothing, then a write of that key.
        assert_eq!(store.fetch(b"y", 0).unwrap(), None);
        store.put(b"y", Some(b"1"), 0).unwrap();
        store.flush().unwrap();
        assert_eq!(
            take(&flushed),
            vec![
                (b"c".to_vec(), 0, v(b"1"), None),
                (b"a".to_vec(), 0, v(b"2"), v(b"1")),
                (b"b".to_vec(), 0, v(b"2"), v(b"1")),
                (b"y".to_vec(), 0, v(b"1"), None),
            ]
        );
    }

    #[test]
    fn updates_of_a_window_merge_until_flush_with_the_stored_value_as_old() {
        let (mut store, flushed) = cached(1 << 20, 1_000);
        store.put(b"k", Some(b"1"), 0).unwrap();
        store.flush().unwrap();
        assert_eq!(take(&flushed), vec![(b"k".to_vec(), 0, v(b"1"), None)]);

        store.put(b"k", Some(b"2"), 0).unwrap();
        store.put(b"k", Some(b"1"), 10).unwrap();
        store.put(b"k", Some(b"3"), 0).unwrap();
        assert!(take(&flushed).is_empty());
        assert_eq!(store.fetch(b"k", 0).unwrap(), v(b"3"));
        assert_eq!(store.inner().fetch(b"k", 0).unwrap(), v(b"1"));
        assert_eq!(
            store.fetch_time_range(b"k", 0, 10).unwrap(),
            vec![(0, b"3".to_vec()), (10, b"1".to_vec())]
        );
        store.flush().unwrap();
        // Latest-write order: window 10 was written before the last update of window 0.
        assert_eq!(
            take(&flushed),
            vec![
                (b"k".to_vec(), 10, v(b"1"), None),
                (b"k".to_vec(), 0, v(b"3"), v(b"1"))
            ]
        );
    }

    #[test]
    fn deletes_hide_stored_windows_and_reads_hide_expired_ones() {
        let (mut store, flushed) = cached(1 << 20, 100);
        store.put(b"a", Some(b"x"), 0).unwrap();
        store.put(b"b", Some(b"y"), 0).unwrap();
        store.flush().unwrap();
        take(&flushed);
        store.put(b"a", None, 0).unwrap();
        assert_eq!(store.fetch(b"a", 0).unwrap(), None);
        assert_eq!(
            store.fetch_all(0, 0).unwrap(),
            vec![WindowEntry {
                key: b"b".to_vec(),
                window_start: 0,
                value: b"y".to_vec()
            }]
        );
        // Window 100 moves stream time so that window 0 expires (0 <= 100 - 100).
        store.put(b"c", Some(b"z"), 100).unwrap();
        assert_eq!(store.fetch(b"b", 0).unwrap(), None);
        assert_eq!(store.all().unwrap().len(), 1);
        store.flush().unwrap();
        // The delete reached the wrapped store's window, expired or not; window 100 too.
        let flushed = take(&flushed);
        assert_eq!(flushed.last(), Some(&(b"c".to_vec(), 100, v(b"z"), None)));
    }

    #[test]
    fn eviction_flushes_every_dirty_window_the_evicted_first() {
        let entry = 1 + 12 + 1 + crate::cache::CACHE_ENTRY_OVERHEAD_BYTES;
        let (mut store, flushed) = cached(2 * entry, 1_000);
        store.put(b"a", Some(b"1"), 0).unwrap();
        store.put(b"b", Some(b"2"), 0).unwrap();
        assert!(take(&flushed).is_empty());
        store.put(b"c", Some(b"3"), 5).unwrap();
        assert_eq!(
            take(&flushed),
            vec![
                (b"a".to_vec(), 0, v(b"1"), None),
                (b"b".to_vec(), 0, v(b"2"), None),
                (b"c".to_vec(), 5, v(b"3"), None)
            ]
        );
    }

    #[test]
    fn conforms_as_a_window_store() {
        let entry = 8 + 12 + 8 + crate::cache::CACHE_ENTRY_OVERHEAD_BYTES;
        crate::window::conformance::run_all(&mut |options| {
            CachingWindowStore::new(
                InMemoryWindowStore::new("w", options).unwrap(),
                CacheBudget::new(3 * entry),
            )
        });
    }
}
