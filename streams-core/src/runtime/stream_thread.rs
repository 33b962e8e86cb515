//! A stream thread: one group member with a `BaseConsumer` poll loop on its own OS
//! thread, running the tasks the group assigns to it.
//!
//! Rebalances are eager (range assignor): on revocation the thread flushes its producer,
//! commits what its tasks processed and closes them; on assignment it creates the tasks
//! of the new partitions and starts each from its committed offset.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::{Headers as _, Message};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, TopicPartitionList};
use streams_state::RestoreListener;

use crate::state::global::GlobalStores;

use super::consumer_config::{consumer_config, isolation_level};
use super::kafka_collector::KafkaCollector;
use super::kafka_streams::{ClientShared, ThreadState};
use super::metadata::membership_topic::group_identity;
use super::task_manager::TaskManager;
use super::{metrics, ProcessingGuarantee, StreamsConfig, StreamsError};
use crate::record::Headers;
use crate::topology::node::RawRecord;
use crate::topology::Topology;

/// Records polled per loop iteration at most.
const MAX_POLL_RECORDS: usize = 1000;
/// Records a task processes per loop iteration at most, so polling stays regular.
const RECORDS_PER_TASK: usize = 1000;
/// Longest poll while tasks wait for their state directory lock or hold records back for
/// an empty partition, so that they are looked at again soon.
const SHORT_POLL_TIMEOUT: Duration = Duration::from_millis(10);

/// The consumer's context: handles rebalances with the thread's tasks.
pub(crate) struct ThreadContext {
    index: usize,
    manager: Arc<Mutex<TaskManager>>,
    client: Arc<ClientShared>,
}

fn lock(manager: &Mutex<TaskManager>) -> MutexGuard<'_, TaskManager> {
    manager.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClientContext for ThreadContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    metrics::record_lag(topic, *partition, p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for ThreadContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        self.client
            .set_thread_state(self.index, ThreadState::Rebalancing);
        let mut manager = lock(&self.manager);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let start = match manager.on_assigned(consumer, tpl) {
                    Ok(start) => start,
                    Err(e) => {
                        manager.callback_error.get_or_insert(e);
                        tpl.clone()
                    }
                };
                if let Err(e) = consumer.assign(&start) {
                    manager
                        .callback_error
                        .get_or_insert(StreamsError::kafka("assigning partitions", e));
                }
                // A partition paused for backpressure before the rebalance stays paused
                // across it (librdkafka keeps application pauses): start afresh.
                if let Err(e) = consumer.resume(&start) {
                    tracing::debug!("resuming assigned partitions: {e}");
                }
                // Tasks whose state directory is still locked fetch nothing until created.
                manager.pause_pending(consumer);
                if let Some(membership) = &self.client.membership {
                    match group_identity(consumer) {
                        Some(identity) => {
                            membership.announce(self.index, &identity, &manager.assigned_tasks())
                        }
                        None => tracing::warn!("no group metadata to announce the assignment"),
                    }
                }
                self.client
                    .set_thread_tasks(self.index, manager.task_states());
                drop(manager);
                self.client
                    .set_thread_state(self.index, ThreadState::Running);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                if let Err(e) = manager.on_revoked(consumer) {
                    manager.callback_error.get_or_insert(e);
                }
                self.client.set_thread_tasks(self.index, Vec::new());
                if let Err(e) = consumer.unassign() {
                    tracing::warn!("unassign failed: {e}");
                }
            }
            other => {
                tracing::error!("rebalance error: {other:?}");
                manager.close_dirty();
                self.client.set_thread_tasks(self.index, Vec::new());
                let _ = consumer.unassign();
            }
        }
    }
}

/// Everything a thread needs to run.
pub(crate) struct ThreadSpec {
    pub index: usize,
    pub topology: Arc<Topology>,
    pub config: Arc<StreamsConfig>,
    pub client: Arc<ClientShared>,
    pub client_id: String,
    pub restore_listener: Arc<dyn RestoreListener>,
    pub globals: Arc<GlobalStores>,
}

/// Runs the poll loop until shutdown is requested or a fatal error occurs.
pub(crate) fn run(spec: ThreadSpec) -> Result<(), StreamsError> {
    loop {
        match run_member(&spec) {
            // Fenced or broken producer: start over with a fresh producer, consumer and
            // tasks, rejoining the group; the tasks restart from committed offsets.
            Err(StreamsError::TransactionFatal(reason))
                if !spec.client.shutdown.load(Ordering::Acquire) =>
            {
                tracing::warn!(
                    thread = spec.index,
                    "recreating the stream thread's clients: {reason}"
                );
                // Not in a tight loop while the cluster is unreachable.
                std::thread::sleep(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// One life of the thread as a group member, from subscribing to leaving.
fn run_member(spec: &ThreadSpec) -> Result<(), StreamsError> {
    let config = &spec.config;
    let name = format!("{}-StreamThread-{}", spec.client_id, spec.index);
    let transactional_id = (config.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2)
        .then(|| format!("{}-{}", spec.client_id, spec.index));
    let collector = KafkaCollector::new(config, &name, transactional_id.as_deref())?;
    let manager = Arc::new(Mutex::new(TaskManager::new(
        spec.topology.clone(),
        config,
        collector,
        &name,
        spec.restore_listener.clone(),
        spec.globals.clone(),
        spec.client.queryable.clone(),
    )?));
    let consumer = create_consumer(spec, &name, manager.clone())?;
    let subscription = lock(&manager).router().subscription();
    let topics: Vec<&str> = subscription.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|e| StreamsError::kafka("subscribing to the source topics", e))?;
    tracing::info!(thread = name, ?topics, "stream thread started");

    let result = poll_loop(spec, &consumer, &manager);
    match &result {
        Ok(()) => {
            // Graceful: commit what was processed, then leave the group.
            let mut m = lock(&manager);
            let closed = m.on_revoked(&consumer);
            drop(m);
            if let Err(e) = closed {
                tracing::warn!(thread = name, "final commit failed: {e}");
            }
        }
        Err(e) => {
            tracing::error!(thread = name, "stream thread failed: {e}");
            lock(&manager).close_dirty();
        }
    }
    consumer.unsubscribe();
    drop(consumer);
    tracing::info!(thread = name, "stream thread stopped");
    result
}

fn create_consumer(
    spec: &ThreadSpec,
    name: &str,
    manager: Arc<Mutex<TaskManager>>,
) -> Result<BaseConsumer<ThreadContext>, StreamsError> {
    let config = &spec.config;
    let isolation = isolation_level(config.processing_guarantee);
    let mut client = consumer_config(config, format!("{name}-consumer"));
    client
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set(
            "statistics.interval.ms",
            config.statistics_interval.as_millis().to_string(),
        );
    for (k, v) in &config.consumer_overrides {
        client.set(k, v);
    }
    // What the runtime's correctness rests on wins over overrides: offsets are committed
    // only by the runtime, after processing; eager range assignment makes tasks.
    client
        .set("group.id", &config.application_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("partition.assignment.strategy", "range")
        .set("group.protocol", "classic")
        .set("isolation.level", isolation);
    client
        .create_with_context(ThreadContext {
            index: spec.index,
            manager,
            client: spec.client.clone(),
        })
        .map_err(|e| StreamsError::kafka("creating the consumer", e))
}

fn poll_loop(
    spec: &ThreadSpec,
    consumer: &BaseConsumer<ThreadContext>,
    manager: &Mutex<TaskManager>,
) -> Result<(), StreamsError> {
    let config = &spec.config;
    let mut last_commit = Instant::now();
    let mut batch = Vec::with_capacity(MAX_POLL_RECORDS);
    let mut topics = TopicNames::default();
    while !spec.client.shutdown.load(Ordering::Acquire) {
        let timeout = {
            let m = lock(manager);
            let timeout = if m.has_processable() || m.is_restoring() {
                Duration::ZERO
            } else if m.has_pending() || m.is_waiting() {
                config.poll_timeout.min(SHORT_POLL_TIMEOUT)
            } else {
                config.poll_timeout
            };
            if m.has_uncommitted() {
                timeout.min(config.commit_interval.saturating_sub(last_commit.elapsed()))
            } else {
                timeout
            }
        };
        // Rebalance callbacks run inside poll and take the manager's lock themselves.
        let mut next = consumer.poll(timeout);
        while let Some(result) = next {
            match result {
                Ok(message) => batch.push(raw_record(&message, &mut topics)),
                Err(e) => tracing::warn!("consumer error: {e}"),
            }
            if batch.len() >= MAX_POLL_RECORDS {
                break;
            }
            next = consumer.poll(Duration::ZERO);
        }

        let mut m = lock(manager);
        if let Some(error) = m.callback_error.take() {
            return Err(error);
        }
        if !batch.is_empty() {
            m.add_records(std::mem::take(&mut batch));
        }
        if m.has_pending() && m.retry_pending(consumer)? {
            spec.client.set_thread_tasks(spec.index, m.task_states());
        }
        if m.is_restoring() {
            m.restore()?;
            spec.client.set_thread_tasks(spec.index, m.task_states());
        }
        m.process(consumer, RECORDS_PER_TASK)?;
        m.apply_backpressure(consumer);
        if last_commit.elapsed() >= config.commit_interval || m.commit_requested() {
            m.commit(consumer)?;
            last_commit = Instant::now();
        }
    }
    Ok(())
}

/// The names of the topics the thread reads, shared by their records.
#[derive(Default)]
struct TopicNames(Vec<Arc<str>>);

impl TopicNames {
    fn get(&mut self, topic: &str) -> Arc<str> {
        if let Some(name) = self.0.iter().find(|name| ***name == *topic) {
            return name.clone();
        }
        let name: Arc<str> = Arc::from(topic);
        self.0.push(name.clone());
        name
    }
}

fn raw_record<M: Message>(message: &M, topics: &mut TopicNames) -> RawRecord {
    let mut headers = Headers::new();
    if let Some(h) = message.headers() {
        for header in h.iter() {
            headers.add(header.key, header.value.map(<[u8]>::to_vec));
        }
    }
    RawRecord {
        topic: topics.get(message.topic()),
        partition: message.partition(),
        offset: message.offset(),
        timestamp: message.timestamp().to_millis().unwrap_or(-1),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        headers,
    }
}
