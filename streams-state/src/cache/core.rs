//! What every caching layer shares: the thread's byte budget and the ordered map of cached
//! entries with its dirty set and eviction order.

use std::cell::{Cell, RefCell};
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

/// Entries written to the wrapped store by one flush, in flush order.
pub(crate) type DirtyBatch = Vec<DirtyEntry>;

/// A dirty entry leaving the cache for the wrapped store.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DirtyEntry {
    pub key: Vec<u8>,
    /// The latest value; `None` is a delete.
    pub value: Option<Vec<u8>>,
    /// What the wrapped store holds for the key, when the cache knows it (the flush
    /// listener's old value, which otherwise costs a read of the wrapped store).
    pub stored: Option<Option<Vec<u8>>>,
}

/// Largest stored value a dirty entry keeps (see [`DirtyEntry::stored`]). Not charged
/// to the budget, so kept small: counts and small aggregates, the values flushed most.
const STORED_VALUE_MAX_BYTES: usize = 64;

/// The wrapped store's value for the key of the last read the cache could not answer,
/// so that a write of that key right after (an aggregation reads, then writes) knows
/// what the store holds without reading it again at the flush.
///
/// Only the wrapped store's own writes could make it stale, and those happen at flushes,
/// for cached keys only: a key that missed the cache is not among them.
#[derive(Debug, Default)]
pub(crate) struct LastMiss(RefCell<Option<KnownValue>>);

/// A key and what the wrapped store holds for it (`None`: nothing).
type KnownValue = (Vec<u8>, Option<Vec<u8>>);

impl LastMiss {
    /// Remembers that the wrapped store holds `stored` for `key` (if small enough to keep).
    pub fn record(&self, key: &[u8], stored: Option<&[u8]>) {
        *self.0.borrow_mut() = keepable(stored).then(|| (key.to_vec(), stored.map(<[u8]>::to_vec)));
    }

    /// The remembered value if it is `key`'s; forgets it either way.
    pub fn take_for(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.0
            .borrow_mut()
            .take()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// Whether a dirty entry keeps `stored` (see [`STORED_VALUE_MAX_BYTES`]).
fn keepable(stored: Option<&[u8]>) -> bool {
    stored.is_none_or(|v| v.len() <= STORED_VALUE_MAX_BYTES)
}

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
    /// While dirty: the wrapped store's value, when known.
    stored: Option<Option<Vec<u8>>>,
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
/// The key order is built on the first range read only: caches that serve point reads
/// alone (counts, windowed aggregations, joins against tables) never pay for it.
pub(crate) struct RecordCache {
    budget: CacheBudget,
    own_bytes: usize,
    nodes: Slab<Node>,
    index: HashMap<Arc<[u8]>, usize, foldhash::fast::RandomState>,
    /// The same keys in order, once a range read asked for it.
    ordered: RefCell<Option<BTreeMap<Arc<[u8]>, usize>>>,
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
            ordered: RefCell::new(None),
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
        let slots: Vec<usize> = {
            let mut ordered = self.ordered.borrow_mut();
            let ordered = ordered.get_or_insert_with(|| {
                self.index
                    .iter()
                    .map(|(key, &slot)| (key.clone(), slot))
                    .collect()
            });
            ordered
                .range::<[u8], _>(range)
                .map(|(_, &slot)| slot)
                .collect()
        };
        slots.into_iter().map(|slot| {
            let node = &self.nodes[slot];
            (&*node.key, node.value.as_deref())
        })
    }

    /// Drops `key` from the cache, dirty or not.
    pub fn remove(&mut self, key: &[u8]) {
        let Some(slot) = self.index.remove(key) else {
            return;
        };
        if let Some(ordered) = self.ordered.get_mut() {
            ordered.remove(key);
        }
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
        self.write_over(key, value, None)
    }

    /// Like [`write`](Self::write), with what the wrapped store holds for `key` when the
    /// caller just read it there (`stored`; used if the key is not cached). A write over
    /// a clean entry knows it anyway: a clean entry holds what the store holds.
    pub fn write_over(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        stored: Option<Option<&[u8]>>,
    ) -> DirtyBatch {
        match self.index.get(key) {
            Some(&slot) => self.update(slot, value),
            None => self.insert(key, value, stored),
        }
        self.evict_while_over_budget()
    }

    /// Replaces the value of the entry in `slot` and makes it the latest written and
    /// used. A dirty entry's buffer is reused; a clean one's value becomes the stored
    /// value.
    fn update(&mut self, slot: usize, value: Option<&[u8]>) {
        let node = &mut self.nodes[slot];
        let old_size = entry_size(&node.key, node.value.as_deref());
        if node.dirty {
            match (&mut node.value, value) {
                (Some(buffer), Some(new)) => {
                    buffer.clear();
                    buffer.extend_from_slice(new);
                }
                (current, new) => *current = new.map(<[u8]>::to_vec),
            }
        } else {
            let previous = std::mem::replace(&mut node.value, value.map(<[u8]>::to_vec));
            node.stored = keepable(previous.as_deref()).then_some(previous);
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

    fn insert(&mut self, key: &[u8], value: Option<&[u8]>, stored: Option<Option<&[u8]>>) {
        let size = entry_size(key, value);
        self.own_bytes += size;
        self.budget.charge(size);
        let key: Arc<[u8]> = Arc::from(key);
        let slot = self.nodes.insert(Node {
            key: key.clone(),
            value: value.map(<[u8]>::to_vec),
            dirty: true,
            stored: stored
                .filter(|s| keepable(*s))
                .map(|s| s.map(<[u8]>::to_vec)),
            used_prev: Cell::new(NIL),
            used_next: Cell::new(NIL),
            dirty_prev: NIL,
            dirty_next: NIL,
        });
        self.index.insert(key.clone(), slot);
        if let Some(ordered) = self.ordered.get_mut() {
            ordered.insert(key, slot);
        }
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
            let node = &mut self.nodes[eldest];
            let (key, dirty, value) = (node.key.clone(), node.dirty, node.value.clone());
            let stored = node.stored.take();
            self.remove(&key);
            tracing::trace!(dirty, "evicting cache entry");
            if dirty {
                batch.push(DirtyEntry {
                    key: key.to_vec(),
                    value,
                    stored,
                });
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
            let stored = node.stored.take();
            let (key, value) = (node.key.clone(), node.value.clone());
            if value.is_none() {
                self.remove(&key);
            }
            batch.push(DirtyEntry {
                key: key.to_vec(),
                value,
                stored,
            });
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
        *self.ordered.get_mut() = None;
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

    /// Keys and values of a batch.
    fn pairs(batch: DirtyBatch) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        batch.into_iter().map(|e| (e.key, e.value)).collect()
    }

    #[test]
    fn a_dirty_entry_knows_the_stored_value_when_it_was_clean_or_given() {
        let mut cache = RecordCache::new(CacheBudget::new(room_for(10)));
        cache.write(b"1", Some(b"a"));
        cache.write_over(b"2", Some(b"b"), Some(Some(b"s")));
        cache.write_over(b"3", Some(b"c"), Some(None));
        let first = cache.take_dirty();
        let stored: Vec<_> = first.iter().map(|e| e.stored.clone()).collect();
        assert_eq!(stored, vec![None, Some(Some(b"s".to_vec())), Some(None)]);
        // Clean now: each holds what the store holds, and a write over it knows that.
        cache.write(b"1", Some(b"x"));
        cache.write(b"1", Some(b"y"));
        cache.write_over(b"2", None, Some(Some(b"ignored")));
        let second = cache.take_dirty();
        assert_eq!(
            second,
            vec![
                DirtyEntry {
                    key: b"1".to_vec(),
                    value: Some(b"y".to_vec()),
                    stored: Some(Some(b"a".to_vec())),
                },
                DirtyEntry {
                    key: b"2".to_vec(),
                    value: None,
                    stored: Some(Some(b"b".to_vec())),
                },
            ]
        );
        // Large values are not kept: the flush reads them from the store.
        let large = vec![7u8; STORED_VALUE_MAX_BYTES + 1];
        cache.write(b"4", Some(&large));
        cache.take_dirty();
        cache.write(b"4", Some(b"z"));
        assert_eq!(cache.take_dirty()[0].stored, None);
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
        let flushed = pairs(b.write(b"4", Some(b"x")));
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
            pairs(cache.take_dirty()),
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
        let flushed = pairs(b.write(b"3", Some(b"x")));
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
            pairs(cache.take_dirty()),
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
        type Pairs = Vec<(Vec<u8>, Option<Vec<u8>>)>;
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
            fn take_dirty(&mut self) -> Pairs {
                let mut dirty: Vec<_> = self.entries.iter_mut().filter(|e| e.2).collect();
                dirty.sort_by_key(|e| e.4);
                let batch: Pairs = dirty
                    .into_iter()
                    .map(|e| {
                        e.2 = false;
                        (e.0.clone(), e.1.clone())
                    })
                    .collect();
                self.entries.retain(|e| e.1.is_some());
                batch
            }
            fn write(&mut self, key: &[u8], value: Option<&[u8]>) -> Pairs {
                self.tick += 1;
                let tick = self.tick;
                self.entries.retain(|e| e.0 != key);
                self.entries
                    .push((key.to_vec(), value.map(<[u8]>::to_vec), true, tick, tick));
                let mut batch = Pairs::new();
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
                        pairs(cache.write(&key, value.as_deref())),
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
                    pairs(cache.take_dirty()),
                    model.take_dirty(),
                    "flush at step {step}"
                ),
                _ => {
                    cache.remove(&key);
                    model.entries.retain(|e| e.0 != key);
                }
            }
            assert_eq!(cache.own_bytes(), model.bytes(), "bytes at step {step}");
            if step % 500 == 250 {
                // The key order, built by the first range read and kept up to date since.
                let mut expected: Vec<(Vec<u8>, Option<Vec<u8>>)> = model
                    .entries
                    .iter()
                    .map(|(k, v, ..)| (k.clone(), v.clone()))
                    .collect();
                expected.sort();
                let all = (Bound::<&[u8]>::Unbounded, Bound::<&[u8]>::Unbounded);
                let got: Vec<(Vec<u8>, Option<Vec<u8>>)> = cache
                    .range(all)
                    .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                    .collect();
                assert_eq!(got, expected, "range at step {step}");
            }
            assert_eq!(
                cache.dirty_count(),
                model.entries.iter().filter(|e| e.2).count()
            );
        }
    }
}
