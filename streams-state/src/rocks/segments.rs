//! [`SegmentedDb`]: the time-segmented key space and retention shared by the RocksDB
//! window and session stores.
//!
//! Every data key starts with an 8-byte big-endian segment id (`time / segment
//! interval`, time being the window start or session end), followed by the store's
//! Kafka key layout. Expiry removes whole segments with one RocksDB `DeleteRange`. The
//! observed stream time is persisted on flush under a metadata key outside the segment
//! key space (segment ids are non-negative, so segment keys start below `0x80`).

use std::path::Path;

use rocksdb::WriteBatch;

use super::{Db, RocksDbConfig};
use crate::error::{Result, StoreError};
use crate::retention::Retention;

/// Where the observed stream time is persisted.
const STREAM_TIME_KEY: &[u8] = b"\xFFstream-time";

/// The 8-byte prefix of a segment.
pub(crate) fn segment_prefix(segment: i64) -> [u8; 8] {
    segment.to_be_bytes()
}

/// The segment of a data key (its 8-byte prefix).
fn segment_of_key(key: &[u8]) -> Option<i64> {
    let prefix: [u8; 8] = key.get(..8)?.try_into().ok()?;
    Some(i64::from_be_bytes(prefix))
}

/// `rest` behind the prefix of `segment`.
pub(crate) fn prefixed(segment: i64, rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + rest.len());
    out.extend_from_slice(&segment_prefix(segment));
    out.extend_from_slice(rest);
    out
}

/// End (exclusive) of the segment key space.
#[cfg(test)]
pub(crate) const SEGMENTS_END: &[u8] = &[0x80];

/// A RocksDB database whose keys are grouped in time segments, with retention.
pub(crate) struct SegmentedDb {
    pub(crate) db: Db,
    pub(crate) retention: Retention,
    interval_ms: i64,
    /// Segments below this id have been deleted.
    expired_below: i64,
}

impl SegmentedDb {
    /// Opens the database and resumes the persisted stream time, expiring what it implies.
    pub(crate) fn open(
        name: &str,
        task_dir: &Path,
        config: &RocksDbConfig,
        retention_ms: i64,
        interval_ms: i64,
    ) -> Result<Self> {
        let db = Db::open(name, task_dir, config)?;
        let mut retention = Retention::new(retention_ms);
        if let Some(bytes) = db.get(STREAM_TIME_KEY)? {
            let bytes: [u8; 8] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::malformed(name, "persisted stream time is not 8 bytes"))?;
            retention.observe(i64::from_be_bytes(bytes));
        }
        let mut segmented = SegmentedDb {
            db,
            retention,
            interval_ms,
            expired_below: 0,
        };
        segmented.expire()?;
        Ok(segmented)
    }

    /// The segment holding `time` (negative times fall into segment 0).
    pub(crate) fn segment_of(&self, time: i64) -> i64 {
        time.max(0) / self.interval_ms
    }

    /// Deletes every segment that lies entirely before the earliest live time.
    pub(crate) fn expire(&mut self) -> Result<()> {
        let min_live = self.retention.min_live();
        if min_live <= 0 {
            return Ok(());
        }
        let live_segment = self.segment_of(min_live);
        if live_segment > self.expired_below {
            let mut batch = WriteBatch::default();
            batch.delete_range(
                segment_prefix(self.expired_below),
                segment_prefix(live_segment),
            );
            self.db.write(batch)?;
            tracing::debug!(store = %self.db.name(), below_segment = live_segment, "dropped expired segments");
            self.expired_below = live_segment;
        }
        Ok(())
    }

    /// Visits, in key order, the keys within `[lower, upper)` of every segment in
    /// `[first, last]`, `bounds(segment)` giving that segment's `(lower, upper)`, and stops
    /// when `visit` returns `false`.
    ///
    /// One iterator serves every segment, with one seek each: where a seek lands past
    /// its segment tells which segment holds data next, so empty ones cost nothing.
    pub(crate) fn scan_segments(
        &self,
        first: i64,
        last: i64,
        bounds: impl Fn(i64) -> (Vec<u8>, Vec<u8>),
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool>,
    ) -> Result<()> {
        if first > last {
            return Ok(());
        }
        let mut iter = self.db.raw_iterator(
            &segment_prefix(first),
            &segment_prefix(last.saturating_add(1)),
        )?;
        let mut segment = first;
        while segment <= last {
            let (lower, upper) = bounds(segment);
            iter.seek(&lower);
            let landed = loop {
                let (Some(key), Some(value)) = (iter.key(), iter.value()) else {
                    return self.db.iterator_status(&iter);
                };
                if key >= upper.as_slice() {
                    break segment_of_key(key);
                }
                if !visit(key, value)? {
                    return Ok(());
                }
                iter.next();
            };
            segment = match landed {
                Some(next) if next > segment => next,
                _ => segment + 1,
            };
        }
        Ok(())
    }

    /// Persists stream time and flushes memtables.
    pub(crate) fn flush(&mut self) -> Result<()> {
        if self.retention.stream_time() != i64::MIN {
            self.db
                .put(STREAM_TIME_KEY, &self.retention.stream_time().to_be_bytes())?;
        }
        self.db.flush()
    }

    /// Flushes (if open) and closes.
    pub(crate) fn close(&mut self) -> Result<()> {
        if self.db.is_open() {
            self.flush()?;
        }
        self.db.close()
    }
}
