//! [`LoggedWindowStore`]: logs every write of a window store.

use super::{ChangeLogger, RecordTimestamp, Stamper};
use crate::error::Result;
use crate::key_layout::window_store_key;
use crate::restore::ChangelogRecord;
use crate::store::StateStore;
use crate::window::{SeqNum, WindowEntry, WindowStore, WindowWrite};

/// Wraps a [`WindowStore`] and logs every put with the key in Kafka's window store
/// layout: key, 8-byte window start, 4-byte sequence number (0 unless duplicates are
/// retained; then counted like the wrapped store counts, so restored keys match).
///
/// With duplicates retained, `None` puts are neither applied nor logged.
pub struct LoggedWindowStore<S: WindowStore> {
    inner: S,
    logger: Box<dyn ChangeLogger>,
    stamper: Stamper,
    seqnum: SeqNum,
}

impl<S: WindowStore> LoggedWindowStore<S> {
    /// Wraps `inner`, logging through `logger` with timestamps read from `clock`.
    pub fn new(inner: S, logger: impl ChangeLogger + 'static, clock: RecordTimestamp) -> Self {
        let seqnum = SeqNum::new(inner.retain_duplicates());
        LoggedWindowStore {
            inner,
            logger: Box::new(logger),
            stamper: Stamper::new(clock),
            seqnum,
        }
    }

    /// Treats values as Kafka timestamped values (see
    /// [`LoggedKeyValueStore::with_timestamped_values`](super::LoggedKeyValueStore::with_timestamped_values)).
    pub fn with_timestamped_values(mut self) -> Self {
        self.stamper.set_timestamped(true);
        self
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: WindowStore> StateStore for LoggedWindowStore<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn persistent(&self) -> bool {
        self.inner.persistent()
    }

    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }

    fn close(&mut self) -> Result<()> {
        self.inner.close()
    }

    fn is_open(&self) -> bool {
        self.inner.is_open()
    }

    fn restore_batch(&mut self, records: &[ChangelogRecord]) -> Result<()> {
        self.inner.restore_batch(records)
    }
}

impl<S: WindowStore> LoggedWindowStore<S> {
    /// Logs a put the wrapped store has taken, under the key it stored it at.
    fn log(&mut self, key: &[u8], value: Option<&[u8]>, window_start: i64) -> Result<()> {
        if value.is_none() && self.inner.retain_duplicates() {
            return Ok(());
        }
        let seq = if value.is_some() {
            self.seqnum.next()
        } else {
            0
        };
        let (value, timestamp) = self.stamper.stamp(value);
        self.logger
            .log(&window_store_key(key, window_start, seq), value, timestamp)
    }
}

impl<S: WindowStore> WindowStore for LoggedWindowStore<S> {
    fn put(&mut self, key: &[u8], value: Option<&[u8]>, window_start: i64) -> Result<()> {
        self.inner.put(key, value, window_start)?;
        self.log(key, value, window_start)
    }

    fn put_all(&mut self, writes: &[WindowWrite]) -> Result<()> {
        self.inner.put_all(writes)?;
        for (key, value, window_start) in writes {
            self.log(key, value.as_deref(), *window_start)?;
        }
        Ok(())
    }

    fn fetch(&self, key: &[u8], window_start: i64) -> Result<Option<Vec<u8>>> {
        self.inner.fetch(key, window_start)
    }

    fn fetch_time_range(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>> {
        self.inner.fetch_time_range(key, time_from, time_to)
    }

    fn fetch_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<WindowEntry>> {
        self.inner.fetch_range(key_from, key_to, time_from, time_to)
    }

    fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<Vec<WindowEntry>> {
        self.inner.fetch_all(time_from, time_to)
    }

    fn all(&self) -> Result<Vec<WindowEntry>> {
        self.inner.all()
    }

    fn retention_ms(&self) -> i64 {
        self.inner.retention_ms()
    }

    fn retain_duplicates(&self) -> bool {
        self.inner.retain_duplicates()
    }

    fn observed_stream_time(&self) -> i64 {
        self.inner.observed_stream_time()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changelog::{LoggedRecord, RecordingChangeLogger};
    use crate::window::{InMemoryWindowStore, WindowStoreOptions};

    #[test]
    fn conforms_as_a_window_store() {
        crate::window::conformance::run_all(&mut |options| {
            LoggedWindowStore::new(
                InMemoryWindowStore::new("win", options).unwrap(),
                RecordingChangeLogger::new(),
                RecordTimestamp::new(),
            )
        });
    }

    #[test]
    fn puts_are_logged_with_kafka_window_store_keys() {
        let logger = RecordingChangeLogger::new();
        let clock = RecordTimestamp::new();
        clock.set(1_234);
        let inner = InMemoryWindowStore::new("win", WindowStoreOptions::new(10_000)).unwrap();
        let mut store = LoggedWindowStore::new(inner, logger.clone(), clock);
        store.put(b"k", Some(b"v"), 1_000).unwrap();
        store.put(b"k", None, 1_000).unwrap();
        let mut key = b"k".to_vec();
        key.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x03, 0xE8]);
        key.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            logger.take(),
            vec![
                LoggedRecord {
                    key: key.clone(),
                    value: Some(b"v".to_vec()),
                    timestamp: 1_234
                },
                LoggedRecord {
                    key,
                    value: None,
                    timestamp: 1_234
                },
            ]
        );
    }

    #[test]
    fn duplicates_get_increasing_seqnums_that_restore_identically() {
        let logger = RecordingChangeLogger::new();
        let options = WindowStoreOptions::new(10_000).with_duplicates(true);
        let inner = InMemoryWindowStore::new("win", options).unwrap();
        let mut store = LoggedWindowStore::new(inner, logger.clone(), RecordTimestamp::new());
        store.put(b"k", Some(b"a"), 10).unwrap();
        store.put(b"k", Some(b"b"), 10).unwrap();
        store.put(b"k", None, 10).unwrap();
        let logged = logger.take();
        assert_eq!(logged.len(), 2);
        assert_eq!(logged[0].key, window_store_key(b"k", 10, 1));
        assert_eq!(logged[1].key, window_store_key(b"k", 10, 2));

        let mut restored = InMemoryWindowStore::new("win", options).unwrap();
        let records: Vec<ChangelogRecord> = logged.into_iter().map(|r| (r.key, r.value)).collect();
        restored.restore_batch(&records).unwrap();
        assert_eq!(
            restored.fetch_time_range(b"k", 0, 100).unwrap(),
            store.fetch_time_range(b"k", 0, 100).unwrap()
        );
    }
}
