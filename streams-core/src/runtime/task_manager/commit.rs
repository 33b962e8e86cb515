//! The at-least-once commit (producer flushed, then offsets), and what every commit
//! shares: emptying record caches, the offsets to commit, checkpoints of the stores and
//! purging repartition records.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use super::TaskManager;
use crate::runtime::{metrics, StreamsError};

/// How long a flush before a commit may take before the thread fails.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

impl TaskManager {
    /// Commits what the tasks processed. At-least-once: flushes the producer, then
    /// commits offsets, so nothing is committed before what it produced is acknowledged.
    /// Exactly-once: see [`commit_exactly_once`](Self::commit_exactly_once).
    pub fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        self.uncommitted = false;
        if self.collector.is_transactional() {
            return self.commit_exactly_once(consumer);
        }
        let start = Instant::now();
        self.flush_caches()?;
        self.collector.flush(FLUSH_TIMEOUT)?;
        let offsets = self.pending_offsets()?;
        if offsets.count() > 0 {
            match consumer.commit(&offsets, CommitMode::Sync) {
                Ok(()) => {}
                // The group moved on (this member was evicted or is rebalancing): the
                // records are processed again by the next owner, which at-least-once allows.
                Err(e) => {
                    tracing::warn!(
                        thread = self.thread_name,
                        "offset commit failed; records may be processed again: {e}"
                    );
                    for task in self.tasks.values_mut() {
                        task.clear_commit_request();
                    }
                    return self.checkpoint();
                }
            }
        }
        for task in self.tasks.values_mut() {
            task.mark_committed();
        }
        self.purge();
        self.checkpoint()?;
        metrics::record_commit(&self.thread_name, start.elapsed());
        Ok(())
    }

    /// Empties every running task's write caches into its stores and changelogs and sends
    /// the resulting changelog records, so that the commit covers them. Making stores
    /// durable (RocksDB flushes) is left to checkpoints.
    pub(super) fn flush_caches(&mut self) -> Result<(), StreamsError> {
        for task in self.tasks.values_mut().filter(|t| !t.is_restoring()) {
            task.flush_caches(&self.collector)?;
        }
        Ok(())
    }

    /// The offsets every task processed since its last commit.
    pub(super) fn pending_offsets(&self) -> Result<TopicPartitionList, StreamsError> {
        let mut offsets = TopicPartitionList::new();
        for task in self.tasks.values() {
            for ((topic, partition), offset) in task.offsets_to_commit() {
                offsets
                    .add_partition_offset(&topic, partition, Offset::Offset(offset))
                    .map_err(|e| StreamsError::kafka("building the commit", e))?;
            }
        }
        Ok(offsets)
    }

    /// Flushes the stores of every running task and writes their checkpoints: for each
    /// changelog partition, the offset after the last acknowledged write (or where
    /// restoration ended).
    pub(super) fn checkpoint(&self) -> Result<(), StreamsError> {
        for (id, task) in &self.tasks {
            let stores = task.stores();
            if task.is_restoring() || !stores.has_persistent_stores() {
                continue;
            }
            stores
                .flush()
                .map_err(|e| StreamsError::state(format!("flushing the stores of task {id}"), e))?;
            let mut offsets = BTreeMap::new();
            for (tp, _) in stores.changelog_partitions() {
                let written = self
                    .collector
                    .changelog_offset(&tp.topic, tp.partition)
                    .map(|o| o + 1);
                let restored = self.restorer.restored_offset(&tp);
                if let Some(offset) = written.max(restored) {
                    offsets.insert(tp, offset);
                }
            }
            stores.write_checkpoint(&offsets).map_err(|e| {
                StreamsError::state(format!("writing the checkpoint of task {id}"), e)
            })?;
        }
        Ok(())
    }

    /// Deletes repartition records every task committed past, now and then.
    pub(super) fn purge(&mut self) {
        if let Some(purger) = &mut self.purger {
            let mut committed = BTreeMap::new();
            for task in self.tasks.values() {
                committed.extend(
                    task.committed_offsets()
                        .iter()
                        .map(|(tp, o)| (tp.clone(), *o)),
                );
            }
            purger.maybe_purge(&committed);
        }
    }
}
