//! Change logging: the [`ChangeLogger`] the runtime implements by producing to changelog
//! topics, and the wrappers that call it on every write to a store.
//!
//! Each wrapper writes to the wrapped store first, then logs the change with the key in
//! Kafka's changelog layout for the store kind:
//!
//! | wrapper | changelog key | changelog value |
//! |---|---|---|
//! | [`LoggedKeyValueStore`] | key | value, `None` on delete |
//! | [`LoggedWindowStore`] | [`window_store_key`](crate::key_layout::window_store_key) (key, start, seqnum) | value, `None` on delete |
//! | [`LoggedSessionStore`] | [`session_key`](crate::key_layout::session_key) (key, end, start) | aggregate, `None` on remove |
//!
//! The record timestamp comes from a shared [`RecordTimestamp`] that the runtime sets to
//! the timestamp of the record being processed, as Kafka logs with the processor context's
//! timestamp. Restoration ([`StateStore::restore_batch`](crate::StateStore::restore_batch))
//! bypasses logging.

mod key_value;
mod session;
mod window;

pub use self::key_value::LoggedKeyValueStore;
pub use self::session::LoggedSessionStore;
pub use self::window::LoggedWindowStore;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::timestamped::split_timestamped_value;

/// Records one change of a store, in the store's changelog layout. `None` is a tombstone.
///
/// The runtime implements it by producing `(key, value)` with `timestamp` to the store's
/// changelog partition; a send that cannot even be queued should fail with
/// [`StoreError::Changelog`](crate::StoreError::Changelog).
pub trait ChangeLogger: Send {
    /// Logs one change.
    fn log(&mut self, key: &[u8], value: Option<&[u8]>, timestamp: i64) -> Result<()>;
}

impl<L: ChangeLogger + ?Sized> ChangeLogger for Box<L> {
    fn log(&mut self, key: &[u8], value: Option<&[u8]>, timestamp: i64) -> Result<()> {
        (**self).log(key, value, timestamp)
    }
}

/// The timestamp of the record being processed, shared between the runtime (which sets
/// it before each record) and the logged stores of a task (which stamp changes with it).
/// Clones share the same value.
#[derive(Debug, Clone, Default)]
pub struct RecordTimestamp(Arc<AtomicI64>);

impl RecordTimestamp {
    /// A clock reading 0.
    pub fn new() -> Self {
        RecordTimestamp::default()
    }

    /// Sets the current record timestamp.
    pub fn set(&self, timestamp: i64) {
        self.0.store(timestamp, Ordering::Relaxed);
    }

    /// The current record timestamp.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One change captured by [`RecordingChangeLogger`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRecord {
    /// Changelog key bytes.
    pub key: Vec<u8>,
    /// Changelog value bytes, `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// Record timestamp.
    pub timestamp: i64,
}

/// A [`ChangeLogger`] that keeps every change in memory, for tests and the broker-free
/// test driver. Clones share the same records.
#[derive(Debug, Clone, Default)]
pub struct RecordingChangeLogger {
    records: Arc<Mutex<Vec<LoggedRecord>>>,
}

impl RecordingChangeLogger {
    /// An empty logger.
    pub fn new() -> Self {
        RecordingChangeLogger::default()
    }

    /// A copy of every change logged so far.
    pub fn records(&self) -> Vec<LoggedRecord> {
        self.lock().clone()
    }

    /// Removes and returns every change logged so far.
    pub fn take(&self) -> Vec<LoggedRecord> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<LoggedRecord>> {
        // A panic while holding the lock cannot leave the Vec half-updated.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ChangeLogger for RecordingChangeLogger {
    fn log(&mut self, key: &[u8], value: Option<&[u8]>, timestamp: i64) -> Result<()> {
        self.lock().push(LoggedRecord {
            key: key.to_vec(),
            value: value.map(<[u8]>::to_vec),
            timestamp,
        });
        Ok(())
    }
}

/// How a logged store derives the changelog value and timestamp from a stored value.
#[derive(Debug, Clone)]
pub(crate) struct Stamper {
    clock: RecordTimestamp,
    timestamped: bool,
}

impl Stamper {
    pub(crate) fn new(clock: RecordTimestamp) -> Self {
        Stamper {
            clock,
            timestamped: false,
        }
    }

    pub(crate) fn set_timestamped(&mut self, timestamped: bool) {
        self.timestamped = timestamped;
    }

    /// The changelog value and timestamp for a stored value. Timestamped values (Kafka's
    /// `ValueAndTimestamp` layout) are logged without their 8-byte prefix, with that
    /// prefix as record timestamp, as Kafka's timestamped change-logging stores do.
    pub(crate) fn stamp<'v>(&self, value: Option<&'v [u8]>) -> (Option<&'v [u8]>, i64) {
        match value {
            Some(v) if self.timestamped => match split_timestamped_value(v) {
                Some((ts, raw)) => (Some(raw), ts),
                None => (Some(v), self.clock.get()),
            },
            other => (other, self.clock.get()),
        }
    }
}
