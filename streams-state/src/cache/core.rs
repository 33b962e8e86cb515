//! What every caching layer shares: the thread's byte budget and the ordered map of cached
//! entries with its dirty set and eviction order.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ops::RangeBounds;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes charged per cache entry on top of its key and value, for the map nodes and
/// bookkeeping.
pub const CACHE_ENTRY_OVERHEAD_BYTES: usize = 32;

/// Receives each flushed entry as `(key, new value, old value)`: `None` as new value is a
/// delete, and the old value is what the wrapped store held before the flush wrote. Keys
/// are in the layout of the store kind (raw keys, window-store keys, session keys).
pub type FlushListener = Box<dyn FnMut(&[u8], Option<&[u8]>, Option<&[u8]>) + Send>;

/// A byte budget shared by the caches of one stream thread (Kafka's `ThreadCache` size:
/// `statestore.cache.max.bytes` divided between the threads).
///
/// Clones share the same budget. When the bytes of all caches together exceed it, the
/// cache being written evicts its least recently written entries until the total fits
/// again or it is empty, as Kafka does. A budget of 0 turns caching off: layers write
/// through and call their listener at once.
#[derive(Clone, Debug)]
pub struct CacheBudget {
    inner: Arc<BudgetInner>,
}

#[derive(Debug)]
struct BudgetInner {
    max_bytes: usize,
    used_bytes: AtomicUsize,
}

impl CacheBudget {
    /// A budget of `max_bytes` (0: caching off).
    pub fn new(max_bytes: usize) -> Self {
        CacheBudget {
            inner: Arc::new(BudgetInner {
                max_bytes,
                used_bytes: AtomicUsize::new(0),
            }),
        }
    }

    /// The budget in bytes.
    pub fn max_bytes(&self) -> usize {
        self.inner.max_bytes
    }

    /// Bytes currently held by all caches sharing the budget.
    pub fn used_bytes(&self) -> usize {
        self.inner.used_bytes.load(Ordering::Relaxed)
    }

    /// Whether caching is on (the budget is above 0).
    pub fn is_enabled(&self) -> bool {
        self.inner.max_bytes > 0
    }

    fn charge(&self, bytes: usize) {
        self.inner.used_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn release(&self, bytes: usize) {
        self.inner.used_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    fn exceeded(&self) -> bool {
        self.used_bytes() > self.inner.max_bytes
    }
}

/// Entries written to the wrapped store by one flush, in flush order: `(key, value)`,
/// `None` for a delete.
pub(crate) type DirtyBatch = Vec<(Vec<u8>, Option<Vec<u8>>)>;

#[derive(Debug)]
struct CacheEntry {
    /// `None` is a cached delete.
    value: Option<Vec<u8>>,
    /// Position of the latest write; the key of this entry in `dirty`.
    tick: u64,
    /// Position of the latest read or write; the key of this entry in `by_use`.
    used: Cell<u64>,
    dirty: bool,
}

fn entry_size(key: &[u8], value: Option<&[u8]>) -> usize {
    key.len() + value.map_or(0, <[u8]>::len) + CACHE_ENTRY_OVERHEAD_BYTES
}

/// The cached entries of one store (Kafka's `NamedCache`): values by key, the order of
/// their latest use (eviction order: reads count, as in Kafka's LRU), and which of them
/// are dirty, in the order of their latest write (flush order).
pub(crate) struct RecordCache {
    budget: CacheBudget,
    own_bytes: usize,
    entries: BTreeMap<Vec<u8>, CacheEntry>,
    /// Every entry by the tick of its latest read or write (eviction order). Reads
    /// take `&self`, hence the cell.
    by_use: RefCell<BTreeMap<u64, Vec<u8>>>,
    /// Dirty entries by the tick of their latest write (flush order).
    dirty: BTreeMap<u64, Vec<u8>>,
    next_tick: Cell<u64>,
}

impl RecordCache {
    pub fn new(budget: CacheBudget) -> Self {
        RecordCache {
            budget,
            own_bytes: 0,
            entries: BTreeMap::new(),
            by_use: RefCell::new(BTreeMap::new()),
            dirty: BTreeMap::new(),
            next_tick: Cell::new(0),
        }
    }

    /// Whether caching is on; when off, layers write through.
    pub fn is_enabled(&self) -> bool {
        self.budget.is_enabled()
    }

    /// Bytes held by this cache.
    pub fn own_bytes(&self) -> usize {
        self.own_bytes
    }

    /// Number of dirty entries.
    pub fn dirty_count(&self) -> usize {
        self.dirty.len()
    }

    fn tick(&self) -> u64 {
        let tick = self.next_tick.get();
        self.next_tick.set(tick + 1);
        tick
    }

    /// The cached value of `key`: `None` when not cached, `Some(None)` for a cached
    /// delete. A hit makes the entry the most recently used.
    pub fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        let entry = self.entries.get(key)?;
        let tick = self.tick();
        let mut by_use = self.by_use.borrow_mut();
        if let Some(key) = by_use.remove(&entry.used.get()) {
            by_use.insert(tick, key);
        }
        entry.used.set(tick);
        Some(entry.value.as_deref())
    }

    /// Cached entries with keys in `range`, in key order (`None` values are deletes).
    pub fn range<'a>(
        &'a self,
        range: impl RangeBounds<[u8]> + 'a,
    ) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
        self.entries
            .range::<[u8], _>(range)
            .map(|(k, e)| (k.as_slice(), e.value.as_deref()))
    }

    /// Drops `key` from the cache, dirty or not.
    pub fn remove(&mut self, key: &[u8]) {
        if let Some(entry) = self.entries.remove(key) {
            let size = entry_size(key, entry.value.as_deref());
            self.own_bytes -= size;
            self.budget.release(size);
            self.by_use.get_mut().remove(&entry.used.get());
            self.dirty.remove(&entry.tick);
        }
    }

    /// Caches a write of `key` as the latest dirty entry. Returns the entries to flush if
    /// the shared budget forced evictions: the evicted dirty entry first, then every other
    /// dirty entry in write order.
    pub fn write(&mut self, key: &[u8], value: Option<&[u8]>) -> DirtyBatch {
        self.remove(key);
        let tick = self.tick();
        let size = entry_size(key, value);
        self.own_bytes += size;
        self.budget.charge(size);
        self.entries.insert(
            key.to_vec(),
            CacheEntry {
                value: value.map(<[u8]>::to_vec),
                tick,
                used: Cell::new(tick),
                dirty: true,
            },
        );
        self.by_use.get_mut().insert(tick, key.to_vec());
        self.dirty.insert(tick, key.to_vec());
        self.evict_while_over_budget()
    }

    fn evict_while_over_budget(&mut self) -> DirtyBatch {
        let mut batch = DirtyBatch::new();
        while self.budget.exceeded() {
            let Some(key) = self
                .by_use
                .get_mut()
                .first_key_value()
                .map(|(_, k)| k.clone())
            else {
                break;
            };
            let Some(entry) = self.entries.get(&key) else {
                break;
            };
            let (dirty, value) = (entry.dirty, entry.value.clone());
            self.remove(&key);
            tracing::trace!(dirty, "evicting cache entry");
            if dirty {
                batch.push((key, value));
                batch.extend(self.take_dirty());
            }
        }
        batch
    }

    /// Marks every dirty entry clean and returns them in the order of their latest write;
    /// cached deletes leave the cache (the wrapped store is about to hold them).
    pub fn take_dirty(&mut self) -> DirtyBatch {
        let dirty = std::mem::take(&mut self.dirty);
        let mut batch = DirtyBatch::with_capacity(dirty.len());
        for key in dirty.into_values() {
            let Some(entry) = self.entries.get_mut(&key) else {
                continue;
            };
            entry.dirty = false;
            let value = entry.value.clone();
            if value.is_none() {
                self.remove(&key);
            }
            batch.push((key, value));
        }
        batch
    }

    /// Forgets every entry, dirty or not.
    pub fn clear(&mut self) {
        self.budget.release(self.own_bytes);
        self.own_bytes = 0;
        self.entries.clear();
        self.by_use.get_mut().clear();
        self.dirty.clear();
    }
}

impl Drop for RecordCache {
    fn drop(&mut self) {
        // Give the bytes back to the thread's budget: other tasks keep using it.
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room_for(n: usize) -> usize {
        n * (2 + CACHE_ENTRY_OVERHEAD_BYTES)
    }

    #[test]
    fn caches_sharing_a_budget_evict_from_the_one_being_written() {
        let budget = CacheBudget::new(room_for(3));
        let mut a = RecordCache::new(budget.clone());
        let mut b = RecordCache::new(budget.clone());
        assert!(a.write(b"1", Some(b"x")).is_empty());
        assert!(a.write(b"2", Some(b"x")).is_empty());
        assert!(b.write(b"3", Some(b"x")).is_empty());
        assert_eq!(budget.used_bytes(), room_for(3));
        // The fourth entry overflows the shared budget: the cache being written ("b")
        // evicts its own eldest entry, and so flushes its dirty entries; "a" keeps its.
        let flushed = b.write(b"4", Some(b"x"));
        assert_eq!(
            flushed,
            vec![
                (b"3".to_vec(), Some(b"x".to_vec())),
                (b"4".to_vec(), Some(b"x".to_vec()))
            ]
        );
        assert_eq!(a.dirty_count(), 2);
        assert_eq!(b.dirty_count(), 0);
        // "b" holds the clean "4" only; the total fits again.
        assert_eq!(budget.used_bytes(), room_for(3));
        drop(a);
        assert_eq!(budget.used_bytes(), room_for(1));
        b.clear();
        assert_eq!(budget.used_bytes(), 0);
    }

    #[test]
    fn reads_keep_an_entry_from_eviction_but_not_its_flush_order() {
        let budget = CacheBudget::new(room_for(2));
        let mut cache = RecordCache::new(budget);
        cache.write(b"1", Some(b"x"));
        cache.write(b"2", Some(b"x"));
        let flushed = cache.take_dirty();
        assert_eq!(flushed.len(), 2);
        // "1" was written first but read last: "2" is the least recently used.
        assert_eq!(cache.get(b"1"), Some(Some(&b"x"[..])));
        assert!(cache.write(b"3", Some(b"y")).is_empty());
        assert_eq!(cache.get(b"2"), None);
        assert_eq!(cache.get(b"1"), Some(Some(&b"x"[..])));
        // Flush order stays the order of writes.
        cache.write(b"1", Some(b"z"));
        assert_eq!(
            cache.take_dirty(),
            vec![
                (b"3".to_vec(), Some(b"y".to_vec())),
                (b"1".to_vec(), Some(b"z".to_vec()))
            ]
        );
    }

    #[test]
    fn a_cache_never_evicts_the_entries_of_another() {
        let budget = CacheBudget::new(room_for(2));
        let mut a = RecordCache::new(budget.clone());
        let mut b = RecordCache::new(budget.clone());
        a.write(b"1", Some(b"x"));
        a.write(b"2", Some(b"x"));
        // Over budget, "b" evicts (and so flushes) its own entry, never "a"'s.
        let flushed = b.write(b"3", Some(b"x"));
        assert_eq!(flushed, vec![(b"3".to_vec(), Some(b"x".to_vec()))]);
        assert_eq!(b.own_bytes(), 0);
        assert_eq!(a.dirty_count(), 2);
    }
}
