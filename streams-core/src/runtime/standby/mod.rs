//! Standby replicas (`num_standby_replicas`): copies of other instances' task stores,
//! kept up to date from their changelogs on a thread of their own, so that a failover
//! does not restore from scratch.
//!
//! Which instance keeps a standby of which task follows from the membership (see
//! `runtime/metadata/membership.rs`): the instance the range assignor would hand the
//! task to if its active instance left. When that happens, the stream thread that is
//! assigned the task finds the standby's directory locked; the standby thread sees the
//! assignment, checkpoints and releases the directory, and the task restores only the
//! changelog records after that checkpoint. Only persistent (RocksDB) stores have
//! standbys: in-memory stores could not be handed over.

mod task;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use streams_state::{CacheBudget, RocksDbConfig, StateDirectory, StoreError, TopicPartition};

use self::task::StandbyTask;
use super::changelog_reader::{poll_batches, positions};
use super::consumer_config::{apply_consumer_overrides, consumer_config};
use super::kafka_streams::ClientShared;
use super::metadata::TaskLayout;
use super::task_state::StateLocation;
use super::{StreamsConfig, StreamsError};
use crate::processor::TaskId;
use crate::topology::Topology;

/// How often the set of standby tasks is reconciled with the membership.
const RECONCILE_INTERVAL: Duration = Duration::from_millis(100);
/// How often changelog ends are looked up for the lag.
const LAG_INTERVAL: Duration = Duration::from_secs(1);
/// Changelog records applied per poll round at most.
const BATCH: usize = 2000;

/// How far one standby store is behind its changelog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StandbyLag {
    /// The standby task.
    pub task: TaskId,
    /// The store.
    pub store: String,
    /// The next changelog offset the standby applies.
    pub position: i64,
    /// The changelog's end when last looked up.
    pub end: i64,
    /// `end - position`, at least 0.
    pub lag: i64,
}

/// The standby tasks of one instance, reported to the handle.
#[derive(Default)]
pub(crate) struct StandbyStatus {
    lags: Mutex<Vec<StandbyLag>>,
}

impl StandbyStatus {
    /// The lag of every standby store of this instance.
    pub fn lags(&self) -> Vec<StandbyLag> {
        self.lags.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Keeps this instance's standby tasks.
pub(crate) struct StandbyManager {
    topology: Arc<Topology>,
    layout: TaskLayout,
    client: Arc<ClientShared>,
    process_id: String,
    replicas: usize,
    state_dir: StateDirectory,
    rocksdb: RocksDbConfig,
    application_id: String,
    consumer: BaseConsumer,
    /// Looks changelog ends up, uncommitted records included.
    ends: BaseConsumer,
    tasks: BTreeMap<TaskId, StandbyTask>,
    checkpoint_interval: Duration,
    status: Arc<StandbyStatus>,
}

impl StandbyManager {
    pub fn new(
        config: &StreamsConfig,
        client_id: &str,
        topology: Arc<Topology>,
        layout: TaskLayout,
        client: Arc<ClientShared>,
        process_id: &str,
        status: Arc<StandbyStatus>,
    ) -> Result<Self, StreamsError> {
        let state_dir = StateDirectory::new(&config.state_dir, &config.application_id)
            .map_err(|e| StreamsError::state("opening the state directory for standbys", e))?;
        let mut client_config = consumer_config(config, format!("{client_id}-standby-consumer"));
        client_config
            // Assigned by hand, never subscribed.
            .set("group.id", format!("{}-standby", config.application_id))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest");
        apply_consumer_overrides(&mut client_config, config);
        let mut ends = client_config.clone();
        ends.set("client.id", format!("{client_id}-standby-ends"))
            .set("isolation.level", "read_uncommitted");
        Ok(StandbyManager {
            topology,
            layout,
            client,
            process_id: process_id.to_string(),
            replicas: config.num_standby_replicas,
            state_dir,
            rocksdb: RocksDbConfig::default(),
            application_id: config.application_id.clone(),
            consumer: client_config
                .create()
                .map_err(|e| StreamsError::kafka("creating the standby consumer", e))?,
            ends: ends
                .create()
                .map_err(|e| StreamsError::kafka("creating the standby end lookup", e))?,
            tasks: BTreeMap::new(),
            checkpoint_interval: config.commit_interval.max(Duration::from_secs(1)),
            status,
        })
    }

    /// Runs on a thread of its own until the instance shuts down.
    pub fn start(mut self) -> Result<JoinHandle<()>, StreamsError> {
        std::thread::Builder::new()
            .name("standby-thread".into())
            .spawn(move || {
                if let Err(e) = self.run() {
                    tracing::error!("the standby thread stopped: {e}");
                }
                self.close_all();
            })
            .map_err(|e| {
                StreamsError::InvalidState(format!("cannot spawn the standby thread: {e}"))
            })
    }

    fn run(&mut self) -> Result<(), StreamsError> {
        let mut last_reconcile = Instant::now() - RECONCILE_INTERVAL;
        let mut last_checkpoint = Instant::now();
        let mut last_lag = Instant::now() - LAG_INTERVAL;
        while !self.client.shutdown.load(Ordering::Acquire) {
            if last_reconcile.elapsed() >= RECONCILE_INTERVAL {
                self.reconcile()?;
                last_reconcile = Instant::now();
            }
            if self.tasks.is_empty() {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            self.poll()?;
            if last_checkpoint.elapsed() >= self.checkpoint_interval {
                for task in self.tasks.values() {
                    if let Err(e) = task.checkpoint() {
                        tracing::warn!(task = %task.id, "checkpointing a standby failed: {e}");
                    }
                }
                last_checkpoint = Instant::now();
            }
            if last_lag.elapsed() >= LAG_INTERVAL {
                self.refresh_lags();
                last_lag = Instant::now();
            }
        }
        Ok(())
    }

    /// The tasks this instance should keep standbys of now.
    fn wanted(&self) -> Option<BTreeSet<TaskId>> {
        let membership = self.client.membership.as_ref()?;
        let view = membership.view(&self.layout.tasks, self.replicas).ok()?;
        let mine = view.instances.get(&self.process_id)?;
        Some(
            mine.standby
                .iter()
                .copied()
                .filter(|t| self.has_standby_stores(t.subtopology))
                .collect(),
        )
    }

    fn has_standby_stores(&self, subtopology: u32) -> bool {
        self.topology
            .stores_of(subtopology)
            .iter()
            .any(|d| d.persistent && d.logging)
    }

    /// Closes standbys of tasks this instance was assigned (their stream thread waits
    /// for the directory) or no longer keeps, and opens the missing ones.
    fn reconcile(&mut self) -> Result<(), StreamsError> {
        let local = self
            .client
            .membership
            .as_ref()
            .map(|m| m.local_tasks())
            .unwrap_or_default();
        // While the view is unavailable (a rebalance), keep what is open unless it
        // became active here.
        let wanted = self
            .wanted()
            .unwrap_or_else(|| self.tasks.keys().copied().collect());
        let close: Vec<TaskId> = self
            .tasks
            .keys()
            .filter(|t| local.contains(t) || !wanted.contains(t))
            .copied()
            .collect();
        let mut changed = !close.is_empty();
        for id in close {
            if let Some(task) = self.tasks.remove(&id) {
                self.client.queryable.withdraw_stale(id);
                task.close();
            }
        }
        for id in wanted {
            if self.tasks.contains_key(&id) || local.contains(&id) {
                continue;
            }
            match self.open(id) {
                Ok(task) => {
                    tracing::info!(task = %id, changelogs = ?task.changelogs.keys().collect::<Vec<_>>(), "standby opened");
                    self.client.queryable.publish_stale(id, &task.stores);
                    self.tasks.insert(id, task);
                    changed = true;
                }
                Err(StreamsError::State { source, .. })
                    if matches!(*source, StoreError::DirectoryLocked { .. }) =>
                {
                    // Its previous active owner here is still closing: next round.
                    tracing::debug!(task = %id, "standby waits for the task directory");
                }
                Err(e) => return Err(e),
            }
        }
        if changed {
            self.assign()?;
            self.refresh_lags();
        }
        Ok(())
    }

    fn open(&self, id: TaskId) -> Result<StandbyTask, StreamsError> {
        // Standby stores apply the changelog straight into the store: no record cache.
        let cache = CacheBudget::new(0);
        let location = StateLocation {
            state_dir: &self.state_dir,
            rocksdb: &self.rocksdb,
            application_id: &self.application_id,
            cache: &cache,
        };
        let definitions: Vec<_> = self
            .topology
            .stores_of(id.subtopology)
            .into_iter()
            .filter(|d| d.persistent && d.logging)
            .collect();
        Ok(StandbyTask::new(id, location.open(id, &definitions)?))
    }

    fn assign(&mut self) -> Result<(), StreamsError> {
        let mut tpl = TopicPartitionList::new();
        for task in self.tasks.values() {
            for (tp, changelog) in &task.changelogs {
                tpl.add_partition_offset(
                    &tp.topic,
                    tp.partition,
                    Offset::Offset(changelog.position),
                )
                .map_err(|e| StreamsError::kafka("building the standby assignment", e))?;
            }
        }
        self.consumer
            .assign(&tpl)
            .map_err(|e| StreamsError::kafka("assigning standby changelogs", e))
    }

    /// Applies one round of changelog records.
    fn poll(&mut self) -> Result<(), StreamsError> {
        let batches = poll_batches(
            &self.consumer,
            BATCH,
            Duration::from_millis(50),
            "standby consumer",
            |_, _| true,
        );
        for (tp, batch) in batches {
            if let Some(task) = self.task_of(&tp) {
                task.apply(&tp, &batch.records, batch.last_offset)?;
            }
        }
        for (tp, position) in positions(&self.consumer) {
            if let Some(changelog) = self.task_of(&tp).and_then(|t| t.changelogs.get_mut(&tp)) {
                changelog.position = changelog.position.max(position);
            }
        }
        Ok(())
    }

    fn task_of(&mut self, tp: &TopicPartition) -> Option<&mut StandbyTask> {
        self.tasks
            .values_mut()
            .find(|t| t.changelogs.contains_key(tp))
    }

    fn refresh_lags(&mut self) {
        let mut lags = Vec::new();
        for task in self.tasks.values_mut() {
            for (tp, changelog) in task.changelogs.iter_mut() {
                match self
                    .ends
                    .fetch_watermarks(&tp.topic, tp.partition, Duration::from_secs(5))
                {
                    Ok((_, high)) => changelog.end = Some(high),
                    Err(e) => tracing::debug!("looking up the end of {}: {e}", tp.topic),
                }
                let end = changelog.end.unwrap_or(changelog.position);
                let lag = (end - changelog.position).max(0);
                super::metrics::record_standby_lag(&task.id, &changelog.store, lag);
                lags.push(StandbyLag {
                    task: task.id,
                    store: changelog.store.clone(),
                    position: changelog.position,
                    end,
                    lag,
                });
            }
        }
        *self.status.lags.lock().unwrap_or_else(|e| e.into_inner()) = lags;
    }

    fn close_all(&mut self) {
        for (id, task) in std::mem::take(&mut self.tasks) {
            self.client.queryable.withdraw_stale(id);
            task.close();
        }
        self.status
            .lags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
