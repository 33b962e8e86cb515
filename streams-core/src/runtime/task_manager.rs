//! The tasks of one stream thread: created from the partitions the group assigns, fed
//! with polled records, processed, committed, and closed on revocation.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use super::kafka_collector::{KafkaCollector, TransactionFailure};
use streams_state::{
    CacheBudget, OffsetCheckpoint, RestoreListener, RocksDbConfig, StateDirectory, StoreError,
    TaskDirLock, TopicPartition,
};

use super::input_lag::InputLags;
use super::purge::RepartitionPurger;
use super::restore::{RestoreRequest, Restorer};
use super::task::{StreamTask, TaskHandlers};
use super::{metrics, StreamsConfig, StreamsError};
use crate::processor::{PunctuationType, TaskId};
use crate::state::changelog_topic;
use crate::state::global::GlobalStores;
use crate::state::task_stores::{StoreLocation, TaskStores};
use crate::topology::node::{OffsetReset, RawRecord, SourceTopics};
use crate::topology::Topology;

/// How long a flush before a commit may take before the thread fails.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);
/// Transactions aborted in a row before the thread gives up (exactly-once).
const MAX_CONSECUTIVE_ABORTS: u32 = 3;
/// How long committed offsets may take to read on assignment.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(30);
/// First wait before retrying a task whose state directory is locked, doubled per attempt.
const LOCK_RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between two attempts to lock a task's state directory.
const LOCK_RETRY_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// An assigned task not created yet: its state directory was locked by another stream
/// thread (a previous owner still closing it). Its partitions stay paused meanwhile.
struct PendingTask {
    partitions: Vec<(String, i32)>,
    /// Records fetched before the partitions were paused, handed to the task once created.
    early: Vec<RawRecord>,
    next_attempt: Instant,
    backoff: Duration,
}

/// Whether `error` says that a task's state directory is locked by someone else.
fn is_directory_locked(error: &StreamsError) -> bool {
    matches!(error, StreamsError::State { source, .. }
        if matches!(**source, StoreError::DirectoryLocked { .. }))
}

/// Which sub-topology reads a topic, and with which offset reset policy.
#[derive(Clone)]
pub(crate) struct TopicRouter {
    named: HashMap<String, (u32, Option<OffsetReset>)>,
    patterns: Vec<(regex::Regex, u32, Option<OffsetReset>)>,
}

impl TopicRouter {
    pub fn new(topology: &Topology, app: &str) -> Self {
        let mut named = HashMap::new();
        let mut patterns = Vec::new();
        for sub in &topology.subtopologies {
            for &n in &sub.nodes {
                if let crate::topology::node::NodeKind::Source {
                    topics,
                    offset_reset,
                    ..
                } = &topology.nodes[n].kind
                {
                    match topics {
                        SourceTopics::Names(names) => {
                            for t in names {
                                named.insert(t.resolve(app), (sub.id, *offset_reset));
                            }
                        }
                        SourceTopics::Pattern(p) => {
                            patterns.push((p.clone(), sub.id, *offset_reset))
                        }
                    }
                }
            }
        }
        TopicRouter { named, patterns }
    }

    /// The sub-topology reading `topic` and its reset policy.
    pub fn route(&self, topic: &str) -> Option<(u32, Option<OffsetReset>)> {
        self.named.get(topic).copied().or_else(|| {
            self.patterns
                .iter()
                .find(|(p, _, _)| p.is_match(topic))
                .map(|(_, id, reset)| (*id, *reset))
        })
    }

    /// What the consumer subscribes to: topic names, and patterns as `^regex`.
    pub fn subscription(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.named.keys().cloned().collect();
        topics.sort();
        for (p, _, _) in &self.patterns {
            let s = p.as_str();
            topics.push(if s.starts_with('^') {
                s.to_string()
            } else {
                format!("^{s}")
            });
        }
        topics
    }
}

/// Tasks and producer of one stream thread.
pub(crate) struct TaskManager {
    topology: Arc<Topology>,
    router: TopicRouter,
    application_id: Arc<str>,
    handlers: Arc<TaskHandlers>,
    pub collector: KafkaCollector,
    tasks: BTreeMap<TaskId, StreamTask>,
    /// Assigned tasks waiting for their state directory lock.
    pending: BTreeMap<TaskId, PendingTask>,
    by_partition: HashMap<(String, i32), TaskId>,
    paused: BTreeSet<(String, i32)>,
    max_buffered: usize,
    max_idle_ms: i64,
    thread_name: String,
    /// An error raised inside a rebalance callback, reported by the poll loop.
    pub callback_error: Option<StreamsError>,
    state_dir: StateDirectory,
    rocksdb: RocksDbConfig,
    /// Locks of the task directories of tasks with persistent stores.
    locks: HashMap<TaskId, TaskDirLock>,
    restorer: Restorer,
    globals: Arc<GlobalStores>,
    purger: Option<RepartitionPurger>,
    /// The record cache budget shared by this thread's stores.
    cache: CacheBudget,
    /// Where input partitions end, for tasks deciding whether to wait for one.
    lags: InputLags,
    /// Whether a task held records back at the last round of processing.
    waiting: bool,
    /// Transactions aborted in a row, and why the last one was.
    consecutive_aborts: u32,
    last_abort_reason: String,
}

/// Wall-clock time in ms since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl TaskManager {
    pub fn new(
        topology: Arc<Topology>,
        config: &StreamsConfig,
        collector: KafkaCollector,
        thread_name: &str,
        restore_listener: Arc<dyn RestoreListener>,
        globals: Arc<GlobalStores>,
    ) -> Result<Self, StreamsError> {
        let state_dir =
            StateDirectory::new(&config.state_dir, &config.application_id).map_err(|e| {
                StreamsError::state(
                    format!("opening the state directory {}", config.state_dir.display()),
                    e,
                )
            })?;
        Ok(TaskManager {
            lags: InputLags::default(),
            waiting: false,
            consecutive_aborts: 0,
            last_abort_reason: String::new(),
            cache: CacheBudget::new(config.thread_cache_max_bytes()),
            purger: RepartitionPurger::new(&topology, config),
            globals,
            state_dir,
            rocksdb: RocksDbConfig::default(),
            locks: HashMap::new(),
            restorer: Restorer::new(config, thread_name, restore_listener)?,
            router: TopicRouter::new(&topology, &config.application_id),
            topology,
            application_id: Arc::from(config.application_id.as_str()),
            handlers: Arc::new(TaskHandlers {
                deserialization: config.deserialization_error_handler.clone(),
                processing: config.processing_error_handler.clone(),
            }),
            collector,
            tasks: BTreeMap::new(),
            pending: BTreeMap::new(),
            by_partition: HashMap::new(),
            paused: BTreeSet::new(),
            max_buffered: config.buffered_records_per_partition.max(1),
            max_idle_ms: config.max_task_idle.as_millis() as i64,
            thread_name: thread_name.to_string(),
            callback_error: None,
        })
    }

    /// Opens the stores of task `id` and lists the changelog partitions to restore. Tasks
    /// with persistent stores lock their directory; local data is trusted only up to the
    /// checkpoint, and wiped when a logged store has none.
    fn open_stores(
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
        let store_error = |e: StoreError| {
            StreamsError::state(format!("opening the state stores of task {id}"), e)
        };
        let task_name = id.to_string();
        let mut checkpointed = BTreeMap::new();
        let persistent = definitions.iter().any(|d| d.persistent);
        if persistent {
            let lock = self.state_dir.lock(&task_name).map_err(store_error)?;
            checkpointed = OffsetCheckpoint::in_dir(lock.dir())
                .read()
                .unwrap_or_else(|e| {
                    tracing::warn!(task = %id, "ignoring the checkpoint: {e}");
                    BTreeMap::new()
                });
            let untrusted = definitions
                .iter()
                .filter(|d| d.persistent && d.logging)
                .any(|d| {
                    let tp = TopicPartition::new(
                        changelog_topic(&self.application_id, &d.name),
                        id.partition,
                    );
                    !checkpointed.contains_key(&tp)
                });
            if untrusted {
                self.state_dir.wipe(&task_name).map_err(store_error)?;
                checkpointed.clear();
            }
            if self.collector.is_transactional() {
                // Until this task closes cleanly, its stores may hold uncommitted writes.
                OffsetCheckpoint::in_dir(lock.dir())
                    .delete()
                    .map_err(store_error)?;
            }
            self.locks.insert(id, lock);
        }
        let location = self.locks.get(&id).map(|lock| StoreLocation {
            task_dir: lock.dir(),
            rocksdb: &self.rocksdb,
        });
        let stores = TaskStores::open(
            &definitions,
            &self.application_id,
            id.partition,
            location,
            &self.cache,
        )
        .map_err(store_error)?
        .with_globals(self.globals.clone());
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

    /// Whether any task is restoring its stores.
    pub fn is_restoring(&self) -> bool {
        self.restorer.is_active()
    }

    /// Applies a batch of changelog records to restoring stores; tasks that finish start
    /// processing.
    pub fn restore(&mut self) -> Result<(), StreamsError> {
        let finished = self.restorer.step(&mut self.tasks)?;
        let now = now_ms();
        for id in finished {
            if let Some(task) = self.tasks.get_mut(&id) {
                task.set_restoring(false);
                task.init(&self.collector, now)?;
            }
        }
        Ok(())
    }

    /// The slots of store `name` in tasks that are not restoring.
    pub fn queryable_slots(&self, name: &str) -> Vec<&crate::state::task_stores::StoreSlot> {
        self.tasks
            .values()
            .filter(|t| !t.is_restoring())
            .filter_map(|t| t.stores().slot(name))
            .collect()
    }

    /// Each task with whether it is still restoring.
    pub fn task_states(&self) -> Vec<(TaskId, bool)> {
        self.tasks
            .iter()
            .map(|(id, t)| (*id, t.is_restoring()))
            .collect()
    }

    /// Flushes the stores of every running task and writes their checkpoints: for each
    /// changelog partition, the offset after the last acknowledged write (or where
    /// restoration ended).
    fn checkpoint(&self) -> Result<(), StreamsError> {
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

    pub fn router(&self) -> &TopicRouter {
        &self.router
    }

    /// Ids of the tasks this thread runs.
    pub fn task_ids(&self) -> Vec<TaskId> {
        self.tasks.keys().copied().collect()
    }

    /// Whether a task that is not restoring may have records to process now (then polls
    /// must not block). Tasks holding records back for an empty partition do not count:
    /// see [`is_waiting`](Self::is_waiting).
    pub fn has_processable(&self) -> bool {
        !self.waiting
            && self
                .tasks
                .values()
                .any(|t| !t.is_restoring() && t.buffered() > 0)
    }

    /// Whether, at the last round of processing, a task held buffered records back for an
    /// empty partition (records on the broker not fetched yet, or `max_task_idle`): polls
    /// then block only briefly, so the task is looked at again soon.
    pub fn is_waiting(&self) -> bool {
        self.waiting
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
    fn create_task(
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
            // Processors are initialized once their stores are complete.
            task.set_restoring(true);
        } else {
            task.init(&self.collector, now)?;
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

    /// Commits and closes every task (eager rebalance or shutdown).
    pub fn on_revoked<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        // The record caches forward what they hold while the processors are still open.
        self.flush_caches()?;
        // Processors close first: what they write in close is part of the final commit.
        for task in self.tasks.values_mut() {
            task.clear_buffers();
            task.close_processors(&self.collector);
        }
        let result = if self.collector.is_transactional() {
            // A clean close under exactly-once: commit, then checkpoint (the checkpoint is
            // deleted while tasks run, so that a crash makes the next owner wipe and restore).
            match self.commit_transaction(consumer) {
                Ok(true) => self.checkpoint(),
                Ok(false) => Ok(()),
                Err(e) => Err(e),
            }
        } else {
            self.commit(consumer)
        };
        for task in self.tasks.values_mut() {
            task.close_stores_only();
        }
        self.restorer.clear();
        self.locks.clear();
        if !self.tasks.is_empty() {
            tracing::info!(thread = self.thread_name, tasks = ?self.task_ids(), "tasks revoked");
        }
        self.tasks.clear();
        self.pending.clear();
        self.by_partition.clear();
        self.paused.clear();
        self.lags.clear();
        result
    }

    /// Buffers polled records in their tasks.
    pub fn add_records(&mut self, records: Vec<RawRecord>) {
        metrics::record_consumed(&self.thread_name, records.len() as u64);
        // Polled records come in runs of one partition: look its task up once per run.
        let mut last: Option<(Arc<str>, i32, Option<TaskId>)> = None;
        for raw in records {
            let id = match &last {
                Some((topic, partition, id))
                    if Arc::ptr_eq(topic, &raw.topic) && *partition == raw.partition =>
                {
                    *id
                }
                _ => {
                    let id = self
                        .by_partition
                        .get(&(raw.topic.to_string(), raw.partition))
                        .copied();
                    last = Some((raw.topic.clone(), raw.partition, id));
                    id
                }
            };
            match id {
                Some(id) => {
                    if let Some(task) = self.tasks.get_mut(&id) {
                        task.add_record(raw);
                    }
                }
                None => {
                    let waiting = self.pending.values_mut().find(|p| {
                        p.partitions
                            .iter()
                            .any(|(t, n)| **t == *raw.topic && *n == raw.partition)
                    });
                    match waiting {
                        // Fetched before its partition was paused: kept for the task.
                        Some(pending) => pending.early.push(raw),
                        None => tracing::debug!(
                            topic = &*raw.topic,
                            partition = raw.partition,
                            "record of an unowned partition"
                        ),
                    }
                }
            }
        }
    }

    /// Processes buffered records of every processable task, up to `per_task` each, then
    /// fires due wall-clock punctuators. Returns how many records were processed.
    pub fn process<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        per_task: usize,
    ) -> Result<usize, StreamsError> {
        let start = Instant::now();
        let now = now_ms();
        let mut processed = 0;
        let lags = &mut self.lags;
        let mut positions = None;
        let mut lag =
            |topic: &str, partition: i32| lags.lag(consumer, &mut positions, topic, partition);
        self.waiting = false;
        for task in self.tasks.values_mut() {
            let mut n = 0;
            while n < per_task && task.is_processable(now, self.max_idle_ms, &mut lag) {
                if !task.process_next(&self.collector, now)? {
                    break;
                }
                n += 1;
            }
            if n < per_task && !task.is_restoring() && task.buffered() > 0 {
                // Holding records back for an empty partition.
                self.waiting = true;
            }
            processed += n;
            task.punctuate(&self.collector, PunctuationType::WallClockTime, now)?;
        }
        metrics::record_processed(&self.thread_name, processed as u64, start.elapsed());
        Ok(processed)
    }

    /// Pauses partitions with a full buffer and resumes those that drained below half.
    pub fn apply_backpressure<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let mut pause = TopicPartitionList::new();
        let mut resume = TopicPartitionList::new();
        for (tp, id) in &self.by_partition {
            let Some(task) = self.tasks.get(id) else {
                continue;
            };
            let buffered = task.buffered_in(&tp.0, tp.1);
            if buffered >= self.max_buffered && !self.paused.contains(tp) {
                pause.add_partition(&tp.0, tp.1);
                self.paused.insert(tp.clone());
            } else if buffered <= self.max_buffered / 2 && self.paused.contains(tp) {
                resume.add_partition(&tp.0, tp.1);
                self.paused.remove(tp);
            }
        }
        if pause.count() > 0 {
            if let Err(e) = consumer.pause(&pause) {
                tracing::warn!("cannot pause partitions: {e}");
            }
        }
        if resume.count() > 0 {
            if let Err(e) = consumer.resume(&resume) {
                tracing::warn!("cannot resume partitions: {e}");
            }
        }
    }

    /// Whether a processor asked for a commit.
    pub fn commit_requested(&self) -> bool {
        self.tasks.values().any(StreamTask::commit_requested)
    }

    /// Empties every running task's write caches into its stores and changelogs and sends
    /// the resulting changelog records, so that the commit covers them. Making stores
    /// durable (RocksDB flushes) is left to checkpoints.
    fn flush_caches(&mut self) -> Result<(), StreamsError> {
        for task in self.tasks.values_mut().filter(|t| !t.is_restoring()) {
            task.flush_caches(&self.collector)?;
        }
        Ok(())
    }

    /// The offsets every task processed since its last commit.
    fn pending_offsets(&self) -> Result<TopicPartitionList, StreamsError> {
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

    /// Commits what the tasks processed. At-least-once: flushes the producer, then
    /// commits offsets, so nothing is committed before what it produced is acknowledged.
    /// Exactly-once: commits the transaction holding the outputs, changelog writes and
    /// offsets; an abortable failure aborts it and rewinds every task (see
    /// [`rewind`](Self::rewind)).
    pub fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        if self.collector.is_transactional() {
            // An empty commit (nothing processed since) proves nothing about the records
            // that made the last transactions fail.
            let has_work = self.collector.in_transaction() || self.pending_offsets()?.count() > 0;
            if self.commit_transaction(consumer)? {
                if has_work {
                    self.consecutive_aborts = 0;
                }
            } else {
                // A record that fails every time (say, too large for its topic) would
                // abort and rewind forever: give up after a few attempts in a row.
                self.consecutive_aborts += 1;
                if self.consecutive_aborts > MAX_CONSECUTIVE_ABORTS {
                    return Err(StreamsError::TransactionsAborted {
                        count: self.consecutive_aborts,
                        reason: self.last_abort_reason.clone(),
                    });
                }
                self.rewind(consumer)?;
            }
            return Ok(());
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

    /// Commits the open transaction with the processed offsets. Returns `Ok(false)` if it
    /// had to be aborted (the caller decides whether to rewind), an error if the producer
    /// is unusable.
    fn commit_transaction<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<bool, StreamsError> {
        let start = Instant::now();
        self.flush_caches()?;
        let offsets = self.pending_offsets()?;
        let group = consumer.group_metadata().ok_or_else(|| {
            StreamsError::TransactionFatal("the consumer has no group metadata".into())
        })?;
        match self.collector.commit_transaction(&offsets, &group) {
            Ok(()) => {
                for task in self.tasks.values_mut() {
                    task.mark_committed();
                }
                self.purge();
                metrics::record_commit(&self.thread_name, start.elapsed());
                Ok(true)
            }
            Err(TransactionFailure::Abortable(reason)) => {
                tracing::warn!(
                    thread = self.thread_name,
                    "aborting the transaction: {reason}"
                );
                self.last_abort_reason = reason.clone();
                match self.collector.abort_transaction() {
                    Ok(()) => Ok(false),
                    Err(TransactionFailure::Abortable(e) | TransactionFailure::Fatal(e)) => Err(
                        StreamsError::TransactionFatal(format!("abort failed after {reason}: {e}")),
                    ),
                }
            }
            Err(TransactionFailure::Fatal(reason)) => Err(StreamsError::TransactionFatal(reason)),
        }
    }

    /// Deletes repartition records every task committed past, now and then.
    fn purge(&mut self) {
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

    /// After an aborted transaction: drops every task and its local state (which may
    /// hold aborted writes), and recreates them from the committed offsets, restoring
    /// stores from their changelogs (read committed). Wiping rather than buffering
    /// uncommitted store writes keeps the store layer simple; aborts are rare.
    fn rewind<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        let assignment = consumer
            .assignment()
            .map_err(|e| StreamsError::kafka("reading the assignment to rewind", e))?;
        let ids: Vec<TaskId> = self.tasks.keys().copied().collect();
        self.drop_tasks();
        for id in ids {
            if self.locks.contains_key(&id) {
                self.state_dir.wipe(&id.to_string()).map_err(|e| {
                    StreamsError::state(format!("wiping the state of task {id}"), e)
                })?;
            }
        }
        self.locks.clear();
        let start = self.on_assigned(consumer, &assignment)?;
        consumer
            .assign(&start)
            .map_err(|e| StreamsError::kafka("reassigning partitions after an abort", e))?;
        // librdkafka keeps a partition paused across `assign`; the pauses of backpressure
        // were forgotten with the tasks, so a partition left paused would never move again.
        consumer
            .resume(&start)
            .map_err(|e| StreamsError::kafka("resuming partitions after an abort", e))?;
        self.pause_pending(consumer);
        tracing::info!(thread = self.thread_name, tasks = ?self.task_ids(), "tasks rewound to committed offsets");
        Ok(())
    }

    /// Drops every task without running processors' `close` (its output would be part of
    /// no committed transaction) and forgets buffers, pauses and restoration.
    fn drop_tasks(&mut self) {
        for task in self.tasks.values_mut() {
            task.clear_buffers();
            task.close_stores_only();
        }
        self.tasks.clear();
        self.pending.clear();
        self.by_partition.clear();
        self.paused.clear();
        self.lags.clear();
        self.restorer.clear();
    }

    /// Closes all tasks without committing (after a fatal error); under exactly-once the
    /// open transaction is aborted. Local state written since the last commit may not be
    /// in the changelog, so checkpoints are deleted: the next owner wipes and restores.
    pub fn close_dirty(&mut self) {
        for lock in self.locks.values() {
            if let Err(e) = OffsetCheckpoint::in_dir(lock.dir()).delete() {
                tracing::warn!(
                    thread = self.thread_name,
                    "cannot delete a checkpoint after a failure: {e}"
                );
            }
        }
        if let Err(e) = self.collector.abort_transaction() {
            tracing::warn!(
                thread = self.thread_name,
                "aborting the transaction at close failed: {e:?}"
            );
        }
        self.drop_tasks();
        self.locks.clear();
    }
}
