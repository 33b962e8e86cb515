//! [`RocksDbWindowStore`]: a persistent window store in one segmented RocksDB database.
//!
//! Layout choice: one database per store (not one per segment as in Kafka). Every RocksDB
//! key is an 8-byte big-endian segment id (`window start / segment interval`) followed by
//! Kafka's window store key (key, window start, seqnum); see
//! [`SegmentedDb`](crate::rocks). Within a segment, entries are ordered by key, then
//! window start, so fetching one key is a single bounded seek per non-empty segment, and
//! expiry removes whole segments with one `DeleteRange`, as cheap as dropping a segment
//! database.

use std::path::Path;

use ::rocksdb::WriteBatch;

use super::{live_time_bounds, SeqNum, WindowEntry, WindowStore, WindowStoreOptions, WindowWrite};
use crate::error::{Result, StoreError};
use crate::key_layout::{
    composite_upper_bound, key_successor, split_window_store_key, window_store_key,
};
use crate::restore::ChangelogRecord;
use crate::retention::check_timestamp;
use crate::rocks::{prefixed, segment_prefix, RocksDbConfig, SegmentedDb};
use crate::store::StateStore;

/// A window store in its own RocksDB database at `<task dir>/rocksdb/<name>`; see the
/// module documentation for the key layout.
pub struct RocksDbWindowStore {
    seg: SegmentedDb,
    options: WindowStoreOptions,
    seqnum: SeqNum,
}

impl RocksDbWindowStore {
    /// Opens or creates the store `name` inside the task directory `task_dir`, resuming
    /// the stream time persisted by the last flush.
    pub fn open(
        name: &str,
        task_dir: &Path,
        config: &RocksDbConfig,
        options: WindowStoreOptions,
    ) -> Result<Self> {
        options.validate()?;
        Ok(RocksDbWindowStore {
            seg: SegmentedDb::open(
                name,
                task_dir,
                config,
                options.retention_ms,
                options.segment_interval_ms,
            )?,
            options,
            seqnum: SeqNum::new(options.retain_duplicates),
        })
    }

    /// Adds a [`put`](WindowStore::put) to `batch`: the next sequence number when
    /// duplicates are retained (where a delete is ignored).
    fn stage_put(
        &mut self,
        batch: &mut WriteBatch,
        key: &[u8],
        value: Option<&[u8]>,
        window_start: i64,
    ) {
        if value.is_none() && self.options.retain_duplicates {
            return;
        }
        let seq = if value.is_some() {
            self.seqnum.next()
        } else {
            0
        };
        self.stage(batch, key, value, window_start, seq);
    }

    /// Adds a write to `batch` unless the window has expired; advances stream time.
    fn stage(
        &mut self,
        batch: &mut WriteBatch,
        key: &[u8],
        value: Option<&[u8]>,
        window_start: i64,
        seq: u32,
    ) {
        self.seg.retention.observe(window_start);
        if self.seg.retention.is_expired(window_start) {
            tracing::debug!(store = %self.seg.db.name(), window_start, "skipping write to expired window");
            return;
        }
        let db_key = prefixed(
            self.seg.segment_of(window_start),
            &window_store_key(key, window_start, seq),
        );
        match value {
            Some(v) => batch.put(db_key, v),
            None => batch.delete(db_key),
        }
    }

    /// Visits decoded entries within `[lower, upper)` (RocksDB keys of one segment).
    fn scan_segment(
        &self,
        lower: &[u8],
        upper: &[u8],
        mut visit: impl FnMut(&[u8], i64, &[u8]),
    ) -> Result<()> {
        self.seg.db.scan(Some(lower), Some(upper), false, |k, v| {
            visit_entry(self.seg.db.name(), k, v, &mut visit)
        })
    }

    /// Visits decoded entries of the segments holding `[from, to]`, within
    /// `bounds(segment)` of each (see [`SegmentedDb::scan_segments`]).
    fn scan_segments(
        &self,
        from: i64,
        to: i64,
        bounds: impl Fn(i64) -> (Vec<u8>, Vec<u8>),
        mut visit: impl FnMut(&[u8], i64, &[u8]),
    ) -> Result<()> {
        self.seg.scan_segments(
            self.seg.segment_of(from),
            self.seg.segment_of(to),
            bounds,
            |k, v| visit_entry(self.seg.db.name(), k, v, &mut visit),
        )
    }
}

/// Decodes a RocksDB key of a window store (segment prefix, key, window start,
/// sequence number) and hands the entry to `visit`; always continues.
fn visit_entry(
    store: &str,
    db_key: &[u8],
    value: &[u8],
    visit: &mut impl FnMut(&[u8], i64, &[u8]),
) -> Result<bool> {
    let (key, window_start, _) = db_key
        .get(8..)
        .and_then(split_window_store_key)
        .ok_or_else(|| StoreError::malformed(store, "window store key too short"))?;
    visit(key, window_start, value);
    Ok(true)
}

impl StateStore for RocksDbWindowStore {
    fn name(&self) -> &str {
        self.seg.db.name()
    }

    fn persistent(&self) -> bool {
        true
    }

    fn flush(&mut self) -> Result<()> {
        self.seg.flush()
    }

    fn close(&mut self) -> Result<()> {
        self.seg.close()
    }

    fn is_open(&self) -> bool {
        self.seg.db.is_open()
    }

    fn restore_batch(&mut self, records: &[ChangelogRecord]) -> Result<()> {
        self.seg.db.check_open()?;
        let mut batch = WriteBatch::default();
        for (store_key, value) in records {
            let (key, window_start, seq) = split_window_store_key(store_key).ok_or_else(|| {
                StoreError::malformed(
                    self.seg.db.name(),
                    "window changelog key shorter than 12 bytes",
                )
            })?;
            if window_start < 0 {
                return Err(StoreError::malformed(
                    self.seg.db.name(),
                    format!("negative window start {window_start} in changelog"),
                ));
            }
            self.stage(&mut batch, key, value.as_deref(), window_start, seq);
        }
        self.seg.db.write(batch)?;
        self.seg.expire()
    }
}

impl WindowStore for RocksDbWindowStore {
    fn put(&mut self, key: &[u8], value: Option<&[u8]>, window_start: i64) -> Result<()> {
        self.seg.db.check_open()?;
        check_timestamp("window start", window_start)?;
        let mut batch = WriteBatch::default();
        self.stage_put(&mut batch, key, value, window_start);
        self.seg.db.write(batch)?;
        self.seg.expire()
    }

    /// One RocksDB write for all of them.
    fn put_all(&mut self, writes: &[WindowWrite]) -> Result<()> {
        self.seg.db.check_open()?;
        for (_, _, window_start) in writes {
            check_timestamp("window start", *window_start)?;
        }
        let mut batch = WriteBatch::default();
        for (key, value, window_start) in writes {
            self.stage_put(&mut batch, key, value.as_deref(), *window_start);
        }
        self.seg.db.write(batch)?;
        self.seg.expire()
    }

    fn fetch(&self, key: &[u8], window_start: i64) -> Result<Option<Vec<u8>>> {
        self.seg.db.check_open()?;
        if window_start < 0 || self.seg.retention.is_expired(window_start) {
            return Ok(None);
        }
        let segment = self.seg.segment_of(window_start);
        if !self.options.retain_duplicates {
            // One entry per key and window, always at sequence number 0: a point read,
            // much cheaper than an iterator.
            return self
                .seg
                .db
                .get(&prefixed(segment, &window_store_key(key, window_start, 0)));
        }
        let lower = prefixed(segment, &window_store_key(key, window_start, 0));
        let upper = key_successor(&prefixed(
            segment,
            &window_store_key(key, window_start, u32::MAX),
        ));
        let mut found = None;
        self.scan_segment(&lower, &upper, |k, t, v| {
            if found.is_none() && k == key && t == window_start {
                found = Some(v.to_vec());
            }
        })?;
        Ok(found)
    }

    fn fetch_time_range(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>> {
        self.seg.db.check_open()?;
        let Some((from, to)) = live_time_bounds(&self.seg.retention, time_from, time_to) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        self.scan_segments(
            from,
            to,
            |segment| {
                (
                    prefixed(segment, &window_store_key(key, from, 0)),
                    key_successor(&prefixed(segment, &window_store_key(key, to, u32::MAX))),
                )
            },
            |k, t, v| {
                if k == key && (from..=to).contains(&t) {
                    out.push((t, v.to_vec()));
                }
            },
        )?;
        Ok(out)
    }

    fn fetch_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<WindowEntry>> {
        self.seg.db.check_open()?;
        if crate::key_value::inverted(key_from, key_to) {
            return Ok(Vec::new());
        }
        let Some((from, to)) = live_time_bounds(&self.seg.retention, time_from, time_to) else {
            return Ok(Vec::new());
        };
        let mut max_suffix = to.to_be_bytes().to_vec();
        max_suffix.extend_from_slice(&u32::MAX.to_be_bytes());
        let mut out = Vec::new();
        self.scan_segments(
            from,
            to,
            |segment| {
                let lower = prefixed(segment, key_from.unwrap_or_default());
                let upper = match key_to {
                    Some(kt) => {
                        key_successor(&prefixed(segment, &composite_upper_bound(kt, &max_suffix)))
                    }
                    None => segment_prefix(segment + 1).to_vec(),
                };
                (lower, upper)
            },
            |k, t, v| {
                let in_keys = key_from.is_none_or(|f| k >= f) && key_to.is_none_or(|kt| k <= kt);
                if in_keys && (from..=to).contains(&t) {
                    out.push(WindowEntry {
                        key: k.to_vec(),
                        window_start: t,
                        value: v.to_vec(),
                    });
                }
            },
        )?;
        // Stable: duplicates of one key and window keep their sequence order.
        out.sort_by(|a, b| (a.window_start, &a.key).cmp(&(b.window_start, &b.key)));
        Ok(out)
    }

    fn retention_ms(&self) -> i64 {
        self.options.retention_ms
    }

    fn retain_duplicates(&self) -> bool {
        self.options.retain_duplicates
    }

    fn observed_stream_time(&self) -> i64 {
        self.seg.retention.stream_time()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::conformance;

    #[test]
    fn conforms() {
        let dir = tempfile::tempdir().unwrap();
        let mut n = 0;
        conformance::run_all(&mut |options| {
            n += 1;
            RocksDbWindowStore::open(
                &format!("win{n}"),
                dir.path(),
                &RocksDbConfig::default(),
                options,
            )
            .unwrap()
        });
    }

    #[test]
    fn expiry_deletes_segments_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let config = RocksDbConfig::default();
        let options = WindowStoreOptions::new(100).with_segment_interval_ms(10);
        let mut store = RocksDbWindowStore::open("win", dir.path(), &config, options).unwrap();
        for t in (0..100).step_by(5) {
            store.put(b"k", Some(b"v"), t).unwrap();
        }
        store.put(b"k", Some(b"v"), 300).unwrap();
        // Everything before segment 20 (time 200) is physically gone.
        let mut raw = 0;
        store
            .seg
            .db
            .scan(None, Some(crate::rocks::SEGMENTS_END), false, |_, _| {
                raw += 1;
                Ok(true)
            })
            .unwrap();
        assert_eq!(raw, 1);
        store.close().unwrap();

        let store = RocksDbWindowStore::open("win", dir.path(), &config, options).unwrap();
        assert_eq!(store.observed_stream_time(), 300);
        assert_eq!(store.fetch(b"k", 300).unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn sparse_segments_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let options = WindowStoreOptions::new(i64::MAX / 2).with_segment_interval_ms(1);
        let mut store =
            RocksDbWindowStore::open("win", dir.path(), &RocksDbConfig::default(), options)
                .unwrap();
        store.put(b"k", Some(b"a"), 0).unwrap();
        store.put(b"k", Some(b"b"), 1_000_000_000).unwrap();
        // One seek per existing segment, not a billion.
        assert_eq!(store.fetch_time_range(b"k", 0, i64::MAX).unwrap().len(), 2);
        assert_eq!(store.all().unwrap().len(), 2);
    }

    #[test]
    fn put_all_writes_what_the_same_puts_would() {
        let writes: Vec<WindowWrite> = vec![
            (b"a".to_vec(), Some(b"1".to_vec()), 0),
            (b"b".to_vec(), Some(b"2".to_vec()), 1_000),
            (b"a".to_vec(), None, 0),
            (b"c".to_vec(), Some(b"3".to_vec()), 120_000),
            (b"c".to_vec(), Some(b"4".to_vec()), 120_000),
        ];
        for duplicates in [false, true] {
            let open = |dir: &Path| {
                let options = WindowStoreOptions::new(60_000)
                    .with_segment_interval_ms(30_000)
                    .with_duplicates(duplicates);
                RocksDbWindowStore::open("win", dir, &RocksDbConfig::default(), options).unwrap()
            };
            let (one_by_one, batched) =
                (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let mut expected = open(one_by_one.path());
            for (key, value, start) in &writes {
                expected.put(key, value.as_deref(), *start).unwrap();
            }
            let mut store = open(batched.path());
            store.put_all(&writes).unwrap();
            // Window 1,000 expired with the write at 120,000, in both.
            assert_eq!(
                store.all().unwrap(),
                expected.all().unwrap(),
                "duplicates: {duplicates}"
            );
            assert_eq!(store.fetch(b"b", 1_000).unwrap(), None);
        }
    }

    #[test]
    fn key_range_fetches_match_the_in_memory_store_on_awkward_keys() {
        use crate::window::InMemoryWindowStore;

        // Deterministic pseudo-random keys over a tiny alphabet, so keys often prefix one
        // another and contain 0x00 and 0xFF bytes.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let alphabet = [0x00u8, 0x01, 0x7F, 0xFF];
        let random_key = |next: &mut dyn FnMut(u64) -> u64| -> Vec<u8> {
            let len = next(4) as usize;
            (0..len).map(|_| alphabet[next(4) as usize]).collect()
        };

        let dir = tempfile::tempdir().unwrap();
        let options = WindowStoreOptions::new(1_000_000).with_segment_interval_ms(7);
        let mut rocks =
            RocksDbWindowStore::open("win", dir.path(), &RocksDbConfig::default(), options)
                .unwrap();
        let mut memory = InMemoryWindowStore::new("win", options).unwrap();
        for i in 0..300 {
            let key = random_key(&mut next);
            let start = next(40) as i64;
            let value = format!("{i}");
            rocks.put(&key, Some(value.as_bytes()), start).unwrap();
            memory.put(&key, Some(value.as_bytes()), start).unwrap();
        }
        for _ in 0..300 {
            let (a, b) = (random_key(&mut next), random_key(&mut next));
            let (from, to) = if a <= b { (a, b) } else { (b, a) };
            let t1 = next(45) as i64;
            let t2 = t1 + next(20) as i64;
            let from = (next(5) > 0).then_some(from);
            let to = (next(5) > 0).then_some(to);
            assert_eq!(
                rocks
                    .fetch_range(from.as_deref(), to.as_deref(), t1, t2)
                    .unwrap(),
                memory
                    .fetch_range(from.as_deref(), to.as_deref(), t1, t2)
                    .unwrap(),
                "keys {from:?}..={to:?}, times {t1}..={t2}"
            );
            let key = random_key(&mut next);
            assert_eq!(
                rocks.fetch_time_range(&key, t1, t2).unwrap(),
                memory.fetch_time_range(&key, t1, t2).unwrap()
            );
        }
    }
}
