//! What every caching layer shares: the thread's byte budget and the ordered map of cached
//! entries with its dirty set and eviction order.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::ops::RangeBounds;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use slab::Slab;

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

fn entry_size(key: &[u8], value: Option<&[u8]>) -> usize {
    key.len() + value.map_or(0, <[u8]>::len) + CACHE_ENTRY_OVERHEAD_BYTES
}

/// No node: the end of a list.
const NIL: usize = usize::MAX;

/// One cached entry, linked into the eviction order (every entry) and, while dirty,
/// into the flush order.
#[derive(Debug)]
struct Node {
    key: Arc<[u8]>,
    /// `None` is a cached delete.
    value: Option<Vec<u8>>,
    dirty: bool,
    /// Neighbours in the eviction order; cells, since reads (`&self`) move entries.
    used_prev: Cell<usize>,
    used_next: Cell<usize>,
    /// Neighbours in the flush order, while dirty.
    dirty_prev: usize,
    dirty_next: usize,
}

/// Ends of a doubly linked list of nodes.
#[derive(Debug)]
struct Ends {
    head: Cell<usize>,
    tail: Cell<usize>,
}

impl Default for Ends {
    fn default() -> Self {
        Ends {
            head: Cell::new(NIL),
            tail: Cell::new(NIL),
        }
    }
}

/// The cached entries of one store (Kafka's `NamedCache`): values by key, the order of
/// their latest use (eviction order: reads count, as in Kafka's LRU), and which of them
/// are dirty, in the order of their latest write (flush order).
///
/// Every operation on a key is O(1) apart from keeping the key order for range reads,
/// which changes only when a key enters or leaves the cache: a key written again is
/// updated in place, and both orders are intrusive linked lists over one node per key.
pub(crate) struct RecordCache {
    budget: CacheBudget,
    own_bytes: usize,
    nodes: Slab<Node>,
    index: HashMap<Arc<[u8]>, usize, foldhash::fast::RandomState>,
    /// The same keys in order, for range reads.
    ordered: BTreeMap<Arc<[u8]>, usize>,
    /// Every entry, least recently read or written first.
    by_use: Ends,
    /// Dirty entries, least recently written first.
    dirty: Ends,
    dirty_count: usize,
}

impl RecordCache {
    pub fn new(budget: CacheBudget) -> Self {
        RecordCache {
            budget,
            own_bytes: 0,
            nodes: Slab::new(),
            index: HashMap::default(),
            ordered: BTreeMap::new(),
            by_use: Ends::default(),
            dirty: Ends::default(),
            dirty_count: 0,
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
        self.dirty_count
    }

    /// The cached value of `key`: `None` when not cached, `Some(None)` for a cached
    /// delete. A hit makes the entry the most recently used.
    pub fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        let slot = *self.index.get(key)?;
        self.unlink_used(slot);
        self.push_used(slot);
        Some(self.nodes[slot].value.as_deref())
    }

    /// Cached entries with keys in `range`, in key order (`None` values are deletes).
    pub fn range<'a>(
        &'a self,
        range: impl RangeBounds<[u8]> + 'a,
    ) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
        self.ordered
            .range::<[u8], _>(range)
            .map(|(k, &slot)| (&**k, self.nodes[slot].value.as_deref()))
    }

    /// Drops `key` from the cache, dirty or not.
    pub fn remove(&mut self, key: &[u8]) {
        let Some(slot) = self.index.remove(key) else {
            return;
        };
        self.ordered.remove(key);
        self.unlink_used(slot);
        if self.nodes[slot].dirty {
            self.unlink_dirty(slot);
        }
        let node = self.nodes.remove(slot);
        let size = entry_size(&node.key, node.value.as_deref());
        self.own_bytes -= size;
        self.budget.release(size);
    }

    /// Caches a write of `key` as the latest dirty entry. Returns the entries to flush if
    /// the shared budget forced evictions: the evicted dirty entry first, then every other
    /// dirty entry in write order.
    pub fn write(&mut self, key: &[u8], value: Option<&[u8]>) -> DirtyBatch {
        match self.index.get(key) {
            Some(&slot) => self.update(slot, value),
            None => self.insert(key, value),
        }
        self.evict_while_over_budget()
    }

    /// Replaces the value of the entry in `slot`, reusing its buffer, and makes it the
    /// latest written and used.
    fn update(&mut self, slot: usize, value: Option<&[u8]>) {
        let node = &mut self.nodes[slot];
        let old_size = entry_size(&node.key, node.value.as_deref());
        match (&mut node.value, value) {
            (Some(buffer), Some(new)) => {
                buffer.clear();
                buffer.extend_from_slice(new);
            }
            (current, new) => *current = new.map(<[u8]>::to_vec),
        }
        let new_size = entry_size(&node.key, node.value.as_deref());
        let was_dirty = std::mem::replace(&mut node.dirty, true);
        self.own_bytes = self.own_bytes + new_size - old_size;
        self.budget.charge(new_size);
        self.budget.release(old_size);
        self.unlink_used(slot);
        self.push_used(slot);
        if was_dirty {
            self.unlink_dirty(slot);
        }
        self.push_dirty(slot);
    }

    fn insert(&mut self, key: &[u8], value: Option<&[u8]>) {
        let size = entry_size(key, value);
        self.own_bytes += size;
        self.budget.charge(size);
        let key: Arc<[u8]> = Arc::from(key);
        let slot = self.nodes.insert(Node {
            key: key.clone(),
            value: value.map(<[u8]>::to_vec),
            dirty: true,
            used_prev: Cell::new(NIL),
            used_next: Cell::new(NIL),
            dirty_prev: NIL,
            dirty_next: NIL,
        });
        self.index.insert(key.clone(), slot);
        self.ordered.insert(key, slot);
        self.push_used(slot);
        self.push_dirty(slot);
    }

    fn evict_while_over_budget(&mut self) -> DirtyBatch {
        let mut batch = DirtyBatch::new();
        while self.budget.exceeded() {
            let eldest = self.by_use.head.get();
            if eldest == NIL {
                break;
            }
            let node = &self.nodes[eldest];
            let (key, dirty, value) = (node.key.clone(), node.dirty, node.value.clone());
            self.remove(&key);
            tracing::trace!(dirty, "evicting cache entry");
            if dirty {
                batch.push((key.to_vec(), value));
                batch.extend(self.take_dirty());
            }
        }
        batch
    }

    /// Marks every dirty entry clean and returns them in the order of their latest write;
    /// cached deletes leave the cache (the wrapped store is about to hold them).
    pub fn take_dirty(&mut self) -> DirtyBatch {
        let mut batch = DirtyBatch::with_capacity(self.dirty_count);
        let mut slot = self.dirty.head.replace(NIL);
        self.dirty.tail.set(NIL);
        self.dirty_count = 0;
        while slot != NIL {
            let node = &mut self.nodes[slot];
            let next = node.dirty_next;
            node.dirty = false;
            node.dirty_prev = NIL;
            node.dirty_next = NIL;
            let (key, value) = (node.key.clone(), node.value.clone());
            if value.is_none() {
                self.remove(&key);
            }
            batch.push((key.to_vec(), value));
            slot = next;
        }
        batch
    }

    /// Forgets every entry, dirty or not.
    pub fn clear(&mut self) {
        self.budget.release(self.own_bytes);
        self.own_bytes = 0;
        self.nodes.clear();
        self.index.clear();
        self.ordered.clear();
        self.by_use = Ends::default();
        self.dirty = Ends::default();
        self.dirty_count = 0;
    }

    fn unlink_used(&self, slot: usize) {
        let node = &self.nodes[slot];
        let (prev, next) = (node.used_prev.replace(NIL), node.used_next.replace(NIL));
        match prev {
            NIL => self.by_use.head.set(next),
            p => self.nodes[p].used_next.set(next),
        }
        match next {
            NIL => self.by_use.tail.set(prev),
            n => self.nodes[n].used_prev.set(prev),
        }
    }

    fn push_used(&self, slot: usize) {
        let tail = self.by_use.tail.replace(slot);
        self.nodes[slot].used_prev.set(tail);
        match tail {
            NIL => self.by_use.head.set(slot),
            t => self.nodes[t].used_next.set(slot),
        }
    }

    fn unlink_dirty(&mut self, slot: usize) {
        let node = &mut self.nodes[slot];
        let (prev, next) = (node.dirty_prev, node.dirty_next);
        node.dirty_prev = NIL;
        node.dirty_next = NIL;
        match prev {
            NIL => self.dirty.head.set(next),
            p => self.nodes[p].dirty_next = next,
        }
        match next {
            NIL => self.dirty.tail.set(prev),
            n => self.nodes[n].dirty_prev = prev,
        }
        self.dirty_count -= 1;
    }

    fn push_dirty(&mut self, slot: usize) {
        let tail = self.dirty.tail.replace(slot);
        self.nodes[slot].dirty_prev = tail;
        match tail {
            NIL => self.dirty.head.set(slot),
            t => self.nodes[t].dirty_next = slot,
        }
        self.dirty_count += 1;
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
    use std::ops::Bound;

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

    #[test]
    fn a_key_written_again_is_updated_in_place_and_moves_behind_later_writes() {
        let budget = CacheBudget::new(room_for(10));
        let mut cache = RecordCache::new(budget.clone());
        cache.write(b"1", Some(b"a"));
        cache.write(b"2", Some(b"b"));
        cache.write(b"1", Some(b"c"));
        cache.write(b"1", None);
        assert_eq!(cache.dirty_count(), 2);
        assert_eq!(
            cache.own_bytes(),
            room_for(2) - 1,
            "a delete holds no value bytes"
        );
        assert_eq!(budget.used_bytes(), cache.own_bytes());
        assert_eq!(cache.get(b"1"), Some(None));
        assert_eq!(
            cache.take_dirty(),
            vec![(b"2".to_vec(), Some(b"b".to_vec())), (b"1".to_vec(), None)]
        );
        // The flushed delete left the cache.
        assert_eq!(cache.get(b"1"), None);
        assert_eq!(
            cache
                .range((Bound::<&[u8]>::Unbounded, Bound::<&[u8]>::Unbounded))
                .count(),
            1
        );
        assert_eq!(budget.used_bytes(), room_for(1));
    }

    /// The cache against a plain model of it (a list of entries with the ticks of their
    /// latest use and write), over a long pseudo-random sequence of operations.
    #[test]
    fn behaves_like_a_plain_model_of_eviction_and_flush_order() {
        /// Key, value, dirty, tick of the latest use, tick of the latest write.
        type Entry = (Vec<u8>, Option<Vec<u8>>, bool, u64, u64);
        struct Model {
            entries: Vec<Entry>,
            tick: u64,
            max: usize,
        }
        impl Model {
            fn bytes(&self) -> usize {
                self.entries
                    .iter()
                    .map(|(k, v, ..)| entry_size(k, v.as_deref()))
                    .sum()
            }
            fn take_dirty(&mut self) -> DirtyBatch {
                let mut dirty: Vec<_> = self.entries.iter_mut().filter(|e| e.2).collect();
                dirty.sort_by_key(|e| e.4);
                let batch: DirtyBatch = dirty
                    .into_iter()
                    .map(|e| {
                        e.2 = false;
                        (e.0.clone(), e.1.clone())
                    })
                    .collect();
                self.entries.retain(|e| e.1.is_some());
                batch
            }
            fn write(&mut self, key: &[u8], value: Option<&[u8]>) -> DirtyBatch {
                self.tick += 1;
                let tick = self.tick;
                self.entries.retain(|e| e.0 != key);
                self.entries
                    .push((key.to_vec(), value.map(<[u8]>::to_vec), true, tick, tick));
                let mut batch = DirtyBatch::new();
                while self.bytes() > self.max && !self.entries.is_empty() {
                    let eldest = (0..self.entries.len())
                        .min_by_key(|&i| self.entries[i].3)
                        .unwrap();
                    let (k, v, dirty, ..) = self.entries.remove(eldest);
                    if dirty {
                        batch.push((k, v));
                        batch.extend(self.take_dirty());
                    }
                }
                batch
            }
            fn get(&mut self, key: &[u8]) -> Option<Option<Vec<u8>>> {
                self.tick += 1;
                let tick = self.tick;
                let e = self.entries.iter_mut().find(|e| e.0 == key)?;
                e.3 = tick;
                Some(e.1.clone())
            }
        }
        let max = room_for(12);
        let mut cache = RecordCache::new(CacheBudget::new(max));
        let mut model = Model {
            entries: Vec::new(),
            tick: 0,
            max,
        };
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for step in 0..20_000 {
            let key = [b'a' + next(20) as u8];
            match next(10) {
                0..=4 => {
                    let value = match next(4) {
                        0 => None,
                        n => Some(vec![b'v'; n as usize]),
                    };
                    assert_eq!(
                        cache.write(&key, value.as_deref()),
                        model.write(&key, value.as_deref()),
                        "write at step {step}"
                    );
                }
                5..=7 => assert_eq!(
                    cache.get(&key).map(|v| v.map(<[u8]>::to_vec)),
                    model.get(&key),
                    "get at step {step}"
                ),
                8 => assert_eq!(
                    cache.take_dirty(),
                    model.take_dirty(),
                    "flush at step {step}"
                ),
                _ => {
                    cache.remove(&key);
                    model.entries.retain(|e| e.0 != key);
                }
            }
            assert_eq!(cache.own_bytes(), model.bytes(), "bytes at step {step}");
            assert_eq!(
                cache.dirty_count(),
                model.entries.iter().filter(|e| e.2).count()
            );
        }
    }
}
