//! Key-value stores over bytes: the [`KeyValueStore`] trait and its in-memory and RocksDB
//! implementations.
//!
//! Range queries return materialised `Vec`s rather than borrowing iterators: results are a
//! consistent snapshot, the store stays usable (and writable) while the caller walks them,
//! and the traits stay object-safe for layering. Callers scanning very large stores should
//! page with [`KeyValueStore::range`] bounds.

mod memory;
mod rocksdb;

#[cfg(test)]
pub(crate) mod conformance;

pub use self::memory::InMemoryKeyValueStore;
pub use self::rocksdb::RocksDbKeyValueStore;

use crate::error::Result;
use crate::store::StateStore;

/// A key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// A store mapping byte keys to byte values, ordered by unsigned lexicographic key order.
pub trait KeyValueStore: StateStore {
    /// The value stored for `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Stores `value` for `key`, replacing any previous value.
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()>;

    /// Stores `value` only when `key` has no value; returns the existing value otherwise
    /// (`None` means the value was written).
    fn put_if_absent(&mut self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Removes `key` and returns its previous value.
    fn delete(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Applies several writes in order; a `None` value deletes the key, as a `null` does
    /// in Kafka's `putAll`. RocksDB stores apply them atomically.
    fn put_all(&mut self, entries: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()>;

    /// Entries with `from <= key <= to` in ascending key order; `None` leaves that end
    /// open. Empty (not an error) when `from > to`, as in Kafka.
    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<KeyValue>>;

    /// The entries of [`range`](Self::range) in descending key order.
    fn reverse_range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<KeyValue>>;

    /// Entries whose key starts with `prefix`, in ascending key order.
    fn prefix_scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>>;

    /// Every entry in ascending key order.
    fn all(&self) -> Result<Vec<KeyValue>> {
        self.range(None, None)
    }

    /// Every entry in descending key order.
    fn reverse_all(&self) -> Result<Vec<KeyValue>> {
        self.reverse_range(None, None)
    }

    /// The number of entries: exact for in-memory stores, RocksDB's estimate otherwise.
    fn approximate_num_entries(&self) -> Result<u64>;
}

/// Whether `from > to`, in which case a range is empty.
pub(crate) fn inverted(from: Option<&[u8]>, to: Option<&[u8]>) -> bool {
    matches!((from, to), (Some(f), Some(t)) if f > t)
}

impl<S: KeyValueStore + ?Sized> KeyValueStore for Box<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).get(key)
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        (**self).put(key, value)
    }
    fn put_if_absent(&mut self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).put_if_absent(key, value)
    }
    fn delete(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).delete(key)
    }
    fn put_all(&mut self, entries: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        (**self).put_all(entries)
    }
    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<KeyValue>> {
        (**self).range(from, to)
    }
    fn reverse_range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<KeyValue>> {
        (**self).reverse_range(from, to)
    }
    fn prefix_scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>> {
        (**self).prefix_scan(prefix)
    }
    fn all(&self) -> Result<Vec<KeyValue>> {
        (**self).all()
    }
    fn reverse_all(&self) -> Result<Vec<KeyValue>> {
        (**self).reverse_all()
    }
    fn approximate_num_entries(&self) -> Result<u64> {
        (**self).approximate_num_entries()
    }
}
