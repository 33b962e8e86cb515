//! Restoring stores from their changelogs: the record type, progress listeners and a
//! helper that applies batches while reporting progress.
//!
//! The runtime reads a changelog partition from the checkpointed offset to the end offset
//! (the last stable offset under exactly-once), hands each polled batch to
//! [`StateStore::restore_batch`] through [`StoreRestoration::apply`], and reports progress
//! to a [`RestoreListener`] so that a restoring instance is visibly busy, not dead.

use crate::error::Result;
use crate::store::StateStore;
use crate::topic_partition::TopicPartition;

/// One changelog record as a store restores it: key bytes in the store kind's changelog
/// layout and the value, `None` for a tombstone.
pub type ChangelogRecord = (Vec<u8>, Option<Vec<u8>>);

/// Receives progress reports while a store is restored from its changelog, as Kafka's
/// `StateRestoreListener` does. Called from the restoring thread; keep it fast.
pub trait RestoreListener: Send + Sync {
    /// Restoration of `store` from `partition` starts; records in
    /// `[start_offset, end_offset)` will be applied.
    fn on_restore_start(
        &self,
        store: &str,
        partition: &TopicPartition,
        start_offset: i64,
        end_offset: i64,
    );

    /// A batch of `num_restored` records up to and including `batch_end_offset` was applied.
    fn on_batch_restored(
        &self,
        store: &str,
        partition: &TopicPartition,
        batch_end_offset: i64,
        num_restored: u64,
    );

    /// Restoration finished after applying `total_restored` records.
    fn on_restore_end(&self, store: &str, partition: &TopicPartition, total_restored: u64);
}

/// A [`RestoreListener`] that ignores every report.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopRestoreListener;

impl RestoreListener for NoopRestoreListener {
    fn on_restore_start(&self, _: &str, _: &TopicPartition, _: i64, _: i64) {}
    fn on_batch_restored(&self, _: &str, _: &TopicPartition, _: i64, _: u64) {}
    fn on_restore_end(&self, _: &str, _: &TopicPartition, _: u64) {}
}

/// A [`RestoreListener`] that logs start and end at `info` and each batch at `debug`
/// through `tracing`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingRestoreListener;

impl RestoreListener for TracingRestoreListener {
    fn on_restore_start(
        &self,
        store: &str,
        partition: &TopicPartition,
        start_offset: i64,
        end_offset: i64,
    ) {
        tracing::info!(store, %partition, start_offset, end_offset, "restoring state store");
    }

    fn on_batch_restored(
        &self,
        store: &str,
        partition: &TopicPartition,
        batch_end_offset: i64,
        num_restored: u64,
    ) {
        tracing::debug!(store, %partition, batch_end_offset, num_restored, "restored batch");
    }

    fn on_restore_end(&self, store: &str, partition: &TopicPartition, total_restored: u64) {
        tracing::info!(store, %partition, total_restored, "state store restored");
    }
}

/// Restoration of one store from one changelog partition: applies batches and reports
/// them to a listener, counting records.
///
/// ```
/// use streams_state::{InMemoryKeyValueStore, KeyValueStore, NoopRestoreListener,
///     StoreRestoration, TopicPartition};
///
/// let mut store = InMemoryKeyValueStore::new("counts");
/// let listener = NoopRestoreListener;
/// let partition = TopicPartition::new("app-counts-changelog", 0);
/// let mut restoration = StoreRestoration::start(&listener, "counts", partition, 0, 2);
/// restoration.apply(&mut store, &[(b"k".to_vec(), Some(b"v".to_vec()))], 0)?;
/// restoration.apply(&mut store, &[(b"k".to_vec(), None)], 1)?;
/// assert_eq!(restoration.finish(), 2);
/// assert_eq!(store.get(b"k")?, None);
/// # Ok::<(), streams_state::StoreError>(())
/// ```
pub struct StoreRestoration<'a> {
    listener: &'a dyn RestoreListener,
    store: String,
    partition: TopicPartition,
    total: u64,
}

impl<'a> StoreRestoration<'a> {
    /// Reports the start of restoration to `listener` and returns the tracker.
    pub fn start(
        listener: &'a dyn RestoreListener,
        store: &str,
        partition: TopicPartition,
        start_offset: i64,
        end_offset: i64,
    ) -> Self {
        listener.on_restore_start(store, &partition, start_offset, end_offset);
        StoreRestoration {
            listener,
            store: store.to_owned(),
            partition,
            total: 0,
        }
    }

    /// Applies `records` (whose last offset is `batch_end_offset`) to `store` and reports
    /// the batch. Nothing is reported when the store fails.
    pub fn apply<S: StateStore + ?Sized>(
        &mut self,
        store: &mut S,
        records: &[ChangelogRecord],
        batch_end_offset: i64,
    ) -> Result<()> {
        store.restore_batch(records)?;
        let n = records.len() as u64;
        self.total += n;
        self.listener
            .on_batch_restored(&self.store, &self.partition, batch_end_offset, n);
        Ok(())
    }

    /// Records restored so far.
    pub fn total_restored(&self) -> u64 {
        self.total
    }

    /// Reports the end of restoration and returns the number of records restored.
    pub fn finish(self) -> u64 {
        self.listener
            .on_restore_end(&self.store, &self.partition, self.total);
        self.total
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::key_value::{KeyValueStore, RocksDbKeyValueStore};
    use crate::rocks::RocksDbConfig;
    use crate::StoreError;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl RestoreListener for Recorder {
        fn on_restore_start(&self, store: &str, tp: &TopicPartition, start: i64, end: i64) {
            self.0
                .lock()
                .unwrap()
                .push(format!("start {store} {tp} {start}..{end}"));
        }
        fn on_batch_restored(&self, store: &str, tp: &TopicPartition, end: i64, n: u64) {
            self.0
                .lock()
                .unwrap()
                .push(format!("batch {store} {tp} @{end} +{n}"));
        }
        fn on_restore_end(&self, store: &str, tp: &TopicPartition, total: u64) {
            self.0
                .lock()
                .unwrap()
                .push(format!("end {store} {tp} ={total}"));
        }
    }

    #[test]
    fn restoration_reports_each_batch_to_the_listener() {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            RocksDbKeyValueStore::open("counts", dir.path(), &RocksDbConfig::default()).unwrap();
        let listener = Recorder::default();
        let tp = TopicPartition::new("app-counts-changelog", 3);
        let mut restoration = StoreRestoration::start(&listener, "counts", tp, 10, 14);
        restoration
            .apply(
                &mut store,
                &[
                    (b"a".to_vec(), Some(b"1".to_vec())),
                    (b"b".to_vec(), Some(b"2".to_vec())),
                ],
                11,
            )
            .unwrap();
        restoration
            .apply(
                &mut store,
                &[(b"a".to_vec(), None), (b"c".to_vec(), Some(b"3".to_vec()))],
                13,
            )
            .unwrap();
        assert_eq!(restoration.total_restored(), 4);
        assert_eq!(restoration.finish(), 4);
        assert_eq!(
            listener.0.lock().unwrap().clone(),
            vec![
                "start counts app-counts-changelog-3 10..14",
                "batch counts app-counts-changelog-3 @11 +2",
                "batch counts app-counts-changelog-3 @13 +2",
                "end counts app-counts-changelog-3 =4",
            ]
        );
        assert_eq!(
            store.all().unwrap(),
            vec![
                (b"b".to_vec(), b"2".to_vec()),
                (b"c".to_vec(), b"3".to_vec())
            ]
        );
    }

    #[test]
    fn a_failed_batch_is_not_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            RocksDbKeyValueStore::open("counts", dir.path(), &RocksDbConfig::default()).unwrap();
        store.close().unwrap();
        let listener = Recorder::default();
        let tp = TopicPartition::new("t", 0);
        let mut restoration = StoreRestoration::start(&listener, "counts", tp, 0, 1);
        let result = restoration.apply(&mut store, &[(b"a".to_vec(), None)], 0);
        assert!(matches!(result, Err(StoreError::Closed(_))));
        assert_eq!(restoration.total_restored(), 0);
        assert_eq!(listener.0.lock().unwrap().len(), 1);
    }
}
