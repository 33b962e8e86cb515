//! [`LoggedSessionStore`]: logs every write of a session store.

use super::{ChangeLogger, RecordTimestamp};
use crate::error::Result;
use crate::restore::ChangelogRecord;
use crate::session::{SessionEntry, SessionKey, SessionStore};
use crate::store::StateStore;

/// Wraps a [`SessionStore`] and logs every put and remove with the key in Kafka's session
/// layout: key, 8-byte end, 8-byte start.
pub struct LoggedSessionStore<S: SessionStore> {
    inner: S,
    logger: Box<dyn ChangeLogger>,
    clock: RecordTimestamp,
}

impl<S: SessionStore> LoggedSessionStore<S> {
    /// Wraps `inner`, logging through `logger` with timestamps read from `clock`.
    pub fn new(inner: S, logger: impl ChangeLogger + 'static, clock: RecordTimestamp) -> Self {
        LoggedSessionStore {
            inner,
            logger: Box::new(logger),
            clock,
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: SessionStore> StateStore for LoggedSessionStore<S> {
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

impl<S: SessionStore> SessionStore for LoggedSessionStore<S> {
    fn put(&mut self, session: &SessionKey, aggregate: &[u8]) -> Result<()> {
        self.inner.put(session, aggregate)?;
        self.logger
            .log(&session.to_bytes(), Some(aggregate), self.clock.get())
    }

    fn remove(&mut self, session: &SessionKey) -> Result<()> {
        self.inner.remove(session)?;
        self.logger.log(&session.to_bytes(), None, self.clock.get())
    }

    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<Vec<SessionEntry>> {
        self.inner
            .find_sessions(key, earliest_session_end, latest_session_start)
    }

    fn fetch(&self, key: &[u8]) -> Result<Vec<SessionEntry>> {
        self.inner.fetch(key)
    }

    fn fetch_session(&self, key: &[u8], start: i64, end: i64) -> Result<Option<Vec<u8>>> {
        self.inner.fetch_session(key, start, end)
    }

    fn retention_ms(&self) -> i64 {
        self.inner.retention_ms()
    }

    fn observed_stream_time(&self) -> i64 {
        self.inner.observed_stream_time()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changelog::{LoggedRecord, RecordingChangeLogger};
    use crate::session::{InMemorySessionStore, SessionStoreOptions};

    #[test]
    fn conforms_as_a_session_store() {
        crate::session::conformance::run_all(&mut |options| {
            LoggedSessionStore::new(
                InMemorySessionStore::new("sess", options).unwrap(),
                RecordingChangeLogger::new(),
                RecordTimestamp::new(),
            )
        });
    }

    #[test]
    fn puts_and_removes_are_logged_with_kafka_session_keys() {
        let logger = RecordingChangeLogger::new();
        let clock = RecordTimestamp::new();
        clock.set(77);
        let inner = InMemorySessionStore::new("sess", SessionStoreOptions::new(10_000)).unwrap();
        let mut store = LoggedSessionStore::new(inner, logger.clone(), clock);
        let session = SessionKey::new(b"u".to_vec(), 1, 2);
        store.put(&session, b"agg").unwrap();
        store.remove(&session).unwrap();
        let key = b"u\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0\x01".to_vec();
        assert_eq!(
            logger.take(),
            vec![
                LoggedRecord {
                    key: key.clone(),
                    value: Some(b"agg".to_vec()),
                    timestamp: 77
                },
                LoggedRecord {
                    key,
                    value: None,
                    timestamp: 77
                },
            ]
        );
        assert!(store.fetch(b"u").unwrap().is_empty());
    }
}
