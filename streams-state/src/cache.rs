//! [`CachingKeyValueStore`]: a write cache in front of a key-value store that
//! deduplicates updates between flushes, bounded by a byte budget.
//!
//! Like Kafka's record cache, writes land in the cache as *dirty* entries; repeated writes
//! to a key between two flushes collapse into one. On [`flush`](StateStore::flush) (the
//! runtime calls it on commit) or when the budget forces an eviction, dirty entries are
//! written to the wrapped store in one [`put_all`](KeyValueStore::put_all) and handed to
//! the flush listener, which the runtime uses to forward the latest value downstream.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::error::{Result, StoreError};
use crate::key_value::{inverted, KeyValue, KeyValueStore};
use crate::restore::ChangelogRecord;
use crate::store::StateStore;

/// Bytes charged per cache entry on top of its key and value, for the map nodes and
/// bookkeeping.
pub const CACHE_ENTRY_OVERHEAD_BYTES: usize = 32;

/// Receives each flushed entry as `(key, new value, old value)`: `None` as new value is a
/// delete, and the old value is what the wrapped store held before the flush wrote.
pub type FlushListener = Box<dyn FnMut(&[u8], Option<&[u8]>, Option<&[u8]>) + Send>;

#[derive(Debug)]
struct CacheEntry {
    /// `None` is a cached delete.
    value: Option<Vec<u8>>,
    /// Position in write order; the key of this entry in `by_age` (and `dirty`).
    tick: u64,
    dirty: bool,
}

fn entry_size(key: &[u8], value: Option<&[u8]>) -> usize {
    key.len() + value.map_or(0, <[u8]>::len) + CACHE_ENTRY_OVERHEAD_BYTES
}

/// A write cache over any [`KeyValueStore`].
///
/// * Reads see cached values (including cached deletes); only writes populate the cache.
/// * Dirty entries are flushed in the order of their **latest** write (a key written
///   again moves behind the keys written since), as Kafka's cache does.
/// * When the budget is exceeded, the least recently written entry is evicted; evicting a
///   dirty entry flushes every dirty entry, the evicted one first, so the wrapped store
///   and the listener never see writes out of order.
/// * A budget of 0 disables caching: every write goes straight to the wrapped store and
///   the listener is called at once.
pub struct CachingKeyValueStore<S: KeyValueStore> {
    inner: S,
    max_bytes: usize,
    used_bytes: usize,
    entries: BTreeMap<Vec<u8>, CacheEntry>,
    /// Every entry by the tick of its latest write (eviction order).
    by_age: BTreeMap<u64, Vec<u8>>,
    /// Dirty entries by the tick of their latest write (flush order).
    dirty: BTreeMap<u64, Vec<u8>>,
    next_tick: u64,
    listener: Option<FlushListener>,
}

impl<S: KeyValueStore> CachingKeyValueStore<S> {
    /// Wraps `inner` with a cache of at most `max_bytes` (0 disables caching).
    pub fn new(inner: S, max_bytes: usize) -> Self {
        CachingKeyValueStore {
            inner,
            max_bytes,
            used_bytes: 0,
            entries: BTreeMap::new(),
            by_age: BTreeMap::new(),
            dirty: BTreeMap::new(),
            next_tick: 0,
            listener: None,
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

    /// Bytes currently charged to the cache.
    pub fn cached_bytes(&self) -> usize {
        self.used_bytes
    }

    /// Number of entries waiting to be flushed.
    pub fn dirty_count(&self) -> usize {
        self.dirty.len()
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.is_open() {
            Ok(())
        } else {
            Err(StoreError::Closed(self.inner.name().to_owned()))
        }
    }

    fn remove_entry(&mut self, key: &[u8]) -> Option<CacheEntry> {
        let entry = self.entries.remove(key)?;
        self.used_bytes -= entry_size(key, entry.value.as_deref());
        self.by_age.remove(&entry.tick);
        self.dirty.remove(&entry.tick);
        Some(entry)
    }

    fn write(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        if self.max_bytes == 0 {
            let old = self.inner.get(key)?;
            match value {
                Some(v) => self.inner.put(key, v)?,
                None => {
                    self.inner.delete(key)?;
                }
            }
            if let Some(listener) = self.listener.as_mut() {
                listener(key, value, old.as_deref());
            }
            return Ok(());
        }
        self.remove_entry(key);
        let tick = self.next_tick;
        self.next_tick += 1;
        self.used_bytes += entry_size(key, value);
        self.entries.insert(
            key.to_vec(),
            CacheEntry {
                value: value.map(<[u8]>::to_vec),
                tick,
                dirty: true,
            },
        );
        self.by_age.insert(tick, key.to_vec());
        self.dirty.insert(tick, key.to_vec());
        while self.used_bytes > self.max_bytes {
            self.evict_eldest()?;
        }
        Ok(())
    }

    fn evict_eldest(&mut self) -> Result<()> {
        let Some((_, key)) = self.by_age.first_key_value() else {
            return Ok(());
        };
        let key = key.clone();
        let Some(entry) = self.remove_entry(&key) else {
            return Ok(());
        };
        tracing::trace!(store = %self.inner.name(), dirty = entry.dirty, "evicting cache entry");
        if entry.dirty {
            self.flush_dirty(Some((key, entry.value)))?;
        }
        Ok(())
    }

    /// Writes `evicted` (already out of the cache) and then every dirty entry to the
    /// wrapped store, marks them clean and calls the listener.
    fn flush_dirty(&mut self, evicted: Option<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        let mut batch: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(self.dirty.len() + 1);
        batch.extend(evicted);
        for key in self.dirty.values() {
            let value = self.entries.get(key).and_then(|e| e.value.clone());
            batch.push((key.clone(), value));
        }
        if batch.is_empty() {
            return Ok(());
        }
        let old_values = if self.listener.is_some() {
            batch
                .iter()
                .map(|(key, _)| self.inner.get(key))
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        self.inner.put_all(&batch)?;

        let dirty = std::mem::take(&mut self.dirty);
        for key in dirty.into_values() {
            let is_delete = match self.entries.get_mut(&key) {
                Some(entry) => {
                    entry.dirty = false;
                    entry.value.is_none()
                }
                None => false,
            };
            if is_delete {
                // Cached deletes have done their job once written.
                self.remove_entry(&key);
            }
        }
        if let Some(listener) = self.listener.as_mut() {
            for ((key, new), old) in batch.iter().zip(&old_values) {
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
        for (key, entry) in self.entries.range::<[u8], _>((lower, upper)) {
            if prefix.is_some_and(|p| !key.starts_with(p)) {
                break;
            }
            match &entry.value {
                Some(v) => base.insert(key.clone(), v.clone()),
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

impl<S: KeyValueStore> StateStore for CachingKeyValueStore<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn persistent(&self) -> bool {
        self.inner.persistent()
    }

    fn flush(&mut self) -> Result<()> {
        self.flush_dirty(None)?;
        self.inner.flush()
    }

    fn close(&mut self) -> Result<()> {
        if !self.inner.is_open() {
            return Ok(());
        }
        let flushed = self.flush_dirty(None);
        self.entries.clear();
        self.by_age.clear();
        self.dirty.clear();
        self.used_bytes = 0;
        self.inner.close()?;
        flushed
    }

    fn is_open(&self) -> bool {
        self.inner.is_open()
    }

    fn restore_batch(&mut self, records: &[ChangelogRecord]) -> Result<()> {
        for (key, _) in records {
            self.remove_entry(key);
        }
        self.inner.restore_batch(records)
    }
}

impl<S: KeyValueStore> KeyValueStore for CachingKeyValueStore<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.entries.get(key) {
            Some(entry) if self.inner.is_open() => Ok(entry.value.clone()),
            _ => self.inner.get(key),
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
        Ok(self
            .overlay(
                base,
                Bound::Included(prefix),
                Bound::Unbounded,
                Some(prefix),
            )
            .into_iter()
            .collect())
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        self.inner.approximate_num_entries()
    }
}
