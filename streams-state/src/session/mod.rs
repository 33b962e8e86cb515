//! Session stores over bytes: the [`SessionStore`] trait, session keys and the in-memory
//! and RocksDB implementations.
//!
//! A session store keeps one aggregate per (key, session start, session end) and drops
//! sessions that ended at or before stream time minus retention, stream time being the
//! latest session end written or restored. Results are materialised `Vec`s; see
//! [`key_value`](crate::key_value) for why.

mod memory;
mod rocksdb;

#[cfg(test)]
pub(crate) mod conformance;

pub use self::memory::InMemorySessionStore;
pub use self::rocksdb::RocksDbSessionStore;

use crate::error::{Result, StoreError};
use crate::key_layout;
use crate::retention;
use crate::store::StateStore;

/// A session: key bytes and the inclusive time span `[start, end]` of its records.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionKey {
    /// Key bytes.
    pub key: Vec<u8>,
    /// Timestamp of the session's first record, epoch milliseconds.
    pub start: i64,
    /// Timestamp of the session's last record, epoch milliseconds.
    pub end: i64,
}

impl SessionKey {
    /// Builds a session key.
    pub fn new(key: impl Into<Vec<u8>>, start: i64, end: i64) -> Self {
        SessionKey {
            key: key.into(),
            start,
            end,
        }
    }

    /// Kafka's byte layout: key, 8-byte end, 8-byte start
    /// ([`key_layout::session_key`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        key_layout::session_key(&self.key, self.start, self.end)
    }

    /// Parses Kafka's layout; `None` when shorter than 16 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (key, start, end) = key_layout::split_session_key(bytes)?;
        Some(SessionKey::new(key, start, end))
    }

    pub(crate) fn validate(&self) -> Result<()> {
        retention::check_timestamp("session start", self.start)?;
        if self.end < self.start {
            return Err(StoreError::InvalidArgument(format!(
                "session end {} is before its start {}",
                self.end, self.start
            )));
        }
        Ok(())
    }
}

/// A session and its aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEntry {
    /// The session.
    pub session: SessionKey,
    /// The aggregate bytes.
    pub value: Vec<u8>,
}

/// How a session store keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionStoreOptions {
    /// How long sessions are kept after they end, behind stream time, in milliseconds;
    /// Kafka sets it to at least inactivity gap + grace.
    pub retention_ms: i64,
    /// Width of a RocksDB segment (by session end) in milliseconds; defaults to half the
    /// retention, at least one minute.
    pub segment_interval_ms: i64,
}

impl SessionStoreOptions {
    /// Options with the given retention and Kafka's default segment interval.
    pub fn new(retention_ms: i64) -> Self {
        SessionStoreOptions {
            retention_ms,
            segment_interval_ms: retention::default_segment_interval(retention_ms),
        }
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

/// A store of session aggregates, with time-based retention.
pub trait SessionStore: StateStore {
    /// Stores the aggregate of `session`, replacing any previous one. Sessions that ended
    /// at or before stream time minus retention are dropped.
    fn put(&mut self, session: &SessionKey, aggregate: &[u8]) -> Result<()>;

    /// Removes `session`.
    fn remove(&mut self, session: &SessionKey) -> Result<()>;

    /// Sessions of `key` with `end >= earliest_session_end` and
    /// `start <= latest_session_start` (Kafka's `findSessions`: the sessions a record
    /// could merge with), ordered by end, then start.
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<Vec<SessionEntry>>;

    /// Every live session of `key`, ordered by end, then start.
    fn fetch(&self, key: &[u8]) -> Result<Vec<SessionEntry>> {
        self.find_sessions(key, 0, i64::MAX)
    }

    /// The aggregate of exactly this key, start and end.
    fn fetch_session(&self, key: &[u8], start: i64, end: i64) -> Result<Option<Vec<u8>>>;

    /// The retention period in milliseconds.
    fn retention_ms(&self) -> i64;

    /// The latest session end observed, `i64::MIN` while empty.
    fn observed_stream_time(&self) -> i64;
}

/// Decodes a session changelog key, rejecting malformed ones.
pub(crate) fn decode_changelog_key(store: &str, bytes: &[u8]) -> Result<SessionKey> {
    let session = SessionKey::from_bytes(bytes).ok_or_else(|| {
        StoreError::malformed(store, "session changelog key shorter than 16 bytes")
    })?;
    session
        .validate()
        .map_err(|e| StoreError::malformed(store, e.to_string()))?;
    Ok(session)
}

impl<S: SessionStore + ?Sized> SessionStore for Box<S> {
    fn put(&mut self, session: &SessionKey, aggregate: &[u8]) -> Result<()> {
        (**self).put(session, aggregate)
    }
    fn remove(&mut self, session: &SessionKey) -> Result<()> {
        (**self).remove(session)
    }
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<Vec<SessionEntry>> {
        (**self).find_sessions(key, earliest_session_end, latest_session_start)
    }
    fn fetch(&self, key: &[u8]) -> Result<Vec<SessionEntry>> {
        (**self).fetch(key)
    }
    fn fetch_session(&self, key: &[u8], start: i64, end: i64) -> Result<Option<Vec<u8>>> {
        (**self).fetch_session(key, start, end)
    }
    fn retention_ms(&self) -> i64 {
        (**self).retention_ms()
    }
    fn observed_stream_time(&self) -> i64 {
        (**self).observed_stream_time()
    }
}
