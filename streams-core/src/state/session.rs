//! The typed session store handle processors use.

use streams_state::{SessionEntry, SessionKey, SessionStore as BytesSessionStore};

use super::task_stores::{ByteStore, SharedStore, StoreSlot};
use super::typed::{wrong_kind, StoreCodec};
use super::Windowed;
use crate::processor::ProcessError;

/// A session store of one task, typed by its serdes: one aggregate per key and session,
/// a session being the inclusive span `[start, end]` of its records' timestamps. Get one
/// from a processor's context with
/// [`session_store`](crate::processor::TaskContext::session_store).
///
/// Stream time is the latest session end written; sessions that ended at or before
/// stream time minus the retention are dropped and no longer returned. Writes go to the
/// changelog too when the store is logged, keyed as Kafka's session stores log them (key
/// bytes, 8-byte end, 8-byte start).
pub struct SessionStore<'a, K, V> {
    codec: StoreCodec<'a, K, V>,
    store: &'a SharedStore<dyn BytesSessionStore>,
}

impl<'a, K: 'static, V: 'static> SessionStore<'a, K, V> {
    /// The typed handle of `slot`; fails if it is not a session store or holds other
    /// types.
    pub(crate) fn from_slot(slot: &'a StoreSlot) -> Result<Self, ProcessError> {
        let ByteStore::Session(store) = &slot.store else {
            return Err(wrong_kind(slot, "a session store"));
        };
        Ok(SessionStore {
            codec: StoreCodec::for_slot(slot)?,
            store,
        })
    }
}

impl<K: 'static, V: 'static> SessionStore<'_, K, V> {
    fn session_key(&self, session: &Windowed<K>) -> Result<SessionKey, ProcessError> {
        Ok(SessionKey::new(
            self.codec.key_bytes(&session.key)?,
            session.window.start,
            session.window.end,
        ))
    }

    fn decode(&self, entry: SessionEntry) -> Result<(Windowed<K>, V), ProcessError> {
        let SessionEntry { session, value } = entry;
        Ok((
            Windowed::new(self.codec.key(&session.key)?, session.start, session.end),
            self.codec.value(&value)?,
        ))
    }

    fn decode_all(
        &self,
        entries: Vec<SessionEntry>,
    ) -> Result<Vec<(Windowed<K>, V)>, ProcessError> {
        entries.into_iter().map(|e| self.decode(e)).collect()
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        self.codec.name
    }

    /// How long sessions are kept after they end, behind stream time, in milliseconds.
    pub fn retention_ms(&self) -> i64 {
        self.store.lock().borrow().retention_ms()
    }

    /// The latest session end written so far, `i64::MIN` while empty.
    pub fn observed_stream_time(&self) -> i64 {
        self.store.lock().borrow().observed_stream_time()
    }

    /// Stores the aggregate of `session`, replacing any previous one. An aggregate
    /// serializing to null removes the session. Sessions that have already expired are
    /// dropped.
    pub fn put(&self, session: &Windowed<K>, aggregate: &V) -> Result<(), ProcessError> {
        let key = self.session_key(session)?;
        let guard = self.store.lock();
        let mut store = guard.borrow_mut();
        match self.codec.value_bytes(aggregate)? {
            Some(bytes) => store.put(&key, &bytes),
            None => store.remove(&key),
        }
        .map_err(|e| self.codec.error(e))
    }

    /// Removes `session` (same key, start and end).
    pub fn remove(&self, session: &Windowed<K>) -> Result<(), ProcessError> {
        let key = self.session_key(session)?;
        self.store
            .lock()
            .borrow_mut()
            .remove(&key)
            .map_err(|e| self.codec.error(e))
    }

    /// Sessions of `key` ending at or after `earliest_session_end` and starting at or
    /// before `latest_session_start`, by end, then start: the sessions a record could
    /// merge with, as Kafka's `findSessions`.
    pub fn find_sessions(
        &self,
        key: &K,
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<Vec<(Windowed<K>, V)>, ProcessError> {
        let key = self.codec.key_bytes(key)?;
        let entries = self
            .store
            .lock()
            .borrow()
            .find_sessions(&key, earliest_session_end, latest_session_start)
            .map_err(|e| self.codec.error(e))?;
        self.decode_all(entries)
    }

    /// Every live session of `key`, by end, then start.
    pub fn fetch(&self, key: &K) -> Result<Vec<(Windowed<K>, V)>, ProcessError> {
        let key = self.codec.key_bytes(key)?;
        let entries = self
            .store
            .lock()
            .borrow()
            .fetch(&key)
            .map_err(|e| self.codec.error(e))?;
        self.decode_all(entries)
    }

    /// The aggregate of the session of `key` from exactly `start` to `end`.
    pub fn fetch_session(&self, key: &K, start: i64, end: i64) -> Result<Option<V>, ProcessError> {
        let key = self.codec.key_bytes(key)?;
        let bytes = self
            .store
            .lock()
            .borrow()
            .fetch_session(&key, start, end)
            .map_err(|e| self.codec.error(e))?;
        bytes.map(|b| self.codec.value(&b)).transpose()
    }
}
