//! Producing keyed records and reading them back within a deadline.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::executor::block_on;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::broker::{bootstrap, client_config, require_broker};

/// How long one produced record may take to be acknowledged.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the broker stored a produced record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Partition the record went to.
    pub partition: i32,
    /// Offset of the record in that partition.
    pub offset: i64,
}

/// Produces `(key, value)` records to `topic` and waits until every one is
/// acknowledged, returning where each landed, in input order.
///
/// The producer uses `partitioner=murmur2_random` (Kafka's Java default for
/// keyed records) and `acks=all`. Panics if any record is not acknowledged
/// within 15 s.
pub fn produce_keyed<I, K, V>(topic: &str, records: I) -> Vec<Delivered>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    require_broker();
    let producer: FutureProducer = client_config()
        .set("partitioner", "murmur2_random")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            DELIVERY_TIMEOUT.as_millis().to_string(),
        )
        .create()
        .unwrap_or_else(|e| panic!("cannot create a producer for {}: {e}", bootstrap()));
    let mut pending = Vec::new();
    for (index, (key, value)) in records.into_iter().enumerate() {
        let mut record = FutureRecord::to(topic)
            .key(key.as_ref())
            .payload(value.as_ref());
        // The producer's queue holds 100,000 records: past that, wait for room.
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned))
                    if Instant::now() < deadline =>
                {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => {
                    panic!("record {index} for topic {topic} was not accepted by the producer: {e}")
                }
            }
        }
    }
    pending
        .into_iter()
        .enumerate()
        .map(|(index, delivery)| match block_on(delivery) {
            Ok(Ok(delivery)) => Delivered { partition: delivery.partition, offset: delivery.offset },
            Ok(Err((e, _))) => panic!("record {index} for topic {topic} was not delivered: {e}"),
            Err(_) => panic!("record {index} for topic {topic}: the producer went away before its delivery report"),
        })
        .collect()
}

/// Which records a consumer may see in a topic written by transactional producers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// `isolation.level=read_uncommitted`: every record, aborted ones included.
    #[default]
    ReadUncommitted,
    /// `isolation.level=read_committed`: only records of committed
    /// transactions (and non-transactional ones), up to the last stable offset.
    ReadCommitted,
}

impl Isolation {
    fn config_value(self) -> &'static str {
        match self {
            Isolation::ReadUncommitted => "read_uncommitted",
            Isolation::ReadCommitted => "read_committed",
        }
    }
}

/// How [`consume_with`] reads a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumeOptions {
    /// Stop once this many records have arrived.
    pub max_records: usize,
    /// Stop at this time limit, returning what arrived so far.
    pub timeout: Duration,
    /// Transaction isolation of the consumer.
    pub isolation: Isolation,
    /// Stop as soon as every partition has been read to its end (for
    /// `ReadCommitted`, to its last stable offset).
    pub stop_at_end: bool,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        ConsumeOptions {
            max_records: usize::MAX,
            timeout: Duration::from_secs(20),
            isolation: Isolation::ReadUncommitted,
            stop_at_end: false,
        }
    }
}

/// A record read back from a topic, with owned key and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Partition the record was read from.
    pub partition: i32,
    /// Offset of the record in its partition.
    pub offset: i64,
    /// The key, `None` for a null key.
    pub key: Option<Vec<u8>>,
    /// The value, `None` for a null value (a tombstone).
    pub value: Option<Vec<u8>>,
    /// The record timestamp in milliseconds since the epoch, if it has one.
    pub timestamp_ms: Option<i64>,
}

impl ConsumedRecord {
    /// The key as UTF-8 text; panics if it is null or not UTF-8.
    pub fn key_str(&self) -> &str {
        utf8(self.key.as_deref(), "key", self)
    }

    /// The value as UTF-8 text; panics if it is null or not UTF-8.
    pub fn value_str(&self) -> &str {
        utf8(self.value.as_deref(), "value", self)
    }
}

fn utf8<'a>(bytes: Option<&'a [u8]>, what: &str, record: &ConsumedRecord) -> &'a str {
    let bytes = bytes.unwrap_or_else(|| {
        panic!(
            "the {what} of the record at partition {} offset {} is null",
            record.partition, record.offset
        )
    });
    std::str::from_utf8(bytes).unwrap_or_else(|e| {
        panic!(
            "the {what} of the record at partition {} offset {} is not UTF-8: {e}",
            record.partition, record.offset
        )
    })
}

/// Reads up to `n` records from the beginning of every partition of `topic`
/// (read_uncommitted), returning early once `n` arrived, else after `timeout`
/// with whatever arrived; assert on the result.
pub fn consume_n(topic: &str, n: usize, timeout: Duration) -> Vec<ConsumedRecord> {
    consume_with(
        topic,
        ConsumeOptions {
            max_records: n,
            timeout,
            ..ConsumeOptions::default()
        },
    )
}

/// Reads every partition of `topic` from the beginning to its current end
/// under the given isolation, giving up after `timeout` with what arrived.
pub fn consume_to_end(topic: &str, isolation: Isolation, timeout: Duration) -> Vec<ConsumedRecord> {
    consume_with(
        topic,
        ConsumeOptions {
            timeout,
            isolation,
            stop_at_end: true,
            ..ConsumeOptions::default()
        },
    )
}

/// Reads `topic` from the beginning of every partition as `options` say.
///
/// Partitions are assigned directly (no consumer-group rebalance), so reading
/// starts at once; nothing is committed. Records come back in arrival order,
/// which is offset order within each partition.
pub fn consume_with(topic: &str, options: ConsumeOptions) -> Vec<ConsumedRecord> {
    require_broker();
    let deadline = Instant::now() + options.timeout;
    let consumer: BaseConsumer = client_config()
        .set(
            "group.id",
            format!("streams-test-support-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .set("isolation.level", options.isolation.config_value())
        .create()
        .unwrap_or_else(|e| panic!("cannot create a consumer for {}: {e}", bootstrap()));
    let partitions = partition_count(&consumer, topic);
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap_or_else(|e| panic!("cannot assign {topic}/{partition}: {e}"));
    }
    consumer
        .assign(&assignment)
        .unwrap_or_else(|e| panic!("cannot assign the partitions of {topic}: {e}"));

    let mut records = Vec::new();
    let mut at_end = HashSet::new();
    while records.len() < options.max_records {
        if options.stop_at_end && at_end.len() == partitions as usize {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match consumer.poll(deadline - now) {
            None => {}
            Some(Ok(message)) => {
                at_end.remove(&message.partition());
                records.push(ConsumedRecord {
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key().map(<[u8]>::to_vec),
                    value: message.payload().map(<[u8]>::to_vec),
                    timestamp_ms: message.timestamp().to_millis(),
                });
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
            }
            Some(Err(e)) => panic!("consuming {topic} failed: {e}"),
        }
    }
    records
}

fn partition_count(consumer: &BaseConsumer, topic: &str) -> i32 {
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("cannot fetch the metadata of topic {topic}: {e}"));
    let entry = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .unwrap_or_else(|| panic!("topic {topic} is missing from the broker's metadata"));
    if let Some(error) = entry.error() {
        panic!("topic {topic} is not readable: {error:?}");
    }
    entry.partitions().len() as i32
}
