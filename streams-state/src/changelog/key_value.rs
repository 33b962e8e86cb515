//! [`LoggedKeyValueStore`]: logs every write of a key-value store.

use super::{ChangeLogger, RecordTimestamp, Stamper};
use crate::error::Result;
use crate::key_value::{KeyValue, KeyValueStore};
use crate::restore::ChangelogRecord;
use crate::store::StateStore;

/// Wraps a [`KeyValueStore`] and logs `(key, value)` on every put and `(key, None)` on
/// every delete (even of an absent key, as Kafka does).
pub struct LoggedKeyValueStore<S: KeyValueStore> {
    inner: S,
    logger: Box<dyn ChangeLogger>,
    stamper: Stamper,
}

impl<S: KeyValueStore> LoggedKeyValueStore<S> {
    /// Wraps `inner`, logging through `logger` with timestamps read from `clock`.
    pub fn new(inner: S, logger: impl ChangeLogger + 'static, clock: RecordTimestamp) -> Self {
        LoggedKeyValueStore {
            inner,
            logger: Box::new(logger),
            stamper: Stamper::new(clock),
        }
    }

    /// Treats values as Kafka timestamped values (8-byte timestamp + value): the changelog
    /// gets the value without the prefix and the prefix as record timestamp, as Kafka's
    /// `ChangeLoggingTimestampedKeyValueBytesStore` does. Restoring such a changelog then
    /// needs each record's timestamp put back in front of its value
    /// ([`timestamped_value`](crate::timestamped::timestamped_value)).
    pub fn with_timestamped_values(mut self) -> Self {
        self.stamper.set_timestamped(true);
        self
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn log(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let (value, timestamp) = self.stamper.stamp(value);
        self.logger.log(key, value, timestamp)
    }
}

impl<S: KeyValueStore> StateStore for LoggedKeyValueStore<S> {
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

impl<S: KeyValueStore> KeyValueStore for LoggedKeyValueStore<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.inner.put(key, value)?;
        self.log(key, Some(value))
    }

    fn put_if_absent(&mut self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        let existing = self.inner.put_if_absent(key, value)?;
        if existing.is_none() {
            self.log(key, Some(value))?;
        }
        Ok(existing)
    }

    fn delete(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let old = self.inner.delete(key)?;
        self.log(key, None)?;
        Ok(old)
    }

    fn put_all(&mut self, entries: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        self.inner.put_all(entries)?;
        for (key, value) in entries {
            self.log(key, value.as_deref())?;
        }
        Ok(())
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<KeyValue>> {
        self.inner.range(from, to)
    }

    fn reverse_range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<KeyValue>> {
        self.inner.reverse_range(from, to)
    }

    fn prefix_scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>> {
        self.inner.prefix_scan(prefix)
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        self.inner.approximate_num_entries()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changelog::{LoggedRecord, RecordingChangeLogger};
    use crate::key_value::InMemoryKeyValueStore;
    use crate::timestamped::timestamped_value;
    use crate::CachingKeyValueStore;

    fn rec(key: &[u8], value: Option<&[u8]>, timestamp: i64) -> LoggedRecord {
        LoggedRecord {
            key: key.to_vec(),
            value: value.map(<[u8]>::to_vec),
            timestamp,
        }
    }

    #[test]
    fn every_write_is_logged_with_the_record_timestamp() {
        let logger = RecordingChangeLogger::new();
        let clock = RecordTimestamp::new();
        let mut store = LoggedKeyValueStore::new(
            InMemoryKeyValueStore::new("kv"),
            logger.clone(),
            clock.clone(),
        );
        clock.set(100);
        store.put(b"a", b"1").unwrap();
        clock.set(200);
        assert_eq!(
            store.put_if_absent(b"a", b"2").unwrap(),
            Some(b"1".to_vec())
        );
        assert_eq!(store.put_if_absent(b"b", b"2").unwrap(), None);
        store.delete(b"a").unwrap();
        store.delete(b"never").unwrap();
        store
            .put_all(&[(b"c".to_vec(), Some(b"3".to_vec())), (b"b".to_vec(), None)])
            .unwrap();
        assert_eq!(
            logger.take(),
            vec![
                rec(b"a", Some(b"1"), 100),
                rec(b"b", Some(b"2"), 200),
                rec(b"a", None, 200),
                rec(b"never", None, 200),
                rec(b"c", Some(b"3"), 200),
                rec(b"b", None, 200),
            ]
        );
        assert_eq!(store.all().unwrap(), vec![(b"c".to_vec(), b"3".to_vec())]);
    }

    #[test]
    fn conforms_as_a_key_value_store() {
        crate::key_value::conformance::run_all(&mut || {
            LoggedKeyValueStore::new(
                InMemoryKeyValueStore::new("kv"),
                RecordingChangeLogger::new(),
                RecordTimestamp::new(),
            )
        });
    }

    #[test]
    fn restoration_is_not_logged() {
        let logger = RecordingChangeLogger::new();
        let mut store = LoggedKeyValueStore::new(
            InMemoryKeyValueStore::new("kv"),
            logger.clone(),
            RecordTimestamp::new(),
        );
        store
            .restore_batch(&[(b"a".to_vec(), Some(b"1".to_vec()))])
            .unwrap();
        assert!(logger.records().is_empty());
        assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn timestamped_values_log_raw_value_with_their_timestamp() {
        let logger = RecordingChangeLogger::new();
        let clock = RecordTimestamp::new();
        clock.set(5);
        let mut store =
            LoggedKeyValueStore::new(InMemoryKeyValueStore::new("kv"), logger.clone(), clock)
                .with_timestamped_values();
        store.put(b"k", &timestamped_value(42, b"v")).unwrap();
        store.delete(b"k").unwrap();
        assert_eq!(
            logger.take(),
            vec![rec(b"k", Some(b"v"), 42), rec(b"k", None, 5)]
        );
    }

    #[test]
    fn a_cache_above_the_logged_store_logs_once_per_flush() {
        let logger = RecordingChangeLogger::new();
        let logged = LoggedKeyValueStore::new(
            InMemoryKeyValueStore::new("kv"),
            logger.clone(),
            RecordTimestamp::new(),
        );
        let mut store = CachingKeyValueStore::new(logged, 1 << 20);
        for v in [b"1", b"2", b"3"] {
            store.put(b"k", v).unwrap();
        }
        assert!(logger.records().is_empty());
        store.flush().unwrap();
        assert_eq!(logger.take(), vec![rec(b"k", Some(b"3"), 0)]);
    }
}
