//! Creating the tasks of assigned partitions: their stores (opened, locked, checked
//! against their checkpoints), their restoration, and the start offsets of their
//! partitions; tasks whose state directory is still locked wait and are retried.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};
use streams_state::{OffsetCheckpoint, StoreError};

use super::{now_ms, TaskManager};
use crate::processor::TaskId;
use crate::runtime::restore::RestoreRequest;
use crate::runtime::task::StreamTask;
use crate::runtime::task_state::{StateLocation, TaskState};
use crate::runtime::StreamsError;
use crate::state::task_stores::TaskStores;
use crate::topology::node::{OffsetReset, RawRecord};

/// How long committed offsets may take to read on assignment.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(30);
/// First wait before retrying a task whose state directory is locked, doubled per attempt.
const LOCK_RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between two attempts to lock a task's state directory.
const LOCK_RETRY_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// An assigned task not created yet: its state directory was locked by another stream
/// thread (a previous owner still closing it). Its partitions stay paused meanwhile.
pub(super) struct PendingTask {
    pub partitions: Vec<(String, i32)>,
    /// Records fetched before the partitions were paused, handed to the task once created.
    pub early: Vec<RawRecord>,
    next_attempt: Instant,
    backoff: Duration,
}

/// Whether `error` says that a task's state directory is locked by someone else.
fn is_directory_locked(error: &StreamsError) -> bool {
    matches!(error, StreamsError::State { source, .. }
        if matches!(**source, StoreError::DirectoryLocked { .. }))
}

impl TaskManager {
    /// Opens the stores of task `id` and lists the changelog partitions to restore. Tasks
    /// with persistent stores lock their directory; local data is trusted only up to the
    /// checkpoint, and wiped when a logged store has none.
    pub(super) fn open_stores(
        &mut self,
        id: TaskId,
    ) -> Result<(TaskStores, Vec<RestoreRequest>), StreamsError> {
        let definitions = self.topology.stores_of(id.subtopology);
        if definitions.is_empty() {
            return Ok((
                TaskStores::empty(id.partition).with_globals(self.globals.clone()),
                Vec::new(),
            ));
        }
        let location = StateLocation {
            state_dir: &self.state_dir,
            rocksdb: &self.rocksdb,
            application_id: &self.application_id,
            cache: &self.cache,
        };
        let TaskState {
            lock,
            stores,
            checkpointed,
        } = location.open(id, &definitions)?;
        let stores = stores.with_globals(self.globals.clone());
        if let Some(lock) = lock {
            if self.collector.is_transactional() {
                // Until this task closes cleanly, its stores may hold uncommitted writes.
                OffsetCheckpoint::in_dir(lock.dir()).delete().map_err(|e| {
                    StreamsError::state(format!("opening the state stores of task {id}"), e)
                })?;
            }
            self.locks.insert(id, lock);
        }
        let requests = stores
            .changelog_partitions()
            .into_iter()
            .map(|(partition, store)| {
                let persistent = definitions.iter().any(|d| d.name == store && d.persistent);
                RestoreRequest {
                    start: if persistent {
                        checkpointed.get(&partition).copied()
                    } else {
                        None
                    },
                    partition,
                    store,
                }
            })
            .collect();
        Ok((stores, requests))
    }

    /// Creates tasks for newly assigned partitions and returns the assignment with the
    /// offset each partition starts from: the committed one, else the source's reset policy.
    pub fn on_assigned<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        assigned: &TopicPartitionList,
    ) -> Result<TopicPartitionList, StreamsError> {
        let mut per_task: BTreeMap<TaskId, Vec<(String, i32)>> = BTreeMap::new();
        for e in assigned.elements() {
            match self.router.route(e.topic()) {
                Some((sub, _)) => per_task
                    .entry(TaskId {
                        subtopology: sub,
                        partition: e.partition(),
                    })
                    .or_default()
                    .push((e.topic().to_string(), e.partition())),
                None => tracing::warn!(topic = e.topic(), "assigned a topic no sub-topology reads"),
            }
        }
        let now = now_ms();
        for (id, partitions) in per_task {
            match self.create_task(id, &partitions, now) {
                Ok(()) => {}
                Err(e) if is_directory_locked(&e) => {
                    tracing::info!(
                        thread = self.thread_name, task = %id,
                        "state directory still locked by its previous owner; retrying: {e}"
                    );
                    self.pending.insert(
                        id,
                        PendingTask {
                            partitions,
                            early: Vec::new(),
                            next_attempt: Instant::now() + LOCK_RETRY_BACKOFF,
                            backoff: LOCK_RETRY_BACKOFF,
                        },
                    );
                }
                Err(e) => return Err(e),
            }
        }
        tracing::info!(
            thread = self.thread_name,
            tasks = ?self.task_ids(),
            waiting_for_lock = ?self.pending.keys().collect::<Vec<_>>(),
            "tasks assigned"
        );

        // A coordinator blip must not kill the thread: retry, then let librdkafka look
        // the committed offsets up itself (losing only per-source `Latest` resets).
        let mut committed = None;
        for attempt in 1..=3 {
            if assigned.count() == 0 {
                committed = Some(TopicPartitionList::new());
                break;
            }
            match consumer.committed_offsets(assigned.clone(), COMMITTED_TIMEOUT) {
                Ok(offsets) => {
                    committed = Some(offsets);
                    break;
                }
                Err(e) => {
                    tracing::warn!(
                        thread = self.thread_name,
                        attempt,
                        "reading committed offsets failed: {e}"
                    );
                    std::thread::sleep(Duration::from_millis(200 * attempt));
                }
            }
        }
        let mut start = TopicPartitionList::new();
        for e in assigned.elements() {
            let Some(committed) = &committed else {
                self.lags
                    .set_start(e.topic(), e.partition(), Offset::Stored);
                start
                    .add_partition_offset(e.topic(), e.partition(), Offset::Stored)
                    .map_err(|e| StreamsError::kafka("building the assignment", e))?;
                continue;
            };
            let committed_offset = committed
                .find_partition(e.topic(), e.partition())
                .map(|c| c.offset())
                .filter(|o| matches!(o, Offset::Offset(_)));
            let offset = committed_offset.unwrap_or_else(|| {
                match self.router.route(e.topic()).and_then(|(_, r)| r) {
                    Some(OffsetReset::Latest) => Offset::End,
                    _ => Offset::Beginning,
                }
            });
            self.lags.set_start(e.topic(), e.partition(), offset);
            start
                .add_partition_offset(e.topic(), e.partition(), offset)
                .map_err(|e| StreamsError::kafka("building the assignment", e))?;
        }
        Ok(start)
    }

    /// Creates task `id` reading `partitions`: opens (and locks) its stores, starts their
    /// restoration or initializes its processors.
    pub(super) fn create_task(
        &mut self,
        id: TaskId,
        partitions: &[(String, i32)],
        now: i64,
    ) -> Result<(), StreamsError> {
        let (stores, restore) = self.open_stores(id)?;
        let mut task = StreamTask::new(
            &self.topology,
            id,
            partitions,
            self.application_id.clone(),
            self.handlers.clone(),
            stores,
        );
        if self.restorer.start(id, restore)? {
            // Processors are initialized once their stores are complete; until then
            // only stale queries read them.
            task.set_restoring(true);
            self.queryable.publish_stale(id, task.stores());
        } else {
            task.init(&self.collector, now)?;
            self.queryable.publish(id, task.stores());
        }
        for tp in partitions {
            self.by_partition.insert(tp.clone(), id);
        }
        self.tasks.insert(id, task);
        Ok(())
    }

    /// Pauses the partitions of tasks waiting for their state directory, so that nothing
    /// is fetched for them before they exist (call after assigning).
    pub fn pause_pending<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) {
        let mut pause = TopicPartitionList::new();
        for pending in self.pending.values() {
            for (topic, partition) in &pending.partitions {
                pause.add_partition(topic, *partition);
            }
        }
        if pause.count() > 0 {
            if let Err(e) = consumer.pause(&pause) {
                tracing::warn!("cannot pause partitions of tasks waiting for a lock: {e}");
            }
        }
    }

    /// Tries again to create the tasks whose state directory was locked, as their backoff
    /// allows; the partitions of those created are resumed. Returns whether a task was
    /// created.
    pub fn retry_pending<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<bool, StreamsError> {
        let now = Instant::now();
        let due: Vec<TaskId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.next_attempt <= now)
            .map(|(id, _)| *id)
            .collect();
        let mut created = false;
        for id in due {
            let Some(mut pending) = self.pending.remove(&id) else {
                continue;
            };
            match self.create_task(id, &pending.partitions, now_ms()) {
                Ok(()) => {
                    tracing::info!(thread = self.thread_name, task = %id, "task created after its state directory was released");
                    if let Some(task) = self.tasks.get_mut(&id) {
                        for raw in pending.early.drain(..) {
                            task.add_record(raw);
                        }
                    }
                    let mut resume = TopicPartitionList::new();
                    for (topic, partition) in &pending.partitions {
                        resume.add_partition(topic, *partition);
                    }
                    consumer
                        .resume(&resume)
                        .map_err(|e| StreamsError::kafka("resuming the partitions of a task", e))?;
                    created = true;
                }
                Err(e) if is_directory_locked(&e) => {
                    pending.backoff = (pending.backoff * 2).min(LOCK_RETRY_MAX_BACKOFF);
                    pending.next_attempt = now + pending.backoff;
                    tracing::debug!(thread = self.thread_name, task = %id, backoff = ?pending.backoff, "state directory still locked");
                    self.pending.insert(id, pending);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(created)
    }

    /// Whether assigned tasks wait for their state directory lock.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}
