//! [`RocksDbSessionStore`]: a persistent session store in one segmented RocksDB database.
//!
//! Layout choice: one database per store, every RocksDB key being an 8-byte big-endian
//! segment id (`session end / segment interval`) followed by Kafka's session key (key,
//! end, start); see [`SegmentedDb`](crate::rocks). Within a segment, sessions of a key
//! are contiguous and ordered by end, then start, so `find_sessions` is one bounded seek
//! per non-empty segment from the earliest end searched, and expiry drops whole segments.

use std::path::Path;

use ::rocksdb::WriteBatch;

use super::{decode_changelog_key, SessionEntry, SessionKey, SessionStore, SessionStoreOptions};
use crate::error::{Result, StoreError};
use crate::key_layout::{key_successor, session_key, split_session_key};
use crate::restore::ChangelogRecord;
use crate::rocks::{prefixed, RocksDbConfig, SegmentedDb};
use crate::store::StateStore;

/// A session store in its own RocksDB database at `<task dir>/rocksdb/<name>`; see the
/// module documentation for the key layout.
pub struct RocksDbSessionStore {
    seg: SegmentedDb,
    options: SessionStoreOptions,
}

impl RocksDbSessionStore {
    /// Opens or creates the store `name` inside the task directory `task_dir`, resuming
    /// the stream time persisted by the last flush.
    pub fn open(
        name: &str,
        task_dir: &Path,
        config: &RocksDbConfig,
        options: SessionStoreOptions,
    ) -> Result<Self> {
        options.validate()?;
        Ok(RocksDbSessionStore {
            seg: SegmentedDb::open(
                name,
                task_dir,
                config,
                options.retention_ms,
                options.segment_interval_ms,
            )?,
            options,
        })
    }

    fn db_key(&self, session: &SessionKey) -> Vec<u8> {
        prefixed(
            self.seg.segment_of(session.end),
            &session_key(&session.key, session.start, session.end),
        )
    }

    /// Adds a write to `batch` unless the session has expired; advances stream time.
    fn stage(&mut self, batch: &mut WriteBatch, session: &SessionKey, aggregate: Option<&[u8]>) {
        self.seg.retention.observe(session.end);
        if self.seg.retention.is_expired(session.end) {
            tracing::debug!(store = %self.seg.db.name(), end = session.end, "skipping write to expired session");
            return;
        }
        let db_key = self.db_key(session);
        match aggregate {
            Some(v) => batch.put(db_key, v),
            None => batch.delete(db_key),
        }
    }

    fn write(&mut self, session: &SessionKey, aggregate: Option<&[u8]>) -> Result<()> {
        let mut batch = WriteBatch::default();
        self.stage(&mut batch, session, aggregate);
        self.seg.db.write(batch)?;
        self.seg.expire()
    }
}

impl StateStore for RocksDbSessionStore {
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
        for (bytes, value) in records {
            let session = decode_changelog_key(self.seg.db.name(), bytes)?;
            self.stage(&mut batch, &session, value.as_deref());
        }
        self.seg.db.write(batch)?;
        self.seg.expire()
    }
}

impl SessionStore for RocksDbSessionStore {
    fn put(&mut self, session: &SessionKey, aggregate: &[u8]) -> Result<()> {
        self.seg.db.check_open()?;
        session.validate()?;
        self.write(session, Some(aggregate))
    }

    fn remove(&mut self, session: &SessionKey) -> Result<()> {
        self.seg.db.check_open()?;
        self.write(session, None)
    }

    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<Vec<SessionEntry>> {
        self.seg.db.check_open()?;
        let retention = &self.seg.retention;
        let max_end = retention.stream_time();
        let min_end = earliest_session_end.max(retention.min_live()).max(0);
        if max_end == i64::MIN || min_end > max_end || latest_session_start < 0 {
            return Ok(Vec::new());
        }
        let name = self.seg.db.name();
        let mut out = Vec::new();
        let first = self.seg.segment_of(min_end);
        let last = self.seg.segment_of(max_end);
        let bounds = |segment| {
            let lower = prefixed(segment, &session_key(key, 0, min_end));
            let upper = key_successor(&prefixed(
                segment,
                &session_key(key, latest_session_start, max_end),
            ));
            (lower, upper)
        };
        self.seg.scan_segments(first, last, bounds, |k, v| {
            let (found, start, end) = k
                .get(8..)
                .and_then(split_session_key)
                .ok_or_else(|| StoreError::malformed(name, "session store key too short"))?;
            if found == key && end >= min_end && start <= latest_session_start {
                out.push(SessionEntry {
                    session: SessionKey::new(found, start, end),
                    value: v.to_vec(),
                });
            }
            Ok(true)
        })?;
        Ok(out)
    }

    fn fetch_session(&self, key: &[u8], start: i64, end: i64) -> Result<Option<Vec<u8>>> {
        self.seg.db.check_open()?;
        if end < 0 || self.seg.retention.is_expired(end) {
            return Ok(None);
        }
        self.seg
            .db
            .get(&self.db_key(&SessionKey::new(key, start, end)))
    }

    fn retention_ms(&self) -> i64 {
        self.options.retention_ms
    }

    fn observed_stream_time(&self) -> i64 {
        self.seg.retention.stream_time()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::conformance;

    #[test]
    fn conforms() {
        let dir = tempfile::tempdir().unwrap();
        let mut n = 0;
        conformance::run_all(&mut |options| {
            n += 1;
            RocksDbSessionStore::open(
                &format!("sess{n}"),
                dir.path(),
                &RocksDbConfig::default(),
                options,
            )
            .unwrap()
        });
    }

    #[test]
    fn sessions_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let config = RocksDbConfig::default();
        let options = SessionStoreOptions::new(1_000);
        let mut store = RocksDbSessionStore::open("sess", dir.path(), &config, options).unwrap();
        store
            .put(&SessionKey::new(b"k".to_vec(), 1, 5), b"agg")
            .unwrap();
        store.close().unwrap();
        let store = RocksDbSessionStore::open("sess", dir.path(), &config, options).unwrap();
        assert_eq!(store.observed_stream_time(), 5);
        assert_eq!(
            store.fetch_session(b"k", 1, 5).unwrap(),
            Some(b"agg".to_vec())
        );
    }
}
