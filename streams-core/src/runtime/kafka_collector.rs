//! The record collector of a stream thread: a non-blocking rdkafka producer whose
//! delivery reports are checked at flush time, never awaited per record.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::bindings as rdsys;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use rdkafka::TopicPartitionList;

use super::error_handling::ProductionErrorHandler;
use super::{metrics, StreamsConfig, StreamsError};
use crate::graph::{OutgoingRecord, RecordCollector};
use crate::processor::ProcessError;

/// How long a send may wait for room in the producer's queue.
const QUEUE_FULL_TIMEOUT: Duration = Duration::from_secs(120);

/// How long initializing transactions may take.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one call of a transaction (sending offsets, committing, aborting) may take.
/// The broker aborts a transaction open longer than `transaction.timeout.ms` (10 s)
/// anyway, so waiting longer gains nothing.
const TRANSACTION_CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// The first retry backoff of a transactional producer (see [`KafkaCollector::new`]).
const TRANSACTIONAL_RETRY_BACKOFF_MS: &str = "10";

/// Why a transaction could not be committed.
#[derive(Debug, Clone)]
pub(crate) enum TransactionFailure {
    /// Abort it, rewind to the last committed offsets and go on.
    Abortable(String),
    /// The producer is fenced or broken: it must be replaced.
    Fatal(String),
}

impl TransactionFailure {
    fn classify(error: &KafkaError) -> Self {
        match error {
            KafkaError::Transaction(e) if e.is_fatal() => TransactionFailure::Fatal(e.to_string()),
            // A coordinator that does not answer in time is not waited for again: after
            // a broker restart librdkafka may keep the request queued for good, so the
            // producer is replaced (its successor fences it and aborts its transaction).
            other if is_timeout(other) => TransactionFailure::Fatal(format!(
                "the transaction coordinator did not answer within {TRANSACTION_CALL_TIMEOUT:?}: {other}"
            )),
            other => TransactionFailure::Abortable(other.to_string()),
        }
    }
}

/// Whether a transactional call failed because it timed out.
fn is_timeout(error: &KafkaError) -> bool {
    match error {
        KafkaError::Transaction(e) => e.code() == RDKafkaErrorCode::OperationTimedOut,
        other => other.rdkafka_error_code() == Some(RDKafkaErrorCode::OperationTimedOut),
    }
}

/// Runs a transactional call again while it fails with a retriable error.
fn retry(mut call: impl FnMut() -> Result<(), KafkaError>) -> Result<(), KafkaError> {
    let mut attempts = 0;
    loop {
        match call() {
            Err(error @ KafkaError::Transaction(_)) if is_timeout(&error) => return Err(error),
            Err(KafkaError::Transaction(e)) if e.is_retriable() && attempts < 5 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(100 * attempts));
            }
            other => return other,
        }
    }
}

/// How long metadata lookups for partition counts may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// A record the broker refused.
#[derive(Debug, Clone)]
pub(crate) struct DeliveryFailure {
    pub topic: String,
    pub reason: String,
}

/// Receives delivery reports on the producer's polling thread.
pub(crate) struct DeliveryTracker {
    failures: Mutex<Vec<DeliveryFailure>>,
    /// Highest acknowledged offset per changelog partition, for store checkpoints.
    changelog_offsets: Mutex<HashMap<(String, i32), i64>>,
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Ok(message) = result {
            if message.topic().ends_with("-changelog") {
                let mut offsets = self
                    .changelog_offsets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let entry = offsets
                    .entry((message.topic().to_string(), message.partition()))
                    .or_insert(-1);
                *entry = (*entry).max(message.offset());
            }
        }
        if let Err((error, message)) = result {
            let failure = DeliveryFailure {
                topic: message.topic().to_string(),
                reason: error.to_string(),
            };
            self.failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(failure);
        }
    }
}

/// Sends a stream thread's output to Kafka.
pub(crate) struct KafkaCollector {
    producer: ThreadedProducer<DeliveryTracker>,
    /// Exactly-once: every write and offset commit is part of a transaction.
    transactional: bool,
    in_transaction: std::cell::Cell<bool>,
    handler: ProductionErrorHandler,
    partition_counts: RefCell<HashMap<String, i32>>,
    sent: std::cell::Cell<u64>,
    thread_name: String,
}

impl KafkaCollector {
    /// Creates the producer of stream thread `thread_name`.
    pub fn new(
        config: &StreamsConfig,
        thread_name: &str,
        transactional_id: Option<&str>,
    ) -> Result<Self, StreamsError> {
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", &config.bootstrap_servers)
            .set("client.id", format!("{thread_name}-producer"))
            // Same partition as Kafka's Java clients for the same key bytes.
            .set("partitioner", "murmur2_random")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5");
        for (k, v) in &config.producer_overrides {
            client.set(k, v);
        }
        if let Some(id) = transactional_id {
            client
                .set("transactional.id", id)
                // An instance that dies mid-transaction blocks read_committed readers of
                // its partitions until the broker aborts it: keep that short.
                .set("transaction.timeout.ms", "10000")
                // Commits follow each other within milliseconds: the coordinator may
                // answer a transaction's offsets request with CONCURRENT_TRANSACTIONS
                // while the previous commit's markers are being written (a few ms), and
                // librdkafka retries it after `retry.backoff.ms`, 100 ms by default.
                // Retries still back off exponentially up to `retry.backoff.max.ms`.
                .set("retry.backoff.ms", TRANSACTIONAL_RETRY_BACKOFF_MS);
        }
        let producer: ThreadedProducer<DeliveryTracker> = client
            .create_with_context(DeliveryTracker {
                failures: Mutex::new(Vec::new()),
                changelog_offsets: Mutex::new(HashMap::new()),
            })
            .map_err(|e| StreamsError::kafka("creating the producer", e))?;
        if transactional_id.is_some() {
            producer
                .init_transactions(TRANSACTION_TIMEOUT)
                // The cluster may be restarting: the thread retries with a fresh producer.
                .map_err(|e| {
                    StreamsError::TransactionFatal(format!("initializing transactions: {e}"))
                })?;
        }
        Ok(KafkaCollector {
            transactional: transactional_id.is_some(),
            in_transaction: std::cell::Cell::new(false),
            producer,
            handler: config.production_error_handler.clone(),
            partition_counts: RefCell::new(HashMap::new()),
            sent: std::cell::Cell::new(0),
            thread_name: thread_name.to_string(),
        })
    }

    /// Waits until every record sent so far is acknowledged or failed, then applies the
    /// production error handler to failures. Only after `Ok` may offsets be committed.
    pub fn flush(&self, timeout: Duration) -> Result<(), StreamsError> {
        let sent = self.sent.replace(0);
        if sent > 0 {
            metrics::record_produced(&self.thread_name, sent);
        }
        self.drain(timeout).map_err(|e| {
            StreamsError::kafka(format!("flushing the producer within {timeout:?}"), e)
        })?;
        let failures = std::mem::take(
            &mut *self
                .producer
                .context()
                .failures
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        match (failures.first(), &self.handler) {
            (None, _) => Ok(()),
            (Some(first), ProductionErrorHandler::Fail) => Err(StreamsError::Production {
                topic: first.topic.clone(),
                reason: format!("{} ({} records failed)", first.reason, failures.len()),
            }),
            (Some(_), ProductionErrorHandler::LogAndContinue) => {
                for f in &failures {
                    tracing::warn!(
                        topic = f.topic,
                        "dropped a record the broker refused: {}",
                        f.reason
                    );
                }
                Ok(())
            }
        }
    }

    /// Starts a transaction unless one is open (exactly-once only).
    fn ensure_transaction(&self) -> Result<(), KafkaError> {
        if self.transactional && !self.in_transaction.get() {
            self.producer.begin_transaction()?;
            self.in_transaction.set(true);
        }
        Ok(())
    }

    /// Whether a transaction is open (something was sent since the last commit).
    pub fn in_transaction(&self) -> bool {
        self.in_transaction.get()
    }

    /// Whether writes go through transactions.
    pub fn is_transactional(&self) -> bool {
        self.transactional
    }

    /// Commits the open transaction together with `offsets` (the consumed positions of
    /// the group described by `group`). Retriable errors are retried; the error says
    /// whether the transaction can be aborted and redone or the producer is unusable.
    pub fn commit_transaction(
        &self,
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), TransactionFailure> {
        let classify = |e: KafkaError| TransactionFailure::classify(&e);
        if offsets.count() == 0 && !self.in_transaction.get() {
            return Ok(());
        }
        self.ensure_transaction().map_err(classify)?;
        if offsets.count() > 0 {
            retry(|| {
                self.producer
                    .send_offsets_to_transaction(offsets, group, TRANSACTION_CALL_TIMEOUT)
            })
            .map_err(classify)?;
        }
        // Drained first: rdkafka's commit would otherwise wait out its flush's poll.
        self.drain(TRANSACTION_CALL_TIMEOUT).map_err(classify)?;
        retry(|| self.producer.commit_transaction(TRANSACTION_CALL_TIMEOUT)).map_err(classify)?;
        self.in_transaction.set(false);
        let sent = self.sent.replace(0);
        if sent > 0 {
            metrics::record_produced(&self.thread_name, sent);
        }
        Ok(())
    }

    /// Waits until every record sent is acknowledged or failed (the producer's queue is
    /// empty).
    ///
    /// Not rdkafka's `flush`: it waits for delivery reports by polling the producer's
    /// event queue for up to 100 ms at a time, but this producer's own thread serves that
    /// queue and takes the reports first, so every flush with records in flight lasted
    /// a full 100 ms: a tenth of a second added to each commit, and to each exactly-once
    /// hop (rdkafka's `commit_transaction` flushes the same way, hence the drain before
    /// it). librdkafka's flush with a 1 ms limit, repeated, keeps the producer sending
    /// without lingering and returns within a millisecond of the last acknowledgement.
    fn drain(&self, timeout: Duration) -> KafkaResult<()> {
        let deadline = Instant::now() + timeout;
        loop {
            // SAFETY: the pointer is the live producer handle `self.producer` owns;
            // librdkafka's flush may be called from any thread.
            let code = unsafe { rdsys::rd_kafka_flush(self.producer.client().native_ptr(), 1) };
            match RDKafkaErrorCode::from(code) {
                RDKafkaErrorCode::NoError => return Ok(()),
                RDKafkaErrorCode::OperationTimedOut if Instant::now() < deadline => {}
                code => return Err(KafkaError::Flush(code)),
            }
        }
    }

    /// Aborts the open transaction, if any: none of its writes will be visible.
    pub fn abort_transaction(&self) -> Result<(), TransactionFailure> {
        if !self.in_transaction.replace(false) {
            return Ok(());
        }
        self.sent.set(0);
        // Failures of the aborted writes no longer matter.
        self.producer
            .context()
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        retry(|| self.producer.abort_transaction(TRANSACTION_CALL_TIMEOUT))
            .map_err(|e| TransactionFailure::classify(&e))
    }

    /// The highest acknowledged offset of a changelog partition, if any was written.
    pub fn changelog_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.producer
            .context()
            .changelog_offsets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(topic.to_string(), partition))
            .copied()
    }

    fn to_headers(record: &OutgoingRecord) -> Option<OwnedHeaders> {
        if record.headers.is_empty() {
            return None;
        }
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for h in record.headers.iter() {
            headers = headers.insert(Header {
                key: &h.key,
                value: h.value.as_deref(),
            });
        }
        Some(headers)
    }
}

impl RecordCollector for KafkaCollector {
    fn send(&self, record: OutgoingRecord) -> Result<(), ProcessError> {
        self.ensure_transaction()
            .map_err(|e| ProcessError::Produce {
                topic: record.topic.clone(),
                reason: format!("cannot begin a transaction: {e}"),
            })?;
        let mut base: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(&record.topic).timestamp(record.timestamp);
        if let Some(key) = &record.key {
            base = base.key(key.as_slice());
        }
        if let Some(value) = &record.value {
            base = base.payload(value.as_slice());
        }
        if let Some(partition) = record.partition {
            base = base.partition(partition);
        }
        if let Some(headers) = Self::to_headers(&record) {
            base = base.headers(headers);
        }
        let mut waited_since: Option<std::time::Instant> = None;
        loop {
            match self.producer.send(base) {
                Ok(()) => {
                    self.sent.set(self.sent.get() + 1);
                    return Ok(());
                }
                // The local queue is full: wait for deliveries to drain it, but not
                // forever (a broker that is gone must surface as an error).
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    if waited_since
                        .get_or_insert_with(std::time::Instant::now)
                        .elapsed()
                        > QUEUE_FULL_TIMEOUT
                    {
                        return Err(ProcessError::Produce {
                            topic: record.topic.clone(),
                            reason: format!(
                                "the producer queue stayed full for {QUEUE_FULL_TIMEOUT:?}"
                            ),
                        });
                    }
                    base = returned;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((error, _)) => {
                    return Err(ProcessError::Produce {
                        topic: record.topic.clone(),
                        reason: error.to_string(),
                    })
                }
            }
        }
    }

    fn partition_count(&self, topic: &str) -> Option<i32> {
        if let Some(&n) = self.partition_counts.borrow().get(topic) {
            return Some(n);
        }
        let metadata = self
            .producer
            .client()
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
            .map_err(|e| tracing::warn!(topic, "cannot read the partition count: {e}"))
            .ok()?;
        let n = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len() as i32)
            .filter(|&n| n > 0)?;
        self.partition_counts
            .borrow_mut()
            .insert(topic.to_string(), n);
        Some(n)
    }
}
