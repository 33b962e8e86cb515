//! [`Sink`]: the consumer of `orders.v1` that indexes every order event, on a thread of
//! its own (a `BaseConsumer` poll loop; decoding may block on the schema registry).
//!
//! Records are gathered in a batch until it holds `batch_size` documents or its first
//! record waited `linger`; the batch goes to the engine through [`BulkWriter`], and only
//! once the engine acknowledged it are the batch's offsets committed. Auto-commit is off,
//! so a crash, a stop or an engine outage never skips a record: the next consumer starts
//! from the last batch that was acknowledged, and re-indexing a record overwrites its own
//! document (id = order id + state).
//!
//! * A record that does not decode (or a document the engine refuses for good) goes to
//!   the dead-letter topic with the failure in headers (the names `streams-core` uses),
//!   and counts as done once the broker acknowledged it there: a poison record never
//!   stops its partition.
//! * On a rebalance the batch's records of revoked partitions are dropped, uncommitted;
//!   their next owner reads them again from the committed offsets.
//! * When a batch cannot be written within the retry budget (or the registry is down),
//!   the sink drops the batch and its consumer and starts over from the committed
//!   offsets after a backoff, so it keeps its place in the group meanwhile.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use orders_platform::records::Order;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::future_producer::DeliveryFuture;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::Serialize;
use streams_core::runtime::error_handling::{
    HEADER_EXCEPTION, HEADER_MESSAGE, HEADER_OFFSET, HEADER_PARTITION, HEADER_TOPIC,
};
use streams_core::serde::{Serde, SerdeError};
use tokio::runtime::Handle;

use crate::bulk::{BulkWriter, IndexAction};
use crate::document::{now_ms, OrderDocument};

/// How long an idle poll waits.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// How long a dead-letter record may take to be acknowledged.
const DEAD_LETTER_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the sink reads, writes and commits, and how it batches.
#[derive(Clone, Debug)]
pub struct SinkSettings {
    /// Kafka bootstrap servers.
    pub bootstrap_servers: String,
    /// The topic indexed (`<prefix>orders.v1`).
    pub topic: String,
    /// Where records that do not decode go (`<prefix>orders-search-dead-letters`).
    pub dead_letter_topic: String,
    /// The consumer group whose committed offsets say what is indexed.
    pub group_id: String,
    /// Most documents per batch.
    pub batch_size: usize,
    /// Longest wait of a batch's first record.
    pub linger: Duration,
    /// The consumer's `session.timeout.ms`, if not librdkafka's default.
    pub session_timeout_ms: Option<u64>,
    /// The bulk writer's retry budget (the poll interval the group allows covers it).
    pub retry_timeout: Duration,
}

/// What the sink is doing, shared with `/health`.
#[derive(Debug, Default)]
pub struct SinkStatus {
    running: AtomicBool,
    indexed: AtomicU64,
    dead_lettered: AtomicU64,
    batches: AtomicU64,
    restarts: AtomicU64,
    assigned: Mutex<Vec<i32>>,
    last_error: Mutex<Option<String>>,
}

/// A copy of [`SinkStatus`] at one moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SinkSnapshot {
    /// Whether the consume loop runs.
    pub running: bool,
    /// Documents the engine acknowledged (replays included).
    pub indexed: u64,
    /// Records sent to the dead-letter topic.
    pub dead_lettered: u64,
    /// Batches written and committed.
    pub batches: u64,
    /// Times the consumer was dropped and started over after a failure.
    pub restarts: u64,
    /// Partitions assigned to this instance.
    pub assigned: Vec<i32>,
    /// The latest failure, if any.
    pub last_error: Option<String>,
}

impl SinkStatus {
    /// The current values.
    pub fn snapshot(&self) -> SinkSnapshot {
        SinkSnapshot {
            running: self.running.load(Ordering::Relaxed),
            indexed: self.indexed.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            assigned: self.assigned.lock().expect("status").clone(),
            last_error: self.last_error.lock().expect("status").clone(),
        }
    }

    /// Whether the consume loop runs.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    fn set_error(&self, error: impl Into<String>) {
        *self.last_error.lock().expect("status") = Some(error.into());
    }
}

/// The consumer's context: notes revoked partitions (the loop drops their pending
/// records after the poll that revoked them) and keeps the assignment for `/health`.
struct SinkContext {
    revoked: Mutex<Vec<i32>>,
    status: Arc<SinkStatus>,
}

impl SinkContext {
    fn take_revoked(&self) -> Vec<i32> {
        std::mem::take(&mut *self.revoked.lock().expect("revoked"))
    }
}

impl ClientContext for SinkContext {}

impl ConsumerContext for SinkContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            let revoked: Vec<i32> = partitions
                .elements()
                .iter()
                .map(|e| e.partition())
                .collect();
            tracing::info!(
                ?revoked,
                "partitions revoked; their uncommitted records are dropped"
            );
            self.status
                .assigned
                .lock()
                .expect("status")
                .retain(|p| !revoked.contains(p));
            self.revoked.lock().expect("revoked").extend(revoked);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                let mut assigned = self.status.assigned.lock().expect("status");
                for element in partitions.elements() {
                    if !assigned.contains(&element.partition()) {
                        assigned.push(element.partition());
                    }
                }
                assigned.sort_unstable();
                tracing::info!(assigned = ?*assigned, "partitions assigned");
            }
            Rebalance::Error(e) => {
                tracing::warn!("rebalance failed: {e}");
                self.status.set_error(format!("rebalance failed: {e}"));
            }
            Rebalance::Revoke(_) => {}
        }
    }
}

/// A record as read, owned.
#[derive(Clone, Debug)]
struct Received {
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

/// What a record decodes to.
enum Decoded {
    Document(Box<OrderDocument>),
    /// It never will: dead-letter it.
    Poison(String),
    /// Perhaps later: the registry did not answer.
    RegistryDown(String),
}

/// The records read since the last commit: documents to index, dead letters in flight,
/// and the offset to commit per partition once they are all acknowledged.
#[derive(Default)]
struct Batch {
    actions: Vec<IndexAction>,
    origins: Vec<Received>,
    dead_letters: Vec<(i32, DeliveryFuture)>,
    next_offsets: BTreeMap<i32, i64>,
    first_at: Option<Instant>,
}

impl Batch {
    fn track(&mut self, partition: i32, offset: i64) {
        let next = self.next_offsets.entry(partition).or_insert(offset + 1);
        *next = (*next).max(offset + 1);
        self.first_at.get_or_insert_with(Instant::now);
    }

    fn push_document(&mut self, action: IndexAction, origin: Received) {
        self.track(origin.partition, origin.offset);
        self.actions.push(action);
        self.origins.push(origin);
    }

    fn push_dead_letter(&mut self, partition: i32, offset: i64, delivery: DeliveryFuture) {
        self.track(partition, offset);
        self.dead_letters.push((partition, delivery));
    }

    fn is_empty(&self) -> bool {
        self.next_offsets.is_empty()
    }

    fn is_due(&self, batch_size: usize, linger: Duration) -> bool {
        self.actions.len() >= batch_size
            || self.first_at.is_some_and(|first| first.elapsed() >= linger)
    }

    /// How long until the batch is due by time; `None` when empty.
    fn time_left(&self, linger: Duration) -> Option<Duration> {
        self.first_at
            .map(|first| linger.saturating_sub(first.elapsed()))
    }

    /// Forgets the records of `partitions`; returns how many documents went.
    fn drop_partitions(&mut self, partitions: &[i32]) -> usize {
        let before = self.actions.len();
        let mut origins = std::mem::take(&mut self.origins).into_iter();
        let actions = std::mem::take(&mut self.actions);
        for action in actions {
            let origin = origins.next().expect("one origin per action");
            if !partitions.contains(&origin.partition) {
                self.actions.push(action);
                self.origins.push(origin);
            }
        }
        self.dead_letters.retain(|(p, _)| !partitions.contains(p));
        self.next_offsets.retain(|p, _| !partitions.contains(p));
        if self.next_offsets.is_empty() {
            self.first_at = None;
        }
        before - self.actions.len()
    }
}

/// The indexing consumer, ready to [`spawn`](Sink::spawn).
pub struct Sink {
    settings: SinkSettings,
    serde: Arc<dyn Serde<Order>>,
    writer: BulkWriter,
    producer: FutureProducer,
    runtime: Handle,
    status: Arc<SinkStatus>,
    stop: Arc<AtomicBool>,
}

/// The running sink's thread.
pub struct SinkHandle {
    thread: JoinHandle<Result<(), String>>,
    stop: Arc<AtomicBool>,
    status: Arc<SinkStatus>,
}

impl SinkHandle {
    /// What the sink is doing.
    pub fn status(&self) -> Arc<SinkStatus> {
        self.status.clone()
    }

    /// Whether the sink's thread ended (after a stop, or by itself on a fatal error).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Asks the sink to stop: it writes and commits its pending batch (one attempt: a
    /// batch the engine does not take stays uncommitted, to be read again), then leaves
    /// the group. Waits up to `timeout`; returns the thread's error, if it failed.
    pub fn stop(self, timeout: Duration) -> Result<(), String> {
        self.stop.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + timeout;
        while !self.thread.is_finished() {
            if Instant::now() >= deadline {
                return Err(format!("the sink did not stop within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.thread
            .join()
            .unwrap_or_else(|_| Err("the sink's thread panicked".into()))
    }
}

impl Sink {
    /// A sink reading with `settings`, decoding with `serde`, writing with `writer`
    /// (whose futures run on `runtime`), dead-lettering through `producer`.
    pub fn new(
        settings: SinkSettings,
        serde: Arc<dyn Serde<Order>>,
        writer: BulkWriter,
        producer: FutureProducer,
        runtime: Handle,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        Sink {
            settings,
            serde,
            writer: writer.cancelled_by(stop.clone()),
            producer,
            runtime,
            status: Arc::new(SinkStatus::default()),
            stop,
        }
    }

    /// Starts the consume loop on a thread named `orders-search-sink`.
    pub fn spawn(self) -> std::io::Result<SinkHandle> {
        let stop = self.stop.clone();
        let status = self.status.clone();
        let thread = std::thread::Builder::new()
            .name("orders-search-sink".into())
            .spawn(move || {
                let result = self.run();
                self.status.running.store(false, Ordering::Relaxed);
                metrics::gauge!("orders_search_consumer_running").set(0.0);
                if let Err(e) = &result {
                    tracing::error!("the sink stopped: {e}");
                    self.status.set_error(e.clone());
                }
                result
            })?;
        Ok(SinkHandle {
            thread,
            stop,
            status,
        })
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Consumes until stopped; starts over with a new consumer after a failure.
    fn run(&self) -> Result<(), String> {
        let restart_delays = || {
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(500))
                .with_max_delay(Duration::from_secs(30))
                .with_jitter()
                .without_max_times()
                .build()
        };
        let mut delays = restart_delays();
        loop {
            let consumer = self.consumer()?;
            consumer
                .subscribe(&[&self.settings.topic])
                .map_err(|e| format!("subscribing to {}: {e}", self.settings.topic))?;
            self.status.running.store(true, Ordering::Relaxed);
            metrics::gauge!("orders_search_consumer_running").set(1.0);
            let mut batch = Batch::default();
            let failure =
                match self.consume(&consumer, &mut batch, &mut || delays = restart_delays()) {
                    Ok(()) => return Ok(()),
                    Err(failure) => failure,
                };
            // Nothing of the batch was committed: a new consumer reads it again.
            drop(batch);
            drop(consumer);
            if self.stopping() {
                tracing::warn!("stopped with a batch the engine did not acknowledge; it will be read again: {failure}");
                return Ok(());
            }
            self.status.restarts.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("orders_search_restarts_total").increment(1);
            self.status.set_error(failure.clone());
            let delay = delays.next().unwrap_or(Duration::from_secs(30));
            tracing::warn!("starting over from the committed offsets in {delay:?}: {failure}");
            let until = Instant::now() + delay;
            while Instant::now() < until {
                if self.stopping() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn consumer(&self) -> Result<BaseConsumer<SinkContext>, String> {
        let settings = &self.settings;
        // The group must not drop this member while a batch is being retried.
        let max_poll_ms = (settings.retry_timeout.as_millis() as u64 + 60_000).max(300_000);
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &settings.bootstrap_servers)
            .set("group.id", &settings.group_id)
            .set("client.id", &settings.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("partition.assignment.strategy", "range")
            .set("max.poll.interval.ms", max_poll_ms.to_string())
            .set("queued.max.messages.kbytes", "16384");
        if let Some(ms) = settings.session_timeout_ms {
            config.set("session.timeout.ms", ms.to_string()).set(
                "heartbeat.interval.ms",
                (ms / 6).clamp(100, 3000).to_string(),
            );
        }
        config
            .create_with_context(SinkContext {
                revoked: Mutex::new(Vec::new()),
                status: self.status.clone(),
            })
            .map_err(|e| format!("creating the consumer: {e}"))
    }

    /// The poll loop: `Ok` when stopped (the pending batch written and committed),
    /// `Err` when the consumer must start over. `progress` is called after each batch.
    fn consume(
        &self,
        consumer: &BaseConsumer<SinkContext>,
        batch: &mut Batch,
        progress: &mut dyn FnMut(),
    ) -> Result<(), String> {
        let settings = &self.settings;
        while !self.stopping() {
            let wait = batch
                .time_left(settings.linger)
                .unwrap_or(IDLE_POLL)
                .min(IDLE_POLL);
            let polled = consumer.poll(wait);
            // Revocations happened inside that poll, before what it returned was read.
            let revoked = consumer.context().take_revoked();
            if !revoked.is_empty() {
                let dropped = batch.drop_partitions(&revoked);
                if dropped > 0 {
                    tracing::info!(
                        dropped,
                        "dropped uncommitted documents of revoked partitions"
                    );
                }
            }
            match polled {
                None => {}
                Some(Err(e)) => {
                    tracing::warn!("consumer: {e}");
                    self.status.set_error(format!("consumer: {e}"));
                }
                Some(Ok(message)) => {
                    let received = Received {
                        partition: message.partition(),
                        offset: message.offset(),
                        timestamp_ms: message.timestamp().to_millis(),
                        key: message.key().map(<[u8]>::to_vec),
                        value: message.payload().map(<[u8]>::to_vec),
                    };
                    self.take(batch, received)?;
                }
            }
            if !batch.is_empty() && batch.is_due(settings.batch_size, settings.linger) {
                self.flush(consumer, batch)?;
                progress();
            }
        }
        self.flush(consumer, batch)
    }

    /// Adds one record to the batch: its document, or its dead letter.
    fn take(&self, batch: &mut Batch, received: Received) -> Result<(), String> {
        match self.decode(&received) {
            Decoded::Document(document) => {
                let source = serde_json::to_string(&document)
                    .map_err(|e| format!("serializing a document: {e}"))?;
                let action = IndexAction {
                    id: document.document_id(),
                    source,
                };
                batch.push_document(action, received);
            }
            Decoded::Poison(reason) => {
                tracing::warn!(
                    topic = self.settings.topic,
                    partition = received.partition,
                    offset = received.offset,
                    dead_letter_topic = self.settings.dead_letter_topic,
                    "record does not decode, dead-lettering it: {reason}"
                );
                let delivery = self.dead_letter(&received, "deserialization", &reason)?;
                batch.push_dead_letter(received.partition, received.offset, delivery);
            }
            Decoded::RegistryDown(reason) => return Err(reason),
        }
        Ok(())
    }

    fn decode(&self, received: &Received) -> Decoded {
        match self
            .serde
            .deserialize(&self.settings.topic, received.value.as_deref())
        {
            Ok(order) => Decoded::Document(Box::new(OrderDocument::new(
                &order,
                received.timestamp_ms.unwrap_or_else(now_ms),
                received.partition,
                received.offset,
            ))),
            Err(SerdeError::Registry {
                status,
                reason,
                url,
            }) if status.is_none_or(|s| s >= 500) => {
                Decoded::RegistryDown(format!("the schema registry at {url} failed: {reason}"))
            }
            Err(e) => Decoded::Poison(e.to_string()),
        }
    }

    /// Sends `received` to the dead-letter topic with the failure in headers.
    fn dead_letter(
        &self,
        received: &Received,
        kind: &str,
        reason: &str,
    ) -> Result<DeliveryFuture, String> {
        let partition = received.partition.to_string();
        let offset = received.offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: HEADER_EXCEPTION,
                value: Some(kind),
            })
            .insert(Header {
                key: HEADER_MESSAGE,
                value: Some(reason),
            })
            .insert(Header {
                key: HEADER_TOPIC,
                value: Some(&self.settings.topic),
            })
            .insert(Header {
                key: HEADER_PARTITION,
                value: Some(&partition),
            })
            .insert(Header {
                key: HEADER_OFFSET,
                value: Some(&offset),
            });
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.settings.dead_letter_topic).headers(headers);
        if let Some(key) = &received.key {
            record = record.key(key.as_slice());
        }
        if let Some(value) = &received.value {
            record = record.payload(value.as_slice());
        }
        if let Some(timestamp) = received.timestamp_ms {
            record = record.timestamp(timestamp);
        }
        self.producer.send_result(record).map_err(|(e, _)| {
            format!(
                "cannot send to the dead-letter topic {}: {e}",
                self.settings.dead_letter_topic
            )
        })
    }

    /// Writes the batch, waits for its dead letters, then commits its offsets.
    fn flush(&self, consumer: &BaseConsumer<SinkContext>, batch: &mut Batch) -> Result<(), String> {
        let batch = std::mem::take(batch);
        if batch.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let report = if batch.actions.is_empty() {
            Default::default()
        } else {
            self.runtime
                .block_on(self.writer.write(&batch.actions))
                .map_err(|e| e.to_string())?
        };
        let mut deliveries: Vec<DeliveryFuture> =
            batch.dead_letters.into_iter().map(|(_, d)| d).collect();
        for (position, reason) in &report.rejected {
            let origin = &batch.origins[*position];
            tracing::warn!(
                partition = origin.partition,
                offset = origin.offset,
                "the engine refused the document for good, dead-lettering it: {reason}"
            );
            deliveries.push(self.dead_letter(origin, "indexing", reason)?);
        }
        let dead_lettered = deliveries.len() as u64;
        for delivery in deliveries {
            let delivered = self
                .runtime
                .block_on(async { tokio::time::timeout(DEAD_LETTER_TIMEOUT, delivery).await });
            match delivered {
                Ok(Ok(Ok(_))) => {}
                Ok(Ok(Err((e, _)))) => return Err(format!("a dead letter was not delivered: {e}")),
                Ok(Err(_)) => return Err("the dead-letter producer went away".into()),
                Err(_) => return Err("a dead letter was not acknowledged in time".into()),
            }
        }
        let mut offsets = TopicPartitionList::new();
        for (&partition, &next) in &batch.next_offsets {
            offsets
                .add_partition_offset(&self.settings.topic, partition, Offset::Offset(next))
                .map_err(|e| format!("offset list: {e}"))?;
        }
        if let Err(e) = consumer.commit(&offsets, CommitMode::Sync) {
            // Indexed all the same; a replay of the batch overwrites its own documents.
            tracing::warn!("committing {offsets:?} failed: {e}");
            self.status.set_error(format!("commit failed: {e}"));
        }
        let indexed = (batch.actions.len() - report.rejected.len()) as u64;
        self.status.indexed.fetch_add(indexed, Ordering::Relaxed);
        self.status
            .dead_lettered
            .fetch_add(dead_lettered, Ordering::Relaxed);
        self.status.batches.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("orders_search_documents_indexed_total").increment(indexed);
        metrics::counter!("orders_search_dead_letters_total").increment(dead_lettered);
        metrics::histogram!("orders_search_batch_seconds").record(started.elapsed().as_secs_f64());
        tracing::debug!(indexed, dead_lettered, elapsed = ?started.elapsed(), "batch committed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(partition: i32, offset: i64) -> Received {
        Received {
            partition,
            offset,
            timestamp_ms: Some(1),
            key: None,
            value: None,
        }
    }

    fn action(id: &str) -> IndexAction {
        IndexAction {
            id: id.into(),
            source: "{}".into(),
        }
    }

    #[test]
    fn a_batch_commits_past_the_highest_offset_of_each_partition() {
        let mut batch = Batch::default();
        assert!(batch.is_empty());
        assert_eq!(batch.time_left(Duration::from_secs(1)), None);
        batch.push_document(action("a"), received(0, 5));
        batch.push_document(action("b"), received(1, 9));
        batch.push_document(action("c"), received(0, 6));
        assert_eq!(
            batch.next_offsets.iter().collect::<Vec<_>>(),
            vec![(&0, &7), (&1, &10)]
        );
        assert!(batch.is_due(3, Duration::from_secs(60)));
        assert!(!batch.is_due(4, Duration::from_secs(60)));
        assert!(batch.is_due(4, Duration::ZERO));
    }

    #[test]
    fn revoked_partitions_leave_the_batch_uncommitted() {
        let mut batch = Batch::default();
        batch.push_document(action("a"), received(0, 5));
        batch.push_document(action("b"), received(1, 9));
        batch.push_document(action("c"), received(2, 1));
        assert_eq!(batch.drop_partitions(&[0, 2]), 2);
        assert_eq!(batch.actions, vec![action("b")]);
        assert_eq!(batch.origins.len(), 1);
        assert_eq!(batch.next_offsets.keys().collect::<Vec<_>>(), vec![&1]);
        assert_eq!(batch.drop_partitions(&[1]), 1);
        assert!(batch.is_empty());
        assert_eq!(batch.time_left(Duration::from_secs(1)), None);
    }
}
