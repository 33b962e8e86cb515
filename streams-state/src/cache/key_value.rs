//! [`CachingKeyValueStore`]: the record cache in front of a key-value store.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::core::{CacheBudget, DirtyBatch, DirtyEntry, FlushListener, LastMiss, RecordCache};
use crate::error::{Result, StoreError};
use crate::key_layout::prefix_successor;
use crate::key_value::{inverted, KeyValue, KeyValueStore};

/// A record cache over any [`KeyValueStore`].
///
/// * Reads see cached values (including cached deletes); only writes populate the cache.
/// * Dirty entries are flushed in the order of their **latest** write (a key written
///   again moves behind the keys written since), as Kafka's cache does.
/// * When the shared budget is exceeded, this cache evicts its least recently written
///   entries; evicting a dirty entry flushes every dirty entry, the evicted one first, so
///   the wrapped store and the listener never see writes out of order.
/// * A flushed delete of a key the wrapped store does not hold is neither written nor
///   passed to the listener (Kafka skips it too: nothing downstream knew the key).
/// * A budget of 0 disables caching: every write goes straight to the wrapped store and
///   the listener is called at once.
pub struct CachingKeyValueStore<S: KeyValueStore> {
    inner: S,
    cache: RecordCache,
    listener: Option<FlushListener>,
    last_miss: LastMiss,
}

impl<S: KeyValueStore> CachingKeyValueStore<S> {
    /// Wraps `inner` with a cache of its own of at most `max_bytes` (0 disables caching).
    pub fn new(inner: S, max_bytes: usize) -> Self {
        Self::with_budget(inner, CacheBudget::new(max_bytes))
    }

    /// Wraps `inner` with a cache drawing on `budget`, shared with other caches.
    pub fn with_budget(inner: S, budget: CacheBudget) -> Self {
        CachingKeyValueStore {
            inner,
            cache: RecordCache::new(budget),
            listener: None,
            last_miss: LastMiss::default(),
        }
    }

    /// Sets the listener called for every flushed entry.
    pub fn set_flush_listener(
        &mut self,
        listener: impl FnMut(&[u8], Option<&[u8]>, Option<&[u8]>) + Send + 'static,
    ) {
        self.listener = Some(Box::new(listener));
    }

    /// Builder form of [`set_flush_listener`](Self::set_flush_listener).
    pub fn with_flush_listener(
        mut self,
        listener: impl FnMut(&[u8], Option<&[u8]>, Option<&[u8]>) + Send + 'static,
    ) -> Self {
        self.set_flush_listener(listener);
        self
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Bytes held by this cache.
    pub fn cached_bytes(&self) -> usize {
        self.cache.own_bytes()
    }

    /// Number of entries waiting to be flushed.
    pub fn dirty_count(&self) -> usize {
        self.cache.dirty_count()
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.is_open() {
            Ok(())
        } else {
            Err(StoreError::Closed(self.inner.name().to_owned()))
        }
    }

    fn write(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let stored = self.last_miss.take_for(key);
        if !self.cache.is_enabled() {
            return self.flush_batch(vec![DirtyEntry {
                key: key.to_vec(),
                value: value.map(<[u8]>::to_vec),
                stored,
            }]);
        }
        let evicted = self
            .cache
            .write_over(key, value, stored.as_ref().map(Option::as_deref));
        self.flush_batch(evicted)
    }

    /// Writes `batch` to the wrapped store and hands each entry, with the value it
    /// replaced, to the listener.
    fn flush_batch(&mut self, batch: DirtyBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut writes = Vec::with_capacity(batch.len());
        let mut old_values = Vec::with_capacity(batch.len());
        for entry in batch {
            let old = match entry.stored {
                Some(stored) => stored,
                None => self.inner.get(&entry.key)?,
            };
            if entry.value.is_some() || old.is_some() {
                writes.push((entry.key, entry.value));
                old_values.push(old);
            }
        }
        self.inner.put_all(&writes)?;
        if let Some(listener) = self.listener.as_mut() {
            for ((key, new), old) in writes.iter().zip(&old_values) {
                listener(key, new.as_deref(), old.as_deref());
            }
        }
        Ok(())
    }

    /// Overlays cached entries within `(lower, upper)` on `base`.
    fn overlay(
        &self,
        mut base: BTreeMap<Vec<u8>, Vec<u8>>,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        prefix: Option<&[u8]>,
    ) -> BTreeMap<Vec<u8>, Vec<u8>> {
        for (key, value) in self.cache.range((lower, upper)) {
            if prefix.is_some_and(|p| !key.starts_with(p)) {
                break;
            }
            match value {
                Some(v) => base.insert(key.to_vec(), v.to_vec()),
                None => base.remove(key),
            };
        }
        base
    }

    fn merged_range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<KeyValue>> {
        if inverted(from, to) {
            return self.inner.range(from, to);
        }
        let base = self.inner.range(from, to)?.into_iter().collect();
        let lower = from.map_or(Bound::Unbounded, Bound::Included);
        let upper = to.map_or(Bound::Unbounded, Bound::Included);
        Ok(self.overlay(base, lower, upper, None).into_iter().collect())
    }
}

caching_state_store!(CachingKeyValueStore<S: KeyValueStore>, |_| {});

impl<S: KeyValueStore> KeyValueStore for CachingKeyValueStore<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.cache.get(key) {
            Some(value) if self.inner.is_open() => Ok(value.map(<[u8]>::to_vec)),
            _ => {
                let stored = self.inner.get(key)?;
                self.last_miss.record(key, stored.as_deref());
                Ok(stored)
            }
        }
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.check_open()?;
        self.write(key, Some(value))
    }

    fn put_if_absent(&mut self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(existing) = self.get(key)? {
            return Ok(Some(existing));
        }
        self.write(key, Some(value))?;
        Ok(None)
    }

    fn delete(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        let old = self.get(key)?;
        self.write(key, None)?;
        Ok(old)
    }

    fn put_all(&mut self, entries: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        self.check_open()?;
        for (key, value) in entries {
            self.write(key, value.as_deref())?;
        }
        Ok(())
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<KeyValue>> {
        self.merged_range(from, to)
    }

    fn reverse_range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<KeyValue>> {
        let mut entries = self.merged_range(from, to)?;
        entries.reverse();
        Ok(entries)
    }

    fn prefix_scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>> {
        let base = self.inner.prefix_scan(prefix)?.into_iter().collect();
        let end = prefix_successor(prefix);
        let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self
            .overlay(base, Bound::Included(prefix), upper, Some(prefix))
            .into_iter()
            .collect())
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        self.inner.approximate_num_entries()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::cache::CACHE_ENTRY_OVERHEAD_BYTES;
    use crate::key_value::InMemoryKeyValueStore;
    use crate::store::StateStore;
    use crate::StoreError;

    type Record = (Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>);
    type Flushed = Arc<Mutex<Vec<Record>>>;

    fn cached(max_bytes: usize) -> (CachingKeyValueStore<InMemoryKeyValueStore>, Flushed) {
        let flushed: Flushed = Arc::default();
        let sink = flushed.clone();
        let store = CachingKeyValueStore::new(InMemoryKeyValueStore::new("kv"), max_bytes)
            .with_flush_listener(move |k, new, old| {
                sink.lock().unwrap().push((
                    k.to_vec(),
                    new.map(<[u8]>::to_vec),
                    old.map(<[u8]>::to_vec),
                ));
            });
        (store, flushed)
    }

    fn take(flushed: &Flushed) -> Vec<Record> {
        std::mem::take(&mut *flushed.lock().unwrap())
    }

    fn rec(k: &[u8], new: Option<&[u8]>, old: Option<&[u8]>) -> Record {
        (k.to_vec(), new.map(<[u8]>::to_vec), old.map(<[u8]>::to_vec))
    }

    /// Room for `n` entries with one-byte keys and values.
    fn room_for(n: usize) -> usize {
        n * (2 + CACHE_ENTRY_OVERHEAD_BYTES)
    }

    #[test]
    fn reads_see_cached_writes_before_flush() {
        let (mut store, flushed) = cached(1 << 20);
        store.put(b"a", b"1").unwrap();
        assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.inner().get(b"a").unwrap(), None);
        assert!(take(&flushed).is_empty());
        store.flush().unwrap();
        assert_eq!(store.inner().get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(take(&flushed), vec![rec(b"a", Some(b"1"), None)]);
    }

    #[test]
    fn updates_between_flushes_are_deduplicated_in_latest_write_order() {
        let (mut store, flushed) = cached(1 << 20);
        store.put(b"a", b"0").unwrap();
        store.flush().unwrap();
        take(&flushed);

        store.put(b"a", b"1").unwrap();
        store.put(b"a", b"2").unwrap();
        store.put(b"b", b"1").unwrap();
        store.put(b"a", b"3").unwrap();
        assert_eq!(store.dirty_count(), 2);
        store.flush().unwrap();
        assert_eq!(
            take(&flushed),
            vec![
                rec(b"b", Some(b"1"), None),
                rec(b"a", Some(b"3"), Some(b"0"))
            ]
        );
        // Nothing is dirty any more; a second flush forwards nothing.
        store.flush().unwrap();
        assert!(take(&flushed).is_empty());
        assert_eq!(store.get(b"a").unwrap(), Some(b"3".to_vec()));
    }

    #[test]
    fn deletes_are_cached_and_flushed_as_tombstones() {
        let (mut store, flushed) = cached(1 << 20);
        store.put(b"a", b"1").unwrap();
        store.put(b"b", b"2").unwrap();
        store.flush().unwrap();
        take(&flushed);

        assert_eq!(store.delete(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.get(b"a").unwrap(), None);
        assert_eq!(store.inner().get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.all().unwrap(), vec![(b"b".to_vec(), b"2".to_vec())]);
        assert_eq!(store.put_if_absent(b"a", b"new").unwrap(), None);
        assert_eq!(
            store.put_if_absent(b"a", b"newer").unwrap(),
            Some(b"new".to_vec())
        );
        store.delete(b"a").unwrap();
        store.flush().unwrap();
        assert_eq!(take(&flushed), vec![rec(b"a", None, Some(b"1"))]);
        assert_eq!(store.inner().get(b"a").unwrap(), None);
    }

    #[test]
    fn evicting_a_dirty_entry_flushes_all_dirty_entries_evicted_first() {
        let (mut store, flushed) = cached(room_for(2));
        store.put(b"a", b"1").unwrap();
        store.put(b"b", b"2").unwrap();
        assert!(take(&flushed).is_empty());
        store.put(b"c", b"3").unwrap();
        // "a" is the least recently written: evicted, flushed first, then the rest.
        assert_eq!(
            take(&flushed),
            vec![
                rec(b"a", Some(b"1"), None),
                rec(b"b", Some(b"2"), None),
                rec(b"c", Some(b"3"), None)
            ]
        );
        assert_eq!(store.dirty_count(), 0);
        assert!(store.cached_bytes() <= room_for(2));
        assert_eq!(store.inner().all().unwrap().len(), 3);
        // All reads still work, from the cache or the wrapped store.
        assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn evicting_a_clean_entry_forwards_nothing() {
        let (mut store, flushed) = cached(room_for(2));
        store.put(b"a", b"1").unwrap();
        store.put(b"b", b"2").unwrap();
        store.flush().unwrap();
        take(&flushed);
        store.put(b"c", b"3").unwrap();
        assert!(take(&flushed).is_empty());
        assert_eq!(store.dirty_count(), 1);
        store.flush().unwrap();
        assert_eq!(take(&flushed), vec![rec(b"c", Some(b"3"), None)]);
    }

    #[test]
    fn a_key_created_and_deleted_between_flushes_is_not_flushed() {
        let (mut store, flushed) = cached(1 << 20);
        store.put(b"a", b"1").unwrap();
        store.delete(b"a").unwrap();
        store.put(b"b", b"2").unwrap();
        store.flush().unwrap();
        // Nothing downstream ever saw "a": no tombstone for it.
        assert_eq!(take(&flushed), vec![rec(b"b", Some(b"2"), None)]);
        assert_eq!(store.inner().get(b"a").unwrap(), None);
    }

    #[test]
    fn stores_sharing_a_budget_evict_their_own_entries() {
        let budget = CacheBudget::new(room_for(3));
        let mut first =
            CachingKeyValueStore::with_budget(InMemoryKeyValueStore::new("a"), budget.clone());
        let flushed: Flushed = Arc::default();
        let sink = flushed.clone();
        let mut second =
            CachingKeyValueStore::with_budget(InMemoryKeyValueStore::new("b"), budget.clone())
                .with_flush_listener(move |k, new, old| {
                    sink.lock().unwrap().push(rec(k, new, old));
                });
        first.put(b"1", b"x").unwrap();
        first.put(b"2", b"x").unwrap();
        second.put(b"3", b"y").unwrap();
        assert!(take(&flushed).is_empty());
        assert_eq!(budget.used_bytes(), room_for(3));
        // The budget is full: the next write to "second" evicts (and so forwards) its own
        // eldest entry, while "first" keeps holding its two updates back.
        second.put(b"4", b"y").unwrap();
        assert_eq!(
            take(&flushed),
            vec![rec(b"3", Some(b"y"), None), rec(b"4", Some(b"y"), None)]
        );
        assert_eq!(first.dirty_count(), 2);
        assert_eq!(budget.used_bytes(), room_for(3));
    }

    #[test]
    fn zero_budget_writes_through() {
        let (mut store, flushed) = cached(0);
        store.put(b"a", b"1").unwrap();
        assert_eq!(store.inner().get(b"a").unwrap(), Some(b"1".to_vec()));
        store.put(b"a", b"2").unwrap();
        store.delete(b"a").unwrap();
        assert_eq!(
            take(&flushed),
            vec![
                rec(b"a", Some(b"1"), None),
                rec(b"a", Some(b"2"), Some(b"1")),
                rec(b"a", None, Some(b"2"))
            ]
        );
        assert_eq!(store.cached_bytes(), 0);
    }

    #[test]
    fn ranges_merge_cache_and_store() {
        let (mut store, _) = cached(1 << 20);
        for k in [&b"a"[..], b"b", b"c", b"d"] {
            store.put(k, b"old").unwrap();
        }
        store.flush().unwrap();
        store.put(b"b", b"new").unwrap();
        store.delete(b"c").unwrap();
        store.put(b"bb", b"added").unwrap();
        store.put(b"z", b"outside").unwrap();
        let expected = vec![
            (b"b".to_vec(), b"new".to_vec()),
            (b"bb".to_vec(), b"added".to_vec()),
            (b"d".to_vec(), b"old".to_vec()),
        ];
        assert_eq!(store.range(Some(b"b"), Some(b"d")).unwrap(), expected);
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(
            store.reverse_range(Some(b"b"), Some(b"d")).unwrap(),
            reversed
        );
        assert_eq!(
            store.prefix_scan(b"b").unwrap(),
            vec![
                (b"b".to_vec(), b"new".to_vec()),
                (b"bb".to_vec(), b"added".to_vec())
            ]
        );
        assert!(store.range(Some(b"d"), Some(b"b")).unwrap().is_empty());
        assert_eq!(store.all().unwrap().len(), 5);
    }

    #[test]
    fn close_flushes_and_restore_bypasses_the_cache() {
        let (mut store, flushed) = cached(1 << 20);
        store.put(b"k", b"cached").unwrap();
        store
            .restore_batch(&[(b"r".to_vec(), Some(b"restored".to_vec()))])
            .unwrap();
        assert!(take(&flushed).is_empty());
        assert_eq!(store.get(b"r").unwrap(), Some(b"restored".to_vec()));
        store.close().unwrap();
        assert_eq!(take(&flushed), vec![rec(b"k", Some(b"cached"), None)]);
        assert!(!store.is_open());
        assert!(matches!(store.put(b"k", b"v"), Err(StoreError::Closed(_))));
        assert!(matches!(store.get(b"k"), Err(StoreError::Closed(_))));
    }

    #[test]
    fn conforms_over_rocksdb() {
        let dir = tempfile::tempdir().unwrap();
        let mut n = 0;
        crate::key_value::conformance::run_all(&mut || {
            n += 1;
            let config = crate::RocksDbConfig::default();
            let inner =
                crate::RocksDbKeyValueStore::open(&format!("kv{n}"), dir.path(), &config).unwrap();
            CachingKeyValueStore::new(inner, room_for(3))
        });
    }

    #[test]
    fn conforms_as_a_key_value_store() {
        crate::key_value::conformance::run_all(&mut || {
            CachingKeyValueStore::new(InMemoryKeyValueStore::new("kv"), room_for(3))
        });
    }
}
