//! Changelog restoration: when a task with logged stores is assigned, its stores are
//! brought up to date from their changelog partitions (from the checkpointed offset, or
//! the beginning) before the task processes anything. Runs inside the poll loop, a batch
//! at a time, so the thread keeps polling its group while restoring; a rebalance in the
//! middle simply drops the partitions of revoked tasks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use streams_state::{RestoreListener, TopicPartition};

use super::changelog_reader::{self, poll_batches, positions};
use super::consumer_config::{apply_consumer_overrides, consumer_config, isolation_level};
use super::task::StreamTask;
use super::{StreamsConfig, StreamsError};
use crate::processor::TaskId;

/// How long a watermark lookup may take.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(30);
/// Changelog records applied per loop iteration at most.
const RESTORE_BATCH: usize = 2000;

/// Progress of one changelog partition.
#[derive(Debug, Clone)]
struct Progress {
    task: TaskId,
    store: String,
    /// Next offset to read.
    position: i64,
    /// Offset to reach (the high watermark when restoration started).
    end: i64,
    restored: u64,
}

/// A changelog partition a task needs restored.
pub(crate) struct RestoreRequest {
    pub partition: TopicPartition,
    pub store: String,
    /// Offset to start from (checkpointed), or `None` for the beginning of the log.
    pub start: Option<i64>,
}

/// Restores stores of newly assigned tasks, one thread's worth.
pub(crate) struct Restorer {
    consumer: BaseConsumer,
    /// Looks up where changelogs end, uncommitted records included (see [`Restorer::start`]).
    ends: BaseConsumer,
    active: BTreeMap<TopicPartition, Progress>,
    listener: Arc<dyn RestoreListener>,
    /// Positions reached per changelog partition, kept for checkpoints.
    restored_to: BTreeMap<TopicPartition, i64>,
}

impl Restorer {
    pub fn new(
        config: &StreamsConfig,
        thread_name: &str,
        listener: Arc<dyn RestoreListener>,
    ) -> Result<Self, StreamsError> {
        let isolation = isolation_level(config.processing_guarantee);
        let mut client = consumer_config(config, format!("{thread_name}-restore-consumer"));
        client
            // Never used for a group: partitions are assigned by hand.
            .set("group.id", format!("{}-restore", config.application_id))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // An offset below the log start (compaction, retention) restarts at the start.
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", isolation);
        apply_consumer_overrides(&mut client, config);
        // A read-committed consumer's end offsets are the last stable offsets; the ends
        // come from a read-uncommitted one.
        let mut ends = client.clone();
        ends.set("client.id", format!("{thread_name}-restore-ends"))
            .set("isolation.level", "read_uncommitted");
        Ok(Restorer {
            consumer: client
                .create()
                .map_err(|e| StreamsError::kafka("creating the restore consumer", e))?,
            ends: ends
                .create()
                .map_err(|e| StreamsError::kafka("creating the changelog end lookup", e))?,
            active: BTreeMap::new(),
            listener,
            restored_to: BTreeMap::new(),
        })
    }

    /// Whether any partition is still being restored.
    pub fn is_active(&self) -> bool {
        !self.active.is_empty()
    }

    /// Starts restoring `requests` for `task`. Returns whether anything is left to
    /// restore (false when every changelog is empty or already caught up).
    ///
    /// A changelog is restored up to its high watermark, not (under exactly-once) its
    /// last stable offset: an instance killed in the middle of a transaction leaves it
    /// open until the transaction times out, and the stable offset stays at its first
    /// record meanwhile, while the task's next owner commits more writes after it. A
    /// restoration that stopped at the stable offset would miss those committed writes
    /// and then process input after them. Reading committed records up to the high
    /// watermark waits, at most the transaction timeout, for the open one to be aborted.
    pub fn start(
        &mut self,
        task: TaskId,
        requests: Vec<RestoreRequest>,
    ) -> Result<bool, StreamsError> {
        let mut added = false;
        for request in requests {
            let tp = &request.partition;
            let (low, high) = changelog_reader::watermarks(&self.ends, tp, WATERMARK_TIMEOUT)
                .map_err(|e| {
                    StreamsError::kafka(
                        format!("reading the end of changelog {}-{}", tp.topic, tp.partition),
                        e,
                    )
                })?;
            let start = request.start.unwrap_or(low).max(low);
            if start >= high {
                self.restored_to
                    .insert(tp.clone(), high.max(request.start.unwrap_or(0)));
                continue;
            }
            self.listener
                .on_restore_start(&request.store, tp, start, high);
            self.active.insert(
                tp.clone(),
                Progress {
                    task,
                    store: request.store,
                    position: start,
                    end: high,
                    restored: 0,
                },
            );
            added = true;
        }
        if added {
            self.reassign()?;
        }
        Ok(added)
    }

    /// Forgets everything (all tasks revoked).
    pub fn clear(&mut self) {
        self.active.clear();
        self.restored_to.clear();
        let _ = self.consumer.unassign();
    }

    /// The offset the local stores of `partition` were restored to, if it was restored.
    pub fn restored_offset(&self, partition: &TopicPartition) -> Option<i64> {
        self.restored_to.get(partition).copied()
    }

    fn reassign(&mut self) -> Result<(), StreamsError> {
        let mut tpl = TopicPartitionList::new();
        for (tp, progress) in &self.active {
            tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(progress.position))
                .map_err(|e| StreamsError::kafka("building the restore assignment", e))?;
        }
        self.consumer
            .assign(&tpl)
            .map_err(|e| StreamsError::kafka("assigning changelog partitions", e))
    }

    /// Applies up to one batch of changelog records to the stores of `tasks`; returns the
    /// tasks whose restoration finished.
    pub fn step(
        &mut self,
        tasks: &mut BTreeMap<TaskId, StreamTask>,
    ) -> Result<Vec<TaskId>, StreamsError> {
        if self.active.is_empty() {
            return Ok(Vec::new());
        }
        let active = &self.active;
        let batches = poll_batches(
            &self.consumer,
            RESTORE_BATCH,
            Duration::from_millis(10),
            "restore consumer",
            |tp, offset| active.get(tp).is_some_and(|p| offset < p.end),
        );
        for (tp, batch) in batches {
            let progress = self
                .active
                .get_mut(&tp)
                .expect("batches only hold active partitions");
            let Some(task) = tasks.get(&progress.task) else {
                continue;
            };
            task.stores()
                .restore(&progress.store, &batch.records)
                .map_err(|e| {
                    StreamsError::state(
                        format!("restoring store {} from {}", progress.store, tp.topic),
                        e,
                    )
                })?;
            progress.restored += batch.records.len() as u64;
            progress.position = batch.last_offset + 1;
            self.listener.on_batch_restored(
                &progress.store,
                &tp,
                batch.last_offset,
                batch.records.len() as u64,
            );
        }
        for (tp, position) in positions(&self.consumer) {
            if let Some(progress) = self.active.get_mut(&tp) {
                progress.position = progress.position.max(position);
            }
        }
        let done: Vec<TopicPartition> = self
            .active
            .iter()
            .filter(|(_, p)| p.position >= p.end)
            .map(|(tp, _)| tp.clone())
            .collect();
        if done.is_empty() {
            return Ok(Vec::new());
        }
        let mut touched = BTreeSet::new();
        for tp in done {
            let progress = self.active.remove(&tp).expect("listed above");
            self.listener
                .on_restore_end(&progress.store, &tp, progress.restored);
            tracing::info!(task = %progress.task, store = progress.store, restored = progress.restored, "store restored");
            self.restored_to.insert(tp, progress.end);
            touched.insert(progress.task);
        }
        self.reassign()?;
        Ok(touched
            .into_iter()
            .filter(|t| !self.active.values().any(|p| p.task == *t))
            .collect())
    }
}
