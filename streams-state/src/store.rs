//! The [`StateStore`] trait every store and store layer implements.

use crate::error::Result;
use crate::restore::ChangelogRecord;

/// Life cycle and restoration shared by key-value, window and session stores.
///
/// Stores are owned by one task and used from one thread at a time, so writes take
/// `&mut self` and reads `&self`; implementations must be [`Send`] so a task can move
/// between stream threads.
pub trait StateStore: Send {
    /// The store name, unique within a topology; the changelog topic is
    /// `<application.id>-<name>-changelog`.
    fn name(&self) -> &str;

    /// Whether the store keeps its data on disk across restarts (RocksDB) or not (in-memory).
    fn persistent(&self) -> bool;

    /// Makes every write so far durable (RocksDB: flushes the memtables, since the
    /// write-ahead log is off by default) and, in caching layers, forwards dirty entries.
    fn flush(&mut self) -> Result<()>;

    /// Empties write caches into the layers below (and so into the changelog), without
    /// making anything durable; cheap enough for every commit. A no-op for stores without
    /// a cache.
    fn flush_cache(&mut self) -> Result<()> {
        Ok(())
    }

    /// Flushes and releases the store's resources. Closing twice is a no-op; any other use
    /// after closing fails with [`StoreError::Closed`](crate::StoreError::Closed).
    fn close(&mut self) -> Result<()>;

    /// Whether [`close`](Self::close) has not been called yet.
    fn is_open(&self) -> bool;

    /// Applies one batch of changelog records, in order, without logging them again and
    /// without going through any cache. `None` values are tombstones.
    ///
    /// Keys use the changelog layout of the store kind: raw keys for key-value stores,
    /// [`window_store_key`](crate::key_layout::window_store_key) (key + timestamp + seqnum)
    /// for window stores and [`session_key`](crate::key_layout::session_key)
    /// (key + end + start) for session stores. RocksDB stores apply a batch atomically with
    /// a single `WriteBatch`.
    fn restore_batch(&mut self, records: &[ChangelogRecord]) -> Result<()>;
}

/// Boxed stores (`Box<dyn KeyValueStore>` and friends) are stores too, so layers such as
/// change-logging can wrap a store chosen at run time.
impl<S: StateStore + ?Sized> StateStore for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn persistent(&self) -> bool {
        (**self).persistent()
    }
    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
    fn flush_cache(&mut self) -> Result<()> {
        (**self).flush_cache()
    }
    fn close(&mut self) -> Result<()> {
        (**self).close()
    }
    fn is_open(&self) -> bool {
        (**self).is_open()
    }
    fn restore_batch(&mut self, records: &[ChangelogRecord]) -> Result<()> {
        (**self).restore_batch(records)
    }
}
