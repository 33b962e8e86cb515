//! [`CachingSessionStore`]: the record cache in front of a session store.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::core::{CacheBudget, DirtyBatch, DirtyEntry, FlushListener, RecordCache};
use crate::error::{Result, StoreError};
use crate::key_layout::session_key;
use crate::retention::Retention;
use crate::session::{SessionEntry, SessionKey, SessionStore};

/// A record cache over a [`SessionStore`] (Kafka's `CachingSessionStore`).
///
/// Sessions are cached under Kafka's session-key layout (key, end, start), which is also
/// the key the flush listener receives ([`SessionKey::from_bytes`] reads it back);
/// removed sessions are cached deletes. Reads merge the cache with the wrapped store and
/// hide sessions that expired; flushes and evictions behave as in
/// [`CachingKeyValueStore`](super::CachingKeyValueStore).
pub struct CachingSessionStore<S: SessionStore> {
    inner: S,
    cache: RecordCache,
    listener: Option<FlushListener>,
    /// Stream time as this layer has seen it (writes reach the wrapped store late).
    retention: Retention,
}

impl<S: SessionStore> CachingSessionStore<S> {
    /// Wraps `inner` with a cache drawing on `budget`.
    pub fn new(inner: S, budget: CacheBudget) -> Self {
        let mut retention = Retention::new(inner.retention_ms());
        retention.observe(inner.observed_stream_time());
        CachingSessionStore {
            inner,
            cache: RecordCache::new(budget),
            listener: None,
            retention,
        }
    }

    /// Sets the listener called for every flushed session, keyed in the session-key
    /// layout.
    pub fn set_flush_listener(
        &mut self,
        listener: impl FnMut(&[u8], Option<&[u8]>, Option<&[u8]>) + Send + 'static,
    ) {
        self.listener = Some(Box::new(listener));
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Number of sessions waiting to be flushed.
    pub fn dirty_count(&self) -> usize {
        self.cache.dirty_count()
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.is_open() {
            Ok(())
        } else {
            Err(StoreError::Closed(self.inner.name().to_owned()))
        }
    }

    fn flush_batch(&mut self, batch: DirtyBatch) -> Result<()> {
        for DirtyEntry {
            key: bytes,
            value: new,
            stored,
        } in batch
        {
            let Some(session) = SessionKey::from_bytes(&bytes) else {
                continue;
            };
            let old = match stored {
                Some(stored) => stored,
                None => self
                    .inner
                    .fetch_session(&session.key, session.start, session.end)?,
            };
            match &new {
                Some(aggregate) => self.inner.put(&session, aggregate)?,
                None if old.is_some() => self.inner.remove(&session)?,
                None => continue,
            }
            if let Some(listener) = self.listener.as_mut() {
                listener(&bytes, new.as_deref(), old.as_deref());
            }
        }
        Ok(())
    }

    fn write(&mut self, session: &SessionKey, aggregate: Option<&[u8]>) -> Result<()> {
        let bytes = session.to_bytes();
        if !self.cache.is_enabled() {
            return self.flush_batch(vec![DirtyEntry {
                key: bytes,
                value: aggregate.map(<[u8]>::to_vec),
                stored: None,
            }]);
        }
        self.retention.observe(session.end);
        if self.retention.is_expired(session.end) {
            tracing::debug!(store = %self.inner.name(), end = session.end, "skipping write to expired session");
            return Ok(());
        }
        let evicted = self.cache.write(&bytes, aggregate);
        self.flush_batch(evicted)
    }
}

caching_state_store!(CachingSessionStore<S: SessionStore>, |layer| layer.retention.observe(layer.inner.observed_stream_time()));

impl<S: SessionStore> SessionStore for CachingSessionStore<S> {
    fn put(&mut self, session: &SessionKey, aggregate: &[u8]) -> Result<()> {
        self.check_open()?;
        session.validate()?;
        self.write(session, Some(aggregate))
    }

    fn remove(&mut self, session: &SessionKey) -> Result<()> {
        self.check_open()?;
        self.write(session, None)
    }

    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<Vec<SessionEntry>> {
        self.check_open()?;
        let mut merged: BTreeMap<(i64, i64), Vec<u8>> = self
            .inner
            .find_sessions(key, earliest_session_end, latest_session_start)?
            .into_iter()
            .filter(|e| !self.retention.is_expired(e.session.end))
            .map(|e| ((e.session.end, e.session.start), e.value))
            .collect();
        let lower = session_key(key, 0, earliest_session_end.max(0));
        let upper = session_key(key, i64::MAX, i64::MAX);
        for (bytes, value) in self.cache.range((
            Bound::Included(lower.as_slice()),
            Bound::Included(upper.as_slice()),
        )) {
            let Some(session) = SessionKey::from_bytes(bytes) else {
                continue;
            };
            if session.key != key
                || session.end < earliest_session_end
                || session.start > latest_session_start
                || self.retention.is_expired(session.end)
            {
                continue;
            }
            match value {
                Some(v) => merged.insert((session.end, session.start), v.to_vec()),
                None => merged.remove(&(session.end, session.start)),
            };
        }
        Ok(merged
            .into_iter()
            .map(|((end, start), value)| SessionEntry {
                session: SessionKey::new(key, start, end),
                value,
            })
            .collect())
    }

    fn fetch_session(&self, key: &[u8], start: i64, end: i64) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        if self.retention.is_expired(end) {
            return Ok(None);
        }
        match self.cache.get(&session_key(key, start, end)) {
            Some(value) => Ok(value.map(<[u8]>::to_vec)),
            None => self.inner.fetch_session(key, start, end),
        }
    }

    fn retention_ms(&self) -> i64 {
        self.inner.retention_ms()
    }

    fn observed_stream_time(&self) -> i64 {
        self.retention
            .stream_time()
            .max(self.inner.observed_stream_time())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::session::{InMemorySessionStore, SessionStoreOptions};
    use crate::store::StateStore;

    /// A flushed session: session, new aggregate, old aggregate.
    type Record = (SessionKey, Option<Vec<u8>>, Option<Vec<u8>>);
    type Flushed = Arc<Mutex<Vec<Record>>>;

    fn cached(budget: usize) -> (CachingSessionStore<InMemorySessionStore>, Flushed) {
        let inner = InMemorySessionStore::new("s", SessionStoreOptions::new(1_000)).unwrap();
        let mut store = CachingSessionStore::new(inner, CacheBudget::new(budget));
        let flushed: Flushed = Arc::default();
        let sink = flushed.clone();
        store.set_flush_listener(move |k, new, old| {
            sink.lock().unwrap().push((
                SessionKey::from_bytes(k).unwrap(),
                new.map(<[u8]>::to_vec),
                old.map(<[u8]>::to_vec),
            ));
        });
        (store, flushed)
    }

    fn take(flushed: &Flushed) -> Vec<Record> {
        std::mem::take(&mut *flushed.lock().unwrap())
    }

    fn v(bytes: &[u8]) -> Option<Vec<u8>> {
        Some(bytes.to_vec())
    }

    #[test]
    fn a_merge_flushes_the_removed_session_then_the_merged_one() {
        let (mut store, flushed) = cached(1 << 20);
        let first = SessionKey::new(b"k".to_vec(), 0, 0);
        store.put(&first, b"1").unwrap();
        store.flush().unwrap();
        assert_eq!(take(&flushed), vec![(first.clone(), v(b"1"), None)]);

        // A record at 5 merges the session [0, 0] into [0, 5].
        let merged = SessionKey::new(b"k".to_vec(), 0, 5);
        store.remove(&first).unwrap();
        store.put(&merged, b"2").unwrap();
        assert_eq!(store.find_sessions(b"k", 0, 10).unwrap().len(), 1);
        assert_eq!(store.fetch_session(b"k", 0, 0).unwrap(), None);
        assert_eq!(store.inner().fetch_session(b"k", 0, 0).unwrap(), v(b"1"));
        store.flush().unwrap();
        assert_eq!(
            take(&flushed),
            vec![(first, None, v(b"1")), (merged.clone(), v(b"2"), None)]
        );
        assert_eq!(store.inner().fetch(b"k").unwrap().len(), 1);
    }

    #[test]
    fn a_session_created_and_removed_between_flushes_is_not_flushed() {
        let (mut store, flushed) = cached(1 << 20);
        let session = SessionKey::new(b"k".to_vec(), 3, 4);
        store.put(&session, b"1").unwrap();
        store.remove(&session).unwrap();
        store.flush().unwrap();
        assert!(take(&flushed).is_empty());
    }

    #[test]
    fn find_sessions_merges_cache_and_store_by_end_then_start() {
        let (mut store, _) = cached(1 << 20);
        store
            .put(&SessionKey::new(b"k".to_vec(), 0, 10), b"a")
            .unwrap();
        store
            .put(&SessionKey::new(b"kk".to_vec(), 0, 5), b"other")
            .unwrap();
        store.flush().unwrap();
        store
            .put(&SessionKey::new(b"k".to_vec(), 2, 5), b"b")
            .unwrap();
        store
            .put(&SessionKey::new(b"k".to_vec(), 20, 30), b"c")
            .unwrap();
        let found: Vec<_> = store
            .find_sessions(b"k", 5, 20)
            .unwrap()
            .into_iter()
            .map(|e| (e.session.start, e.session.end, e.value))
            .collect();
        assert_eq!(
            found,
            vec![
                (2, 5, b"b".to_vec()),
                (0, 10, b"a".to_vec()),
                (20, 30, b"c".to_vec())
            ]
        );
    }

    #[test]
    fn conforms_as_a_session_store() {
        let entry = 8 + 16 + 8 + crate::cache::CACHE_ENTRY_OVERHEAD_BYTES;
        crate::session::conformance::run_all(&mut |options| {
            CachingSessionStore::new(
                InMemorySessionStore::new("s", options).unwrap(),
                CacheBudget::new(3 * entry),
            )
        });
    }
}
