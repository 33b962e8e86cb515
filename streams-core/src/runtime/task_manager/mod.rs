//! The tasks of one stream thread: created from the partitions the group assigns, fed
//! with polled records, processed, committed, and closed on revocation. One file per
//! phase:
//!
//! * [`assignment`]: creating tasks for assigned partitions, opening and locking their
//!   stores, retrying tasks whose state directory is still locked;
//! * [`processing`]: restoration steps, buffering polled records, processing them,
//!   backpressure;
//! * [`commit`]: the at-least-once commit, checkpoints and purging repartition topics;
//! * [`exactly_once`]: transactions, aborts and rewinding to the committed offsets;
//! * [`revocation`]: closing tasks on revocation, shutdown or failure.

mod assignment;
mod commit;
mod exactly_once;
mod processing;
mod revocation;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use streams_state::{CacheBudget, RestoreListener, RocksDbConfig, StateDirectory, TaskDirLock};

use self::assignment::PendingTask;
use super::input_lag::InputLags;
use super::kafka_collector::KafkaCollector;
use super::purge::RepartitionPurger;
use super::restore::Restorer;
use super::task::{StreamTask, TaskHandlers};
use super::topic_router::TopicRouter;
use super::{StreamsConfig, StreamsError};
use crate::processor::TaskId;
use crate::state::global::GlobalStores;
use crate::state::queryable::QueryableStores;
use crate::topology::Topology;

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
    /// Where the stores of running tasks are published for queries.
    queryable: Arc<QueryableStores>,
    /// The record cache budget shared by this thread's stores.
    cache: CacheBudget,
    /// Where input partitions end, for tasks deciding whether to wait for one.
    lags: InputLags,
    /// Whether a task held records back at the last round of processing.
    waiting: bool,
    /// Whether records were processed since the last commit.
    uncommitted: bool,
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
    /// The task manager of stream thread `thread_name`, with no tasks yet.
    pub fn new(
        topology: Arc<Topology>,
        config: &StreamsConfig,
        collector: KafkaCollector,
        thread_name: &str,
        restore_listener: Arc<dyn RestoreListener>,
        globals: Arc<GlobalStores>,
        queryable: Arc<QueryableStores>,
    ) -> Result<Self, StreamsError> {
        let state_dir =
            StateDirectory::new(&config.state_dir, &config.application_id).map_err(|e| {
                StreamsError::state(
                    format!("opening the state directory {}", config.state_dir.display()),
                    e,
                )
            })?;
        Ok(TaskManager {
            lags: InputLags::new(super::consumer_config::reads_committed(config)),
            waiting: false,
            uncommitted: false,
            consecutive_aborts: 0,
            last_abort_reason: String::new(),
            cache: CacheBudget::new(config.thread_cache_max_bytes()),
            purger: RepartitionPurger::new(&topology, config),
            globals,
            queryable,
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

    /// Whether any task is restoring its stores.
    pub fn is_restoring(&self) -> bool {
        self.restorer.is_active()
    }

    /// Each task with whether it is still restoring.
    pub fn task_states(&self) -> Vec<(TaskId, bool)> {
        self.tasks
            .iter()
            .map(|(id, t)| (*id, t.is_restoring()))
            .collect()
    }

    pub fn router(&self) -> &TopicRouter {
        &self.router
    }

    /// Ids of the tasks assigned to this thread: running, restoring, or waiting for their
    /// state directory.
    pub fn assigned_tasks(&self) -> Vec<TaskId> {
        let mut ids: Vec<TaskId> = self
            .tasks
            .keys()
            .chain(self.pending.keys())
            .copied()
            .collect();
        ids.sort();
        ids
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

    /// Whether records were processed since the last commit: then the poll loop wakes
    /// up for the commit when it is due instead of blocking a whole poll timeout, so
    /// a quiet input does not hold processed results back from downstream readers.
    pub fn has_uncommitted(&self) -> bool {
        self.uncommitted
    }

    /// Whether a processor asked for a commit.
    pub fn commit_requested(&self) -> bool {
        self.tasks.values().any(StreamTask::commit_requested)
    }
}
