//! Window stores over bytes: the [`WindowStore`] trait, its options and the in-memory and
//! RocksDB implementations.
//!
//! A window store keeps values per (key, window start), drops windows older than stream
//! time minus retention, and optionally retains duplicates (several values for the same
//! key and window, as stream-stream joins need). Results are materialised `Vec`s; see
//! [`key_value`](crate::key_value) for why.

mod memory;
mod rocksdb;

#[cfg(test)]
pub(crate) mod conformance;

pub use self::memory::InMemoryWindowStore;
pub use self::rocksdb::RocksDbWindowStore;

use crate::error::Result;
use crate::retention;
use crate::store::StateStore;

/// A value stored for one key and window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowEntry {
    /// Key bytes.
    pub key: Vec<u8>,
    /// Window start, epoch milliseconds.
    pub window_start: i64,
    /// Value bytes.
    pub value: Vec<u8>,
}

/// One write of [`WindowStore::put_all`]: key bytes, value (`None` removes the window)
/// and window start.
pub type WindowWrite = (Vec<u8>, Option<Vec<u8>>, i64);

/// How a window store keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowStoreOptions {
    /// How long windows are kept behind stream time, in milliseconds; Kafka sets it to at
    /// least window size + grace.
    pub retention_ms: i64,
    /// Width of a RocksDB segment in milliseconds; expiry drops whole segments. Defaults to
    /// half the retention, at least one minute (Kafka's default).
    pub segment_interval_ms: i64,
    /// Keep every value put for the same key and window (stream-stream joins) instead of
    /// replacing it. With duplicates, `None` puts are ignored, as in Kafka.
    pub retain_duplicates: bool,
}

impl WindowStoreOptions {
    /// Options with the given retention, Kafka's default segment interval and no
    /// duplicates.
    pub fn new(retention_ms: i64) -> Self {
        WindowStoreOptions {
            retention_ms,
            segment_interval_ms: retention::default_segment_interval(retention_ms),
            retain_duplicates: false,
        }
    }

    /// Sets [`retain_duplicates`](Self::retain_duplicates).
    pub fn with_duplicates(mut self, retain: bool) -> Self {
        self.retain_duplicates = retain;
        self
    }

    /// Sets [`segment_interval_ms`](Self::segment_interval_ms).
    pub fn with_segment_interval_ms(mut self, interval_ms: i64) -> Self {
        self.segment_interval_ms = interval_ms;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        retention::validate(self.retention_ms, self.segment_interval_ms)
    }
}

/// A store of values per key and window start, with time-based retention.
///
/// Window starts must not be negative. Stream time is the largest window start written or
/// restored; windows starting at or before `stream time - retention` are dropped on write
/// and invisible to reads. Time bounds of every fetch are inclusive.
pub trait WindowStore: StateStore {
    /// Stores `value` for `key` in the window starting at `window_start`; `None` removes
    /// the window (ignored when duplicates are retained). Expired windows are dropped.
    fn put(&mut self, key: &[u8], value: Option<&[u8]>, window_start: i64) -> Result<()>;

    /// Stores several windows, as that many [`put`](Self::put)s in order would; stores
    /// that can write them in one batch do (a cache flush writes through here).
    fn put_all(&mut self, writes: &[WindowWrite]) -> Result<()> {
        for (key, value, window_start) in writes {
            self.put(key, value.as_deref(), *window_start)?;
        }
        Ok(())
    }

    /// The value of `key` in the window starting exactly at `window_start` (the first one
    /// when duplicates are retained).
    fn fetch(&self, key: &[u8], window_start: i64) -> Result<Option<Vec<u8>>>;

    /// The values of `key` in windows starting within `[time_from, time_to]`, as
    /// `(window start, value)` in ascending window start order (duplicates in put order).
    fn fetch_time_range(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>>;

    /// Entries with `key_from <= key <= key_to` (open ends when `None`) in windows
    /// starting within `[time_from, time_to]`, ordered by window start, then key.
    fn fetch_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<WindowEntry>>;

    /// Entries of every key in windows starting within `[time_from, time_to]`, ordered by
    /// window start, then key.
    fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<Vec<WindowEntry>> {
        self.fetch_range(None, None, time_from, time_to)
    }

    /// Every live entry, ordered by window start, then key.
    fn all(&self) -> Result<Vec<WindowEntry>> {
        self.fetch_all(i64::MIN, i64::MAX)
    }

    /// The retention period in milliseconds.
    fn retention_ms(&self) -> i64;

    /// Whether duplicates are retained.
    fn retain_duplicates(&self) -> bool;

    /// The largest window start observed, `i64::MIN` while empty.
    fn observed_stream_time(&self) -> i64;
}

/// Kafka's sequence number generator for duplicates: 0 without duplicates, otherwise
/// incremented before each write and kept within 31 bits.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SeqNum {
    retain_duplicates: bool,
    current: u32,
}

impl SeqNum {
    pub(crate) fn new(retain_duplicates: bool) -> Self {
        SeqNum {
            retain_duplicates,
            current: 0,
        }
    }

    /// The sequence number for the next write.
    pub(crate) fn next(&mut self) -> u32 {
        if self.retain_duplicates {
            self.current = (self.current + 1) & 0x7FFF_FFFF;
        }
        self.current
    }
}

/// Clamps inclusive time bounds to what can be live: not before `min_live` or 0, not after
/// stream time. `None` when nothing can match.
pub(crate) fn live_time_bounds(
    retention: &retention::Retention,
    time_from: i64,
    time_to: i64,
) -> Option<(i64, i64)> {
    if retention.stream_time() == i64::MIN {
        return None;
    }
    let from = time_from.max(retention.min_live()).max(0);
    let to = time_to.min(retention.stream_time());
    (from <= to).then_some((from, to))
}

impl<S: WindowStore + ?Sized> WindowStore for Box<S> {
    fn put(&mut self, key: &[u8], value: Option<&[u8]>, window_start: i64) -> Result<()> {
        (**self).put(key, value, window_start)
    }
    fn put_all(&mut self, writes: &[WindowWrite]) -> Result<()> {
        (**self).put_all(writes)
    }
    fn fetch(&self, key: &[u8], window_start: i64) -> Result<Option<Vec<u8>>> {
        (**self).fetch(key, window_start)
    }
    fn fetch_time_range(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>> {
        (**self).fetch_time_range(key, time_from, time_to)
    }
    fn fetch_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<WindowEntry>> {
        (**self).fetch_range(key_from, key_to, time_from, time_to)
    }
    fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<Vec<WindowEntry>> {
        (**self).fetch_all(time_from, time_to)
    }
    fn all(&self) -> Result<Vec<WindowEntry>> {
        (**self).all()
    }
    fn retention_ms(&self) -> i64 {
        (**self).retention_ms()
    }
    fn retain_duplicates(&self) -> bool {
        (**self).retain_duplicates()
    }
    fn observed_stream_time(&self) -> i64 {
        (**self).observed_stream_time()
    }
}
